"""Swin -> Slide-Swin (vitext/models/transfer.py) with Swin weights as timm and mmseg lay them out,
made by those libraries' own SwinTransformer classes. With no slide stages Slide-Swin is Swin,
so the converted weights must reproduce the source model's features exactly; with the default
two slide stages, stages 3-4 and every shared layer come from Swin and the rest keeps its init."""
import pytest
import torch
import torch.nn.functional as F

from vitext.models.backbones import SlideSwinTransformer
from vitext.models.transfer import swin_to_slide_swin
from vitext.models.weights import CheckpointMismatchError

timm_swin = pytest.importorskip('timm.models.swin_transformer')
mmseg_backbones = pytest.importorskip('mmseg.models.backbones')

ARCH = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4))
IMAGE = 224  # maps 56, 28, 14, 7: whole windows of 7 (timm shrinks windows on smaller maps)


def _timm_swin():
    torch.manual_seed(0)
    return timm_swin.SwinTransformer(img_size=IMAGE, embed_dim=16, depths=(1, 1, 2, 1),
                                     num_heads=(1, 2, 2, 4), window_size=7, num_classes=5).eval()


def _mmseg_swin():
    torch.manual_seed(0)
    model = mmseg_backbones.SwinTransformer(embed_dims=16, depths=(1, 1, 2, 1),
                                            num_heads=(1, 2, 2, 4), window_size=7,
                                            drop_path_rate=0.)
    model.eval()  # its train() returns None
    for name, param in model.named_parameters():  # non-trivial norms and tables
        if 'norm' in name or 'relative_position' in name:
            param.data.normal_(0, 0.5).add_(1 if name.endswith('weight') else 0)
    return model


def _slide_swin(num_slide_stages):
    torch.manual_seed(1)
    model = SlideSwinTransformer(arch=ARCH, num_slide_stages=num_slide_stages, window_size=7,
                                 drop_path_rate=0.)
    model.init_weights()
    return model.eval()


def _load(model, transfer):
    model.load_state_dict(transfer.state, strict=True)
    return model


@pytest.mark.parametrize('library', ['timm', 'mmseg'])
def test_swin_weights_make_slide_swin_without_slide_stages_equal_to_swin(library):
    x = torch.randn(2, 3, IMAGE, IMAGE)
    swin = _timm_swin() if library == 'timm' else _mmseg_swin()
    model = _slide_swin(num_slide_stages=0)
    transfer = swin_to_slide_swin(swin.state_dict(), model)
    _load(model, transfer)
    with torch.no_grad():
        ours = model(x)
        if library == 'timm':  # stage outputs, before any norm; ours pass an init LayerNorm
            theirs = [F.layer_norm(f.permute(0, 2, 3, 1), f.shape[1:2]).permute(0, 3, 1, 2)
                      for f in swin.forward_intermediates(x, intermediates_only=True)]
            assert transfer.left_at_init == sorted(f'out_norms.{i}.{p}' for i in range(4)
                                                   for p in ('weight', 'bias'))
            assert set(transfer.unused) == {'norm.weight', 'norm.bias'}
        else:  # mmseg's outputs pass its norm{i}, which became out_norms.{i}
            theirs = swin(x)
            assert transfer.left_at_init == [] and transfer.unused == []
    assert [tuple(t.shape) for t in ours] == [tuple(t.shape) for t in theirs]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('library', ['timm', 'mmseg'])
def test_swin_weights_start_slide_swin_stages_3_4_and_shared_layers(library, tmp_path):
    swin = _timm_swin() if library == 'timm' else _mmseg_swin()
    model = _slide_swin(num_slide_stages=2)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    reference = _load(_slide_swin(num_slide_stages=0),
                      swin_to_slide_swin(swin.state_dict(), _slide_swin(num_slide_stages=0)))
    expected = reference.state_dict()
    transfer = swin_to_slide_swin(swin.state_dict(), model)
    slide_only = ('relative_position_bias_table', 'shift.', 'deform.')
    for key, value in transfer.state.items():
        slide_key = key.startswith(('layers.0.', 'layers.1.')) and any(p in key for p in slide_only)
        if slide_key or (library == 'timm' and key.startswith('out_norms.')):
            assert key in transfer.left_at_init
            torch.testing.assert_close(value, init[key], rtol=0, atol=0)
        else:  # everything else: exactly Swin's (as the no-slide model that equals Swin has it)
            assert key in transfer.initialised
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    assert 'layers.0.blocks.0.attn.qkv.weight' in transfer.initialised
    assert 'layers.2.blocks.1.attn.relative_position_bias_table' in transfer.initialised
    assert 'layers.0.blocks.0.attn.relative_position_bias_table' in transfer.unused
    # The saved conversion loads strictly through init_cfg, as the dense configs use it.
    path = str(tmp_path / 'slide_swin.pth')
    torch.save(dict(state_dict=transfer.state), path)
    dense = SlideSwinTransformer(arch=ARCH, window_size=7,
                                 init_cfg=dict(type='Pretrained', checkpoint=path))
    dense.init_weights()
    for key, value in dense.state_dict().items():
        torch.testing.assert_close(value, transfer.state[key], rtol=0, atol=0)


