"""Token-grid utilities shared by operators and backbones (torch only)."""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_grid_tokens(tokens: Tensor, new_grid: Sequence[int], old_grid: Sequence[int],
                       num_prefix_tokens: int = 0, mode: str = 'bicubic',
                       antialias: bool = False) -> Tensor:
    """Resample per-token vectors laid out on a grid to another grid.

    ``tokens`` is (T, C) or (B, T, C) with T = num_prefix_tokens + h*w: the prefix (e.g. class)
    tokens are kept, the h*w grid part is interpolated to ``new_grid`` in 2-d.

    An ONNX export, or a graph recorded with symbolic sizes (torch.export with dynamic sizes),
    always interpolates, the same grid included (an identity for these modes): comparing the grid
    with the table's would fix the graph to one size. torch.export at a static size compares
    plain ints, so ExecuTorch, which has no antialiased bicubic kernel, gets no resize; so does
    ``torch.jit.trace`` (vitext's traced graphs are for one size, e.g. the FLOP counter's, which
    must not count an identity resize)."""
    new_grid, old_grid = tuple(new_grid), tuple(old_grid)
    symbolic = (torch.onnx.is_in_onnx_export()
                or any(isinstance(size, torch.SymInt) for size in new_grid))
    if not symbolic and new_grid == old_grid:
        return tokens
    batched = tokens.dim() == 3
    t = tokens if batched else tokens.unsqueeze(0)
    prefix, grid = t[:, :num_prefix_tokens], t[:, num_prefix_tokens:]
    if grid.shape[1] != old_grid[0] * old_grid[1]:
        raise ValueError(f'{grid.shape[1]} grid tokens do not make a {old_grid[0]}x{old_grid[1]} '
                         'grid')
    B, _, C = grid.shape
    grid = grid.reshape(B, old_grid[0], old_grid[1], C).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=new_grid, mode=mode, antialias=antialias,
                         align_corners=False).to(tokens.dtype)
    out = torch.cat([prefix, grid.permute(0, 2, 3, 1).reshape(B, -1, C)], dim=1)
    return out if batched else out[0]
