"""Layer-wise learning-rate decay for vitext's backbones (plain ViTs, Slide-Swin, Slide-PVT)
and any backbone that tells a parameter's depth.

mmseg's own ``LayerDecayOptimizerConstructor`` only recognises its BEiT/MAE/ConvNeXt class
names; this one asks the backbone, as mmpretrain's ``LearningRateDecayOptimWrapperConstructor``
does: ``model.backbone.get_layer_depth(name, 'backbone.')`` returns (depth, number of depths).

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.65))

Depths (every vitext backbone): the stem (patch embedding, class token, position table) 0;
the i-th block, counted through all stages, i + 1; Swin's patch merging goes with the last block
of the stage before it, and so do Slide-PVT's patch embedding and position table of stages 2-4;
everything after the last block (final/output norms, pyramid) and outside the backbone (necks,
decode heads) the last depth, ``num_blocks + 1``. A parameter's lr is scaled by
``layer_decay_rate ** (num_depths - 1 - depth)``.

``paramwise_cfg.num_layers`` (the number of blocks) is optional; when given it must match the
backbone. A backbone without ``get_layer_depth`` whose blocks are named
``backbone.blocks.<i>`` is handled by that name rule and then needs ``num_layers``.

No weight decay for 1-d parameters (norms, biases), position tables, class tokens and relative
position bias tables.
"""
import re
from typing import Callable, List, Optional, Tuple

from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

_EMBED = ('backbone.patch_embed', 'backbone.cls_token', 'backbone.pos_embed')
_NO_DECAY = ('pos_embed', 'cls_token', 'relative_position_bias_table')

DepthFn = Callable[[str], Tuple[int, int]]


def vit_layer_id(name: str, num_layers: int) -> int:
    """The name rule for backbones without ``get_layer_depth``: ``backbone.blocks.<i>``."""
    if name.startswith(_EMBED):
        return 0
    match = re.match(r'backbone\.blocks\.(\d+)\.', name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def layer_depth_fn(module: nn.Module, num_layers: Optional[int]) -> DepthFn:
    """name -> (depth, number of depths) for the parameters of ``module`` (a segmentor or
    detector with a ``backbone``, or a backbone itself)."""
    backbone = getattr(module, 'backbone', None)
    if backbone is not None and hasattr(backbone, 'get_layer_depth'):
        depth_fn = lambda name: backbone.get_layer_depth(name, 'backbone.')  # noqa: E731
        owner = type(backbone).__name__
    elif hasattr(module, 'get_layer_depth'):
        depth_fn, owner = module.get_layer_depth, type(module).__name__
    else:
        if num_layers is None:
            raise KeyError(f'ViTLayerDecayOptimizerConstructor: {type(backbone or module).__name__}'
                           ' has no get_layer_depth, so paramwise_cfg.num_layers (its number '
                           'of blocks, named backbone.blocks.<i>) is needed')
        return lambda name: (vit_layer_id(name, num_layers), num_layers + 2)
    if num_layers is not None:
        num_depths = depth_fn('')[1]
        if num_layers != num_depths - 2:
            raise ValueError(f'ViTLayerDecayOptimizerConstructor: paramwise_cfg.num_layers='
                             f'{num_layers} but {owner} has {num_depths - 2} blocks (leave '
                             'num_layers out to take it from the backbone)')
    return depth_fn


class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """See the module docstring. ``paramwise_cfg``: ``layer_decay_rate`` (required),
    ``num_layers`` (optional)."""

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        if 'layer_decay_rate' not in self.paramwise_cfg:
            raise KeyError('ViTLayerDecayOptimizerConstructor needs paramwise_cfg.layer_decay_rate')
        rate = self.paramwise_cfg['layer_decay_rate']
        depth_of = layer_depth_fn(module, self.paramwise_cfg.get('num_layers'))
        weight_decay = self.base_wd or 0.
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or any(k in name for k in _NO_DECAY)
            layer_id, num_depths = depth_of(name)
            group = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if group not in groups:
                scale = rate ** (num_depths - 1 - layer_id)
                groups[group] = dict(params=[], param_names=[], lr=self.base_lr * scale,
                                     lr_scale=scale, weight_decay=0. if no_decay
                                     else weight_decay, group_name=group)
            groups[group]['params'].append(param)
            groups[group]['param_names'].append(name)
        params.extend(groups.values())
