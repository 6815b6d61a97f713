"""Save a checkpoint in deploy (re-parameterised) form, checked, optionally as ONNX: the same as
``vitext deploy`` (vitext/cli/deploy.py; ``--help`` lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from vitext.cli.deploy import main  # noqa: E402

if __name__ == '__main__':
    main()
