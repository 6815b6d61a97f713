"""Robustness transforms for mmseg/mmdet test pipelines, inserted right after image loading:

    dict(type='LoadImageFromFile'),
    dict(type='CommonCorruption', corruption='fog', severity=3),  # or CentreOcclusion
    ...
"""
import zlib

import numpy as np
from mmcv.transforms import BaseTransform

from .corruptions import CORRUPTIONS, SEVERITIES, corrupt


def image_seed(results: dict, seed: int) -> int:
    """A per-image seed: the run's seed mixed with the image path (or its index)."""
    key = str(results.get('img_path') or results.get('sample_idx', ''))
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % 2**32


class CommonCorruption(BaseTransform):
    """Apply one of the 15 common corruptions at a severity (1-5) to ``results['img']``;
    deterministic per image and ``seed``. (Not named ``Corrupt``: mmdet registers a transform
    of that name, built on the broken ``imagecorruptions`` package.)"""

    def __init__(self, corruption: str, severity: int, seed: int = 0):
        if corruption not in CORRUPTIONS:
            raise ValueError(f'unknown corruption {corruption!r}; expected one of {CORRUPTIONS}')
        if severity not in SEVERITIES:
            raise ValueError(f'severity must be one of {SEVERITIES}, got {severity!r}')
        self.corruption, self.severity, self.seed = corruption, severity, seed

    def transform(self, results: dict) -> dict:
        results['img'] = corrupt(results['img'], self.corruption, self.severity,
                                 image_seed(results, self.seed))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


class CentreOcclusion(BaseTransform):
    """Fill the centred rectangle covering ``fraction`` of the image area (same aspect ratio as
    the image) with ``fill``, in pixel space before normalisation. The CB paper's occlusion
    zeroes the central 112x112 of a 224x224 image: fraction 0.25, fill 0."""

    def __init__(self, fraction: float = 0.25, fill: float = 0):
        if not 0 < fraction <= 1:
            raise ValueError(f'fraction must lie in (0, 1], got {fraction}')
        self.fraction, self.fill = fraction, fill

    def transform(self, results: dict) -> dict:
        img = results['img'].copy()
        h, w = img.shape[:2]
        side = np.sqrt(self.fraction)
        oh, ow = int(round(h * side)), int(round(w * side))
        top, left = (h - oh) // 2, (w - ow) // 2
        img[top:top + oh, left:left + ow] = self.fill
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(fraction={self.fraction}, fill={self.fill})'
