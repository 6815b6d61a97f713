"""Timing and peak-memory helpers (torch only), shared by tools/analysis and benchmarks/.

Timings interleave the compared variants repeat by repeat, so machine noise hits them alike.
Peak memory: the most tensor memory one call held above what was held before it, from the CUDA
allocator's statistics, or on CPU from the allocations and frees torch's CPU allocator reports to
the profiler. Not the process's resident memory: the C allocator keeps freed blocks for reuse
(how many depends on its thresholds and on what ran before in the process), so a call that
reuses them adds nothing to the RSS however much it allocates.
"""
import contextlib
import gc
import os
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List

import torch


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def interleaved_times(fns: Dict[str, Callable[[], None]], device: str, warmup: int = 2,
                      repeats: int = 5) -> Dict[str, dict]:
    """{name: {median_s, min_s, max_s, runs}} with the variants run in turn each repeat."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    runs: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            runs[name].append(time.perf_counter() - start)
    return {name: dict(median_s=statistics.median(t), min_s=min(t), max_s=max(t), runs=t)
            for name, t in runs.items()}


@contextlib.contextmanager
def _stderr_closed() -> Iterator[None]:
    """File descriptor 2 points at /dev/null: the profiler's C++ side logs its start and stop
    there (and, in a CUDA build on a machine without a GPU, a failed device count)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, 'w') as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _peak_cpu_allocation_mb(fn: Callable[[], None]) -> float:
    """The highest sum of the allocations minus the frees torch's CPU allocator reported to the
    profiler while ``fn`` ran."""
    from torch.profiler import ProfilerActivity, profile
    profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _stderr_closed():
        profiler.start()
    try:
        fn()
    finally:
        with _stderr_closed():
            profiler.stop()
    changes = sorted((event.start_ns(), event.nbytes())
                     for event in profiler.profiler.kineto_results.events()
                     if event.name() == '[memory]')
    peak = allocated = 0
    for _, nbytes in changes:
        allocated += nbytes
        peak = max(peak, allocated)
    return peak / 2**20


def peak_memory_mb(fn: Callable[[], None], device: str) -> float:
    """Peak memory added by one call of ``fn`` (after one warm-up call): the highest amount of
    memory torch's allocator held for tensors during the call above what it held before."""
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Garbage left by earlier work is collected first and no collection runs during the call:
    # tensors a collection frees while ``fn`` runs would offset ``fn``'s own allocations.
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _peak_cpu_allocation_mb(fn)
    finally:
        if collecting:
            gc.enable()
