"""The 4-level feature pyramid that plain (single-stride) ViTs feed to UperNet/FPN (SPEC §4,
as in XCiT/BEiT): from four stride-16 maps make strides 4, 8, 16 and 32 by two 2x2
deconvolutions with norm + GELU between (x4), one deconvolution (x2), identity, 2x2 max-pool
(1 along a side of one token, which a 2x2 pool cannot halve)."""
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn


class ViTFeaturePyramid(nn.Module):

    def __init__(self, embed_dims: int, norm_cfg: dict = None):
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(embed_dims, embed_dims, kernel_size=2, stride=2),
            build_norm_layer(norm_cfg, embed_dims)[1],
            nn.GELU(),
            nn.ConvTranspose2d(embed_dims, embed_dims, kernel_size=2, stride=2))
        self.fpn2 = nn.ConvTranspose2d(embed_dims, embed_dims, kernel_size=2, stride=2)
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, features: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(features) != 4:
            raise ValueError(f'the pyramid takes 4 stride-16 maps, got {len(features)} '
                             '(set out_indices to 4 blocks, or out_pyramid=False)')
        ops = (self.fpn1, self.fpn2, self.fpn3)
        outs = [op(f) for op, f in zip(ops, features)]
        kernel = tuple(min(2, side) for side in features[3].shape[-2:])
        outs.append(self.fpn4(features[3]) if kernel == (2, 2)
                    else F.max_pool2d(features[3], kernel, kernel))
        return tuple(outs)
