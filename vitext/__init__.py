"""vitext: AFT, Slide-Transformer and Context-Broadcasting backbones for OpenMMLab.

``import vitext`` checks the installed PyTorch (>= :data:`TORCH_MIN_VERSION`), makes checkpoint
loading safe (see :mod:`vitext.checkpoint`), registers every vitext module into mmseg's and mmdet's
registries (see :mod:`vitext.registry`) and lets configs inherit the packaged configs as
``vitext::path.py`` bases (see :mod:`vitext.config_scope`). The last three need the OpenMMLab
stack; without mmengine (e.g. a benchmark machine with torch alone) they are skipped, so
``vitext.ops`` stays importable there.
"""
import importlib.util
import re

from .version import TORCH_MIN_VERSION, __version__


def _check_torch() -> None:
    import torch
    installed = tuple(int(n) for n in re.findall(r'\d+', torch.__version__)[:2])
    if installed < tuple(int(n) for n in TORCH_MIN_VERSION.split('.')):
        raise ImportError(
            f'vitext needs PyTorch >= {TORCH_MIN_VERSION} (torch.serialization.add_safe_globals '
            f'with (object, name) pairs, used for safe checkpoint loading); the installed torch is '
            f'{torch.__version__} ({torch.__file__}). Upgrade torch, then rebuild mmcv against it.')


_check_torch()

if importlib.util.find_spec('mmengine') is not None:
    from . import checkpoint, config_scope, registry

    checkpoint.install()
    registry.register_all()
    config_scope.install()

__all__ = ['__version__', 'TORCH_MIN_VERSION']
