"""Train a segmentor, detector or ImageNet classifier from a config: the same as ``vitext train``
(vitext/cli/train.py; ``--help`` lists the options)."""
from vitext.cli.train import main

if __name__ == '__main__':
    main()
