"""Kills during checkpointing, damaged work dirs and concurrent runs (crash-safe checkpoint saves
and the work-dir lock): ``--resume`` always finds a complete checkpoint, and says when it falls
back."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import DEMO_SEG, run_tool, tiny_seg_options


def train(ade_root, work, *cfg_options, resume=False, max_iters=3, check=True,
          config=DEMO_SEG):
    """tools/train.py for ``max_iters`` iterations with a checkpoint after each."""
    opts = tiny_seg_options(ade_root, max_iters=max_iters, ckpt_interval=1) + list(cfg_options)
    return run_tool(['tools/train.py', str(config), '--work-dir', str(work)]
                    + (['--resume'] if resume else []) + ['--cfg-options', *opts], check=check)


@pytest.fixture(scope='module')
def trained(seg_demo_run, tmp_path_factory):
    """A work dir with iter_1.pth .. iter_3.pth: the shared run (conftest, a checkpoint after
    each iteration) as it stood after its third checkpoint."""
    work = shutil.copytree(seg_demo_run, tmp_path_factory.mktemp('three_ckpts') / 'work')
    (work / 'iter_4.pth').unlink()
    (work / 'last_checkpoint').write_text(str(work / 'iter_3.pth'))
    return work


def test_atomic_write_killed_midway_keeps_previous(tmp_path):
    from vitext.atomic_files import atomic_path, atomic_write
    path = tmp_path / 'robustness.json'
    atomic_write(str(path), '{"results": {"clean": 1}}')
    child = (f'import os, signal\nfrom vitext.atomic_files import atomic_path\n'
             f'with atomic_path({str(path)!r}) as tmp:\n'
             f'    f = open(tmp, "w"); f.write("{{\\"res"); f.flush()\n'
             f'    os.kill(os.getpid(), signal.SIGKILL)\n')
    proc = subprocess.run([sys.executable, '-c', child], env={**os.environ,
                          'PYTHONPATH': os.getcwd()})
    assert proc.returncode == -signal.SIGKILL
    assert path.read_text() == '{"results": {"clean": 1}}'
    assert (tmp_path / 'robustness.json.partial').read_text() == '{"res'

    with pytest.raises(RuntimeError):  # an exception: the target is kept, the temp removed
        with atomic_path(str(path)) as tmp:
            open(tmp, 'w').write('half')
            raise RuntimeError
    assert path.read_text() == '{"results": {"clean": 1}}'
    assert not (tmp_path / 'robustness.json.partial').exists()


def test_kill_while_saving_with_max_keep_1_resumes(ade_root, tmp_path):
    """mmengine's CheckpointHook deletes iter_1.pth before writing iter_2.pth: killed then,
    the work dir's last_checkpoint names a deleted file and no --resume ever works."""
    killing = tmp_path / 'killing.py'
    killing.write_text(
        f'_base_ = [{DEMO_SEG!r}]\n'
        "custom_imports = dict(imports=['vitext', 'vitext_test_hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='KillBeforeSaveHook', kill_at=2)]\n")
    work = tmp_path / 'work'
    proc = train(ade_root, work, 'default_hooks.checkpoint.max_keep_ckpts=1', config=killing,
                 check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert (work / 'iter_1.pth').is_file()  # kept until iter_2.pth is complete
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_1.pth')

    proc = train(ade_root, work, 'default_hooks.checkpoint.max_keep_ckpts=1', resume=True)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 1' in log
    assert 'taking over' in log and 'train.lock' in log  # the killed run's lock
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_3.pth']
    assert torch.load(work / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3


def test_resume_skips_truncated_and_deleted_checkpoints(ade_root, trained, tmp_path):
    work = shutil.copytree(trained, tmp_path / 'work')
    data = (work / 'iter_3.pth').read_bytes()
    (work / 'iter_3.pth').write_bytes(data[:len(data) // 2])  # cut short by a kill
    (work / 'iter_2.pth').unlink()
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    (work / 'iter_4.pth.partial').write_bytes(data[:100])  # an interrupted atomic save

    proc = train(ade_root, work, resume=True, max_iters=4)
    log = proc.stdout + proc.stderr
    assert (f"last_checkpoint names '{work / 'iter_2.pth'}', which does not exist; resuming "
            f"from the newest complete checkpoint {work / 'iter_1.pth'}") in log
    assert 'resumed epoch: 0, iter: 1' in log
    assert not (work / 'iter_4.pth.partial').exists()
    assert torch.load(work / 'iter_4.pth', weights_only=False)['meta']['iter'] == 4
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')


def test_resume_with_empty_last_checkpoint(ade_root, trained, tmp_path):
    work = shutil.copytree(trained, tmp_path / 'work')
    (work / 'last_checkpoint').write_text('')
    proc = train(ade_root, work, resume=True, max_iters=4)
    log = proc.stdout + proc.stderr
    assert (f'last_checkpoint is empty; resuming from the newest complete checkpoint '
            f'{work / "iter_3.pth"}') in log
    assert 'resumed epoch: 0, iter: 3' in log
    assert (work / 'iter_4.pth').is_file()


def test_second_run_into_a_busy_work_dir_is_refused(ade_root, trained, tmp_path):
    work = shutil.copytree(trained, tmp_path / 'work')
    before = {p.name: p.stat().st_mtime_ns for p in work.glob('iter_*.pth')}
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
    try:
        (work / 'train.lock').write_text(f'{live.pid} {socket.gethostname()}\n')
        proc = train(ade_root, work, check=False)
    finally:
        live.kill()
        live.wait()
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f'work dir {str(work)!r} is in use by the training run of process {live.pid}' in last
    assert {p.name: p.stat().st_mtime_ns for p in work.glob('iter_*.pth')} == before



def lock_race(rounds, attempts, stale=False):
    """Outcomes of each round of ``attempts`` simultaneous lock attempts (tests/helpers/
    lock_race.py)."""
    proc = run_tool([sys.executable, '-m', 'lock_race', str(rounds), str(attempts),
                     '1' if stale else '0'], timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_simultaneous_runs_never_both_hold_the_lock():
    """40 rounds of 5 runs locking one work dir at once: exactly one holds it each time (a run
    that read the lock file before its content was written took it over as a dead process's;
    about one round in twenty had two or more holders)."""
    for outcomes in lock_race(40, 5):
        assert outcomes == ['held'] + ['refused'] * 4, outcomes


def test_simultaneous_takeovers_of_a_dead_run_s_lock():
    """Runs finding a killed run's lock at once: exactly one takes it over."""
    for outcomes in lock_race(10, 5, stale=True):
        assert outcomes == ['held'] + ['refused'] * 4, outcomes

def test_lock_file_without_a_process(tmp_path):
    """An empty lock file is left alone while it may be mid-write, taken over when old."""
    from vitext.engine.hooks import (WorkDirInUseError, acquire_work_dir_lock,
                                     release_work_dir_lock)
    lock = tmp_path / 'train.lock'
    lock.write_text('')
    with pytest.raises(WorkDirInUseError, match=f'lock file {lock} names no process'):
        acquire_work_dir_lock(str(tmp_path))
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert acquire_work_dir_lock(str(tmp_path)) == str(lock)
    assert lock.read_text() == f'{os.getpid()} {socket.gethostname()}\n'
    release_work_dir_lock(str(lock))
    assert not lock.exists()


def test_lock_path_that_is_a_directory(tmp_path):
    from vitext.engine.hooks import acquire_work_dir_lock
    (tmp_path / 'train.lock').mkdir()
    with pytest.raises(IsADirectoryError, match=f'{tmp_path / "train.lock"} is a directory'):
        acquire_work_dir_lock(str(tmp_path))


def test_kill_while_saving_a_new_best_keeps_the_previous_best(ade_root, tmp_path):
    """mmengine's CheckpointHook deletes best_mIoU_iter_1.pth before writing
    best_mIoU_iter_2.pth: killed then, no best checkpoint was left."""
    from vitext.checkpoint import safe_load
    killing = tmp_path / 'killing.py'
    killing.write_text(
        f'_base_ = [{DEMO_SEG!r}]\n'
        "custom_imports = dict(imports=['vitext', 'vitext_test_hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='KillBeforeBestSaveHook', kill_at=2)]\n")
    work = tmp_path / 'work'
    best = ('train_cfg.val_interval=1', 'default_hooks.checkpoint.save_best=mIoU',
            'default_hooks.checkpoint.rule=greater')
    proc = train(ade_root, work, *best, config=killing, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert sorted(p.name for p in work.glob('best_*')) == ['best_mIoU_iter_1.pth']
    assert 'state_dict' in safe_load(str(work / 'best_mIoU_iter_1.pth'))

    train(ade_root, work, *best, 'custom_hooks.0.kill_at=0', config=killing, resume=True)
    assert sorted(p.name for p in work.glob('best_*')) == ['best_mIoU_iter_3.pth']
