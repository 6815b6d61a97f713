"""Slide Attention (Slide-Transformer, docs/models.md#slide-attention): local attention of every
query over its k x k neighbourhood, with the neighbourhood keys/values produced by depthwise
convolutions.

The neighbour maps of a (N, d, H, W) input are the output of a depthwise conv with d*k^2 output
channels, channel ``c*k^2 + n`` holding slot ``n`` (kernel position ``(n // k, n % k)``) of
channel ``c``. Training sums two such convs: the *shift* conv (frozen one-hot kernels, trainable
bias) and the *deformed* conv (fully learnable); inference folds them into one conv. A relative
position bias (heads, k^2) is added to the neighbour keys, softmax runs over the k^2 slots, and
zero-padded border neighbours take part.

Three evaluations of the same function:

* :func:`slide_attention` — the fast form used by the module: the conv written as a per-channel
  mix of k^2 shifted views, evaluated one shift at a time with small matmuls. No k^2-fold copy
  of K or V is ever held, which is what makes the paper's formulation memory-bound.
* :func:`slide_attention_copies` — the paper's / public code's formulation: k^2 shifted copies of
  K and V materialised by the convs. Kept for the benchmark.
* :func:`slide_attention_unfold` — the Im2Col reference written from the definition: an explicit
  k x k neighbourhood gather (``F.unfold``), then per-channel mixing with the conv weights.

:func:`slide_attention_tokens` is the form exporters record: the fast form's algebra in the
token layout (B, H, W, heads, d) the qkv projection gives, so the exported graph holds no
Transpose of the maps (in ONNX Runtime the per-head form's Transposes took more time than any
other of its operator types).

The layer calls :func:`slide_attention_qkv` on its qkv projection: on the CPU the C++ kernel
``csrc/slide_attention.cpp`` (one pass per pixel over its neighbourhood, straight from the qkv
layout; registered as the ``vitext::slide_attention`` op with its own backward), elsewhere or
where no kernel could be built :func:`slide_attention` under a custom autograd Function that keeps
only its inputs and recomputes the per-shift products in the backward pass.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cpu_kernels import cpu_kernel
from .export_mode import recording_graph

Conv = Tuple[Tensor, Optional[Tensor]]  # depthwise (d*k^2, 1, k, k) weight and (d*k^2,) bias


def shift_kernels(channels: int, kernel_size: int) -> Tensor:
    """One-hot depthwise kernels (channels*k^2, 1, k, k): output ``c*k^2 + n`` copies input
    channel ``c`` from kernel position ``(n // k, n % k)``."""
    k2 = kernel_size * kernel_size
    one_hot = torch.eye(k2).view(k2, 1, kernel_size, kernel_size)
    return one_hot.repeat(channels, 1, 1, 1)


def _check_kernel_size(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be a positive odd number, got {kernel_size}')


def _slot_attention(q: Tensor, logits: Tensor, rel_pos_bias: Tensor, attn_drop: float,
                    training: bool) -> Tensor:
    """Slot logits (B, heads, k^2, *spatial) of q.K_n -> attention weights, q being
    (B, heads, d, *spatial): the position bias added to every key adds bias * sum_d(q_d)."""
    nh, spatial = q.shape[1], (1,) * (q.dim() - 3)
    logits = logits + rel_pos_bias.view(1, nh, -1, *spatial) * q.sum(2, keepdim=True)
    return F.dropout(logits.softmax(dim=2), attn_drop, training)


def slide_attention(q: Tensor, k: Tensor, v: Tensor, rel_pos_bias: Tensor, kernel_size: int = 3,
                    weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                    attn_drop: float = 0., training: bool = False) -> Tensor:
    """Slide attention, fast form.

    A depthwise conv is a per-channel mix of the k^2 shifted maps: slot ``n`` of channel ``c`` is
    ``sum_p w[c, n, p] * shift_p(x)[c] + b[c, n]``. So the logits are
    ``sum_p (w[:, :, p]^T @ (q * shift_p(k))) + b^T @ q`` and the output is
    ``sum_p (w[:, :, p] @ attn) * shift_p(v) + b @ attn``: k^2 small matmuls over shifted views,
    never holding k^2 copies of K or V. The shifted views are made contiguous for free by working
    on the grid padded to W + 2*(k//2) columns, where a shift is a flat offset.

    Args:
        q, k, v: (B, heads, d, H, W); q already scaled by d^-0.5.
        rel_pos_bias: (heads, k^2), added to the neighbour keys.
        weight, bias: the neighbour conv, (d*k^2, 1, k, k) and (d*k^2,); training form: shift
            + deformed kernels, deploy form: the merged conv. ``weight=None`` means the plain
            one-hot shifts (local attention).
        attn_drop: dropout on the attention weights when ``training``.
    Returns:
        (B, heads, d, H, W).
    """
    _check_kernel_size(kernel_size)
    B, nh, d, H, W = q.shape
    N, k2, pad = B * nh, kernel_size * kernel_size, kernel_size // 2
    Wp = W + 2 * pad
    L = H * Wp  # positions of the padded-width grid; columns >= W are dropped at the end

    def flat_padded(x: Tensor) -> Tensor:  # one extra bottom row keeps the last shift in range
        return F.pad(x.reshape(N, d, H, W), (pad, pad, pad, pad + 1)).view(N, d, -1)

    def shifted(flat: Tensor, p: int) -> Tensor:
        i, j = divmod(p, kernel_size)
        return flat[:, :, i * Wp + j:i * Wp + j + L]

    kf, vf = flat_padded(k), flat_padded(v)
    qf = F.pad(q.reshape(N, d, H, W), (0, 2 * pad)).view(N, d, L)
    mix = None if weight is None else weight.view(d, k2, k2)  # [c, n, p]
    slot_bias = None if bias is None else bias.view(d, k2)  # [c, n]

    if mix is None:
        logits = torch.stack([(qf * shifted(kf, p)).sum(1) for p in range(k2)], dim=1)
    else:
        logits = 0
        for p in range(k2):
            logits = logits + torch.matmul(mix[:, :, p].t(), qf * shifted(kf, p))
    if slot_bias is not None:
        logits = logits + torch.matmul(slot_bias.t(), qf)
    attn = _slot_attention(qf.view(B, nh, d, L), logits.view(B, nh, k2, L), rel_pos_bias,
                           attn_drop, training).view(N, k2, L)

    out = (torch.zeros_like(qf) if slot_bias is None else torch.matmul(slot_bias, attn))
    for p in range(k2):
        weights = attn[:, p:p + 1] if mix is None else torch.matmul(mix[:, :, p], attn)
        out = out.addcmul_(weights, shifted(vf, p))
    return out.view(B, nh, d, H, Wp)[..., :W]


def _rows_matmul(x: Tensor, matrix: Tensor) -> Tensor:
    """``x`` (..., m) @ ``matrix`` (m, n) as one bmm over the flattened leading axes: the
    XNNPACK delegate of ExecuTorch takes a bmm whose right-hand side is computed from weights,
    and leaves such an mm to ExecuTorch's portable kernel (measured: about twice the time)."""
    rows = torch.bmm(x.reshape(1, -1, x.shape[-1]), matrix.unsqueeze(0))
    return rows.view(*x.shape[:-1], matrix.shape[-1])


def slide_attention_tokens(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                           kernel_size: int = 3, scale: float = 1., attn_drop: float = 0.,
                           training: bool = False) -> Tensor:
    """Slide attention in the token layout, the form recorded for export (ONNX, ExecuTorch).

    The algebra of :func:`slide_attention` (the conv as a per-channel mix of the k^2 shifted
    maps) on (B, H, W, heads, d) tokens: shift ``p`` is a slice of the zero-padded (B, H, W, C)
    map, the logits are ``sum_p (q * K_p) @ (scale * w[:, :, p]) + q @ (scale * b)
    + scale * bias_rel * sum_d(q)`` and the output ``sum_p (attn @ w[:, :, p]^T) * V_p
    + attn @ b^T``, matmuls over the last axis, whose (d, k^2) and (k^2, d) matrices are
    weights. Measured in ONNX Runtime and ExecuTorch-XNNPACK (benchmarks/bench_slide_export.py)
    this is faster than per-head maps (their Transposes), than stacking the k^2 views for one
    large matmul and than the conv-made copies.

    Args:
        qkv: (B, H, W, 3, heads, d), q unscaled.
        weight, bias: the neighbour conv, (d*k^2, 1, k, k) and (d*k^2,).
        rel_pos_bias: (heads, k^2), added to the neighbour keys.
        scale: multiplies q (folded into the logits' weights).
        attn_drop: dropout on the attention weights when ``training``.
    Returns:
        (B, H, W, heads*d), the heads concatenated as the output projection takes them.
    """
    _check_kernel_size(kernel_size)
    B, H, W, _, nh, d = qkv.shape
    k2, pad = kernel_size * kernel_size, kernel_size // 2
    q, k, v = qkv.unbind(3)  # each (B, H, W, heads, d)

    def shifted(x: Tensor) -> List[Tensor]:  # [p] = x_pad[:, y + p // k, x + p % k]
        padded = F.pad(x.reshape(B, H, W, nh * d), (0, 0, pad, pad, pad, pad))
        return [padded[:, i:i + H, j:j + W].reshape(B, H, W, nh, d)
                for i in range(kernel_size) for j in range(kernel_size)]

    mix = weight.view(d, k2, k2)  # [c, n, p]
    slot_bias = bias.view(d, k2)  # [c, n]
    q_sum = _rows_matmul(q, q.new_ones(d, 1))  # sum_d(q), a matmul as XNNPACK takes it
    logits = _rows_matmul(q, slot_bias * scale) + q_sum * (rel_pos_bias * scale)
    for p, k_p in enumerate(shifted(k)):
        logits = logits + _rows_matmul(q * k_p, mix[:, :, p] * scale)
    attn = F.dropout(logits.softmax(-1), attn_drop, training)  # (B, H, W, heads, k^2)
    out = _rows_matmul(attn, slot_bias.t())
    for p, v_p in enumerate(shifted(v)):
        out = out + _rows_matmul(attn, mix[:, :, p].t()) * v_p
    return out.reshape(B, H, W, nh * d)


def _slide_attention_plain(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                           kernel_size: int, scale: float) -> Tensor:
    """:func:`slide_attention_qkv` through :func:`slide_attention` (pure PyTorch)."""
    B, H, W, _, nh, d = qkv.shape
    q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)  # each (B, heads, d, H, W)
    y = slide_attention(q * scale, k, v, rel_pos_bias, kernel_size, weight, bias)
    return y.reshape(B, nh * d, H, W).permute(0, 2, 3, 1)


class _SlideAttentionRecompute(torch.autograd.Function):
    """The pure-PyTorch form keeping only its inputs for backward: the k^2 per-shift products
    are recomputed there instead of being held from the forward pass."""

    @staticmethod
    def forward(ctx, qkv, weight, bias, rel_pos_bias, kernel_size, scale):
        ctx.save_for_backward(qkv, weight, bias, rel_pos_bias)
        ctx.kernel_size, ctx.scale = kernel_size, scale
        return _slide_attention_plain(qkv, weight, bias, rel_pos_bias, kernel_size, scale)

    @staticmethod
    def backward(ctx, grad):
        inputs = [t.detach().requires_grad_(need)
                  for t, need in zip(ctx.saved_tensors, ctx.needs_input_grad)]
        with torch.enable_grad():
            out = _slide_attention_plain(*inputs, ctx.kernel_size, ctx.scale)
        wanted = [t for t in inputs if t.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad) if wanted else ())
        return (*(next(grads) if t.requires_grad else None for t in inputs), None, None)


