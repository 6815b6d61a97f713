"""Data-pipeline transforms that fail with a message naming the offending file."""
import io
from typing import Optional

import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

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
    44, a valid class; values are checked as the file holds them. Here each case raises
    :class:`CorruptDataError` naming the file and what was expected.

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
        wide = self._values_beyond_8_bits(path)
        if wide.size:
            self._refuse_values(path, wide, f' (a label map of more than 8 bits: mmseg reads '
                                f'{wide[0]} as {wide[0] % 256})')
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

    def _values_beyond_8_bits(self, path: str) -> np.ndarray:
        """The distinct values of the label file ``path`` that an 8-bit map cannot hold, as
        the file holds them (empty for an 8-bit file, whose header alone is read).

        Args:
            path: the label file (read through mmengine's file backends, as mmseg reads it).
        """
        try:
            with Image.open(io.BytesIO(fileio.get(path, backend_args=self.backend_args))) as image:
                if not (image.mode in ('I', 'F') or image.mode.startswith('I;16')):
                    return np.empty(0, np.int64)
                values = np.unique(np.asarray(image))
        except OSError:  # missing or not decodable: mmseg's loader has named the file already
            return np.empty(0, np.int64)
        return values[(values < 0) | (values > 255)].astype(np.int64)

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
