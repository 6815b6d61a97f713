"""Latency of vitext backbones against the models they replace, in CPU deployment runtimes.

python benchmarks/bench_deploy.py [--size 512] [--repeats 5] [--threads 2]
    [--runtimes eager compile onnxruntime openvino executorch] [--pairs ...] [--parts ...]
    [--profile-onnx] [--quick] [--out benchmarks/results]

Pairs (vitext model vs the model it replaces, each built from the vitext config with the same
neck and head; only the backbone differs; random weights, which do not change the speed):
Slide-Swin-T (deploy form) vs mmseg's SwinTransformer Swin-T, UperNet; Slide-PVT-T (deploy form)
vs mmdet's PyramidVisionTransformer PVT-T, Semantic FPN (mmseg FPN neck + FPNHead); AFT-conv-S
(384 heads, 11x11) vs DeiT-S and CB-ViT-S vs ViT-S, both mmseg's VisionTransformer (d 384,
6 heads, 12 blocks, position table of the 512-px grid as mmseg's ADE20K configs) feeding the same
4-level pyramid (vitext's ViTFeaturePyramid) and UperNet as the vitext config. Parts: the
backbone (for the ViTs: with its pyramid) and the whole segmentor (backbone, neck, decode head:
logits at the input size, batch 1).

For every pair, part and runtime both models are timed interleaved (warm-up, then the two
alternate each repeat); the ratio is vitext's median / the replaced model's median, and its
spread the smallest and largest ratio of one repeat's pair of runs. A runtime that cannot take a
model is recorded with its one-line reason. --profile-onnx also runs each model once with
onnxruntime's profiler and writes the operators that take the most time
(deploy_cpu_profile.md). --quick: 64x64, one repeat, eager and onnxruntime (a test of the script,
not a measurement).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import environment, interleaved_times, load_average, write_results  # noqa: E402

from vitext.analysis import runtimes  # noqa: E402
from vitext.analysis.export import onnxruntime_session  # noqa: E402
from vitext.analysis.runtimes import RuntimeUnavailable, one_line  # noqa: E402

Part = Literal['backbone', 'segmentor']
Runtime = Literal['eager', 'compile', 'onnxruntime', 'openvino', 'executorch']
PARTS: Tuple[Part, ...] = ('backbone', 'segmentor')
RUNTIMES: Tuple[Runtime, ...] = ('onnxruntime', 'executorch', 'eager', 'openvino', 'compile')
# The order of the measurements (under --time-limit-s the last ones may be left out): the
# backbones in the targets' runtimes first, then what a deployment compares most.
STEPS: Tuple[Tuple[Part, Runtime], ...] = (
    ('backbone', 'onnxruntime'), ('backbone', 'executorch'), ('backbone', 'eager'),
    ('segmentor', 'onnxruntime'), ('segmentor', 'eager'), ('backbone', 'openvino'),
    ('backbone', 'compile'), ('segmentor', 'executorch'), ('segmentor', 'openvino'),
    ('segmentor', 'compile'))
RUNTIME_NAMES = dict(eager='PyTorch eager', compile='torch.compile (inductor)',
                     onnxruntime='ONNX Runtime', openvino='OpenVINO',
                     executorch='ExecuTorch-XNNPACK')
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')

SWIN_T = dict(type='SwinTransformer', embed_dims=96, depths=(2, 2, 6, 2),
              num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4, qkv_bias=True,
              drop_path_rate=0.3, patch_norm=True, out_indices=(0, 1, 2, 3),
              pretrain_img_size=224, init_cfg=None)
PVT_T = dict(type='mmdet.PyramidVisionTransformer', num_layers=[2, 2, 2, 2], init_cfg=None)
VIT_S = dict(type='VisionTransformer', img_size=(512, 512), embed_dims=384, num_layers=12,
             num_heads=6, mlp_ratio=4, out_indices=(3, 5, 7, 11), final_norm=False,
             with_cls_token=True, init_cfg=None)


@dataclass(frozen=True)
class Pair:
    """A vitext segmentor config and the backbone it replaces.

    Args:
        vitext: the vitext model's name.
        replaced: the replaced model's name.
        config: the vitext segmentor config (relative to configs/).
        replaced_backbone: the replaced model's backbone config (its neck and head: the config's).
        pyramid: the replaced backbone gives four stride-16 maps that vitext's ViTFeaturePyramid
            turns into strides 4-32, as the vitext backbone does inside.
        target: the largest ratio (vitext / replaced) aimed at, in ``target_runtimes``.
    """
    vitext: str
    replaced: str
    config: str
    replaced_backbone: dict
    pyramid: bool
    target: float


# The targets hold for the backbone in ONNX Runtime and ExecuTorch-XNNPACK.
TARGET_RUNTIMES: Tuple[Runtime, ...] = ('onnxruntime', 'executorch')
PAIRS = {
    'slide_swin_t': Pair('Slide-Swin-T', 'Swin-T',
                         'slide/upernet_slide-swin-t_8xb2-40k_ade20k-512x512.py', SWIN_T,
                         False, 0.90),
    'slide_pvt_t': Pair('Slide-PVT-T', 'PVT-T', 'slide/fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py',
                        PVT_T, False, 0.80),
    'aft_conv_s': Pair('AFT-conv-S', 'DeiT-S',
                       'aft/upernet_aftconv-s-384h-k11_8xb2-40k_ade20k-512x512.py', VIT_S, True,
                       1.00),
    'cb_vit_s': Pair('CB-ViT-S', 'ViT-S', 'cb/upernet_cbvit-s_8xb2-40k_ade20k-512x512.py', VIT_S,
                     True, 1.02),
}
MODELS = ('vitext', 'replaced')


class BackboneWithPyramid(nn.Module):
    """A plain ViT backbone (four maps at the patch stride) followed by vitext's 4-level pyramid,
    as vitext's AFT-ViT/CB-ViT compute it inside the backbone."""

    def __init__(self, backbone: nn.Module, embed_dims: int, patch_size: int):
        super().__init__()
        from vitext.models.layers.pyramid import ViTFeaturePyramid
        self.backbone = backbone
        self.pyramid = ViTFeaturePyramid(embed_dims, patch_size, norm_cfg=dict(type='BN'))

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        return self.pyramid(self.backbone(images))


