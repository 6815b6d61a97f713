"""Slide attention layer vs the other ways to compute local attention, and Slide backbones vs
their parents.

python benchmarks/bench_slide_attention.py [--sizes 128 56] [--repeats 3] [--device cpu|cuda]
    [--backbones] [--backbone-size 512] [--out benchmarks/results]

Layers (B, H, W, 96) -> same, 3 heads, k = 3, projections included, all with the same weights:
  slide_deploy  vitext's fast form, merged conv (inference form)
  slide_train   vitext's fast form, shift + deformed convs (training form)
  k2_copies     the paper's / public code's form: k^2 shifted copies of K and V by the conv(s)
  im2col        F.unfold neighbourhoods mixed by the same conv weights (Im2Col of this layer)
  im2col_plain  F.unfold neighbourhoods without the deformed shifts: the paper's Im2Col baseline
  swin_window   Swin's 7x7 window attention (SDPA) of the same width
The forward pass uses the deploy forms (k2_copies: one merged conv), forward+backward the
training forms (k2_copies: the two convs, as the public code trains).
Targets (issue 3, CPU): slide_deploy >= 3x faster than Im2Col with <= 0.3x its peak memory.
--backbones (needs mmseg/mmdet): Slide-Swin-T vs mmseg's Swin-T and Slide-PVT-T vs mmdet's
PVT-T at --backbone-size; target Slide-Swin-T forward <= 1.2x Swin-T's.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import (environment, interleaved_times, peak_memory_mb,  # noqa: E402
                    probe_in_subprocess, write_results)

DIM, HEADS, KERNEL, WINDOW = 96, 3, 3, 7
FORWARD = ('slide_deploy', 'k2_copies', 'im2col', 'im2col_plain', 'swin_window')
FORWARD_BACKWARD = ('slide_train', 'k2_copies', 'im2col', 'im2col_plain', 'swin_window')
BACKBONES = ('slide_swin_t', 'swin_t', 'slide_pvt_t', 'pvt_t')


def make_layer(name: str, which: str):
    from vitext.ops.slide import (SlideAttention, slide_attention_copies,
                                  slide_attention_unfold)
    from vitext.ops.window import WindowAttention

    class Im2Col(SlideAttention):
        plain = False

        def attend(self, q, k, v):
            convs = None if self.plain else [self.neighbour_conv()]
            return slide_attention_unfold(q * self.scale, k, v, self.relative_position_bias_table,
                                          self.kernel_size, convs)

    class Im2ColPlain(Im2Col):
        plain = True

    class Copies(SlideAttention):
        def attend(self, q, k, v):
            convs = ([(self.merged.weight, self.merged.bias)] if self.deploy else
                     [(self.shift.weight, self.shift.bias), (self.deform.weight, self.deform.bias)])
            return slide_attention_copies(q * self.scale, k, v, self.relative_position_bias_table,
                                          self.kernel_size, convs)

    torch.manual_seed(0)
    if name == 'swin_window':
        return WindowAttention(DIM, HEADS, WINDOW)
    cls = dict(slide_deploy=SlideAttention, slide_train=SlideAttention, k2_copies=Copies,
               im2col=Im2Col, im2col_plain=Im2ColPlain)[name]
    layer = cls(DIM, HEADS, KERNEL)
    if name == 'slide_deploy' or (name == 'k2_copies' and which == 'forward'):
        layer.switch_to_deploy()
    return layer


def make_backbone(name: str):
    torch.manual_seed(0)
    if name in ('slide_swin_t', 'slide_pvt_t'):
        from vitext.models.backbones import SlidePVT, SlideSwinTransformer
        return SlideSwinTransformer('tiny') if name == 'slide_swin_t' else SlidePVT('tiny')
    if name == 'swin_t':
        from mmseg.models.backbones import SwinTransformer
        return SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                               window_size=7, drop_path_rate=0.2)
    from mmdet.models.backbones import PyramidVisionTransformer
    return PyramidVisionTransformer(num_layers=(2, 2, 2, 2), num_heads=(1, 2, 5, 8),
                                    mlp_ratios=(8, 8, 4, 4), sr_ratios=(8, 4, 2, 1))


def make_pass(kind: str, name: str, which: str, side: int, device: str):
    if kind == 'layer':
        model = make_layer(name, which)
        x = torch.randn(1, side, side, DIM, device=device)
    else:
        model = make_backbone(name)
        x = torch.randn(1, 3, side, side, device=device)
        if which == 'forward' and name.startswith('slide'):
            model.switch_to_deploy()
    model = model.to(device)
    model.train(which != 'forward')  # some mm backbones' train() returns None

    def output():
        out = model(x)
        return sum(o.float().sum() for o in out) if isinstance(out, (tuple, list)) else out.sum()

    if which == 'forward':
        def run():
            with torch.no_grad():
                output()
    else:
        x.requires_grad_(kind == 'layer')

        def run():
            model.zero_grad(set_to_none=True)
            output().backward()
    return run


def measure(kind, names, which, side, args, results):
    fns = {n: make_pass(kind, n, which, side, args.device) for n in names}
    times = interleaved_times(fns, args.device, warmup=1, repeats=args.repeats)
    for n in names:
        mem = (probe_in_subprocess(__file__, [kind, n, which, str(side), '--device', args.device])
               if args.device == 'cpu' else peak_memory_mb(fns[n], args.device))
        results.setdefault(f'{kind} {side}', {}).setdefault(which, {})[n] = dict(
            time=times[n], peak_memory_mb=mem)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[128, 56],
                        help='H = W of the stage-1 map (128: 512-px input, 56: 224-px)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--backbones', action='store_true')
    parser.add_argument('--backbone-size', type=int, default=512)
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    parser.add_argument('--memory-probe', nargs=4, metavar=('KIND', 'NAME', 'PASS', 'SIDE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        kind, name, which, side = args.memory_probe
        print(peak_memory_mb(make_pass(kind, name, which, int(side), args.device), args.device))
        return

    results = {}
    for side in args.sizes:
        measure('layer', FORWARD, 'forward', side, args, results)
        measure('layer', FORWARD_BACKWARD, 'forward_backward', side, args, results)
    if args.backbones:
        for which in ('forward', 'forward_backward'):
            for pair in (('slide_swin_t', 'swin_t'), ('slide_pvt_t', 'pvt_t')):
                measure('backbone', pair, which, args.backbone_size, args, results)

    table = [['what', 'pass', 'variant', 'median time (s)', 'min-max (s)', 'time / reference',
              'peak memory (MB)', 'memory / reference']]
    summary = {}
    for key, passes in results.items():
        for which, row in passes.items():
            for n, r in row.items():
                # Reference: the Im2Col form for layers, the parent model for backbones.
                ref = row.get('im2col') or row[n.replace('slide_', '')]
                r['time_ratio'] = r['time']['median_s'] / ref['time']['median_s']
                r['memory_ratio'] = r['peak_memory_mb'] / max(ref['peak_memory_mb'], 1e-9)
                table.append([key, which, n, f'{r["time"]["median_s"]:.4f}',
                              f'{r["time"]["min_s"]:.4f}-{r["time"]["max_s"]:.4f}',
                              f'{r["time_ratio"]:.3f}', f'{r["peak_memory_mb"]:.1f}',
                              f'{r["memory_ratio"]:.3f}'])
            for n in ('slide_deploy', 'slide_train'):
                if n in row:
                    summary[f'{key} {which}: im2col time / {n}'] = 1 / row[n]['time_ratio']
                    summary[f'{key} {which}: {n} memory / im2col'] = row[n]['memory_ratio']
                    plain = row['im2col_plain']
                    summary[f'{key} {which}: im2col_plain time / {n}'] = (
                        plain['time']['median_s'] / row[n]['time']['median_s'])
                    summary[f'{key} {which}: {n} memory / im2col_plain'] = (
                        row[n]['peak_memory_mb'] / plain['peak_memory_mb'])
    payload = dict(
        description='Layers: reference = im2col (the same layer by F.unfold); backbones: '
        'reference = the parent model (slide_swin_t vs mmseg Swin-T, slide_pvt_t vs mmdet '
        'PVT-T; Slide models run deploy form in the forward pass). "time / reference" < 1 is '
        f'faster. Summary: {summary}',
        environment=environment(args.device), settings=vars(args), results=results,
        summary=summary)
    path = write_results(args.out, f'slide_attention_{args.device}', payload, table)
    print(open(path).read())


if __name__ == '__main__':
    main()
