"""Attention Free Transformer operators (Zhai et al., arXiv 2105.14103; docs/models.md#aft).

    Y_t = sigmoid(Q_t) * sum_t' exp(K_t' + w_tt') V_t' / sum_t' exp(K_t' + w_tt')

- :func:`aft_full`: learned pairwise bias w (T x T), as two matmuls exp(w) @ (exp(K) V) and
  exp(w) @ exp(K); memory O(T d) besides w itself, never a T x T x d tensor.
- :func:`aft_local`: w kept inside a window and 0 (not -inf) outside, so every position still
  contributes exp(K_t'); 1-d (|t - t'| < s) or on a 2-d grid (an s x s window).
- :func:`aft_simple`: w = 0, O(T d): sigmoid(Q) * sum_t' softmax_t'(K) V.
- :func:`aft_conv`: the 2-d, multi-head form: per head i, with e = exp(K^i),
  sigmoid(Q^i) * [conv(e V^i, exp(w^i) - 1) + sum e V^i] / [conv(e, exp(w^i) - 1) + sum e],
  a depthwise s x s conv with zero 'same' padding; O(T s^2 d) time, O(T d) memory.

Numerical stability: each exponent has a maximum subtracted that is constant over the summed
index t' (per batch and channel/head for K, per row for w), so it cancels exactly between
numerator and denominator. The sums are computed in float32 with autocast off, whatever the input
dtype (float64 stays float64), and the result is cast back: fp16/bf16 autocast gives finite outputs for |K| ~ 1e3.
"""
import contextlib
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .export_mode import recording_graph
from .tokens import resize_grid_tokens

Grid = Tuple[int, int]


def _fp32(*tensors: Tensor):
    """Half-precision inputs upcast to float32; float32/float64 kept."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]


def _no_autocast(device: torch.device):
    """Autocast off on ``device`` (nothing to switch off where it has none, e.g. 'meta')."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


def aft_full(q: Tensor, k: Tensor, v: Tensor, w: Tensor) -> Tensor:
    """AFT-full. q, k, v: (B, T, d); w: (T, T) position bias. Returns (B, T, d)."""
    if w.shape != (q.shape[1], k.shape[1]):
        raise ValueError(f'w has shape {tuple(w.shape)}, expected ({q.shape[1]}, {k.shape[1]})')
    dtype = q.dtype
    with _no_autocast(q.device):
        q, k, v, w = _fp32(q, k, v, w)
        ek = torch.exp(k - k.amax(dim=1, keepdim=True))  # max over t', per batch and channel
        ew = torch.exp(w - w.amax(dim=1, keepdim=True))  # max over t', per row t
        num = torch.matmul(ew, ek * v)
        den = torch.matmul(ew, ek)
        return (torch.sigmoid(q) * num / den).to(dtype)


def local_window_mask(length: int, window: int, grid: Optional[Grid] = None,
                      num_prefix_tokens: int = 0, device=None) -> Tensor:
    """Boolean (T, T) mask of the pairs a local window keeps.

    Without ``grid``: |t - t'| < window. With ``grid`` (h, w) for the last h*w tokens: an odd
    window x window square, |di| <= window // 2 and |dj| <= window // 2; the first
    ``num_prefix_tokens`` tokens (a class token) keep their bias to and from every token."""
    if grid is None:
        idx = torch.arange(length, device=device)
        return (idx[:, None] - idx[None, :]).abs() < window
    h, w = grid
    if num_prefix_tokens + h * w != length:
        raise ValueError(f'{length} tokens do not make {num_prefix_tokens} prefix tokens and a '
                         f'{h}x{w} grid')
    if window % 2 == 0:
        raise ValueError(f'a 2-d window must be odd, got {window}')
    ii, jj = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing='ij')
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    half = window // 2
    grid_mask = (((ii[:, None] - ii[None, :]).abs() <= half)
                 & ((jj[:, None] - jj[None, :]).abs() <= half))
    mask = torch.ones(length, length, dtype=torch.bool, device=device)
    mask[num_prefix_tokens:, num_prefix_tokens:] = grid_mask
    return mask


