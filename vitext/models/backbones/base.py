"""What every vitext backbone shares: weight initialisation followed by strict loading of
``init_cfg=dict(type='Pretrained', checkpoint=...)`` through the backbone's checkpoint filter,
and the layer depth of each parameter for layer-wise learning-rate decay (mmpretrain's
``get_layer_depth`` convention)."""
from typing import Callable, Dict, List, Optional, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from ..deploy import switch_submodules_to_deploy
from ..weights import load_pretrained

CheckpointFilter = Callable[[Dict[str, Tensor], 'VitextBackbone'], Dict[str, Tensor]]


def identity_filter(state: Dict[str, Tensor], model: 'VitextBackbone') -> Dict[str, Tensor]:
    """Checkpoints already in the backbone's own layout."""
    return state


class VitextBackbone(BaseModule):
    """Base of vitext's backbones.

    Subclasses define :meth:`init_own_weights` (the architecture's own initialisation),
    ``checkpoint_filter`` (foreign layout -> own names and shapes, timm's
    ``checkpoint_filter_fn(state_dict, model)`` convention), ``optional_weights`` (substrings of
    parameter names a pre-trained checkpoint may lack; they keep their init), ``num_blocks``
    (all blocks, counted through the stages), :meth:`block_depth` and :meth:`frozen_parts`.
    A subclass that sets ``frozen_stages`` calls :meth:`freeze_stages` at the end of its
    ``__init__``; ``train()`` keeps the frozen parts frozen.
    """
    optional_weights: Tuple[str, ...] = ()
    checkpoint_filter: CheckpointFilter = staticmethod(identity_filter)
    num_blocks: int
    frozen_stages: int = -1

    def frozen_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """The modules and stand-alone parameters that ``frozen_stages`` freezes: -1 nothing,
        0 the stem, i > 0 the stem and the first i stages (plain ViTs: blocks), mmseg's
        meaning (mmpretrain's Swin reads 0 as "stem and stage 1")."""
        raise NotImplementedError

    def freeze_stages(self) -> None:
        """Frozen parts: eval mode (dropout, norms) and no gradient."""
        if self.frozen_stages < 0:
            return
        for part in self.frozen_parts():
            if isinstance(part, nn.Module):
                part.eval()
            part.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.freeze_stages()
        return self

    def init_own_weights(self) -> None:
        raise NotImplementedError

    def init_weights(self) -> None:
        self.init_own_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'], type(self).checkpoint_filter,
                            optional=self.optional_weights)
        elif self.init_cfg is not None:
            super().init_weights()

    def block_depth(self, name: str) -> Optional[int]:
        """Depth of the parameter ``name`` (relative to the backbone): 0 for the stem (patch
        embedding, its position table and class token), i + 1 for a parameter of the i-th
        block counted through all stages, None for what follows the last block (final norms,
        pyramid)."""
        raise NotImplementedError

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """(layer depth, number of depths) of ``param_name``, as mmpretrain's backbones answer
        it: depths run from 0 (stem) to ``num_blocks + 1``; parameters outside the backbone
        (not starting with ``prefix``, e.g. decode heads) and those after the last block get
        the last depth."""
        num_depths = self.num_blocks + 2
        if not param_name.startswith(prefix):
            return num_depths - 1, num_depths
        depth = self.block_depth(param_name[len(prefix):])
        return (num_depths - 1 if depth is None else depth), num_depths


class SlideBackbone(VitextBackbone):
    """A backbone with slide attention layers, which have a re-parameterised deploy form."""

    def switch_to_deploy(self) -> List[str]:
        """Fold every slide attention's shift and deformed convs into one conv; returns the
        names of the switched layers."""
        return switch_submodules_to_deploy(self)
