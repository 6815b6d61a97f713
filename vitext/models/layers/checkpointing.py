"""Activation checkpointing of one block (``with_cp``)."""
import torch.utils.checkpoint as cp
from torch import Tensor, nn


def checkpointed_call(block: nn.Module, x: Tensor, *args, enabled: bool = True) -> Tensor:
    """``block(x, *args)``, recomputed in the backward pass instead of stored when ``enabled``
    and the call is part of training (block in train mode, ``x`` requiring grad)."""
    if enabled and block.training and x.requires_grad:
        return cp.checkpoint(block, x, *args, use_reentrant=False)
    return block(x, *args)
