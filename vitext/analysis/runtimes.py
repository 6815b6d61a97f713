"""Running a model (tensor in, tensors out) in the CPU runtimes efficient backbones are deployed
with: ONNX Runtime, OpenVINO and ExecuTorch with its XNNPACK backend, behind one interface.

``build_runner(runtime, module, example, workdir)`` converts ``module`` for ``example``'s size
and returns a function image -> list of output tensors (float32, on the CPU), so that parity with
PyTorch and speed are measured the same way in every runtime. A runtime that is not installed or
cannot take the model raises :class:`RuntimeUnavailable` with a one-line reason.

- onnxruntime: the module exported to ONNX by :func:`vitext.analysis.export.export_onnx`
  (torch.export + onnxscript, adaptive pools as matmuls), run by the CPU execution provider.
- openvino: the same ONNX file (one export serves both: ``onnx_file``), read by OpenVINO and compiled for its CPU plugin in float32.
  The ONNX file, not ``openvino.convert_model`` on the module: it is the graph already checked
  in onnxruntime, and OpenVINO's PyTorch frontend traces the module again with its own op
  coverage. OpenVINO's CPU plugin runs in bfloat16 by default where the CPU has it, so
  float32 is asked for: parity is checked, not a bfloat16 approximation.
- executorch: ``torch.export`` of the module lowered with the XNNPACK partitioner to a .pte
  program (ops XNNPACK does not take run on ExecuTorch's portable kernels), run by
  ``executorch.runtime``.
"""
import copy
import importlib
import os
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .export import export_onnx, flat, onnxruntime_session

RuntimeName = Literal['onnxruntime', 'openvino', 'executorch']
Runner = Callable[[Tensor], List[Tensor]]


class RuntimeUnavailable(RuntimeError):
    """The runtime is not installed or cannot take this model; the message is one line."""


def as_tensor_list(outputs: Union[Tensor, Sequence]) -> List[Tensor]:
    """A module's or runtime's outputs (a tensor, arrays or a tuple/list of them) as a list of
    CPU tensors."""
    return [torch.as_tensor(item) for item in flat(outputs)]


def require(package: str, runtime: str):
    """Import ``package`` or raise :class:`RuntimeUnavailable` saying ``runtime`` is missing."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise RuntimeUnavailable(f'{runtime} is not installed ({error})') from None


def one_line(error: BaseException) -> str:
    """``error`` in one line: its type and first line, and those of the innermost error that
    caused it (converters wrap the error naming the op in a generic one, and print pages)."""
    def first_line(e: BaseException) -> str:
        lines = str(e).strip().splitlines()
        return f'{type(e).__name__}: {lines[0].strip() if lines else ""}'
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    outer, inner = first_line(error), first_line(root)
    return outer if inner.split(': ', 1)[1] in outer else f'{outer} <- {inner}'


def export_onnx_file(module: nn.Module, example: Tensor, workdir: str) -> str:
    """``module`` exported to ``workdir/model.onnx`` for ``example``'s size (input ``image``)
    by :func:`vitext.analysis.export.export_onnx`; ``module`` itself is left as it is (the export
    swaps its adaptive pools). Returns the path."""
    try:
        return export_onnx(copy.deepcopy(module), example, os.path.join(workdir, 'model.onnx'))
    except Exception as error:  # ExportRefused, or the translator naming an op it lacks
        raise RuntimeUnavailable(f'ONNX export failed: {one_line(error)}') from error


def onnxruntime_runner(onnx_file: str, num_threads: int) -> Runner:
    """ONNX Runtime's CPU execution provider on the ONNX model ``onnx_file``."""
    require('onnxruntime', 'onnxruntime')
    try:
        session = onnxruntime_session(onnx_file, num_threads)
    except Exception as error:
        raise RuntimeUnavailable(f'onnxruntime cannot load the model: {one_line(error)}') \
            from error
    name = session.get_inputs()[0].name
    return lambda image: as_tensor_list(session.run(None, {name: image.numpy()}))


def openvino_runner(onnx_file: str, num_threads: int) -> Runner:
    """OpenVINO's CPU plugin, float32, on the ONNX model ``onnx_file``."""
    ov = require('openvino', 'openvino')
    try:
        compiled = ov.Core().compile_model(onnx_file, 'CPU', {
            'INFERENCE_NUM_THREADS': num_threads, 'INFERENCE_PRECISION_HINT': 'f32'})
    except Exception as error:
        raise RuntimeUnavailable(f'OpenVINO cannot compile the model: {one_line(error)}') \
            from error
    request = compiled.create_infer_request()

    def run(image: Tensor) -> List[Tensor]:
        # copied: the request's output buffers are reused by the next inference
        results = request.infer({0: image.numpy()})
        return [torch.from_numpy(results[out].copy()) for out in compiled.outputs]
    return run


def executorch_runner(module: nn.Module, example: Tensor, workdir: str,
                      num_threads: int) -> Runner:
    """ExecuTorch's runtime on ``module`` lowered to XNNPACK (``torch.export`` -> .pte)."""
    require('executorch', 'executorch')
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime
    try:
        with torch.no_grad():
            exported = torch.export.export(module, (example,))
            program = to_edge_transform_and_lower(
                exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as error:
        raise RuntimeUnavailable(f'ExecuTorch lowering failed: {one_line(error)}') from error
    path = os.path.join(workdir, 'model.pte')
    with open(path, 'wb') as f:
        program.write_to_file(f)
    # XNNPACK and the portable kernels share one process-wide thread pool
    portable_lib._unsafe_reset_threadpool(num_threads)
    method = Runtime.get().load_program(path).load_method('forward')
    # cloned: the outputs are the program's own buffers, overwritten by the next run
    return lambda image: [out.clone() for out in method.execute([image.contiguous()])]


# the runtimes that run the ONNX export, by name; ExecuTorch takes the module itself
ONNX_RUNTIMES: Dict[str, Callable[[str, int], Runner]] = {
    'onnxruntime': onnxruntime_runner,
    'openvino': openvino_runner,
}
RUNTIMES: Tuple[str, ...] = ('onnxruntime', 'openvino', 'executorch')


def build_runner(runtime: RuntimeName, module: nn.Module, example: Tensor, workdir: str,
                 num_threads: int = 2, onnx_file: Optional[str] = None) -> Runner:
    """``module`` converted for ``runtime`` at ``example``'s size, as image -> output tensors.

    Args:
        runtime: one of :data:`RUNTIMES`.
        module: the model, tensor in, a tensor or a tuple/list of tensors out (e.g.
            ``TensorForward`` or a backbone), in eval mode, deploy form where it has one.
        example: an input of the size the converted model is for (N, C, H, W, float32).
        workdir: an existing folder for the runtime's files (model.onnx / model.pte).
        num_threads: the runtime's intra-op threads.
        onnx_file: an ONNX export of ``module`` (e.g. :func:`export_onnx_file`'s) for
            onnxruntime and OpenVINO to run instead of exporting again; ExecuTorch ignores it.

    Raises:
        RuntimeUnavailable: ``runtime`` is not installed or cannot take ``module``.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime: expected one of {", ".join(RUNTIMES)}, got {runtime!r}')
    if runtime == 'executorch':
        return executorch_runner(module, example, workdir, num_threads)
    require(runtime, runtime)  # before the export: a missing runtime is the reason to report
    return ONNX_RUNTIMES[runtime](onnx_file or export_onnx_file(module, example, workdir),
                                  num_threads)
