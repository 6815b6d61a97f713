"""Slide-Swin and Slide-PVT: paper sizes (params, FLOPs), exact output sizes, public-code and
PVT-v1 checkpoints (PVT-v1 checked against mmdet's PyramidVisionTransformer), frozen stages,
layer depths and layer-wise lr decay. The contract every backbone keeps (with_cp, deploy form,
round trips) is tests/test_models.py."""
import re

import pytest
import torch

from vitext.analysis.complexity import count_flops, count_parameters
from vitext.models.backbones import SlidePVT, SlideSwinTransformer
from vitext.models.classifiers import build_classifier
from vitext.models.weights import CheckpointMismatchError
from vitext.ops import SlideAttention
from vitext.ops.slide import shift_kernels

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
    """With a 1000-class head at 224x224 (docs/model_zoo.md#slide-transformer); FLOPs of the
    deploy form by mmengine's FlopAnalyzer with vitext's matmul/SDPA handles."""
    model = build_classifier(dict(type=cls.__name__, arch=arch))
    params = count_parameters(model) / 1e6
    assert abs(params - paper_m) / paper_m < param_tol, params
    model.switch_to_deploy()
    flops = count_flops(model, (torch.zeros(1, 3, 224, 224),)) / 1e9
    assert abs(flops - paper_g) / paper_g < 0.05, flops


def test_public_code_size_is_swin_size():
    """The public Slide-Swin code gives 28.3M for Slide-Swin-T (with head), Swin-T's count
    (docs/model_zoo.md#slide-transformer)."""
    params = count_parameters(build_classifier(dict(type='SlideSwinTransformer', arch='tiny')))
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


PVT_V1_MINI = dict(depths=(2, 1, 2, 1), embed_dims=(8, 16, 40, 64), num_heads=(1, 2, 5, 8))


def mmdet_pvt_v1():
    """mmdet's PyramidVisionTransformer (PVT-v1: absolute position tables, plain FFN, no stage
    norms) at PVT_V1_MINI's widths, random weights everywhere."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformer
    torch.manual_seed(0)
    model = PyramidVisionTransformer(
        pretrain_img_size=224, embed_dims=8, num_layers=list(PVT_V1_MINI['depths']),
        num_heads=list(PVT_V1_MINI['num_heads']), drop_path_rate=0.)
    with torch.no_grad():  # O(1) activations: weights at 1/sqrt(fan-in), norms near 1
        for name, p in model.named_parameters():
            if re.search(r'norm\d?\.weight$', name):
                p.normal_(1, 0.1)
            elif 'pos_embed' in name or p.dim() == 1:
                p.normal_(0, 0.1)
            else:
                p.normal_(0, p[0].numel() ** -0.5)
    # mmdet builds two LayerNorms with eps 1e-6 where the public code (and vitext) use
    # PyTorch's default 1e-5: the patch embeddings' and the spatial reduction's.
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm) and re.search(r'\.0\.norm$|attn\.norm$', name):
            module.eps = 1e-5
    return model.eval()


def to_pvt_v1_public(mmdet_state):
    """mmdet PVT state dict -> the public PVT-v1 classification layout (``pvt_tiny.pth``:
    ``patch_embed1.proj``, ``pos_embed1``, ``block1.0.attn.q``/``kv``/``sr``/``norm``,
    ``mlp.fc1``, final ``norm``, ``cls_token`` with its slot first in ``pos_embed4``, ``head``),
    written as the inverse of mmdet's ``pvt_convert``."""
    public = {}
    for key, value in mmdet_state.items():
        stage, part, rest = re.match(r'layers\.(\d)\.(\d)\.(.*)', key).groups()
        s = int(stage) + 1
        if part == '0':
            public[f'patch_embed{s}.' + rest.replace('projection.', 'proj.')] = value
            continue
        index, rest = rest.split('.', 1)
        if index == '0':  # the position table comes first in mmdet's block list
            public[f'pos_embed{s}'] = value
            continue
        p = f'block{s}.{int(index) - 1}.'
        suffix = rest.rsplit('.', 1)[-1].replace('in_proj_', '')
        if rest.startswith('attn.attn.in_proj_'):
            q_rows = value.shape[0] // 3
            public[p + f'attn.q.{suffix}'] = value[:q_rows]
            public[p + f'attn.kv.{suffix}'] = value[q_rows:]
        elif rest.startswith('attn.attn.out_proj.'):
            public[p + f'attn.proj.{suffix}'] = value
        elif rest.startswith('ffn.layers.'):
            fc = {'0': 'fc1', '3': 'fc2'}[rest.split('.')[2]]
            public[p + f'mlp.{fc}.{suffix}'] = value.flatten(1) if suffix == 'weight' else value
        else:
            public[p + rest] = value
    dim = public['pos_embed4'].shape[-1]
    public['cls_token'] = torch.randn(1, 1, dim)
    public['pos_embed4'] = torch.cat([torch.randn(1, 1, dim), public['pos_embed4']], dim=1)
    public['norm.weight'], public['norm.bias'] = torch.rand(dim) + 0.5, torch.randn(dim)
    public['head.weight'], public['head.bias'] = torch.randn(1000, dim), torch.zeros(1000)
    return public