def test_swin_of_another_size_is_refused():
    swin = timm_swin.SwinTransformer(img_size=IMAGE, embed_dim=16, depths=(1, 1, 3, 1),
                                     num_heads=(1, 2, 2, 4), window_size=7)
    with pytest.raises(ValueError, match=r'no place for .*layers\.2\.blocks\.2\.'):
        swin_to_slide_swin(swin.state_dict(), _slide_swin(num_slide_stages=2))
    wide = timm_swin.SwinTransformer(img_size=IMAGE, embed_dim=32, depths=(1, 1, 2, 1),
                                     num_heads=(1, 2, 2, 4), window_size=7)
    with pytest.raises(ValueError, match=r'patch_embed\.proj\.weight: source \(32, 3, 4, 4\)'):
        swin_to_slide_swin(wide.state_dict(), _slide_swin(num_slide_stages=2))


def test_convert_tool_starts_slide_swin_tiny_from_timm_swin_tiny(tmp_path):
    """The command README gives, on a full-size Swin-T as timm builds it (random weights)."""
    from conftest import run_tool
    swin = timm_swin.swin_tiny_patch4_window7_224()
    src, out = str(tmp_path / 'swin_tiny.pth'), str(tmp_path / 'slide_swin_tiny.pth')
    torch.save(dict(state_dict=swin.state_dict()), src)
    proc = run_tool(['tools/convert_checkpoint.py', 'swin-to-slide-swin', src, out])
    left = proc.stdout.split('left at their initialisation: ')[1].splitlines()[0].split(', ')
    # Per slide block: shift and deform (weight, bias) and the k x k table; 4 slide blocks.
    assert len([k for k in left if k.startswith(('layers.0.', 'layers.1.'))]) == 4 * 5
    assert len([k for k in left if k.startswith('out_norms.')]) == 8 and len(left) == 28
    model = SlideSwinTransformer('tiny', init_cfg=dict(type='Pretrained', checkpoint=out))
    model.init_weights()
    torch.testing.assert_close(model.state_dict()['layers.3.blocks.1.mlp.fc2.weight'],
                               swin.state_dict()['layers.3.blocks.1.mlp.fc2.weight'])
    torch.testing.assert_close(model.state_dict()['layers.2.downsample.reduction.weight'],
                               swin.state_dict()['layers.3.downsample.reduction.weight'])


@pytest.mark.parametrize('library', ['timm', 'mmseg'])
def test_slide_swin_load_filter_reads_swin_layouts(library, tmp_path):
    """Slide-Swin's checkpoint filter is the Swin converter: a Swin checkpoint loads through
    ``init_cfg`` into a Slide-Swin without slide stages (output norms a classifier lacks keep
    their init), giving what swin_to_slide_swin gives; with slide stages the strict load lists
    the slide-only tensors Swin has no counterpart for."""
    swin = _timm_swin() if library == 'timm' else _mmseg_swin()
    path = str(tmp_path / 'swin.pth')
    torch.save(dict(state_dict=swin.state_dict()), path)
    model = SlideSwinTransformer(arch=ARCH, num_slide_stages=0, window_size=7,
                                 init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    expected = swin_to_slide_swin(swin.state_dict(), _slide_swin(num_slide_stages=0)).state
    for key, value in model.state_dict().items():
        if not key.startswith('out_norms.'):
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    slide = SlideSwinTransformer(arch=ARCH, window_size=7,
                                 init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError, match=r'missing in checkpoint: .*'
                       r'layers\.0\.blocks\.0\.attn\.deform\.bias'):
        slide.init_weights()
