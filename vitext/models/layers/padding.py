"""Padding images/maps to a multiple of a patch, window or reduction size."""
import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad an NCHW batch at the bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
