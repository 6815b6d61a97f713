"""Swin's (shifted) window attention on a (B, H, W, C) map of any size: the map is zero-padded to
a multiple of the window, optionally rolled by ``shift``, split into windows, attended within each
window with a relative position bias, and put back; a map that fits in one window is not
shifted (Swin's rule). Tokens only attend to tokens of the same
region: the usual shifted-window regions, and padding kept apart from the image.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .export_mode import recording_graph


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B * windows, window^2, C)."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, C)


def window_reverse(windows: Tensor, window: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`window_partition`."""
    C = windows.shape[-1]
    x = windows.view(-1, H // window, W // window, window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)


def relative_position_index(window: int) -> Tensor:
    """(window^2, window^2) index into a ((2w-1)^2, heads) table, Swin's layout."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_region_mask(H: int, W: int, pad_h: int, pad_w: int, window: int, shift: int,
                       device=None) -> Tensor:
    """(windows, window^2, window^2) additive mask: 0 within a region, -100 across (Swin's
    value). Regions: the 3 x 3 shifted-window bands, with padding as regions of its own."""
    Hp, Wp = H + pad_h, W + pad_w
    label = torch.zeros(Hp, Wp, device=device)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None)) if shift \
        else (slice(None),)
    count = 0
    for hs in bands:
        for ws in bands:
            label[hs, ws] = count
            count += 1
    padded = torch.zeros(Hp, Wp, dtype=torch.bool, device=device)
    padded[H:] = True
    padded[:, W:] = True
    if shift:  # the padding moves with the roll
        padded = torch.roll(padded, (-shift, -shift), dims=(0, 1))
    label = label + count * padded
    windows = window_partition(label.view(1, Hp, Wp, 1), window).squeeze(-1)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.)


class WindowAttention(nn.Module):
    """Multi-head attention in ``window`` x ``window`` windows of a (B, H, W, C) map, shifted
    by ``shift`` (0 or window // 2 in Swin), through PyTorch's SDPA."""

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift: int = 0,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        if not 0 <= shift < window_size:
            raise ValueError(f'shift must be in [0, {window_size}), got {shift}')
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift = shift
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        self.register_buffer('relative_position_index', relative_position_index(window_size),
                             persistent=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_bias(self) -> Tensor:
        """(heads, window^2, window^2)."""
        n = self.window_size ** 2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        ws, shift = self.window_size, self.shift
        if H <= ws and W <= ws:  # one window holds the map: nothing to shift (as Swin does)
            shift = 0
        pad_h, pad_w = (-H) % ws, (-W) % ws
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        Hp, Wp = H + pad_h, W + pad_w
        if shift:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
        windows = window_partition(x, ws)  # (B * nW, N, C)
        N = ws * ws
        qkv = self.qkv(windows).view(-1, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.position_bias().unsqueeze(0)  # (1, heads, N, N)
        if shift or pad_h or pad_w:
            mask = window_region_mask(H, W, pad_h, pad_w, ws, shift, x.device).to(x.dtype)
            bias = (bias + mask.unsqueeze(1)).repeat(B, 1, 1, 1)  # (B * nW, heads, N, N)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                           dropout_p=self.attn_drop if self.training else 0.)
        y = y.transpose(1, 2)
        if recording_graph():  # exporters lay SDPA's output out otherwise than the CPU kernel
            y = y.clone(memory_format=torch.contiguous_format)  # does: a view fits both
        y = self.proj_drop(self.proj(y.reshape(-1, N, C)))
        y = window_reverse(y, ws, Hp, Wp)
        if shift:
            y = torch.roll(y, (shift, shift), dims=(1, 2))
        return y[:, :H, :W].contiguous()

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, window_size={self.window_size}, shift={self.shift}'


__all__ = ['WindowAttention', 'window_partition', 'window_reverse', 'relative_position_index',
           'window_region_mask']
