"""Slide-Swin and Slide-PVT: paper sizes (params, FLOPs), any input size, train == deploy,
public-code and PVT-v1 checkpoints, frozen stages, activation checkpointing."""
import pytest
import torch

from vitext.analysis.complexity import ImageClassifier, count_flops, count_parameters
from vitext.models.backbones import SlidePVT, SlideSwinTransformer
from vitext.models.weights import CheckpointMismatchError
from vitext.ops import SlideAttention

SWIN_MINI = dict(embed_dims=16, depths=(1, 2, 2, 1), num_heads=(1, 2, 2, 4))
PVT_MINI = dict(depths=(1, 1, 1, 1), embed_dims=(16, 32, 40, 64), num_heads=(1, 2, 2, 4))


@pytest.mark.parametrize('cls,arch,paper_m,paper_g,param_tol', [
    (SlideSwinTransformer, 'tiny', 29, 4.6, 0.03),
    (SlideSwinTransformer, 'small', 51, 8.9, 0.03),
    (SlideSwinTransformer, 'base', 89, 15.5, 0.03),
    (SlidePVT, 'tiny', 12.2, 2.0, 0.02),
    (SlidePVT, 'small', 22.7, 4.0, 0.02),
])
def test_paper_parameters_and_flops(cls, arch, paper_m, paper_g, param_tol):
    """With a 1000-class head at 224x224 (SPEC §2); FLOPs of the deploy form by mmengine's
    FlopAnalyzer with vitext's matmul/SDPA handles."""
    model = ImageClassifier(cls(arch, out_indices=(3,)))
    params = count_parameters(model) / 1e6
    assert abs(params - paper_m) / paper_m < param_tol, params
    model.backbone.switch_to_deploy()
    flops = count_flops(model, (torch.zeros(1, 3, 224, 224),)) / 1e9
    assert abs(flops - paper_g) / paper_g < 0.05, flops


def test_public_code_size_is_swin_size():
    """SPEC: the public code gives 28.3M for Slide-Swin-T (with head)."""
    params = count_parameters(ImageClassifier(SlideSwinTransformer('tiny', out_indices=(3,))))
    assert round(params / 1e6, 1) == 28.3


