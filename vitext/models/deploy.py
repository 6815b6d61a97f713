"""Re-parameterising a whole model for inference (torch only)."""
from typing import List

from torch import nn


def switch_to_deploy(model: nn.Module) -> List[str]:
    """Call ``switch_to_deploy()`` on every module of ``model`` that has one (e.g. Slide
    backbones and their attention layers; the calls are idempotent); returns their names, ''
    for ``model`` itself."""
    switchable = [(name, m) for name, m in model.named_modules() if hasattr(m, 'switch_to_deploy')]
    for _, module in switchable:
        module.switch_to_deploy()
    return [name for name, _ in switchable]
