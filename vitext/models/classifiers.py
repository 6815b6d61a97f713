"""vitext's backbones as ImageNet classifiers with timm's model interface.

Each classifier is the backbone itself in its classification mode plus a linear ``head``: the
last stage after its final norm, then global average pooling (AFT-conv, Slide-Swin, Slide-PVT)
or the class token (CB-ViT, AFT-full, as DeiT). The parameter names are the backbone's, so a
state dict saved from the classifier (by timm's ``train.py`` or any script) loads into the dense
backbone through ``init_cfg=dict(type='Pretrained', checkpoint=...)``; the head is dropped.

:data:`VARIANTS` declares the timm model names; :func:`vitext.registry.register_timm_models`
registers them, so after ``import vitext``::

    model = timm.create_model('slide_swin_tiny', num_classes=1000, drop_path_rate=0.2)
    feats = timm.create_model('slide_pvt_small', features_only=True, out_indices=(1, 2, 3))

``features_only`` returns the dense backbone (a tuple of NCHW maps at ``out_indices``; plain
ViTs: stride-16 maps of the given blocks) with timm's ``feature_info``. No public ImageNet weights
exist for these models: ``pretrained=True`` is refused; timm's ``checkpoint_path=`` loads a file.
"""
from typing import Any, Callable, Dict, List, Tuple, Type

from torch import Tensor, nn

from .backbones import AFTViT, CBViT, SlidePVT, SlideSwinTransformer
from .backbones.plain_vit import PlainViT
from .layers import resolve_arch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stage_feature_info(dims: List[int], module: str) -> List[dict]:
    """timm's feature_info of a 4-stage pyramid (strides 4, 8, 16, 32)."""
    return [dict(num_chs=d, reduction=4 * 2 ** i, module=module.format(i=i, n=i + 1))
            for i, d in enumerate(dims)]


def plain_vit_feature_info(model: PlainViT) -> List[dict]:
    """timm's feature_info of a plain ViT: one stride-``patch_size`` map per block."""
    return [dict(num_chs=model.embed_dims, reduction=model.patch_size, module=f'blocks.{i}')
            for i in range(model.depth)]


