"""Timing and peak-memory helpers for the benchmarks (torch only).

Timings interleave the compared variants repeat by repeat, so machine noise hits them alike;
compare ratios from one run. Peak memory: on CUDA the allocator's peak; on CPU the growth of the
process's peak RSS (VmHWM) during one pass, measured in a fresh process per variant.
"""
import json
import os
import platform
import subprocess
import sys
from typing import List

import torch

from vitext.analysis.timing import interleaved_times, peak_memory_mb, sync

__all__ = ['environment', 'interleaved_times', 'peak_memory_mb', 'probe_in_subprocess', 'sync',
           'write_results']


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
