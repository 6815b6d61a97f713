"""The 4-level feature pyramid that plain (single-stride) ViTs feed to UperNet/FPN (SPEC §4,
as in XCiT/BEiT): from four stride-16 maps make strides 4, 8, 16 and 32 by two 2x2
deconvolutions with norm + GELU between (x4), one deconvolution (x2), identity, 2x2 max-pool."""
from typing import Sequence, Tuple

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
        ops = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        return tuple(op(f) for op, f in zip(ops, features))