@torch.library.custom_op('vitext::slide_attention', mutates_args=())
def _slide_attention_kernel(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                            kernel_size: int, scale: float) -> Tensor:
    return cpu_kernel('slide_attention').forward(qkv, weight, bias, rel_pos_bias, kernel_size,
                                                 scale)


@torch.library.custom_op('vitext::slide_attention_backward', mutates_args=())
def _slide_attention_kernel_backward(grad: Tensor, qkv: Tensor, weight: Tensor, bias: Tensor,
                                     rel_pos_bias: Tensor, kernel_size: int, scale: float
                                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(cpu_kernel('slide_attention').backward(grad, qkv, weight, bias, rel_pos_bias,
                                                        kernel_size, scale))


@_slide_attention_kernel.register_fake
def _(qkv, weight, bias, rel_pos_bias, kernel_size, scale):
    B, H, W, _, nh, d = qkv.shape
    return qkv.new_empty(B, H, W, nh * d)


@_slide_attention_kernel_backward.register_fake
def _(grad, qkv, weight, bias, rel_pos_bias, kernel_size, scale):
    return tuple(torch.empty_like(t) for t in (qkv, weight, bias, rel_pos_bias))


def _kernel_setup_context(ctx, inputs, output):
    qkv, weight, bias, rel_pos_bias, ctx.kernel_size, ctx.scale = inputs
    ctx.save_for_backward(qkv, weight, bias, rel_pos_bias)


def _kernel_backward(ctx, grad):
    grads = _slide_attention_kernel_backward(grad, *ctx.saved_tensors, ctx.kernel_size, ctx.scale)
    return (*grads, None, None)


_slide_attention_kernel.register_autograd(_kernel_backward, setup_context=_kernel_setup_context)


def slide_attention_qkv(qkv: Tensor, weight: Tensor, bias: Tensor, rel_pos_bias: Tensor,
                        kernel_size: int = 3, scale: float = 1.,
                        use_kernel: Optional[bool] = None) -> Tensor:
    """Slide attention straight from a qkv projection's output.

    Args:
        qkv: (B, H, W, 3, heads, d), q unscaled.
        weight, bias: the neighbour conv, (d*k^2, 1, k, k) and (d*k^2,).
        rel_pos_bias: (heads, k^2).
        scale: multiplies q.
        use_kernel: the C++ CPU kernel (``None``: wherever it applies and could be built).
    Returns:
        (B, H, W, heads*d), the heads concatenated as the output projection takes them.
    """
    _check_kernel_size(kernel_size)
    if use_kernel is None:
        use_kernel = (qkv.device.type == 'cpu' and qkv.dtype in (torch.float32, torch.float64)
                      and cpu_kernel('slide_attention') is not None)
    args = (qkv, weight, bias, rel_pos_bias, kernel_size, float(scale))
    if use_kernel:
        return _slide_attention_kernel(*args)
    return _SlideAttentionRecompute.apply(*args)


def slide_attention_copies(q: Tensor, k: Tensor, v: Tensor, rel_pos_bias: Tensor,
                           kernel_size: int, convs: Sequence[Conv], attn_drop: float = 0.,
                           training: bool = False) -> Tensor:
    """The paper's formulation: each conv in ``convs`` turns K and V into k^2 copies
    (B, heads, d, k^2, H, W), summed over the convs; then attention over the copies."""
    _check_kernel_size(kernel_size)
    B, nh, d, H, W = q.shape
    k2 = kernel_size * kernel_size

    def copies(x: Tensor) -> Tensor:
        x = x.reshape(B * nh, d, H, W)
        out = sum(F.conv2d(x, w, b, padding=kernel_size // 2, groups=d) for w, b in convs)
        return out.view(B, nh, d, k2, H, W)

    logits = (q.unsqueeze(3) * copies(k)).sum(2)
    attn = _slot_attention(q, logits, rel_pos_bias, attn_drop, training)
    return (attn.unsqueeze(2) * copies(v)).sum(3)


def slide_attention_unfold(q: Tensor, k: Tensor, v: Tensor, rel_pos_bias: Tensor,
                           kernel_size: int, convs: Optional[Sequence[Conv]] = None) -> Tensor:
    """Reference from the definition (Im2Col): gather every position's zero-padded k x k
    neighbourhood with ``F.unfold``; neighbour ``n`` of channel ``c`` is then
    ``sum_p w[c*k^2 + n, p] * patch[c, p] + b[c*k^2 + n]`` summed over ``convs``. With
    ``convs=None`` the neighbours are the raw patch entries (plain local attention)."""
    _check_kernel_size(kernel_size)
    B, nh, d, H, W = q.shape
    k2 = kernel_size * kernel_size

    def neighbours(x: Tensor) -> Tensor:
        patches = F.unfold(x.reshape(B * nh, d, H, W), kernel_size, padding=kernel_size // 2)
        patches = patches.view(B, nh, d, k2, H, W)  # [..., p, y, x] = x_pad[y + p//k, x + p%k]
        if convs is None:
            return patches
        out = 0
        for w, b in convs:
            out = out + torch.einsum('bhdpyx,dnp->bhdnyx', patches, w.view(d, k2, k2))
            if b is not None:
                out = out + b.view(1, 1, d, k2, 1, 1)
        return out

    keys = neighbours(k) + rel_pos_bias.view(1, nh, 1, k2, 1, 1)
    attn = (q.unsqueeze(3) * keys).sum(2).softmax(dim=2)  # (B, heads, k^2, H, W)
    return (attn.unsqueeze(2) * neighbours(v)).sum(3)


class ShiftConv(nn.Module):
    """The shift path: the one-hot shift kernels (:func:`shift_kernels`) as a *buffer*
    ``weight`` and a trainable ``bias``, the state-dict keys of the ``nn.Conv2d`` it replaces.

    The kernels are constants, not weights: as a buffer they are out of ``parameters()``, so no
    optimizer, gradient check or weight initialiser (mmengine's ``init_cfg`` with
    ``layer='Conv2d'`` matches class names, and this is not a ``Conv2d``) can change them.
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        # Bias drawn by nn.Conv2d's own default init, which also keeps a seeded model's random
        # stream (and so its initial weights) what it was when this was an nn.Conv2d.
        conv = nn.Conv2d(channels, channels * kernel_size * kernel_size, kernel_size,
                         padding=kernel_size // 2, groups=channels)
        self.bias = conv.bias
        self.register_buffer('weight', shift_kernels(channels, kernel_size))

    def extra_repr(self) -> str:
        return f'kernels={tuple(self.weight.shape)}'


class SlideAttention(nn.Module):
    """Multi-head slide attention layer: qkv projection, slide attention, output projection.

    Input (B, H, W, C) with ``channels_last=True`` (the backbones' token layout) or (B, C, H, W).
    The shift conv and the deformed conv are shared by K and V and across heads.
    ``switch_to_deploy()`` folds them into ``merged``; a state dict of either form loads into
    either module (a training-form state dict is folded on load, a deploy-form one switches the
    module to deploy form).
    """

    def __init__(self, dim: int, num_heads: int, kernel_size: int = 3, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0., proj_drop: float = 0.,
                 channels_last: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        _check_kernel_size(kernel_size)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.kernel_size = kernel_size
        self.scale = qk_scale or self.head_dim ** -0.5
        self.channels_last = channels_last
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.shift = ShiftConv(self.head_dim, kernel_size)
        self.deform = self._depthwise()  # PyTorch's default init, as the public code
        self.register_module('merged', None)
        k2 = kernel_size * kernel_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_heads, k2))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _depthwise(self) -> nn.Conv2d:
        d, ks = self.head_dim, self.kernel_size
        return nn.Conv2d(d, d * ks * ks, ks, padding=ks // 2, groups=d)

    @property
    def deploy(self) -> bool:
        return self.merged is not None

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the shift conv and the deformed conv into one conv (weights and biases summed).
        Idempotent. Whole models switch through ``vitext.models.deploy.switch_to_deploy``."""
        if self.deploy:
            return
        merged = self._depthwise().to(self.deform.weight)
        merged.weight.copy_(self.shift.weight + self.deform.weight)
        merged.bias.copy_(self.shift.bias + self.deform.bias)
        self.merged = merged
        self.shift = self.deform = None

    @staticmethod
    def fold_state_dict(state_dict: dict, prefix: str = '') -> None:
        """Turn the training-form keys of the layer at ``prefix`` (``shift.*``, ``deform.*``)
        into deploy-form ``merged.*`` in place, as :meth:`switch_to_deploy` does."""
        for name in ('weight', 'bias'):
            state_dict[f'{prefix}merged.{name}'] = (state_dict.pop(f'{prefix}shift.{name}')
                                                    + state_dict.pop(f'{prefix}deform.{name}'))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.deploy and prefix + 'deform.weight' in state_dict:
            self.fold_state_dict(state_dict, prefix)
        elif not self.deploy and prefix + 'merged.weight' in state_dict:
            self.switch_to_deploy()
        elif not self.deploy and prefix + 'shift.weight' in state_dict:
            expected = shift_kernels(self.head_dim, self.kernel_size)
            got = state_dict[prefix + 'shift.weight']
            if got.shape == expected.shape and not torch.equal(got.cpu().float(), expected):
                raise ValueError(f'{prefix}shift.weight is not the one-hot shift kernel set; '
                                 'the shift path is a fixed set of shifts')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def neighbour_conv(self) -> Tuple[Tensor, Tensor]:
        """The single conv producing the k^2 neighbour maps: the merged conv, or in training
        form the shift and deformed convs summed (a conv is linear in its kernel)."""
        if self.deploy:
            return self.merged.weight, self.merged.bias
        return self.shift.weight + self.deform.weight, self.shift.bias + self.deform.bias

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Slide attention on per-head maps (B, heads, d, H, W), q unscaled, by
        :func:`slide_attention` (the layer's path with attention dropout)."""
        weight, bias = self.neighbour_conv()
        return slide_attention(q * self.scale, k, v, self.relative_position_bias_table,
                               self.kernel_size, weight, bias, self.attn_drop, self.training)

    def attend_qkv(self, qkv: Tensor) -> Tensor:
        """(B, H, W, 3, heads, d) -> (B, H, W, C): :func:`slide_attention_qkv` (custom backward,
        CPU kernel), :func:`slide_attention_tokens` under export / tracing, or :meth:`attend`
        with attention dropout."""
        recording = recording_graph()
        if self.attn_drop and self.training and not recording:
            B, H, W = qkv.shape[:3]
            q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)  # each (B, heads, d, H, W)
            return self.attend(q, k, v).reshape(B, -1, H, W).permute(0, 2, 3, 1)
        weight, bias = self.neighbour_conv()  # after the branch above: attend makes its own
        if recording:
            return slide_attention_tokens(qkv, weight, bias, self.relative_position_bias_table,
                                          self.kernel_size, self.scale, self.attn_drop,
                                          self.training)
        return slide_attention_qkv(qkv, weight, bias, self.relative_position_bias_table,
                                   self.kernel_size, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        if not self.channels_last:
            x = x.permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        y = self.attend_qkv(self.qkv(x).view(B, H, W, 3, self.num_heads, self.head_dim))
        y = self.proj_drop(self.proj(y))
        return y if self.channels_last else y.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f'num_heads={self.num_heads}, kernel_size={self.kernel_size}, '
                f'deploy={self.deploy}')


__all__ = ['shift_kernels', 'ShiftConv', 'slide_attention',
           'slide_attention_copies', 'slide_attention_qkv', 'slide_attention_tokens',
           'slide_attention_unfold',
           'SlideAttention']
