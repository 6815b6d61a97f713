"""Layer-wise learning-rate decay for plain ViT backbones (CBViT, AFTViT, ...).

mmseg's own ``LayerDecayOptimizerConstructor`` only recognises its BEiT/MAE/ConvNeXt class
names; this one works for any backbone whose blocks are named ``backbone.blocks.<i>``.

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.65))

Layer ids: patch embedding, class token and position table 0; block i is i + 1; everything
else (pyramid, decode heads, necks) num_layers + 1. A parameter's lr is scaled by
``layer_decay_rate ** (num_layers + 1 - layer_id)``; 1-d parameters (norms, biases), position
tables and class tokens get no weight decay.
"""
import re
from typing import List

from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

_EMBED = ('backbone.patch_embed', 'backbone.cls_token', 'backbone.pos_embed')
_NO_DECAY = ('pos_embed', 'cls_token')


def vit_layer_id(name: str, num_layers: int) -> int:
    if name.startswith(_EMBED):
        return 0
    match = re.match(r'backbone\.blocks\.(\d+)\.', name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        for key in ('num_layers', 'layer_decay_rate'):
            if key not in self.paramwise_cfg:
                raise KeyError(f'ViTLayerDecayOptimizerConstructor needs paramwise_cfg.{key}')
        num_layers = self.paramwise_cfg['num_layers']
        rate = self.paramwise_cfg['layer_decay_rate']
        weight_decay = self.base_wd or 0.
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or any(k in name for k in _NO_DECAY)
            layer_id = vit_layer_id(name, num_layers)
            group = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if group not in groups:
                scale = rate ** (num_layers + 1 - layer_id)
                groups[group] = dict(params=[], param_names=[], lr=self.base_lr * scale,
                                     lr_scale=scale, weight_decay=0. if no_decay
                                     else weight_decay, group_name=group)
            groups[group]['params'].append(param)
            groups[group]['param_names'].append(name)
        params.extend(groups.values())