class ClassifierMixin:
    """timm's classifier interface on a backbone (the class after this mixin in the MRO).

    Args:
        num_classes: classes of the linear head (0: no head, ``forward`` gives the pooled
            features).
        **kwargs: the backbone's arguments (``drop_rate`` is also the head's dropout, as in
            timm's ViT); the classification-mode arguments come from
            :meth:`classification_kwargs`.
    """

    def __init__(self, num_classes: int = 1000, **kwargs):
        super().__init__(**kwargs, **self.classification_kwargs(kwargs))
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = self.feature_width()
        self.head_drop = nn.Dropout(kwargs.get('drop_rate', 0.))
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self.feature_info = self.stage_feature_info()
        self.init_weights()  # the backbone's init (timm does not call mmengine's init_weights)

    @classmethod
    def classification_kwargs(cls, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def feature_width(self) -> int:
        raise NotImplementedError

    def stage_feature_info(self) -> List[dict]:
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage after its final norm: (B, C, H, W), or the (B, C) class token."""
        return super().forward(x)[-1]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Any = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def no_weight_decay(self) -> set:
        """Position tables and class tokens (timm's optimizer factory leaves them undecayed)."""
        return {name for name, _ in self.named_parameters()
                if name.split('.')[-1].startswith(('pos_embed', 'cls_token',
                                                   'relative_position_bias_table'))}


class SlideSwinClassifier(ClassifierMixin, SlideSwinTransformer):
    """Slide-Swin + global average pooling of the normed last stage + linear head (Swin's)."""

    @classmethod
    def classification_kwargs(cls, kwargs):
        arch = resolve_arch(kwargs.get('arch', 'tiny'), cls.arch_zoo, ('depths',))
        return dict(out_indices=(len(arch['depths']) - 1,))

    def feature_width(self) -> int:
        return self.layers[-1].blocks[0].norm1.normalized_shape[0]

    def stage_feature_info(self):
        return stage_feature_info([layer.blocks[0].norm1.normalized_shape[0]
                                   for layer in self.layers], 'layers.{i}')


class SlidePVTClassifier(ClassifierMixin, SlidePVT):
    """Slide-PVT + global average pooling of the normed last stage + linear head."""

    @classmethod
    def classification_kwargs(cls, kwargs):
        arch = resolve_arch(kwargs.get('arch', 'tiny'), cls.arch_zoo, ('depths',))
        return dict(out_indices=(len(arch['depths']) - 1,))

    def feature_width(self) -> int:
        return self.norm.normalized_shape[0]

    def stage_feature_info(self):
        return stage_feature_info([getattr(self, f'patch_embed{i + 1}').norm.normalized_shape[0]
                                   for i in range(self.num_stages)], 'block{n}')


class PlainViTClassifierMixin(ClassifierMixin):
    """Plain ViT: final norm on the last block, then its class token (DeiT), or the average
    of its tokens for models without one (AFT-conv)."""
    arch_keys = ('num_layers',)

    @classmethod
    def has_class_token(cls, kwargs) -> bool:
        return True

    @classmethod
    def classification_kwargs(cls, kwargs):
        depth = resolve_arch(kwargs.get('arch', 'small'), cls.arch_zoo, cls.arch_keys)
        return dict(out_indices=(depth['num_layers'] - 1,), out_pyramid=False, final_norm=True,
                    out_type='cls_token' if cls.has_class_token(kwargs) else 'featmap')

    def feature_width(self) -> int:
        return self.embed_dims

    def stage_feature_info(self):
        return plain_vit_feature_info(self)


class CBViTClassifier(PlainViTClassifierMixin, CBViT):
    """CB-ViT / CBS-ViT / ViT (``cb_mode``) with DeiT's class-token head."""


class AFTViTClassifier(PlainViTClassifierMixin, AFTViT):
    """AFT-full/local/simple (class token, as DeiT) or AFT-conv (global average pooling)."""

    @classmethod
    def has_class_token(cls, kwargs) -> bool:
        return kwargs.get('attn_type', 'conv') != 'conv'


# timm name -> (classifier class, backbone arguments).
VARIANTS: Dict[str, Tuple[Type[ClassifierMixin], dict]] = {
    'slide_swin_tiny': (SlideSwinClassifier, dict(arch='tiny')),
    'slide_swin_small': (SlideSwinClassifier, dict(arch='small')),
    'slide_swin_base': (SlideSwinClassifier, dict(arch='base')),
    'slide_pvt_tiny': (SlidePVTClassifier, dict(arch='tiny', drop_path_rate=0.1)),
    'slide_pvt_small': (SlidePVTClassifier, dict(arch='small', drop_path_rate=0.1)),
    'slide_pvt_medium': (SlidePVTClassifier, dict(arch='medium', drop_path_rate=0.3)),
    'slide_pvt_large': (SlidePVTClassifier, dict(arch='large', drop_path_rate=0.3)),
    'aft_full_tiny': (AFTViTClassifier, dict(arch='tiny', attn_type='full')),
    'aft_full_small': (AFTViTClassifier, dict(arch='small', attn_type='full',
                                              drop_path_rate=0.1)),
    'aft_conv_tiny_32_11': (AFTViTClassifier, dict(arch='tiny', num_heads=32)),
    'aft_conv_tiny_192_11': (AFTViTClassifier, dict(arch='tiny', num_heads=192)),
    'aft_conv_small_16_11': (AFTViTClassifier, dict(arch='small', num_heads=16,
                                                    drop_path_rate=0.1)),
    'aft_conv_small_384_11': (AFTViTClassifier, dict(arch='small', num_heads=384,
                                                     drop_path_rate=0.1)),
    'aft_conv_small_384_15': (AFTViTClassifier, dict(arch='small', num_heads=384,
                                                     kernel_size=15, drop_path_rate=0.1)),
    **{f'{mode}_vit_{size}': (CBViTClassifier, dict(arch=size, cb_mode=mode,
                                                    drop_path_rate=0. if size == 'tiny' else 0.1))
       for mode in ('cb', 'cbs') for size in ('tiny', 'small', 'base')},
}


def pretrained_cfg(name: str, num_classes: int) -> dict:
    """timm's data config for a variant (what ``timm.data.resolve_data_config`` reads): the
    papers' 224-px ImageNet evaluation (resize 256, centre crop 224, bicubic)."""
    return dict(architecture=name, input_size=(3, 224, 224), crop_pct=0.875,
                interpolation='bicubic', mean=IMAGENET_MEAN, std=IMAGENET_STD,
                num_classes=num_classes, classifier='head')


# timm.create_model arguments that are not the model's own.
_FACTORY_KEYS = ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir')


def create(name: str, pretrained: bool = False, features_only: bool = False,
           **kwargs) -> nn.Module:
    """Build variant ``name``: the classifier, or with ``features_only`` the dense backbone."""
    cls, defaults = VARIANTS[name]
    if pretrained:
        raise RuntimeError(f'{name}: no public ImageNet weights exist; pretrain it (README '
                           '"Pretraining") and pass checkpoint_path=... to timm.create_model')
    for key in _FACTORY_KEYS:
        kwargs.pop(key, None)
    device, dtype = kwargs.pop('device', None), kwargs.pop('dtype', None)
    if 'in_chans' in kwargs:  # timm's name
        kwargs['in_channels'] = kwargs.pop('in_chans')
    kwargs = {**defaults, **kwargs}
    if features_only:
        model = _features_model(cls, kwargs)
    else:
        model = cls(**kwargs)
        model.pretrained_cfg = model.default_cfg = pretrained_cfg(name, model.num_classes)
    return model.to(device=device, dtype=dtype) if device or dtype else model


def _features_model(cls: Type[ClassifierMixin], kwargs: Dict[str, Any]) -> nn.Module:
    """The dense backbone with timm's ``feature_info`` (num_chs/reduction per output)."""
    from timm.models import FeatureInfo
    backbone_cls = cls.__mro__[cls.__mro__.index(ClassifierMixin) + 1]
    if issubclass(cls, PlainViTClassifierMixin):
        kwargs.setdefault('out_pyramid', False)
    kwargs.pop('num_classes', None)
    model = backbone_cls(**kwargs)
    model.init_weights()
    info = cls.stage_feature_info(model)
    if getattr(model, 'pyramid', None) is not None:  # strides 4, 8, 16, 32
        info = stage_feature_info([model.embed_dims] * 4, 'pyramid.fpn{n}')
        model.feature_info = FeatureInfo(info, (0, 1, 2, 3))
    else:
        model.feature_info = FeatureInfo(info, model.out_indices)
    return model


def entrypoint(name: str) -> Callable[..., nn.Module]:
    """A timm model entrypoint (a function named ``name`` in this module) for variant ``name``."""

    def build(pretrained: bool = False, **kwargs) -> nn.Module:
        return create(name, pretrained=pretrained, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = f'{name}: {VARIANTS[name][0].__doc__}'
    return build
