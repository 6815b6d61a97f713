"""Convert a trained checkpoint to its deploy (re-parameterised) form, check that the outputs
match, save it; optionally export the deploy model to ONNX and check an onnxruntime run.

vitext deploy CONFIG CHECKPOINT OUT.pth [--shape H W] [--atol 1e-4]
    [--onnx OUT.onnx [--opset N] [--dynamic] [--backbone-only]]
    [--runtimes onnxruntime openvino executorch] [--cfg-options k=v ...]
(or python tools/analysis/deploy.py ...)

Every module with ``switch_to_deploy()`` (Slide attention: shift and deformed convs merged) is
switched. The outputs compared are a segmentor's logits (backbone, neck, decode head) or a
detector's backbone + neck features on a random image of --shape; the check fails (exit 1)
beyond --atol. The saved file holds ``state_dict`` and ``meta`` only (tensors and plain data, so
it loads with weights_only=True); it loads into the same config (vitext test), which switches
the model to deploy form on load.

ONNX (--onnx): the deploy model (or with --backbone-only its backbone alone: images -> the tuple
of NCHW maps) exported by PyTorch's recommended exporter, ``torch.onnx.export(dynamo=True)``:
``torch.export`` captures the model and onnxscript translates it (no custom op is needed). Not
the TorchScript exporter: it lacks ops vitext uses (``expm1``, antialiased bicubic resizing),
and its tracing froze shape-dependent values (padding, window shifts and masks) as constants, so
a graph with dynamic axes ran wrong at other sizes without an error. The file is written only
after onnxruntime (CPU) reproduced PyTorch within --atol; otherwise the tool exits 1 and writes
nothing. --opset: the exporter's default (20) unless given; below 18 the exporter converts down.

Without --dynamic the graph is for --shape only. With --dynamic, batch, height and width
(>= 64 px) are dynamic axes: ``torch.export`` keeps every size symbolic or refuses the model,
which the tool reports in one line (exit 1, no file). The graph is then checked at --shape
(batch 2) and at a second size that pads at every stride (batch 1). Backbones of CB-ViT and
AFT-full export dynamically (their position tables are resized in the graph); AFT-conv,
Slide-PVT and Slide-Swin (padding and window partitioning) and whole segmentors (UperNet's
pyramid pooling) are refused: export them per size.

--runtimes: the deploy model (the ONNX file's module) also run at --shape in each runtime named
(see vitext/analysis/runtimes: onnxruntime and OpenVINO run the ONNX export, --onnx's file when
given, ExecuTorch lowers the model to XNNPACK), one line each with its max |PyTorch - runtime|;
beyond --atol the tool exits 1 after all of them. A runtime that is not installed or cannot take
the model prints ``<runtime>: cannot run this model: <reason>`` and the other checks go on.
Default: onnxruntime when --onnx is given (the export's own check above).
"""
import argparse
import copy
import os
import sys
import tempfile
from typing import List, Optional, Sequence

import torch
from mmengine.config import DictAction

