"""Timing and peak-memory helpers for the benchmarks (torch only).

Timings interleave the compared variants repeat by repeat, so machine noise hits them alike;
compare ratios from one run. Peak memory: on CUDA the allocator's peak; on CPU the growth of the
process's peak RSS (VmHWM) during one pass, measured in a fresh process per variant.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
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
    # VmHWM, not getrusage's ru_maxrss: a child's ru_maxrss starts at its parent's peak.
    _reset_peak_rss()
    base = _status_mb('VmRSS')
    fn()
    return _status_mb('VmHWM') - base


def probe_in_subprocess(script: str, args: List[str]) -> float:
    """Run ``script --memory-probe args...`` in a fresh interpreter; it prints the peak MB.

    glibc's mmap threshold is pinned at 64 KiB there: by default it grows after frees, and
    freed large blocks then stay resident, so peak RSS would not follow live tensor memory."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    out = subprocess.run([sys.executable, script, '--memory-probe', *args], check=True,
                         capture_output=True, text=True, env=env).stdout
    return float(out.strip().splitlines()[-1])


def environment(device: str) -> dict:
    info = dict(torch=torch.__version__, python=platform.python_version(),
                machine=platform.machine(), threads=torch.get_num_threads(), device=device)
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name()
    else:
        info['cpu'] = platform.processor() or platform.machine()
        info['cores'] = os.cpu_count()
    return info


def write_results(out_dir: str, name: str, payload: dict, table: List[List[str]]) -> str:
    """Write ``<name>.json`` and ``<name>.md`` (a table whose first row is the header)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, name + '.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    lines = ['| ' + ' | '.join(table[0]) + ' |', '|' + ' --- |' * len(table[0])]
    lines += ['| ' + ' | '.join(row) + ' |' for row in table[1:]]
    env = payload['environment']
    md = (f'# {name}\n\n{payload.get("description", "")}\n\nMeasured on {env.get("gpu") or env.get("cpu")} '
          f'({env["device"]}, {env.get("cores", "")} cores, torch {env["torch"]}, '
          f'{env["threads"]} threads).\n\n' + '\n'.join(lines) + '\n')
    path = os.path.join(out_dir, name + '.md')
    with open(path, 'w') as f:
        f.write(md)
    return path
