"""Slide-PVT (Slide-Transformer, docs/models.md#slide-pvt): PVT-v1 with slide attention replacing
spatial-reduction attention in the first stages.

Parameter names follow PVT-v1's public code (``patch_embed{i}``, ``pos_embed{i}``, ``block{i}.j``
with ``attn.q``/``attn.kv``/``attn.sr``/``attn.norm``, final ``norm``); slide-attention blocks use
``attn.qkv`` etc. as in :class:`~vitext.ops.SlideAttention`. Position tables are resized
(bilinear) to each input's grid.

PVT-v1 classification checkpoints (the public code's ``pvt_tiny.pth`` ...) load through
:func:`~vitext.models.conversions.slide_pvt_checkpoint_filter`: stages that keep
spatial-reduction attention take them as they are; in slide-attention stages ``q`` and ``kv``
become ``qkv`` (both are already in (q | k | v, head, channel) row order), ``sr`` and ``norm``
are dropped, and the parameters PVT-v1 has no counterpart for (the shift bias, the deformed
conv, the position table) keep their initialisation, listed in a warning.
"""
import re
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ...ops.slide import SlideAttention
from ...ops.tokens import resize_grid_tokens
from ..layers import (HierarchicalBlock, PatchEmbed, SpatialReductionAttention, check_head_dims,
                      check_int_in_range, check_out_indices, checkpointed_call, drop_path_rates,
                      init_linear_and_norm, resolve_arch, to_2tuple)
from ..conversions import slide_pvt_checkpoint_filter
from .base import SlideBackbone

PVT_NORM = partial(nn.LayerNorm, eps=1e-6)  # PVT-v1's blocks and final norm
# FX calls it as one function: it compares the input's grid with the table's.
torch.fx.wrap('resize_grid_tokens')


