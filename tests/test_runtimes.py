"""Every backbone family and a whole segmentor in deploy form give PyTorch's outputs in the CPU
runtimes they are deployed with: onnxruntime, OpenVINO and ExecuTorch (XNNPACK). The optional
runtimes are installed by tools/setup_env.sh; without one its tests are skipped, naming it."""
import os.path as osp
import sys
from functools import partial

import pytest
import torch

from conftest import ROOT, run_main
from vitext.analysis.export import flat
from vitext.analysis.runtimes import (RUNTIMES, RuntimeUnavailable, build_runner,
                                      export_onnx_file, require)
from vitext.registry import vitext_backbones

SLIDE_DEMO = osp.join(ROOT, 'configs/demo/upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py')
PACKAGES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino', 'executorch': 'executorch'}
ATOL = 1e-4
# The smallest settings that keep each family's structure (4-level pyramid, slide attention in
# the early stages): converting for ExecuTorch takes most of the time. Slide-Swin is the
# segmentor's backbone (one conversion serves both cases, see deploy_segmentor): the demo
# config's, with 3x3 windows so that the third stage's 4x4 map of a 64x64 image is padded and
# shifted (4x4 windows would hold it whole).
TINY = {
    'AFTViT': dict(arch=dict(embed_dims=32, num_layers=4), num_heads=4, kernel_size=3,
                   out_indices=(0, 1, 2, 3)),
    'CBViT': dict(arch=dict(embed_dims=48, num_layers=4, num_heads=3), cb_mode='cbs',
                  img_size=64, out_indices=(0, 1, 2, 3)),
    'SlidePVT': dict(arch=dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 40, 64),
                               num_heads=(1, 2, 2, 4)), img_size=64, drop_path_rate=0.),
}
SEGMENTOR_OPTIONS = {'model.backbone.window_size': 3}


def runtime_or_skip(runtime: str) -> str:
    pytest.importorskip(PACKAGES[runtime], reason=f'{runtime} is not installed')
    return runtime


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return runtime_or_skip(request.param)


