"""ONNX export of vitext models, checked with onnxruntime (torch, onnx and onnxruntime only).

:func:`export_onnx` uses the exporter PyTorch recommends, ``torch.onnx.export(..., dynamo=True)``:
the model is captured by ``torch.export`` (which every vitext family supports) and translated by
onnxscript; PyTorch's older TorchScript exporter lacks ops vitext uses (``aten::expm1`` before
opset 18 ... , antialiased bicubic resizing) and, when tracing, freezes shape-dependent values
(padding, window shifts and masks) as constants: a graph exported with dynamic axes then ran at
another size without error and gave wrong numbers. ``torch.export`` keeps every size
symbolic and refuses what it cannot (a shape branch raises), so a dynamic graph is either
exported for all sizes or not at all; :func:`export_onnx` still checks it at a second size.

Adaptive average pools (UperNet's pyramid pooling) have no ONNX operator; at any input size
they are a fixed linear map, so :func:`fix_adaptive_pools` swaps them for two matmuls with
PyTorch's exact pooling windows, computed from the input's size in the graph.
"""
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn


def adaptive_pool_matrix(in_size, out_size: int, dtype: torch.dtype = torch.float32,
                         device=None) -> Tensor:
    """(out, in) averaging matrix of adaptive average pooling along one axis: output ``i``
    averages inputs ``floor(i*in/out)`` to ``ceil((i+1)*in/out) - 1``.

    Args:
        in_size: input length, an int or a size symbol of an exported graph (tensor ops only,
            so the graph computes the matrix for every input size).
        out_size: output length.
        dtype: the matrix's dtype.
        device: the matrix's device.
    """
    index = torch.arange(out_size, device=device)
    start = index * in_size // out_size
    end = -(-(index + 1) * in_size // out_size)
    position = torch.arange(in_size, device=device)
    inside = (position >= start[:, None]) & (position < end[:, None])
    return inside.to(dtype) / (end - start).to(dtype)[:, None]


class MatmulAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d(output_size)`` as ``P_h @ x @ P_w^T``, the matrices built from the
    input's size (ONNX has no adaptive pool; this form exports for any size)."""

    def __init__(self, output_size: Tuple[Optional[int], Optional[int]]):
        super().__init__()
        self.output_size = tuple(output_size)

    def forward(self, x: Tensor) -> Tensor:
        (h, w), (out_h, out_w) = x.shape[-2:], self.output_size
        rows = adaptive_pool_matrix(h, h if out_h is None else out_h, x.dtype, x.device)
        cols = adaptive_pool_matrix(w, w if out_w is None else out_w, x.dtype, x.device)
        return rows @ x @ cols.t()


def fix_adaptive_pools(model: nn.Module, *inputs) -> int:
    """Replace every ``nn.AdaptiveAvgPool2d`` of ``model`` that runs on ``inputs`` by its
    :class:`MatmulAdaptiveAvgPool2d` form (the same values at every size); returns how many."""
    seen = set()
    pools = {name: m for name, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}
    hooks = [m.register_forward_hook(lambda *_, name=name: seen.add(name))
             for name, m in pools.items()]
    with torch.no_grad():
        model(*inputs)
    for hook in hooks:
        hook.remove()
    for name in seen:
        out = pools[name].output_size
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, MatmulAdaptiveAvgPool2d((out, out) if isinstance(out, int)
                                                       else out))
    return len(seen)


class ExportRefused(RuntimeError):
    """The model cannot be exported as asked; the message says why in one line."""


def flat(outputs) -> List[Tensor]:
    """``outputs`` as a list of tensors (a single tensor becomes a list of one)."""
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def dynamic_shapes_spec() -> Tuple[dict]:
    """torch.export's dynamic dims of an image batch: batch, height and width."""
    dim = torch.export.Dim
    return ({0: dim('batch', min=1, max=4096), 2: dim('height', min=64, max=16384),
             3: dim('width', min=64, max=16384)},)


