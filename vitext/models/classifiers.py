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
ViTs: stride-16 maps of the given blocks) with timm's ``feature_info``; with
``feature_cls='getter'`` timm's ``FeatureGetterNet`` over ``forward_intermediates``. The
classifiers keep timm's model contract (see :class:`ClassifierMixin`; timm's own
tests/test_models.py passes over these names, TorchScript aside). No public ImageNet weights
exist for these models: ``pretrained=True`` is refused; timm's ``checkpoint_path=`` loads a file.
"""
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

from torch import Tensor, nn

from .backbones import AFTViT, CBViT, SlidePVT, SlideSwinTransformer
from .layers import checkpointed_call, grid_tokens_to_map

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Grid = Optional[Tuple[int, int]]


def stage_feature_info(dims: List[int], module: str) -> List[dict]:
    """timm's feature_info of a 4-stage pyramid (strides 4, 8, 16, 32).

    Args:
        dims: the stages' widths.
        module: the stage's module name, ``{i}`` the stage index and ``{n}`` its number.
    """
    return [dict(num_chs=d, reduction=4 * 2 ** i, module=module.format(i=i, n=i + 1))
            for i, d in enumerate(dims)]


def take_indices(count: int, indices: Optional[Union[int, Sequence[int]]]) -> Tuple[List[int],
                                                                                     int]:
    """timm's ``feature_take_indices``: ``indices`` None (all ``count`` taps), an int n (the
    last n) or a sequence (negative counting from the end) -> (sorted taps, the largest)."""
    if indices is None:
        indices = count
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f'indices={indices}: take the last 1..{count} of {count} taps')
        taps = list(range(count - indices, count))
    else:
        bad = [i for i in indices if not -count <= i < count]
        if bad:
            raise ValueError(f'indices {bad} out of range for {count} taps')
        taps = sorted({i % count for i in indices})
    return taps, max(taps)


class ClassifierMixin:
    """timm's classifier interface on a backbone (``backbone_cls``, which the classifier
    subclasses: its parameters keep the backbone's names).

    Beside ``forward``/``forward_features``/``forward_head``, it has what timm's consumers call:
    ``forward_intermediates`` and ``prune_intermediate_layers`` over the taps listed in
    ``feature_info`` (stages; plain ViTs: blocks), ``reset_classifier`` (keeping the model's
    device, dtype and mode), ``set_grad_checkpointing``, ``group_matcher`` (the layer depths of
    mmpretrain's ``get_layer_depth``, so timm's layer-wise lr decay and mmengine's agree) and
    ``no_weight_decay``.

    ``num_features`` is timm's: the head's input width (an int). The backbone's per-stage widths
    (its ``num_features`` list in mm form) are ``feature_info``'s ``num_chs``, timm's place for
    them.

    Args:
        num_classes: classes of the linear head (0: no head, ``forward`` gives the pooled
            features).
        global_pool: ``pool_types[0]`` by default; 'avg' (mean over the map or the patch
            tokens), 'token' (the class token; models with one) or '' (no pooling: ``forward``
            gives the unpooled features, or with a head the logits of every position).
        **kwargs: the backbone's arguments (``drop_rate`` is also the head's dropout, as in
            timm's ViT); the classification-mode arguments are :attr:`classification_mode`.
    """
    pool_types: Tuple[str, ...] = ('avg', '')
    backbone_cls: type  # the dense backbone this classifier is
    # The backbone's arguments for classification: its last stage (or block) only.
    classification_mode: Dict[str, Any] = dict(out_indices=-1)
    first_conv = 'patch_embed.proj'
    feature_stride = 32  # of forward_features at the variants' settings

    def __init__(self, num_classes: int = 1000, global_pool: Optional[str] = None, **kwargs):
        super().__init__(**kwargs, **self.classification_mode)
        self.in_chans = kwargs.get('in_channels', 3)
        self.num_classes = num_classes
        self.global_pool = self._check_pool(global_pool)
        self.feature_info = self.tap_feature_info(self)
        self.num_features = self.head_hidden_size = self.feature_info[-1]['num_chs']
        self.head_drop = nn.Dropout(kwargs.get('drop_rate', 0.))
        self.head = self._new_head(num_classes)
        self.init_weights()  # the backbone's init (timm does not call mmengine's init_weights)

    @classmethod
    def tap_feature_info(cls, backbone: nn.Module) -> List[dict]:
        """timm's feature_info of the taps of ``backbone`` (a ``backbone_cls``, dense or in
        classification mode, before pruning)."""
        raise NotImplementedError

    # -- the taps: subclasses say how to run them --------------------------------------------
    def num_taps(self) -> int:
        """How many taps the model has now (fewer after ``prune_intermediate_layers``)."""
        raise NotImplementedError

    def run_taps(self, x: Tensor, last: int) -> Iterator[Tuple[Tensor, Grid]]:
        """(raw output, token grid or None) of taps 0..``last``, in the model's own layout."""
        raise NotImplementedError

    def tap_to_map(self, out: Tensor, grid: Grid) -> Tensor:
        """A raw tap output as an NCHW map."""
        raise NotImplementedError

    def final_norm(self) -> nn.Module:
        raise NotImplementedError

    def set_final_norm(self, module: nn.Module) -> None:
        raise NotImplementedError

    def truncate_taps(self, count: int) -> None:
        """Drop every module after tap ``count - 1``."""
        raise NotImplementedError

    def as_features(self, out: Tensor, grid: Grid) -> Tensor:
        """The final (normed) output as ``forward_features`` returns it: NCHW maps."""
        return self.tap_to_map(out, grid)

    # -- timm's interface -----------------------------------------------------------------
    def _check_pool(self, global_pool: Optional[str]) -> str:
        pool = self.pool_types[0] if global_pool is None else global_pool
        if pool not in self.pool_types:
            raise ValueError(f'global_pool={pool!r} is not one of {self.pool_types} for '
                             f'{type(self).__name__}')
        return pool

    def _new_head(self, num_classes: int) -> nn.Module:
        """A head on the device and dtype of the model, in its mode."""
        if not num_classes:
            return nn.Identity()
        ref = next(self.parameters())
        return nn.Linear(self.num_features, num_classes, device=ref.device,
                         dtype=ref.dtype).train(self.training)

    def _last_output(self, x: Tensor, last: int) -> Tuple[Tensor, Grid]:
        for out, grid in self.run_taps(x, last):
            pass
        return out, grid

    def forward_features(self, x: Tensor) -> Tensor:
        """The last tap after the final norm, unpooled: (B, C, H, W), or the (B, N, C) tokens
        of models with a class token."""
        out, grid = self._last_output(x, self.num_taps() - 1)
        return self.as_features(self.final_norm()(out), grid)

    def pool(self, x: Tensor) -> Tensor:
        """``global_pool`` of forward_features' output (decided by the model, not by the
        tensor's rank, so that FX can trace it)."""
        return x.mean(dim=(2, 3)) if self.global_pool else x

    @property
    def features_are_tokens(self) -> bool:
        """forward_features gives (B, N, C) tokens rather than an NCHW map."""
        return False

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pooling, dropout, head; without pooling the head classifies every position of the
        map ((B, H, W, classes)) or every token."""
        x = self.head_drop(self.pool(x))
        if pre_logits:
            return x
        if self.global_pool or self.features_are_tokens or not self.num_classes:
            return self.head(x)
        return self.head(x.permute(0, 2, 3, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: Tensor,
                              indices: Optional[Union[int, Sequence[int]]] = None,
                              norm: bool = False, stop_early: bool = False,
                              output_fmt: str = 'NCHW', intermediates_only: bool = False
                              ) -> Union[List[Tensor], Tuple[Tensor, List[Tensor]]]:
        """timm's ``forward_intermediates``: the NCHW maps of the taps ``indices`` (None: all;
        an int n: the last n; a sequence), and unless ``intermediates_only`` the final
        features as ``forward_features`` gives them.

        Args:
            norm: apply the final norm to the last tap's map when it is taken.
            stop_early: stop after the last tap taken (the final features are then that
                tap's, normed).
            output_fmt: 'NCHW' (the only layout offered).
        """
        if output_fmt != 'NCHW':
            raise ValueError(f"output_fmt={output_fmt!r}: only 'NCHW' is offered")
        count = self.num_taps()
        taps, max_index = take_indices(count, indices)
        last = max_index if stop_early or intermediates_only else count - 1
        intermediates = []
        for i, (out, grid) in enumerate(self.run_taps(x, last)):
            if i in taps:
                tap = self.final_norm()(out) if norm and i == count - 1 else out
                intermediates.append(self.tap_to_map(tap, grid))
        if intermediates_only:
            return intermediates
        return self.as_features(self.final_norm()(out), grid), intermediates

    def prune_intermediate_layers(self, indices: Union[int, Sequence[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True
                                  ) -> List[int]:
        """timm's ``prune_intermediate_layers``: drop what follows the last tap of
        ``indices``; the final norm (sized for the last tap) goes with ``prune_norm`` or when
        taps are dropped, the head (and pooling) with ``prune_head`` or when taps are
        dropped. Returns the taps to pass to ``forward_intermediates``."""
        count = self.num_taps()
        taps, max_index = take_indices(count, indices)
        prune_end = max_index < count - 1
        self.truncate_taps(max_index + 1)
        if prune_norm or prune_end:
            self.set_final_norm(nn.Identity())
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return taps

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new head for ``num_classes`` (0: none) on the model's device and dtype;
        ``global_pool`` None keeps the pooling."""
        self.global_pool = self._check_pool(
            self.global_pool if global_pool is None else global_pool)
        self.num_classes = num_classes
        self.head = self._new_head(num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of every block while training (the backbone's
        ``with_cp``)."""
        self.with_cp = enable

    def group_matcher(self, coarse: bool = False) -> Callable[[str], int]:
        """timm's parameter grouping for layer-wise lr decay: the layer depth of mmpretrain's
        ``get_layer_depth`` (stem 0, block i counted through the stages i + 1, the rest
        last). ``coarse`` groups the same way."""
        return lambda name: self.get_layer_depth(name)[0]

    def no_weight_decay(self) -> set:
        """Position tables and class tokens (timm's optimizer factory leaves them undecayed)."""
        return {name for name, _ in self.named_parameters()
                if name.split('.')[-1].startswith(('pos_embed', 'cls_token',
                                                   'relative_position_bias_table'))}


class SlideSwinClassifier(ClassifierMixin, SlideSwinTransformer):
    """Slide-Swin + global average pooling of the normed last stage + linear head (Swin's)."""
    backbone_cls = SlideSwinTransformer

    @classmethod
    def tap_feature_info(cls, backbone):
        return stage_feature_info(backbone.num_features, 'layers.{i}')

    def num_taps(self) -> int:
        return len(self.layers)

    def run_taps(self, x, last):
        x = self.pos_drop(self.patch_embed(x))
        for layer in self.layers[:last + 1]:
            out, x = layer(x)
            yield out, None

    def tap_to_map(self, out, grid):
        return out.permute(0, 3, 1, 2).contiguous()

    def final_norm(self):
        return self.out_norms[len(self.layers) - 1]

    def set_final_norm(self, module):
        self.out_norms[len(self.layers) - 1] = module

    def truncate_taps(self, count):
        self.layers = self.layers[:count]
        self.out_norms = self.out_norms[:count]
        self.layers[-1].downsample = None  # its output fed the dropped stage only

    def set_grad_checkpointing(self, enable=True):
        for layer in self.layers:
            layer.with_cp = enable


class SlidePVTClassifier(ClassifierMixin, SlidePVT):
    """Slide-PVT + global average pooling of the normed last stage + linear head."""
    backbone_cls = SlidePVT
    first_conv = 'patch_embed1.proj'

    @classmethod
    def tap_feature_info(cls, backbone):
        return stage_feature_info(backbone.num_features, 'block{n}')

    def num_taps(self) -> int:
        return self.num_stages

    def run_taps(self, x, last):
        for i in range(last + 1):
            out = self.forward_stage(i, x)
            yield out, None
            x = out.permute(0, 3, 1, 2)

    def tap_to_map(self, out, grid):
        return out.permute(0, 3, 1, 2).contiguous()

    def final_norm(self):
        return self.norm

    def set_final_norm(self, module):
        self.norm = module

    def truncate_taps(self, count):
        for i in range(count + 1, self.num_stages + 1):
            for name in (f'patch_embed{i}', f'pos_embed{i}', f'block{i}'):
                delattr(self, name)
        self.num_stages = count


class PlainViTClassifierMixin(ClassifierMixin):
    """Plain ViT: final norm on the last block, then its class token (DeiT), or the average
    of its tokens for models without one (AFT-conv)."""
    classification_mode = dict(out_indices=-1, out_pyramid=False, final_norm=True)
    feature_stride = 16  # the patch size of the variants

    def __init__(self, num_classes: int = 1000, global_pool: Optional[str] = None, **kwargs):
        super().__init__(num_classes, global_pool, **kwargs)
        # The backbone's own classification output, for a dense forward of these weights.
        self.out_type = 'cls_token' if self.cls_token is not None else 'featmap'

    @property
    def pool_types(self) -> Tuple[str, ...]:
        return ('token', 'avg', '') if self.cls_token is not None else ('avg', '')

    @classmethod
    def tap_feature_info(cls, backbone):
        """One stride-``patch_size`` map per block."""
        return [dict(num_chs=backbone.embed_dims, reduction=backbone.patch_size,
                     module=f'blocks.{i}') for i in range(backbone.depth)]

    def num_taps(self) -> int:
        return len(self.blocks)

    def run_taps(self, x, last):
        x, grid = self.tokens(x)
        for block in self.blocks[:last + 1]:
            x = checkpointed_call(block, x, grid, enabled=self.with_cp)
            yield x, grid

    def tap_to_map(self, out, grid):
        return grid_tokens_to_map(out, grid, self.num_prefix_tokens)

    @property
    def features_are_tokens(self):
        return self.cls_token is not None

    def as_features(self, out, grid):
        return out if self.features_are_tokens else self.tap_to_map(out, grid)

    def pool(self, x):
        if not self.features_are_tokens or not self.global_pool:
            return super().pool(x)
        if self.global_pool == 'token':
            return x[:, 0]
        return x[:, self.num_prefix_tokens:].mean(dim=1)

    def final_norm(self):
        return self.norm

    def set_final_norm(self, module):
        self.norm = module

    def truncate_taps(self, count):
        self.blocks = self.blocks[:count]


class CBViTClassifier(PlainViTClassifierMixin, CBViT):
    """CB-ViT / CBS-ViT / ViT (``cb_mode``) with DeiT's class-token head."""
    backbone_cls = CBViT


class AFTViTClassifier(PlainViTClassifierMixin, AFTViT):
    """AFT-full/local/simple (class token, as DeiT) or AFT-conv (global average pooling)."""
    backbone_cls = AFTViT


# The classifier of each backbone family, by the backbone's registered type name.
CLASSIFIERS: Dict[str, Type[ClassifierMixin]] = {
    cls.backbone_cls.__name__: cls
    for cls in (SlideSwinClassifier, SlidePVTClassifier, CBViTClassifier, AFTViTClassifier)}


def build_classifier(backbone: Dict[str, Any], num_classes: int = 1000) -> ClassifierMixin:
    """The classifier of a backbone config: the backbone (``type`` and its arguments, without
    ``out_indices`` and the other classification-mode settings) with a ``num_classes`` head.

    Args:
        backbone: e.g. ``dict(type='SlidePVT', arch='small')``.
        num_classes: classes of the linear head (0: no head).
    """
    kwargs = dict(backbone)
    name = kwargs.pop('type', None)
    if name not in CLASSIFIERS:
        raise ValueError(f'backbone type {name!r} has no classifier; expected one of '
                         f'{sorted(CLASSIFIERS)}')
    return CLASSIFIERS[name](num_classes=num_classes, **kwargs)


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


def pretrained_cfg(name: str) -> dict:
    """timm's data config for a variant (what ``timm.data.resolve_data_config`` reads): the
    papers' 224-px ImageNet evaluation (resize 256, centre crop 224, bicubic), the first conv
    (for ``in_chans`` adaptation) and the unpooled feature size at 224 px. No weights: no
    ``url`` or ``hf_hub_id``."""
    cls, _ = VARIANTS[name]
    return dict(architecture=name, input_size=(3, 224, 224), fixed_input_size=False,
                pool_size=(224 // cls.feature_stride, 224 // cls.feature_stride),
                crop_pct=0.875, interpolation='bicubic', mean=IMAGENET_MEAN, std=IMAGENET_STD,
                num_classes=1000, classifier='head', first_conv=cls.first_conv)


# Read by timm's register_model from this module (its convention): each name's pretrained
# config enters timm's registry (timm.models.get_pretrained_cfg, list_models(name_matches_cfg)).
default_cfgs = {name: pretrained_cfg(name) for name in VARIANTS}


# timm.create_model arguments that are not the model's own.
_FACTORY_KEYS = ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir')


def create(name: str, pretrained: bool = False, features_only: bool = False,
           feature_cls: Optional[str] = None, **kwargs) -> nn.Module:
    """Build variant ``name``: the classifier; with ``features_only`` the dense backbone, or
    with ``feature_cls='getter'`` timm's ``FeatureGetterNet`` over the classifier's
    ``forward_intermediates``."""
    cls, defaults = VARIANTS[name]
    if pretrained:
        raise RuntimeError(f'{name}: no public ImageNet weights exist; pretrain it (README '
                           '"Pretraining") and pass checkpoint_path=... to timm.create_model')
    if feature_cls not in (None, 'getter'):
        raise ValueError(f"feature_cls={feature_cls!r}: vitext models offer the dense backbone "
                         "(default) or 'getter'")
    for key in _FACTORY_KEYS:
        kwargs.pop(key, None)
    device, dtype = kwargs.pop('device', None), kwargs.pop('dtype', None)
    if 'in_chans' in kwargs:  # timm's name
        kwargs['in_channels'] = kwargs.pop('in_chans')
    kwargs = {**defaults, **kwargs}
    if features_only and feature_cls == 'getter':
        model = _feature_getter(cls, kwargs)
    elif features_only:
        model = _features_model(cls, kwargs)
    else:
        model = cls(**kwargs)
    model.pretrained_cfg = model.default_cfg = {**default_cfgs[name],
                                                 'num_classes': getattr(model, 'num_classes', 0)}
    return model.to(device=device, dtype=dtype) if device or dtype else model


def _feature_getter(cls: Type[ClassifierMixin], kwargs: Dict[str, Any]) -> nn.Module:
    """timm's FeatureGetterNet: the classifier pruned after the last tap of ``out_indices``
    (default: every tap), giving their NCHW maps."""
    from timm.models._features import FeatureGetterNet
    out_indices = kwargs.pop('out_indices', None)
    model = cls(**kwargs)
    getter = FeatureGetterNet(model, out_indices=out_indices or model.num_taps(),
                              output_fmt='NCHW')
    getter.in_chans = model.in_chans
    return getter


def _features_model(cls: Type[ClassifierMixin], kwargs: Dict[str, Any]) -> nn.Module:
    """The dense backbone with timm's ``feature_info`` (num_chs/reduction per output)."""
    from timm.models import FeatureInfo
    if issubclass(cls, PlainViTClassifierMixin):
        kwargs.setdefault('out_pyramid', False)
    kwargs.pop('num_classes', None)
    kwargs.pop('global_pool', None)
    model = cls.backbone_cls(**kwargs)
    model.init_weights()
    model.in_chans = kwargs.get('in_channels', 3)
    info = cls.tap_feature_info(model)
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
