"""``vitext test`` (``tools/test.py``): evaluate a checkpoint (mmseg's/mmdet's/mmpretrain's CLI).
Writes the metrics (mIoU, box/mask AP, or top-1/top-5 accuracy), per class for segmentation, to
<work-dir>/test_results.json.

Usage: vitext test CONFIG CHECKPOINT [--work-dir DIR] [--out DIR_or_PKL] [--show-dir DIR] [--tta]
[--deploy] [--cfg-options k=v ...] [--launcher ...]
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import DictAction

from . import add_launcher_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext test',
                                     description='Evaluate a segmentor, detector or classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and test_results.json')
    parser.add_argument('--out', help='segmentation: folder for predicted label PNGs; '
                        'detection/classification: .pkl file for the raw predictions')
    parser.add_argument('--show-dir', help='folder to save painted predictions')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation '
                        '(the config\'s tta_pipeline, e.g. multi-scale + flip)')
    parser.add_argument('--deploy', action='store_true', help='re-parameterise the model '
                        '(e.g. merge Slide attention\'s shift convs) after loading the checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.batch_size=2')
    add_launcher_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    import vitext.apis
    result = vitext.apis.test(args.config, args.checkpoint, work_dir=args.work_dir, out=args.out,
                              show_dir=args.show_dir, tta=args.tta, deploy=args.deploy,
                              cfg_options=args.cfg_options, launcher=args.launcher)
    if 'json' in result:
        summary = ', '.join(f'{k}: {v}' for k, v in result['metrics'].items())
        print(f'{summary}\nresults: {result["json"]}')
