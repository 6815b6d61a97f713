"""timm's model contract, held by every vitext timm name (timm's own tests/test_models.py is
the model; its generic tests were run over these names, this file keeps the same checks in the
project): config metadata and head/pool shapes on the meta device at full size, every parameter
reached by backward, ``forward_intermediates`` / ``prune_intermediate_layers`` taps,
``features_only`` (dense backbone and timm's FeatureGetterNet), grad checkpointing, layer-wise
lr-decay groups and FX tracing with timm's no-trace lists."""
import copy
import fnmatch
import math

import pytest
import torch

import vitext  # noqa: F401  (registers the timm names)
from vitext.models.classifiers import VARIANTS

timm = pytest.importorskip('timm')
NAMES = sorted(VARIANTS)
SIZE = 64  # real-tensor checks: full widths, small images


@pytest.fixture(scope='module')
def built():
    """One classifier per name (seeded), built once; tests that change a model copy it."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = timm.create_model(name, num_classes=7).eval()
        return cache[name]
    return get


def has_class_token(model):
    return getattr(model, 'cls_token', None) is not None


@pytest.mark.parametrize('name', NAMES)
def test_config_and_heads_on_meta_device(name):
    """timm's cfg test: built under ``torch.device('meta')`` at full size, the config names
    parameters that exist, forward_features has the configured pool size (tokens for
    class-token models), the head and pooling follow num_classes / global_pool /
    reset_classifier, which keeps the model's device, dtype and mode."""
    with torch.device('meta'):
        model = timm.create_model(name, device='meta', dtype=torch.float32).eval()
    cfg = model.pretrained_cfg
    state = model.state_dict()
    assert model.default_cfg is cfg and model.in_chans == cfg['input_size'][0] == 3
    assert cfg['first_conv'] + '.weight' in state and cfg['classifier'] + '.weight' in state
    x = torch.randn(1, 3, 224, 224, device='meta')
    features = model.forward_features(x)
    pre_logits = model.forward_head(features, pre_logits=True)
    if has_class_token(model):
        assert features.shape[-1] == model.num_features and features.dim() == 3
    else:
        assert features.shape[1:] == (model.num_features, *cfg['pool_size'])
    assert pre_logits.shape == (1, model.head_hidden_size)
    assert model(x).shape == (1, 1000)
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == pre_logits.shape
    model.reset_classifier(0, '')
    assert model(x).shape == features.shape
    headless = timm.create_model(name, num_classes=0, global_pool='', device='meta')
    assert headless(x).shape == features.shape
    with pytest.raises(TypeError):
        timm.create_model(name, device='meta', not_a_model_arg=1)
    with pytest.raises(ValueError, match='global_pool'):
        timm.create_model(name, device='meta', global_pool='catavgmax')

    model.to(dtype=torch.float64).train()
    model.reset_classifier(3)
    assert model.head.weight.dtype == torch.float64 and model.head.weight.is_meta
    assert model.head.training
    model.requires_grad_(False)
    model.reset_classifier(0, '')
    assert not [n for n, p in model.named_parameters() if p.requires_grad]


@pytest.mark.parametrize('name', NAMES)
def test_optimizer_hooks(name):
    """group_matcher (timm's layer-wise lr decay) follows the mm layer depths; every
    no_weight_decay entry names a parameter."""
    from timm.models._manipulate import group_parameters
    model = timm.create_model(name, device='meta')
    groups = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    assert len(set(groups.values())) == model.num_blocks + 2
    names = [n for n, _ in model.named_parameters()]
    for pattern in model.no_weight_decay():
        assert any(fnmatch.fnmatch(n, pattern) for n in names), pattern


@pytest.mark.parametrize('name', NAMES)
def test_backward_reaches_every_parameter(name, built):
    model = copy.deepcopy(built(name)).train()
    out = model(torch.randn(2, 3, SIZE, SIZE))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


