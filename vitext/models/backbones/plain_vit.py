"""The part every plain (single-stride) ViT backbone of vitext shares: patch embedding of an
input padded to the patch size, optional class token and absolute position table (resized to
each input's grid), the blocks, ``out_indices`` maps (NCHW, stride = patch size), optional final
norm, the optional 4-level pyramid, activation checkpointing and weight loading.

Subclasses (CBViT, AFTViT) build ``self.blocks`` (modules called as ``block(x, grid)``)."""
from typing import Dict, List, Literal, Optional, Sequence, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..layers.pyramid import ViTFeaturePyramid
from ..layers.vit import (PatchEmbed, grid_tokens_to_map, init_vit_weights, pad_to_multiple,
                          resize_pos_embed)
from ..weights import load_pretrained


def resolve_arch(arch: Union[str, dict], zoo: Dict[str, dict], keys: Sequence[str]) -> dict:
    """An ``arch`` name from ``zoo``, or a dict holding at least ``keys``."""
    if isinstance(arch, str):
        if arch not in zoo:
            raise ValueError(f'arch {arch!r} is not one of {sorted(zoo)} (or a dict with '
                             f'{", ".join(keys)})')
        return dict(zoo[arch])
    missing = [k for k in keys if k not in arch]
    if missing:
        raise ValueError(f'arch dict {arch} lacks {missing}')
    return dict(arch)


def drop_path_rates(rate: float, depth: int) -> List[float]:
    """Stochastic depth growing linearly from 0 to ``rate`` over the blocks."""
    return torch.linspace(0, rate, depth).tolist()


def vit_checkpoint_filter(state: Dict[str, Tensor], model: 'PlainViT') -> Dict[str, Tensor]:
    """timm/DeiT-style ViT weights -> a PlainViT: names already match; a distillation token is
    dropped, the final norm too when the model has none, and the position table is resized to
    the model's grid."""
    state = dict(state)
    if model.norm is None:
        state.pop('norm.weight', None)
        state.pop('norm.bias', None)
    num_prefix = 1
    if 'dist_token' in state:  # DeiT distilled: [cls, dist, grid...]
        state.pop('dist_token')
        num_prefix = 2
    pos = state.get('pos_embed')
    if pos is not None and pos.dim() == 3 and model.pos_embed is not None:
        if num_prefix == 2:
            pos = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        prefix = model.num_prefix_tokens
        side = int(round((pos.shape[1] - prefix) ** 0.5))
        if side * side == pos.shape[1] - prefix:
            pos = resize_pos_embed(pos, model.pos_grid, (side, side), prefix)
        state['pos_embed'] = pos
    return state


class PlainViT(BaseModule):
    """Base class; see the module docstring. ``optional_weights`` are substrings of parameter
    names a pre-trained checkpoint may lack (they keep their init)."""
    optional_weights = ('pyramid.',)

    def __init__(self, embed_dims: int, depth: int, img_size: int = 224, patch_size: int = 16,
                 in_channels: int = 3, class_token: bool = True, pos_embed: bool = True,
                 drop_rate: float = 0., out_indices: Sequence[int] = (3, 5, 7, 11),
                 final_norm: bool = False, out_pyramid: bool = True,
                 pyramid_norm_cfg: Optional[dict] = None, with_cp: bool = False,
                 out_type: Literal['featmap', 'cls_token'] = 'featmap',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if out_type not in ('featmap', 'cls_token'):
            raise ValueError(f"out_type={out_type!r} is not one of ('featmap', 'cls_token')")
        if out_type == 'cls_token' and (not class_token or out_pyramid):
            raise ValueError("out_type='cls_token' needs a class token and out_pyramid=False")
        self.out_type = out_type
        self.out_indices = tuple(out_indices)
        bad = [i for i in self.out_indices if not 0 <= i < depth]
        if bad:
            raise ValueError(f'out_indices {bad} out of range for {depth} blocks')
        if out_pyramid and len(self.out_indices) != 4:
            raise ValueError(f'out_pyramid needs 4 out_indices, got {self.out_indices}')
        self.embed_dims = embed_dims
        self.depth = depth
        self.patch_size = patch_size
        self.pos_grid = (img_size // patch_size, img_size // patch_size)
        self.num_prefix_tokens = 1 if class_token else 0
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims)) if class_token else None
        tokens = self.num_prefix_tokens + self.pos_grid[0] * self.pos_grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, embed_dims)) if pos_embed else None
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6) if final_norm else None
        self.pyramid = ViTFeaturePyramid(embed_dims, pyramid_norm_cfg) if out_pyramid else None

    def init_weights(self) -> None:
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(init_vit_weights)
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'], vit_checkpoint_filter,
                            optional=self.optional_weights)
        elif self.init_cfg is not None:
            super().init_weights()

    def tokens(self, x: Tensor):
        """Images -> (tokens (B, prefix + h*w, C), grid (h, w))."""
        x = pad_to_multiple(x, self.patch_size)
        tokens, grid = self.patch_embed(x)
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
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, grid, use_reentrant=False)
            else:
                x = block(x, grid)
            if i == last and self.norm is not None:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(x[:, 0] if self.out_type == 'cls_token' else
                            grid_tokens_to_map(x, grid, self.num_prefix_tokens))
        return self.pyramid(outs) if self.pyramid is not None else tuple(outs)
