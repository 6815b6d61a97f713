"""CBViT: timm cross-check, CB placement, pyramid, weights, layer depths and layer-wise lr decay
(with_cp, round trips: tests/test_models.py)."""
import pytest
import timm
import torch
from safetensors.torch import save_file

from vitext.models.backbones import CBViT
from vitext.models.weights import CheckpointMismatchError
from vitext.ops import ContextBroadcast, ScaledContextBroadcast

MINI = dict(embed_dims=48, num_layers=4, num_heads=3)
QUAD = (0, 1, 2, 3)  # out_indices for MINI's 4 blocks


def timm_features(model, x):
    feats = model.forward_features(x)[:, 1:]
    B, N, C = feats.shape
    h, w = x.shape[2] // 16, x.shape[3] // 16
    return feats.transpose(1, 2).reshape(B, C, h, w)


@pytest.mark.parametrize('name,arch', [('vit_tiny_patch16_224', 'tiny'),
                                       ('vit_small_patch16_224', 'small')])
def test_matches_timm(name, arch, tmp_path):
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    path = str(tmp_path / f'{name}.pth')
    torch.save(ref.state_dict(), path)
    ours = CBViT(arch, cb_mode='none', out_pyramid=False, out_indices=(11,), final_norm=True,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], timm_features(ref, x), rtol=0, atol=1e-5)
    # Non-square input: timm resamples its position table with dynamic_img_size.
    dyn = timm.create_model(name, pretrained=False, dynamic_img_size=True).eval()
    dyn.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 160, 256)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], timm_features(dyn, x), rtol=0, atol=1e-5)


def test_safetensors_and_pos_embed_resize(tmp_path):
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False).eval()
    path = str(tmp_path / 'vit.safetensors')
    save_file(ref.state_dict(), path)
    # A 128-px model: the 14x14 table is resized to 8x8 on loading.
    ours = CBViT('tiny', img_size=128, cb_mode='cbs', out_pyramid=False, out_indices=(11,),
                 final_norm=True, init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    assert ours.pos_embed.shape == (1, 65, 192)
    assert all(torch.equal(m.scale, torch.ones_like(m.scale))
               for m in ours.modules() if isinstance(m, ScaledContextBroadcast))
    torch.testing.assert_close(ours.blocks[3].attn.qkv.weight, ref.blocks[3].attn.qkv.weight)


def test_checkpoint_of_another_shape_lists_keys(tmp_path):
    path = str(tmp_path / 'vit_s.pth')
    torch.save(timm.create_model('vit_small_patch16_224', pretrained=False).state_dict(), path)
    ours = CBViT('tiny', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError) as err:
        ours.init_weights()
    msg = str(err.value)
    assert 'vit_s.pth' in msg and 'shape mismatch' in msg
    assert 'blocks.0.attn.qkv.weight: checkpoint (1152, 384) vs model (576, 192)' in msg


def test_checkpoint_of_another_model_lists_keys(tmp_path):
    path = str(tmp_path / 'resnet.pth')
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in checkpoint: blocks.0.attn.proj.bias.*\n'
                             r'.*not in model: .*conv1.weight'):
        CBViT(MINI, out_indices=QUAD,
              init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()


def broadcast_sites(model):
    return [name for name, m in model.named_modules()
            if isinstance(m, (ContextBroadcast, ScaledContextBroadcast))]


@pytest.mark.parametrize('position,site', [
    ('mlp_end', ['mlp.cb_end']), ('mlp_mid', ['mlp.cb_mid']), ('mlp_front', ['mlp.cb_front']),
    ('attn', ['cb_attn']), ('attn_mlp', ['cb_attn', 'mlp.cb_end'])])
def test_cb_position_and_layers(position, site):
    model = CBViT(MINI, cb_mode='cb', cb_position=position, cb_layers=(2, 3), out_indices=QUAD)
    expected = [f'blocks.{i}.{s}' for i in (2, 3) for s in site]
    assert broadcast_sites(model) == expected
    # ... and each is called once per forward pass.
    calls = []
    for name, m in model.named_modules():
        if name in expected:
            m.register_forward_hook(lambda mod, inp, out, name=name: calls.append(name))
    model(torch.randn(1, 3, 32, 32))
    assert sorted(calls) == sorted(expected)


def test_cb_changes_output_where_placed():
    torch.manual_seed(0)
    plain = CBViT(MINI, cb_mode='none', out_pyramid=False, out_indices=(0, 3)).eval()
    cb = CBViT(MINI, cb_mode='cb', cb_layers=(3,), out_pyramid=False, out_indices=(0, 3)).eval()
    cb.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = plain(x), cb(x)
    torch.testing.assert_close(a[0], b[0])  # block 0 has no CB
    assert not torch.allclose(a[1], b[1])


@pytest.mark.parametrize('position,per_block', [('mlp_end', 1), ('attn_mlp', 2), ('mlp_mid', 4)])
def test_cbs_parameter_count(position, per_block):
    def count(mode, layers=None):
        return sum(p.numel() for p in CBViT('tiny', cb_mode=mode, cb_position=position,
                                            cb_layers=layers, out_pyramid=False).parameters())
    assert count('cbs') - count('cb') == 12 * 192 * per_block
    assert count('cbs', layers=range(6, 12)) - count('cb') == 6 * 192 * per_block
    assert count('cb') == count('none')


def test_sizes_match_timm_and_paper():
    """Plain backbone + 1000-class head = timm's ViT; CBS adds 2.3K/4.6K/9.2K
    (docs/model_zoo.md#context-broadcasting)."""
    for arch, name, cbs_extra in (('tiny', 'vit_tiny_patch16_224', 2304),
                                  ('small', 'vit_small_patch16_224', 4608),
                                  ('base', 'vit_base_patch16_224', 9216)):
        plain = CBViT(arch, cb_mode='none', out_pyramid=False, final_norm=True)
        dim = plain.embed_dims
        ours = sum(p.numel() for p in plain.parameters()) + dim * 1000 + 1000
        theirs = sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
        assert ours == theirs, (arch, ours, theirs)
        cbs = CBViT(arch, cb_mode='cbs', out_pyramid=False, final_norm=True)
        assert sum(p.numel() for p in cbs.parameters()) - ours + dim * 1000 + 1000 == cbs_extra


def test_pyramid_strides_any_input_size():
    model = CBViT(MINI, out_indices=QUAD).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 70, 90))  # padded to 80x96: a 5x6 grid
    assert [tuple(o.shape) for o in outs] == [(2, 48, 20, 24), (2, 48, 10, 12), (2, 48, 5, 6),
                                              (2, 48, 2, 3)]
    flat = CBViT(MINI, out_indices=(1, 3), out_pyramid=False).eval()
    assert [tuple(o.shape) for o in flat(torch.randn(1, 3, 64, 48))] == [(1, 48, 4, 3)] * 2


