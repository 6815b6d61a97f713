"""Robustness of a checkpoint under occlusion, FGSM/PGD and common corruptions.

vitext robustness CONFIG CHECKPOINT --suite occlusion,fgsm,pgd,corruptions
    [--eps 1 2 4 8] [--severities 1 2 3 4 5] [--corruptions NAME ...] [--pgd-steps 10]
    [--pgd-step-size S] [--occlusion-fraction 0.25] [--occlusion-fill 0] [--seed 0]
    [--work-dir DIR] [--cfg-options k=v ...]
(or python tools/robustness.py ...)

Writes <work-dir>/robustness.json (after every setting, atomically: a killed run resumes where
it stopped), robustness.md and robustness.png. The default work dir is
work_dirs/<config>/robustness/<checkpoint name>. Results saved for another checkpoint file (path,
size, modification time), config or parameters are never reused: the run stops and says so.
Epsilons are in pixel units (/255). Detection configs support occlusion and corruptions (box AP
instead of mIoU).
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext robustness', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--suite', default='occlusion,fgsm,pgd,corruptions',
                        help='comma-separated: occlusion, fgsm, pgd, corruptions')
    parser.add_argument('--eps', type=float, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--severities', type=int, nargs='+', default=[1, 2, 3, 4, 5])
    parser.add_argument('--corruptions', nargs='+', default=None,
                        help='corruption types (default: all 15)')
    parser.add_argument('--pgd-steps', type=int, default=10)
    parser.add_argument('--pgd-step-size', type=float, default=None,
                        help='pixels per step (default 2.5 * eps / steps)')
    parser.add_argument('--occlusion-fraction', type=float, default=0.25)
    parser.add_argument('--occlusion-fill', type=float, default=0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    from vitext.apis import fill_label_ranges
    from vitext.preflight import (check_checkpoint_fits, check_data, check_model_types,
                                  check_normalisation, load_config)
    from vitext.evaluation.corruptions import CORRUPTIONS
    from vitext.evaluation.robustness import ResultsMismatchError, run_suite
    cfg = load_config(args.config, args.cfg_options)
    check_model_types(cfg)
    check_normalisation(cfg.model)
    check_data(cfg, ('test_dataloader',))
    fill_label_ranges(cfg, ('test_dataloader',))
    check_checkpoint_fits(cfg, args.checkpoint)
    work_dir = args.work_dir or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0], 'robustness',
        osp.splitext(osp.basename(args.checkpoint))[0])
    try:
        out = run_suite(cfg, args.checkpoint, work_dir,
                        suites=[s.strip() for s in args.suite.split(',') if s.strip()],
                        eps=args.eps, severities=args.severities,
                        corruptions=args.corruptions or CORRUPTIONS, pgd_steps=args.pgd_steps,
                        pgd_step_size=args.pgd_step_size,
                        occlusion_fraction=args.occlusion_fraction,
                        occlusion_fill=args.occlusion_fill, seed=args.seed)
    except ResultsMismatchError as err:
        raise SystemExit(f'robustness.py: {err}') from None
    print('\n' + open(out['markdown']).read())
    print(f'results: {out["json"]}\nplot: {out["plot"]}')
