"""Save a checkpoint in deploy (re-parameterised) form, checked, optionally as ONNX: the same as
``vitext deploy`` (vitext/cli/deploy.py; ``--help`` lists the options)."""
from vitext.cli.deploy import main

if __name__ == '__main__':
    main()
