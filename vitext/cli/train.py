"""``vitext train`` (``tools/train.py``): train a segmentor, detector or ImageNet classifier from a
config (mmseg's/mmdet's/mmpretrain's CLI; the task comes from the config's default_scope).

Usage: vitext train CONFIG [--work-dir DIR] [--resume] [--load-partial] [--amp]
[--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import DictAction

from . import add_launcher_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext train',
                                     description='Train a segmentor, detector or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--load-partial', action='store_true',
                        help='with load_from: load the checkpoint keys that fit the model and '
                        'train the rest from their initialisation (default: a checkpoint that '
                        'does not fit stops with the keys listed)')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training (CUDA)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_iters=100 '
                        'key="[a,b]" for lists; no white space')
    add_launcher_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    import vitext.apis  # after argparse: --help stays fast
    vitext.apis.train(args.config, work_dir=args.work_dir, resume=args.resume, amp=args.amp,
                      cfg_options=args.cfg_options, launcher=args.launcher,
                      load_partial=args.load_partial)
