"""The 4-level feature pyramid that plain (single-stride) ViTs feed to UperNet/FPN
(docs/models.md#feature-pyramid, as in XCiT/BEiT): from four maps at the patch stride make
strides 4, 8, 16 and 32. For ViT's stride 16: two 2x2 deconvolutions with norm + GELU between
(x4), one deconvolution (x2), identity, 2x2 max-pool. Other power-of-two strides (a patch of 8
in the CPU demos) get as many deconvolutions or as large a pool as their levels need. A pool never
exceeds the map (a side of one token, which a 2x2 pool cannot halve, stays one token)."""
import math
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

PYRAMID_STRIDES = (4, 8, 16, 32)


class ViTFeaturePyramid(nn.Module):
    """Four stride-``stride`` maps -> maps at strides 4, 8, 16, 32 (``fpn1`` .. ``fpn4``).

    Args:
        embed_dims: channels of the maps (kept).
        stride: the input maps' stride (the ViT's patch size), a power of two from 1 to 128.
        norm_cfg: norm between two deconvolutions (default BN).
    """

    def __init__(self, embed_dims: int, stride: int = 16, norm_cfg: dict = None):
        super().__init__()
        if stride < 1 or stride & (stride - 1) or stride > 128:
            raise ValueError(f'the feature pyramid needs a power-of-two patch size (stride) up '
                             f'to 128 to make strides {PYRAMID_STRIDES}, got {stride}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.stride = stride
        for level, target in enumerate(PYRAMID_STRIDES, start=1):
            steps = int(math.log2(stride)) - int(math.log2(target))
            if steps > 0:
                layers = [nn.ConvTranspose2d(embed_dims, embed_dims, kernel_size=2, stride=2)]
                for _ in range(steps - 1):
                    layers += [build_norm_layer(norm_cfg, embed_dims)[1], nn.GELU(),
                               nn.ConvTranspose2d(embed_dims, embed_dims, kernel_size=2,
                                                  stride=2)]
                op = layers[0] if steps == 1 else nn.Sequential(*layers)
            elif steps == 0:
                op = nn.Identity()
            else:
                op = nn.MaxPool2d(kernel_size=2 ** -steps, stride=2 ** -steps)
            setattr(self, f'fpn{level}', op)

    def forward(self, features: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(features) != 4:
            raise ValueError(f'the pyramid takes 4 stride-{self.stride} maps, got '
                             f'{len(features)} (set out_indices to 4 blocks, or out_pyramid=False)')
        outs = []
        for level, feature in enumerate(features, start=1):
            op = getattr(self, f'fpn{level}')
            if isinstance(op, nn.MaxPool2d):  # never beyond the map
                kernel = tuple(min(op.kernel_size, side) for side in feature.shape[-2:])
                outs.append(F.max_pool2d(feature, kernel, kernel))
            else:
                outs.append(op(feature))
        return tuple(outs)
