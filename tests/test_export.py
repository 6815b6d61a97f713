"""ONNX export (torch.onnx.export with dynamo=True, through torch.export) checked with
onnxruntime: every backbone family alone and whole segmentors in deploy form, AFT-conv's
exported exp(w) - 1, position tables resized at another size than img_size, and the deploy
tool's --dynamic: a graph checked at a second size, or refused in one line with no file."""
import os.path as osp

import numpy as np
import pytest
import torch
from torch import nn

from conftest import run_main
from vitext.analysis.export import (ExportRefused, adaptive_pool_matrix, export_onnx,
                                    onnxruntime_difference, onnxruntime_outputs)
from vitext.models.deploy import switch_to_deploy
from vitext.ops import aft
from vitext.registry import vitext_backbones

pytest.importorskip('onnxscript')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SWIN_DEMO = osp.join(ROOT, 'configs', 'demo',
                     'upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py')
CB_DEMO = osp.join(ROOT, 'configs', 'demo',
                   'upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py')
# The smallest settings that keep each family's structure: 4 pyramid outputs, slide and
# (shifted) window stages, a position table of another grid than the input's.
TINY = {
    'aft_conv': ('AFTViT', dict(arch=dict(embed_dims=16, num_layers=4), num_heads=2,
                                kernel_size=3, out_indices=(0, 1, 2, 3))),
    'aft_full': ('AFTViT', dict(arch=dict(embed_dims=16, num_layers=4), attn_type='full',
                                factor_dim=8, img_size=48, out_indices=(0, 1, 2, 3))),
    'cb_vit': ('CBViT', dict(arch=dict(embed_dims=24, num_layers=4, num_heads=2),
                             cb_mode='cbs', img_size=48, out_indices=(0, 1, 2, 3))),
    'slide_pvt': ('SlidePVT', dict(arch=dict(depths=(1, 1, 1, 1), embed_dims=(8, 16, 16, 32),
                                             num_heads=(1, 2, 2, 4)), img_size=48)),
    'slide_swin': ('SlideSwinTransformer', dict(arch=dict(embed_dims=8, depths=(1, 1, 2, 1),
                                                          num_heads=(1, 2, 2, 4)),
                                                window_size=3, drop_path_rate=0.)),
}


def tiny_backbone(name: str) -> nn.Module:
    """A randomised tiny backbone of ``name``'s family in deploy form, eval mode."""
    cls_name, kwargs = TINY[name]
    cls = {c.__name__: c for c in vitext_backbones()}[cls_name]
    torch.manual_seed(0)
    model = cls(**kwargs)
    model.init_weights()
    with torch.no_grad():  # zero-initialised tables and scales would hide layout errors
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    switch_to_deploy(model)
    return model.eval()


@pytest.mark.parametrize('name', list(TINY))
def test_backbone_alone_matches_onnxruntime(name, tmp_path):
    """The backbone's tuple of NCHW maps, exported at a size that pads (and, for the position
    tables, another grid than img_size's: an antialiased bicubic or bilinear resize)."""
    model = tiny_backbone(name)
    image = torch.randn(1, 3, 40, 56)
    path = export_onnx(model, image, str(tmp_path / f'{name}.onnx'))
    with torch.no_grad():
        expected = model(image)
    got = onnxruntime_outputs(path, image)
    assert len(got) == len(expected) == 4
    for a, b in zip(expected, got):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a.numpy(), rtol=0, atol=2e-5)


@pytest.mark.parametrize('deploy', [False, True])
def test_slide_attention_layer_matches_onnxruntime_without_transposes(deploy, tmp_path):
    """A slide attention layer (kernel 5, 3 heads, non-square map, random neighbour convs) as
    exported (its token form) against PyTorch eager (the C++ kernel where built); the graph
    stays in the token layout: no Transpose node."""
    import onnx

    from vitext.ops import SlideAttention
    torch.manual_seed(0)
    layer = SlideAttention(12, 3, kernel_size=5)
    with torch.no_grad():
        layer.deform.weight.normal_(std=.3)
        layer.relative_position_bias_table.normal_(std=.5)
    if deploy:
        layer.switch_to_deploy()
    layer.eval()
    x = torch.randn(1, 6, 9, 12)
    path = export_onnx(layer, x, str(tmp_path / 'slide.onnx'))
    assert onnxruntime_difference(path, layer, x) < 1e-5
    assert 'Transpose' not in {node.op_type for node in onnx.load(path).graph.node}


def test_exported_expm1_keeps_small_arguments():
    """exp(w) - 1 as the exported graph computes it keeps the digits of small w (ONNX's
    Exp(w) - 1 loses them: 5% at w = 1e-6 in float32), in float32 and float64, and is exact at
    0 and the infinities."""
    for dtype, rtol in ((torch.float32, 2e-7), (torch.float64, 5e-16)):
        w = torch.cat([torch.logspace(-12, 1.5, 200, dtype=dtype),
                       -torch.logspace(-12, 2, 200, dtype=dtype)])
        torch.testing.assert_close(aft.expm1_from_exp_tanh(w), torch.expm1(w), rtol=rtol * 4,
                                   atol=0)
    special = torch.tensor([0., float('inf'), -float('inf')])
    assert aft.expm1_from_exp_tanh(special).tolist() == [0., float('inf'), -1.]


class BiasKernel(nn.Module):
    def forward(self, w):
        return aft._bias_kernel(w)


