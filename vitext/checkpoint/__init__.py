"""Safe checkpoint loading.

* :mod:`.unpickle`: :func:`safe_load`, ``torch.load(weights_only=True)`` with exactly the objects
  mmengine writes allowed, ``.safetensors`` files, unfit tensors refused by key, one message
  naming the file and the refused object (:class:`UnsafeCheckpointError`);
* :mod:`.pickle_scan`: the bounds checked on a pickle's opcodes before it is unpickled;
* :mod:`.mmengine_loaders`: every scheme of mmengine's ``CheckpointLoader`` (and mmengine's
  ``load_from_*`` functions) routed through :func:`safe_load` by :func:`install`, which is called
  when ``vitext`` is imported, so it is in force under vitext's tools, under mmseg's/mmdet's own
  tools through ``custom_imports``, and for ``mmengine.runner.CheckpointLoader`` used directly.

Loading a state dict into a model (strictly, through a backbone's converter) is
:mod:`vitext.models.weights`.
"""
from .mmengine_loaders import install
from .unpickle import UnsafeCheckpointError, mmengine_safe_globals, safe_load

__all__ = ['UnsafeCheckpointError', 'install', 'mmengine_safe_globals', 'safe_load']
