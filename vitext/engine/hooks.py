"""Runner hooks."""
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
