"""Safe checkpoint loading.

torch >= 2.6 unpickles with ``weights_only=True`` by default, which refuses the few Python
objects mmengine itself writes into checkpoints (its ``HistoryBuffer`` and numpy arrays/scalars in
the message hub). Instead of switching safety off, vitext allow-lists exactly those types, and
replaces mmengine's loader for local files with one that

* keeps ``weights_only=True`` (no arbitrary code runs while loading),
* reads ``.safetensors`` files too,
* turns torch's long unpickling error into one message naming the file and the refused global.

:func:`install` does both; it is called when ``vitext`` is imported, so it is in force under
vitext's tools, under mmseg's/mmdet's own tools through ``custom_imports``, and for
``mmengine.runner.CheckpointLoader`` used directly.
"""
import codecs
import os.path as osp
import pickle
import re
from typing import Any, List, Optional

import numpy as np
import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object that is not on the allow-list."""


# HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min') etc. Allowing
# builtins.getattr itself would let a pickle reach any attribute (a known escape), so the GLOBAL
# 'builtins.getattr' is resolved to this substitute, which answers those four lookups only.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr({getattr(obj, "__qualname__", obj)}, '
        f'{name!r}) is not allowed')


# torch's allow-list keys a plain function by its ``__module__`` and ``__name__`` (torch 2.4) or
# ``__qualname__`` (newer); torch 2.4 takes no explicit ``(function, 'module.name')`` pairs, so
# the substitute carries the name of the global it stands in for.
_history_buffer_getattr.__module__ = 'builtins'
_history_buffer_getattr.__name__ = _history_buffer_getattr.__qualname__ = 'getattr'


def mmengine_safe_globals() -> List[Any]:
    """The exact non-tensor types mmengine writes into its checkpoints.

    ``meta.message_hub`` stores scalar logs as ``HistoryBuffer`` objects (with references to
    their statistics methods) holding numpy arrays, and numpy scalars (``np.float64`` losses,
    ``np.int64`` counters)."""
    from mmengine.logging import HistoryBuffer

    numpy_types = [
        np.core.multiarray._reconstruct,  # how an ndarray is rebuilt
        np.core.multiarray.scalar,  # how a numpy scalar is rebuilt
        np.ndarray,
        np.dtype,
        # the bytes of arrays and scalars at pickle protocol 2 (torch allows it itself from 2.5)
        codecs.encode,
    ]
    # numpy >= 1.25 pickles a dtype through its concrete class (e.g. numpy.dtypes.Float64DType).
    if hasattr(np, 'dtypes'):
        numpy_types += [type(np.dtype(name)) for name in (
            'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
            'float16', 'float32', 'float64')]
    return [HistoryBuffer, _history_buffer_getattr] + numpy_types


def _refused_global(err: Exception) -> Optional[str]:
    match = re.search(r'GLOBAL ([\w.]+(?:\([^)]*\))?)', str(err))
    if match:
        return match.group(1)
    match = re.search(r'(?:unrecognized function|new object for .* but got) (.+)', str(err))
    return match.group(1).strip() if match else None


def safe_load(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a ``.pth``/``.pt``/``.ckpt`` (pickle, ``weights_only=True``) or ``.safetensors`` file.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file holds a pickled object outside the allow-list.
        RuntimeError: the file is not a readable checkpoint (truncated, not a checkpoint).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    if filename.endswith('.safetensors'):
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location, str) else 'cpu'
        return load_file(filename, device=device)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        culprit = _refused_global(err)
        if culprit is None:  # not a refusal: the bytes are not a pickle we can read
            raise RuntimeError(f'checkpoint {filename!r} could not be read as a PyTorch '
                               f'checkpoint ({err})') from None
        what = f'a pickled object of type {culprit!r}'
        raise UnsafeCheckpointError(
            f'checkpoint {filename!r} holds {what}, which is not on vitext\'s allow-list '
            '(tensors, containers, numbers, strings and the types mmengine writes); refusing to '
            'unpickle it because that could run arbitrary code. If you trust the file, re-save '
            'its tensors, e.g. torch.save(state_dict, path), and load that instead.') from None
    except (RuntimeError, EOFError, OSError) as err:
        raise RuntimeError(f'checkpoint {filename!r} could not be read as a PyTorch '
                           f'checkpoint ({type(err).__name__}: {err})') from None


def _load_from_local(filename: str, map_location: Any) -> Any:
    return safe_load(filename, map_location)


_installed = False


def install() -> None:
    """Allow-list mmengine's types for ``weights_only`` loading and route mmengine's local
    checkpoint loading through :func:`safe_load`. Idempotent."""
    global _installed
    if _installed:
        return
    from mmengine.runner import CheckpointLoader

    # Extends torch's allow-list by these exact types (also for mmengine's remote schemes,
    # which call torch.load themselves); weights_only stays on everywhere.
    torch.serialization.add_safe_globals(mmengine_safe_globals())
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    _installed = True
