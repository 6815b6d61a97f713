"""Slide-Swin (Slide-Transformer, SPEC §2): Swin with slide attention in the first stages and
Swin's shifted 7x7 window attention in the others.

Parameter names follow the public Slide-Swin classification code (``patch_embed``,
``layers.i.blocks.j.{norm1,attn,norm2,mlp}``, ``layers.i.downsample``), except inside slide
attention (``shift``/``deform`` for ``dep_conv``/``dep_conv1``, a (heads, k^2) position table and
a (3, heads, d) qkv layout); :func:`slide_swin_checkpoint_filter` converts the public layout.
Inputs of any size are padded (patches of 4, odd maps before merging, windows).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...ops.slide import SlideAttention, merge_all_shift_convs
from ...ops.window import WindowAttention
from ...ops.tokens import resize_grid_tokens
from ..layers.vit import DropPath, Mlp, init_linear_and_norm, pad_to_multiple
from ..weights import load_pretrained
from .plain_vit import drop_path_rates, resolve_arch


class HierarchicalBlock(nn.Module):
    """Pre-norm block on a (B, H, W, C) map: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: float = 0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token (LayerNorm + linear 4C -> 2C); odd maps are zero-padded.
    Concatenation order (0,0), (1,0), (0,1), (1,1) as in Swin."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.reduction(self.norm(x))