def aft_local(q: Tensor, k: Tensor, v: Tensor, w: Tensor, window: int,
              grid: Optional[Grid] = None, num_prefix_tokens: int = 0) -> Tensor:
    """AFT-local: :func:`aft_full` with w set to 0 outside the window (see
    :func:`local_window_mask`)."""
    mask = local_window_mask(q.shape[1], window, grid, num_prefix_tokens, device=w.device)
    return aft_full(q, k, v, torch.where(mask, w, torch.zeros_like(w)))


def aft_simple(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """AFT-simple. q, k, v: (B, T, d). Returns (B, T, d)."""
    dtype = q.dtype
    with _no_autocast(q.device):
        q, k, v = _fp32(q, k, v)
        context = (torch.softmax(k, dim=1) * v).sum(dim=1, keepdim=True)
        return (torch.sigmoid(q) * context).to(dtype)


def _depthwise_input(x: Tensor) -> Tensor:
    """``x`` (B, C, H, W) laid out as oneDNN's depthwise convolution runs fastest on the CPU:
    channels-last with the standard strides. An NCHW input, or a channels-last one whose
    size-1 batch dim carries another stride (as broadcasting and slicing leave it), takes a
    path about 10x slower (11x11 kernel, 128x128 map)."""
    B, C, H, W = x.shape
    if x.device.type != 'cpu' or x.stride() == (H * W * C, 1, W * C, C):
        return x
    return x.clone(memory_format=torch.channels_last)


def _exp_keys(k: Tensor, v: Tensor) -> Tuple[Tensor, Tensor]:
    """e = exp(K - max over space, per batch and head) and e V, each head's e broadcast over its
    channels through views (B, heads, C/heads, H, W), no repeated copies; both laid out for the
    depthwise convolutions. The max cancels in the ratio of :func:`aft_conv`."""
    heads = k.shape[1]
    e = _depthwise_input(torch.exp(k - k.amax(dim=(2, 3), keepdim=True)))
    ev = (v.unflatten(1, (heads, v.shape[1] // heads)) * e.unsqueeze(2)).flatten(1, 2)
    return e, _depthwise_input(ev)


def expm1_from_exp_tanh(x: Tensor) -> Tensor:
    """exp(x) - 1 as tanh(x/2) (exp(x) + 1), from ops every exporter has (ONNX has no expm1;
    exporters write exp(x) - 1, which loses the digits of small x): tanh keeps them, and the
    product is within a few ulp of ``torch.expm1`` for every x (+-inf and -1 at the ends)."""
    return torch.tanh(x / 2) * (torch.exp(x) + 1)


def _bias_kernel(weight: Tensor) -> Tensor:
    """exp(w) - 1, (heads, 1, s, s): signed, so the conv adds exp(w) - 1 to the plain sum."""
    kernel = expm1_from_exp_tanh(weight) if recording_graph() else torch.expm1(weight)
    return kernel.unsqueeze(1)


def _aft_conv_heads(q: Tensor, k: Tensor, v: Tensor, weight: Tensor, inplace: bool) -> Tensor:
    """AFT-conv of whole heads (float32/64 inputs): the formula of :func:`aft_conv`."""
    C, heads, s = q.shape[1], weight.shape[0], weight.shape[-1]
    group = C // heads
    e, ev = _exp_keys(k, v)
    kernel = _bias_kernel(weight)
    num = F.conv2d(ev, kernel.repeat_interleave(group, dim=0), padding=s // 2, groups=C)
    # In place: a conv's backward does not need its output. Intermediates are dropped as soon
    # as they are used, which lowers the peak when no graph keeps them.
    num += ev.sum(dim=(2, 3), keepdim=True)
    del ev
    den = F.conv2d(e, kernel, padding=s // 2, groups=heads)
    den += e.sum(dim=(2, 3), keepdim=True)
    del e
    ratio = num.unflatten(1, (heads, group)).div_(den.unsqueeze(2)).flatten(1, 2)
    del num, den
    return ratio.mul_(torch.sigmoid(q)) if inplace else torch.sigmoid(q) * ratio


def _aft_conv_chunked(q: Tensor, k: Tensor, v: Tensor, weight: Tensor,
                      head_chunks: int) -> Tensor:
    """:func:`_aft_conv_heads` over ``head_chunks`` groups of heads written into one output."""
    out = torch.empty_like(q)
    for hs, cs in _head_slices(q.shape[1], weight.shape[0], head_chunks):
        out[:, cs] = _aft_conv_heads(q[:, cs], k[:, hs], v[:, cs], weight[hs], inplace=True)
    return out


def _head_slices(channels: int, heads: int, head_chunks: int):
    group, step = channels // heads, -(-heads // max(1, head_chunks))
    return [(slice(h0, h0 + step), slice(h0 * group, (h0 + step) * group))
            for h0 in range(0, heads, step)]


def _correlate(x: Tensor, grad: Tensor, size: int) -> Tensor:
    """Gradient of the kernel of ``F.conv2d(x, kernel, padding=size // 2, groups=channels)``
    given its output gradient, (B, channels, size, size) before summing over the batch: the
    zero-padded input correlated with ``grad``, one H x W 'kernel' per (batch, channel). About
    twice as fast on the CPU as the depthwise convolution's own weight gradient."""
    B, C, H, W = x.shape
    pad = size // 2
    xp = F.pad(x, (pad, pad, pad, pad)).reshape(1, B * C, H + 2 * pad, W + 2 * pad)
    return F.conv2d(xp, grad.reshape(B * C, 1, H, W), groups=B * C).view(B, C, size, size)


def _aft_conv_backward(q: Tensor, k: Tensor, v: Tensor, weight: Tensor, grad: Tensor):
    """Gradients of :func:`_aft_conv_heads` for whole heads, recomputing exp(K), exp(K) V and
    the ratio. With e = exp(K - max) (the max cancels, so it is held constant),
    n = conv(e V) + sum(e V), m = conv(e) + sum(e), y = sigmoid(Q) n / m:
    dn = dy sigmoid(Q) / m, dm = -sum_head(dn n / m); conv's adjoint is the conv with the
    flipped kernel; the kernel's gradient is the correlation of the input with the output's."""
    C, heads, s = q.shape[1], weight.shape[0], weight.shape[-1]
    group, pad = C // heads, s // 2

    def per_head(t: Tensor) -> Tensor:
        return t.unflatten(1, (heads, group))

    e, ev = _exp_keys(k, v)
    kernel = _bias_kernel(weight)
    kernel_c = kernel.repeat_interleave(group, dim=0)
    num = F.conv2d(ev, kernel_c, padding=pad, groups=C)
    num += ev.sum(dim=(2, 3), keepdim=True)
    den = F.conv2d(e, kernel, padding=pad, groups=heads)
    den += e.sum(dim=(2, 3), keepdim=True)
    sig = torch.sigmoid(q)
    ratio = per_head(num).div_(den.unsqueeze(2)).flatten(1, 2)
    del num
    grad_q = grad * ratio * sig * (1 - sig)
    grad_num = _depthwise_input(per_head(grad * sig).div_(den.unsqueeze(2)).flatten(1, 2))
    del sig, den
    grad_den = _depthwise_input(-(per_head(grad_num) * per_head(ratio)).sum(2))
    del ratio
    grad_kernel = (_correlate(ev, grad_num, s).sum(0).unflatten(0, (heads, group)).sum(1)
                   + _correlate(e, grad_den, s).sum(0))
    del ev
    grad_ev = F.conv2d(grad_num, kernel_c.flip(-1, -2), padding=pad, groups=C)
    grad_ev += grad_num.sum(dim=(2, 3), keepdim=True)
    del grad_num
    grad_e = F.conv2d(grad_den, kernel.flip(-1, -2), padding=pad, groups=heads)
    grad_e += grad_den.sum(dim=(2, 3), keepdim=True)
    grad_e += (per_head(grad_ev) * per_head(v)).sum(2)
    grad_v = (per_head(grad_ev) * e.unsqueeze(2)).flatten(1, 2)
    return grad_q, grad_e * e, grad_v, grad_kernel * torch.exp(weight)


class _AFTConvFunction(torch.autograd.Function):
    """AFT-conv keeping only Q, K, V and w for backward; the backward pass recomputes
    exp(K), exp(K) V and the ratio one group of heads at a time: groups of at most
    ``BACKWARD_CHUNK_ELEMENTS`` elements of Q (its temporaries sit next to the full-size
    gradients; small maps run in one group, as each group costs a few kernel launches)."""

    BACKWARD_CHUNK_ELEMENTS = 2 ** 19

    @staticmethod
    def forward(ctx, q, k, v, weight, head_chunks):
        ctx.save_for_backward(q, k, v, weight)
        return _aft_conv_chunked(q, k, v, weight, head_chunks)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, weight = ctx.saved_tensors
        grads = [torch.empty_like(t) for t in (q, k, v, weight)]
        chunks = -(-q.numel() // _AFTConvFunction.BACKWARD_CHUNK_ELEMENTS)
        for hs, cs in _head_slices(q.shape[1], weight.shape[0], chunks):
            parts = _aft_conv_backward(q[:, cs], k[:, hs], v[:, cs], weight[hs], grad[:, cs])
            for out, part, index in zip(grads, parts, (cs, hs, cs, hs)):
                if out.dim() == 4:
                    out[:, index] = part
                else:
                    out[index] = part
        return (*grads, None)


def aft_conv(q: Tensor, k: Tensor, v: Tensor, weight: Tensor, head_chunks: int = 4) -> Tensor:
    """AFT-conv. q, v: (B, C, H, W); k: (B, heads, H, W); weight: (heads, s, s), the
    (already re-parameterised) position bias w; the op applies exp(w) - 1. Returns (B, C, H, W).

    The heads are processed in ``head_chunks`` groups written into one output, so only a
    fraction of the per-head temporaries is alive at a time; heads are independent, so the
    result is the same. With autograd, a custom backward keeps only the inputs and recomputes
    the rest per group of heads. Under export / tracing the plain form is recorded, all heads
    at once, with exp(w) - 1 written as :func:`expm1_from_exp_tanh`.
    """
    B, C, H, W = q.shape
    heads, s = weight.shape[0], weight.shape[-1]
    if k.shape != (B, heads, H, W) or v.shape != q.shape:
        raise ValueError(f'aft_conv shapes: q {tuple(q.shape)}, k {tuple(k.shape)}, v '
                         f'{tuple(v.shape)}; expected k (B, heads={heads}, H, W) and v like q')
    if C % heads or weight.shape != (heads, s, s) or s % 2 == 0:
        raise ValueError(f'weight {tuple(weight.shape)} must be (heads, s, s) with odd s and '
                         f'heads dividing C={C}')
    dtype = q.dtype
    with _no_autocast(q.device):
        q, k, v, weight = _fp32(q, k, v, weight)
        if recording_graph():
            return _aft_conv_heads(q, k, v, weight, inplace=False).to(dtype)
        if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, weight)):
            return _AFTConvFunction.apply(q, k, v, weight, head_chunks).to(dtype)
        return _aft_conv_chunked(q, k, v, weight, head_chunks).to(dtype)


class AFTSimple(nn.Module):
    """AFT-simple layer on tokens (B, T, C); no position parameters."""

    def __init__(self, dim: int, qkv_bias: bool = True, proj_drop: float = 0.):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, grid: Optional[Grid] = None) -> Tensor:
        return self.proj_drop(self.proj(aft_simple(self.q(x), self.k(x), self.v(x))))


class AFTFull(AFTSimple):
    """AFT-full / AFT-local layer on tokens (B, T, C), with the factorised bias w = U V^T
    (U, V in R^{T0 x d'}, N(0, 1e-2) init) learned for ``grid`` plus prefix tokens and resized
    to the input's grid. ``window`` makes it AFT-local (2-d window on the grid)."""

    def __init__(self, dim: int, grid: Grid, num_prefix_tokens: int = 1, factor_dim: int = 128,
                 window: Optional[int] = None, qkv_bias: bool = True, proj_drop: float = 0.):
        super().__init__(dim, qkv_bias, proj_drop)
        self.grid = tuple(grid)
        self.num_prefix_tokens = num_prefix_tokens
        self.window = window
        tokens = num_prefix_tokens + grid[0] * grid[1]
        self.pos_u = nn.Parameter(torch.randn(tokens, factor_dim) * 1e-2)
        self.pos_v = nn.Parameter(torch.randn(tokens, factor_dim) * 1e-2)

    def position_bias(self, grid: Grid) -> Tensor:
        # [choice, docs/models.md#aft-full] U and V resampled bilinearly on the grid, prefix
        # rows kept.
        u, v = (resize_grid_tokens(f, grid, self.grid, self.num_prefix_tokens, mode='bilinear')
                for f in (self.pos_u, self.pos_v))
        return u @ v.t()

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        w = self.position_bias(grid)
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.window is None:
            y = aft_full(q, k, v, w)
        else:
            y = aft_local(q, k, v, w, self.window, grid, self.num_prefix_tokens)
        return self.proj_drop(self.proj(y))


class AFTConv(nn.Module):
    """AFT-conv-h-s layer on tokens (B, T, C) of an (H, W) grid (no prefix tokens).

    K has one channel per head; the s x s position kernel of head i is re-parameterised as
    w^i <- gamma_i (w^i - mean(w^i)) / (std(w^i) + eps) + beta_i with gamma = beta = 0 at init, so
    the layer starts as AFT-simple. Raw w is drawn from N(0, 1) (its std must not be 0).
    """

    def __init__(self, dim: int, num_heads: int, kernel_size: int = 11, qkv_bias: bool = True,
                 proj_drop: float = 0., eps: float = 1e-6):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.eps = eps
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, num_heads, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.pos_weight = nn.Parameter(torch.randn(num_heads, kernel_size, kernel_size))
        self.pos_gamma = nn.Parameter(torch.zeros(num_heads))
        self.pos_beta = nn.Parameter(torch.zeros(num_heads))
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_weight(self) -> Tensor:
        w = self.pos_weight
        mean = w.mean(dim=(1, 2), keepdim=True)
        std = w.std(dim=(1, 2), keepdim=True)
        return (self.pos_gamma.view(-1, 1, 1) * (w - mean) / (std + self.eps)
                + self.pos_beta.view(-1, 1, 1))

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        B, T, C = x.shape
        h, w = grid
        if T != h * w:
            raise ValueError(f'AFTConv takes the {h}x{w} grid tokens only, got {T} tokens')

        def to_map(t: Tensor) -> Tensor:  # a channels-last view, no copy
            return t.reshape(B, h, w, t.shape[-1]).permute(0, 3, 1, 2)

        y = aft_conv(to_map(self.q(x)), to_map(self.k(x)), to_map(self.v(x)),
                     self.position_weight())
        return self.proj_drop(self.proj(y.permute(0, 2, 3, 1).reshape(B, T, C)))


__all__ = ['aft_full', 'aft_local', 'aft_simple', 'aft_conv', 'local_window_mask', 'AFTFull',
           'AFTSimple', 'AFTConv']
