"""One slide attention layer in the CPU deployment runtimes, in each exported form it could take.

python benchmarks/bench_slide_export.py [--forms ...] [--shapes ...] [--runtimes onnxruntime
    executorch] [--repeats 7] [--threads 2] [--out benchmarks/results]

A deploy-form ``SlideAttention`` layer (qkv and output projections included), input (1, H, W, C)
as the backbones give it, is exported (ONNX: ``torch.onnx.export(dynamo=True)`` run by ONNX
Runtime; ExecuTorch: ``torch.export`` lowered to XNNPACK; both by ``vitext.analysis.runtimes``)
with its attention recorded in each form below, all with the same weights, at the shapes of the
backbones' slide stages. Every form is the same function (the largest difference from PyTorch
eager is reported); forms and the attention layers the Slide models replace are timed
interleaved, median of --repeats.

Forms (what ``SlideAttention.attend_qkv`` could record):
  per_head_maps   qkv permuted to per-head maps (B, heads, d, H, W), vitext.ops.slide_attention
                  (k^2 shifted views of the padded-width grid, per shift small matmuls), back
  copies          the paper's form on per-head maps: one grouped conv makes the k^2 neighbour
                  maps of K and of V, Mul, ReduceSum, Softmax over k^2
  tokens_loop     token layout (B, H, W, heads, d): k^2 slices of the padded K and V maps,
                  per shift Mul + MatMul (d x k^2) for the logits, MatMul (k^2 x d) + Mul + Add
                  for the output, each matmul one bmm over the rows (XNNPACK takes it):
                  vitext.ops.slide_attention_tokens, the recorded form
  tokens_gemm     token layout, the k^2 shifted views stacked: logits by ONE MatMul of the k^2
                  products q*K_p (k^2 d x k^2), output weights by ONE MatMul (k^2 x k^2 d), Mul
                  with the stacked V views, ReduceSum
Replaced layers at the same shape (projections included): swin_window / swin_shifted (mmseg's
ShiftWindowMSA, window 7, shift 0 / 3), pvt_sr (mmdet's PVT SpatialReductionAttention with the
stage's sr ratio).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import environment, interleaved_times, load_average, write_results  # noqa: E402

from vitext.analysis import runtimes  # noqa: E402
from vitext.analysis.runtimes import RuntimeUnavailable  # noqa: E402
from vitext.ops.export_mode import recording_graph  # noqa: E402
from vitext.ops.slide import (SlideAttention, slide_attention,  # noqa: E402
                              slide_attention_copies, slide_attention_tokens)

# (backbone stage, map side at 512 px, channels, heads, the replaced layer's kind and sr ratio)
SHAPES: Dict[str, Tuple[int, int, int, str, int]] = {
    'slide_swin_t_stage1': (128, 96, 3, 'swin', 0),
    'slide_swin_t_stage2': (64, 192, 6, 'swin', 0),
    'slide_pvt_t_stage1': (128, 64, 1, 'pvt', 8),
    'slide_pvt_t_stage2': (64, 128, 2, 'pvt', 4),
}
KERNEL, WINDOW = 3, 7
QkvForm = Callable[[Tensor, Tensor, Tensor, Tensor, int, float], Tensor]


def per_head_maps(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                  kernel_size: int, scale: float) -> Tensor:
    """The form recorded before: per-head maps and :func:`slide_attention`."""
    B, H, W = qkv.shape[:3]
    q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
    y = slide_attention(q * scale, k, v, rel_pos_bias, kernel_size, weight, bias)
    return y.reshape(B, -1, H, W).permute(0, 2, 3, 1)


def copies(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor, kernel_size: int,
           scale: float) -> Tensor:
    """The paper's form: :func:`slide_attention_copies` with the merged conv."""
    B, H, W = qkv.shape[:3]
    q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
    y = slide_attention_copies(q * scale, k, v, rel_pos_bias, kernel_size, [(weight, bias)])
    return y.reshape(B, -1, H, W).permute(0, 2, 3, 1)


