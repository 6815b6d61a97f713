"""Parameters and FLOPs of vitext models, counted with mmengine's ``FlopAnalyzer`` (fvcore's
counter: one multiply-add = one FLOP; element-wise ops and softmax are not counted).

Two handles are replaced or added so attention is counted: ``aten::matmul`` counts
``numel(output) * inner dim`` (mmengine's handle ignores the batch dims of a broadcast left
operand, which undercounts slide attention's per-channel mixing), and PyTorch's fused
``scaled_dot_product_attention`` counts its two matmuls, Q K^T and A V.
"""
import copy
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from torch import Tensor, nn

from ..models.deploy import switch_to_deploy
from ..ops.slide import ShiftConv


def _matmul_flops(inputs, outputs) -> int:
    return math.prod(get_shape(outputs[0])) * get_shape(inputs[0])[-1]


def _sdpa_flops(inputs, outputs) -> int:
    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = math.prod(get_shape(outputs[0])[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


FLOP_HANDLES = {'aten::matmul': _matmul_flops,
                'aten::scaled_dot_product_attention': _sdpa_flops}


def count_parameters(model: nn.Module) -> int:
    """All parameters, plus the slide attention's shift kernels: they are buffers here, but the
    public code holds them as frozen parameters and the papers' counts include them."""
    shift_kernels = sum(m.weight.numel() for m in model.modules() if isinstance(m, ShiftConv))
    return sum(p.numel() for p in model.parameters()) + shift_kernels


def count_flops(model: nn.Module, inputs: Tuple[Tensor, ...]) -> int:
    """FLOPs of ``model(*inputs)`` in eval mode."""
    model = model.eval()
    analyzer = FlopAnalyzer(model, inputs)
    for name, handle in FLOP_HANDLES.items():
        analyzer.set_op_handle(name, handle)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(analyzer.total())


def deploy_copy(model: nn.Module) -> Optional[nn.Module]:
    """A re-parameterised copy of ``model`` (e.g. slide attention merged), or None when it has
    no re-parameterisable module."""
    model = copy.deepcopy(model)
    return model if switch_to_deploy(model) else None


@dataclass
class ZooEntry:
    """A model-zoo backbone (type and arguments; its classifier sets the classification mode)
    and the paper's numbers (docs/model_zoo.md)."""
    name: str
    backbone: dict
    paper_params_m: Optional[float] = None
    paper_flops_g: Optional[float] = None


MODEL_ZOO: List[ZooEntry] = [
    ZooEntry('Slide-Swin-T', dict(type='SlideSwinTransformer', arch='tiny'), 29, 4.6),
    ZooEntry('Slide-Swin-S', dict(type='SlideSwinTransformer', arch='small'), 51, 8.9),
    ZooEntry('Slide-Swin-B', dict(type='SlideSwinTransformer', arch='base'), 89, 15.5),
    ZooEntry('Slide-PVT-T', dict(type='SlidePVT', arch='tiny'), 12.2, 2.0),
    ZooEntry('Slide-PVT-S', dict(type='SlidePVT', arch='small'), 22.7, 4.0),
    ZooEntry('Slide-PVT-M', dict(type='SlidePVT', arch='medium')),
    ZooEntry('Slide-PVT-L', dict(type='SlidePVT', arch='large')),
    ZooEntry('AFT-conv-Ti (192 heads, 11x11)',
             dict(type='AFTViT', arch='tiny', num_heads=192, kernel_size=11), 5.9),
    ZooEntry('AFT-conv-S (384 heads, 11x11)',
             dict(type='AFTViT', arch='small', num_heads=384, kernel_size=11), 22.5),
    ZooEntry('AFT-full-Ti', dict(type='AFTViT', arch='tiny', attn_type='full'), 6.3),
    ZooEntry('AFT-full-S', dict(type='AFTViT', arch='small', attn_type='full'), 22.6),
    ZooEntry('CB-ViT-Ti', dict(type='CBViT', arch='tiny', cb_mode='cb')),
    ZooEntry('CB-ViT-S', dict(type='CBViT', arch='small', cb_mode='cb')),
    ZooEntry('CB-ViT-B', dict(type='CBViT', arch='base', cb_mode='cb')),
]


def build_backbone(cfg: dict) -> nn.Module:
    from mmseg.registry import MODELS  # vitext registers its backbones on import
    import vitext  # noqa: F401  (registers vitext's backbones)
    return MODELS.build(copy.deepcopy(cfg))


def complexity(model: nn.Module, shape: Sequence[int]) -> Dict[str, Optional[float]]:
    """params (M), FLOPs (G) of the training form and of the deploy form (None if the same
    model) for one (3, H, W) image."""
    image = (torch.zeros(1, 3, *shape),)
    deploy = deploy_copy(model)
    return dict(params_m=count_parameters(model) / 1e6,
                flops_g=count_flops(model, image) / 1e9,
                deploy_params_m=None if deploy is None else count_parameters(deploy) / 1e6,
                deploy_flops_g=None if deploy is None else count_flops(deploy, image) / 1e9)


def zoo_table(entries: Sequence[ZooEntry] = MODEL_ZOO, shape: Sequence[int] = (224, 224),
              num_classes: int = 1000) -> List[Dict[str, object]]:
    """Rows of the model-zoo table: each backbone's classifier
    (:func:`vitext.models.classifiers.build_classifier`: the last stage or block pooled, the
    form the papers count) with a ``num_classes`` head at ``shape``."""
    from ..models.classifiers import build_classifier
    rows = []
    for entry in entries:
        model = build_classifier(entry.backbone, num_classes)
        rows.append(dict(name=entry.name, **complexity(model, shape),
                         paper_params_m=entry.paper_params_m, paper_flops_g=entry.paper_flops_g))
    return rows


__all__ = ['FLOP_HANDLES', 'MODEL_ZOO', 'ZooEntry', 'build_backbone',
           'complexity', 'count_flops', 'count_parameters', 'deploy_copy', 'zoo_table']
