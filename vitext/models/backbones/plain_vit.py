"""The part every plain (single-stride) ViT backbone of vitext shares: patch embedding of an
input padded to the patch size, optional class token and absolute position table (resized to
each input's grid), the blocks, ``out_indices`` maps (NCHW, stride = patch size), optional final
norm, the optional 4-level pyramid, activation checkpointing and weight loading.

Subclasses (CBViT, AFTViT) build ``self.blocks`` (modules called as ``block(x, grid)``)."""
import re
from typing import List, Literal, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..layers import (PatchEmbed, ViTFeaturePyramid, check_int_in_range, check_out_indices,
                      checkpointed_call, grid_tokens_to_map, init_vit_weights, resize_pos_embed,
                      to_2tuple)
from ..conversions import vit_checkpoint_filter
from .base import VitextBackbone

# FX calls it as one function: it compares the input's grid with the table's.
torch.fx.wrap('resize_pos_embed')


class PlainViT(VitextBackbone):
    """Base class; see the module docstring.

    Args:
        embed_dims: token width.
        depth: number of blocks (the subclass builds them).
        img_size: pre-training resolution (int or (h, w)); sets the position table's grid.
        patch_size: patch (and output stride).
        in_channels: image channels.
        class_token: prepend a class token.
        pos_embed: add an absolute position table, resized to each input's grid.
        drop_rate: dropout after the position table.
        out_indices: blocks whose outputs are returned (an int for one block; negative
            indices count from the end).
        final_norm: LayerNorm (eps 1e-6) on the last block's output.
        out_pyramid: turn the four outputs (at the patch stride) into strides 4/8/16/32
            (docs/models.md#feature-pyramid; the patch size must then be a power of two).
        pyramid_norm_cfg: norm between the pyramid's x4 deconvolutions (default BN).
        frozen_stages: -1 none; 0 the stem (patch embedding, class token, position table);
            i > 0 also blocks 1..i, and the final norm when i is the last block (eval mode, no
            gradient). The pyramid is never frozen.
        with_cp: activation checkpointing of the blocks.
        out_type: 'featmap' (NCHW maps of ``out_indices``) or 'cls_token' (the (B, C) class
            token of those blocks, for classification; needs a class token, no pyramid).
        init_cfg: mmengine init config; ``dict(type='Pretrained', checkpoint=path)`` loads a
            timm/DeiT-layout checkpoint strictly (``optional_weights`` may be absent).
    """
    optional_weights = ('pyramid.',)
    checkpoint_filter = staticmethod(vit_checkpoint_filter)

    def __init__(self, embed_dims: int, depth: int, img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16, in_channels: int = 3, class_token: bool = True,
                 pos_embed: bool = True, drop_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (3, 5, 7, 11),
                 final_norm: bool = False, out_pyramid: bool = True,
                 pyramid_norm_cfg: Optional[dict] = None, frozen_stages: int = -1,
                 with_cp: bool = False,
                 out_type: Literal['featmap', 'cls_token'] = 'featmap',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if out_type not in ('featmap', 'cls_token'):
            raise ValueError(f"out_type={out_type!r} is not one of ('featmap', 'cls_token')")
        if out_type == 'cls_token' and (not class_token or out_pyramid):
            raise ValueError("out_type='cls_token' needs a class token and out_pyramid=False")
        self.out_type = out_type
        self.out_indices = check_out_indices(out_indices, depth, 'blocks')
        self.frozen_stages = check_int_in_range(frozen_stages, -1, depth, 'frozen_stages')
        height, width = to_2tuple(img_size, 'img_size')
        check_int_in_range(patch_size, 1, min(height, width), 'patch_size')
        if out_pyramid and len(self.out_indices) != 4:
            raise ValueError(f'out_pyramid needs 4 out_indices, got {self.out_indices}')
        self.embed_dims = embed_dims
        self.depth = self.num_blocks = depth
        self.patch_size = patch_size
        self.pos_grid = (height // patch_size, width // patch_size)
        self.num_prefix_tokens = 1 if class_token else 0
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_channels=in_channels,
                                      embed_dims=embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims)) if class_token else None
        tokens = self.num_prefix_tokens + self.pos_grid[0] * self.pos_grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, embed_dims)) if pos_embed else None
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6) if final_norm else None
        self.pyramid = (ViTFeaturePyramid(embed_dims=embed_dims, stride=patch_size,
                                          norm_cfg=pyramid_norm_cfg)
                        if out_pyramid else None)

    def init_own_weights(self) -> None:
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(init_vit_weights)

    def frozen_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        parts = [self.patch_embed, self.cls_token, self.pos_embed]
        parts += list(self.blocks[:self.frozen_stages])
        if self.frozen_stages == self.depth:
            parts.append(self.norm)
        return [p for p in parts if p is not None]

    def block_depth(self, name: str) -> Optional[int]:
        if name.startswith(('patch_embed.', 'cls_token', 'pos_embed')):
            return 0
        match = re.match(r'blocks\.(\d+)\.', name)
        return int(match.group(1)) + 1 if match else None

    def tokens(self, x: Tensor):
        """Images -> (tokens (B, prefix + h*w, C), grid (h, w))."""
        x = self.patch_embed(x)
        grid = (x.shape[1], x.shape[2])
        tokens = x.flatten(1, 2)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        if self.pos_embed is not None:
            tokens = tokens + resize_pos_embed(self.pos_embed, grid, self.pos_grid,
                                               self.num_prefix_tokens)
        return self.pos_drop(tokens), grid

    def forward(self, x: Tensor):
        x, grid = self.tokens(x)
        outs = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = checkpointed_call(block, x, grid, enabled=self.with_cp)
            if i == last and self.norm is not None:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(x[:, 0] if self.out_type == 'cls_token' else
                            grid_tokens_to_map(x, grid, self.num_prefix_tokens))
        return self.pyramid(outs) if self.pyramid is not None else tuple(outs)