def test_attention_maps_leave_output_unchanged():
    model = CBViT(MINI, out_pyramid=False, out_indices=(3,)).eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        before = model(x)[0]
    maps = model.attention_maps(x)
    assert len(maps) == 4 and maps[0].shape == (2, 3, 1 + 2 * 3, 1 + 2 * 3)
    torch.testing.assert_close(maps[2].sum(-1), torch.ones(2, 3, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], before, rtol=0, atol=0)
    # The explicit-softmax path computes the same block outputs as SDPA.
    block, tokens = model.blocks[0], torch.randn(2, 7, 48)
    with torch.no_grad():
        torch.testing.assert_close(block(tokens, return_attn=True)[0], block(tokens),
                                   rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="arch 'huge' is not one of"):
        CBViT('huge')
    with pytest.raises(ValueError, match="cb_mode='cbx'"):
        CBViT(MINI, cb_mode='cbx', out_indices=QUAD)
    with pytest.raises(ValueError, match="cb_position='mlp'"):
        CBViT(MINI, cb_position='mlp', out_indices=QUAD)
    with pytest.raises(ValueError, match=r'out_indices \[7\] out of range for 4 blocks'):
        CBViT(MINI, out_indices=(0, 1, 2, 7))
    with pytest.raises(ValueError, match='out_pyramid needs 4 out_indices'):
        CBViT(MINI, out_indices=(3,))


def test_layer_decay_constructor():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(
            type='EncoderDecoder',
            backbone=dict(type='CBViT', arch=MINI, cb_mode='cbs', out_indices=QUAD),
            decode_head=dict(type='FCNHead', in_channels=48, channels=8, num_convs=1,
                             num_classes=3, in_index=3)))
        wrapper = build_optim_wrapper(model, dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
            constructor='ViTLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(num_layers=4, layer_decay_rate=0.5)))
    groups = {g['group_name']: g for g in wrapper.optimizer.param_groups}
    lr_of = {name: g['lr'] for g in groups.values() for name in g['param_names']}
    wd_of = {name: g['weight_decay'] for g in groups.values() for name in g['param_names']}
    assert lr_of['backbone.pos_embed'] == 0.5 ** 5 and wd_of['backbone.pos_embed'] == 0
    assert lr_of['backbone.patch_embed.proj.weight'] == 0.5 ** 5
    assert lr_of['backbone.blocks.0.attn.qkv.weight'] == 0.5 ** 4
    assert wd_of['backbone.blocks.0.attn.qkv.weight'] == 0.05
    assert lr_of['backbone.blocks.3.mlp.fc2.weight'] == 0.5 ** 1
    assert wd_of['backbone.blocks.3.norm1.weight'] == 0
    assert lr_of['backbone.pyramid.fpn1.0.weight'] == 1.0
    assert lr_of['decode_head.conv_seg.weight'] == 1.0
    n_params = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g['params']) for g in groups.values()) == n_params


def test_layer_depths():
    """mmpretrain's ViT convention: stem 0, block i i + 1, final norm / pyramid last."""
    model = CBViT('small', final_norm=True)
    depth = lambda name: model.get_layer_depth('backbone.' + name, 'backbone.')  # noqa: E731
    for name in ('cls_token', 'pos_embed', 'patch_embed.proj.weight'):
        assert depth(name) == (0, 14)
    assert depth('blocks.0.norm1.weight') == (1, 14)
    assert depth('blocks.11.mlp.fc2.bias') == (12, 14)
    assert depth('norm.weight') == (13, 14)
    assert depth('pyramid.fpn1.0.weight') == (13, 14)
    assert model.get_layer_depth('decode_head.conv_seg.weight', 'backbone.') == (13, 14)


def test_layer_decay_needs_num_layers_without_backbone_depths():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(
            type='EncoderDecoder', backbone=dict(type='ResNetV1c', depth=18, num_stages=1,
                                                 out_indices=(0,), strides=(1,), dilations=(1,)),
            decode_head=dict(type='FCNHead', in_channels=64, channels=8, num_convs=1,
                             num_classes=3)))
        with pytest.raises(KeyError, match='ResNetV1c has no get_layer_depth, so '
                                           'paramwise_cfg.num_layers'):
            build_optim_wrapper(model, dict(
                type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0),
                constructor='ViTLayerDecayOptimizerConstructor',
                paramwise_cfg=dict(layer_decay_rate=0.5)))
