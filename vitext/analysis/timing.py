"""Timing and peak-memory helpers (torch only), shared by tools/analysis and benchmarks/.

Timings interleave the compared variants repeat by repeat, so machine noise hits them alike.
Peak memory: on CUDA the allocator's peak; on CPU the growth of the process's peak RSS (VmHWM)
during one call.
"""
import gc
import statistics
import time
from typing import Callable, Dict, List

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


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in MB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); where refused, the warm-up pass's peak,
    the same computation, stays the high-water mark."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def peak_memory_mb(fn: Callable[[], None], device: str) -> float:
    """Peak memory added by one call of ``fn`` (after one warm-up call)."""
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Garbage left by earlier work is collected first and no collection runs during the call:
    # memory a collection frees while ``fn`` runs would hide ``fn``'s own growth.
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        # VmHWM, not getrusage's ru_maxrss: a child's ru_maxrss starts at its parent's peak.
        _reset_peak_rss()
        base = _status_mb('VmRSS')
        fn()
        return _status_mb('VmHWM') - base
    finally:
        if collecting:
            gc.enable()
