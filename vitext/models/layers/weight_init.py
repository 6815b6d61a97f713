"""Weight initialisations applied with ``module.apply``."""
import math

from torch import nn


def init_linear_and_norm(module: nn.Module) -> None:
    """trunc-normal(0.02) linear weights, zero biases, unit LayerNorms (timm's and Swin's)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def init_vit_weights(module: nn.Module) -> None:
    """timm's default ViT init: :func:`init_linear_and_norm`, plus the patch embedding."""
    init_linear_and_norm(module)
    if isinstance(module, nn.Conv2d) and module.kernel_size[0] > 1:
        # Patch embedding: lecun-normal-like fan-in init.
        fan_in = module.in_channels * math.prod(module.kernel_size)
        nn.init.trunc_normal_(module.weight, std=math.sqrt(1.0 / fan_in))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
