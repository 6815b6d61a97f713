"""Bounds on what a checkpoint's pickle asks the unpickler to build, checked on the opcode
stream before anything is unpickled.

A pickle can hand out one object many times through its memo (a GET of a PUT): a few hundred
bytes of tuples or lists, each holding the previous one twice, describe 2**100 elements.
Unpickling them is instant, but whatever walks or copies the result (the clean-up of the loaded
objects, mmengine's ``HistoryBuffer`` turning a nested list into a numpy array, a tensor rebuilt
from a zero-stride view and then copied) runs for hours or exhausts memory. :func:`scan_checkpoint`
reads the opcodes with ``pickletools.genops`` (nothing is built or called), records which object
holds which, and refuses a file

* in which one object, counting its shared parts once per reference, has more than
  :data:`MAX_OBJECTS` parts, or is nested deeper than :data:`MAX_DEPTH`, or that creates more
  than :data:`MAX_OBJECTS` objects in all (a checkpoint of a thousand tensors has some 10**4);
* that calls ``bytearray`` with anything but the text or bytes pickle writes (``bytearray(N)``
  allocates N bytes; torch's allow-list admits ``bytearray``);
* that rebuilds a tensor from arguments ``torch.save`` does not write, one reaching beyond its
  storage, or one repeating its storage's elements (a zero stride) more than
  :data:`MAX_REPEATED_ELEMENTS` times over.

Pure Python, no mm imports.
"""
import pickletools
import zipfile
import zlib
from typing import BinaryIO, List, Optional, Tuple, Union

MAX_OBJECTS = 1_000_000
MAX_DEPTH = 200
MAX_REPEATED_ELEMENTS = 1 << 24

# Legacy (non-zip) torch files are five pickles (magic number, protocol, system info, the
# checkpoint, storage keys) followed by raw storage bytes.
_LEGACY_PICKLES = 5
_ZIP_MAGIC = b'PK\x03\x04'

_TENSOR_REBUILDS = {f'torch._utils.{name}' for name in
                    ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3',
                     '_rebuild_qtensor')}
