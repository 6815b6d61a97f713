"""Checkpoints that survive a kill at any moment, and ``--resume`` that finds them.

mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint *before* writing the new one and
writes files in place, so a kill during a save (with ``max_keep_ckpts=1``) leaves a truncated
newest file and a ``last_checkpoint`` that names the deleted one: ``--resume`` then fails every
time; with ``save_best`` it deletes the previous best checkpoint before writing the new one,
so a kill then loses the best model. :class:`AtomicCheckpointHook` writes each checkpoint (best
ones too) and ``last_checkpoint`` under a temporary name, syncs and renames it
(``vitext.atomic_files.atomic_path``), and deletes old ones only after; on ``--resume`` it checks what ``last_checkpoint`` names and, if that is missing or
incomplete (or ``last_checkpoint`` is empty or gone), resumes from the newest complete
checkpoint in the folder, saying so in one log line.
"""
import logging
import os
import os.path as osp
import re
import shutil
import zipfile
from typing import List, Optional, Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from ..atomic_files import TEMP_SUFFIX, atomic_path, atomic_write

LAST_CHECKPOINT = 'last_checkpoint'


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file: a zip archive whose central directory
    (written last) is present and lists the pickle. A file cut short anywhere fails this."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith('/data.pkl') for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def newest_complete_checkpoint(folder: str, filename_tmpl: str) -> Optional[str]:
    """The complete checkpoint named by ``filename_tmpl`` (e.g. ``iter_{}.pth``) with the
    largest step in ``folder``, or None."""
    pattern = re.compile(re.escape(filename_tmpl).replace(r'\{\}', r'(\d+)') + '$')
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    steps = sorted(((int(m.group(1)), name) for name in names
                    for m in [pattern.match(name)] if m), reverse=True)
    for _, name in steps:
        path = osp.join(folder, name)
        if is_complete_checkpoint(path):
            return path
    return None


class _DeferredRemovals(LocalBackend):
    """The local file backend, except that ``remove`` and ``rmtree`` only record the path."""

    def __init__(self) -> None:
        super().__init__()
        self.removed: List[str] = []

    def remove(self, filepath: Union[str, os.PathLike]) -> None:
        self.removed.append(str(filepath))

    def rmtree(self, dir_path: Union[str, os.PathLike]) -> None:
        self.removed.append(str(dir_path))


def _remove_checkpoint(path: str) -> None:
    """Delete a checkpoint file (or a DeepSpeed-style checkpoint folder) if it exists."""
    if osp.isdir(path):
        shutil.rmtree(path)
    elif osp.isfile(path):
        os.remove(path)


class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with crash-safe saving and resuming, for
    checkpoints on the local file system (other back-ends are saved as mmengine does).

    Config (``configs/_base_/schedules/schedule_40k.py``, ``default_runtime_det.py`` set it):
    ``default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=...))``.
    """

    def before_run(self, runner) -> None:
        super().before_run(runner)
        if runner._resume and runner._load_from is None:  # auto-resume (``--resume``)
            fallback = self._resume_fallback(runner)
            if fallback is not None:
                runner._load_from = fallback  # load_or_resume() then resumes from it

    def _checkpoint_folder(self, runner) -> str:
        """Where :meth:`before_train` will put checkpoints (``out_dir`` is resolved there)."""
        if self.out_dir is None:
            return runner.work_dir
        return osp.join(self.out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))

    def _resume_fallback(self, runner) -> Optional[str]:
        """The checkpoint to resume from when ``last_checkpoint`` does not name a complete
        one, or None to let mmengine go on as it would."""
        record = osp.join(runner.work_dir, LAST_CHECKPOINT)
        named = None
        if osp.isfile(record):
            with open(record) as f:
                named = f.read().strip()
            if named and is_complete_checkpoint(named):
                return None
        folder = self._checkpoint_folder(runner)
        newest = newest_complete_checkpoint(folder, self.filename_tmpl)
        if named is None and newest is None:
            return None  # a fresh work dir: mmengine trains from scratch
        if named is None:
            problem = f'there is no {record}'
        elif not named:
            problem = f'{record} is empty'
        elif osp.exists(named):
            problem = f'{record} names {named!r}, which is incomplete'
        else:
            problem = f'{record} names {named!r}, which does not exist'
        if newest is None:
            print_log(f'--resume: {problem} and {folder} holds no complete checkpoint; '
                      'training from scratch', logger='current', level=logging.WARNING)
            runner._resume = False
            return None
        print_log(f'--resume: {problem}; resuming from the newest complete checkpoint '
                  f'{newest}', logger='current', level=logging.WARNING)
        return newest

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            self._remove_partial_files(runner)

    def _remove_partial_files(self, runner) -> None:
        """Temporary files of saves that a kill interrupted (never complete)."""
        for folder in {self.out_dir, runner.work_dir}:
            for name in os.listdir(folder):
                if name.endswith(TEMP_SUFFIX):
                    path = osp.join(folder, name)
                    if osp.isdir(path):  # a DeepSpeed-style checkpoint folder
                        shutil.rmtree(path)
                    else:
                        os.remove(path)
                    print_log(f'removed {path}, left by an interrupted save', logger='current',
                              level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """As mmengine's, but the checkpoint and ``last_checkpoint`` are written atomically and
        the checkpoint that falls out of ``max_keep_ckpts`` is deleted after them."""
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        dropped = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                dropped = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        save_args = dict(file_client_args=self.file_client_args,
                         save_optimizer=self.save_optimizer,
                         save_param_scheduler=self.save_param_scheduler, meta=meta,
                         by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():  # mmengine's runner saves on the main process only
            runner.save_checkpoint(self.out_dir, ckpt_filename, **save_args)
            return
        with atomic_path(self.last_ckpt) as tmp:
            runner.save_checkpoint(self.out_dir, osp.basename(tmp), **save_args)
        atomic_write(osp.join(runner.work_dir, LAST_CHECKPOINT), self.last_ckpt)
        if dropped is not None:
            _remove_checkpoint(osp.join(self.out_dir, self.filename_tmpl.format(dropped)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """As mmengine's, but a new best checkpoint is written atomically and the previous
        best is deleted after it. mmengine's method (which keeps track of the best score per
        key) deletes through ``self.file_backend`` and then saves with
        ``runner.save_checkpoint``; it runs here with the deletions recorded instead of done
        and with saves going to a temporary name that is renamed when complete."""
        if not (self.save_best and is_main_process()
                and isinstance(self.file_backend, LocalBackend)):
            return super()._save_best_checkpoint(runner, metrics)
        backend, deferred = self.file_backend, _DeferredRemovals()
        save = runner.save_checkpoint

        def save_atomically(out_dir: str, filename: str, **kwargs) -> None:
            if filename.endswith(TEMP_SUFFIX):  # _save_checkpoint_with_step's, atomic already
                return save(out_dir, filename, **kwargs)
            with atomic_path(osp.join(out_dir, filename)) as tmp:
                save(out_dir, osp.basename(tmp), **kwargs)

        self.file_backend, runner.save_checkpoint = deferred, save_atomically
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
            del runner.save_checkpoint  # the runner's own method again
        current = {getattr(self, 'best_ckpt_path', None),
                   *(getattr(self, 'best_ckpt_path_dict', None) or {}).values()}
        for path in deferred.removed:
            if path not in current:  # a best checkpoint of the same step is rewritten in place
                _remove_checkpoint(path)
