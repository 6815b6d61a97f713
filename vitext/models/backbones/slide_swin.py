"""Slide-Swin (Slide-Transformer, docs/models.md#slide-swin): Swin with slide attention in the
first stages and Swin's shifted 7x7 window attention in the others.

Parameter names follow the public Slide-Swin classification code (``patch_embed``,
``layers.i.blocks.j.{norm1,attn,norm2,mlp}``, ``layers.i.downsample``), except inside slide
attention (``shift``/``deform`` for ``dep_conv``/``dep_conv1``, a (heads, k^2) position table and
a (3, heads, d) qkv layout);
:func:`~vitext.models.conversions.slide_swin_checkpoint_filter` converts the public layout and
Swin's (official, timm, mmseg/mmpretrain).
Inputs of any size are padded (patches of 4, odd maps before merging, windows).
"""
import re
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...ops.slide import SlideAttention
from ...ops.window import WindowAttention
from ..layers import (HierarchicalBlock, PatchEmbed, check_head_dims, check_int_in_range,
                      check_out_indices, checkpointed_call, drop_path_rates,
                      init_linear_and_norm, resolve_arch)
from ..conversions import slide_swin_checkpoint_filter
from .base import SlideBackbone


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token (LayerNorm + linear 4C -> 2C); odd maps are zero-padded.
    Concatenation order (0,0), (1,0), (0,1), (1,1) as in Swin."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """``depth`` blocks (slide attention, or window attention alternating shift 0 and w/2),
    then optional patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, slide: bool, kernel_size: int,
                 window_size: int, mlp_ratio: float, qkv_bias: bool, drop: float,
                 attn_drop: float, drop_paths: Sequence[float], downsample: bool,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp

        def attention(i: int) -> nn.Module:
            if slide:
                return SlideAttention(dim=dim, num_heads=num_heads, kernel_size=kernel_size,
                                      qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
            return WindowAttention(dim=dim, num_heads=num_heads, window_size=window_size,
                                   shift=window_size // 2 if i % 2 else 0, qkv_bias=qkv_bias,
                                   attn_drop=attn_drop, proj_drop=drop)

        self.blocks = nn.ModuleList(
            HierarchicalBlock(dim=dim, attn=attention(i), mlp_ratio=mlp_ratio, drop=drop,
                              drop_path=drop_paths[i], norm_layer=nn.LayerNorm)
            for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor):
        """(B, H, W, C) -> (stage output, input of the next stage)."""
        for block in self.blocks:
            x = checkpointed_call(block, x, enabled=self.with_cp)
        return x, (self.downsample(x) if self.downsample is not None else x)


class SlideSwinTransformer(SlideBackbone):
    """Slide-Swin backbone: 4 NCHW maps at strides 4, 8, 16, 32 (``out_indices``).

    Args:
        arch: 'tiny', 'small', 'base' or a dict with embed_dims, depths, num_heads (and
            optionally drop_path_rate).
        in_channels: image channels.
        patch_size: patch embedding stride (4).
        kernel_size: slide attention neighbourhood (k x k, odd).
        num_slide_stages: how many leading stages use slide attention.
        window_size: Swin window of the other stages.
        mlp_ratio: MLP hidden width / channels.
        qkv_bias: bias in the qkv projections.
        drop_rate: dropout after the patch embedding, attention projections and MLPs.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth of the last block (linear from 0 over all blocks);
            None for the arch's default (paper: T 0.2, S 0.3, B 0.5).
        out_indices: stages whose outputs are returned (each through its own LayerNorm).
        frozen_stages: -1 none; 0 the patch embedding; i > 0 also stages 1..i (eval mode, no grad).
        with_cp: activation checkpointing per block.
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads public Slide-Swin
            classification weights (converted, see ``checkpoint_filter``) or
            vitext's own, strictly (the output norms may be absent).
    """
    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                     drop_path_rate=0.2),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24),
                      drop_path_rate=0.3),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                     drop_path_rate=0.5),
    }
    optional_weights = ('out_norms.',)
    checkpoint_filter = staticmethod(slide_swin_checkpoint_filter)

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 patch_size: int = 4, kernel_size: int = 3, num_slide_stages: int = 2,
                 window_size: int = 7, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'depths', 'num_heads'),
                            optional=('drop_path_rate',))
        depths, heads = tuple(arch['depths']), tuple(arch['num_heads'])
        if len(depths) != len(heads):
            raise ValueError(f'arch depths {depths} and num_heads {heads} differ in length')
        self.out_indices = check_out_indices(out_indices, len(depths), 'stages')
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.1)
        self.frozen_stages = check_int_in_range(frozen_stages, -1, len(depths), 'frozen_stages')
        check_int_in_range(num_slide_stages, 0, len(depths), 'num_slide_stages')
        self.depths = depths
        self.num_blocks = sum(depths)
        dims = [arch['embed_dims'] * 2 ** i for i in range(len(depths))]
        check_head_dims(dims, heads)
        self.num_features = dims
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_channels=in_channels,
                                      embed_dims=dims[0], norm_layer=nn.LayerNorm)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = drop_path_rates(drop_path_rate, sum(depths))
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(SwinStage(
                dim=dims[i], depth=depth, num_heads=heads[i], slide=i < num_slide_stages,
                kernel_size=kernel_size, window_size=window_size, mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias, drop=drop_rate, attn_drop=attn_drop_rate,
                drop_paths=rates[start:start + depth], downsample=i < len(depths) - 1,
                with_cp=with_cp))
        self.out_norms = nn.ModuleList(
            nn.LayerNorm(d) if i in self.out_indices else nn.Identity() for i, d in enumerate(dims))
        self.freeze_stages()

    def init_own_weights(self) -> None:
        # The public code's init; convs keep PyTorch's default (the deformed shifts).
        self.apply(init_linear_and_norm)

    def block_depth(self, name: str) -> Optional[int]:
        """Swin's convention (mmpretrain): the patch merging after stage i goes with stage i's
        last block."""
        if name.startswith('patch_embed.'):
            return 0
        match = re.match(r'layers\.(\d+)\.(blocks\.(\d+)|downsample)\.', name)
        if not match:
            return None
        stage = int(match.group(1))
        if match.group(3) is None:
            return sum(self.depths[:stage + 1])
        return sum(self.depths[:stage]) + int(match.group(3)) + 1

    def frozen_parts(self) -> List[nn.Module]:
        return [self.patch_embed] + [m for i in range(self.frozen_stages)
                                     for m in (self.layers[i], self.out_norms[i])]

    def forward(self, x: Tensor):
        x = self.pos_drop(self.patch_embed(x))
        outs = []
        for i, layer in enumerate(self.layers):
            out, x = layer(x)
            if i in self.out_indices:
                outs.append(self.out_norms[i](out).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
