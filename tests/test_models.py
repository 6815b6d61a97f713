"""The contract every registered vitext backbone keeps (timm's tests/test_models.py is the
model): any input size, stride 4/8/16/32 pyramid outputs, ``out_indices``, activation
checkpointing with the same outputs and gradients, deploy form equal to training form where
there is one, state-dict and ``init_cfg`` Pretrained round trips, and layer depths for
layer-wise lr decay. The backbones come from vitext's registry, so a new one is covered (and
fails until it has a tiny setting below)."""
import inspect
import io

import pytest
import torch

from vitext.models.backbones.plain_vit import PlainViT
from vitext.registry import vitext_backbones

# Tiny widths per backbone: ``kwargs`` build a 4-output pyramid backbone, ``flat`` is added for
# the out_indices check (plain ViTs need 4 outputs for their pyramid).
TINY = {
    'AFTViT': dict(kwargs=dict(arch=dict(embed_dims=32, num_layers=4), num_heads=4,
                               kernel_size=3, out_indices=(0, 1, 2, 3)),
                   flat=dict(out_pyramid=False)),
    'CBViT': dict(kwargs=dict(arch=dict(embed_dims=48, num_layers=4, num_heads=3),
                              cb_mode='cbs', img_size=64, out_indices=(0, 1, 2, 3)),
                  flat=dict(out_pyramid=False)),
    'SlidePVT': dict(kwargs=dict(arch=dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 40, 64),
                                           num_heads=(1, 2, 2, 4)),
                                 img_size=64, drop_path_rate=0.),
                     flat=dict()),
    'SlideSwinTransformer': dict(kwargs=dict(arch=dict(embed_dims=16, depths=(1, 2, 2, 1),
                                                       num_heads=(1, 2, 2, 4)),
                                             window_size=3, drop_path_rate=0.),
                                 flat=dict()),
}
BACKBONES = vitext_backbones()
STRIDES = (4, 8, 16, 32)


def build(cls, seed=0, **extra):
    if cls.__name__ not in TINY:
        pytest.fail(f'{cls.__name__} is registered but tests/test_models.py has no TINY setting '
                    'for it')
    torch.manual_seed(seed)
    model = cls(**{**TINY[cls.__name__]['kwargs'], **extra})
    model.init_weights()
    return model


