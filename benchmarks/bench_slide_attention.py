"""Slide attention layer vs the other ways to compute local attention, and Slide models vs
their parents.

python benchmarks/bench_slide_attention.py [--sizes 128 56] [--repeats 3] [--device cpu|cuda]
    [--backbones [slide_swin_t slide_pvt_t slide_swin_s upernet_slide_swin_t]]
    [--backbone-size 512] [--baseline-slide /tmp/slide_main.py] [--out benchmarks/results]

Layers (B, H, W, 96) -> same, 3 heads, k = 3, projections included, all with the same weights:
  slide_deploy  vitext's layer, merged conv (inference form): on the CPU the C++ kernel
  slide_train   vitext's layer, shift + deformed convs (training form)
  k2_copies     the paper's / public code's form: k^2 shifted copies of K and V by the conv(s)
  im2col        F.unfold neighbourhoods mixed by the same conv weights (Im2Col of this layer)
  im2col_plain  F.unfold neighbourhoods without the deformed shifts: the paper's Im2Col baseline
  swin_window   Swin's 7x7 window attention (SDPA) of the same width
  *_baseline    with --baseline-slide PATH: the layer of an older slide.py (``git show
                main:vitext/ops/slide.py > /tmp/slide_main.py``), measured interleaved
The forward pass uses the deploy forms (k2_copies: one merged conv), forward+backward the
training forms (k2_copies: the two convs, as the public code trains).
Targets (CPU): slide_deploy >= 3x faster than Im2Col with <= 0.3x its peak memory, and <= 1.8x
swin_window's time at 128x128.
--backbones (needs mmseg/mmdet), at --backbone-size, each against its parent (the Slide models
run the deploy form in the forward pass):
  slide_swin_t vs mmseg Swin-T, slide_pvt_t vs mmdet PVT-T, slide_swin_s vs mmseg Swin-S, and
  upernet_slide_swin_t (configs/slide) vs mmseg's Swin-T UperNet config (whole model: backbone,
  decode and auxiliary heads).
Targets against the parents (Slide-Swin-T / Swin-T and Slide-PVT-T / PVT-T): forward <= 1.10x,
forward+backward <= 1.25x, training peak memory <= 1.25x.
Every median is over --repeats interleaved runs; the markdown states the machine's load average.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import (environment, interleaved_times, load_baseline,  # noqa: E402
                    peak_memory_mb, probe_in_subprocess, write_results)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DIM, HEADS, KERNEL, WINDOW = 96, 3, 3, 7
FORWARD = ('slide_deploy', 'k2_copies', 'im2col', 'im2col_plain', 'swin_window')
FORWARD_BACKWARD = ('slide_train', 'k2_copies', 'im2col', 'im2col_plain', 'swin_window')
SLIDE_MODELS = ('slide_swin_t', 'slide_pvt_t', 'slide_swin_s', 'upernet_slide_swin_t')
PARENT = dict(slide_swin_t='swin_t', slide_pvt_t='pvt_t', slide_swin_s='swin_s',
              upernet_slide_swin_t='upernet_swin_t')
BASELINE = None  # --baseline-slide: an older vitext.ops.slide module


def make_layer(name: str, which: str):
    from vitext.ops.slide import (SlideAttention, slide_attention_copies,
                                  slide_attention_unfold)
    from vitext.ops.window import WindowAttention

    class PerHeadMaps(SlideAttention):  # the other evaluations work on per-head maps
        def attend_qkv(self, qkv):
            B, H, W = qkv.shape[:3]
            q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
            return self.attend(q, k, v).reshape(B, -1, H, W).permute(0, 2, 3, 1)

    class Im2Col(PerHeadMaps):
        plain = False

        def attend(self, q, k, v):
            convs = None if self.plain else [self.neighbour_conv()]
            return slide_attention_unfold(q * self.scale, k, v, self.relative_position_bias_table,
                                          self.kernel_size, convs)

    class Im2ColPlain(Im2Col):
        plain = True

    class Copies(PerHeadMaps):
        def attend(self, q, k, v):
            convs = ([(self.merged.weight, self.merged.bias)] if self.deploy else
                     [(self.shift.weight, self.shift.bias), (self.deform.weight, self.deform.bias)])
            return slide_attention_copies(q * self.scale, k, v, self.relative_position_bias_table,
                                          self.kernel_size, convs)

    torch.manual_seed(0)
    if name == 'swin_window':
        return WindowAttention(DIM, HEADS, WINDOW)
    base = name.replace('_baseline', '')
    cls = dict(slide_deploy=SlideAttention, slide_train=SlideAttention, k2_copies=Copies,
               im2col=Im2Col, im2col_plain=Im2ColPlain)[base]
    if name.endswith('_baseline'):
        cls = BASELINE.SlideAttention
    layer = cls(DIM, HEADS, KERNEL)
    if base == 'slide_deploy' or (name == 'k2_copies' and which == 'forward'):
        layer.switch_to_deploy()
    return layer


class Segmentor(torch.nn.Module):
    """A whole mmseg segmentor as one module: forward = decode logits (eval), or in training
    the decode and auxiliary heads' logits (what their losses take)."""

    def __init__(self, config: str):
        super().__init__()
        from mmengine.config import Config
        from mmengine.model import revert_sync_batchnorm
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')  # the data preprocessor and heads are mmseg's
        cfg = Config.fromfile(config)
        cfg.model.pop('pretrained', None)
        cfg.model.backbone.pop('init_cfg', None)
        self.model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN needs a process group

    def switch_to_deploy(self):
        from vitext.models.deploy import switch_to_deploy
        switch_to_deploy(self.model)

    def forward(self, x):
        feats = self.model.extract_feat(x)
        outs = [self.model.decode_head(feats)]
        if self.training and getattr(self.model, 'auxiliary_head', None) is not None:
            outs.append(self.model.auxiliary_head(feats))
        return outs


