"""Parameters and FLOPs of a config or a backbone: the same as ``vitext flops``
(vitext/cli/flops.py; ``--help`` lists the options)."""
from vitext.cli.flops import main

if __name__ == '__main__':
    main()
