"""Safe unpickling of checkpoints (:func:`safe_load`).

torch >= 2.6 unpickles with ``weights_only=True`` by default, which refuses the few Python
objects mmengine itself writes into checkpoints (its ``HistoryBuffer`` and numpy arrays/scalars in
the message hub). Instead of switching safety off, vitext allows exactly those objects, each
through a substitute that accepts only what mmengine and numpy write
(:func:`mmengine_safe_globals`), and :func:`safe_load`

* keeps ``weights_only=True`` explicitly (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it
  off),
* reads ``.safetensors`` files too,
* scans the pickle before unpickling it (:mod:`.pickle_scan`: pickle bombs, allocations a
  checkpoint never needs) and refuses tensors that are not dense, storage-backed ones (a sparse
  tensor's indices are not checked by torch: using it can crash Python), naming their key,
* turns torch's long unpickling error into one message naming the file and the refused object.
"""
import _compat_pickle
import io
import os
import os.path as osp
import pickle
import re
from typing import Any, List, NoReturn, Optional, Tuple, Union

import numpy as np
import torch

from .pickle_scan import PickleBombError, UnreadablePickleError, scan_checkpoint


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object that is not on the allow-list, asks for more work
    or memory than a checkpoint of tensors needs, or holds a tensor unfit to load."""
    # Named by its public path (``from vitext.checkpoint import UnsafeCheckpointError``), which
    # the tools' last error line prints.
    __module__ = 'vitext.checkpoint'


def _refuse(call: str, reason: str) -> NoReturn:
    """Refuse a call the pickle asks for. torch re-raises the text inside its own message;
    :func:`_refusal` finds it there again."""
    if len(call) > 120:
        call = call[:117] + '...'
    raise UnsafeCheckpointError(f'GLOBAL {call} is refused: {reason}')


# HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min') etc. Allowing
# builtins.getattr itself would let a pickle reach any attribute (a known escape), so the GLOBAL
# 'builtins.getattr' is resolved to this substitute, which answers those four lookups only.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: Any) -> Any:
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    _refuse(f'builtins.getattr({getattr(obj, "__qualname__", type(obj).__name__)}, {name!r})',
            f'only HistoryBuffer.{"/".join(_HISTORY_BUFFER_METHODS)} are looked up')


def _empty_bytes(*args: Any) -> bytes:
    """``builtins.bytes``: pickle protocol 2 writes ``b''`` (e.g. the data of an empty numpy
    array) as ``bytes()``; any argument (``bytes(10**12)`` allocates) is refused."""
    if args:
        _refuse('builtins.bytes(...)', "only bytes() with no argument (how pickle writes b'') "
                'is allowed')
    return b''


# numpy pickles a dtype as dtype('f8', False, True) + BUILD (byte order, ...), an array as
# _reconstruct(ndarray, (0,), b'b') + BUILD (version, shape, dtype, is_fortran, raw bytes) and a
# scalar as scalar(dtype, raw bytes). numpy's own dtype() and ndarray() would accept object
# dtypes (items that are pointers chosen by the file) and buffers of any size, and numpy's dtype
# BUILD sets any flags, also on the shared built-in dtypes; so each step has a substitute here that
# admits plain numeric data only.
_NUMERIC_KINDS = 'biufc'  # bool, signed/unsigned integers, floats, complex


class _PickledDtype:
    """``numpy.dtype`` while unpickling: a numeric built-in dtype, turned into the numpy dtype
    by the array and scalar substitutes (and by :func:`_plain_numpy` where one stands alone)."""

    def __new__(cls, obj: Any = None, align: Any = False, copy: Any = False) -> '_PickledDtype':
        dtype = None
        if isinstance(obj, str) and re.fullmatch(r'[<>|=]?[a-zA-Z]\d*', obj):
            try:
                dtype = np.dtype(obj)
            except Exception:  # not a dtype name: refused below
                pass
        if (dtype is None or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None
                or dtype.subdtype is not None or align is not False
                or not isinstance(copy, bool)):
            _refuse(f'numpy.dtype({obj!r})', 'only numeric dtypes (bool, int, uint, float, '
                    'complex) are allowed; an object dtype would hold pointers chosen by the file')
        self = super().__new__(cls)
        self.numpy = dtype
        return self

    def __setstate__(self, state: Any) -> None:
        # (version, byte order, subarray, names, fields, elsize, alignment, flags) as numpy
        # writes them for a numeric dtype: only the byte order varies.
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3
                and state[1] in ('<', '>', '|', '=') and state[2:] == (None, None, None, -1, -1, 0)):
            _refuse(f'numpy.dtype({self.numpy.str!r}) with state {state!r}',
                    'a numeric dtype\'s pickled state is (3, byte order, None, None, None, -1, '
                    '-1, 0)')
        if state[1] in '<>':
            self.numpy = self.numpy.newbyteorder(state[1])


class _CheckedArray(np.ndarray):
    """``numpy.ndarray`` while unpickling: created empty by :func:`_reconstruct_array` only,
    filled once by BUILD with numeric data of exactly the size its shape needs. Pickles as a
    plain ndarray; :func:`safe_load` hands out plain ndarrays."""

    def __new__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse('numpy.ndarray(...)', 'arrays are only rebuilt as numpy pickles them '
                '(_reconstruct + state), never from a buffer and dtype chosen by the file')

    def __setstate__(self, state: Any) -> None:
        ok = (not getattr(self, '_filled', False) and isinstance(state, tuple) and len(state) == 5
              and state[0] == 1 and isinstance(state[1], tuple)
              and all(type(n) is int and n >= 0 for n in state[1])
              and isinstance(state[2], _PickledDtype) and type(state[3]) is bool
              and type(state[4]) is bytes)
        if ok:
            _, shape, dtype, is_fortran, data = state
            ok = len(data) == int(np.prod(shape, dtype=object)) * dtype.numpy.itemsize
        if not ok:
            _refuse('numpy.ndarray state', 'an array is filled once, with (1, shape, numeric '
                    'dtype, is_fortran, bytes of exactly the size the shape needs)')
        super().__setstate__((1, shape, dtype.numpy, is_fortran, data))
        self._filled = True

    def __reduce_ex__(self, protocol: int) -> Any:
        return self.view(np.ndarray).__reduce_ex__(protocol)


def _reconstruct_array(cls: Any, shape: Any, typecode: Any) -> _CheckedArray:
    """``numpy.core.multiarray._reconstruct``, answering what ndarray.__reduce__ writes only."""
    if cls is not _CheckedArray or shape != (0,) or typecode != b'b':
        _refuse('numpy.core.multiarray._reconstruct(...)',
                'only _reconstruct(numpy.ndarray, (0,), b"b"), as numpy writes it, is allowed')
    return np.ndarray.__new__(_CheckedArray, (0,), np.int8)


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar`` for a numeric dtype and exactly its item's bytes."""
    if not (isinstance(dtype, _PickledDtype) and type(data) is bytes
            and len(data) == dtype.numpy.itemsize):
        _refuse('numpy.core.multiarray.scalar(...)', 'only a numeric dtype with exactly one '
                'item\'s bytes is allowed')
    return np.core.multiarray.scalar(dtype.numpy, data)


