"""Real-config train steps and inference of vitext's segmentors against the models they replace.

python benchmarks/bench_gpu.py [--pairs slide_swin slide_pvt aft_conv cb_vit]
    [--batch 2 16] [--precision fp32 fp16 bf16] [--steps 50] [--warmup 10] [--repeats 5]
    [--size 512] [--infer-shape 512 2048] [--skip-infer] [--out benchmarks/results]
python benchmarks/bench_gpu.py --dry-run     # CPU, 64x64, batch 2, a few steps: checks the wiring

Pairs (vitext config vs the model it replaces, both built from real configs, no weights):
  slide_swin  UperNet Slide-Swin-T (configs/slide)   vs mmseg's own UperNet Swin-T config
  slide_pvt   Semantic FPN Slide-PVT-T (configs/slide) vs the same with mmdet's PVT-T backbone
  aft_conv    UperNet AFT-conv-S (configs/aft)       vs UperNet DeiT-S (configs/cb, cb_mode none)
  cb_vit      UperNet CB-ViT-S (configs/cb)          vs UperNet ViT-S
Train step = data preprocessing + forward + loss + backward + optimizer step (the config's own
optim_wrapper; fp16 with dynamic loss scaling, bf16 without, through mmengine's
AmpOptimWrapper). The two models of a pair run interleaved, ``--steps`` steps per variant per
repeat, after ``--warmup`` steps; the median step time over all timed steps is reported, and
the peak memory (``torch.cuda.max_memory_allocated``) of a few steps of each variant alone.
Inference: whole image at ``--infer-shape`` and mmseg's sliding window (512 crops, stride 341),
images/s and peak memory, Slide models in training and deploy form.
Results: ``gpu_train_<device>.json/.md`` under ``--out``, the GPU named in the header.
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import environment, sync, write_results  # noqa: E402

from vitext.analysis.complexity import count_parameters  # noqa: E402

PVT_V1_TINY = dict(type='mmdet.PyramidVisionTransformer', num_layers=[2, 2, 2, 2],
                   embed_dims=64, num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                   sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), drop_path_rate=0.1,
                   init_cfg=None)

# name: (vitext config, baseline config, baseline backbone override or None)
PAIRS = {
    'slide_swin': ('configs/slide/upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py',
                   'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_'
                   'ade20k-512x512.py', None),
    'slide_pvt': ('configs/slide/fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py',
                  'configs/slide/fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py', PVT_V1_TINY),
    'aft_conv': ('configs/aft/upernet_aftconv-s-384h-k11_8xb2-160k_ade20k-512x512.py',
                 'configs/cb/upernet_vit-s_8xb2-160k_ade20k-512x512.py', None),
    'cb_vit': ('configs/cb/upernet_cbvit-s_8xb2-160k_ade20k-512x512.py',
               'configs/cb/upernet_vit-s_8xb2-160k_ade20k-512x512.py', None),
}
PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def load_cfg(path: str, size: int, backbone: Optional[dict]):
    from mmengine.config import Config
    if '::' in path:  # a config shipped in an installed package, e.g. mmseg::swin/...
        from mmengine.utils import get_installed_path
        package, rel = path.split('::')
        path = osp.join(get_installed_path(package), '.mim', 'configs', rel)
    else:
        path = osp.join(ROOT, path)
    cfg = Config.fromfile(path)
    if backbone is not None:
        cfg.model.backbone = dict(backbone)
    cfg.model.pop('pretrained', None)
    cfg.model.backbone['init_cfg'] = None  # timing needs no weights (no downloads either)
    cfg.model.data_preprocessor['size'] = (size, size)
    return cfg


def build_segmentor(cfg, device: str):
    import mmdet.models  # noqa: F401 (registers PVT for the 'mmdet.' baseline)
    import mmseg.models  # noqa: F401
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import vitext  # noqa: F401
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model).to(device)


def build_optim_wrapper(model, cfg, precision: str):
    from mmengine.optim import build_optim_wrapper as build
    wrapper_cfg = dict(cfg.optim_wrapper)
    if precision != 'fp32':
        wrapper_cfg.update(type='AmpOptimWrapper', dtype=precision.replace('fp', 'float')
                           .replace('bf16', 'bfloat16'),
                           loss_scale='dynamic' if precision == 'fp16' else 1.0)
    return build(model, wrapper_cfg)


def make_batch(batch: int, size: int, num_classes: int, device: str) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=[x.to(device) for x in inputs], data_samples=samples)


def _num_classes(cfg) -> int:
    return cfg.model.decode_head['num_classes']


def timed_steps(step: Callable[[], None], device: str, n: int) -> List[float]:
    out = []
    for _ in range(n):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        out.append(time.perf_counter() - start)
    return out


def peak_mb(step: Callable[[], None], device: str, n: int = 3) -> Optional[float]:
    if not device.startswith('cuda'):
        return None  # CPU peak memory is measured by the CPU benchmarks (fresh processes)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def bench_train_pair(name: str, args) -> List[dict]:
    vit_path, base_path, base_backbone = PAIRS[name]
    rows = []
    cfgs = {'vitext': load_cfg(vit_path, args.size, None),
            'baseline': load_cfg(base_path, args.size, base_backbone)}
    for precision in args.precision:
        for batch in args.batch:
            steps, result = {}, dict(pair=name, precision=precision, batch=batch)
            try:
                for role, cfg in cfgs.items():
                    model = build_segmentor(cfg, args.device).train()
                    wrapper = build_optim_wrapper(model, cfg, precision)
                    data = make_batch(batch, args.size, _num_classes(cfg), args.device)
                    steps[role] = (lambda m=model, w=wrapper, d=data: m.train_step(d, w))
                    result[f'{role}_type'] = type(model.backbone).__name__
                    result[f'{role}_params_m'] = count_parameters(model) / 1e6
                for fn in steps.values():
                    timed_steps(fn, args.device, args.warmup)
                times: Dict[str, List[float]] = {role: [] for role in steps}
                for _ in range(args.repeats):
                    for role, fn in steps.items():
                        times[role] += timed_steps(fn, args.device, args.steps)
                for role, fn in steps.items():
                    result[f'{role}_step_s'] = statistics.median(times[role])
                    result[f'{role}_peak_mb'] = peak_mb(fn, args.device)
                result['time_ratio'] = result['vitext_step_s'] / result['baseline_step_s']
                if result['vitext_peak_mb'] is not None:
                    result['memory_ratio'] = result['vitext_peak_mb'] / result['baseline_peak_mb']
            except torch.cuda.OutOfMemoryError as err:
                result['error'] = f'out of memory: {str(err).splitlines()[0]}'
            finally:
                steps.clear()
                if args.device.startswith('cuda'):
                    torch.cuda.empty_cache()
            rows.append(result)
            print(result, flush=True)
    return rows


def bench_inference(name: str, args) -> List[dict]:
    from vitext.models.deploy import switch_to_deploy
    vit_path, base_path, base_backbone = PAIRS[name]
    h, w = args.infer_shape
    rows = []
    variants = [('vitext', load_cfg(vit_path, args.size, None), False),
                ('baseline', load_cfg(base_path, args.size, base_backbone), False)]
    if name.startswith('slide'):
        variants.insert(1, ('vitext_deploy', variants[0][1], True))
    for mode in ('whole', 'slide'):
        fns, result = {}, dict(pair=name, mode=mode, shape=[h, w])
        for role, cfg, deploy in variants:
            cfg = cfg.copy()
            cfg.model.test_cfg = dict(mode=mode, crop_size=(args.size, args.size),
                                      stride=(args.size * 2 // 3, args.size * 2 // 3))
            model = build_segmentor(cfg, args.device).eval()
            if deploy:
                switch_to_deploy(model)
            image = torch.randn(1, 3, h, w, device=args.device)
            meta = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]

            def fn(m=model, x=image, metas=meta):
                with torch.no_grad():
                    m.inference(x, metas)
            fns[role] = fn
        for fn in fns.values():
            timed_steps(fn, args.device, max(1, args.warmup // 5))
        times = {role: [] for role in fns}
        for _ in range(args.repeats):
            for role, fn in fns.items():
                times[role] += timed_steps(fn, args.device, max(1, args.steps // 5))
        for role, fn in fns.items():
            result[f'{role}_images_per_s'] = 1 / statistics.median(times[role])
            result[f'{role}_peak_mb'] = peak_mb(fn, args.device, n=1)
        rows.append(result)
        print(result, flush=True)
        fns.clear()
    return rows


def _fmt(value, spec='.3f') -> str:
    return '-' if value is None else format(value, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument('--batch', nargs='+', type=int, default=[2, 16])
    parser.add_argument('--precision', nargs='+', default=['fp32', 'fp16', 'bf16'],
                        choices=list(PRECISIONS))
    parser.add_argument('--steps', type=int, default=50, help='timed steps per variant per repeat')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--infer-shape', nargs=2, type=int, default=[512, 2048])
    parser.add_argument('--skip-infer', action='store_true')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dry-run', action='store_true',
                        help='64x64, batch 2 (BN needs 2), fp32, 2 steps: checks the wiring on any machine')
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results'))
    args = parser.parse_args(argv)
    if args.dry_run:
        args.size, args.batch, args.steps, args.warmup, args.repeats = 64, [2], 1, 1, 2
        args.infer_shape = [64, 128]
        args.precision = ['fp32'] + (['fp16', 'bf16'] if args.device.startswith('cuda') else [])
    if not args.device.startswith('cuda') and set(args.precision) - {'fp32'}:
        parser.error('fp16/bf16 train steps use mmengine\'s AmpOptimWrapper, which needs CUDA')

    train_rows, infer_rows = [], []
    for name in args.pairs:
        train_rows += bench_train_pair(name, args)
        if not args.skip_infer:
            infer_rows += bench_inference(name, args)

    table = [['pair', 'precision', 'batch', 'vitext step (s)', 'baseline step (s)', 'time ratio',
              'vitext peak (MB)', 'baseline peak (MB)', 'memory ratio']]
    for r in train_rows:
        if 'error' in r:
            table.append([r['pair'], r['precision'], str(r['batch']), r['error'], '', '', '',
                          '', ''])
            continue
        table.append([r['pair'], r['precision'], str(r['batch']), _fmt(r['vitext_step_s'], '.4f'),
                      _fmt(r['baseline_step_s'], '.4f'), _fmt(r['time_ratio']) + 'x',
                      _fmt(r.get('vitext_peak_mb'), '.0f'), _fmt(r.get('baseline_peak_mb'), '.0f'),
                      _fmt(r.get('memory_ratio')) + ('x' if r.get('memory_ratio') else '')])
    for r in infer_rows:
        roles = [k[:-len('_images_per_s')] for k in r if k.endswith('_images_per_s')]
        table.append([r['pair'], f'infer {r["mode"]} {r["shape"][0]}x{r["shape"][1]}', '1'] +
                     ['; '.join(f'{role} {r[role + "_images_per_s"]:.2f} img/s' for role in roles),
                      '', '', '; '.join(f'{role} {_fmt(r[role + "_peak_mb"], ".0f")} MB'
                                        for role in roles), '', ''])
    device = args.device.split(':')[0]
    name = f'gpu_train_{device}' + ('_dry_run' if args.dry_run else '')
    payload = dict(description=__doc__.splitlines()[0], environment=environment(args.device),
                   settings=dict(size=args.size, steps=args.steps, warmup=args.warmup,
                                 repeats=args.repeats, infer_shape=args.infer_shape),
                   train=train_rows, inference=infer_rows)
    print(write_results(args.out, name, payload, table))


if __name__ == '__main__':
    main()
