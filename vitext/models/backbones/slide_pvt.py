"""Slide-PVT (Slide-Transformer, SPEC §2): PVT-v1 with slide attention replacing
spatial-reduction attention in the first stages.

Parameter names follow PVT-v1's code (``patch_embed{i}``, ``pos_embed{i}``, ``block{i}.j`` with
``attn.q``/``attn.kv``/``attn.sr``/``attn.norm``, final ``norm``) so PVT-v1 weights load into the
stages that keep spatial-reduction attention; slide-attention blocks use ``attn.qkv`` etc. as in
:class:`~vitext.ops.SlideAttention`. Position tables are resized (bilinear) to each input's grid.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...ops.slide import SlideAttention, merge_all_shift_convs
from ...ops.tokens import resize_grid_tokens
from ..layers.vit import DropPath, Mlp, init_linear_and_norm, pad_to_multiple
from ..weights import load_pretrained
from .plain_vit import drop_path_rates, resolve_arch
from .slide_swin import slide_attention_layout


class SpatialReductionAttention(nn.Module):
    """PVT-v1 attention on a (B, H, W, C) map: keys/values from the map downsampled by an
    ``sr_ratio`` strided conv (+ LayerNorm); plain global attention when ``sr_ratio`` is 1."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        nh, d = self.num_heads, C // self.num_heads
        q = self.q(x).view(B, H * W, nh, d).transpose(1, 2)
        src = x
        if self.sr_ratio > 1:  # pad so that every pixel reaches a reduced token
            src = pad_to_multiple(x.permute(0, 3, 1, 2), self.sr_ratio)
            src = self.norm(self.sr(src).permute(0, 2, 3, 1))
        k, v = self.kv(src).reshape(B, -1, 2, nh, d).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v,
                                           dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(y.transpose(1, 2).reshape(B, H, W, C)))


class PVTBlock(nn.Module):
    """Pre-norm block on a (B, H, W, C) map."""

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float, drop: float,
                 drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PVTPatchEmbed(nn.Module):
    """``patch_size`` strided conv + LayerNorm, input zero-padded to a multiple: -> (B, H, W, C)."""

    def __init__(self, patch_size: int, in_channels: int, embed_dims: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(pad_to_multiple(x, self.patch_size)).permute(0, 2, 3, 1))


def slide_pvt_checkpoint_filter(state: Dict[str, Tensor],
                                model: 'SlidePVT') -> Dict[str, Tensor]:
    """PVT-v1 / public-layout / vitext weights -> SlidePVT: slide attention keys converted,
    the class token (and its slot in the last position table) dropped, position tables resized
    to the model's grids."""
    state = slide_attention_layout(state, model)
    state.pop('cls_token', None)
    for i, grid in enumerate(model.pos_grids, start=1):
        key = f'pos_embed{i}'
        pos = state.get(key)
        if pos is None:
            continue
        tokens = pos.shape[1]
        side = int(round(tokens ** 0.5))
        if side * side != tokens:  # PVT-v1's last table carries the class token first
            pos, side = pos[:, 1:], int(round((tokens - 1) ** 0.5))
        state[key] = resize_grid_tokens(pos, grid, (side, side), 0, mode='bilinear')
    return state


class SlidePVT(BaseModule):
    """Slide-PVT backbone: 4 NCHW maps at strides 4, 8, 16, 32 (``out_indices``).

    Args:
        arch: 'tiny', 'small', 'medium', 'large' (PVT-v1 depths) or a dict with depths (and
            optionally embed_dims, num_heads, mlp_ratios, sr_ratios).
        img_size: the size the position tables are made for (they are resized to each input).
        num_slide_stages: how many leading stages use slide attention instead of SR attention.
        with_cp: activation checkpointing per block.
    """
    arch_zoo = {
        'tiny': dict(depths=(2, 2, 2, 2)),
        'small': dict(depths=(3, 4, 6, 3)),
        'medium': dict(depths=(3, 4, 18, 3)),
        'large': dict(depths=(3, 8, 27, 3)),
    }
    pvt_v1 = dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8),
                  mlp_ratios=(8, 8, 4, 4), sr_ratios=(8, 4, 2, 1))

    def __init__(self, arch: Union[str, dict] = 'tiny', img_size: int = 224,
                 in_channels: int = 3, kernel_size: int = 3, num_slide_stages: int = 2,
                 qkv_bias: bool = True, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1, out_indices: Sequence[int] = (0, 1, 2, 3),
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = {**self.pvt_v1, **resolve_arch(arch, self.arch_zoo, ('depths',))}
        depths = tuple(arch['depths'])
        bad = [i for i in out_indices if not 0 <= i < len(depths)]
        if bad:
            raise ValueError(f'out_indices {bad} out of range for {len(depths)} stages')
        self.out_indices = tuple(out_indices)
        self.with_cp = with_cp
        self.num_stages = len(depths)
        dims = arch['embed_dims']
        self.num_features = list(dims)
        strides = [4] + [2] * (len(depths) - 1)
        self.pos_grids, size = [], img_size
        rates = drop_path_rates(drop_path_rate, sum(depths))
        for i, depth in enumerate(depths):
            size //= strides[i]
            self.pos_grids.append((size, size))
            in_ch = in_channels if i == 0 else dims[i - 1]
            setattr(self, f'patch_embed{i + 1}', PVTPatchEmbed(strides[i], in_ch, dims[i]))
            setattr(self, f'pos_embed{i + 1}', nn.Parameter(torch.zeros(1, size * size, dims[i])))

            def attention():
                if i < num_slide_stages:
                    return SlideAttention(dims[i], arch['num_heads'][i], kernel_size, qkv_bias,
                                          attn_drop=attn_drop_rate, proj_drop=drop_rate)
                return SpatialReductionAttention(dims[i], arch['num_heads'][i],
                                                 arch['sr_ratios'][i], qkv_bias, attn_drop_rate,
                                                 drop_rate)

            start = sum(depths[:i])
            setattr(self, f'block{i + 1}', nn.ModuleList(
                PVTBlock(dims[i], attention(), arch['mlp_ratios'][i], drop_rate,
                         rates[start + j]) for j in range(depth)))
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def init_weights(self) -> None:
        for i in range(self.num_stages):
            nn.init.trunc_normal_(getattr(self, f'pos_embed{i + 1}'), std=.02)
        self.apply(init_linear_and_norm)
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'], slide_pvt_checkpoint_filter)
        elif self.init_cfg is not None:
            super().init_weights()

    def switch_to_deploy(self) -> None:
        """Fold every slide attention's shift and deformed convs into one conv."""
        merge_all_shift_convs(self)

    def forward(self, x: Tensor):
        outs = []
        for i in range(self.num_stages):
            x = getattr(self, f'patch_embed{i + 1}')(x)
            grid = x.shape[1:3]
            pos = resize_grid_tokens(getattr(self, f'pos_embed{i + 1}'), grid,
                                     self.pos_grids[i], 0, mode='bilinear')
            x = self.pos_drop(x + pos.view(1, *grid, -1))
            for block in getattr(self, f'block{i + 1}'):
                if self.with_cp and self.training and x.requires_grad:
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            if i == self.num_stages - 1:
                x = self.norm(x)
            x = x.permute(0, 3, 1, 2).contiguous()
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