def tokens_gemm(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                kernel_size: int, scale: float) -> Tensor:
    """Token layout, the k^2 shifted views of K and V stacked (B, H, W, heads, k^2, d): the
    logits are ONE MatMul of the stacked products q*K_p with a (k^2 d, k^2) matrix, the
    per-shift output weights ONE MatMul of the attention with its transpose."""
    B, H, W, _, nh, d = qkv.shape
    k2, pad = kernel_size * kernel_size, kernel_size // 2
    q, k, v = qkv.unbind(3)  # (B, H, W, heads, d)

    def stacked(x: Tensor) -> Tensor:
        padded = F.pad(x.reshape(B, H, W, nh * d), (0, 0, pad, pad, pad, pad))
        views = [padded[:, i:i + H, j:j + W].reshape(B, H, W, nh, d)
                 for i in range(kernel_size) for j in range(kernel_size)]
        return torch.stack(views, dim=4)

    mix = weight.view(d, k2, k2).permute(2, 0, 1).reshape(k2 * d, k2)  # [p*d + c, n]
    slot_bias = bias.view(d, k2)
    logits = torch.matmul((q.unsqueeze(4) * stacked(k)).reshape(B, H, W, nh, k2 * d),
                          mix * scale)
    logits = logits + torch.matmul(q, slot_bias * scale) \
        + q.sum(-1, keepdim=True) * (rel_pos_bias * scale)
    attn = logits.softmax(-1)  # (B, H, W, heads, k^2)
    weights = torch.matmul(attn, mix.t()).view(B, H, W, nh, k2, d)
    out = (weights * stacked(v)).sum(4) + torch.matmul(attn, slot_bias.t())
    return out.reshape(B, H, W, nh * d)


FORMS: Dict[str, QkvForm] = dict(per_head_maps=per_head_maps, copies=copies,
                                 tokens_loop=slide_attention_tokens, tokens_gemm=tokens_gemm)


class SlideLayer(SlideAttention):
    """A deploy-form slide attention layer recording its attention in ``form`` (eager: the
    layer's own path, the reference the runtimes' outputs are compared with)."""

    def __init__(self, dim: int, num_heads: int, form: QkvForm):
        super().__init__(dim, num_heads, KERNEL)
        self.form = form

    def attend_qkv(self, qkv: Tensor) -> Tensor:
        if not recording_graph():
            return super().attend_qkv(qkv)
        weight, bias = self.neighbour_conv()
        return self.form(qkv, weight, bias, self.relative_position_bias_table, self.kernel_size,
                         self.scale)


class TokensToMap(nn.Module):
    """A replaced attention layer taking (B, L, C) tokens and the map's (H, W), called on
    (B, H, W, C) as the slide layer is."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        return self.layer(x.reshape(B, H * W, C), (H, W))


class WithoutResidual(nn.Module):
    """mmdet's PVT attention adds its input back (``identity``); the slide layer does not."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        return self.layer(x, hw_shape, identity=torch.zeros_like(x))


