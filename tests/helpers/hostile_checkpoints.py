"""Hostile checkpoints written opcode by opcode (pickle protocol 2, as torch.save writes).

Each of :data:`PAYLOADS` abuses the numpy globals mmengine's checkpoints need (``numpy.dtype``,
``numpy.ndarray``, ``_reconstruct``, ``scalar``) or ``builtins.bytes``. Without vitext's
substitutes several of them corrupt memory (SIGSEGV) when loaded with ``weights_only=True``;
they are loaded in a subprocess (:func:`load_all` via ``python -m hostile_checkpoints``), so that a
crash fails a test instead of killing pytest. :data:`BOMBS` ask for unbounded work or memory
(shared pieces that expand exponentially, a huge allocation, deep nesting).
"""
import io
import json
import os.path as osp
import struct
import sys
import zipfile
from typing import Optional, Tuple

PROTO = b'\x80\x02'


def glob(module: str, name: str) -> bytes:
    return f'c{module}\n{name}\n'.encode()


def text(value: str) -> bytes:
    raw = value.encode()
    return b'X' + struct.pack('<I', len(raw)) + raw


def integer(value: int) -> bytes:
    return b'J' + struct.pack('<i', value)


def raw_bytes(data: bytes) -> bytes:
    """bytes as protocol 2 writes them: _codecs.encode(latin-1 text, 'latin1')."""
    return glob('_codecs', 'encode') + text(data.decode('latin1')) + text('latin1') + b'\x86R'


def dtype(code: str, copy: bool = True) -> bytes:
    return glob('numpy', 'dtype') + text(code) + b'\x89' + (b'\x88' if copy else b'\x89') + b'\x87R'


def dtype_state(byteorder: str = '<', flags: int = 0) -> bytes:
    """BUILD of a dtype with numpy's state tuple (flags 0 for numeric dtypes)."""
    return (b'(' + integer(3) + text(byteorder) + b'NNN' + integer(-1) + integer(-1)
            + integer(flags) + b'tb')


def shape(*dims: int) -> bytes:
    return b'(' + b''.join(integer(d) for d in dims) + b't'


def reconstruct() -> bytes:
    """_reconstruct(ndarray, (0,), b'b'), as ndarray.__reduce__ writes it."""
    return (glob('numpy.core.multiarray', '_reconstruct') + glob('numpy', 'ndarray')
            + shape(0) + raw_bytes(b'b') + b'\x87R')


def array_state(dims, dtype_bytes: bytes, data: bytes) -> bytes:
    """BUILD with (1, shape, dtype, is_fortran, data)."""
    return b'(' + integer(1) + shape(*dims) + dtype_bytes + b'\x89' + data + b'tb'


def direct_ndarray(dtype_bytes: bytes, data: bytes) -> bytes:
    """numpy.ndarray((1,), dtype, buffer): an array over bytes the file chooses."""
    return glob('numpy', 'ndarray') + b'(' + shape(1) + dtype_bytes + data + b'tR'


ADDRESS = b'AAAAAAAA'  # read as a PyObject* by an object array

# The issue's reproducer: set() of an object array whose one pointer is 0x4141414141414141.
ISSUE_REPRODUCER = (b'\x80\x02cbuiltins\nset\ncnumpy\nndarray\n(K\x01\x85cnumpy\ndtype\nX\x01\x00'
                    b'\x00\x00O\x85Rc_codecs\nencode\nX\x08\x00\x00\x00AAAAAAAAX\x06\x00\x00\x00'
                    b'latin1\x86RtR\x85R0}.')

