"""CB-ViT: a plain ViT whose blocks broadcast the mean token (Context Broadcasting, SPEC §3),
as an mmseg/mmdet backbone returning NCHW maps (a 4-level pyramid by default)."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..layers.pyramid import ViTFeaturePyramid
from ..layers.vit import (CB_MODES, Block, PatchEmbed, grid_tokens_to_map, init_vit_weights,
                          pad_to_multiple, resize_pos_embed)
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


def checkpoint_filter_fn(state: Dict[str, Tensor], model: 'CBViT') -> Dict[str, Tensor]:
    """timm/DeiT ViT weights -> CBViT: names already match; a distillation token is dropped, the
    final norm too when the model has none (final_norm=False), and the position table is
    resized to the model's grid."""
    state = dict(state)
    if model.norm is None:
        state.pop('norm.weight', None)
        state.pop('norm.bias', None)
    num_prefix = 1
    if 'dist_token' in state:  # DeiT distilled: [cls, dist, grid...]
        state.pop('dist_token')
        num_prefix = 2
    pos = state.get('pos_embed')
    if pos is not None and pos.dim() == 3:
        if num_prefix == 2:
            pos = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        side = int(round((pos.shape[1] - 1) ** 0.5))
        if side * side == pos.shape[1] - 1:
            pos = resize_pos_embed(pos, model.pos_grid, (side, side), num_prefix_tokens=1)
        state['pos_embed'] = pos
    return state


class CBViT(BaseModule):
    """Vision Transformer with Context Broadcasting.

    Args:
        arch: 'tiny' (192, 3 heads), 'small' (384, 6), 'base' (768, 12), or a dict with
            embed_dims, num_layers, num_heads (and optionally mlp_ratio).
        img_size: pre-training resolution; sets the position table's grid, which is resized
            to every input's grid (inputs are padded to a multiple of the patch size).
        cb_mode: 'none' (plain ViT), 'cb' or 'cbs'.
        cb_position: 'mlp_end' (default), 'mlp_mid', 'mlp_front', 'attn' or 'attn_mlp'.
        cb_layers: block indices that get CB (default: all), e.g. range(6, 12).
        out_indices: blocks whose outputs are returned.
        final_norm: apply the final LayerNorm to the last block's output.
        out_pyramid: turn the four stride-16 outputs into strides 4/8/16/32 (SPEC §4);
            False returns one stride-16 map per ``out_indices`` entry.
        pyramid_norm_cfg: norm between the x4 deconvolutions.
        with_cp: activation checkpointing of the blocks.
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads a timm/DeiT ViT (``.pth``
            or ``.safetensors``) or vitext checkpoint, strictly (CBS scales and the pyramid may
            be absent).
    """
    arch_zoo = {
        'tiny': dict(embed_dims=192, num_layers=12, num_heads=3),
        'small': dict(embed_dims=384, num_layers=12, num_heads=6),
        'base': dict(embed_dims=768, num_layers=12, num_heads=12),
    }
    num_prefix_tokens = 1

    def __init__(self, arch: Union[str, dict] = 'small', img_size: int = 224,
                 patch_size: int = 16, in_channels: int = 3, qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 cb_mode: str = 'cb', cb_position: str = 'mlp_end',
                 cb_layers: Optional[Sequence[int]] = None,
                 out_indices: Sequence[int] = (3, 5, 7, 11), final_norm: bool = False,
                 out_pyramid: bool = True, pyramid_norm_cfg: Optional[dict] = None,
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'num_layers', 'num_heads'))
        dim, depth = settings['embed_dims'], settings['num_layers']
        if cb_mode not in CB_MODES:
            raise ValueError(f'cb_mode={cb_mode!r} is not one of {CB_MODES}')
        self.cb_layers = tuple(range(depth)) if cb_layers is None else tuple(cb_layers)
        self.out_indices = tuple(out_indices)
        for name, indices in (('out_indices', self.out_indices), ('cb_layers', self.cb_layers)):
            bad = [i for i in indices if not 0 <= i < depth]
            if bad:
                raise ValueError(f'{name} {bad} out of range for {depth} blocks')
        if out_pyramid and len(self.out_indices) != 4:
            raise ValueError(f'out_pyramid needs 4 out_indices, got {self.out_indices}')
        self.embed_dims = dim
        self.patch_size = patch_size
        self.pos_grid = (img_size // patch_size, img_size // patch_size)
        self.final_norm = final_norm
        self.with_cp = with_cp

        self.patch_embed = PatchEmbed(patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + self.pos_grid[0] * self.pos_grid[1], dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(dim, settings['num_heads'], settings.get('mlp_ratio', 4.), qkv_bias, drop_rate,
                  attn_drop_rate, rates[i], cb_mode=cb_mode if i in self.cb_layers else 'none',
                  cb_position=cb_position) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6) if final_norm else None
        self.pyramid = ViTFeaturePyramid(dim, pyramid_norm_cfg) if out_pyramid else None

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(init_vit_weights)
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'], checkpoint_filter_fn,
                            optional=('cb_', 'pyramid.'))
        elif self.init_cfg is not None:
            super().init_weights()

    def _tokens(self, x: Tensor):
        x = pad_to_multiple(x, self.patch_size)
        tokens, grid = self.patch_embed(x)
        pos = resize_pos_embed(self.pos_embed, grid, self.pos_grid, self.num_prefix_tokens)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + pos
        return self.pos_drop(x), grid

    def forward(self, x: Tensor):
        x, grid = self._tokens(x)
        outs = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
            if i == last and self.norm is not None:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(grid_tokens_to_map(x, grid, self.num_prefix_tokens))
        return self.pyramid(outs) if self.pyramid is not None else tuple(outs)

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> List[Tensor]:
        """Each block's attention probabilities (B, heads, N, N) for input images ``x``
        (N includes the class token). The forward pass itself is unchanged."""
        x, _ = self._tokens(x)
        maps = []
        for block in self.blocks:
            x, attn = block(x, return_attn=True)
            maps.append(attn)
        return maps
