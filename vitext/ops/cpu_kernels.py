"""Optional C++/OpenMP CPU kernels (``vitext/ops/csrc``), compiled on first use by
``torch.utils.cpp_extension`` (a C++ compiler and ninja are needed) and kept for later processes.

One build per machine and content: the build folder
``<TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions>/vitext_<name>_<key>`` is named by a hash of
the kernel's source bytes, the compile flags, torch's version, CUDA version and C++ ABI, the
Python ABI and the CPU's flags (the build uses ``-march=native``); not by where vitext is
installed, so a wheel, a clone and a checkout of the same sources share one build.

Safe under concurrency and kills: the process that builds holds an exclusive ``flock`` on
``vitext_<name>_<key>.lock`` (the operating system releases it when its holder dies, however it
dies, so a killed build never blocks a later run; others wait with a message naming the holder),
compiles into a temporary folder, writes ``manifest.json`` with the library's size and SHA-256,
and renames the folder into place, so a build folder is always complete. A cached build is
imported only if its library matches its manifest: a truncated or altered library is rebuilt,
never imported (importing a cut library kills the process with SIGBUS).

Where no kernel can be built (no compiler, say) the operators keep their pure-PyTorch forms after
one warning; set ``VITEXT_CPU_KERNELS=0`` to skip the kernels altogether.
This module imports torch alone (no vitext or OpenMMLab modules), so it also works loaded by path.
"""
import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import os.path as osp
import platform
import shutil
import sys
import sysconfig
import time
import warnings
from types import ModuleType
from typing import Iterator, Optional

import torch

CSRC = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc')
CFLAGS = ('-O3', '-march=native', '-fopenmp')
LDFLAGS = ('-fopenmp',)
MANIFEST = 'manifest.json'


def _cpu_flags() -> str:
    """The machine type and CPU feature flags: with -march=native a build suits this CPU only."""
    flags = platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            flags += next((line for line in f if line.startswith('flags')), '')
    except OSError:
        pass
    return flags


def build_key(name: str, csrc: str = CSRC) -> str:
    """The hash that names a build of kernel ``name``: equal for byte-identical sources in any
    folder, different when the sources, compile flags, torch, Python or CPU differ.

    Args:
        name: kernel name, the source ``<csrc>/<name>.cpp``.
        csrc: the folder holding the sources (its headers count too).
    """
    digest = hashlib.sha256()
    headers = sorted(f for f in os.listdir(csrc) if f.endswith(('.h', '.hpp')))
    for file_name in [name + '.cpp'] + headers:
        with open(osp.join(csrc, file_name), 'rb') as f:
            digest.update(file_name.encode() + b'\0' + f.read() + b'\0')
    build = [CFLAGS, LDFLAGS, torch.__version__, torch.version.cuda,
             torch._C._GLIBCXX_USE_CXX11_ABI, sys.implementation.cache_tag,
             sysconfig.get_config_var('EXT_SUFFIX'), _cpu_flags()]
    digest.update(repr(build).encode())
    return digest.hexdigest()[:16]


def _cpp_extension() -> ModuleType:
    """``torch.utils.cpp_extension``, imported without its import-time log line about CUDA_HOME
    on machines without a CUDA runtime (these kernels are CPU code; where none can be built the
    user gets one warning, not that line too)."""
    logger = logging.getLogger('torch.utils.cpp_extension')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension as cpp_extension
    finally:
        logger.setLevel(level)
    return cpp_extension


def build_root() -> str:
    """The folder of the builds: ``$TORCH_EXTENSIONS_DIR``, else torch's default
    (``~/.cache/torch_extensions``)."""
    return os.environ.get('TORCH_EXTENSIONS_DIR') or _cpp_extension().get_default_build_root()


def _say(message: str) -> None:
    """A progress line on stderr (a build takes minutes; a wait may too)."""
    print(f'vitext: {message}', file=sys.stderr, flush=True)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def library_problem(build_dir: str) -> Optional[str]:
    """Why the build in ``build_dir`` must not be imported, or None if its library matches its
    manifest (name, size and SHA-256).

    Args:
        build_dir: a finished build folder (see :func:`load_kernel`).
    """
    try:
        with open(osp.join(build_dir, MANIFEST)) as f:
            manifest = json.load(f)
        if osp.basename(manifest['library']) != manifest['library']:
            return f'its manifest names {manifest["library"]!r}, not a file of the build'
        library = osp.join(build_dir, manifest['library'])
        size = osp.getsize(library)
        if size != manifest['size']:
            return f'{library} is {size} bytes, its manifest says {manifest["size"]}'
        if _sha256(library) != manifest['sha256']:
            return f'{library} differs from the SHA-256 in its manifest'
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f'no complete manifest and library ({type(exc).__name__}: {exc})'
    return None


def _import_build(build_dir: str) -> ModuleType:
    """Import the library of the verified build in ``build_dir`` (once per process)."""
    with open(osp.join(build_dir, MANIFEST)) as f:
        manifest = json.load(f)
    if manifest['module'] in sys.modules:
        return sys.modules[manifest['module']]
    spec = importlib.util.spec_from_file_location(manifest['module'],
                                                  osp.join(build_dir, manifest['library']))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[manifest['module']] = module
    return module


