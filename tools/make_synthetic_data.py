"""Write synthetic ADE20K-, COCO- and ImageNet-format data sets: the same as ``vitext make-data``
(vitext/cli/make_data.py; ``--help`` lists the options)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the checkout's vitext
from vitext.cli.make_data import main  # noqa: E402

if __name__ == '__main__':
    main()