_BYTEARRAY = ('builtins.bytearray', '__builtin__.bytearray')
_TUPLE_OPS = ('TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'EMPTY_TUPLE')
# Opcodes that build a new object from a fixed number of stack items: how many.
_FIXED_ARITY = {'TUPLE1': 1, 'TUPLE2': 2, 'TUPLE3': 3, 'REDUCE': 2, 'NEWOBJ': 2,
                'NEWOBJ_EX': 3, 'BINPERSID': 1, 'STACK_GLOBAL': 2}
# Opcodes that build a new object from the items above the topmost MARK.
_FROM_MARK = ('TUPLE', 'LIST', 'DICT', 'FROZENSET', 'INST', 'OBJ')
# Opcodes that add items to the object below them (which stays on the stack).
_ADD_FIXED = {'APPEND': 1, 'SETITEM': 2, 'BUILD': 1}
_ADD_FROM_MARK = ('APPENDS', 'SETITEMS', 'ADDITEMS')
_EMPTY = ('EMPTY_LIST', 'EMPTY_TUPLE', 'EMPTY_DICT', 'EMPTY_SET')
_GETS = ('GET', 'BINGET', 'LONG_BINGET')
_PUTS = ('PUT', 'BINPUT', 'LONG_BINPUT')
_NO_EFFECT = ('PROTO', 'FRAME', 'READONLY_BUFFER', 'STOP')
# genops gives no argument for these constants.
_CONSTANTS = {'NONE': None, 'NEWTRUE': True, 'NEWFALSE': False}
_UNKNOWN = object()  # the value of an object that is not a constant


class PickleBombError(ValueError):
    """A pickle asks for more work or memory than a checkpoint of tensors needs; the message
    says what (without the file's name, which the caller adds)."""


class UnreadablePickleError(ValueError):
    """The bytes are not a pickle (bad opcode, an item taken from an empty stack, ...)."""


class _Node:
    """One object the pickle builds: the opcode that built it, its constant value where it is
    a number, text or a tuple of those (a global: its dotted name), and the objects it holds."""
    __slots__ = ('op', 'value', 'children', 'parts', 'depth')

    def __init__(self, op: str, value=_UNKNOWN,
                 children: Optional[List['_Node']] = None) -> None:
        self.op = op
        self.value = value
        self.children = children if children is not None else []
        self.parts = 0  # 0: not measured yet; -1: being measured (a cycle leads back here)
        self.depth = 0


class _Scan:
    """The stack machine of one pickle, building :class:`_Node` objects instead of objects."""

    def __init__(self) -> None:
        self.stack: List[Optional[_Node]] = []  # None is a MARK
        self.memo: dict = {}
        self.nodes: List[_Node] = []

    def new(self, op: str, value=_UNKNOWN, children: Optional[List[_Node]] = None) -> _Node:
        if len(self.nodes) >= MAX_OBJECTS:
            raise PickleBombError(f'creates more than {MAX_OBJECTS} objects (a checkpoint of '
                                  'tensors creates some 10 per tensor)')
        node = _Node(op, value, children)
        self.nodes.append(node)
        return node

    def pop(self, count: int) -> List[_Node]:
        if count == 0:
            return []
        items = self.stack[-count:]
        if len(items) < count or None in items:
            raise UnreadablePickleError('an opcode takes more items than the stack holds')
        del self.stack[-count:]
        return items

    def pop_mark(self) -> List[_Node]:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is None:
                items = self.stack[i + 1:]
                del self.stack[i:]
                return items
        raise UnreadablePickleError('an opcode takes the items above a MARK, but there is none')

    def top(self) -> _Node:
        if not self.stack or self.stack[-1] is None:
            raise UnreadablePickleError('an opcode adds to an object, but the stack holds none')
        return self.stack[-1]

    def step(self, name: str, arg) -> None:
        """Apply one opcode."""
        if name == 'MARK':
            self.stack.append(None)
        elif name == 'POP':
            self.pop(1)
        elif name == 'POP_MARK':
            self.pop_mark()
        elif name == 'DUP':
            self.stack.append(self.top())
        elif name in _GETS:
            if arg not in self.memo:
                raise UnreadablePickleError(f'{name} {arg} of a memo entry never PUT')
            self.stack.append(self.memo[arg])
        elif name in _PUTS:
            self.memo[arg] = self.top()
        elif name == 'MEMOIZE':
            self.memo[len(self.memo)] = self.top()
        elif name in _EMPTY:
            self.stack.append(self.new(name, () if name == 'EMPTY_TUPLE' else _UNKNOWN))
        elif name in _FROM_MARK:
            self.stack.append(self.built(name, self.pop_mark(), arg))
        elif name in _FIXED_ARITY:
            self.stack.append(self.built(name, self.pop(_FIXED_ARITY[name]), arg))
        elif name in _ADD_FIXED:
            items = self.pop(_ADD_FIXED[name])
            self.top().children.extend(items)
        elif name in _ADD_FROM_MARK:
            items = self.pop_mark()
            self.top().children.extend(items)
        elif name == 'GLOBAL':
            self.stack.append(self.new(name, '.'.join(arg.split(' ', 1))))
        elif name not in _NO_EFFECT:  # a constant (or a persistent id / extension code)
            self.stack.append(self.new(name, _CONSTANTS.get(name, arg)))

    def built(self, name: str, items: List[_Node], arg) -> _Node:
        """The object ``name`` builds from ``items``, checked where it calls a global."""
        value = _UNKNOWN
        if name in _TUPLE_OPS and len(items) <= 64 and all(
                item.value is not _UNKNOWN for item in items):
            value = tuple(item.value for item in items)
        elif name == 'STACK_GLOBAL' and all(isinstance(item.value, str) for item in items):
            value = '.'.join(item.value for item in items)
        elif name == 'INST':
            value = '.'.join(arg.split(' ', 1))
        if name == 'REDUCE':
            _check_call(*items)
        return self.new(name, value, items)


def _check_call(func: _Node, args: _Node) -> None:
    """Refuse the calls of allowed globals that allocate what the arguments ask for."""
    if func.value in _BYTEARRAY and not (
            args.op in _TUPLE_OPS and all(isinstance(item.value, (str, bytes))
                                          for item in args.children)):
        raise PickleBombError('calls builtins.bytearray with a size or computed arguments '
                              '(bytearray(N) allocates N bytes; pickle writes a bytearray as '
                              'its bytes)')
    if func.value in _TENSOR_REBUILDS:
        _check_tensor(func.value, args)


def _check_tensor(func: str, args: _Node) -> None:
    """A tensor rebuilt as ``torch.save`` writes it: a storage (persistent id ``('storage',
    type, key, location, numel, ...)``), offset, size and stride given as numbers, within the
    storage, repeating its elements (zero strides) at most MAX_REPEATED_ELEMENTS times over."""
    items = args.children if args.op in _TUPLE_OPS else []
    storage = items[0] if items else None
    pid = storage.children[0].value if storage and storage.op == 'BINPERSID' else None
    shape = tuple(item.value for item in items[1:4])
    if not (isinstance(pid, tuple) and len(pid) >= 5 and _is_count(pid[4]) and len(shape) == 3
            and _is_count(shape[0]) and _counts(shape[1]) and _counts(shape[2])
            and len(shape[1]) == len(shape[2])):
        raise PickleBombError(f'calls {func} with arguments torch.save does not write (a '
                              'storage, then offset, size and stride as numbers)')
    numel, (offset, size, stride) = pid[4], shape
    elements = 1
    for dim in size:
        elements *= dim
    if elements == 0:
        return
    end = offset + sum((dim - 1) * step for dim, step in zip(size, stride)) + 1
    if end > numel:
        raise PickleBombError(f'holds a tensor of size {size}, stride {stride} and offset '
                              f'{offset}, which needs {end} elements of its storage '
                              f'{pid[2]!r}; that storage holds {numel}')
    if elements > max(numel, MAX_REPEATED_ELEMENTS):
        raise PickleBombError(f'holds a tensor of size {size} and stride {stride}: '
                              f'{elements} elements over a storage of {numel} (copying it '
                              'would allocate all of them)')


def _is_count(value) -> bool:
    return type(value) is int and value >= 0


def _counts(value) -> bool:
    return isinstance(value, tuple) and all(_is_count(v) for v in value)


def _measure(nodes: List[_Node]) -> None:
    """Count every node's parts (shared ones once per reference) and depth, without
    recursion; refuse the first node over the limits."""
    for root in nodes:
        if root.parts:
            continue
        root.parts = -1
        path: List[Tuple[_Node, int]] = [(root, 0)]
        while path:
            node, i = path[-1]
            if i < len(node.children):
                path[-1] = (node, i + 1)
                child = node.children[i]
                if child.parts == 0:
                    child.parts = -1
                    path.append((child, 0))
                continue
            path.pop()
            parts, depth = 1, 0
            for child in node.children:
                # A child still being measured is an ancestor: a cycle, one reference.
                parts += 1 if child.parts < 0 else child.parts
                depth = max(depth, 1 if child.parts < 0 else child.depth)
            node.parts, node.depth = min(parts, MAX_OBJECTS + 1), depth + 1
            if node.parts > MAX_OBJECTS:
                raise PickleBombError(
                    f'builds an object of more than {MAX_OBJECTS} parts out of shared pieces '
                    '(a pickle bomb: the same tuples or lists referenced again and again)')
            if node.depth > MAX_DEPTH:
                raise PickleBombError(f'nests objects more than {MAX_DEPTH} levels deep')


def scan_pickle(stream: BinaryIO) -> bool:
    """Scan one pickle from ``stream`` (up to its STOP); False if the stream was at its end.

    Raises:
        PickleBombError: the pickle exceeds a bound (see the module docstring).
        UnreadablePickleError: the bytes are not a pickle.
    """
    scan = _Scan()
    started = False
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            started = True
            scan.step(opcode.name, arg)
    except ValueError as err:  # genops: an unknown opcode, or the stream ends inside a pickle
        if not started and 'exhausted' in str(err):
            return False
        if isinstance(err, (PickleBombError, UnreadablePickleError)):
            raise
        raise UnreadablePickleError(str(err)) from None
    _measure(scan.nodes)
    return True


def scan_checkpoint(file: Union[str, BinaryIO]) -> None:
    """Scan the pickles of a torch checkpoint (a path or a seekable binary stream, left at its
    start): ``data.pkl`` of the zip format, or the pickles of the legacy format.

    Raises:
        PickleBombError: a pickle exceeds a bound (see the module docstring).
        UnreadablePickleError: the file holds bytes that are not a pickle where one belongs.
    """
    stream = open(file, 'rb') if isinstance(file, str) else file
    try:
        if stream.read(4) == _ZIP_MAGIC:  # how torch tells the zip format
            stream.seek(0)
            try:
                with zipfile.ZipFile(stream) as archive:
                    # Every member, also ones of a repeated name (another zip reader may take
                    # the first where Python's takes the last).
                    for info in archive.infolist():
                        if info.filename.endswith('data.pkl'):
                            with archive.open(info) as pickle_file:
                                scan_pickle(pickle_file)
            except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error) as err:
                raise UnreadablePickleError(f'not a readable zip archive: {err}') from None
            return
        stream.seek(0)
        for _ in range(_LEGACY_PICKLES):
            if not scan_pickle(stream):
                return
    finally:
        if stream is file:
            stream.seek(0)
        else:
            stream.close()