@pytest.mark.parametrize('cls,mini', [(SlideSwinTransformer, SWIN_MINI), (SlidePVT, PVT_MINI)])
@pytest.mark.parametrize('size', [(64, 64), (45, 71)])
def test_any_input_size_four_strides(cls, mini, size):
    model = cls(mini).eval()
    model.init_weights()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert len(outs) == 4
    for out, stride, ch in zip(outs, (4, 8, 16, 32), model.num_features):
        assert out.shape == (2, ch, -(-size[0] // stride), -(-size[1] // stride))


@pytest.mark.parametrize('cls,mini', [(SlideSwinTransformer, SWIN_MINI), (SlidePVT, PVT_MINI)])
def test_train_form_equals_deploy_form(cls, mini):
    torch.manual_seed(0)
    model = cls(mini).eval()
    model.init_weights()
    x = torch.randn(2, 3, 61, 50)
    with torch.no_grad():
        train_outs = model(x)
        model.switch_to_deploy()
        assert all(m.deploy for m in model.modules() if isinstance(m, SlideAttention))
        deploy_outs = model(x)
    for a, b in zip(train_outs, deploy_outs):
        assert (a - b).abs().max() < 1e-5


def to_public_layout(model: SlideSwinTransformer):
    """vitext Slide-Swin weights -> the public classification code's state dict (written
    independently of the converter): head-major qkv, dep_conv/dep_conv1, 6-d position tables,
    its buffers, one final norm and a classifier."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith('out_norms.'):
            if key.startswith('out_norms.3.'):
                state['norm.' + key.split('.')[-1]] = value
            continue
        state[key] = value
    for name, module in model.named_modules():
        if isinstance(module, SlideAttention):
            p, nh, d = name + '.', module.num_heads, module.head_dim
            for suffix in ('weight', 'bias'):
                qkv = state[f'{p}qkv.{suffix}']
                rows = qkv.reshape(3, nh, d, *qkv.shape[1:])
                state[f'{p}qkv.{suffix}'] = rows.transpose(0, 1).reshape(qkv.shape)
                state[f'{p}dep_conv.{suffix}'] = state.pop(f'{p}shift.{suffix}')
                state[f'{p}dep_conv1.{suffix}'] = state.pop(f'{p}deform.{suffix}')
            table = state[p + 'relative_position_bias_table']
            state[p + 'relative_position_bias_table'] = table.view(1, nh, 1, -1, 1, 1)
        elif hasattr(module, 'relative_position_index'):
            state[name + '.relative_position_index'] = module.relative_position_index
            state[name.replace('.attn', '.attn_mask')] = torch.zeros(4, 49, 49)
    state['head.weight'] = torch.randn(1000, model.num_features[-1])
    state['head.bias'] = torch.zeros(1000)
    return state


def test_public_checkpoint_loads_with_same_outputs(tmp_path):
    torch.manual_seed(0)
    source = SlideSwinTransformer(SWIN_MINI, out_indices=(3,)).eval()
    source.init_weights()
    path = tmp_path / 'public.pth'
    torch.save({'model': to_public_layout(source)}, path)  # the public code's checkpoint dict
    native = tmp_path / 'native.pth'
    torch.save({'state_dict': source.state_dict()}, native)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = source(x)[0]
        for ckpt in (path, native):
            model = SlideSwinTransformer(SWIN_MINI, out_indices=(3,),
                                         init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
            model.init_weights()
            torch.testing.assert_close(model.eval()(x)[0], expected, rtol=0, atol=1e-6)


def test_window_tables_of_other_windows_are_resized(tmp_path):
    """The public configs use larger windows in stages 3-4: their tables are resized."""
    source = SlideSwinTransformer(SWIN_MINI, window_size=14)
    path = tmp_path / 'w14.pth'
    torch.save(source.state_dict(), path)
    model = SlideSwinTransformer(SWIN_MINI, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.layers[2].blocks[0].attn.relative_position_bias_table.shape == (169, 2)


def test_deploy_checkpoint_switches_model_and_mismatch_is_listed(tmp_path):
    source = SlideSwinTransformer(SWIN_MINI)
    source.switch_to_deploy()
    path = tmp_path / 'deploy.pth'
    torch.save(source.state_dict(), path)
    model = SlideSwinTransformer(SWIN_MINI, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.layers[0].blocks[0].attn.deploy
    other = SlideSwinTransformer(dict(SWIN_MINI, embed_dims=32),
                                 init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match=r'deploy\.pth.*\n  shape mismatch: '
                                                      r'layers\.0\.blocks\.0\.attn\.merged\.bias'):
        other.init_weights()


def test_pvt_v1_checkpoint_with_class_token_loads(tmp_path):
    """PVT-v1 classification layout: a class token and its slot first in pos_embed4, tables
    for 224 px; vitext resizes them to its own grid (here 128 px)."""
    source = SlidePVT(PVT_MINI)
    state = source.state_dict()
    state['cls_token'] = torch.zeros(1, 1, 64)
    state['pos_embed4'] = torch.cat([torch.zeros(1, 1, 64), state['pos_embed4']], dim=1)
    state['head.weight'] = torch.zeros(1000, 64)
    path = tmp_path / 'pvt.pth'
    torch.save(state, path)
    model = SlidePVT(PVT_MINI, img_size=128,
                     init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.pos_embed1.shape == (1, 32 * 32, 16)
    assert model.pos_embed4.shape == (1, 4 * 4, 64)


def test_frozen_stages_and_activation_checkpointing():
    model = SlideSwinTransformer(SWIN_MINI, frozen_stages=1).train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert model.layers[0].training is False and model.layers[1].training
    assert model.layers[1].blocks[0].attn.deform.weight.requires_grad
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(1)
        net = SlideSwinTransformer(SWIN_MINI, with_cp=with_cp, drop_path_rate=0.).train()
        sum(o.sum() for o in net(x)).backward()
        grads.append(net.layers[0].blocks[0].attn.deform.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_bad_arch_and_indices():
    with pytest.raises(ValueError, match="arch 'huge' is not one of"):
        SlideSwinTransformer('huge')
    with pytest.raises(ValueError, match='out_indices'):
        SlidePVT('tiny', out_indices=(4,))


@pytest.mark.parametrize('config,paper_m', [
    ('upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py', 60),
    ('fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py', 16),
    ('mask-rcnn_slide-pvt-t_fpn_8xb2-1x_coco.py', 32),
    ('mask-rcnn_slide-pvt-m_fpn_8xb2-1x_coco.py', 62),
    ('mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py', 48),
])
def test_whole_model_sizes_match_paper(config, paper_m):
    """Downstream models of SPEC §2 (paper's totals, rounded to 1M)."""
    import importlib
    import os.path as osp

    from mmengine.registry import DefaultScope

    from conftest import ROOT
    from vitext.apis import load_config
    cfg = load_config(osp.join(ROOT, 'configs', 'slide', config))
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = models.build(cfg.model)
    assert abs(count_parameters(model) / 1e6 - paper_m) < 0.6