def mmengine_safe_globals() -> List[Any]:
    """The non-tensor objects mmengine writes into its checkpoints, as ``add_safe_globals``
    entries.

    ``meta.message_hub`` stores scalar logs as ``HistoryBuffer`` objects (with references to
    their statistics methods) holding numpy arrays, and numpy scalars (``np.float64`` losses,
    ``np.int64`` counters). The numpy names resolve to the substitutes above (numpy 1 and 2
    spellings), ``builtins.bytes`` to :func:`_empty_bytes`."""
    from mmengine.logging import HistoryBuffer

    numpy_globals: List[Tuple[Any, str]] = [(_PickledDtype, 'numpy.dtype'),
                                            (_CheckedArray, 'numpy.ndarray')]
    for core in ('numpy.core', 'numpy._core'):
        numpy_globals += [(_reconstruct_array, f'{core}.multiarray._reconstruct'),
                          (_numpy_scalar, f'{core}.multiarray.scalar')]
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
            (_empty_bytes, 'builtins.bytes')] + numpy_globals


def _python3_name(path: str) -> str:
    """The global pickle would import for ``path``: protocol 2 writes Python 2 names (e.g.
    ``commands.Popen`` for ``subprocess.Popen``), which torch's message repeats."""
    if '.' not in path:  # torch drops the module of builtins
        return f'builtins.{path}'
    module, name = path.rsplit('.', 1)
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f'{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}'


