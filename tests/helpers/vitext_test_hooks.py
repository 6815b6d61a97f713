"""A hook for the resume test: kills the training process (SIGKILL, no clean-up) right after
the checkpoint of iteration ``kill_after`` has been written, as a crash or preemption would."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterCheckpointHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self, kill_after: int):
        self.kill_after = kill_after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
