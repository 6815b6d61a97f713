"""Checkpoint layouts -> vitext's backbones: one converter per source layout, which is also the
backbone's ``checkpoint_filter`` (timm's ``checkpoint_filter_fn(state_dict, model)``
convention) that ``init_cfg=dict(type='Pretrained', ...)`` applies before the strict load
(:func:`vitext.models.weights.load_pretrained`), and which the transfers of
:mod:`vitext.models.transfer` start from.

* :func:`vit_checkpoint_filter`: timm / DeiT ViTs -> the plain ViTs (CB-ViT);
* :func:`aft_vit_checkpoint_filter`: the same layout -> AFT-ViT (U, V of another grid resized);
* :func:`slide_pvt_checkpoint_filter`: PVT-v1, the public Slide-PVT code and vitext -> Slide-PVT;
* :func:`slide_swin_checkpoint_filter`: Swin (official, timm, mmseg/mmpretrain), the public
  Slide-Swin code and vitext -> Slide-Swin.

Their shared steps: :func:`slide_attention_layout` (the public code's slide attention),
:func:`resize_relative_position_table` (Swin's window tables) and :func:`keep_at_init`
(parameters a foreign checkpoint has no counterpart for). A deploy-form checkpoint needs no step:
:class:`~vitext.ops.SlideAttention` switches to deploy form, or folds a training-form state dict,
as it loads.
"""
import re
import warnings
from typing import TYPE_CHECKING, Dict, Iterable, List

import torch
from torch import Tensor, nn

from ..ops.aft import AFTFull
from ..ops.slide import SlideAttention
from ..ops.tokens import resize_grid_tokens
from ..ops.window import WindowAttention
from .layers import resize_pos_embed

if TYPE_CHECKING:
    from .backbones import AFTViT, SlidePVT, SlideSwinTransformer
    from .backbones.plain_vit import PlainViT


def keep_at_init(state: Dict[str, Tensor], model: nn.Module, keys: Iterable[str],
                 source: str) -> Dict[str, Tensor]:
    """Fill ``keys`` of ``state`` with ``model``'s current (initialised) values, for parameters
    that the checkpoint's architecture does not have, and warn listing them; the rest of the
    model then still has to match the checkpoint strictly."""
    own = model.state_dict()
    kept: List[str] = sorted(k for k in keys if k in own)
    if not kept:
        return state
    state = dict(state)
    for key in kept:
        state[key] = own[key]
    warnings.warn(f'{type(model).__name__} from {source} weights: {len(kept)} tensors have no '
                  f'counterpart there and keep their initialisation: {", ".join(kept)}; all '
                  'other parameters are loaded from the checkpoint', stacklevel=2)
    return state


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


def aft_vit_checkpoint_filter(state: Dict[str, Tensor], model: 'AFTViT') -> Dict[str, Tensor]:
    """timm/DeiT-layout weights (:func:`vit_checkpoint_filter`); for AFT-full/local, the
    factorised bias U, V (``pos_u``, ``pos_v``) of another grid is resized to the model's as the
    layer resizes it for each input (bilinear on the grid, prefix rows kept)."""
    state = vit_checkpoint_filter(state, model)
    for name, layer in model.named_modules():
        if not isinstance(layer, AFTFull):
            continue
        for key in (f'{name}.pos_u', f'{name}.pos_v'):
            table = state.get(key)
            if table is None or table.dim() != 2 or table.shape[0] == layer.pos_u.shape[0]:
                continue
            grid_tokens = table.shape[0] - layer.num_prefix_tokens
            side = int(round(grid_tokens ** 0.5))
            if side * side == grid_tokens:  # otherwise the strict load lists the shape
                state[key] = resize_grid_tokens(table, layer.grid, (side, side),
                                                layer.num_prefix_tokens, mode='bilinear')
    return state