@pytest.mark.parametrize('name', NAMES)
def test_forward_intermediates(name, built):
    """One NCHW map per feature_info entry with its channels and reduction; the final output
    is forward_features'; stop_early and grad checkpointing change nothing."""
    model = built(name)
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        final, taps = model.forward_intermediates(x)
        assert len(taps) == len(model.feature_info)
        for info, tap in zip(model.feature_info, taps):
            assert tap.shape[:2] == (1, info['num_chs'])
            assert tap.shape[2:] == (math.ceil(SIZE / info['reduction']),) * 2
        torch.testing.assert_close(final, model.forward_features(x), rtol=1e-5, atol=1e-6)
        last = len(taps) - 1
        for i in sorted({0, last // 2, last}):
            early = model.forward_intermediates(x, indices=[i], stop_early=True,
                                                intermediates_only=True)
            torch.testing.assert_close(early[0], taps[i], rtol=0, atol=0)
        normed = model.forward_intermediates(x, indices=1, norm=True, intermediates_only=True)
        assert normed[0].shape == taps[-1].shape and not torch.equal(normed[0], taps[-1])
        model = copy.deepcopy(model)
        model.set_grad_checkpointing()
        torch.testing.assert_close(model.forward_intermediates(x)[0], final)
    model.train()
    loss = model.forward_intermediates(torch.randn(2, 3, SIZE, SIZE))[0].sum()
    loss.backward()


@pytest.mark.parametrize('name', NAMES)
def test_prune_intermediate_layers(name, built):
    """Pruned after tap i (as FeatureGetterNet does): the same tap values, forward_features
    ends there without the norm, and training reaches every remaining parameter."""
    model = built(name)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        taps = model.forward_intermediates(x, intermediates_only=True)
        expected = model(x)
    last = len(taps) - 1
    kept = copy.deepcopy(model)
    kept.prune_intermediate_layers([last], prune_head=False)
    with torch.no_grad():
        torch.testing.assert_close(kept(x), expected)
    for i in sorted({0, last // 2}):
        pruned = copy.deepcopy(model)
        take = pruned.prune_intermediate_layers([i], prune_norm=True)
        assert take == [i] and pruned.num_features == model.feature_info[i]['num_chs']
        with torch.no_grad():
            torch.testing.assert_close(pruned.forward_intermediates(x, indices=take,
                                                                    intermediates_only=True)[0],
                                       taps[i], rtol=0, atol=0)
            features = pruned.forward_features(x)
            if not has_class_token(model):
                torch.testing.assert_close(features, taps[i], rtol=0, atol=0)
        pruned.train()
        sum(f.sum() for f in pruned.forward_intermediates(x, indices=take,
                                                          intermediates_only=True)).backward()
        assert not [n for n, p in pruned.named_parameters() if p.grad is None]


@pytest.mark.parametrize('name', ['slide_swin_tiny', 'slide_pvt_tiny', 'aft_conv_tiny_32_11',
                                  'cb_vit_tiny'])
def test_features_only_models(name):
    """The dense backbone (default) and timm's FeatureGetterNet both carry timm's config and
    feature_info, and their maps have its channels and reductions."""
    x = torch.randn(1, 3, SIZE, SIZE)
    for kwargs in (dict(), dict(feature_cls='getter')):
        model = timm.create_model(name, features_only=True, **kwargs).eval()
        assert model.pretrained_cfg['input_size'] == (3, 224, 224) and model.in_chans == 3
        with torch.no_grad():
            outs = model(x)
        assert [o.shape[1] for o in outs] == model.feature_info.channels()
        assert [SIZE // o.shape[-1] for o in outs] == model.feature_info.reduction()


@pytest.mark.parametrize('backbone,arch', [('SlideSwinTransformer', 'tiny'), ('SlidePVT', 'tiny'),
                                           ('AFTViT', 'tiny'), ('CBViT', 'tiny')])
def test_one_classifier_per_backbone_family(backbone, arch):
    """A backbone config's classifier (the model-zoo table's and ``vitext flops --backbone``'s)
    is the timm classifier of its family; its ``num_features`` is timm's head width and the
    dense backbone's per-stage widths are its feature_info channels."""
    from vitext.models.backbones import SlidePVT, SlideSwinTransformer
    from vitext.models.classifiers import CLASSIFIERS, build_classifier
    with torch.device('meta'):
        model = build_classifier(dict(type=backbone, arch=arch), num_classes=5)
        dense = model.backbone_cls(arch=arch)
    assert type(model) is CLASSIFIERS[backbone] and model.backbone_cls.__name__ == backbone
    assert model.num_features == model.feature_info[-1]['num_chs'] == model.head.in_features
    if isinstance(dense, (SlideSwinTransformer, SlidePVT)):
        assert [info['num_chs'] for info in model.feature_info] == dense.num_features
    with pytest.raises(ValueError, match=r"backbone type 'ResNet' has no classifier; expected "
                                         r"one of \['AFTViT', 'CBViT', 'SlidePVT'"):
        build_classifier(dict(type='ResNet', depth=18))


@pytest.mark.parametrize('name', NAMES)
def test_fx_trace(name, built):
    """torchvision's FX feature extraction with timm's no-trace modules/functions (how timm's
    tests and users trace models) gives the model's own output."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import (create_feature_extractor,
                                                       get_graph_node_names)
    model = built(name)
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(),
                         autowrap_functions=get_notrace_functions(), param_shapes_constant=True)
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    fx_model = create_feature_extractor(model, train_return_nodes=[train_nodes[-1]],
                                        eval_return_nodes=[eval_nodes[-1]],
                                        tracer_kwargs=tracer_kwargs).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(tuple(fx_model(x).values())[0], model(x), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize('name', ['slide_swin_tiny', 'slide_pvt_tiny', 'aft_conv_tiny_32_11',
                                  'aft_full_tiny', 'cb_vit_tiny'])
def test_torch_export(name, built):
    """torch.export (PyTorch's successor of TorchScript, which vitext does not support) records
    every family; the exported program gives the model's output."""
    model = built(name)
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        program = torch.export.export(model, (x,))
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)