def build_pair_model(pair: Pair, which: str, part: Part) -> nn.Module:
    """The vitext model (deploy form) or the replaced one as images -> tensors, in eval mode.

    Args:
        pair: the compared models.
        which: 'vitext' or 'replaced'.
        part: 'backbone' (its output maps) or 'segmentor' (logits at the input size).
    """
    from vitext.analysis.model_from_config import TensorForward, build_model
    from vitext.models.deploy import switch_to_deploy
    options = None if which == 'vitext' else {
        'model.backbone': dict(_delete_=True, **pair.replaced_backbone)}
    torch.manual_seed(0)
    model, scope = build_model(osp.join(CONFIGS, pair.config), cfg_options=options)
    if which == 'vitext':
        switch_to_deploy(model)
    elif pair.pyramid:
        dims, patch = pair.replaced_backbone['embed_dims'], 16
        model.backbone = BackboneWithPyramid(model.backbone, dims, patch).eval()
    return model.backbone if part == 'backbone' else TensorForward(model, scope)


def build_runner(runtime: Runtime, module: nn.Module, example: Tensor, workdir: str,
                 threads: int) -> Callable[[], object]:
    """A call that runs ``module`` on ``example`` in ``runtime`` (torch.compile compiles on the
    first call).

    Raises:
        RuntimeUnavailable: the runtime is not installed or cannot take ``module``.
    """
    if runtime in ('eager', 'compile'):
        forward = module if runtime == 'eager' else torch.compile(module)

        def run():
            with torch.no_grad():
                return forward(example)
        return run
    image_to_outputs = runtimes.build_runner(runtime, module, example, workdir, threads)
    return lambda: image_to_outputs(example)


