"""vitext: AFT, Slide-Transformer and Context-Broadcasting backbones for OpenMMLab.

``import vitext`` makes checkpoint loading safe (see :mod:`vitext.checkpoint`) and registers every
vitext module into mmseg's and mmdet's registries (see :mod:`vitext.registry`). Both need the
OpenMMLab stack; without mmengine (e.g. a benchmark machine with torch alone) they are skipped, so
``vitext.ops`` stays importable there.
"""
import importlib.util

from .version import __version__

if importlib.util.find_spec('mmengine') is not None:
    from . import checkpoint, registry

    checkpoint.install()
    registry.register_all()

__all__ = ['__version__']