from vitext.analysis.runtimes import RUNTIMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext deploy', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='where to save the deploy checkpoint (.pth)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(512, 512))
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest allowed |train - deploy| (and |PyTorch - ONNX|)')
    parser.add_argument('--onnx', help='also export the deploy model to this .onnx file')
    parser.add_argument('--opset', type=int, default=None,
                        help="ONNX opset (default: the exporter's)")
    parser.add_argument('--dynamic', action='store_true',
                        help='ONNX with dynamic batch/height/width, checked at a second size')
    parser.add_argument('--backbone-only', action='store_true',
                        help="ONNX of the backbone alone (its tuple of NCHW maps)")
    parser.add_argument('--runtimes', nargs='+', choices=RUNTIMES, default=[],
                        help='also check the deploy model in these runtimes at --shape '
                             '(default: onnxruntime when --onnx is given)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def max_difference(a, b) -> float:
    """The largest absolute element difference between two outputs (tensors or tuples of them).

    Args:
        a: one model's outputs.
        b: the other model's outputs, in the same structure.
    """
    from vitext.analysis.export import flat
    return max(float((torch.as_tensor(x) - torch.as_tensor(y)).abs().max())
               for x, y in zip(flat(a), flat(b)))


def export_and_check(module: torch.nn.Module, path: str, shape, dynamic: bool,
                     opset: Optional[int], atol: float) -> None:
    """Export ``module`` to ``path`` and check it with onnxruntime at ``shape`` (and, with
    ``dynamic``, at a second size); exits 1 with one line (and no file) when the export is
    refused or onnxruntime differs beyond ``atol``.

    Args:
        module: the deploy model (images -> tensors) in eval mode; left unchanged.
        path: the .onnx file.
        shape: the export size (H, W).
        dynamic: dynamic batch/height/width.
        opset: ONNX opset (None: the exporter's default).
        atol: largest allowed |PyTorch - onnxruntime|.
    """
    from vitext.analysis.export import (ExportRefused, export_onnx, onnxruntime_difference,
                                        second_shape)
    torch.manual_seed(0)
    example = torch.randn(2 if dynamic else 1, 3, *shape)
    checks = [example] + ([torch.randn(1, 3, *second_shape(shape))] if dynamic else [])
    partial = f'{path}.partial'
    try:
        export_onnx(copy.deepcopy(module), example, partial, dynamic=dynamic, opset=opset)
        diffs = [onnxruntime_difference(partial, module, images) for images in checks]
    except ExportRefused as exc:
        if os.path.exists(partial):
            os.remove(partial)
        print(f'error: {"--dynamic: " if dynamic else ""}{exc}', file=sys.stderr)
        sys.exit(1)
    sizes = ', '.join(f'{d:.3g} at {tuple(images.shape)}' for d, images in zip(diffs, checks))
    print(f'onnx ({"dynamic batch/height/width" if dynamic else "static shape"}): {path}; '
          f'max |PyTorch - onnxruntime| = {sizes} (atol {atol:g})')
    if max(diffs) > atol:
        os.remove(partial)
        print('error: onnxruntime does not reproduce PyTorch; nothing written', file=sys.stderr)
        sys.exit(1)
    os.replace(partial, path)


def check_runtimes(runtimes: Sequence[str], module: torch.nn.Module, image: torch.Tensor,
                   onnx_file: Optional[str], atol: float) -> bool:
    """Run ``module`` in each of ``runtimes`` on ``image`` and print one line per runtime: its
    max |PyTorch - runtime|, or why it cannot run the model (the others still run). Returns
    whether every runtime that ran reproduced PyTorch within ``atol``.

    Args:
        runtimes: names from :data:`vitext.analysis.runtimes.RUNTIMES`.
        module: the deploy model (images -> tensors) in eval mode; left unchanged.
        image: the input, of the size the runtimes convert for.
        onnx_file: an ONNX export of ``module`` for onnxruntime and OpenVINO (None: exported
            once here for them).
        atol: largest allowed |PyTorch - runtime|.
    """
    from vitext.analysis.runtimes import (ONNX_RUNTIMES, RuntimeUnavailable, build_runner,
                                          export_onnx_file)
    with torch.no_grad():
        expected = module(image)
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        export_failure = None
        if onnx_file is None and set(runtimes) & set(ONNX_RUNTIMES):
            try:
                onnx_file = export_onnx_file(module, image, workdir)
            except RuntimeUnavailable as exc:
                export_failure = exc
        for runtime in runtimes:
            try:
                if runtime in ONNX_RUNTIMES and export_failure is not None:
                    raise export_failure
                got = build_runner(runtime, module, image, workdir, torch.get_num_threads(),
                                   onnx_file)(image)
            except RuntimeUnavailable as exc:
                print(f'{runtime}: cannot run this model: {exc}')
                continue
            diff = max_difference(expected, got)
            print(f'{runtime}: max |PyTorch - {runtime}| = {diff:.3g} (atol {atol:g})')
            ok = ok and diff <= atol
    return ok


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.dynamic or args.backbone_only) and not args.onnx:
        parser.error('--dynamic and --backbone-only apply to the ONNX export: give --onnx')
    from vitext.analysis.model_from_config import TensorForward, build_model
    from vitext.models.deploy import switch_to_deploy
    model, scope = build_model(args.config, args.checkpoint, args.cfg_options)
    deploy = copy.deepcopy(model)
    switched = switch_to_deploy(deploy)
    if not switched:
        print('note: nothing in this model is re-parameterisable; saved as is')
    train_fwd, deploy_fwd = TensorForward(model, scope), TensorForward(deploy, scope)
    torch.manual_seed(0)
    image = torch.randn(1, 3, *args.shape)
    with torch.no_grad():
        expected, got = train_fwd(image), deploy_fwd(image)
    diff = max_difference(expected, got)
    print(f'switched: {", ".join(switched) or "nothing"}; {train_fwd.what}: max |train - deploy| '
          f'= {diff:.3g} (atol {args.atol:g})')
    if diff > args.atol:
        print('error: the deploy form does not reproduce the training form', file=sys.stderr)
        sys.exit(1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(dict(state_dict=deploy.state_dict(),
                    meta=dict(deploy=True, config=os.path.basename(args.config),
                              source=os.path.basename(args.checkpoint))), args.out)
    print(f'deploy checkpoint: {args.out}')
    if args.onnx:
        module = deploy.backbone if args.backbone_only else deploy_fwd
        export_and_check(module, args.onnx, args.shape, args.dynamic, args.opset, args.atol)
    # onnxruntime has checked the --onnx file in export_and_check
    runtimes = [r for r in args.runtimes if not (args.onnx and r == 'onnxruntime')]
    if runtimes and not check_runtimes(runtimes, deploy.backbone if args.backbone_only
                                       else deploy_fwd, image, args.onnx, args.atol):
        print('error: a runtime does not reproduce PyTorch', file=sys.stderr)
        sys.exit(1)