def first_run_seconds(run: Callable[[], object], runtime: Runtime) -> float:
    """Run once (the warm-up; torch.compile compiles here) and return its seconds.

    Raises:
        RuntimeUnavailable: the run failed (e.g. inductor or a runtime lacking an operator).
    """
    start = time.perf_counter()
    try:
        run()
    except Exception as error:
        raise RuntimeUnavailable(f'{runtime} failed to run the model: {one_line(error)}') \
            from error
    return time.perf_counter() - start


def ratio_summary(times: Dict[str, dict]) -> dict:
    """vitext / replaced: the ratio of the medians, and the range of per-repeat ratios."""
    per_repeat = [a / b for a, b in zip(times['vitext']['runs'], times['replaced']['runs'])]
    return dict(ratio=times['vitext']['median_s'] / times['replaced']['median_s'],
                ratio_min=min(per_repeat), ratio_max=max(per_repeat))


def measure(pair: Pair, part: Part, runtime: Runtime, size: int, threads: int, warmup: int,
            repeats: int) -> dict:
    """Both models of ``pair`` in ``runtime``, interleaved after each one's first run (its
    warm-up, timed alone as first_run_s) and ``warmup`` more: {vitext, replaced: times or
    {unavailable: reason}, ratio, ratio_min, ratio_max (where both ran), load_average}."""
    example = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    runners, entry = {}, dict(load_average=load_average())
    with tempfile.TemporaryDirectory() as workdir:
        for which in MODELS:
            module = build_pair_model(pair, which, part)
            target = osp.join(workdir, which)
            os.makedirs(target)
            try:
                run = build_runner(runtime, module, example, target, threads)
                entry[which] = dict(first_run_s=first_run_seconds(run, runtime))
                runners[which] = run
            except RuntimeUnavailable as error:
                entry[which] = dict(unavailable=str(error))
        for which, times in interleaved_times(runners, 'cpu', warmup, repeats).items():
            entry[which].update(times)
    if len(runners) == len(MODELS):
        entry.update(ratio_summary(entry))
    return entry


def onnx_operator_times(module: nn.Module, example: Tensor, workdir: str, threads: int,
                        runs: int) -> Dict[str, float]:
    """Milliseconds per run spent in each ONNX operator type (onnxruntime's profiler, summed
    over the graph's nodes of that type, averaged over ``runs`` after one warm-up run)."""
    import json

    path = runtimes.export_onnx_file(module, example, workdir)
    session = onnxruntime_session(path, threads, profile_prefix=osp.join(workdir, 'profile'))
    feed = {session.get_inputs()[0].name: example.numpy()}
    for _ in range(runs + 1):
        session.run(None, feed)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    per_run: Dict[str, float] = {}
    # Kernel events of every run; the warm-up run's share is removed by scaling.
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
            op = event['args']['op_name']
            per_run[op] = per_run.get(op, 0.) + event['dur'] / 1e3 / (runs + 1)
    return per_run


