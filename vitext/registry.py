"""The one place where vitext's modules enter mmseg's, mmdet's, mmpretrain's and timm's
registries.

Configs trigger it with ``custom_imports = dict(imports=['vitext'], allow_failed_imports=False)``
(``import vitext`` calls :func:`register_all`), so mmseg's, mmdet's and mmpretrain's own
``tools/train.py`` run vitext configs unchanged. Every backbone, optimizer constructor and
robustness transform goes into every scope's registries; the segmentation-only transform and
metric go into mmseg's alone. mmdet and mmpretrain are optional. With timm installed, the
ImageNet classifiers (:mod:`vitext.models.classifiers`) become ``timm.create_model`` names.
"""
import importlib
import importlib.util
from typing import List, Tuple


def _shared_modules() -> List[Tuple[str, type]]:
    """(registry name, class) for every scope. Imported here, not at module level, so that
    ``vitext.ops`` stays free of mm imports."""
    from .engine.checkpoint_hook import AtomicCheckpointHook
    from .engine.hooks import SwitchToDeployHook, WorkDirLockHook
    from .engine.optimizers import ViTLayerDecayOptimizerConstructor
    from .data.transforms import CentreOcclusion, CommonCorruption
    from .models.backbones import AFTViT, CBViT, SlidePVT, SlideSwinTransformer
    return [('MODELS', AFTViT), ('MODELS', CBViT), ('MODELS', SlidePVT),
            ('MODELS', SlideSwinTransformer),
            ('OPTIM_WRAPPER_CONSTRUCTORS', ViTLayerDecayOptimizerConstructor),
            ('HOOKS', SwitchToDeployHook), ('HOOKS', AtomicCheckpointHook),
            ('HOOKS', WorkDirLockHook),
            ('TRANSFORMS', CentreOcclusion), ('TRANSFORMS', CommonCorruption)]


def vitext_backbones() -> List[type]:
    """Every backbone class vitext registers (tests/test_models.py holds each to one contract)."""
    return [cls for registry_name, cls in _shared_modules() if registry_name == 'MODELS']


def _segmentation_extras() -> List[Tuple[str, type]]:
    from .data.transforms import LoadSegAnnotations
    from .evaluation.metrics import PerClassIoUMetric
    return [('TRANSFORMS', LoadSegAnnotations), ('METRICS', PerClassIoUMetric)]


def _register(registry, cls: type) -> None:
    existing = registry.module_dict.get(cls.__name__)
    if existing is cls:
        return  # registered already (e.g. vitext imported twice through custom_imports)
    if existing is not None:
        raise KeyError(f'{cls.__name__} from vitext clashes with {existing.__module__}.'
                       f'{existing.__name__} already in the {registry.scope}::{registry.name} '
                       'registry')
    registry.register_module(module=cls)


def registered_scopes() -> List[str]:
    """The OpenMMLab scopes vitext registers into: 'mmseg' and, if installed, 'mmdet' and
    'mmpretrain'."""
    scopes = []
    for scope in ('mmseg', 'mmdet', 'mmpretrain'):
        try:
            importlib.import_module(scope + '.registry')
        except ImportError:
            if scope == 'mmseg':
                raise
            continue
        scopes.append(scope)
    return scopes


def register_all() -> None:
    shared = _shared_modules()
    for scope in registered_scopes():
        registries = importlib.import_module(scope + '.registry')
        extras = _segmentation_extras() if scope == 'mmseg' else []
        for registry_name, cls in shared + extras:
            _register(getattr(registries, registry_name), cls)
    register_timm_models()


def fx_leaf_modules() -> List[type]:
    """Modules that FX traces as one call: operators whose input's shape or layout drives
    Python control flow (windows, token/map forms) or that run custom autograd functions and
    operators."""
    from .ops.aft import AFTConv, AFTFull, AFTSimple
    from .ops.broadcast import ContextBroadcast, ScaledContextBroadcast
    from .ops.slide import SlideAttention
    from .ops.window import WindowAttention
    return [AFTConv, AFTFull, AFTSimple, ContextBroadcast, ScaledContextBroadcast,
            SlideAttention, WindowAttention]


def register_timm_models() -> None:
    """Every variant of :data:`vitext.models.classifiers.VARIANTS` as a timm model name, and
    vitext's FX leaf modules in timm's no-trace list (what timm's feature extraction and tests
    pass to FX). timm is optional."""
    if importlib.util.find_spec('timm') is None:
        return
    from timm.models import is_model, register_model, register_notrace_module

    from .models import classifiers
    for name in classifiers.VARIANTS:
        if not is_model(name):
            register_model(classifiers.entrypoint(name))
    for module in fx_leaf_modules():
        register_notrace_module(module)
