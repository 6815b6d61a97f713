"""Data-pipeline transforms that fail with a message naming the offending file."""
from typing import Optional

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations

# The label value that mmseg's losses and metrics ignore (reduce_zero_label maps 0 to it).
IGNORE_INDEX = 255


class CorruptDataError(ValueError):
    """An image or label file on disk cannot be used."""


class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that names the label file when it cannot be used.

    mmseg fails deep inside numpy ("'NoneType' object has no attribute 'squeeze'") on a label
    PNG that does not decode, trains silently on one whose size differs from its image, and
    uses label values beyond the classes (an ``IndexError`` in the loss when training, a wrong
    mIoU when testing). Here each case raises :class:`CorruptDataError` naming the file and
    what was expected.

    Args:
        num_classes (int, optional): the data set's number of classes. Label values (after
            ``reduce_zero_label``) must lie in ``0..num_classes-1`` or be 255 (ignored).
            vitext's tools fill it in from the data set's classes (``vitext.apis.check_data``);
            ``None`` checks nothing.
        **kwargs: mmseg's ``LoadAnnotations`` arguments (``reduce_zero_label``, ...).
    """

    def __init__(self, num_classes: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise CorruptDataError(f'label file {path!r} does not exist (image: '
                                   f'{results.get("img_path")!r})') from None
        except (AttributeError, TypeError, ValueError, OSError) as err:  # per decoder backend
            raise CorruptDataError(
                f'label file {path!r} could not be decoded as an image ({err}); expected a '
                'single-channel PNG of class indices') from None
        seg = results['gt_seg_map']
        img_shape = results.get('ori_shape')
        if img_shape is not None and seg.ndim < 2 and seg.size == img_shape[0] * img_shape[1]:
            # mmseg squeezes the decoded map: a 1-pixel-high or -wide label loses that side.
            seg = results['gt_seg_map'] = seg.reshape(img_shape[:2])
        if seg.ndim != 2:
            raise CorruptDataError(f'label file {path!r} has shape {seg.shape}; expected a '
                                   'single-channel PNG of class indices')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise CorruptDataError(
                f'label file {path!r} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")!r} is {img_shape[0]}x{img_shape[1]}')
        if self.num_classes is not None:
            self._check_label_range(path, seg)

    def _check_label_range(self, path: str, seg: np.ndarray) -> None:
        n = self.num_classes
        bad = np.unique(seg[(seg >= n) & (seg != IGNORE_INDEX)])
        if bad.size == 0:
            return
        if self.reduce_zero_label:
            values = ', '.join(str(v + 1) for v in bad[:10].tolist())
            allowed = f'1..{n} for the {n} classes, 0 = ignored (reduce_zero_label=True)'
        else:
            values = ', '.join(str(v) for v in bad[:10].tolist())
            allowed = f'0..{n - 1} for the {n} classes, {IGNORE_INDEX} = ignored'
        more = f' (and {bad.size - 10} more)' if bad.size > 10 else ''
        raise CorruptDataError(f'label file {path!r} holds value(s) {values}{more}; '
                               f'expected {allowed}')