def randomise(model):
    """Non-trivial values everywhere (zero-initialised biases and tables would hide layout
    errors in the round trips)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)
    return model


def run(model, x):
    with torch.no_grad():
        return model.eval()(x)


def assert_same(a, b, atol=0.):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=atol)


def test_registry_lists_every_backbone():
    assert {cls.__name__ for cls in BACKBONES} == set(TINY)


@pytest.fixture(params=BACKBONES, ids=lambda cls: cls.__name__)
def backbone_cls(request):
    return request.param


@pytest.mark.parametrize('size', [(64, 96), (45, 71), (33, 17)])
def test_any_input_size_gives_strides_4_to_32(backbone_cls, size):
    model = build(backbone_cls)
    outs = run(model, torch.randn(2, 3, *size))
    assert len(outs) == 4
    H, W = size
    for out, stride in zip(outs, STRIDES):
        assert out.shape[0] == 2 and torch.isfinite(out).all()
        if H % 32 == 0 and W % 32 == 0:
            assert out.shape[-2:] == (H // stride, W // stride)
        else:  # padded to the patch (up to 16 px), then rounded at each downsampling
            for got, full in zip(out.shape[-2:], (H, W)):
                assert abs(got - full / stride) <= 16 / stride + 1, (stride, out.shape, size)


PLAIN_VITS = [cls for cls in BACKBONES if issubclass(cls, PlainViT)]


@pytest.mark.parametrize('patch_size', [8, 32])
@pytest.mark.parametrize('cls', PLAIN_VITS, ids=lambda cls: cls.__name__)
def test_plain_vit_pyramid_gives_strides_4_to_32_for_any_patch_size(cls, patch_size):
    """The pyramid starts from the patch stride (the CPU demos use patches of 8)."""
    model = build(cls, patch_size=patch_size, img_size=128)
    outs = run(model, torch.randn(1, 3, 128, 128))
    assert [tuple(o.shape[-2:]) for o in outs] == [(128 // s, 128 // s) for s in STRIDES]


def test_plain_vit_pyramid_refuses_other_patch_sizes():
    from vitext.models.backbones import CBViT
    with pytest.raises(ValueError, match='power-of-two patch size .* got 14'):
        build(CBViT, patch_size=14)


def test_out_indices_select_outputs(backbone_cls):
    flat = TINY[backbone_cls.__name__]['flat']
    full = randomise(build(backbone_cls, **flat))
    part = build(backbone_cls, out_indices=(1, 3), **flat)
    missing, _ = part.load_state_dict(full.state_dict(), strict=False)
    assert not missing
    x = torch.randn(1, 3, 64, 64)
    every, picked = run(full, x), run(part, x)
    assert_same(picked, (every[1], every[3]))
    with pytest.raises(ValueError, match=r'out_indices \[9\] out of range'):
        backbone_cls(**{**TINY[backbone_cls.__name__]['kwargs'], **flat, 'out_indices': (9,)})


def test_out_indices_as_mmseg_and_mmpretrain_write_them(backbone_cls):
    """An int is one output, negative indices count from the end; a dict or an index out of
    range is refused by name."""
    flat = TINY[backbone_cls.__name__]['flat']
    full = randomise(build(backbone_cls, **flat))
    x = torch.randn(1, 3, 64, 64)
    every = run(full, x)
    for out_indices, expected in ((-1, (3,)), ((1, -1), (1, 3)), (2, (2,))):
        part = build(backbone_cls, out_indices=out_indices, **flat)
        part.load_state_dict(full.state_dict(), strict=False)
        assert part.out_indices == expected
        assert_same(run(part, x), tuple(every[i] for i in expected))
    with pytest.raises(TypeError, match='out_indices must be an int or a sequence of ints'):
        build(backbone_cls, out_indices=dict(a=1), **flat)
    with pytest.raises(ValueError, match=r'out_indices \[-9\] out of range'):
        build(backbone_cls, out_indices=(-9,), **flat)


def test_unknown_arch_keys_are_refused(backbone_cls):
    arch = dict(TINY[backbone_cls.__name__]['kwargs']['arch'], feedforward_channels=64)
    with pytest.raises(ValueError, match=r"arch dict has unknown keys \['feedforward_channels'\]"):
        build(backbone_cls, arch=arch)


@pytest.mark.parametrize('frozen_stages', [0, 1, 4])
def test_frozen_stages(backbone_cls, frozen_stages):
    """mmseg's meaning: 0 the stem, i > 0 the stem and the first i stages (plain ViTs:
    blocks), and the final norm with the last one; frozen parts stay in eval mode with no
    gradient through ``train()``, the rest trains and gets gradients."""
    model = build(backbone_cls, frozen_stages=frozen_stages).train()
    frozen = model.frozen_parts()
    frozen_params = {id(p) for part in frozen
                     for p in ([part] if isinstance(part, torch.nn.Parameter)
                               else part.parameters())}
    assert frozen_params
    for part in frozen:
        if isinstance(part, torch.nn.Module):
            assert not part.training
    trainable = [p for p in model.parameters() if id(p) not in frozen_params]
    assert all(p.requires_grad for p in trainable)
    if trainable:  # frozen_stages = the last stage leaves only a plain ViT's pyramid
        sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
        assert any(p.grad is not None for p in trainable)
    for name, p in model.named_parameters():
        if id(p) in frozen_params:
            assert not p.requires_grad and p.grad is None, name
    unfrozen = build(backbone_cls, frozen_stages=-1)
    assert len(list(unfrozen.parameters())) == len(list(model.parameters()))
    with pytest.raises(ValueError, match='frozen_stages must be an int in'):
        build(backbone_cls, frozen_stages=99)


def test_builds_on_the_meta_device(backbone_cls):
    """Large-model loaders and timm build under ``with torch.device('meta')``: no value may
    be read while building; the model runs there (shapes only)."""
    with torch.device('meta'):
        model = backbone_cls(**TINY[backbone_cls.__name__]['kwargs'])
        model.init_weights()
        outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert all(p.is_meta for p in model.parameters())
    assert [tuple(o.shape[-2:]) for o in outs] == [(64 // s, 64 // s) for s in STRIDES]


def test_image_size_as_a_pair(backbone_cls):
    """``img_size=(h, w)`` as mmseg's ViT configs write it: the position tables are made for
    that grid (AFT-ViT: its AFT-full form, AFT-conv has no table)."""
    if 'img_size' not in inspect.signature(backbone_cls).parameters:
        pytest.skip(f'{backbone_cls.__name__} has no position table')
    extra = dict(attn_type='full') if backbone_cls.__name__ == 'AFTViT' else {}
    square = build(backbone_cls, img_size=64, **extra)
    pair = build(backbone_cls, img_size=(64, 64), **extra)
    x = torch.randn(1, 3, 64, 64)
    assert_same(run(pair, x), run(square, x))
    wide = build(backbone_cls, img_size=(64, 128), **extra).state_dict()
    grown = [k for k, v in square.state_dict().items() if wide[k].shape != v.shape]
    assert grown and all(wide[k].shape[-2] > square.state_dict()[k].shape[-2]
                         or wide[k].shape[0] > square.state_dict()[k].shape[0] for k in grown)


def test_activation_checkpointing_same_outputs_and_gradients(backbone_cls):
    plain = randomise(build(backbone_cls))
    cp = build(backbone_cls, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 64)
    results = []
    for model in (plain.train(), cp.train()):
        outs = model(x)
        sum((o * torch.linspace(0, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()
                               if p.requires_grad}))
    assert_same([o.detach() for o in results[0][0]], [o.detach() for o in results[1][0]])
    assert results[0][1].keys() == results[1][1].keys()
    for name, grad in results[0][1].items():
        assert grad is not None, name
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_deploy_form_equals_training_form(backbone_cls):
    model = randomise(build(backbone_cls))
    if not hasattr(model, 'switch_to_deploy'):
        pytest.skip(f'{backbone_cls.__name__} has no deploy form')
    x = torch.randn(1, 3, 45, 71)
    train_outs = run(model, x)
    model.switch_to_deploy()
    assert model.state_dict().keys() != build(backbone_cls).state_dict().keys()
    assert_same(run(model, x), train_outs, atol=1e-5)


def test_state_dict_round_trip(backbone_cls):
    source = randomise(build(backbone_cls))
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    target = build(backbone_cls, seed=1)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(1, 3, 40, 56)
    assert_same(run(target, x), run(source, x))


def test_pretrained_init_cfg_round_trip(backbone_cls, tmp_path):
    source = randomise(build(backbone_cls))
    path = tmp_path / 'backbone.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    target = build(backbone_cls, seed=1, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    for name, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value, rtol=0, atol=0, msg=name)
    x = torch.randn(1, 3, 40, 56)
    assert_same(run(target, x), run(source, x))


def test_layer_depths_cover_stem_blocks_and_head(backbone_cls):
    """Every depth from 0 (stem) through the blocks to the last (after the blocks) is used,
    parameters outside the backbone get the last one."""
    model = build(backbone_cls)
    depths = {name: model.get_layer_depth('backbone.' + name, 'backbone.')
              for name, _ in model.named_parameters()}
    num_depths = {n for _, n in depths.values()}
    assert num_depths == {model.num_blocks + 2}
    assert {d for d, _ in depths.values()} == set(range(model.num_blocks + 2))
    assert model.get_layer_depth('decode_head.conv_seg.weight', 'backbone.') == \
        (model.num_blocks + 1, model.num_blocks + 2)
