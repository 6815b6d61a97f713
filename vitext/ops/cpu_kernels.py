"""Optional C++/OpenMP CPU kernels (``vitext/ops/csrc``), built on first use by
``torch.utils.cpp_extension`` (a C++ compiler is needed; the build is cached by PyTorch under
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``, so later processes load it in about a
second). Where no kernel can be built the operators keep their pure-PyTorch forms; set
``VITEXT_CPU_KERNELS=0`` to skip the kernels altogether.
"""
import functools
import hashlib
import os
import os.path as osp
import platform
import warnings
from types import ModuleType
from typing import Optional

CSRC = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc')


def _machine_tag() -> str:
    """Built with -march=native: a build is only reused on the same kind of CPU."""
    flags = platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            flags += next((line for line in f if line.startswith('flags')), '')
    except OSError:
        pass
    return hashlib.sha1(flags.encode()).hexdigest()[:8]


@functools.lru_cache(maxsize=None)
def cpu_kernel(name: str) -> Optional[ModuleType]:
    """The compiled module ``csrc/<name>.cpp``, or None (disabled, or the build failed: one
    warning says why)."""
    if os.environ.get('VITEXT_CPU_KERNELS', '1') == '0':
        return None
    try:
        from torch.utils.cpp_extension import load
        return load(name=f'vitext_{name}_{_machine_tag()}', sources=[osp.join(CSRC, name + '.cpp')],
                    extra_cflags=['-O3', '-march=native', '-fopenmp'],
                    extra_ldflags=['-fopenmp'], verbose=False)
    except Exception as exc:  # no compiler, no headers, ...: the pure-PyTorch form serves
        warnings.warn(f'vitext: C++ kernel {name!r} unavailable ({type(exc).__name__}: '
                      f'{str(exc)[:300]}); using the pure-PyTorch form. Set VITEXT_CPU_KERNELS=0 '
                      'to skip the build.')
        return None


__all__ = ['cpu_kernel']
