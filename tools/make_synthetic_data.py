"""Write synthetic ADE20K-, COCO- and ImageNet-format data sets: the same as ``vitext make-data``
(vitext/cli/make_data.py; ``--help`` lists the options)."""
from vitext.cli.make_data import main

if __name__ == '__main__':
    main()
