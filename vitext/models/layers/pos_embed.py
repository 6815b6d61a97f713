"""Absolute position tables on a token grid."""
from typing import Sequence

from torch import Tensor

from ...ops.tokens import resize_grid_tokens


def resize_pos_embed(pos_embed: Tensor, new_grid: Sequence[int], old_grid: Sequence[int],
                     num_prefix_tokens: int = 1) -> Tensor:
    """Resize an absolute position table (1, prefix + h*w, C) to another grid: prefix (class)
    tokens kept, the grid part resampled as timm does (bicubic, antialiased)."""
    return resize_grid_tokens(pos_embed, new_grid, old_grid, num_prefix_tokens, mode='bicubic',
                              antialias=True)