class PatchEmbedNorm(nn.Module):
    """Non-overlapping ``patch_size`` conv + LayerNorm: images -> (B, H/p, W/p, C); the input
    is zero-padded to a multiple of the patch size."""

    def __init__(self, patch_size: int, in_channels: int, embed_dims: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(pad_to_multiple(x, self.patch_size))
        return self.norm(x.permute(0, 2, 3, 1))


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
                return SlideAttention(dim, num_heads, kernel_size, qkv_bias, attn_drop=attn_drop,
                                      proj_drop=drop)
            return WindowAttention(dim, num_heads, window_size, window_size // 2 if i % 2 else 0,
                                   qkv_bias, attn_drop, drop)

        self.blocks = nn.ModuleList(
            HierarchicalBlock(dim, attention(i), mlp_ratio, drop, drop_paths[i])
            for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor):
        """(B, H, W, C) -> (stage output, input of the next stage)."""
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x, (self.downsample(x) if self.downsample is not None else x)


def _head_major_qkv(t: Tensor, num_heads: int) -> Tensor:
    """Public slide-attention qkv rows [h][q|k|v][d] -> vitext's [q|k|v][h][d]."""
    head_dim = t.shape[0] // (3 * num_heads)
    return t.reshape(num_heads, 3, head_dim, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def resize_relative_position_table(table: Tensor, window: int) -> Tensor:
    """((2w'-1)^2, heads) -> ((2w-1)^2, heads), bicubic, as timm does for Swin."""
    old, new = int(round(table.shape[0] ** 0.5)), 2 * window - 1
    return resize_grid_tokens(table, (new, new), (old, old), 0, mode='bicubic')


def slide_attention_layout(state: Dict[str, Tensor], model: nn.Module) -> Dict[str, Tensor]:
    """Convert public-code slide-attention keys (``dep_conv``, ``dep_conv1``, head-major qkv,
    (1, heads, 1, k^2, 1, 1) table) of any backbone to vitext's; switch the model to deploy form
    when the checkpoint is a deploy one. Works on the keys of ``model.named_modules()``."""
    out = dict(state)
    for name, module in model.named_modules():
        if not isinstance(module, SlideAttention):
            continue
        p = f'{name}.'
        if p + 'dep_conv.weight' in out:
            for suffix in ('weight', 'bias'):
                out[f'{p}shift.{suffix}'] = out.pop(f'{p}dep_conv.{suffix}')
                out[f'{p}deform.{suffix}'] = out.pop(f'{p}dep_conv1.{suffix}')
                key = f'{p}qkv.{suffix}'
                if key in out:
                    out[key] = _head_major_qkv(out[key], module.num_heads)
        table = out.get(p + 'relative_position_bias_table')
        if table is not None and table.dim() == 6:
            out[p + 'relative_position_bias_table'] = table.reshape(module.num_heads, -1)
        if p + 'merged.weight' in out and not module.deploy:
            module.switch_to_deploy()
        elif module.deploy and p + 'deform.weight' in out:
            module.fold_state_dict(out, p)
    return out


def slide_swin_checkpoint_filter(state: Dict[str, Tensor],
                                 model: 'SlideSwinTransformer') -> Dict[str, Tensor]:
    """Public Slide-Swin (or vitext) classification weights -> SlideSwinTransformer: slide
    attention keys converted, window buffers dropped (rebuilt here), window position tables
    resized to the model's window (the public configs use other windows in stages 3-4), the
    classifier's final norm dropped."""
    state = slide_attention_layout(state, model)
    own = model.state_dict()
    out = {}
    for key, value in state.items():
        if key.endswith(('relative_position_index', 'attn_mask')) or key in ('norm.weight',
                                                                             'norm.bias'):
            continue
        if key.endswith('relative_position_bias_table') and value.dim() == 2 and \
                key in own and own[key].shape != value.shape:
            window = int(round((own[key].shape[0] ** 0.5 + 1) / 2))
            value = resize_relative_position_table(value, window)
        out[key] = value
    return out


class SlideSwinTransformer(BaseModule):
    """Slide-Swin backbone: 4 NCHW maps at strides 4, 8, 16, 32 (``out_indices``).

    Args:
        arch: 'tiny', 'small', 'base' or a dict with embed_dims, depths, num_heads.
        kernel_size: slide attention neighbourhood (k x k).
        num_slide_stages: how many leading stages use slide attention.
        window_size: Swin window of the other stages.
        drop_path_rate: None for the arch's default (paper: T 0.2, S 0.3, B 0.5).
        frozen_stages: -1 none; 0 the patch embedding; i > 0 also stages 1..i (eval mode, no grad).
        with_cp: activation checkpointing per block.
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

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 patch_size: int = 4, kernel_size: int = 3, num_slide_stages: int = 2,
                 window_size: int = 7, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'depths', 'num_heads'))
        depths, heads = tuple(arch['depths']), tuple(arch['num_heads'])
        if len(depths) != len(heads):
            raise ValueError(f'arch depths {depths} and num_heads {heads} differ in length')
        bad = [i for i in out_indices if not 0 <= i < len(depths)]
        if bad:
            raise ValueError(f'out_indices {bad} out of range for {len(depths)} stages')
        if not -1 <= frozen_stages <= len(depths):
            raise ValueError(f'frozen_stages must be in [-1, {len(depths)}], got {frozen_stages}')
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.1)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        dims = [arch['embed_dims'] * 2 ** i for i in range(len(depths))]
        self.num_features = dims
        self.patch_embed = PatchEmbedNorm(patch_size, in_channels, dims[0])
        self.pos_drop = nn.Dropout(drop_rate)
        rates = drop_path_rates(drop_path_rate, sum(depths))
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(SwinStage(
                dims[i], depth, heads[i], slide=i < num_slide_stages, kernel_size=kernel_size,
                window_size=window_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                attn_drop=attn_drop_rate, drop_paths=rates[start:start + depth],
                downsample=i < len(depths) - 1, with_cp=with_cp))
        self.out_norms = nn.ModuleList(
            nn.LayerNorm(d) if i in self.out_indices else nn.Identity() for i, d in enumerate(dims))
        self._freeze_stages()

    def init_weights(self) -> None:
        # The public code's init; convs keep PyTorch's default (the deformed shifts).
        self.apply(init_linear_and_norm)
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'], slide_swin_checkpoint_filter,
                            optional=self.optional_weights)
        elif self.init_cfg is not None:
            super().init_weights()

    def switch_to_deploy(self) -> None:
        """Fold every slide attention's shift and deformed convs into one conv."""
        merge_all_shift_convs(self)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.patch_embed] + [m for i in range(self.frozen_stages)
                                     for m in (self.layers[i], self.out_norms[i])]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def forward(self, x: Tensor):
        x = self.pos_drop(self.patch_embed(x))
        outs = []
        for i, layer in enumerate(self.layers):
            out, x = layer(x)
            if i in self.out_indices:
                outs.append(self.out_norms[i](out).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