@pytest.fixture(scope='module')
def pvt_v1(tmp_path_factory):
    """(mmdet model, path of the same weights saved in the public PVT-v1 layout)."""
    from mmdet.models.backbones.pvt import pvt_convert
    reference = mmdet_pvt_v1()
    state = reference.state_dict()
    public = to_pvt_v1_public(state)
    # The layout is the one mmdet converts from: its own converter gives the model back.
    converted = pvt_convert(public)
    assert converted.keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(converted[key].reshape(value.shape), value, rtol=0, atol=0)
    path = tmp_path_factory.mktemp('pvt') / 'pvt_v1_tiny.pth'
    torch.save({'model': public}, path)
    return reference, str(path)


def load_slide_pvt(path, **kwargs):
    model = SlidePVT(PVT_V1_MINI, drop_path_rate=0., **kwargs,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    return model.eval()


def test_pvt_v1_weights_reproduce_mmdet_pvt(pvt_v1):
    """With SR attention in every stage, Slide-PVT on PVT-v1 weights is mmdet's PVT-v1
    (plus the classifier's final norm on the last map)."""
    reference, path = pvt_v1
    model = load_slide_pvt(path, num_slide_stages=0)
    x = torch.randn(2, 3, 64, 96)  # multiples of 32: no padding before any reduction
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
        last = model.norm(theirs[3].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    for a, b in zip(ours, (*theirs[:3], last)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_pvt_v1_weights_into_slide_stages(pvt_v1):
    """Default Slide-PVT (slide attention in stages 1-2): q and kv become qkv, sr/norm are
    dropped, the slide-only tensors keep their init and are listed; stages 3-4 compute what
    PVT-v1's stages 3-4 compute on the same input."""
    reference, path = pvt_v1
    torch.manual_seed(3)
    with pytest.warns(UserWarning, match='keep their initialisation') as record:
        model = load_slide_pvt(path)
    message = next(str(w.message) for w in record if 'initialisation' in str(w.message))
    listed = re.search(r'initialisation: (.*); all', message).group(1).split(', ')
    slide_only = ('shift.weight', 'shift.bias', 'deform.weight', 'deform.bias',
                  'relative_position_bias_table')
    assert sorted(listed) == sorted(f'block{s}.{j}.attn.{t}' for s, depth in ((1, 2), (2, 1))
                                    for j in range(depth) for t in slide_only)
    public = torch.load(path, weights_only=True)['model']
    for s in (1, 2):
        attn = getattr(model, f'block{s}')[0].attn
        q, kv = public[f'block{s}.0.attn.q.weight'], public[f'block{s}.0.attn.kv.weight']
        torch.testing.assert_close(attn.qkv.weight, torch.cat([q, kv]), rtol=0, atol=0)
        # ... which is the layout the slide attention reads: q, k, v per head as PVT-v1 has
        # them, checked through the Im2Col reference of slide attention.
        from vitext.ops import slide_attention_unfold
        B, H, W, C = 1, 5, 6, attn.qkv.in_features
        nh, d = attn.num_heads, attn.head_dim
        x = torch.randn(B, H, W, C)
        to_heads = lambda t: t.view(B, H, W, nh, d).permute(0, 3, 4, 1, 2)  # noqa: E731
        k, v = torch.nn.functional.linear(x, kv, public[f'block{s}.0.attn.kv.bias']).chunk(2, -1)
        q = torch.nn.functional.linear(x, q, public[f'block{s}.0.attn.q.bias'])
        y = slide_attention_unfold(to_heads(q) * d ** -0.5, to_heads(k), to_heads(v),
                                   attn.relative_position_bias_table, attn.kernel_size,
                                   [(attn.shift.weight, attn.shift.bias),
                                    (attn.deform.weight, attn.deform.bias)])
        expected = attn.proj(y.reshape(B, C, H, W).permute(0, 2, 3, 1))
        with torch.no_grad():
            torch.testing.assert_close(attn(x), expected, rtol=1e-4, atol=1e-5)
    for stage_input in (torch.randn(2, 16, 28, 28), torch.randn(1, 16, 16, 20)):
        with torch.no_grad():
            x3 = stage_input
            for i in (2, 3):
                embed, blocks, _ = reference.layers[i]
                tokens, hw = embed(x3)
                for block in blocks:
                    tokens = block(tokens, hw)
                theirs = tokens.transpose(1, 2).reshape(x3.shape[0], -1, *hw)
                ours = model.forward_stage(i, x3).permute(0, 3, 1, 2)
                torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
                x3 = theirs


def test_pvt_v1_position_tables_resized_and_mismatch_listed(pvt_v1):
    _, path = pvt_v1
    with pytest.warns(UserWarning):
        model = load_slide_pvt(path, img_size=128)
    assert model.pos_embed1.shape == (1, 32 * 32, 8)
    assert model.pos_embed4.shape == (1, 4 * 4, 64)
    other = SlidePVT(dict(PVT_V1_MINI, depths=(2, 2, 2, 2)),
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError, match=r'missing in checkpoint: block2\.1\.'):
        with pytest.warns(UserWarning):
            other.init_weights()


INITIALISERS = ('Constant', 'Xavier', 'Normal', 'TruncNormal', 'Uniform', 'Kaiming',
                'Caffe2Xavier')


@pytest.mark.parametrize('init_type', INITIALISERS)
@pytest.mark.parametrize('cls,mini', [(SlideSwinTransformer, SWIN_MINI), (SlidePVT, PVT_MINI)])
def test_weight_initialisers_leave_shift_kernels_exact(cls, mini, init_type, tmp_path):
    """An mmengine ``init_cfg`` applied by ``layer=`` reaches every conv and linear layer of
    the model but not the shift kernels (constants, held as buffers): they stay one-hot, the
    checkpoint loads into a fresh model, and nothing the optimizer sees lacks a gradient."""
    extra = dict(val=0.5) if init_type == 'Constant' else {}
    init_cfg = [dict(type=init_type, layer=['Conv2d', 'Linear'], **extra)]
    model = cls(mini, init_cfg=init_cfg)
    model.init_weights()
    layers = [m for m in model.modules() if isinstance(m, SlideAttention)]
    assert layers
    for layer in layers:
        assert torch.equal(layer.shift.weight, shift_kernels(layer.head_dim, 3))
        assert all(p is not layer.shift.weight for p in model.parameters())
    if init_type == 'Constant':  # the initialiser did run on the convs around the shifts
        assert torch.all(layers[0].deform.weight == 0.5)
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    cls(mini, init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    sum(out.sum() for out in model(torch.randn(1, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_frozen_stages():
    model = SlideSwinTransformer(SWIN_MINI, frozen_stages=1).train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert model.layers[0].training is False and model.layers[1].training
    assert model.layers[1].blocks[0].attn.deform.weight.requires_grad


def test_bad_arch():
    with pytest.raises(ValueError, match="arch 'huge' is not one of"):
        SlideSwinTransformer('huge')
    with pytest.raises(ValueError, match='stage 2: embed_dims 40 is not divisible by num_heads 3'):
        SlidePVT(dict(PVT_MINI, num_heads=(1, 2, 3, 4)))


def test_layer_depths():
    """Swin's convention (mmpretrain): patch embedding 0, blocks 1..12 through the stages,
    patch merging with the last block before it, output norms and heads last (13)."""
    swin = SlideSwinTransformer('tiny')
    depth = lambda name: swin.get_layer_depth('backbone.' + name, 'backbone.')  # noqa: E731
    assert depth('patch_embed.proj.weight') == (0, 14)
    assert depth('layers.0.blocks.0.attn.qkv.weight') == (1, 14)
    assert depth('layers.0.downsample.reduction.weight') == (2, 14)
    assert depth('layers.1.blocks.0.norm1.weight') == (3, 14)
    assert depth('layers.2.blocks.5.mlp.fc2.bias') == (10, 14)
    assert depth('layers.3.blocks.1.attn.proj.weight') == (12, 14)
    assert depth('out_norms.3.weight') == (13, 14)
    assert swin.get_layer_depth('decode_head.conv_seg.weight', 'backbone.') == (13, 14)
    pvt = SlidePVT('small')  # depths 3, 4, 6, 3
    assert pvt.get_layer_depth('pos_embed1') == (0, 18)
    assert pvt.get_layer_depth('patch_embed1.proj.weight') == (0, 18)
    assert pvt.get_layer_depth('block1.0.attn.qkv.weight') == (1, 18)
    assert pvt.get_layer_depth('patch_embed2.norm.bias') == (3, 18)
    assert pvt.get_layer_depth('pos_embed3') == (7, 18)
    assert pvt.get_layer_depth('block3.5.attn.sr.weight') == (13, 18)
    assert pvt.get_layer_depth('block4.2.mlp.fc1.weight') == (16, 18)
    assert pvt.get_layer_depth('norm.weight') == (17, 18)


def test_layer_decay_constructor_for_slide_swin():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(
            type='EncoderDecoder', backbone=dict(type='SlideSwinTransformer', arch=SWIN_MINI),
            decode_head=dict(type='FCNHead', in_channels=128, channels=8, num_convs=1,
                             num_classes=3, in_index=3)))
        wrapper = build_optim_wrapper(model, dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
            constructor='ViTLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.5)))
    groups = wrapper.optimizer.param_groups
    lr_of = {name: g['lr'] for g in groups for name in g['param_names']}
    wd_of = {name: g['weight_decay'] for g in groups for name in g['param_names']}
    # SWIN_MINI: 6 blocks -> depths 0..7, lr = 0.5 ** (7 - depth)
    assert lr_of['backbone.patch_embed.proj.weight'] == 0.5 ** 7
    assert lr_of['backbone.layers.0.blocks.0.attn.qkv.weight'] == 0.5 ** 6
    assert lr_of['backbone.layers.0.downsample.reduction.weight'] == 0.5 ** 6
    assert lr_of['backbone.layers.1.blocks.1.mlp.fc1.weight'] == 0.5 ** 4
    assert lr_of['backbone.layers.3.blocks.0.attn.proj.weight'] == 0.5 ** 1
    assert lr_of['backbone.out_norms.3.weight'] == 1.0
    assert lr_of['decode_head.conv_seg.weight'] == 1.0
    assert wd_of['backbone.layers.2.blocks.0.attn.relative_position_bias_table'] == 0
    assert wd_of['backbone.layers.0.blocks.0.attn.relative_position_bias_table'] == 0
    assert wd_of['backbone.layers.0.blocks.0.attn.deform.weight'] == 0.05
    assert wd_of['backbone.layers.0.blocks.0.norm1.weight'] == 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(len(g['params']) for g in groups) == len(trainable)
    with pytest.raises(ValueError, match='num_layers=12 but SlideSwinTransformer has 6 blocks'):
        with DefaultScope.overwrite_default_scope('mmseg'):
            build_optim_wrapper(model, dict(
                type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0),
                constructor='ViTLayerDecayOptimizerConstructor',
                paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.5)))


@pytest.mark.parametrize('config,paper_m', [
    ('upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py', 60),
    ('fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py', 16),
    ('mask-rcnn_slide-pvt-t_fpn_8xb2-1x_coco.py', 32),
    ('mask-rcnn_slide-pvt-m_fpn_8xb2-1x_coco.py', 62),
    ('mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py', 48),
])
def test_whole_model_sizes_match_paper(config, paper_m):
    """Downstream models of the Slide-Transformer paper (its totals, rounded to 1M;
    docs/model_zoo.md#slide-transformer)."""
    import importlib
    import os.path as osp

    from mmengine.registry import DefaultScope

    from conftest import ROOT
    from vitext.preflight import load_config
    cfg = load_config(osp.join(ROOT, 'configs', 'slide', config))
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = models.build(cfg.model)
    assert abs(count_parameters(model) / 1e6 - paper_m) < 0.6
