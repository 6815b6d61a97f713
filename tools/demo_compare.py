"""Train and evaluate several segmentation configs under one recipe, one after the other, and
compare them: a table (params, FLOPs, s/iter, mIoU, mAcc) printed and written to
<work-dir>/comparison.md and comparison.json, and training-loss / validation-mIoU curves in
comparison.png. Each config runs in <work-dir>/<name>/ (name: the model part of the config's
file name, e.g. cbvit-mini), as tools/train.py + tools/test.py would.

python tools/demo_compare.py [CONFIG ...] [--work-dir work_dirs/demo] [--shape 128 128]
    [--val-interval N] [--show-dir vis] [--cfg-options k=v ...]

Without CONFIGs: the four CPU demo configs (ResNet-18 baseline, Slide-Swin, AFT-conv, CB-ViT).
--cfg-options apply to every config (e.g. train_cfg.max_iters=50 for a shorter run).
"""
import argparse

from mmengine.config import DictAction

DEMO_CONFIGS = [
    f'configs/demo/upernet_{name}_4xb8-120it_synthetic-ade20k-128x128.py'
    for name in ('r18-mini', 'slide-swin-mini', 'aftconv-mini', 'cbvit-mini')
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=DEMO_CONFIGS,
                        help='segmentation configs (default: the four CPU demo configs)')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='one folder per config under it, the comparison files in it')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(128, 128),
                        help='input size for the FLOPs count (default: the demo crop)')
    parser.add_argument('--val-interval', type=int, default=None,
                        help='validate every N iterations (points of the mIoU curve); default: '
                        'the configs\' train_cfg.val_interval')
    parser.add_argument('--show-dir', help='paint the test predictions into '
                        '<work-dir>/<name>/<show-dir>/')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override settings of every config, e.g. train_cfg.max_iters=50')
    return parser.parse_args()


def main():
    args = parse_args()
    from vitext.analysis.demo import DemoRun, compare, markdown_table, run_name
    options = dict(args.cfg_options)
    if args.val_interval:
        options['train_cfg.val_interval'] = args.val_interval
    runs = [DemoRun(run_name(config), config) for config in args.configs]
    result = compare(runs, args.work_dir, shape=args.shape, cfg_options=options or None,
                     show_dir=args.show_dir)
    print(f'\nSame recipe and data for every model ({result["wall_s"]:.0f} s in all):\n')
    print(markdown_table(result['rows'], args.shape))
    for row in result['rows']:
        print(f'{row["name"]}: {row["work_dir"]}/ (checkpoints, logs, test_results.json)')
    files = result['files']
    print(f'table: {files["markdown"]}, {files["json"]}\ncurves: {files["png"]}')


if __name__ == '__main__':
    main()
