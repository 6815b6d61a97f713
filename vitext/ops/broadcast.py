"""Context Broadcasting (CB) and its dimension-scaled form (CBS), Hyeon-Woo et al., ICCV 2023.

CB:  x <- 1/2 x + 1/2 mean_tokens(x)
CBS: x <- 1/2 x + 1/2 (lambda * mean_tokens(x)), lambda in R^C, initialised to 1 so that CBS
     starts equal to CB [choice: the paper's exact CBS formula was not recovered;
     docs/models.md#context-broadcasting].

One implementation serves tokens (B, N, C) and maps (B, C, H, W): the tokens are every axis but
batch and channel. A class token, when present, takes part in the mean [choice,
docs/models.md#context-broadcasting].
"""
from typing import Optional

import torch
from torch import Tensor, nn


def context_broadcast(x: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    """Average ``x`` with its mean token, the mean optionally scaled per channel.

    Args:
        x: tokens (B, N, C) or maps (B, C, H, W).
        scale: per-channel lambda (C,), or None for plain CB.
    """
    if x.dim() == 3:
        token_dims, channel_dim = (1,), 2
    elif x.dim() == 4:
        token_dims, channel_dim = (2, 3), 1
    else:
        raise ValueError(f'context_broadcast expects (B, N, C) tokens or (B, C, H, W) maps, got '
                         f'shape {tuple(x.shape)}')
    mean = x.mean(dim=token_dims, keepdim=True)
    if scale is not None:
        if scale.shape != (x.shape[channel_dim],):
            raise ValueError(f'scale has shape {tuple(scale.shape)}, expected '
                             f'({x.shape[channel_dim]},) for input {tuple(x.shape)}')
        shape = [1] * x.dim()
        shape[channel_dim] = -1
        mean = mean * scale.view(shape)
    return 0.5 * x + 0.5 * mean


class ContextBroadcast(nn.Module):
    """CB: parameter-free."""

    def forward(self, x: Tensor) -> Tensor:
        return context_broadcast(x)


class ScaledContextBroadcast(nn.Module):
    """CBS: a learnable per-channel scale of the broadcast mean, initialised to 1 (= CB)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return context_broadcast(x, self.scale)

    def extra_repr(self) -> str:
        return f'dim={self.scale.numel()}'
