"""Runner hooks."""
import atexit
import contextlib
import logging
import os
import os.path as osp
import socket
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..models.deploy import switch_to_deploy


class SwitchToDeployHook(Hook):
    """Re-parameterise the model for inference before testing (after the checkpoint is loaded):
    every module with a ``switch_to_deploy()`` (e.g. Slide backbones) is switched. Only at test
    time: a switched model cannot train on.

    Config: ``custom_hooks = [dict(type='SwitchToDeployHook')]``, or ``tools/test.py --deploy``.
    """
    priority = 'VERY_HIGH'

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        names = ', '.join(switch_to_deploy(model))
        print_log(f'switched to deploy form: {names or "nothing to switch"}',
                  logger='current')


TRAIN_LOCK = 'train.lock'


class WorkDirInUseError(RuntimeError):
    """Another live training run holds the work dir's lock."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def acquire_work_dir_lock(work_dir: str) -> str:
    """Create ``<work_dir>/train.lock`` holding this process's id and host; returns its path.

    A lock of a live process on this host (or of any process on another host, which cannot be
    checked) raises :class:`WorkDirInUseError`; one left by a dead process is taken over with a
    warning."""
    path = osp.join(work_dir, TRAIN_LOCK)
    host = socket.gethostname()
    os.makedirs(work_dir, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    fields = f.read().split()
            except FileNotFoundError:  # released meanwhile
                continue
            pid = int(fields[0]) if fields and fields[0].isdigit() else None
            owner_host = fields[1] if len(fields) > 1 else host
            if pid is not None and pid != os.getpid() and (
                    owner_host != host or _process_alive(pid)):
                raise WorkDirInUseError(
                    f'work dir {work_dir!r} is in use by the training run of process {pid} on '
                    f'{owner_host} (lock file {path}); two runs in one work dir overwrite each '
                    'other\'s checkpoints. Use another --work-dir, or delete the lock file if '
                    'that run is gone') from None
            if pid != os.getpid():
                print_log(f'taking over {path} from process {pid} on {owner_host}, which is '
                          'no longer running', logger='current', level=logging.WARNING)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(f'{os.getpid()} {host}\n')
        return path
    raise WorkDirInUseError(f'could not create the lock file {path}: other processes keep '
                            'creating it')


def release_work_dir_lock(path: str) -> None:
    """Remove the lock at ``path`` if this process holds it."""
    with contextlib.suppress(OSError):
        with open(path) as f:
            fields = f.read().split()
        if fields and fields[0] == str(os.getpid()):
            os.remove(path)


class WorkDirLockHook(Hook):
    """Refuse to train into a work dir that a live training run is using (its checkpoints and
    ``last_checkpoint`` would be overwritten): ``<work_dir>/train.lock`` is created before
    training starts and removed when it ends (also on an exception, at interpreter exit; a
    lock left by a killed run is taken over with a warning). Only the main process locks.

    Config (``configs/_base_/schedules/schedule_40k.py``, ``default_runtime_det.py`` set it):
    ``default_hooks = dict(work_dir_lock=dict(type='WorkDirLockHook'))``.
    """
    priority = 'VERY_HIGH'  # before CheckpointHook prunes or writes anything

    def __init__(self) -> None:
        self.lock_path: Optional[str] = None

    def before_train(self, runner) -> None:
        if is_main_process():
            self.lock_path = acquire_work_dir_lock(runner.work_dir)
            atexit.register(release_work_dir_lock, self.lock_path)

    def after_train(self, runner) -> None:
        if self.lock_path is not None:
            release_work_dir_lock(self.lock_path)
            atexit.unregister(release_work_dir_lock)
            self.lock_path = None
