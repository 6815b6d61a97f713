"""Runner hooks."""
import atexit
import contextlib
import fcntl
import logging
import os
import os.path as osp
import socket
import time
from typing import Dict, Optional, Tuple

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
# A lock file without a process id is never written by this module (the file appears with its
# content); one that is not older than this may be another host's, mid-write: it is left alone.
UNREADABLE_LOCK_STALE_S = 60

# Lock path -> the open descriptor of the lock file whose flock this process holds.
_held: Dict[str, int] = {}


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


def _is_file_at(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _owner(fd: int) -> Tuple[Optional[int], Optional[str]]:
    """(process id, host) a lock file names; None for what it does not name."""
    fields = os.pread(fd, 512, 0).decode(errors='replace').split()
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    return pid, fields[1] if len(fields) > 1 else None


def _in_use(work_dir: str, path: str, pid: Optional[int], host: Optional[str]) -> str:
    return (f'work dir {work_dir!r} is in use by the training run of process {pid} on {host} '
            f'(lock file {path}); two runs in one work dir overwrite each other\'s checkpoints. '
            'Use another --work-dir, or delete the lock file if that run is gone')


def _take_over_if_stale(work_dir: str, path: str, mine: str) -> bool:
    """Replace the lock file at ``path`` by ``mine`` (this process's, complete and locked) if
    no run holds it; False if ``path`` changed meanwhile (look again).

    Raises:
        WorkDirInUseError: a live run (or one on another host, which cannot be checked) holds
            it, or it holds no process id and is too recent to call stale.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # released meanwhile
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process on this host holds it
            raise WorkDirInUseError(_in_use(work_dir, path, *_owner(fd))) from None
        # Holding the flock of the file at ``path``, no other process replaces it until the
        # rename below (each replaces only a file whose flock it holds); another may have
        # replaced it before this process locked it, though.
        if not _is_file_at(fd, path):
            return False
        pid, owner_host = _owner(fd)
        host = socket.gethostname()
        owner_host = owner_host or host
        if pid is None:
            age = time.time() - os.fstat(fd).st_mtime
            if age < UNREADABLE_LOCK_STALE_S:
                raise WorkDirInUseError(
                    f'lock file {path} names no process (written {age:.0f} s ago, maybe by a '
                    f'run on another host that is starting); if no run uses work dir '
                    f'{work_dir!r}, delete the lock file')
            print_log(f'taking over {path}, which names no process and is {age:.0f} s old',
                      logger='current', level=logging.WARNING)
        elif pid != os.getpid():
            if owner_host != host or _process_alive(pid):
                raise WorkDirInUseError(_in_use(work_dir, path, pid, owner_host))
            print_log(f'taking over {path} from process {pid} on {owner_host}, which is '
                      'no longer running', logger='current', level=logging.WARNING)
        os.rename(mine, path)
        return True
    finally:
        os.close(fd)


def acquire_work_dir_lock(work_dir: str) -> str:
    """Hold ``<work_dir>/train.lock``, naming this process's id and host; returns its path.

    The lock file is written and flock-ed under a temporary name and then linked into place,
    so it is never seen incomplete, and it stays locked while this process lives (the kernel
    releases the flock of a killed process). A lock that a live process holds, that names a
    live process on this host or any process on another host (which cannot be checked)
    raises :class:`WorkDirInUseError`; one left by a dead process is taken over with a
    warning.

    Raises:
        WorkDirInUseError: the work dir is in use.
        IsADirectoryError: ``train.lock`` is a directory.
    """
    path = osp.join(work_dir, TRAIN_LOCK)
    if path in _held:
        return path
    os.makedirs(work_dir, exist_ok=True)
    if osp.isdir(path):
        raise IsADirectoryError(f'{path} is a directory; it is where vitext keeps the lock of '
                                'the run training into this work dir: remove it')
    mine = f'{path}.{os.getpid()}.tmp'
    fd = os.open(mine, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode())
        os.fsync(fd)
        for _ in range(100):
            try:
                os.link(mine, path)  # fails if the path exists: never two holders
                break
            except FileExistsError:
                if _take_over_if_stale(work_dir, path, mine):
                    break
        else:
            raise WorkDirInUseError(f'could not create the lock file {path}: other processes '
                                    'keep creating and removing it')
    except BaseException:
        os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(mine)
    _held[path] = fd
    return path


def release_work_dir_lock(path: str) -> None:
    """Remove the lock at ``path`` if this process holds it."""
    fd = _held.pop(path, None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        if _is_file_at(fd, path):
            os.remove(path)
    os.close(fd)


class WorkDirLockHook(Hook):
    """Refuse to train into a work dir that a live training run is using (its checkpoints and
    ``last_checkpoint`` would be overwritten): ``<work_dir>/train.lock`` is created before
    training starts and removed when it ends (also on an exception, at interpreter exit; a
    lock left by a killed run is taken over with a warning; see
    :func:`acquire_work_dir_lock`). Only the main process locks.

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
