"""Making a model exportable to ONNX at a fixed input size (torch only).

PyTorch's TorchScript ONNX exporter cannot export ``adaptive_avg_pool2d`` when it loses the
static input size (as after shape-dependent padding); UperNet's pyramid pooling uses it. At a
fixed input size every adaptive pool is a fixed linear map, so it is swapped for two matmuls with
PyTorch's exact pooling windows.
"""
from typing import Dict, Tuple

import torch
from torch import Tensor, nn


def adaptive_pool_matrix(in_size: int, out_size: int) -> Tensor:
    """(out, in) averaging matrix of adaptive average pooling along one axis: output ``i``
    averages inputs ``floor(i*in/out)`` to ``ceil((i+1)*in/out) - 1``."""
    matrix = torch.zeros(out_size, in_size)
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -(-((i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1. / (end - start)
    return matrix


class FixedAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for one input size, as ``P_h @ x @ P_w^T``."""

    def __init__(self, in_size: Tuple[int, int], out_size: Tuple[int, int]):
        super().__init__()
        self.register_buffer('rows', adaptive_pool_matrix(in_size[0], out_size[0]))
        self.register_buffer('cols', adaptive_pool_matrix(in_size[1], out_size[1]).t())

    def forward(self, x: Tensor) -> Tensor:
        return self.rows @ x @ self.cols


def fix_adaptive_pools(model: nn.Module, *inputs) -> int:
    """Replace every ``nn.AdaptiveAvgPool2d`` of ``model`` by its fixed form for the sizes it
    sees on ``inputs``; returns how many."""
    seen: Dict[str, Tuple[int, int]] = {}
    pools = {name: m for name, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}

    def record(name):
        def hook(module, args, output):  # returns None: the output is left alone
            seen.setdefault(name, tuple(args[0].shape[-2:]))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in pools.items()]
    with torch.no_grad():
        model(*inputs)
    for hook in hooks:
        hook.remove()
    for name, pool in pools.items():
        if name not in seen:
            continue
        out = pool.output_size
        out = (out, out) if isinstance(out, int) else tuple(out)
        out = tuple(s if o is None else o for o, s in zip(out, seen[name]))
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FixedAdaptiveAvgPool2d(seen[name], out))
    return len(seen)
