"""Token mixers at the sizes a 512x512 segmentation batch gives them, against what a user would
pick instead, each against its memory-bandwidth floor.

python benchmarks/bench_gpu_ops.py [--batch 16] [--repeats 20] [--out benchmarks/results]
python benchmarks/bench_gpu_ops.py --dry-run    # CPU, tiny sizes: checks the wiring

Layers (projections included, same width, same input), forward and forward+backward:
  slide_train   SlideAttention, shift + deformed convs (training form), k = 3
  slide_deploy  the same merged into one conv (inference form; forward only)
  swin_window   Swin's 7x7 window attention through SDPA (flash / memory-efficient kernels)
  flex_nbhd     plain 3x3 neighbourhood attention through torch.nn.attention.flex_attention
                with a block mask (compiled on CUDA): what a user would write instead
at Slide-Swin-T's stage 1 (128x128 tokens, 96 channels, 3 heads) and stage 2 (64x64, 192, 6);
  aft_conv      AFTConv (384 heads, k 11) vs sdpa (6-head global attention, SDPA), ViT-S width
at 64x64 and 128x128 tokens.
Floor: the bytes of q, k, v and the output (read + written once) over the bandwidth of a
device-to-device copy measured in the same run.
"""
import argparse
import os.path as osp
import sys
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import environment, interleaved_times, sync, write_results  # noqa: E402