@contextlib.contextmanager
def build_lock(path: str, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while the block runs. The
    operating system releases it when the holder exits or is killed, so a lock file left by a
    killed build is free, never stale; while a live process holds it, this waits and says so.

    Args:
        path: the lock file.
        what: what the holder does, for the waiting message.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors='replace').strip() or 'unknown'
            since = time.strftime('%H:%M:%S', time.localtime(os.fstat(fd).st_mtime))
            _say(f'waiting for process {holder} (since {since}), which is {what}')
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_toolchain() -> None:
    """Raise RuntimeError naming what is missing to compile (checked before torch tries, whose
    failure takes long and says little)."""
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler: {compiler!r} (from $CXX, default c++) is not found')
    if not _cpp_extension().is_ninja_available():
        raise RuntimeError('ninja, which torch.utils.cpp_extension builds with, is not found')


def _build(name: str, csrc: str, build_dir: str) -> ModuleType:
    """Compile kernel ``name`` into a temporary folder, write its manifest, rename the folder to
    ``build_dir`` (replacing a damaged one) and return the module. The caller holds the lock.

    Args:
        name: kernel name, the source ``<csrc>/<name>.cpp``.
        csrc: the sources' folder.
        build_dir: the finished build's folder.
    """
    parent, base = osp.split(build_dir)
    # Left by killed builds: no other process builds while this one holds the lock.
    for entry in os.listdir(parent):
        if entry.startswith((f'{base}.tmp-', f'{base}.damaged-')):
            shutil.rmtree(osp.join(parent, entry), ignore_errors=True)
    _check_toolchain()
    tmp = f'{build_dir}.tmp-{os.getpid()}'
    os.makedirs(tmp)
    try:
        _say(f'compiling the C++ kernel {name!r} for this machine, once (1-2 minutes), into '
             f'{build_dir}')
        with warnings.catch_warnings():  # torch's notes on compiler versions: one warning at most
            warnings.simplefilter('ignore')
            module = _cpp_extension().load(
                name=osp.basename(build_dir), sources=[osp.join(csrc, name + '.cpp')],
                extra_cflags=list(CFLAGS), extra_ldflags=list(LDFLAGS), build_directory=tmp,
                verbose=False)
        library = module.__file__
        _fsync(library)
        manifest = dict(module=module.__name__, library=osp.basename(library),
                        size=osp.getsize(library), sha256=_sha256(library))
        with open(osp.join(tmp, MANIFEST), 'w') as f:
            json.dump(manifest, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync(tmp)
        if osp.lexists(build_dir):  # damaged (checked by the caller): never imported
            damaged = f'{build_dir}.damaged-{os.getpid()}'
            os.rename(build_dir, damaged)
            shutil.rmtree(damaged, ignore_errors=True)
        os.rename(tmp, build_dir)
        _fsync(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed build's; after the rename it is gone
    sys.modules[module.__name__] = module
    return module


def load_kernel(name: str, csrc: str = CSRC, root: Optional[str] = None) -> ModuleType:
    """The compiled module of ``<csrc>/<name>.cpp``: the verified cached build for its
    :func:`build_key`, else a new build (one process builds, others wait for it).

    Args:
        name: kernel name.
        csrc: the sources' folder.
        root: the builds' folder (default :func:`build_root`).

    Raises:
        RuntimeError and others: when no build can be made (no compiler, compile errors, ...).
    """
    root = root or build_root()
    build_dir = osp.join(root, f'vitext_{name}_{build_key(name, csrc)}')
    if osp.lexists(build_dir):
        problem = library_problem(build_dir)
        if problem is None:
            return _import_build(build_dir)
        _say(f'the cached build of kernel {name!r} in {build_dir} is not used: {problem}')
    os.makedirs(root, exist_ok=True)
    with build_lock(build_dir + '.lock', f'building kernel {name!r} into {build_dir}'):
        if osp.lexists(build_dir) and library_problem(build_dir) is None:  # built while we waited
            return _import_build(build_dir)
        return _build(name, csrc, build_dir)


@functools.lru_cache(maxsize=None)
def cpu_kernel(name: str) -> Optional[ModuleType]:
    """The compiled module ``csrc/<name>.cpp`` (see :func:`load_kernel`), or None: disabled by
    ``VITEXT_CPU_KERNELS=0``, or no build could be made (one warning says why)."""
    if os.environ.get('VITEXT_CPU_KERNELS', '1') == '0':
        return None
    try:
        return load_kernel(name)
    except Exception as exc:  # no compiler, no headers, ...: the pure-PyTorch form serves
        warnings.warn(f'vitext: C++ kernel {name!r} unavailable ({type(exc).__name__}: '
                      f'{str(exc)[:300]}); using the pure-PyTorch form. Set VITEXT_CPU_KERNELS=0 '
                      'to skip the build.', stacklevel=2)
        return None


__all__ = ['build_key', 'build_lock', 'build_root', 'cpu_kernel', 'library_problem',
           'load_kernel']
