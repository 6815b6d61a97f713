"""Timing and peak-memory helpers for the benchmarks (torch only).

Timings interleave the compared variants repeat by repeat, so machine noise hits them alike;
compare ratios from one run. Peak memory: ``vitext.analysis.timing.peak_memory_mb`` (tensor memory
held above what was held before the pass), measured in a fresh process per variant.
"""
import importlib.util
import json
import os
import platform
import subprocess
import sys
from types import ModuleType
from typing import List

import torch

from vitext.analysis.timing import interleaved_times, peak_memory_mb, sync

__all__ = ['environment', 'interleaved_times', 'load_baseline', 'peak_memory_mb',
           'probe_in_subprocess', 'sync', 'write_results']


def load_baseline(path: str, name: str) -> ModuleType:
    """Import an older copy of a ``vitext.ops`` module (e.g. ``git show
    main:vitext/ops/slide.py > /tmp/slide_main.py``) as ``vitext.ops.<name>``, so that its
    relative imports resolve, to measure the code before a change against the code after."""
    spec = importlib.util.spec_from_file_location(f'vitext.ops.{name}', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_average() -> List[float]:
    """1, 5 and 15 minute load averages (what else ran on the machine meanwhile)."""
    return [round(x, 2) for x in os.getloadavg()]


def probe_in_subprocess(script: str, args: List[str]) -> float:
    """Run ``script --memory-probe args...`` in a fresh interpreter; it prints the peak MB."""
    out = subprocess.run([sys.executable, script, '--memory-probe', *args], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def environment(device: str) -> dict:
    info = dict(torch=torch.__version__, python=platform.python_version(),
                machine=platform.machine(), threads=torch.get_num_threads(), device=device,
                load_average_at_start=load_average())
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name()
    else:
        info['cpu'] = platform.processor() or platform.machine()
        info['cores'] = os.cpu_count()
    return info


def write_results(out_dir: str, name: str, payload: dict, table: List[List[str]]) -> str:
    """Write ``<name>.json`` and ``<name>.md`` (a table whose first row is the header)."""
    os.makedirs(out_dir, exist_ok=True)
    lines = ['| ' + ' | '.join(table[0]) + ' |', '|' + ' --- |' * len(table[0])]
    lines += ['| ' + ' | '.join(row) + ' |' for row in table[1:]]
    env = payload['environment']
    env['load_average_at_end'] = load_average()
    with open(os.path.join(out_dir, name + '.json'), 'w') as f:
        json.dump(payload, f, indent=2)
    md = (f'# {name}\n\n{payload.get("description", "")}\n\nMeasured on {env.get("gpu") or env.get("cpu")} '
          f'({env["device"]}, {env.get("cores", "")} cores, torch {env["torch"]}, '
          f'{env["threads"]} threads); load average (1, 5, 15 min) {env["load_average_at_start"]} '
          f'at the start, {env["load_average_at_end"]} at the end.\n\n'
          + '\n'.join(lines) + '\n')
    path = os.path.join(out_dir, name + '.md')
    with open(path, 'w') as f:
        f.write(md)
    return path