def _head_major_qkv(t: Tensor, num_heads: int) -> Tensor:
    """Public slide-attention qkv rows [h][q|k|v][d] -> vitext's [q|k|v][h][d]."""
    head_dim = t.shape[0] // (3 * num_heads)
    return t.reshape(num_heads, 3, head_dim, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def slide_attention_layout(state: Dict[str, Tensor], model: nn.Module) -> Dict[str, Tensor]:
    """Convert public-code slide-attention keys (``dep_conv``, ``dep_conv1``, head-major qkv,
    (1, heads, 1, k^2, 1, 1) table) of any backbone to vitext's, at the layers of
    ``model.named_modules()``."""
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
    return out


def pvt_v1_to_slide_attention(state: Dict[str, Tensor], model: 'SlidePVT') -> Dict[str, Tensor]:
    """PVT-v1 spatial-reduction attention keys (``q``, ``kv``, ``sr``, ``norm``) found at the
    model's slide-attention layers -> slide attention: ``qkv`` = [q; kv] rows (weights and
    biases), ``sr``/``norm`` dropped, the slide-only tensors kept at their init."""
    out = dict(state)
    at_init = []
    for name, module in model.named_modules():
        p = f'{name}.'
        if not isinstance(module, SlideAttention) or p + 'q.weight' not in out:
            continue
        for suffix in ('weight', 'bias'):
            q, kv = out.pop(f'{p}q.{suffix}', None), out.pop(f'{p}kv.{suffix}', None)
            if q is not None and kv is not None:
                out[f'{p}qkv.{suffix}'] = torch.cat([q, kv], dim=0)
        for key in [k for k in out if k.startswith((p + 'sr.', p + 'norm.'))]:
            del out[key]
        at_init += [f'{p}{k}' for k in module.state_dict() if f'{p}{k}' not in out]
    return keep_at_init(out, model, at_init, 'PVT-v1') if at_init else out


def slide_pvt_checkpoint_filter(state: Dict[str, Tensor],
                                model: 'SlidePVT') -> Dict[str, Tensor]:
    """PVT-v1 / public Slide layout / vitext weights -> SlidePVT: PVT-v1 attention converted
    in slide stages (:func:`pvt_v1_to_slide_attention`), public slide attention keys converted,
    the class token (and its slot in the last position table) dropped, position tables resized
    to the model's grids."""
    state = pvt_v1_to_slide_attention(slide_attention_layout(state, model), model)
    state.pop('cls_token', None)
    for i, grid in enumerate(model.pos_grids, start=1):
        key = f'pos_embed{i}'
        pos = state.get(key)
        if pos is None:
            continue
        tokens = pos.shape[1]
        if tokens == grid[0] * grid[1]:  # the model's own grid (square or not)
            continue
        side = int(round(tokens ** 0.5))
        if side * side != tokens:  # PVT-v1's last table carries the class token first
            pos, side = pos[:, 1:], int(round((tokens - 1) ** 0.5))
        state[key] = resize_grid_tokens(pos, grid, (side, side), 0, mode='bilinear')
    return state


def resize_relative_position_table(table: Tensor, window: int) -> Tensor:
    """((2w'-1)^2, heads) -> ((2w-1)^2, heads), bicubic, as timm does for Swin."""
    old, new = int(round(table.shape[0] ** 0.5)), 2 * window - 1
    return resize_grid_tokens(table, (new, new), (old, old), 0, mode='bicubic')


# Patch merging concatenates the 2x2 neighbours in the order (0,0), (1,0), (0,1), (1,1) in the
# official Swin and timm; mmseg/mmpretrain use nn.Unfold, channel-major in the order (0,0),
# (0,1), (1,0), (1,1) (their swin converters reorder official weights the other way).
_UNFOLD_ORDER = [0, 2, 1, 3]

_MMSEG_SWIN_NAMES = ((r'^stages\.', 'layers.'), (r'\.attn\.w_msa\.', '.attn.'),
                     (r'\.ffn\.layers\.0\.0\.', '.mlp.fc1.'), (r'\.ffn\.layers\.1\.', '.mlp.fc2.'),
                     (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
                     (r'^norm(\d)\.', r'out_norms.\1.'))


def _unfold_to_neighbour_major(t: Tensor) -> Tensor:
    """mmseg's merging layout (4C as C x 4 unfold positions) -> official (4 neighbours x C)."""
    channels = t.shape[-1] // 4
    t = t.reshape(*t.shape[:-1], channels, 4).transpose(-1, -2)[..., _UNFOLD_ORDER, :]
    return t.reshape(*t.shape[:-2], 4 * channels)


def swin_official_names(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Swin weights in the official layout (which Slide-Swin's names follow), from the official
    code's, timm's (patch merging at the start of the next stage) or mmseg's/mmpretrain's
    (``stages``, ``w_msa``, ``ffn``, ``projection``, unfold-ordered merging, output norms
    ``norm{i}``) layout. Buffers (position indices, masks) are dropped."""
    state = {k: v for k, v in state.items()
             if not k.endswith(('relative_position_index', 'attn_mask'))}
    if any(k.startswith('stages.') for k in state):  # mmseg / mmpretrain
        out = {}
        for key, value in state.items():
            for pattern, new in _MMSEG_SWIN_NAMES:
                key = re.sub(pattern, new, key)
            if '.downsample.' in key:
                value = _unfold_to_neighbour_major(value)
            out[key] = value
        return out
    if 'layers.0.downsample.reduction.weight' not in state and any(
            re.match(r'layers\.\d+\.downsample\.', k) for k in state):  # timm >= 0.9
        return {re.sub(r'^layers\.(\d+)\.downsample\.',
                       lambda m: f'layers.{int(m.group(1)) - 1}.downsample.', k): v
                for k, v in state.items()}
    return dict(state)


def slide_swin_checkpoint_filter(state: Dict[str, Tensor],
                                 model: 'SlideSwinTransformer') -> Dict[str, Tensor]:
    """Swin (:func:`swin_official_names`), public Slide-Swin (:func:`slide_attention_layout`)
    or vitext classification weights -> SlideSwinTransformer names and shapes: window buffers
    dropped (rebuilt here), window position tables resized to the model's window (the public
    configs use other windows in stages 3-4), the classifier's final norm dropped, and where the
    checkpoint has window attention in a layer of the model's slide stages (a Swin), its window
    table dropped: it has no meaning for a k x k neighbourhood. The slide-only tensors of such a
    layer stay missing; :func:`vitext.models.transfer.swin_to_slide_swin` keeps them at their
    initialisation."""
    state = slide_attention_layout(swin_official_names(state), model)
    state.pop('norm.weight', None)
    state.pop('norm.bias', None)
    for name, module in model.named_modules():
        key = f'{name}.relative_position_bias_table'
        table = state.get(key)
        if table is None:
            continue
        if isinstance(module, WindowAttention):
            if table.dim() == 2 and table.shape != module.relative_position_bias_table.shape:
                state[key] = resize_relative_position_table(table, module.window_size)
        elif isinstance(module, SlideAttention) and not any(
                f'{name}.{part}.weight' in state for part in ('shift', 'deform', 'merged')):
            del state[key]
    return state
