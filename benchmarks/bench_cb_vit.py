"""CB-ViT-S backbone at 512x512: cb_mode none vs cb vs cbs, forward and forward+backward.

python benchmarks/bench_cb_vit.py [--size 512] [--batch 1] [--repeats 5] [--device cpu|cuda]
    [--out benchmarks/results]
Target: CB and CBS cost <= 2 % extra time and <= 1 % extra peak memory.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import environment, interleaved_times, peak_memory_mb, probe_in_subprocess, write_results  # noqa: E402,E501

MODES = ('none', 'cb', 'cbs')
PASSES = ('forward', 'forward_backward')


def make_pass(mode: str, which: str, size: int, batch: int, device: str):
    from vitext.models.backbones import CBViT
    torch.manual_seed(0)
    model = CBViT('small', cb_mode=mode).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if which == 'forward':
        model.eval()

        def run():
            with torch.no_grad():
                model(x)
    else:
        model.train()

        def run():
            model.zero_grad(set_to_none=True)
            sum(o.float().mean() for o in model(x)).backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    parser.add_argument('--memory-probe', nargs=2, metavar=('MODE', 'PASS'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        print(peak_memory_mb(make_pass(*args.memory_probe, args.size, args.batch, args.device),
                             args.device))
        return

    results = {}
    for which in PASSES:
        fns = {mode: make_pass(mode, which, args.size, args.batch, args.device) for mode in MODES}
        times = interleaved_times(fns, args.device, repeats=args.repeats)
        for mode in MODES:
            if args.device == 'cpu':
                mem = probe_in_subprocess(__file__, [mode, which, '--size', str(args.size),
                                                     '--batch', str(args.batch)])
            else:
                mem = peak_memory_mb(fns[mode], args.device)
            results.setdefault(which, {})[mode] = dict(time=times[mode], peak_memory_mb=mem)
    table = [['pass', 'cb_mode', 'median time (s)', 'time / none', 'peak memory (MB)',
              'memory / none']]
    for which in PASSES:
        base = results[which]['none']
        for mode in MODES:
            r = results[which][mode]
            r['time_ratio'] = r['time']['median_s'] / base['time']['median_s']
            r['memory_ratio'] = r['peak_memory_mb'] / base['peak_memory_mb']
            table.append([which, mode, f'{r["time"]["median_s"]:.3f}', f'{r["time_ratio"]:.3f}',
                          f'{r["peak_memory_mb"]:.0f}', f'{r["memory_ratio"]:.3f}'])
    payload = dict(description=f'CBViT-S backbone (4-level pyramid), input {args.batch}x3x'
                   f'{args.size}x{args.size}; target: cb/cbs <= 1.02x time, <= 1.01x memory.',
                   environment=environment(args.device), settings=vars(args), results=results)
    path = write_results(args.out, f'cb_vit_{args.device}', payload, table)
    print(open(path).read())


if __name__ == '__main__':
    main()