def make_backbone(name: str):
    torch.manual_seed(0)
    base = name.replace('_baseline', '')
    if base == 'upernet_slide_swin_t':
        import vitext  # noqa: F401  registers the Slide backbones
        model = Segmentor(osp.join(ROOT, 'configs/slide/upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py'))
    elif base == 'upernet_swin_t':
        import mmseg
        model = Segmentor(osp.join(osp.dirname(mmseg.__file__), '.mim/configs/swin/swin-tiny-'
                                   'patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'))
    elif base in ('slide_swin_t', 'slide_swin_s', 'slide_pvt_t'):
        from vitext.models.backbones import SlidePVT, SlideSwinTransformer
        model = (SlidePVT('tiny') if base == 'slide_pvt_t'
                 else SlideSwinTransformer(base[-1].replace('t', 'tiny').replace('s', 'small')))
    elif base in ('swin_t', 'swin_s'):
        from mmseg.models.backbones import SwinTransformer
        model = SwinTransformer(embed_dims=96, depths=(2, 2, 6 if base == 'swin_t' else 18, 2),
                                num_heads=(3, 6, 12, 24), window_size=7, drop_path_rate=0.2)
    else:
        from mmdet.models.backbones import PyramidVisionTransformer
        model = PyramidVisionTransformer(num_layers=(2, 2, 2, 2), num_heads=(1, 2, 5, 8),
                                         mlp_ratios=(8, 8, 4, 4), sr_ratios=(8, 4, 2, 1))
    if name.endswith('_baseline'):  # the same model with the older slide attention layer
        from vitext.ops.slide import SlideAttention
        for module in model.modules():
            if isinstance(module, SlideAttention):
                module.__class__ = BASELINE.SlideAttention
    return model


def make_pass(kind: str, name: str, which: str, side: int, device: str):
    if kind == 'layer':
        model = make_layer(name, which)
        x = torch.randn(1, side, side, DIM, device=device)
    else:
        model = make_backbone(name)
        # Whole UperNets train with BN in the pyramid pooling's 1x1 branch: it needs a batch of
        # 2 (mmseg's own schedule uses 2 images per GPU).
        batch = 2 if name.startswith('upernet') else 1
        x = torch.randn(batch, 3, side, side, device=device)
        if which == 'forward' and 'slide' in name:
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
    if BASELINE is not None:
        slide = [n for n in names if n.startswith(('slide', 'upernet_slide'))]
        names = [*names, *(n + '_baseline' for n in slide)]
    fns = {n: make_pass(kind, n, which, side, args.device) for n in names}
    times = interleaved_times(fns, args.device, warmup=1, repeats=args.repeats)
    del fns
    extra = ['--baseline-slide', args.baseline_slide] if args.baseline_slide else []
    for n in names:
        mem = (probe_in_subprocess(__file__, [kind, n, which, str(side), '--device', args.device,
                                              *extra]) if args.device == 'cpu'
               else peak_memory_mb(make_pass(kind, n, which, side, args.device), args.device))
        results.setdefault(f'{kind} {side}', {}).setdefault(which, {})[n] = dict(
            time=times[n], peak_memory_mb=mem)