def profile_missed(results: dict, names: List[str], size: int, threads: int, runs: int,
                   top: int = 12) -> Optional[str]:
    """Markdown: for each pair that misses its target in ONNX Runtime, the operator types that
    take the most time in the vitext backbone and the replaced one; None if none misses."""
    missed = [n for n in names
              if results[n].get('backbone', {}).get('onnxruntime', {}).get('ratio', 0.)
              > PAIRS[n].target]
    if not missed:
        return None
    example = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    sections = []
    for name in missed:
        pair, times = PAIRS[name], {}
        for which in MODELS:
            with tempfile.TemporaryDirectory() as workdir:
                times[which] = onnx_operator_times(build_pair_model(pair, which, 'backbone'),
                                                   example, workdir, threads, runs)
        total = {w: sum(t.values()) for w, t in times.items()}
        ops = sorted(set(times['vitext']) | set(times['replaced']),
                     key=lambda op: -max(t.get(op, 0.) for t in times.values()))
        rows = [f'| {op} | {times["vitext"].get(op, 0.):.2f} | '
                f'{times["replaced"].get(op, 0.):.2f} |' for op in ops[:top]]
        sections.append(
            f'## {pair.vitext} vs {pair.replaced} (backbone)\n\n'
            f'Ratio {results[name]["backbone"]["onnxruntime"]["ratio"]:.3f} (target '
            f'<= {pair.target:.2f}). Operator kernel time per run: {total["vitext"]:.1f} ms vs '
            f'{total["replaced"]:.1f} ms.\n\n| ONNX operator | {pair.vitext} (ms/run) | '
            f'{pair.replaced} (ms/run) |\n| --- | --- | --- |\n' + '\n'.join(rows) + '\n')
    return '\n'.join(sections)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``. Returns the JSON payload.
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=512, help='image side (pixels)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=0,
                        help='untimed runs after the first run (itself untimed)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runtimes', nargs='+', choices=RUNTIMES,
                        help=f'default: all ({" ".join(RUNTIMES)}); with --quick eager onnxruntime')
    parser.add_argument('--pairs', nargs='+', choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS))
    parser.add_argument('--quick', action='store_true',
                        help='64x64, one repeat, eager and onnxruntime (a test run)')
    parser.add_argument('--time-limit-s', type=float, default=0.,
                        help='start no measurement after this many seconds (recorded as not '
                             'measured); 0: no limit')
    parser.add_argument('--profile-onnx', type=int, default=0, metavar='RUNS',
                        help='profile RUNS onnxruntime runs of each pair that misses its target')
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.repeats = 64, 1
    args.runtimes = args.runtimes or (['eager', 'onnxruntime'] if args.quick else list(RUNTIMES))
    torch.set_num_threads(args.threads)
    env = environment('cpu')
    env.update(runtime_versions())
    results: dict = {name: {part: {} for part in args.parts} for name in args.pairs}
    start = time.monotonic()
    for part, runtime in STEPS:
        if part in args.parts and runtime in args.runtimes:
            for name in args.pairs:
                if args.time_limit_s and time.monotonic() - start > args.time_limit_s:
                    results[name][part][runtime] = dict(
                        not_measured=f'the run\'s time limit ({args.time_limit_s:.0f} s) was '
                                     'reached first')
                else:
                    results[name][part][runtime] = measure(
                        PAIRS[name], part, runtime, args.size, args.threads, args.warmup,
                        args.repeats)
                # written after every measurement: a run cut short keeps what it measured
                payload = dict(description=description(args), environment=env,
                               settings=vars(args),
                               pairs={n: vars(PAIRS[n]) for n in args.pairs}, results=results,
                               targets=targets(results, args.pairs))
                path = write_results(args.out, 'deploy_cpu', payload,
                                     table(results, args.pairs))
    plot(results, args.pairs, osp.join(args.out, 'deploy_cpu.png'))
    print(open(path).read())
    if args.profile_onnx:
        profile = profile_missed(results, args.pairs, args.size, args.threads, args.profile_onnx)
        with open(osp.join(args.out, 'deploy_cpu_profile.md'), 'w') as f:
            f.write(f'# deploy_cpu_profile\n\nonnxruntime {env.get("onnxruntime")} profiler, '
                    f'{args.size}x{args.size}, {args.threads} threads, {args.profile_onnx} runs '
                    f'after one warm-up.\n\n' + (profile or 'Every pair meets its target in '
                                                   'ONNX Runtime.\n'))
    return payload


