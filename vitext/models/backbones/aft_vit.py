"""AFT-ViT: DeiT's architecture with attention replaced by an Attention Free Transformer layer
(SPEC §1), as an mmseg/mmdet backbone returning NCHW maps (a 4-level pyramid by default)."""
from typing import Optional, Sequence, Union

from torch import nn

from ...ops.aft import AFTConv, AFTFull, AFTSimple
from ..layers.vit import Block
from .plain_vit import PlainViT, drop_path_rates, resolve_arch

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
        Other arguments as :class:`CBViT`. ``init_cfg=dict(type='Pretrained', checkpoint=...)``
        loads an ImageNet classification checkpoint of the same model (classifier ignored).
    """
    arch_zoo = {
        'tiny': dict(embed_dims=192, num_layers=12),
        'small': dict(embed_dims=384, num_layers=12),
    }

    def __init__(self, arch: Union[str, dict] = 'small', attn_type: str = 'conv',
                 num_heads: Optional[int] = None, kernel_size: int = 11, factor_dim: int = 128,
                 img_size: int = 224, patch_size: int = 16, in_channels: int = 3,
                 qkv_bias: bool = True, drop_rate: float = 0., drop_path_rate: float = 0.,
                 out_indices: Sequence[int] = (3, 5, 7, 11), final_norm: bool = False,
                 out_pyramid: bool = True, pyramid_norm_cfg: Optional[dict] = None,
                 with_cp: bool = False, out_type: str = 'featmap',
                 init_cfg: Optional[dict] = None):
        if attn_type not in ATTN_TYPES:
            raise ValueError(f'attn_type={attn_type!r} is not one of {ATTN_TYPES}')
        settings = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'num_layers'))
        dim, depth = settings['embed_dims'], settings['num_layers']
        position_free = attn_type == 'conv'  # fully convolutional: runs at any resolution
        super().__init__(dim, depth, img_size, patch_size, in_channels,
                         class_token=not position_free, pos_embed=not position_free,
                         drop_rate=drop_rate, out_indices=out_indices, final_norm=final_norm,
                         out_pyramid=out_pyramid, pyramid_norm_cfg=pyramid_norm_cfg,
                         with_cp=with_cp, out_type=out_type,
                         init_cfg=init_cfg)
        self.attn_type = attn_type
        num_heads = num_heads or dim

        def mixer() -> nn.Module:
            if attn_type == 'conv':
                return AFTConv(dim, num_heads, kernel_size, qkv_bias, drop_rate)
            if attn_type == 'simple':
                return AFTSimple(dim, qkv_bias, drop_rate)
            window = kernel_size if attn_type == 'local' else None
            return AFTFull(dim, self.pos_grid, self.num_prefix_tokens, factor_dim, window,
                           qkv_bias, drop_rate)

        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(dim, 1, settings.get('mlp_ratio', 4.), qkv_bias, drop_rate, 0., rates[i],
                  token_mixer=mixer()) for i in range(depth))
