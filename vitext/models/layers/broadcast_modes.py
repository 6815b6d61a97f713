"""Context Broadcasting modes and the op each one makes (the ops are in ``vitext.ops``)."""
from typing import Literal

from torch import nn

from ...ops.broadcast import ContextBroadcast, ScaledContextBroadcast

CBMode = Literal['none', 'cb', 'cbs']
CBPosition = Literal['mlp_end', 'mlp_mid', 'mlp_front', 'attn', 'attn_mlp']
CB_MODES = ('none', 'cb', 'cbs')
CB_POSITIONS = ('mlp_end', 'mlp_mid', 'mlp_front', 'attn', 'attn_mlp')


def make_broadcast(mode: CBMode, dim: int) -> nn.Module:
    """The CB op for ``mode``: Identity ('none'), CB or CBS with ``dim`` scales."""
    if mode == 'none':
        return nn.Identity()
    if mode == 'cb':
        return ContextBroadcast()
    if mode == 'cbs':
        return ScaledContextBroadcast(dim)
    raise ValueError(f'cb_mode={mode!r} is not one of {CB_MODES}')