def swin_pvt_ratio_targets(results: dict) -> dict:
    """The slide layer's and the Slide models' time and memory as ratios to Swin's / PVT's, with
    their targets: the ratio now, and with the baseline slide layer where measured."""
    rows = {}

    def add(label, key, which, name, ref, field, target):
        row = results.get(key, {}).get(which, {})
        if name not in row:
            return

        def ratio(n):
            if n not in row:
                return '-'
            if field == 'time':
                return f'{row[n]["time"]["median_s"] / row[ref]["time"]["median_s"]:.2f}x'
            return f'{row[n]["peak_memory_mb"] / row[ref]["peak_memory_mb"]:.2f}x'
        rows[label] = dict(now=ratio(name), baseline=ratio(name + '_baseline'), target=target)

    for key in results:
        if key.startswith('layer 128'):
            add('slide layer (deploy) / Swin 7x7 window attention, 128x128x96, forward', key,
                'forward', 'slide_deploy', 'swin_window', 'time', '<= 1.8x')
            add('slide layer (train) / Swin window attention, 128x128x96, forward+backward',
                key, 'forward_backward', 'slide_train', 'swin_window', 'time', '-')
        if key.startswith('backbone'):
            for slide, parent in PARENT.items():
                target = slide in ('slide_swin_t', 'slide_pvt_t')
                add(f'{slide} / {parent}, forward (deploy form)', key, 'forward', slide, parent,
                    'time', '<= 1.10x' if target else '-')
                add(f'{slide} / {parent}, forward+backward', key, 'forward_backward', slide,
                    parent, 'time', '<= 1.25x' if target else '-')
                add(f'{slide} / {parent}, forward+backward peak memory', key,
                    'forward_backward', slide, parent, 'memory', '<= 1.25x' if target else '-')
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='*', default=[128, 56],
                        help='H = W of the stage-1 map (128: 512-px input, 56: 224-px); none: '
                        'no layer rows')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--backbones', nargs='*', choices=SLIDE_MODELS,
                        help='Slide models to compare with their parents (all if none named)')
    parser.add_argument('--backbone-size', type=int, default=512)
    parser.add_argument('--baseline-slide', metavar='PATH',
                        help='an older vitext/ops/slide.py to measure as *_baseline')
    parser.add_argument('--name', default=None,
                        help='results file name (default slide_attention_<device>)')
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    parser.add_argument('--memory-probe', nargs=4, metavar=('KIND', 'NAME', 'PASS', 'SIDE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    global BASELINE
    if args.baseline_slide:
        BASELINE = load_baseline(args.baseline_slide, 'slide_baseline')
    if args.memory_probe:
        kind, name, which, side = args.memory_probe
        print(peak_memory_mb(make_pass(kind, name, which, int(side), args.device), args.device))
        return

    env = environment(args.device)
    results = {}
    steps = [('layer', names, which, side) for side in args.sizes
             for names, which in ((FORWARD, 'forward'), (FORWARD_BACKWARD, 'forward_backward'))]
    if args.backbones is not None:
        steps += [('backbone', (slide, PARENT[slide]), which, args.backbone_size)
                  for slide in args.backbones or SLIDE_MODELS
                  for which in ('forward', 'forward_backward')]
    path = write_report(args, env, results)
    for kind, names, which, side in steps:
        measure(kind, names, which, side, args, results)
        # Written after every measurement: a run that crashes or is stopped keeps what it has.
        path = write_report(args, env, results)
    print(open(path).read())


def write_report(args, env: dict, results: dict) -> str:
    table = [['what', 'pass', 'variant', 'median time (s)', 'min-max (s)', 'time / reference',
              'peak memory (MB)', 'memory / reference']]
    summary = {}
    for key, passes in results.items():
        for which, row in passes.items():
            for n, r in row.items():
                # Reference: the Im2Col form for layers, the parent model for backbones.
                ref = row.get('im2col') or row[PARENT.get(n.replace('_baseline', ''), n)]
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
    targets = swin_pvt_ratio_targets(results)
    lines = ['| ratio to Swin / PVT | baseline | now | target |', '| --- | --- | --- | --- |']
    lines += [f'| {k} | {v["baseline"]} | {v["now"]} | {v["target"]} |' for k, v in targets.items()]
    payload = dict(
        description='Layers: reference = im2col (the same layer by F.unfold); backbones: '
        'reference = the parent model (slide_swin_t vs mmseg Swin-T, slide_pvt_t vs mmdet '
        'PVT-T, slide_swin_s vs mmseg Swin-S, upernet_slide_swin_t vs mmseg\'s Swin-T UperNet; '
        'Slide models run deploy form in the forward pass). "time / reference" < 1 is '
        f'faster. *_baseline: {args.baseline_slide or "not measured"}.\n\n'
        + '\n'.join(lines) + f'\n\nSummary: {summary}',
        environment=env, settings=vars(args), results=results, summary=summary,
        swin_pvt_ratio_targets=targets)
    return write_results(args.out, args.name or f'slide_attention_{args.device}', payload, table)


if __name__ == '__main__':
    main()
