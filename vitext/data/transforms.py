"""Data-pipeline transforms that fail with a message naming the offending file."""
from mmseg.datasets.transforms import LoadAnnotations


class CorruptDataError(ValueError):
    """An image or label file on disk cannot be used."""


class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that names the label file when it cannot be used.

    mmseg fails deep inside numpy ("'NoneType' object has no attribute 'squeeze'") on a label
    PNG that does not decode, and trains silently on one whose size differs from its image.
    Here each case raises :class:`CorruptDataError` naming the file and what was expected.
    """

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
        if seg.ndim != 2:
            raise CorruptDataError(f'label file {path!r} has shape {seg.shape}; expected a '
                                   'single-channel PNG of class indices')
        img_shape = results.get('ori_shape')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise CorruptDataError(
                f'label file {path!r} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")!r} is {img_shape[0]}x{img_shape[1]}')
