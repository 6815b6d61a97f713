"""Building a segmentor/detector from a config for analysis (no runner, no data), and a
tensor-in, tensors-out view of it for counting, timing and export."""
import importlib
from typing import Optional, Tuple

from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from torch import Tensor, nn

from ..preflight import check_model_types, load_config


def build_model(config: str, checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None, device: str = 'cpu') -> Tuple[nn.Module, str]:
    """(model in eval mode with SyncBN reverted to BN, its default scope) from ``config``;
    ``checkpoint`` (training or deploy form) is loaded strictly through vitext's safe loader."""
    cfg = load_config(config, cfg_options)
    check_model_types(cfg)
    scope = cfg.get('default_scope', 'mmseg')
    models = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return revert_sync_batchnorm(model).to(device).eval(), scope


class TensorForward(nn.Module):
    """``model`` as images -> tensors: a segmentor's logits at the input size (backbone,
    neck, decode head; no sliding window), a detector's multi-level features (backbone + neck:
    its heads need proposals and image metas)."""

    def __init__(self, model: nn.Module, scope: str):
        super().__init__()
        self.model = model
        self.scope = scope

    def forward(self, images: Tensor):
        if self.scope == 'mmseg':
            return self.model._forward(images)
        return tuple(self.model.extract_feat(images))

    @property
    def what(self) -> str:
        return ('segmentor logits (backbone, neck, decode head)' if self.scope == 'mmseg'
                else 'detector features (backbone + neck)')