def test_onnx_aft_kernel_equals_expm1(tmp_path):
    w = torch.tensor([1e-7, -3e-6, 2e-5, 0.3, -2.])[:, None, None].expand(5, 3, 3).contiguous()
    path = export_onnx(BiasKernel(), w, str(tmp_path / 'kernel.onnx'))
    got = onnxruntime_outputs(path, w)[0]
    np.testing.assert_allclose(got, torch.expm1(w).unsqueeze(1).numpy(), rtol=1e-6, atol=0)


@pytest.mark.parametrize('dtype,atol', [(torch.float64, 1e-13), (torch.float32, 2e-6)])
def test_aft_conv_exported_form_equals_training_form(dtype, atol):
    """The graph torch.export records (the plain form, exp(w) - 1 from tanh and exp) gives the
    training form's outputs, and both the definition's (the slow reference)."""
    torch.manual_seed(0)
    layer = aft.AFTConv(8, num_heads=2, kernel_size=3).to(dtype).eval()
    with torch.no_grad():
        layer.pos_gamma.normal_(std=.5)
        layer.pos_beta.normal_(std=1e-3)

    class Layer(nn.Module):
        def forward(self, x):
            return layer(x, (5, 6))

    x = torch.randn(2, 30, 8, dtype=dtype)
    with torch.no_grad():
        training = layer(x, (5, 6))
        recorded = torch.export.export(Layer(), (x,)).module()(x)
    torch.testing.assert_close(recorded, training, rtol=0, atol=atol)


def test_adaptive_pool_matrix_is_pytorchs_pooling():
    for n, out in ((7, 3), (5, 6), (16, 6), (9, 1)):
        x = torch.randn(2, n)
        expected = nn.functional.adaptive_avg_pool1d(x[:, None], out)[:, 0]
        torch.testing.assert_close(x @ adaptive_pool_matrix(n, out).t(), expected)


@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory):
    """``random_checkpoint(config)``: the config's model at its random initialisation, saved."""
    from vitext.analysis.model_from_config import build_model

    def save(config):
        model, _ = build_model(config)
        path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
        torch.save(dict(state_dict=model.state_dict()), path)
        return str(path)
    return save


def deploy(argv, capsys):
    """``vitext deploy`` in this process: (exit code, stdout, stderr)."""
    from vitext.cli.deploy import main
    return run_main(main, argv, capsys)


def test_deploy_tool_exports_the_reparameterised_segmentor(random_checkpoint, tmp_path,
                                                           capsys):
    """Slide-Swin UperNet, re-parameterised, whole (logits) and backbone alone."""
    ckpt = random_checkpoint(SWIN_DEMO)
    for extra, name in (([], 'whole.onnx'), (['--backbone-only'], 'backbone.onnx')):
        code, out, err = deploy([SWIN_DEMO, ckpt, str(tmp_path / 'd.pth'), '--shape', '40', '56',
                                 '--onnx', str(tmp_path / name)] + extra, capsys)
        assert code == 0, err
        assert 'switched: backbone' in out and 'max |PyTorch - onnxruntime|' in out
        assert (tmp_path / name).is_file()
    assert len(onnxruntime_outputs(str(tmp_path / 'backbone.onnx'),
                                   torch.randn(1, 3, 40, 56))) == 4


def test_deploy_tool_dynamic_backbone_is_checked_at_a_second_size(random_checkpoint, tmp_path,
                                                                   capsys):
    """CB-ViT's backbone with --dynamic: its position table is resized in the graph, which
    reproduces PyTorch at the export size (batch 2) and at a second size that pads."""
    onnx = tmp_path / 'dynamic.onnx'
    code, out, err = deploy([CB_DEMO, random_checkpoint(CB_DEMO), str(tmp_path / 'd.pth'),
                             '--shape', '64', '64', '--onnx', str(onnx), '--dynamic',
                             '--backbone-only'], capsys)
    assert code == 0, err
    assert 'dynamic batch/height/width' in out and 'at (2, 3, 64, 64)' in out
    assert 'at (1, 3, 104, 100)' in out
    assert len(onnxruntime_outputs(str(onnx), torch.randn(3, 3, 72, 136))) == 4


def test_deploy_tool_refuses_dynamic_in_one_line(random_checkpoint, tmp_path, capsys):
    """The whole CB-ViT UperNet with --dynamic: torch.export cannot keep the size symbolic
    (UperNet's pyramid pooling), so the tool stops with one error line naming the guard, and
    writes no file."""
    onnx = tmp_path / 'dynamic.onnx'
    code, out, err = deploy([CB_DEMO, random_checkpoint(CB_DEMO), str(tmp_path / 'd.pth'),
                             '--shape', '64', '64', '--onnx', str(onnx), '--dynamic'], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith('error: --dynamic: torch.export cannot capture') and 'guard' in err
    assert not onnx.exists() and not (tmp_path / 'dynamic.onnx.partial').exists()


def test_onnxruntime_difference_names_a_size_the_graph_does_not_take(tmp_path):
    model = tiny_backbone('slide_pvt')
    path = export_onnx(model, torch.randn(1, 3, 32, 32), str(tmp_path / 'static.onnx'))
    assert onnxruntime_difference(path, model, torch.randn(1, 3, 32, 32)) < 1e-5
    with pytest.raises(ExportRefused, match=r'cannot run .* on a \(1, 3, 64, 96\) input'):
        onnxruntime_difference(path, model, torch.randn(1, 3, 64, 96))