class FlexNeighbourhoodAttention(nn.Module):
    """k x k neighbourhood attention on a (B, H, W, C) map through flex_attention (no borders:
    a query near the edge attends to the neighbours that exist)."""

    def __init__(self, dim: int, num_heads: int, kernel_size: int = 3, compiled: bool = True):
        super().__init__()
        from torch.nn.attention.flex_attention import flex_attention
        self.num_heads, self.kernel_size = num_heads, kernel_size
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attend = torch.compile(flex_attention) if compiled else flex_attention
        self._masks: Dict[Tuple[int, int, str], object] = {}

    def block_mask(self, H: int, W: int, device: torch.device):
        from torch.nn.attention.flex_attention import create_block_mask
        key = (H, W, str(device))
        if key not in self._masks:
            radius = self.kernel_size // 2

            def neighbours(b, h, q_idx, kv_idx):
                return (((q_idx // W) - (kv_idx // W)).abs() <= radius) & \
                    (((q_idx % W) - (kv_idx % W)).abs() <= radius)
            self._masks[key] = create_block_mask(neighbours, None, None, H * W, H * W,
                                                 device=device)
        return self._masks[key]

    def forward(self, x):
        B, H, W, C = x.shape
        qkv = self.qkv(x).view(B, H * W, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        y = self.attend(q, k, v, block_mask=self.block_mask(H, W, x.device))
        return self.proj(y.transpose(1, 2).reshape(B, H, W, C))


def measured_bandwidth(device: str) -> float:
    """Bytes/s of a large device-to-device copy (read + write)."""
    n = (1 << 28) if device.startswith('cuda') else (1 << 24)
    src, dst = torch.empty(n, device=device), torch.empty(n, device=device)
    times = interleaved_times({'copy': lambda: dst.copy_(src)}, device, warmup=3, repeats=10)
    return 2 * n * 4 / times['copy']['median_s']


def slide_layers(dim: int, heads: int, device: str, with_flex: bool, compiled: bool):
    from vitext.ops.slide import SlideAttention
    from vitext.ops.window import WindowAttention
    torch.manual_seed(0)
    train = SlideAttention(dim, heads, 3)
    deploy = SlideAttention(dim, heads, 3)
    deploy.load_state_dict(train.state_dict())
    deploy.switch_to_deploy()
    layers = dict(slide_train=train, slide_deploy=deploy, swin_window=WindowAttention(dim, heads, 7))
    if with_flex:
        layers['flex_nbhd'] = FlexNeighbourhoodAttention(dim, heads, 3, compiled)
    return {name: layer.to(device) for name, layer in layers.items()}


def aft_layers(dim: int, device: str):
    from vitext.models.layers import Attention
    from vitext.ops.aft import AFTConv
    torch.manual_seed(0)
    return {'aft_conv': AFTConv(dim, dim, 11).to(device), 'sdpa': Attention(dim, 6).to(device)}


def run_case(case: str, layers: Dict[str, nn.Module], make_input: Callable, call: Callable,
             device: str, dtype: torch.dtype, repeats: int, io_bytes: int,
             bandwidth: float) -> List[dict]:
    # the deploy form is inference only; flex_attention has no CPU backward
    forward_only = {'slide_deploy'} | (set() if device.startswith('cuda') else {'flex_nbhd'})
    rows = []
    for pass_name in ('forward', 'forward+backward'):
        fns = {}
        for name, layer in layers.items():
            if pass_name == 'forward+backward' and name in forward_only:
                continue
            x = make_input().requires_grad_(pass_name != 'forward')

            def fn(layer=layer, x=x, backward=pass_name != 'forward'):
                with torch.autocast(device.split(':')[0], dtype=dtype,
                                    enabled=dtype != torch.float32):
                    if backward:
                        call(layer, x).float().sum().backward()
                    else:
                        with torch.no_grad():
                            call(layer, x)
            fns[name] = fn
        times = interleaved_times(fns, device, warmup=3, repeats=repeats)
        floor_s = io_bytes * (3 if pass_name != 'forward' else 1) / bandwidth
        for name, t in times.items():
            rows.append(dict(case=case, pass_=pass_name, layer=name, median_s=t['median_s'],
                             floor_s=floor_s, over_floor=t['median_s'] / floor_s))
            print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--dtype', default='bf16', choices=['fp32', 'fp16', 'bf16'])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dry-run', action='store_true', help='tiny sizes, any device')
    parser.add_argument('--out', default=osp.join(ROOT, 'benchmarks', 'results'))
    args = parser.parse_args(argv)
    dtype = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)[args.dtype]
    cuda = args.device.startswith('cuda')
    if args.dry_run:
        args.batch, args.repeats = 1, 2
        dtype = torch.float32 if not cuda else dtype
    scale = 8 if args.dry_run else 1
    # flex_attention compiles on CUDA; on CPU its eager form materialises the scores (tiny only)
    with_flex = hasattr(F, 'scaled_dot_product_attention') and (cuda or args.dry_run)
    bandwidth = measured_bandwidth(args.device)
    elem = torch.finfo(dtype).bits // 8
    rows: List[dict] = []
    for tokens, dim, heads in ((128, 96, 3), (64, 192, 6)):
        side = tokens // scale
        layers = slide_layers(dim, heads, args.device, with_flex, compiled=cuda)
        rows += run_case(f'slide stage {side}x{side}x{dim}', layers,
                         lambda: torch.randn(args.batch, side, side, dim, device=args.device),
                         lambda layer, x: layer(x), args.device, dtype, args.repeats,
                         4 * args.batch * side * side * dim * elem, bandwidth)
    for tokens in (64, 128):
        side, dim = tokens // scale, 384
        rows += run_case(f'aft {side}x{side}x{dim}', aft_layers(dim, args.device),
                         lambda: torch.randn(args.batch, side * side, dim, device=args.device),
                         lambda layer, x, s=side: layer(x, (s, s)), args.device, dtype,
                         args.repeats, 4 * args.batch * side * side * dim * elem, bandwidth)
    table = [['case', 'pass', 'layer', 'median (ms)', 'floor (ms)', 'x floor']]
    table += [[r['case'], r['pass_'], r['layer'], f'{r["median_s"] * 1e3:.3f}',
               f'{r["floor_s"] * 1e3:.3f}', f'{r["over_floor"]:.1f}'] for r in rows]
    device = args.device.split(':')[0]
    name = f'gpu_ops_{device}' + ('_dry_run' if args.dry_run else '')
    payload = dict(description=__doc__.splitlines()[0], environment=environment(args.device),
                   settings=dict(batch=args.batch, repeats=args.repeats, dtype=args.dtype,
                                 bandwidth_gb_s=bandwidth / 1e9), rows=rows)
    sync(args.device)
    print(write_results(args.out, name, payload, table))


if __name__ == '__main__':
    main()
