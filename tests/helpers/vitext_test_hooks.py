"""Hooks for the end-to-end tests: three kill training (SIGKILL, no clean-up) at a chosen
point of checkpointing, as a crash or preemption would (the resume tests); one records what the
backbone was fed while testing (the test-time augmentation test)."""
import json
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


@HOOKS.register_module()
class KillBeforeBestSaveHook(Hook):
    """Make every validation a new best (``mIoU`` set to the number of iterations run) and
    kill when the best checkpoint after ``kill_at`` iterations is about to be written
    (mmengine's CheckpointHook has deleted the previous best by then)."""
    priority = 'ABOVE_NORMAL'  # sets the score before CheckpointHook (VERY_LOW) reads it

    def __init__(self, kill_at: int):
        self.kill_at = kill_at

    def after_val_epoch(self, runner, metrics=None):
        metrics['mIoU'] = float(runner.iter)

    def before_save_checkpoint(self, runner, checkpoint):
        is_best = 'optimizer' not in checkpoint  # best checkpoints are saved without it
        if is_best and runner.iter == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class RecordBackboneInputsHook(Hook):
    """Records every input the backbone sees while testing -- its shape and the sums of its
    leftmost and rightmost pixel columns -- into the JSON file ``out_file``, so a test can tell
    which views test-time augmentation fed the model (a horizontal flip swaps the two sums)."""

    def __init__(self, out_file: str):
        self.out_file = out_file
        self.records = []
        self.handle = None

    def before_test(self, runner):
        # The backbone of the segmentor, also when it is wrapped (test-time augmentation, DDP).
        backbone = next(m for name, m in runner.model.named_modules()
                        if name.split('.')[-1] == 'backbone')

        def record(module, args):
            x = args[0]
            for image in x:
                self.records.append(dict(shape=list(image.shape[-2:]),
                                         left=float(image[..., 0].double().sum()),
                                         right=float(image[..., -1].double().sum())))

        self.handle = backbone.register_forward_pre_hook(record)

    def after_test(self, runner):
        self.handle.remove()
        with open(self.out_file, 'w') as f:
            json.dump(self.records, f)
