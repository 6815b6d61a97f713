"""AFT-ViT: DeiT's architecture with attention replaced by an Attention Free Transformer layer
(docs/models.md#aft), as an mmseg/mmdet backbone returning NCHW maps (a 4-level pyramid by
default)."""
from typing import Literal, Optional, Sequence, Tuple, Union

from torch import nn

from ...ops.aft import AFTConv, AFTFull, AFTSimple
from ..conversions import aft_vit_checkpoint_filter
from ..layers import Block, drop_path_rates, resolve_arch
from .plain_vit import PlainViT

AttnType = Literal['conv', 'full', 'local', 'simple']
ATTN_TYPES = ('conv', 'full', 'local', 'simple')


class AFTViT(PlainViT):
    """ViT with AFT token mixing.

    Args:
        arch: 'tiny' (d 192) or 'small' (d 384), 12 blocks, MLP ratio 4; or a dict with
            embed_dims and num_layers (and optionally mlp_ratio).
        attn_type: 'conv' (default; no class token, no position table, any input size),
            'full' (class token + position table as DeiT, factorised T x T bias w = U V^T of the
            224-px grid, resized to each input's grid), 'local' (the same bias kept inside a
            kernel_size x kernel_size window, 0 outside) or 'simple' (no position bias; class
            token + position table as DeiT [choice]).
        num_heads: AFT-conv heads (K has one channel per head); default: one per channel.
        kernel_size: AFT-conv kernel / AFT-local window (odd).
        factor_dim: d' of AFT-full/local's U, V (128).
        img_size: pre-training resolution (int or (h, w)): the grid of the position table and
            of AFT-full/local's U, V, resized to each input's grid (unused by AFT-conv).
        patch_size: patch size (stride of the block outputs).
        in_channels: image channels.
        qkv_bias: bias in the AFT layer's q, k, v projections.
        drop_rate: dropout after the position table, the AFT output projection and the MLP.
        drop_path_rate: stochastic depth of the last block (linear from 0 over the blocks).
        out_indices: blocks whose outputs are returned (an int for one; negative indices count
            from the end).
        final_norm: apply the final LayerNorm to the last block's output.
        out_pyramid: turn the four outputs (at the patch stride) into strides 4/8/16/32
            (docs/models.md#feature-pyramid); False returns one map at the patch stride per
            ``out_indices`` entry.
        pyramid_norm_cfg: norm between the x4 deconvolutions.
        frozen_stages: -1 none; 0 the stem (patch embedding, class token, position table);
            i > 0 also blocks 1..i, and the final norm when i is the last block.
        with_cp: activation checkpointing of the blocks.
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads an ImageNet
            classification checkpoint of the same model (classifier ignored), strictly.
    """
    arch_zoo = {
        'tiny': dict(embed_dims=192, num_layers=12),
        'small': dict(embed_dims=384, num_layers=12),
    }
    checkpoint_filter = staticmethod(aft_vit_checkpoint_filter)

    def __init__(self, arch: Union[str, dict] = 'small', attn_type: AttnType = 'conv',
                 num_heads: Optional[int] = None, kernel_size: int = 11, factor_dim: int = 128,
                 img_size: Union[int, Tuple[int, int]] = 224, patch_size: int = 16,
                 in_channels: int = 3, qkv_bias: bool = True, drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = (3, 5, 7, 11), final_norm: bool = False,
                 out_pyramid: bool = True, pyramid_norm_cfg: Optional[dict] = None,
                 frozen_stages: int = -1, with_cp: bool = False, out_type: str = 'featmap',
                 init_cfg: Optional[dict] = None):
        if attn_type not in ATTN_TYPES:
            raise ValueError(f'attn_type={attn_type!r} is not one of {ATTN_TYPES}')
        settings = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'num_layers'),
                                optional=('mlp_ratio',))
        dim, depth = settings['embed_dims'], settings['num_layers']
        position_free = attn_type == 'conv'  # fully convolutional: runs at any resolution
        super().__init__(embed_dims=dim, depth=depth, img_size=img_size, patch_size=patch_size,
                         in_channels=in_channels, class_token=not position_free,
                         pos_embed=not position_free,
                         drop_rate=drop_rate, out_indices=out_indices, final_norm=final_norm,
                         out_pyramid=out_pyramid, pyramid_norm_cfg=pyramid_norm_cfg,
                         frozen_stages=frozen_stages, with_cp=with_cp, out_type=out_type,
                         init_cfg=init_cfg)
        self.attn_type = attn_type
        num_heads = num_heads or dim

        def mixer() -> nn.Module:
            if attn_type == 'conv':
                return AFTConv(dim=dim, num_heads=num_heads, kernel_size=kernel_size,
                               qkv_bias=qkv_bias, proj_drop=drop_rate)
            if attn_type == 'simple':
                return AFTSimple(dim=dim, qkv_bias=qkv_bias, proj_drop=drop_rate)
            return AFTFull(dim=dim, grid=self.pos_grid, num_prefix_tokens=self.num_prefix_tokens,
                           factor_dim=factor_dim,
                           window=kernel_size if attn_type == 'local' else None,
                           qkv_bias=qkv_bias, proj_drop=drop_rate)

        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=1, mlp_ratio=settings.get('mlp_ratio', 4.),
                  qkv_bias=qkv_bias, drop=drop_rate, drop_path=rates[i], token_mixer=mixer())
            for i in range(depth))
        self.freeze_stages()