def export_onnx(module: nn.Module, example: Tensor, path: str, dynamic: bool = False,
                opset: Optional[int] = None) -> str:
    """Export ``module`` (images -> a tensor or a tuple of tensors) to the ONNX file ``path``
    with ``torch.onnx.export(dynamo=True)``; returns ``path``.

    Adaptive average pools are swapped for their matmul form first (see
    :func:`fix_adaptive_pools`; on ``module`` itself, whose outputs stay the same).

    Args:
        module: the model in eval mode (deploy form where it has one).
        example: an image batch (B, C, H, W) of the export size. With ``dynamic`` use B >= 2:
            torch.export takes a size of 1 as a constant.
        path: the .onnx file to write (one file, weights inside).
        dynamic: batch, height and width dynamic (input ``image``); without, the graph is for
            ``example``'s shape only.
        opset: ONNX opset (None: the exporter's default; below 18 the exporter converts down).

    Raises:
        ExportRefused: torch.export cannot capture the model for every size (``dynamic``) or at
            all; the message names the reason. Nothing is written then.
    """
    fix_adaptive_pools(module, example)
    dynamic_shapes = dynamic_shapes_spec() if dynamic else None
    try:
        with torch.no_grad():
            program = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes,
                                          strict=False)
    except Exception as exc:  # torch.export raises several types; the first line says why
        what = 'with dynamic batch/height/width' if dynamic else 'at this size'
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        guard = next((line for line in lines if line.startswith('- Not all values')), '')
        reason = ' '.join([lines[0] if lines else type(exc).__name__, guard[2:]])
        raise ExportRefused(f'torch.export cannot capture {type(module).__name__} {what}: '
                            f'{reason.strip()[:400]}') from exc
    onnx_program = torch.onnx.export(program, (example,), dynamo=True, opset_version=opset,
                                     input_names=['image'])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx_program.save(path, external_data=False)
    return path


def onnxruntime_session(path: str, num_threads: Optional[int] = None,
                        profile_prefix: Optional[str] = None):
    """An onnxruntime CPU session on the ONNX model ``path``: the one place sessions are made
    (export checks, the runtimes' runner, the benchmark's profiler).

    Args:
        num_threads: intra-op threads (one inter-op thread); ``None``: onnxruntime's default.
        profile_prefix: turn on onnxruntime's profiler, writing to files of this prefix.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def onnxruntime_outputs(path: str, images: Tensor) -> List[np.ndarray]:
    """The ONNX model ``path`` run by onnxruntime on the CPU on ``images``."""
    session = onnxruntime_session(path)
    return session.run(None, {session.get_inputs()[0].name: images.numpy()})


def onnxruntime_difference(path: str, module: nn.Module, images: Tensor) -> float:
    """The largest |PyTorch - onnxruntime| over all outputs of ``module`` and the ONNX model
    ``path`` on ``images``.

    Raises:
        ExportRefused: onnxruntime cannot run the model on ``images`` (e.g. a size the graph
            was not made for), or the outputs differ in number or shape.
    """
    with torch.no_grad():
        expected = [t.numpy() for t in flat(module(images))]
    try:
        got = onnxruntime_outputs(path, images)
    except Exception as exc:  # onnxruntime's errors name the node and the shapes
        raise ExportRefused(f'onnxruntime cannot run {path} on a {tuple(images.shape)} input: '
                            f'{str(exc).splitlines()[0]}') from exc
    shapes = [a.shape for a in expected], [a.shape for a in got]
    if shapes[0] != shapes[1]:
        raise ExportRefused(f'onnxruntime gives outputs of shapes {shapes[1]}, PyTorch '
                            f'{shapes[0]} (input {tuple(images.shape)})')
    return max(float(np.abs(a - b).max()) for a, b in zip(expected, got))


def second_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """Another (H, W) to check a dynamic graph at: larger, of another aspect ratio, and not a
    multiple of 32 (so every stride pads)."""
    h, w = shape
    return h + h // 2 + 8, w + w // 2 + 4


__all__ = ['ExportRefused', 'MatmulAdaptiveAvgPool2d', 'adaptive_pool_matrix', 'export_onnx',
           'fix_adaptive_pools', 'onnxruntime_difference', 'onnxruntime_outputs',
           'onnxruntime_session', 'second_shape']
