"""Pre-norm transformer blocks: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

:class:`Block` works on ViT tokens (B, N, C) and carries the Context Broadcasting sites;
:class:`HierarchicalBlock` works on channels-last maps (B, H, W, C) with any token mixer
(slide, window or spatial-reduction attention), as Slide-Swin and Slide-PVT use it.
Parameter names: ``norm1``, ``attn``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``."""
from functools import partial
from typing import Callable, Optional, Tuple

from torch import Tensor, nn

from .attention import Attention
from .broadcast_modes import CB_POSITIONS, CBMode, CBPosition, make_broadcast
from .drop_path import DropPath
from .mlp import Mlp

NormLayer = Callable[[int], nn.Module]


class Block(nn.Module):
    """ViT block on tokens.

    ``cb_mode``/``cb_position`` insert Context Broadcasting: 'mlp_end' on the MLP branch output
    before the residual add (the paper's default), 'mlp_mid' after the hidden activation (CBS
    then has mlp_ratio*dim scales), 'mlp_front' on the MLP input, 'attn' on the attention branch
    output, 'attn_mlp' on both branch outputs.

    ``token_mixer`` replaces multi-head attention (e.g. an AFT layer); it is called as
    ``token_mixer(x, grid)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop: float = 0., attn_drop: float = 0., drop_path: float = 0.,
                 norm_layer: NormLayer = partial(nn.LayerNorm, eps=1e-6),
                 cb_mode: CBMode = 'none', cb_position: CBPosition = 'mlp_end',
                 token_mixer: Optional[nn.Module] = None):
        super().__init__()
        if cb_position not in CB_POSITIONS:
            raise ValueError(f'cb_position={cb_position!r} is not one of {CB_POSITIONS}')
        hidden = int(dim * mlp_ratio)
        self.norm1 = norm_layer(dim)
        self.attn = token_mixer or Attention(dim=dim, num_heads=num_heads, qkv_bias=qkv_bias,
                                             attn_drop=attn_drop, proj_drop=drop)
        self.cb_attn = make_broadcast(cb_mode if cb_position in ('attn', 'attn_mlp') else 'none',
                                      dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        mode_at = {pos: cb_mode if cb_position == pos else 'none'
                   for pos in ('mlp_front', 'mlp_mid', 'mlp_end')}
        if cb_position == 'attn_mlp':
            mode_at['mlp_end'] = cb_mode
        self.mlp = Mlp(dim=dim, hidden_dim=hidden, drop=drop,
                       cb_front=make_broadcast(mode_at['mlp_front'], dim),
                       cb_mid=make_broadcast(mode_at['mlp_mid'], hidden),
                       cb_end=make_broadcast(mode_at['mlp_end'], dim))

    def forward(self, x: Tensor, grid: Tuple[int, int] = None, return_attn: bool = False):
        if return_attn:
            if not isinstance(self.attn, Attention):
                raise TypeError(f'{type(self.attn).__name__} has no attention map')
            y, attn = self.attn(self.norm1(x), grid, return_attn=True)
        else:
            y, attn = self.attn(self.norm1(x), grid), None
        x = x + self.drop_path(self.cb_attn(y))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, attn) if return_attn else x


class HierarchicalBlock(nn.Module):
    """Block on a (B, H, W, C) map around the token mixer ``attn`` (called as ``attn(x)``).

    Args:
        dim: channels.
        attn: the token mixer, built by the caller.
        mlp_ratio: MLP hidden width / ``dim``.
        drop: dropout after the MLP's layers.
        drop_path: stochastic depth of both residual branches.
        norm_layer: makes ``norm1``/``norm2`` from the width (Swin: LayerNorm eps 1e-5, PVT:
            ``partial(nn.LayerNorm, eps=1e-6)``).
        act_layer: the MLP's activation.
    """

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: float = 0., norm_layer: NormLayer = nn.LayerNorm,
                 act_layer: Callable[[], nn.Module] = nn.GELU):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio), drop=drop, act_layer=act_layer)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
