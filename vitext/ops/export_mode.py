"""Whether a graph of the model is being recorded for export (torch only)."""
import torch


def recording_graph() -> bool:
    """True while ``torch.export`` (also under ``torch.onnx.export(dynamo=True)``), the
    TorchScript ONNX exporter or ``torch.jit.trace`` records the model: operators then take
    their plain PyTorch form (no custom op or custom autograd Function, only ops every
    exporter and runtime has)."""
    return (torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()
            or torch.jit.is_tracing())
