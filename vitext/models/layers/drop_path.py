"""Stochastic depth."""
from typing import List

from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth per sample (drops the residual branch)."""

    def __init__(self, drop_prob: float = 0.):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


def drop_path_rates(rate: float, depth: int) -> List[float]:
    """Stochastic depth growing linearly from 0 to ``rate`` over ``depth`` blocks.

    Computed in Python, not with ``torch.linspace``: a model built under
    ``with torch.device('meta')`` (timm's and large-model loaders' way) has no values to read."""
    if not 0. <= rate <= 1.:
        raise ValueError(f'drop_path_rate must be in [0, 1], got {rate}')
    if depth == 1:
        return [0.]
    return [rate * i / (depth - 1) for i in range(depth)]
