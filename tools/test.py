"""Evaluate a checkpoint, metrics to <work-dir>/test_results.json: the same as ``vitext test``
(vitext/cli/test.py; ``--help`` lists the options)."""
from vitext.cli.test import main

if __name__ == '__main__':
    main()
