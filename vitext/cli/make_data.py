"""Write learnable synthetic data sets in the on-disk formats of ADE20K, COCO and ImageNet.

vitext make-data [--out data/synthetic] [--which ade coco imagenet]
    [--seed 0] [--num-train N] [--num-val N] [--height H] [--width W] [--colours class|instance]
    [--max-objects N] [--object-size MIN MAX]
(or python tools/make_synthetic_data.py ...)
gives <out>/ade/ADEChallengeData2016/{images,annotations}/{training,validation},
<out>/coco/{train2017,val2017,annotations/instances_*2017.json} and (--which imagenet)
<out>/imagenet/{train/<class>/,val/,meta/{train,val,classes}.txt} (counts per class; images
--height x --height, default 64). Writing into a folder that holds an earlier synthetic set
replaces that set; a non-empty folder the tool did not write (a real data set), or a set folder
that is a symbolic link, is refused. Counts and sizes are checked before anything is written.
"""
import argparse
import os.path as osp
import sys
from typing import Callable, List, Optional

from vitext.data.synthetic import MIN_SIDE, make_ade20k, make_coco, make_imagenet


def whole_number_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers >= ``minimum``, so that argparse names the
    option of a value out of range (an empty set or a degenerate image) and stops before any
    file is written.

    Args:
        minimum: the smallest value accepted.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f'must be a whole number >= {minimum}, got {text}')
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext make-data', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/synthetic', help='output root')
    parser.add_argument('--which', nargs='+', choices=['ade', 'coco', 'imagenet'],
                        default=['ade', 'coco'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=whole_number_at_least(1), default=None,
                        help='training images (default: 200 ADE, 100 COCO, 40 per class ImageNet)')
    parser.add_argument('--num-val', type=whole_number_at_least(1), default=None,
                        help='validation images (default: 50 ADE, 20 COCO, 10 per class ImageNet)')
    parser.add_argument('--height', type=whole_number_at_least(MIN_SIDE), default=None,
                        help='image height (default: 128 ADE and COCO, 64 ImageNet)')
    parser.add_argument('--width', type=whole_number_at_least(MIN_SIDE), default=None,
                        help='image width (default: 128 ADE, 160 COCO)')
    parser.add_argument('--colours', choices=['class', 'instance'], default='class',
                        help='class: each class its own colour; instance: every region a random '
                        'colour, so classes differ only in texture and shape')
    parser.add_argument('--max-objects', type=whole_number_at_least(1), default=2,
                        help='ImageNet: at most this many objects an image (default 2)')
    parser.add_argument('--object-size', type=float, nargs=2, default=(0.1, 0.22),
                        metavar=('MIN', 'MAX'),
                        help='ImageNet: object radii drawn from [MIN, MAX] x the image side '
                        '(default 0.1 0.22, as in the ADE/COCO scenes; 0.25 0.42 with '
                        '--max-objects 1 gives object-centric images, as ImageNet photos)')
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        write_sets(args)
    except (FileExistsError, ValueError) as error:  # a refused folder or argument: one line
        sys.exit(f'{parser.prog}: {error}')


def write_sets(args: argparse.Namespace) -> None:
    """Write the sets ``args.which`` names under ``args.out``.

    Args:
        args: the parsed command line.
    """
    def sizes(train, val, width):
        return dict(num_train=args.num_train if args.num_train is not None else train,
                    num_val=args.num_val if args.num_val is not None else val,
                    height=args.height or 128, width=args.width or width, seed=args.seed,
                    colours=args.colours)

    if 'ade' in args.which:
        root = make_ade20k(osp.join(args.out, 'ade'), **sizes(200, 50, 128))
        print(f'ADE20K-format data: {root}')
    if 'coco' in args.which:
        root = make_coco(osp.join(args.out, 'coco'), **sizes(100, 20, 160))
        print(f'COCO-format data: {root}')
    if 'imagenet' in args.which:
        root = make_imagenet(
            osp.join(args.out, 'imagenet'), size=args.height or 64, seed=args.seed,
            colours=args.colours, max_objects=args.max_objects,
            object_size=tuple(args.object_size),
            num_train=args.num_train if args.num_train is not None else 40,
            num_val=args.num_val if args.num_val is not None else 10)
        print(f'ImageNet-format data: {root}')