def replaced_layers(kind: str, dim: int, heads: int, sr_ratio: int) -> Dict[str, nn.Module]:
    """The attention layers the Slide model's stage replaces, projections included."""
    if kind == 'swin':
        from mmseg.models.backbones.swin import ShiftWindowMSA
        return {name: TokensToMap(ShiftWindowMSA(dim, heads, WINDOW, shift_size=shift))
                for name, shift in (('swin_window', 0), ('swin_shifted', WINDOW // 2))}
    from mmdet.models.backbones.pvt import SpatialReductionAttention
    return {'pvt_sr': TokensToMap(WithoutResidual(SpatialReductionAttention(
        dim, heads, sr_ratio=sr_ratio)))}


def build_layers(shape: str, forms: Sequence[str]) -> Tuple[Dict[str, nn.Module], Tensor]:
    """The layers compared at ``shape`` (eval mode, slide layers in deploy form with one set of
    random weights, the merged conv's weights random too) and an input."""
    side, dim, heads, kind, sr_ratio = SHAPES[shape]
    layers: Dict[str, nn.Module] = {}
    for name in forms:
        torch.manual_seed(0)
        layer = SlideLayer(dim, heads, FORMS[name])
        layer.switch_to_deploy()
        with torch.no_grad():
            layer.merged.weight.add_(0.1 * torch.randn_like(layer.merged.weight))
        layers[name] = layer.eval()
    torch.manual_seed(0)
    for name, layer in replaced_layers(kind, dim, heads, sr_ratio).items():
        layers[name] = layer.eval()
    x = torch.randn(1, side, side, dim, generator=torch.Generator().manual_seed(0))
    return layers, x


def measure(shape: str, forms: Sequence[str], runtime_names: Sequence[str], threads: int,
            repeats: int) -> dict:
    """{runtime: {layer: times + max_abs_diff vs eager, or unavailable}} at ``shape``."""
    layers, x = build_layers(shape, forms)
    with torch.no_grad():
        expected = {name: layer(x) for name, layer in layers.items()}
    entry: dict = dict(load_average=load_average())
    with tempfile.TemporaryDirectory() as workdir:
        for runtime in runtime_names:
            runners, results = {}, {}
            for name, layer in layers.items():
                folder = osp.join(workdir, f'{runtime}_{name}')
                os.makedirs(folder)
                try:
                    run = runtimes.build_runner(runtime, layer, x, folder, threads)
                    got = run(x)[0]
                except RuntimeUnavailable as error:
                    results[name] = dict(unavailable=str(error))
                    continue
                results[name] = dict(max_abs_diff=(got - expected[name]).abs().max().item())
                runners[name] = lambda run=run: run(x)
            for name, times in interleaved_times(runners, 'cpu', 1, repeats).items():
                results[name].update(times)
            entry[runtime] = results
            print(shape, runtime, {n: round(r.get('median_s', float('nan')) * 1e3, 2)
                                   for n, r in results.items()}, flush=True)
    return entry


def table(results: dict, runtime_names: Sequence[str]) -> List[List[str]]:
    rows = [['shape', 'runtime', 'layer', 'median (ms)', 'range (ms)', 'max |diff| vs eager']]
    for shape, entry in results.items():
        for runtime in runtime_names:
            for name, r in entry[runtime].items():
                if 'unavailable' in r:
                    rows.append([shape, runtime, name, 'n/a', r['unavailable'], ''])
                else:
                    rows.append([shape, runtime, name, f'{r["median_s"] * 1e3:.2f}',
                                 f'{r["min_s"] * 1e3:.2f}-{r["max_s"] * 1e3:.2f}',
                                 f'{r["max_abs_diff"]:.1e}'])
    return rows


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--forms', nargs='+', choices=list(FORMS), default=list(FORMS))
    parser.add_argument('--shapes', nargs='+', choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument('--runtimes', nargs='+', choices=['onnxruntime', 'executorch'],
                        default=['onnxruntime', 'executorch'])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment('cpu')
    results = {shape: measure(shape, args.forms, args.runtimes, args.threads, args.repeats)
               for shape in args.shapes}
    payload = dict(description=description(args), environment=env, settings=vars(args),
                   results=results)
    path = write_results(args.out, 'slide_export_cpu', payload, table(results, args.runtimes))
    print(open(path).read())
    return payload


def description(args: argparse.Namespace) -> str:
    return (f'One attention layer (projections included), batch 1, {args.threads} threads, '
            f'median of {args.repeats} interleaved repeats after one warm-up run, per runtime '
            'and shape; slide layers in deploy form, kernel 3, in each exported form (see '
            'benchmarks/bench_slide_export.py); max |diff|: the runtime\'s output against '
            'PyTorch eager of the same layer.')


if __name__ == '__main__':
    main()
