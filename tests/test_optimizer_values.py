"""Optimizer settings that cannot train are refused by key before the runner is built."""
import pytest

from conftest import DEMO_SEG, run_tool


@pytest.mark.parametrize('key, value', [('lr', 'inf'), ('lr', 'nan'), ('weight_decay', '-inf')])
def test_non_finite_optimizer_number_is_refused_by_key(key, value, tmp_path):
    """lr=inf trained to the end and scored (every weight NaN after the first step)."""
    proc = run_tool(['tools/train.py', DEMO_SEG, '--work-dir', str(tmp_path), '--cfg-options',
                     f'optim_wrapper.optimizer.{key}={value}'], check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f'optim_wrapper.optimizer.{key}={float(value)} is not a finite number')
    assert not list(tmp_path.iterdir())  # stopped before the runner (its log, its lock)
