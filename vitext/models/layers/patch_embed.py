"""Patch embedding: images -> a channels-last map of patch tokens."""
from typing import Callable, Optional

from torch import Tensor, nn

from .padding import pad_to_multiple


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` conv (``proj``), then ``norm_layer`` if given (``norm``):
    images (B, C, H, W), zero-padded at the bottom/right to a multiple of the patch size, ->
    (B, ceil(H/p), ceil(W/p), embed_dims)."""

    def __init__(self, patch_size: int = 16, in_channels: int = 3, embed_dims: int = 768,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dims) if norm_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(pad_to_multiple(x, self.patch_size))
        return self.norm(x.permute(0, 2, 3, 1))
