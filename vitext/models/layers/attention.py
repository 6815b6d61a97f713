"""Global multi-head self-attention: ViT's (tokens) and PVT-v1's spatial-reduction form (maps).

Both run through PyTorch's fused SDPA. Parameter names follow timm's ViT (``qkv``, ``proj``) and
PVT-v1's public code (``q``, ``kv``, ``sr``, ``norm``, ``proj``)."""
from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from .helpers import check_head_dims
from .padding import pad_to_multiple


class Attention(nn.Module):
    """Multi-head self-attention on (B, N, C) tokens; with ``return_attn`` the explicit
    softmax(QK^T/sqrt(d))V is used instead of SDPA and the (B, heads, N, N) map returned too."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        check_head_dims((dim,), (num_heads,))
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, grid=None, return_attn: bool = False):
        """``grid`` (the token grid) is unused here; token mixers that need it share the call."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = None
        if return_attn:
            attn = (q * self.scale @ k.transpose(-2, -1)).softmax(dim=-1)
            x = F.dropout(attn, self.attn_drop, self.training) @ v
        else:
            x = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        x = self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))
        return (x, attn) if return_attn else x


class SpatialReductionAttention(nn.Module):
    """PVT-v1's attention on a (B, H, W, C) map: keys/values from the map downsampled by an
    ``sr_ratio`` strided conv (``sr``) + ``norm_layer`` (``norm``); plain global attention when
    ``sr_ratio`` is 1. The map is zero-padded to a multiple of ``sr_ratio`` first, so that every
    pixel reaches a reduced token (PVT-v1 floors instead; the same on maps that fit)."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm):
        super().__init__()
        check_head_dims((dim,), (num_heads,))
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = norm_layer(dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        nh, d = self.num_heads, C // self.num_heads
        q = self.q(x).view(B, H * W, nh, d).transpose(1, 2)
        src = x
        if self.sr_ratio > 1:
            src = pad_to_multiple(x.permute(0, 3, 1, 2), self.sr_ratio)
            src = self.norm(self.sr(src).permute(0, 2, 3, 1))
        k, v = self.kv(src).reshape(B, -1, 2, nh, d).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v,
                                           dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(B, H, W, C)))
