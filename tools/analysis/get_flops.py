"""Parameters and FLOPs of a config or a backbone: the same as ``vitext flops``
(vitext/cli/flops.py; ``--help`` lists the options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from vitext.cli.flops import main  # noqa: E402

if __name__ == '__main__':
    main()
