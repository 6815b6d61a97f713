"""CB-ViT: a plain ViT whose blocks broadcast the mean token (Context Broadcasting,
docs/models.md#context-broadcasting),
as an mmseg/mmdet backbone returning NCHW maps (a 4-level pyramid by default)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..layers import CB_MODES, Block, CBMode, CBPosition, drop_path_rates, resolve_arch
from .plain_vit import PlainViT


class CBViT(PlainViT):
    """Vision Transformer with Context Broadcasting.

    Args:
        arch: 'tiny' (192, 3 heads), 'small' (384, 6), 'base' (768, 12), or a dict with
            embed_dims, num_layers, num_heads (and optionally mlp_ratio).
        img_size: pre-training resolution (int or (h, w)); sets the position table's grid,
            which is resized to every input's grid (inputs are padded to a multiple of the patch
            size).
        patch_size: patch size (stride of the block outputs).
        in_channels: image channels.
        qkv_bias: bias in the qkv projection.
        drop_rate: dropout after the position table, the attention projection and the MLP.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth of the last block (linear from 0 over the blocks).
        cb_mode: 'none' (plain ViT), 'cb' or 'cbs'.
        cb_position: 'mlp_end' (default), 'mlp_mid', 'mlp_front', 'attn' or 'attn_mlp'.
        cb_layers: block indices that get CB (default: all), e.g. range(6, 12).
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
        out_type: 'featmap' (NCHW maps, class token dropped) or 'cls_token' (the (B, C) class
            token of each ``out_indices`` block: the classification output, as DeiT's; needs
            ``out_pyramid=False``, with ``final_norm=True`` for the last block).
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads a timm/DeiT ViT (``.pth``
            or ``.safetensors``) or vitext checkpoint, strictly (CBS scales and the pyramid may
            be absent).
    """
    arch_zoo = {
        'tiny': dict(embed_dims=192, num_layers=12, num_heads=3),
        'small': dict(embed_dims=384, num_layers=12, num_heads=6),
        'base': dict(embed_dims=768, num_layers=12, num_heads=12),
    }
    optional_weights = ('cb_', 'pyramid.')

    def __init__(self, arch: Union[str, dict] = 'small',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16, in_channels: int = 3, qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 cb_mode: CBMode = 'cb', cb_position: CBPosition = 'mlp_end',
                 cb_layers: Optional[Sequence[int]] = None,
                 out_indices: Union[int, Sequence[int]] = (3, 5, 7, 11), final_norm: bool = False,
                 out_pyramid: bool = True, pyramid_norm_cfg: Optional[dict] = None,
                 frozen_stages: int = -1, with_cp: bool = False, out_type: str = 'featmap',
                 init_cfg: Optional[dict] = None):
        settings = resolve_arch(arch, self.arch_zoo, ('embed_dims', 'num_layers', 'num_heads'),
                                optional=('mlp_ratio',))
        dim, depth = settings['embed_dims'], settings['num_layers']
        super().__init__(embed_dims=dim, depth=depth, img_size=img_size, patch_size=patch_size,
                         in_channels=in_channels, class_token=True, pos_embed=True,
                         drop_rate=drop_rate, out_indices=out_indices, final_norm=final_norm,
                         out_pyramid=out_pyramid, pyramid_norm_cfg=pyramid_norm_cfg,
                         frozen_stages=frozen_stages, with_cp=with_cp, out_type=out_type,
                         init_cfg=init_cfg)
        if cb_mode not in CB_MODES:
            raise ValueError(f'cb_mode={cb_mode!r} is not one of {CB_MODES}')
        self.cb_layers = tuple(range(depth)) if cb_layers is None else tuple(cb_layers)
        bad = [i for i in self.cb_layers if not 0 <= i < depth]
        if bad:
            raise ValueError(f'cb_layers {bad} out of range for {depth} blocks')
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=settings['num_heads'],
                  mlp_ratio=settings.get('mlp_ratio', 4.), qkv_bias=qkv_bias, drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=rates[i],
                  cb_mode=cb_mode if i in self.cb_layers else 'none', cb_position=cb_position)
            for i in range(depth))
        self.freeze_stages()

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> List[Tensor]:
        """Each block's attention probabilities (B, heads, N, N) for input images ``x``
        (N includes the class token). The forward pass itself is unchanged."""
        x, grid = self.tokens(x)
        maps = []
        for block in self.blocks:
            x, attn = block(x, grid, return_attn=True)
            maps.append(attn)
        return maps
