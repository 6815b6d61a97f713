"""Padding images/maps to a multiple of a patch, window or reduction size."""
import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad an NCHW batch at the bottom/right so H and W are multiples of ``multiple``.

    Padded by 0 too: no branch on the input's size, so FX and exporters record one graph for
    every size."""
    return F.pad(x, (0, (-x.shape[-1]) % multiple, 0, (-x.shape[-2]) % multiple))