_ALLOW_LIST = ('it is not on vitext\'s allow-list (tensors, containers, numbers, strings, '
               'numeric numpy arrays and the types mmengine writes)')


def _refusal(message: str) -> Optional[Tuple[str, str]]:
    """(what, why) torch's weights-only unpickler or a substitute above refused; None when the
    message is not a refusal (the bytes are not a readable pickle)."""
    match = re.search(r'GLOBAL (.+?) is refused: (.+)', message)
    if match:
        return match.group(1), match.group(2)
    match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose module)', message)
    if match:
        return f'a pickled object of type {_python3_name(match.group(1))!r}', _ALLOW_LIST
    match = re.search(r'(?:unrecognized function|new object for .* but got|Can only build '
                      r'.* but got) (.+)', message)
    return (f'a pickled object {match.group(1).strip()!r}', _ALLOW_LIST) if match else None


def _unpickler_error(message: str) -> str:
    """torch's own words on an unreadable pickle, without its advice to load with
    ``weights_only=False`` (wrong advice for a file that may be hostile)."""
    message = message.split('WeightsUnpickler error:')[-1]
    message = message.split('Check the documentation of torch.load')[0]
    return ' '.join(message.split())


def _plain_numpy(obj: Any, seen: set) -> Any:
    """``obj`` with the unpickling substitutes replaced by plain numpy arrays and dtypes (in
    place for dicts, lists and HistoryBuffers, the containers a checkpoint can hold them in)."""
    from mmengine.logging import HistoryBuffer
    if isinstance(obj, _CheckedArray):
        return obj.view(np.ndarray)
    if isinstance(obj, _PickledDtype):
        return obj.numpy
    if type(obj) is tuple:
        return tuple(_plain_numpy(item, seen) for item in obj)
    if id(obj) in seen:
        return obj
    if isinstance(obj, (dict, list, HistoryBuffer)):
        seen.add(id(obj))
        items = vars(obj) if isinstance(obj, HistoryBuffer) else obj
        for key, value in list(items.items() if isinstance(items, dict) else enumerate(items)):
            items[key] = _plain_numpy(value, seen)
    return obj


def _tensor_problem(tensor: torch.Tensor) -> Optional[str]:
    """What makes ``tensor`` unfit to load (None if nothing): only dense tensors whose storage
    holds every element their size, stride and offset reach are loaded. Reads metadata only:
    arithmetic on such a tensor is what can crash."""
    if tensor.is_nested or tensor.layout != torch.strided:
        kind = 'nested' if tensor.is_nested else str(tensor.layout).replace('torch.', '')
        return (f'a {kind} tensor; only dense (strided) tensors are loaded (torch does not check '
                'the indices of sparse and nested tensors: using them can crash Python)')
    if tensor.is_meta:
        return 'a meta tensor, which has no data'
    try:
        storage_bytes = tensor.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):
        return 'a tensor without a storage'
    if tensor.numel() == 0:
        return None
    end = tensor.storage_offset() + sum((size - 1) * stride for size, stride in
                                        zip(tensor.shape, tensor.stride())) + 1
    if end * tensor.element_size() > storage_bytes:
        return (f'a tensor of size {tuple(tensor.shape)}, stride {tensor.stride()} and offset '
                f'{tensor.storage_offset()} that needs {end * tensor.element_size()} bytes of '
                f'storage; its storage holds {storage_bytes}')
    return None


