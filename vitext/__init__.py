"""vitext: AFT, Slide-Transformer and Context-Broadcasting backbones for OpenMMLab.

``import vitext`` checks the installed PyTorch (>= :data:`TORCH_MIN_VERSION`), makes checkpoint
loading safe (see :mod:`vitext.checkpoint`), registers every vitext module into mmseg's and mmdet's
registries (see :mod:`vitext.registry`) and lets configs inherit the packaged configs as
``vitext::path.py`` bases (see :mod:`vitext.config_scope`). The last three need the OpenMMLab
stack (:data:`OPENMMLAB_MODULES`); without any of it (e.g. a benchmark machine with torch alone)
they are skipped, so ``vitext.ops`` stays importable there; with part of it, the import stops
naming what is missing.
"""
import importlib.util
import re
from typing import List

from .version import TORCH_MIN_VERSION, __version__


def _check_torch() -> None:
    import torch
    installed = tuple(int(n) for n in re.findall(r'\d+', torch.__version__)[:2])
    if installed < tuple(int(n) for n in TORCH_MIN_VERSION.split('.')):
        raise ImportError(
            f'vitext needs PyTorch >= {TORCH_MIN_VERSION} (torch.serialization.add_safe_globals '
            f'with (object, name) pairs, used for safe checkpoint loading); the installed torch is '
            f'{torch.__version__} ({torch.__file__}). Upgrade torch, then rebuild mmcv against it.')


# What vitext's registration, configs and tools import. OpenMMLab's distributions (mmengine, mmcv,
# mmsegmentation) and the onedl-* fork's hold the same modules, so setup.py leaves them to extras.
OPENMMLAB_MODULES = ('mmengine', 'mmcv', 'mmseg')


def missing_openmmlab_modules() -> List[str]:
    """The modules of :data:`OPENMMLAB_MODULES` that cannot be imported here."""
    return [name for name in OPENMMLAB_MODULES if importlib.util.find_spec(name) is None]


def openmmlab_missing_message(missing: List[str]) -> str:
    """One line naming the missing OpenMMLab modules and the two ways to install them.

    Args:
        missing: module names, as :func:`missing_openmmlab_modules` gives them.
    """
    return (f'vitext needs the OpenMMLab stack ({", ".join(OPENMMLAB_MODULES)}); missing here: '
            f'{", ".join(missing)}. Install OpenMMLab\'s with pip install \'vitext[openmmlab]\' '
            "([det] adds mmdet) or the maintained fork's with pip install 'vitext[onedl]' "
            "([onedl-det] adds onedl-mmdetection); mmcv's compiled ops must be built against "
            'the installed torch (README: "Add vitext to your OpenMMLab environment").')


def _set_up_openmmlab() -> None:
    """Safe checkpoint loading, registration and the vitext:: scope, when the stack is here."""
    missing = missing_openmmlab_modules()
    if len(missing) == len(OPENMMLAB_MODULES):
        return  # torch alone: vitext.ops only
    if missing:
        raise ImportError(openmmlab_missing_message(missing))
    from . import checkpoint, config_scope, registry

    checkpoint.install()
    registry.register_all()
    config_scope.install()


_check_torch()
_set_up_openmmlab()

__all__ = ['__version__', 'TORCH_MIN_VERSION', 'OPENMMLAB_MODULES', 'missing_openmmlab_modules',
           'openmmlab_missing_message']
