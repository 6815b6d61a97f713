"""AFT-conv layer vs global softmax attention of the same width, as the token grid grows.

python benchmarks/bench_aft_conv.py [--sizes 32 64 96 128] [--repeats 3] [--device cpu|cuda]
    [--out benchmarks/results] [--max-explicit-gb 6] [--baseline-aft /tmp/aft_main.py]

Layers (tokens in, tokens out, projections included): AFT-conv small (d 384, 384 heads, 11x11
kernel) vs multi-head attention (d 384, DeiT-S's 6 heads) through PyTorch's fused SDPA and as
explicit softmax(QK^T)V. The explicit form is skipped where its attention matrices alone would
exceed --max-explicit-gb (forward: heads*T^2 floats; forward+backward: 3x that).
Targets (CPU, 128^2 tokens): AFT-conv >= 10x faster than SDPA, peak memory <= 0.25x the explicit
form's and <= 1.5x SDPA's, forward+backward peak memory <= 1.20x SDPA's; cost linear in tokens.
--baseline-aft PATH adds ``aft_conv_baseline``, the layer of an older aft.py (``git show
main:vitext/ops/aft.py > /tmp/aft_main.py``), measured interleaved with the current one. Torch
only.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import (environment, interleaved_times, load_baseline, peak_memory_mb,  # noqa: E402
                    probe_in_subprocess, write_results)

DIM, AFT_HEADS, KERNEL, MHA_HEADS = 384, 384, 11, 6
LAYERS = ('aft_conv', 'sdpa', 'explicit')
PASSES = ('forward', 'forward_backward')


def explicit_gb(side: int, which: str) -> float:
    tokens = side * side
    return MHA_HEADS * tokens * tokens * 4 / 2**30 * (3 if which == 'forward_backward' else 1)


def make_pass(layer_name: str, which: str, side: int, device: str, baseline: str = None):
    from vitext.models.layers import Attention
    from vitext.ops.aft import AFTConv
    torch.manual_seed(0)
    if layer_name.startswith('aft_conv'):
        cls = load_baseline(baseline, 'aft_baseline').AFTConv if layer_name == 'aft_conv_baseline' \
            else AFTConv
        layer = cls(DIM, AFT_HEADS, KERNEL)
        with torch.no_grad():  # a trained-looking position kernel, not the all-zero init
            layer.pos_gamma.fill_(1.)
    else:
        layer = Attention(DIM, MHA_HEADS)
    layer = layer.to(device)
    explicit = layer_name == 'explicit'
    x = torch.randn(1, side * side, DIM, device=device)

    def call():
        out = layer(x, (side, side), return_attn=True)[0] if explicit else layer(x, (side, side))
        return out

    if which == 'forward':
        def run():
            with torch.no_grad():
                call()
    else:
        x.requires_grad_(True)

        def run():
            layer.zero_grad(set_to_none=True)
            x.grad = None
            call().sum().backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[32, 64, 96, 128])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--max-explicit-gb', type=float, default=6.)
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    parser.add_argument('--baseline-aft', metavar='PATH',
                        help='an older vitext/ops/aft.py to measure as aft_conv_baseline')
    parser.add_argument('--memory-probe', nargs=3, metavar=('LAYER', 'PASS', 'SIDE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        name, which, side = args.memory_probe
        print(peak_memory_mb(make_pass(name, which, int(side), args.device, args.baseline_aft),
                             args.device))
        return
    layers = LAYERS + (('aft_conv_baseline',) if args.baseline_aft else ())
    extra = ['--baseline-aft', args.baseline_aft] if args.baseline_aft else []

    env = environment(args.device)
    results, skipped = {}, []
    for side in args.sizes:
        for which in PASSES:
            names = [n for n in layers
                     if n != 'explicit' or explicit_gb(side, which) <= args.max_explicit_gb]
            if 'explicit' not in names:
                skipped.append(f'explicit {which} at {side}x{side} tokens '
                               f'(~{explicit_gb(side, which):.1f} GB of attention matrices)')
            fns = {n: make_pass(n, which, side, args.device, args.baseline_aft) for n in names}
            times = interleaved_times(fns, args.device, warmup=1, repeats=args.repeats)
            for n in names:
                mem = (probe_in_subprocess(__file__, [n, which, str(side), '--device', args.device,
                                                      *extra])
                       if args.device == 'cpu' else peak_memory_mb(fns[n], args.device))
                results.setdefault(str(side), {}).setdefault(which, {})[n] = dict(
                    time=times[n], peak_memory_mb=mem)
            del fns
    table = [['tokens', 'pass', 'layer', 'median time (s)', 'SDPA time / AFT-conv time',
              'peak memory (MB)', 'AFT-conv memory / this']]
    for side in args.sizes:
        for which in PASSES:
            row = results[str(side)][which]
            aft = row['aft_conv']
            for n, r in row.items():
                r['speedup_of_aft_conv'] = r['time']['median_s'] / aft['time']['median_s']
                r['aft_conv_memory_ratio'] = aft['peak_memory_mb'] / r['peak_memory_mb']
                table.append([f'{side}x{side}', which, n, f'{r["time"]["median_s"]:.4f}',
                              f'{r["speedup_of_aft_conv"]:.2f}', f'{r["peak_memory_mb"]:.1f}',
                              f'{r["aft_conv_memory_ratio"]:.3f}'])
    # Linearity: AFT-conv time per token, relative to the smallest grid.
    first = str(args.sizes[0])
    growth = {which: {str(s): (results[str(s)][which]['aft_conv']['time']['median_s'] / s ** 2)
                      / (results[first][which]['aft_conv']['time']['median_s']
                         / args.sizes[0] ** 2) for s in args.sizes} for which in PASSES}
    last = results[str(args.sizes[-1])]['forward_backward']
    targets = {f'{args.sizes[-1]}^2 tokens forward_backward: {n} memory / sdpa': (
        last[n]['peak_memory_mb'] / last['sdpa']['peak_memory_mb']) for n in last
        if n.startswith('aft_conv')}
    targets.update({f'{args.sizes[-1]}^2 tokens forward_backward: sdpa time / {n}': (
        last['sdpa']['time']['median_s'] / last[n]['time']['median_s']) for n in last
        if n.startswith('aft_conv')})
    payload = dict(description=f'Targets: {targets}. '
                   'AFT-conv (d 384, 384 heads, k 11) vs softmax attention (d 384, '
                   '6 heads): SDPA and explicit. "SDPA time / AFT-conv time" is the layer\'s time '
                   'relative to AFT-conv (for the sdpa row: AFT-conv\'s speed-up). Skipped: '
                   + ('; '.join(skipped) or 'none') + '. AFT-conv time per token relative to the '
                   f'smallest grid: {growth}.',
                   environment=env, settings=vars(args), results=results,
                   skipped=skipped, aft_conv_time_per_token_growth=growth, targets=targets)
    path = write_results(args.out, f'aft_conv_{args.device}', payload, table)
    print(open(path).read())


if __name__ == '__main__':
    main()
