"""The one place where vitext's modules enter mmseg's and mmdet's registries.

Configs trigger it with ``custom_imports = dict(imports=['vitext'], allow_failed_imports=False)``
(``import vitext`` calls :func:`register_all`), so mmseg's and mmdet's own ``tools/train.py``
run vitext configs unchanged. Every backbone, optimizer constructor and robustness transform
goes into both scopes' registries; the segmentation-only transform and metric go into mmseg's
alone. mmdet is optional.
"""
import importlib
from typing import List, Tuple


def _backbones() -> List[type]:
    """Backbone classes, imported here so that ``vitext.ops`` stays free of mm imports."""
    from .models.backbones import AFTViT, CBViT
    return [AFTViT, CBViT]


def _transforms() -> List[type]:
    from .evaluation.transforms import CentreOcclusion, CommonCorruption
    return [CentreOcclusion, CommonCorruption]


def _optimizer_constructors() -> List[type]:
    from .engine.optimizers import ViTLayerDecayOptimizerConstructor
    return [ViTLayerDecayOptimizerConstructor]


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
    """The OpenMMLab scopes vitext registers into: 'mmseg' and, if installed, 'mmdet'."""
    scopes = []
    for scope in ('mmseg', 'mmdet'):
        try:
            importlib.import_module(scope + '.registry')
        except ImportError:
            if scope == 'mmseg':
                raise
            continue
        scopes.append(scope)
    return scopes


def register_all() -> None:
    backbones, constructors, transforms = (_backbones(), _optimizer_constructors(),
                                           _transforms())
    for scope in registered_scopes():
        registries = importlib.import_module(scope + '.registry')
        for cls in backbones:
            _register(registries.MODELS, cls)
        for cls in constructors:
            _register(registries.OPTIM_WRAPPER_CONSTRUCTORS, cls)
        for cls in transforms:
            _register(registries.TRANSFORMS, cls)
        if scope == 'mmseg':
            for registry_name, cls in _segmentation_extras():
                _register(getattr(registries, registry_name), cls)
