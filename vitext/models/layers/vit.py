"""Plain-ViT building blocks shared by vitext's ViT backbones.

Parameter names follow timm's ``vision_transformer.py`` (``patch_embed.proj``, ``blocks.i.norm1``,
``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``, ``norm``, ``cls_token``, ``pos_embed``) so
timm/DeiT checkpoints load without renaming. Context Broadcasting can be inserted at the places
the CB paper studies (``cb_position``).
"""
import math
from typing import Callable, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ...ops.broadcast import ContextBroadcast, ScaledContextBroadcast
from ...ops.tokens import resize_grid_tokens

CB_MODES = ('none', 'cb', 'cbs')
CB_POSITIONS = ('mlp_end', 'mlp_mid', 'mlp_front', 'attn', 'attn_mlp')


def make_broadcast(mode: str, dim: int) -> nn.Module:
    """The CB op for ``mode``: Identity ('none'), CB or CBS with ``dim`` scales."""
    if mode == 'none':
        return nn.Identity()
    if mode == 'cb':
        return ContextBroadcast()
    if mode == 'cbs':
        return ScaledContextBroadcast(dim)
    raise ValueError(f'cb_mode={mode!r} is not one of {CB_MODES}')


class DropPath(nn.Module):
    """Stochastic depth per sample (drops the residual branch)."""

    def __init__(self, drop_prob: float = 0.):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens. Returns (tokens (B, N, C), grid (h, w))."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad an image batch at the bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def resize_pos_embed(pos_embed: Tensor, new_grid: Sequence[int], old_grid: Sequence[int],
                     num_prefix_tokens: int = 1) -> Tensor:
    """Resize an absolute position table (1, prefix + h*w, C) to another grid: prefix (class)
    tokens kept, the grid part resampled as timm does (bicubic, antialiased)."""
    return resize_grid_tokens(pos_embed, new_grid, old_grid, num_prefix_tokens, mode='bicubic',
                              antialias=True)


class Attention(nn.Module):
    """Multi-head self-attention through PyTorch's fused SDPA; with ``return_attn`` the explicit
    softmax(QK^T/sqrt(d))V is used instead and the (B, heads, N, N) map returned too."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
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


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2, with optional CB ops on its input, hidden activation or output."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0., cb_front: nn.Module = None,
                 cb_mid: nn.Module = None, cb_end: nn.Module = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)
        self.cb_front = cb_front or nn.Identity()
        self.cb_mid = cb_mid or nn.Identity()
        self.cb_end = cb_end or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.cb_mid(self.act(self.fc1(self.cb_front(x)))))
        return self.cb_end(self.drop(self.fc2(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).

    ``cb_mode``/``cb_position`` insert Context Broadcasting: 'mlp_end' on the MLP branch output
    before the residual add (the paper's default), 'mlp_mid' after the hidden activation (CBS
    then has mlp_ratio*dim scales), 'mlp_front' on the MLP input, 'attn' on the attention branch
    output, 'attn_mlp' on both branch outputs.

    ``token_mixer`` replaces multi-head attention (e.g. an AFT layer); it is called as
    ``token_mixer(x, grid)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 norm_layer: Callable[[int], nn.Module] = None, cb_mode: str = 'none',
                 cb_position: str = 'mlp_end', token_mixer: nn.Module = None):
        super().__init__()
        if cb_position not in CB_POSITIONS:
            raise ValueError(f'cb_position={cb_position!r} is not one of {CB_POSITIONS}')
        norm_layer = norm_layer or (lambda d: nn.LayerNorm(d, eps=1e-6))
        hidden = int(dim * mlp_ratio)
        self.norm1 = norm_layer(dim)
        self.attn = token_mixer or Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.cb_attn = make_broadcast(cb_mode if cb_position in ('attn', 'attn_mlp') else 'none',
                                      dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        mode_at = {pos: cb_mode if cb_position == pos else 'none'
                   for pos in ('mlp_front', 'mlp_mid', 'mlp_end')}
        if cb_position == 'attn_mlp':
            mode_at['mlp_end'] = cb_mode
        self.mlp = Mlp(dim, hidden, drop,
                       cb_front=make_broadcast(mode_at['mlp_front'], dim),
                       cb_mid=make_broadcast(mode_at['mlp_mid'], hidden),
                       cb_end=make_broadcast(mode_at['mlp_end'], dim))

    def forward(self, x: Tensor, grid: Tuple[int, int] = None, return_attn: bool = False):
        if return_attn:
            if not isinstance(self.attn, Attention):
                raise TypeError(f'{type(self.attn).__name__} has no attention map')
            y, attn = self.attn(self.norm1(x), grid, return_attn=True)
        else:
            y, attn = self.attn(self.norm1(x), grid), None
        x = x + self.drop_path(self.cb_attn(y))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, attn) if return_attn else x


def init_linear_and_norm(module: nn.Module) -> None:
    """trunc-normal(0.02) linear weights, zero biases, unit LayerNorms (timm's and Swin's)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def init_vit_weights(module: nn.Module) -> None:
    """timm's default ViT init: :func:`init_linear_and_norm`, plus the patch embedding."""
    init_linear_and_norm(module)
    if isinstance(module, nn.Conv2d) and module.kernel_size[0] > 1:
        # Patch embedding: lecun-normal-like fan-in init.
        fan_in = module.in_channels * math.prod(module.kernel_size)
        nn.init.trunc_normal_(module.weight, std=math.sqrt(1.0 / fan_in))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def grid_tokens_to_map(x: Tensor, grid: Tuple[int, int], num_prefix_tokens: int) -> Tensor:
    """(B, prefix + h*w, C) tokens -> (B, C, h, w) map, prefix tokens dropped."""
    B, _, C = x.shape
    return x[:, num_prefix_tokens:].transpose(1, 2).reshape(B, C, grid[0], grid[1]).contiguous()


__all__ = ['Attention', 'Block', 'DropPath', 'Mlp', 'PatchEmbed', 'CB_MODES', 'CB_POSITIONS',
           'make_broadcast', 'pad_to_multiple', 'resize_pos_embed', 'init_linear_and_norm',
           'init_vit_weights',
           'grid_tokens_to_map']