class SlidePVT(SlideBackbone):
    """Slide-PVT backbone: 4 NCHW maps at strides 4, 8, 16, 32 (``out_indices``).

    Args:
        arch: 'tiny', 'small', 'medium', 'large' (PVT-v1 depths) or a dict with depths (and
            optionally embed_dims, num_heads, mlp_ratios, sr_ratios; PVT-v1's otherwise).
        img_size: the size (int or (h, w)) the position tables are made for (they are
            resized to each input).
        in_channels: image channels.
        kernel_size: slide attention neighbourhood (k x k, odd).
        num_slide_stages: how many leading stages use slide attention instead of SR attention.
        qkv_bias: bias in the q/kv (qkv) projections.
        drop_rate: dropout after the position tables, attention projections and MLPs.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth of the last block (linear from 0 over all blocks).
        out_indices: stages whose outputs are returned (the last one after the final norm);
            an int for one stage, negative indices count from the end.
        frozen_stages: -1 none; 0 the stem (stage 1's patch embedding and position table);
            i > 0 also stages 1..i (each with its patch embedding and position table), and the
            final norm when i is the last stage (eval mode, no gradient).
        with_cp: activation checkpointing per block.
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads PVT-v1 classification
            weights (see the module docstring), public-layout Slide-PVT or vitext weights,
            strictly.
    """
    arch_zoo = {
        'tiny': dict(depths=(2, 2, 2, 2)),
        'small': dict(depths=(3, 4, 6, 3)),
        'medium': dict(depths=(3, 4, 18, 3)),
        'large': dict(depths=(3, 8, 27, 3)),
    }
    pvt_v1 = dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8),
                  mlp_ratios=(8, 8, 4, 4), sr_ratios=(8, 4, 2, 1))
    checkpoint_filter = staticmethod(slide_pvt_checkpoint_filter)

    def __init__(self, arch: Union[str, dict] = 'tiny',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 in_channels: int = 3, kernel_size: int = 3, num_slide_stages: int = 2,
                 qkv_bias: bool = True, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3), frozen_stages: int = -1,
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = {**self.pvt_v1, **resolve_arch(arch, self.arch_zoo, ('depths',),
                                              optional=tuple(self.pvt_v1))}
        depths = tuple(arch['depths'])
        self.out_indices = check_out_indices(out_indices, len(depths), 'stages')
        self.frozen_stages = check_int_in_range(frozen_stages, -1, len(depths), 'frozen_stages')
        check_int_in_range(num_slide_stages, 0, len(depths), 'num_slide_stages')
        dims, heads = arch['embed_dims'], arch['num_heads']
        check_head_dims(dims, heads)
        self.with_cp = with_cp
        self.num_stages = len(depths)
        self.depths = depths
        self.num_blocks = sum(depths)
        self.num_features = list(dims)
        strides = [4] + [2] * (len(depths) - 1)
        self.pos_grids, (height, width) = [], to_2tuple(img_size, 'img_size')
        rates = drop_path_rates(drop_path_rate, sum(depths))
        for i, depth in enumerate(depths):
            height, width = height // strides[i], width // strides[i]
            self.pos_grids.append((height, width))
            setattr(self, f'patch_embed{i + 1}', PatchEmbed(
                patch_size=strides[i], in_channels=in_channels if i == 0 else dims[i - 1],
                embed_dims=dims[i], norm_layer=nn.LayerNorm))
            setattr(self, f'pos_embed{i + 1}',
                    nn.Parameter(torch.zeros(1, height * width, dims[i])))

            def attention() -> nn.Module:
                if i < num_slide_stages:
                    return SlideAttention(dim=dims[i], num_heads=heads[i],
                                          kernel_size=kernel_size, qkv_bias=qkv_bias,
                                          attn_drop=attn_drop_rate, proj_drop=drop_rate)
                return SpatialReductionAttention(dim=dims[i], num_heads=heads[i],
                                                 sr_ratio=arch['sr_ratios'][i],
                                                 qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                                                 proj_drop=drop_rate)

            start = sum(depths[:i])
            setattr(self, f'block{i + 1}', nn.ModuleList(
                HierarchicalBlock(dim=dims[i], attn=attention(), mlp_ratio=arch['mlp_ratios'][i],
                                  drop=drop_rate, drop_path=rates[start + j],
                                  norm_layer=PVT_NORM)
                for j in range(depth)))
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = PVT_NORM(dims[-1])
        self.freeze_stages()

    def init_own_weights(self) -> None:
        for i in range(self.num_stages):
            nn.init.trunc_normal_(getattr(self, f'pos_embed{i + 1}'), std=.02)
        self.apply(init_linear_and_norm)

    def frozen_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        parts = [self.patch_embed1, self.pos_embed1]
        for i in range(1, self.frozen_stages + 1):
            parts += [getattr(self, f'patch_embed{i}'), getattr(self, f'pos_embed{i}'),
                      getattr(self, f'block{i}')]
        return parts + ([self.norm] if self.frozen_stages == self.num_stages else [])

    def block_depth(self, name: str) -> Optional[int]:
        """Stage i's patch embedding and position table (the downsampling before it) go with
        the previous stage's last block, as Swin's patch merging does; stage 1's are the stem."""
        match = re.match(r'(?:patch_embed|pos_embed)(\d+)(?:\.|$)', name)
        if match:
            return sum(self.depths[:int(match.group(1)) - 1])
        match = re.match(r'block(\d+)\.(\d+)\.', name)
        if match:
            return sum(self.depths[:int(match.group(1)) - 1]) + int(match.group(2)) + 1
        return None

    def forward_stage(self, i: int, x: Tensor) -> Tensor:
        """Stage ``i`` (0-based): NCHW input (images or the previous stage's output) ->
        (B, H, W, C) output of its last block (before the final norm)."""
        x = getattr(self, f'patch_embed{i + 1}')(x)
        grid = x.shape[1:3]
        pos = resize_grid_tokens(getattr(self, f'pos_embed{i + 1}'), grid, self.pos_grids[i], 0,
                                 mode='bilinear')
        x = self.pos_drop(x + pos.view(1, grid[0], grid[1], -1))
        for block in getattr(self, f'block{i + 1}'):
            x = checkpointed_call(block, x, enabled=self.with_cp)
        return x

    def forward(self, x: Tensor):
        outs = []
        for i in range(self.num_stages):
            x = self.forward_stage(i, x)
            if i == self.num_stages - 1:
                x = self.norm(x)
            x = x.permute(0, 3, 1, 2).contiguous()
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