def _check_tensors(obj: Any, name: str, key: str, seen: set) -> None:
    """Refuse the first tensor in ``obj`` (dicts, lists, tuples and sets searched) that
    :func:`_tensor_problem` finds unfit, naming ``name`` and the tensor's key."""
    if isinstance(obj, torch.Tensor):
        problem = _tensor_problem(obj)
        if problem:
            raise UnsafeCheckpointError(f'checkpoint {name!r}: {key or "the top-level object"} '
                                        f'is {problem}. Refusing to load it.')
        return
    if not isinstance(obj, (dict, list, tuple, set, frozenset)) or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = ((f'[{k!r}]', v) for k, v in obj.items())
    else:
        items = ((f'[{i}]', v) for i, v in enumerate(obj))
    for subkey, value in items:
        _check_tensors(value, name, key + subkey, seen)


def load_pickle(file: Union[str, io.BytesIO], name: str, map_location: Any) -> Any:
    """``torch.load(weights_only=True)`` of a path or buffer, after scanning its pickle and
    before any use of its tensors checking them; errors naming ``name``."""
    try:
        scan_checkpoint(file)
    except PickleBombError as err:
        raise UnsafeCheckpointError(f'checkpoint {name!r} {err}. Refusing to unpickle it.'
                                    ) from None
    except UnreadablePickleError as err:
        raise RuntimeError(f'checkpoint {name!r} could not be read as a PyTorch checkpoint '
                           f'({err})') from None
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refusal(str(err))
        if refused is None:  # not a refusal: the bytes are not a pickle we can read
            raise RuntimeError(f'checkpoint {name!r} could not be read as a PyTorch checkpoint '
                               f'({_unpickler_error(str(err))})') from None
        raise UnsafeCheckpointError(
            f'checkpoint {name!r} holds {refused[0]}: {refused[1]}. Refusing to unpickle it, as '
            'that could run arbitrary code or corrupt memory. If you trust the file, re-save its '
            'tensors, e.g. torch.save(state_dict, path), and load that instead.') from None
    except Exception as err:  # truncated, not a checkpoint, a pickle misusing an allowed global
        raise RuntimeError(f'checkpoint {name!r} could not be read as a PyTorch checkpoint '
                           f'({type(err).__name__}: {_unpickler_error(str(err))})') from None
    _check_tensors(checkpoint, name, '', set())
    return _plain_numpy(checkpoint, set())


def _load_safetensors(filename: str, map_location: Any) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(filename, device=device)
    except SafetensorError as err:
        with open(filename, 'rb') as f:
            head = f.read(2)
        hint = ('; it is a PyTorch checkpoint (zip/pickle): rename it to .pth'
                if head[:2] == b'PK' or head[:1] == b'\x80' else '')
        raise RuntimeError(f'checkpoint {filename!r} could not be read as a .safetensors file '
                           f'({err}){hint}') from None


def safe_load(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a ``.pth``/``.pt``/``.ckpt`` (pickle, ``weights_only=True``) or ``.safetensors`` file.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``filename`` is not a path (e.g. a list from a comma in --cfg-options).
        IsADirectoryError: the path is a directory.
        UnsafeCheckpointError: the file holds a pickled object outside the allow-list.
        RuntimeError: the file is not a readable checkpoint (truncated, not a checkpoint).
    """
    if not isinstance(filename, (str, os.PathLike)):
        # --cfg-options splits a value at commas: "checkpoint=a,b.pth" arrives as a list.
        raise TypeError(f'checkpoint must be a file path, got {type(filename).__name__} '
                        f'{filename!r} (--cfg-options splits a value at its commas, quoted or '
                        'not: give a path with a comma in the config file instead)')
    filename = osp.expanduser(filename)
    if osp.isdir(filename):
        raise IsADirectoryError(f'checkpoint {filename!r} is a directory, not a checkpoint '
                                'file (name a .pth or .safetensors file)')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    if filename.endswith('.safetensors'):
        return _load_safetensors(filename, map_location)
    return load_pickle(filename, filename, map_location)
