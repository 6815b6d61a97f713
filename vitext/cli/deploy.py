"""Convert a trained checkpoint to its deploy (re-parameterised) form, check that the outputs
match, save it; optionally export the deploy model to ONNX and check an onnxruntime run.

vitext deploy CONFIG CHECKPOINT OUT.pth [--shape H W] [--atol 1e-4]
    [--onnx OUT.onnx] [--opset 17] [--cfg-options k=v ...]
(or python tools/analysis/deploy.py ...)

Every module with ``switch_to_deploy()`` (Slide attention: shift and deformed convs merged) is
switched. The outputs compared are a segmentor's logits (backbone, neck, decode head) or a
detector's backbone + neck features on a random image of --shape; the check fails (exit 1)
beyond --atol. The saved file holds ``state_dict`` and ``meta`` only (tensors and plain data, so
it loads with weights_only=True); it loads into the same config (vitext test), which switches
the model to deploy form on load. ONNX: the same tensors, via PyTorch's TorchScript exporter,
run with onnxruntime on the CPU; no custom op is needed. The ONNX model is for --shape (adaptive
pools become fixed matmuls).
"""
import argparse
import copy
import os
import sys
from typing import List, Optional

import torch
from mmengine.config import DictAction


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
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def flat(outputs) -> list:
    """``outputs`` as a list of tensors (a single tensor becomes a list of one)."""
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def max_difference(a, b) -> float:
    """The largest absolute element difference between two outputs (tensors or tuples of them).

    Args:
        a: one model's outputs.
        b: the other model's outputs, in the same structure.
    """
    return max(float((torch.as_tensor(x) - torch.as_tensor(y)).abs().max())
               for x, y in zip(flat(a), flat(b)))


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    from vitext.analysis.models import TensorForward, build_model
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
        import numpy as np
        import onnxruntime as ort

        from vitext.analysis.export import fix_adaptive_pools
        fix_adaptive_pools(deploy_fwd, image)  # exact at this size; see vitext/analysis/export
        torch.onnx.export(deploy_fwd, (image,), args.onnx, dynamo=False, opset_version=args.opset,
                          input_names=['image'])
        session = ort.InferenceSession(args.onnx, providers=['CPUExecutionProvider'])
        onnx_out = session.run(None, {'image': image.numpy()})
        diff = max(float(np.abs(o - t.numpy()).max()) for o, t in zip(onnx_out, flat(got)))
        print(f'onnx: {args.onnx}; max |PyTorch - onnxruntime| = {diff:.3g} (atol {args.atol:g})')
        if diff > args.atol:
            print('error: onnxruntime does not reproduce PyTorch', file=sys.stderr)
            sys.exit(1)
