"""Parameters and FLOPs (mmengine's FlopAnalyzer, fvcore's convention: a multiply-add is one FLOP;
element-wise ops are not counted) of a whole config or of one backbone, in training and deploy
(re-parameterised) form.

vitext flops CONFIG [--shape H W] [--cfg-options k=v ...]
vitext flops --backbone TYPE [--arch ARCH] [--shape H W] [--num-classes N]
vitext flops --model-zoo [--shape 224 224] [--json FILE]
(or python tools/analysis/get_flops.py ...)

A config counts a segmentor's whole forward at H x W (backbone, neck, decode head) or a
detector's backbone + neck. --backbone counts a vitext backbone as its classifier (the last
stage or block, pooled, + a linear head of --num-classes classes), the form papers report, or
with --num-classes 0 any registered backbone alone. --model-zoo prints
the markdown table of README's model zoo (with a 1000-class head at 224 x 224).
"""
import argparse
import json
from typing import List, Optional

from mmengine.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext flops', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument('config', nargs='?', help='segmentation or detection config')
    what.add_argument('--backbone', help='a registered backbone type, e.g. SlideSwinTransformer')
    what.add_argument('--model-zoo', action='store_true', help='README model-zoo table')
    parser.add_argument('--arch', help='the backbone\'s arch (with --backbone)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='input size (default: 512 512 for configs, 224 224 otherwise)')
    parser.add_argument('--num-classes', type=int, default=1000,
                        help='classifier head on --backbone (0: backbone alone)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--json', help='also write the numbers to this JSON file')
    return parser


def fmt(value: Optional[float], digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, '-' for a missing one."""
    return '-' if value is None else f'{value:.{digits}f}'


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    from vitext.analysis import complexity as cx
    shape = tuple(args.shape or ((512, 512) if args.config else (224, 224)))
    if args.model_zoo:
        rows = cx.zoo_table(shape=shape)
        print(f'| backbone | params (M) | FLOPs (G) @{shape[0]}x{shape[1]} | deploy FLOPs (G) '
              '| paper params (M) | paper FLOPs (G) |')
        print('| --- | --- | --- | --- | --- | --- |')
        for r in rows:
            print(f'| {r["name"]} | {fmt(r["params_m"])} | {fmt(r["flops_g"])} | '
                  f'{fmt(r["deploy_flops_g"])} | {fmt(r["paper_params_m"], 1)} | '
                  f'{fmt(r["paper_flops_g"], 1)} |')
        result = dict(shape=shape, rows=rows)
    else:
        if args.config:
            from vitext.analysis.model_from_config import TensorForward, build_model
            model = TensorForward(*build_model(args.config, cfg_options=args.cfg_options))
            what = f'{args.config}: {model.what}'
        else:
            cfg = dict(type=args.backbone)
            if args.arch:
                cfg['arch'] = args.arch
            if args.num_classes:
                from vitext.models.classifiers import build_classifier
                model = build_classifier(cfg, args.num_classes)
            else:
                model = cx.build_backbone(cfg)
            what = (f'{args.backbone} (arch {args.arch or "default"})'
                    + (f' + {args.num_classes}-class head' if args.num_classes else ''))
        result = dict(what=what, shape=shape, **cx.complexity(model, shape))
        print(f'{what} at {shape[0]}x{shape[1]}')
        print(f'  params: {fmt(result["params_m"])} M   FLOPs: {fmt(result["flops_g"])} G')
        if result['deploy_flops_g'] is not None:
            print(f'  deploy form: params {fmt(result["deploy_params_m"])} M   FLOPs '
                  f'{fmt(result["deploy_flops_g"])} G')
        print('  (mmengine FlopAnalyzer: multiply-adds; element-wise ops not counted)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
