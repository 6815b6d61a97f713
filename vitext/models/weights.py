"""Loading checkpoints into vitext backbones.

A backbone's ``init_cfg=dict(type='Pretrained', checkpoint=path)`` goes through
:func:`load_pretrained`: the file is read by the safe loader (``vitext.checkpoint``), unwrapped
(``state_dict``/``model``/``module``, an mmseg/mmdet ``backbone.`` prefix), converted by the
backbone's ``checkpoint_filter`` (one per source layout, in :mod:`vitext.models.conversions`),
and then must match the backbone exactly except for keys the backbone declares optional (e.g.
CBS scales, which start at their init). Anything else fails with one message listing the keys.
"""
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional

import torch
from torch import Tensor, nn

from ..checkpoint import safe_load

# Classifier and pre-logits parts of classification checkpoints, never used by a backbone.
CLASSIFIER_PREFIXES = ('head.', 'fc_norm.', 'pre_logits.', 'head_dist.')


class CheckpointMismatchError(KeyError):
    """A checkpoint does not fit the backbone it is loaded into."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def unwrap_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The tensor dict of a checkpoint saved by timm, DeiT, mmengine or mmseg/mmdet."""
    for key in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    state = dict(checkpoint)
    if any(k.startswith('backbone.') for k in state):  # a whole segmentor/detector
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return state


def load_state_dict_exactly(model: nn.Module, state: Dict[str, Tensor], source: str,
                            optional: Iterable[str] = (), hint: str = '') -> None:
    """Load ``state`` into ``model`` as torch and mmengine do (each module's
    ``_load_from_state_dict``, so modules that convert other layouts of their weights still do),
    and fail with one message listing every key that does not fit.

    Args:
        source: what ``state`` came from, for the message (e.g. ``"checkpoint 'x.pth'"``).
        optional: substrings of model keys allowed to be absent from ``state``.
        hint: a last line for the message (what to do about it).

    Raises:
        CheckpointMismatchError: keys missing, unexpected, of another shape, or holding
            bool, integer or complex values for a floating-point tensor of the model (which
            copying would cast silently).
    """
    metadata = getattr(state, '_metadata', None)
    state = OrderedDict(state)  # modules may convert keys in place
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []

    def load(module: nn.Module, prefix: str = '') -> None:
        local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
        module._load_from_state_dict(state, prefix, local_metadata, True, missing, unexpected,
                                     errors)
        for name, child in module._modules.items():
            if child is not None:
                load(child, f'{prefix}{name}.')

    with torch.no_grad():
        load(model)
    own = model.state_dict()  # after loading: a module may have changed its form
    wrong_shape = sorted(f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                         for k, v in state.items()
                         if k in own and hasattr(v, 'shape') and v.shape != own[k].shape)
    wrong_dtype = sorted(f'{k}: checkpoint {v.dtype} vs model {own[k].dtype}'
                         for k, v in state.items()
                         if k in own and isinstance(v, Tensor) and own[k].is_floating_point()
                         and not v.is_floating_point())
    missing = sorted(k for k in missing if not k.endswith('num_batches_tracked')
                     and not any(o in k for o in optional))
    other = [e for e in errors if not e.startswith('size mismatch for ')]
    if not (unexpected or missing or wrong_shape or wrong_dtype or other):
        return
    lines = [f'{source} does not fit {type(model).__name__}:']
    for title, keys in (('shape mismatch', wrong_shape), ('dtype mismatch', wrong_dtype),
                        ('missing in checkpoint', missing),
                        ('not in model', sorted(unexpected)), ('errors', other)):
        if keys:
            shown = ', '.join(keys[:20]) + (f', ... ({len(keys)} in all)'
                                            if len(keys) > 20 else '')
            lines.append(f'  {title}: {shown}')
    if hint:
        lines.append(hint)
    raise CheckpointMismatchError('\n'.join(lines))


def load_pretrained(model: nn.Module, filename: str,
                    filter_fn: Optional[Callable[[Dict[str, Tensor], nn.Module],
                                                 Dict[str, Tensor]]] = None,
                    optional: Iterable[str] = (), ignore_prefixes=CLASSIFIER_PREFIXES) -> None:
    """Load ``filename`` into ``model`` strictly; see the module docstring.

    Args:
        filter_fn: converts the unwrapped state dict to the model's names and shapes.
        optional: substrings of model keys allowed to be absent from the checkpoint.
        ignore_prefixes: checkpoint keys dropped before matching.
    """
    state = unwrap_state_dict(safe_load(filename, map_location='cpu'))
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore_prefixes))}
    if filter_fn is not None:
        state = filter_fn(state, model)
    load_state_dict_exactly(model, state, f'checkpoint {filename!r}', optional)