def randomise(model: torch.nn.Module) -> None:
    """Non-trivial weights: zero-initialised biases would hide wrongly laid-out ones."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)


def deploy_backbone(name: str) -> torch.nn.Module:
    """The tiny backbone ``name`` with non-trivial weights, in eval mode and deploy form."""
    torch.manual_seed(0)
    model = {cls.__name__: cls for cls in vitext_backbones()}[name](**TINY[name])
    model.init_weights()
    randomise(model)
    model.eval()
    if hasattr(model, 'switch_to_deploy'):
        model.switch_to_deploy()
    return model


class SegmentorAndBackbone(torch.nn.Module):
    """An mmseg segmentor without a neck as images -> (logits, *its backbone's maps): the logits
    are ``TensorForward``'s (the decode head on the backbone's maps)."""

    def __init__(self, segmentor: torch.nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, images: torch.Tensor):
        maps = self.segmentor.backbone(images)
        return (self.segmentor.decode_head(maps), *maps)


def deploy_segmentor() -> torch.nn.Module:
    """Slide-Swin + UPerNet (pyramid pooling's adaptive pools included) in deploy form, the
    backbone's weights randomised, as images -> (logits, *Slide-Swin's 4 maps)."""
    from vitext.analysis.model_from_config import build_model
    from vitext.models.deploy import switch_to_deploy
    torch.manual_seed(0)
    model, _ = build_model(SLIDE_DEMO, cfg_options=SEGMENTOR_OPTIONS)
    assert not model.with_neck
    randomise(model.backbone)
    assert switch_to_deploy(model)
    return SegmentorAndBackbone(model)


MODELS = {**{name: partial(deploy_backbone, name) for name in TINY},
          'segmentor': deploy_segmentor}
# the cases read from another model's outputs: (that model, which outputs)
CASES = {**{name: (name, slice(None)) for name in MODELS},
         'segmentor': ('segmentor', slice(0, 1)),
         'SlideSwinTransformer': ('segmentor', slice(1, None))}


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """``converted(name, runtime)``: (model, image, runner) of :data:`MODELS`' ``name``, each
    made once: onnxruntime and OpenVINO share the ONNX export (it takes longer than both runs);
    ExecuTorch converts the model itself."""
    models, exports, runners = {}, {}, {}

    def get(name, runtime):
        if name not in models:
            torch.manual_seed(1)
            models[name] = MODELS[name](), torch.randn(1, 3, 64, 64)
        model, image = models[name]
        if runtime != 'executorch' and name not in exports:
            exports[name] = export_onnx_file(model, image, str(tmp_path_factory.mktemp(name)))
        if (name, runtime) not in runners:
            runners[name, runtime] = build_runner(
                runtime, model, image, str(tmp_path_factory.mktemp(f'{name}-{runtime}')),
                num_threads=2, onnx_file=exports.get(name) if runtime != 'executorch' else None)
        return model, image, runners[name, runtime]
    return get


@pytest.mark.parametrize('name', sorted(CASES))
def test_model_in_runtime_equals_pytorch(name, runtime, converted):
    """Every backbone family and a whole segmentor, deploy form, at 1e-4."""
    model_name, outputs = CASES[name]
    model, image, runner = converted(model_name, runtime)
    with torch.no_grad():
        expected = model(image)
    expected = flat(expected)
    got = runner(image)
    assert len(got) == len(expected)
    for out, ref in zip(got[outputs], expected[outputs]):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)


class DataDependentBranch(torch.nn.Module):
    """Control flow on a value: no exporter can capture it for every input."""

    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


def test_model_a_runtime_cannot_take_is_reported_in_one_line(runtime, tmp_path):
    with pytest.raises(RuntimeUnavailable) as info:
        build_runner(runtime, DataDependentBranch(), torch.ones(1, 3, 4, 4), str(tmp_path))
    assert str(info.value).startswith(('ONNX export failed: ', 'ExecuTorch lowering failed: '))
    assert '\n' not in str(info.value)


def test_every_registered_backbone_has_a_case():
    assert {cls.__name__ for cls in vitext_backbones()} | {'segmentor'} == set(CASES)


def test_unknown_runtime_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="expected one of onnxruntime, openvino, executorch, "
                                         "got 'tensorrt'"):
        build_runner('tensorrt', deploy_backbone('SlidePVT'), torch.randn(1, 3, 64, 64),
                     str(tmp_path))


def test_missing_runtime_is_named_in_one_line():
    with pytest.raises(RuntimeUnavailable, match=r'^openvino-nightly is not installed \(') as info:
        require('openvino_nightly_not_here', 'openvino-nightly')
    assert '\n' not in str(info.value)


def test_executorch_runner_sets_the_thread_count(tmp_path):
    runtime_or_skip('executorch')
    from executorch.extension.pybindings import portable_lib
    module = torch.nn.Conv2d(3, 4, 3).eval()
    for threads in (1, 2):
        build_runner('executorch', module, torch.randn(1, 3, 8, 8), str(tmp_path), threads)
        assert portable_lib._threadpool_get_thread_count() == threads


def test_deploy_tool_checks_each_runtime_and_reports_one_it_cannot_use(tmp_path, capsys,
                                                                      monkeypatch):
    """vitext deploy (in this process) with a runtime made absent (its import fails, as when it
    is not installed): the other runtimes are still checked and the tool succeeds."""
    from vitext.analysis.model_from_config import build_model
    from vitext.cli.deploy import main
    model, _ = build_model(SLIDE_DEMO)
    checkpoint = tmp_path / 'untrained.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    monkeypatch.setitem(sys.modules, 'executorch', None)
    code, out, err = run_main(main, [SLIDE_DEMO, str(checkpoint), str(tmp_path / 'deploy.pth'),
                                     '--shape', '64', '64', '--onnx', str(tmp_path / 'model.onnx'),
                                     '--runtimes', 'onnxruntime', 'openvino', 'executorch'],
                              capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert sum('max |PyTorch - onnxruntime|' in line for line in lines) == 1
    (openvino,) = [line for line in lines if line.startswith('openvino: ')]
    assert float(openvino.split('= ')[1].split()[0]) <= 1e-4
    assert 'executorch: cannot run this model: executorch is not installed' in lines[-1]