# Pickle expressions (no PROTO, no STOP): each leaves one object on the stack.
PAYLOADS = {
    'object-array-hashed': ISSUE_REPRODUCER[2:-3],
    # The same object array handed to HistoryBuffer (mmengine copies it: increfs the pointer).
    'object-array-in-history-buffer': (
        glob('mmengine.logging.history_buffer', 'HistoryBuffer') + b'('
        + direct_ndarray(glob('numpy', 'dtype') + text('O') + b'\x85R', raw_bytes(ADDRESS))
        + b'q\x01h\x01tR'),
    # Direct construction with a numeric dtype: an array over a buffer the file chooses.
    'ndarray-called-with-buffer': direct_ndarray(dtype('f8') + dtype_state(), raw_bytes(ADDRESS)),
    # NEWOBJ (cls.__new__(cls, *args)) instead of REDUCE.
    'ndarray-newobj': (glob('numpy', 'ndarray') + b'(' + shape(1) + dtype('f8') + dtype_state()
                       + raw_bytes(ADDRESS) + b't\x81'),
    # numpy's own path, with an object dtype in the state.
    'reconstruct-object-dtype': reconstruct() + array_state((1,), dtype('O') + dtype_state('|', 63),
                                                            b']Na'),
    # A float dtype BUILT with the flags of an object dtype (NPY_ITEM_REFCOUNT ...); with
    # copy=False numpy would change its shared float64 dtype for the whole process.
    'dtype-flags-refcount': reconstruct() + array_state(
        (1,), dtype('f8', copy=False) + dtype_state('<', 63), raw_bytes(ADDRESS)),
    # A shape larger than the data.
    'reconstruct-short-buffer': reconstruct() + array_state(
        (1 << 20,), dtype('f8') + dtype_state(), raw_bytes(ADDRESS)),
    # An array filled twice (numpy frees the first buffer: anything sharing it would dangle).
    'array-built-twice': (reconstruct() + b'q\x00'
                          + array_state((1,), dtype('f8') + dtype_state(), raw_bytes(ADDRESS))
                          + b'h\x00' + array_state((2,), dtype('f8') + dtype_state(),
                                                  raw_bytes(ADDRESS * 2)) + b'\x86'),
    # _reconstruct asked for an object array directly (numpy 1 and numpy 2 spellings).
    'reconstruct-object-typecode': (glob('numpy.core.multiarray', '_reconstruct')
                                    + glob('numpy', 'ndarray') + shape(4) + raw_bytes(b'O')
                                    + b'\x87R'),
    'numpy2-reconstruct-object-typecode': (glob('numpy._core.multiarray', '_reconstruct')
                                           + glob('numpy', 'ndarray') + shape(4)
                                           + raw_bytes(b'O') + b'\x87R'),
    # A numpy scalar of object dtype over chosen bytes.
    'scalar-object-dtype': (glob('numpy.core.multiarray', 'scalar') + dtype('O')
                            + raw_bytes(ADDRESS) + b'\x86R'),
    # A structured dtype hiding an object field.
    'dtype-structured-object': dtype('i8,O'),
    # The dtype class of object arrays.
    'object-dtype-class': glob('numpy.dtypes', 'ObjectDType') + b')R',
    # bytes(10**12) would allocate a terabyte.
    'bytes-allocation': glob('__builtin__', 'bytes') + b'(\x8a\x05\x00\x10\xa5\xd4\xe8tR',
    # subprocess.Popen under its Python 2 name, as protocol 2 writes it.
    'subprocess-popen': glob('commands', 'Popen') + b'(' + text('true') + b'tR',
}


def shared_twice(first: bytes, start: bytes, close: bytes, levels: int) -> bytes:
    """``levels`` containers, each holding the previous one twice through the memo: a few
    bytes per level, 2**levels elements when walked or copied. ``first`` is the innermost
    object; ``start`` + items + ``close`` makes a container (TUPLE or EMPTY_LIST + APPENDS:
    torch's unpickler has no LIST)."""
    out = first + b'q\x00'
    for level in range(levels):
        get = b'h' + bytes([level])
        out += start + get + get + close + b'q' + bytes([level + 1])
    return out


def nested_depth(levels: int) -> bytes:
    """A list inside a list ... ``levels`` deep (each APPEND closes one level)."""
    return b']' * (levels + 1) + b'a' * levels


BOMBS = {
    # The tuple "billion laughs": 2**60 Nones when walked.
    'tuple-billion-laughs': shared_twice(b'N', b'(', b't', 60),
    # mmengine's HistoryBuffer turns its log history into a numpy array: 2**40 floats.
    'history-buffer-shared-lists': (
        glob('mmengine.logging.history_buffer', 'HistoryBuffer')
        + shared_twice(b'](G?\xf0\x00\x00\x00\x00\x00\x00e', b'](', b'e', 40) + b']\x86R'),
    # bytearray(2_000_000_000): torch's allow-list admits bytearray.
    'bytearray-allocation': glob('__builtin__', 'bytearray') + b'(' + integer(2_000_000_000)
    + b'tR',
    # Nesting deeper than Python's recursion limit.
    'nested-lists': nested_depth(5000),
}

# What the refusal must name for each payload.
NAMED = {
    'object-array-hashed': "numpy.dtype('O')",
    'object-array-in-history-buffer': "numpy.dtype('O')",
    'ndarray-called-with-buffer': 'numpy.ndarray(...)',
    'ndarray-newobj': "numpy.ndarray(...)",
    'reconstruct-object-dtype': "numpy.dtype('O')",
    'dtype-flags-refcount': "numpy.dtype('<f8') with state",
    'reconstruct-short-buffer': 'numpy.ndarray state',
    'array-built-twice': 'numpy.ndarray state',
    'reconstruct-object-typecode': 'numpy.core.multiarray._reconstruct(...)',
    'scalar-object-dtype': "numpy.dtype('O')",
    'dtype-structured-object': "numpy.dtype('i8,O')",
    'numpy2-reconstruct-object-typecode': 'numpy.core.multiarray._reconstruct(...)',
    'object-dtype-class': 'numpy.dtypes.ObjectDType',
    'bytes-allocation': 'builtins.bytes(...)',
    'subprocess-popen': 'subprocess.Popen',
    'tuple-billion-laughs': 'out of shared pieces',
    'history-buffer-shared-lists': 'out of shared pieces',
    'bytearray-allocation': 'builtins.bytearray with a size',
    'nested-lists': 'levels deep',
}


