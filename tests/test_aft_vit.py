"""AFTViT backbone: paper parameter counts, any input size, weights, pyramid, layer depths
(with_cp, round trips: tests/test_models.py)."""
import pytest
import torch

from vitext.models.backbones import AFTViT
from vitext.models.weights import CheckpointMismatchError

MINI = dict(embed_dims=32, num_layers=4)
QUAD = (0, 1, 2, 3)


@pytest.mark.parametrize('kwargs,paper_m', [
    (dict(arch='tiny', num_heads=32, kernel_size=11), 5.4),
    (dict(arch='tiny', num_heads=192, kernel_size=11), 5.9),
    (dict(arch='small', num_heads=16, kernel_size=11), 20.3),
    (dict(arch='small', num_heads=384, kernel_size=11), 22.5),
    (dict(arch='small', num_heads=384, kernel_size=15), 23.0),
    (dict(arch='tiny', attn_type='full'), 6.3),
    (dict(arch='small', attn_type='full'), 22.6),
], ids=['conv-tiny-32-11', 'conv-tiny-192-11', 'conv-small-16-11', 'conv-small-384-11',
        'conv-small-384-15', 'full-tiny', 'full-small'])
def test_parameter_counts_match_paper(kwargs, paper_m):
    """Backbone (no pyramid, with final norm) + a 1000-class head vs the AFT paper's Table 7
    (docs/model_zoo.md#aft)."""
    model = AFTViT(out_pyramid=False, final_norm=True, **kwargs)
    count = sum(p.numel() for p in model.parameters()) + model.embed_dims * 1000 + 1000
    assert abs(count / 1e6 - paper_m) / paper_m < 0.02, count


def test_conv_has_no_class_token_or_positions_and_any_size():
    model = AFTViT(MINI, num_heads=8, kernel_size=3, out_indices=QUAD).eval()
    assert model.cls_token is None and model.pos_embed is None
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 70, 90))  # padded to 80x96 -> 5x6 grid
        assert [tuple(o.shape) for o in outs] == [(2, 32, 20, 24), (2, 32, 10, 12),
                                                  (2, 32, 5, 6), (2, 32, 2, 3)]
        flat = AFTViT(MINI, num_heads=8, kernel_size=3, out_indices=(3,), out_pyramid=False)
        assert flat.eval()(torch.randn(1, 3, 48, 160))[0].shape == (1, 32, 3, 10)


@pytest.mark.parametrize('attn_type', ['full', 'local', 'simple'])
def test_token_bias_types_run_at_other_sizes(attn_type):
    model = AFTViT(MINI, attn_type=attn_type, kernel_size=3, img_size=64,
                   out_indices=QUAD).eval()
    assert model.cls_token is not None and model.pos_embed.shape == (1, 17, 32)
    with torch.no_grad():
        assert [o.shape[-2:] for o in model(torch.randn(1, 3, 96, 48))][2] == (6, 3)


def test_gradients_reach_reparameterisation():
    model = AFTViT(MINI, num_heads=4, kernel_size=3, out_indices=QUAD)
    sum(o.sum() for o in model(torch.randn(1, 3, 32, 32))).backward()
    attn = model.blocks[0].attn
    for p in (attn.pos_gamma, attn.pos_beta, attn.k.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    # gamma = 0 at init blocks the raw kernel's gradient: the layer starts as AFT-simple.
    assert torch.count_nonzero(attn.pos_weight.grad) == 0


def test_classification_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    src = AFTViT(MINI, num_heads=4, kernel_size=3, out_indices=(3,), out_pyramid=False,
                 final_norm=True)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    state = {**src.state_dict(), 'head.weight': torch.zeros(10, 32), 'head.bias': torch.zeros(10)}
    path = str(tmp_path / 'aft_cls.pth')
    torch.save({'model': state}, path)
    dst = AFTViT(MINI, num_heads=4, kernel_size=3, out_indices=QUAD,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    dst.init_weights()
    torch.testing.assert_close(dst.blocks[2].attn.pos_weight, src.blocks[2].attn.pos_weight)
    torch.testing.assert_close(dst.blocks[3].mlp.fc1.weight, src.blocks[3].mlp.fc1.weight)

    other = AFTViT(MINI, num_heads=8, kernel_size=5, out_indices=QUAD,
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError,
                       match=r'blocks.0.attn.k.weight: checkpoint \(4, 32\) vs model \(8, 32\)'):
        other.init_weights()


@pytest.mark.parametrize('attn_type', ['full', 'local'])
def test_checkpoint_of_another_image_size_loads(attn_type, tmp_path):
    """A 224-px AFT-full/local checkpoint into a 384-px model: the position table and the
    factorised bias U, V are resized to the model's grid (U, V bilinearly, as the layer resizes
    them for each input), everything else is taken as it is."""
    from vitext.ops.tokens import resize_grid_tokens
    src = AFTViT(MINI, attn_type=attn_type, kernel_size=3, out_indices=QUAD, img_size=224)
    path = str(tmp_path / 'aft_224.pth')
    torch.save(src.state_dict(), path)
    dst = AFTViT(MINI, attn_type=attn_type, kernel_size=3, out_indices=QUAD, img_size=384,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    dst.init_weights()
    for key in ('blocks.0.attn.pos_u', 'blocks.3.attn.pos_v'):
        assert src.state_dict()[key].shape == (197, 128)
        expected = resize_grid_tokens(src.state_dict()[key], (24, 24), (14, 14), 1,
                                      mode='bilinear')
        torch.testing.assert_close(dst.state_dict()[key], expected, rtol=0, atol=0)
    assert dst.pos_embed.shape == (1, 577, 32)
    torch.testing.assert_close(dst.blocks[1].attn.q.weight, src.blocks[1].attn.q.weight)


def test_bad_arguments():
    with pytest.raises(ValueError, match="attn_type='softmax' is not one of"):
        AFTViT(MINI, attn_type='softmax')
    with pytest.raises(ValueError, match="arch 'base' is not one of"):
        AFTViT('base')
    with pytest.raises(ValueError, match=r'patch_size must be an int in \[1, 224\], got 0'):
        AFTViT(MINI, patch_size=0, out_indices=QUAD)
    with pytest.raises(ValueError, match='drop_path_rate must be in'):
        AFTViT(MINI, drop_path_rate=1.5, out_indices=QUAD)
    with pytest.raises(ValueError, match='kernel_size must be odd'):
        AFTViT(MINI, num_heads=4, kernel_size=4, out_indices=QUAD)
    with pytest.raises(ValueError, match='not divisible by num_heads 5'):
        AFTViT(MINI, num_heads=5, out_indices=QUAD)


def test_layer_depths_without_class_token():
    model = AFTViT(MINI, num_heads=4, kernel_size=3, out_indices=QUAD)
    assert model.get_layer_depth('patch_embed.proj.bias') == (0, 6)
    assert model.get_layer_depth('blocks.0.attn.k.weight') == (1, 6)
    assert model.get_layer_depth('blocks.3.attn.pos_weight') == (4, 6)
    assert model.get_layer_depth('pyramid.fpn2.weight') == (5, 6)
