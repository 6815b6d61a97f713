"""vitext's data-pipeline transforms: label loading that fails with a message naming the
offending file (segmentation), and the robustness transforms for mmseg/mmdet test pipelines,
inserted right after image loading::

    dict(type='LoadImageFromFile'),
    dict(type='CommonCorruption', corruption='fog', severity=3),  # or CentreOcclusion
    ...
"""
import zlib
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from ..evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

# The label value that mmseg's losses and metrics ignore (reduce_zero_label maps 0 to it).
IGNORE_INDEX = 255


class CorruptDataError(ValueError):
    """An image or label file on disk cannot be used."""


class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that names the label file when it cannot be used.

    mmseg fails deep inside numpy ("'NoneType' object has no attribute 'squeeze'") on a label
    PNG that does not decode, trains silently on one whose size differs from its image, and
    uses label values beyond the classes (an ``IndexError`` in the loss when training, a wrong
    mIoU when testing). It casts the decoded map to 8 bits, so a 16-bit PNG's 300 would become
    44, a valid class, and squeezes every axis of length 1 out of it, so a 1-pixel-high or -wide
    map lost that side (a 1x1 one failed in ``reduce_zero_label``). Here the map is decoded as
    the file holds it, its values are checked before the 8-bit cast, and each case raises
    :class:`CorruptDataError` naming the file and what was expected; ``reduce_zero_label`` and
    a data set's ``label_map`` then apply as in mmseg.

    Args:
        num_classes (int, optional): the data set's number of classes. Label values (after
            ``reduce_zero_label``) must lie in ``0..num_classes-1`` or be 255 (ignored).
            vitext's tools fill it in from the data set's classes (``vitext.apis.fill_label_ranges``);
            ``None`` checks nothing.
        **kwargs: mmseg's ``LoadAnnotations`` arguments (``reduce_zero_label``, ...).
    """

    def __init__(self, num_classes: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        seg = self._decode(path, results.get('img_path'))
        wide = np.unique(seg[(seg < 0) | (seg > 255)]).astype(np.int64)
        if wide.size:
            self._refuse_values(path, wide, f' (a label map of more than 8 bits: mmseg reads '
                                f'{wide[0]} as {wide[0] % 256})')
        img_shape = results.get('ori_shape')
        if seg.ndim != 2:
            raise CorruptDataError(f'label file {path!r} has shape {seg.shape}; expected a '
                                   'single-channel PNG of class indices')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise CorruptDataError(
                f'label file {path!r} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")!r} is {img_shape[0]}x{img_shape[1]}')
        seg = seg.astype(np.uint8)
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'LoadSegAnnotations has reduce_zero_label={self.reduce_zero_label}'
                             f' but its data set {results["reduce_zero_label"]}; set the same '
                             'in both (or leave it out of the transform)')
        if self.reduce_zero_label:  # 0 ("other") becomes ignored, classes 1..n become 0..n-1
            seg = np.where((seg == 0) | (seg == IGNORE_INDEX), np.uint8(IGNORE_INDEX), seg - 1)
        if results.get('label_map') is not None:  # a data set of a subset of the classes
            original = seg.copy()
            for old, new in results['label_map'].items():
                seg[original == old] = new
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')
        if self.num_classes is not None:
            self._check_label_range(path, seg)

    def _decode(self, path: str, img_path: Optional[str]) -> np.ndarray:
        """The label map in the file ``path`` with its values and every axis as stored.

        Args:
            path: the label file (read through mmengine's file backends, as mmseg reads it).
            img_path: its image, named when the file is missing.
        """
        try:
            seg = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                                   flag='unchanged', backend=self.imdecode_backend)
            if seg is None:  # OpenCV returns None where Pillow raises
                raise ValueError('no image found in the bytes')
        except FileNotFoundError:
            raise CorruptDataError(f'label file {path!r} does not exist (image: '
                                   f'{img_path!r})') from None
        except (TypeError, ValueError, OSError) as err:  # per decoder backend
            raise CorruptDataError(
                f'label file {path!r} could not be decoded as an image ({err}); expected a '
                'single-channel PNG of class indices') from None
        return seg

    def _check_label_range(self, path: str, seg: np.ndarray) -> None:
        n = self.num_classes
        bad = np.unique(seg[(seg >= n) & (seg != IGNORE_INDEX)])
        if bad.size:
            # Report the file's values: reduce_zero_label shifted them down by one.
            self._refuse_values(path, bad + 1 if self.reduce_zero_label else bad)

    def _refuse_values(self, path: str, values: np.ndarray, note: str = '') -> None:
        """Raise :class:`CorruptDataError` naming ``path``, its first values out of range and
        the values allowed.

        Args:
            path: the label file.
            values: its distinct values out of range, as the file holds them.
            note: text appended to the message (why these values cannot be read).
        """
        shown = ', '.join(str(v) for v in values[:10].tolist())
        more = f' (and {values.size - 10} more)' if values.size > 10 else ''
        n = self.num_classes
        if n is None:
            allowed = '0..255'
        elif self.reduce_zero_label:
            allowed = f'1..{n} for the {n} classes, 0 = ignored (reduce_zero_label=True)'
        else:
            allowed = f'0..{n - 1} for the {n} classes, {IGNORE_INDEX} = ignored'
        raise CorruptDataError(f'label file {path!r} holds value(s) {shown}{more}; '
                               f'expected {allowed}{note}')


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