def standalone(payload: bytes) -> bytes:
    """A raw pickle file (torch's legacy format) whose first pickle is ``payload``."""
    return PROTO + payload + b'.'


def spliced(real_checkpoint: bytes, payload: bytes) -> bytes:
    """A real torch.save zip whose data.pkl runs ``payload`` first, then the original pickle
    (STOP returns the checkpoint; the payload's object stays below it on the stack): the file
    still loads like the real checkpoint."""
    src = zipfile.ZipFile(io.BytesIO(real_checkpoint))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                data = PROTO + payload + data[len(PROTO):]
            dst.writestr(info, data)
    return out.getvalue()


def legacy(payload: bytes) -> bytes:
    """A torch file of the legacy (non-zip) format whose checkpoint is ``payload``."""
    import pickle

    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION
    system = dict(protocol_version=PROTOCOL_VERSION, little_endian=True,
                  type_sizes=dict(short=2, int=4, long=4))
    head = b''.join(pickle.dumps(x, protocol=2) for x in (MAGIC_NUMBER, PROTOCOL_VERSION,
                                                             system))
    return head + standalone(payload) + pickle.dumps([], protocol=2)


def embedded(real_checkpoint: bytes, payload: bytes) -> bytes:
    """A real torch.save zip (of a dict) whose dict gets the key 'extra' holding ``payload``
    after the original pickle has run (its memo entries are not used any more)."""
    src = zipfile.ZipFile(io.BytesIO(real_checkpoint))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                data = data[:-1] + text('extra') + payload + b's.'  # SETITEM, STOP
            dst.writestr(info, data)
    return out.getvalue()


def write_bombs(folder: str, real_checkpoint: bytes) -> Tuple[dict, dict]:
    """Write each of :data:`BOMBS` as ``<folder>/<name>-legacy.pth`` (:func:`legacy`) and
    ``<folder>/<name>-in-zip.pth`` (:func:`embedded`); returns name -> path of each form."""
    forms = ({}, {})
    for name, payload in BOMBS.items():
        for paths, suffix, data in zip(forms, ('legacy', 'in-zip'),
                                       (legacy(payload), embedded(real_checkpoint, payload))):
            paths[name] = osp.join(folder, f'{name}-{suffix}.pth')
            with open(paths[name], 'wb') as f:
                f.write(data)
    return forms


def load_all(paths_json: str) -> None:
    """Load every file through every loading path; one JSON line per attempt, flushed before
    the attempt (so the line of a crash is known) and after it."""
    import torch
    from mmengine.runner import CheckpointLoader, load_checkpoint
    from mmengine.runner.checkpoint import _load_checkpoint

    import time

    import vitext  # noqa: F401
    from vitext.checkpoint import safe_load
    loaders = {
        'safe_load': safe_load,
        'CheckpointLoader': lambda p: CheckpointLoader.load_checkpoint(p, map_location='cpu'),
        '_load_checkpoint': lambda p: _load_checkpoint(p, map_location='cpu'),
        'load_checkpoint': lambda p: load_checkpoint(torch.nn.Linear(1, 1), p),
    }
    for path in json.loads(paths_json):
        for name, load in loaders.items():
            print(json.dumps(dict(path=path, loader=name, started=True)), flush=True)
            start = time.perf_counter()
            try:
                load(path)
                outcome = dict(error=None)
            except Exception as err:  # noqa: BLE001 -- reported to the test
                outcome = dict(error=type(err).__name__, message=str(err))
            print(json.dumps(dict(path=path, loader=name, seconds=time.perf_counter() - start,
                                  **outcome)), flush=True)


def write_all(folder: str, real_checkpoint: Optional[bytes] = None) -> dict:
    """Write each payload as ``<folder>/<name>.pth``, spliced into ``real_checkpoint`` if
    given, else as a raw pickle; returns name -> path."""
    paths = {}
    for name, payload in PAYLOADS.items():
        paths[name] = osp.join(folder, f'{name}.pth')
        with open(paths[name], 'wb') as f:
            f.write(spliced(real_checkpoint, payload) if real_checkpoint else standalone(payload))
    return paths


if __name__ == '__main__':
    load_all(sys.argv[1])
