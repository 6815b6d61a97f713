"""Start a vitext backbone from a DeiT or Swin checkpoint: the same as ``vitext convert``
(vitext/cli/convert.py; ``--help`` lists the options)."""
from vitext.cli.convert import main

if __name__ == '__main__':
    main()
