"""Pieces shared by vitext's backbones, one concern per module (timm's ``timm/layers`` layout),
all re-exported here: ``from vitext.models.layers import HierarchicalBlock, PatchEmbed``."""
from .attention import Attention, SpatialReductionAttention
from .block import Block, HierarchicalBlock
from .broadcast_modes import CB_MODES, CB_POSITIONS, CBMode, CBPosition, make_broadcast
from .checkpointing import checkpointed_call
from .drop_path import DropPath, drop_path_rates
from .format import grid_tokens_to_map
from .helpers import (check_head_dims, check_int_in_range, check_out_indices, resolve_arch,
                      to_2tuple)
from .mlp import Mlp
from .padding import pad_to_multiple
from .patch_embed import PatchEmbed
from .pos_embed import resize_pos_embed
from .pyramid import ViTFeaturePyramid
from .weight_init import init_linear_and_norm, init_vit_weights

__all__ = ['Attention', 'SpatialReductionAttention', 'Block', 'HierarchicalBlock', 'CB_MODES',
           'CB_POSITIONS', 'CBMode', 'CBPosition', 'make_broadcast', 'checkpointed_call',
           'DropPath', 'drop_path_rates', 'grid_tokens_to_map', 'check_head_dims',
           'check_int_in_range', 'check_out_indices', 'resolve_arch', 'to_2tuple', 'Mlp',
           'pad_to_multiple', 'PatchEmbed', 'resize_pos_embed', 'ViTFeaturePyramid',
           'init_linear_and_norm', 'init_vit_weights']