def plot(results: dict, names: List[str], path: str) -> None:
    """One panel per pair: the ratio per runtime for the backbone and the segmentor (bars at
    the median ratio, whiskers over the per-repeat range), the target and 1.0 as lines."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        pair = PAIRS[name]
        shown = [r for r in RUNTIMES if any(r in entries for entries in results[name].values())]
        for offset, color, (part, entries) in zip((-0.2, 0.2), ('tab:blue', 'tab:orange'),
                                                  results[name].items()):
            got = [(shown.index(r), e) for r, e in entries.items() if 'ratio' in e]
            if not got:
                continue
            ratios = [e['ratio'] for _, e in got]
            spread = [[e['ratio'] - e['ratio_min'] for _, e in got],
                      [e['ratio_max'] - e['ratio'] for _, e in got]]
            ax.bar([x + offset for x, _ in got], ratios, width=0.4, yerr=spread, capsize=3,
                   color=color, label=part)
        ax.set_xlim(-0.8, len(shown) - 0.2)
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels([RUNTIME_NAMES[r].split(' ')[0] for r in shown], rotation=30,
                           fontsize=8)
        ax.axhline(1., color='grey', linewidth=0.8)
        ax.axhline(pair.target, color='red', linestyle='--', linewidth=1,
                   label=f'target {pair.target:.2f}')
        ax.set_title(f'{pair.vitext} / {pair.replaced}', fontsize=10)
        ax.set_ylabel('latency ratio (vitext / replaced)')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def runtime_versions() -> Dict[str, str]:
    """The installed version of each runtime's package (absent ones left out)."""
    from importlib import metadata
    versions = {}
    for package in ('onnx', 'onnxruntime', 'openvino', 'executorch'):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def description(args: argparse.Namespace) -> str:
    return (f'Latency at {args.size}x{args.size}, batch 1, {args.threads} threads, median of '
            f'{args.repeats} interleaved repeats after {args.warmup} warm-up run(s); ratio = '
            'vitext median / replaced median in the same runtime and run (range: per-repeat '
            'ratios). Targets (backbone, ONNX Runtime and ExecuTorch-XNNPACK): '
            + ', '.join(f'{p.vitext} <= {p.target:.2f}x {p.replaced}' for p in PAIRS.values())
            + '. Random weights; vitext models in deploy form.')


def targets(results: dict, names: List[str]) -> Dict[str, dict]:
    """Each pair's target in each target runtime: the ratio and met / missed / not measured."""
    out = {}
    for name in names:
        for runtime in TARGET_RUNTIMES:
            entry = results[name].get('backbone', {}).get(runtime, {})
            ratio = entry.get('ratio')
            out[f'{name} {runtime}'] = dict(
                target=PAIRS[name].target, ratio=ratio,
                status='not measured' if ratio is None else
                'met' if ratio <= PAIRS[name].target else 'missed')
    return out


def table(results: dict, names: List[str]) -> List[List[str]]:
    rows = [['pair', 'part', 'runtime', 'vitext median (s)', 'replaced median (s)',
             'ratio (range)', 'target']]
    for name in names:
        pair = PAIRS[name]
        for part, runtimes in results[name].items():
            for runtime in (r for r in RUNTIMES if r in runtimes):
                entry = runtimes[runtime]
                if 'not_measured' in entry:
                    times = ['not measured'] * len(MODELS)
                else:
                    times = [f'{entry[w]["median_s"]:.4f}' if 'median_s' in entry[w] else
                             f'n/a: {entry[w]["unavailable"]}' for w in MODELS]
                ratio = (f'{entry["ratio"]:.3f} ({entry["ratio_min"]:.3f}-'
                         f'{entry["ratio_max"]:.3f})' if 'ratio' in entry else 'n/a')
                goal = ''
                if part == 'backbone' and runtime in TARGET_RUNTIMES:
                    goal = (f'<= {pair.target:.2f}: '
                            + ('not measured' if 'ratio' not in entry else
                               'met' if entry['ratio'] <= pair.target else 'missed'))
                rows.append([f'{pair.vitext} vs {pair.replaced}', part, RUNTIME_NAMES[runtime],
                             *times, ratio, goal])
    return rows


if __name__ == '__main__':
    main()
