"""Robustness of a checkpoint under occlusion, FGSM/PGD and common corruptions: the same as
``vitext robustness`` (vitext/cli/robustness.py; ``--help`` lists the options)."""
from vitext.cli.robustness import main

if __name__ == '__main__':
    main()
