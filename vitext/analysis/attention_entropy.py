"""Attention statistics of plain ViTs (the CB paper's analysis), torch only."""
import copy
from typing import List

import torch
from torch import Tensor, nn

from ..ops.broadcast import ContextBroadcast, ScaledContextBroadcast


def attention_entropy(attn: Tensor) -> Tensor:
    """Mean entropy (nats) of attention rows: (B, heads, N, N) probabilities -> (B,), averaged
    over heads and queries. 0 log 0 is taken as 0."""
    return -(attn * torch.log(attn.clamp_min(1e-30))).sum(-1).mean(dim=(1, 2))


def per_layer_entropy(maps: List[Tensor]) -> List[float]:
    """Per block, the mean entropy over the batch."""
    return [float(attention_entropy(m).mean()) for m in maps]


def without_context_broadcast(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every CB/CBS op replaced by identity (same other weights)."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, (ContextBroadcast, ScaledContextBroadcast)):
            parent_name, _, child = name.rpartition('.')
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, nn.Identity())
    return model


__all__ = ['attention_entropy', 'per_layer_entropy', 'without_context_broadcast']
