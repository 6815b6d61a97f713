"""Hooks for the resume tests: they kill the training process (SIGKILL, no clean-up) at a
chosen point of checkpointing, as a crash or preemption would."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterCheckpointHook(Hook):
    """Kill right after the checkpoint of iteration ``kill_after`` has been written."""
    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self, kill_after: int):
        self.kill_after = kill_after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillBeforeSaveHook(Hook):
    """Kill when the checkpoint of iteration ``kill_at`` is about to be written: the
    checkpoint hook has decided which old checkpoints to drop (mmengine's has already deleted
    them), the new file is not on disk yet."""

    def __init__(self, kill_at: int):
        self.kill_at = kill_at

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['iter'] == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
