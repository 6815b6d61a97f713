"""Conversions between token sequences and NCHW maps."""
from typing import Tuple

from torch import Tensor


def grid_tokens_to_map(x: Tensor, grid: Tuple[int, int], num_prefix_tokens: int) -> Tensor:
    """(B, prefix + h*w, C) tokens -> (B, C, h, w) map, prefix tokens dropped."""
    B, _, C = x.shape
    return x[:, num_prefix_tokens:].transpose(1, 2).reshape(B, C, grid[0], grid[1]).contiguous()
