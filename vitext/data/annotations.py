"""Checks of annotation files before a run, so that a damaged file is named instead of failing
deep inside pycocotools or mmdet (``KeyError: 'images'``, a ``KeyError`` on a category id, a
``JSONDecodeError`` with no file name)."""
import json
import math
from typing import Any

from .transforms import CorruptDataError


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_coco_annotations(path: str) -> None:
    """``path`` must be a COCO instances file: a JSON object with ``images``, ``annotations``
    and ``categories`` lists, every annotation naming a listed image and category and, if it
    has one, a box ``[x, y, w, h]`` of finite numbers with w, h >= 0. Raises
    :class:`CorruptDataError` naming the file and the first problem."""
    try:
        with open(path, 'rb') as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise CorruptDataError(f'annotation file {path!r} is not valid JSON ({err}); is it '
                               'truncated?') from None
    except UnicodeDecodeError as err:
        raise CorruptDataError(f'annotation file {path!r} is not UTF-8 JSON ({err})') from None
    except RecursionError:
        raise CorruptDataError(f'annotation file {path!r} nests deeper than Python reads '
                               '(RecursionError); expected a COCO instances file') from None
    if not isinstance(data, dict):
        raise CorruptDataError(f'annotation file {path!r} holds a JSON {type(data).__name__}; '
                               'expected a COCO object with images, annotations, categories')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            found = 'missing' if key not in data else f'a {type(data[key]).__name__}'
            raise CorruptDataError(f'annotation file {path!r}: "{key}" is {found}; expected a '
                                   'list (COCO instances format)')
    image_ids = set()
    for i, image in enumerate(data['images']):
        if not isinstance(image, dict) or 'id' not in image or 'file_name' not in image:
            raise CorruptDataError(f'annotation file {path!r}: images[{i}] = {image!r:.120}; '
                                   'expected an object with "id" and "file_name"')
        image_ids.add(image['id'])
    category_ids = set()
    for i, category in enumerate(data['categories']):
        if not isinstance(category, dict) or 'id' not in category:
            raise CorruptDataError(f'annotation file {path!r}: categories[{i}] = '
                                   f'{category!r:.120}; expected an object with "id" and "name"')
        category_ids.add(category['id'])
    for i, ann in enumerate(data['annotations']):
        where = f'annotation file {path!r}: annotations[{i}]'
        if not isinstance(ann, dict):
            raise CorruptDataError(f'{where} = {ann!r:.120}; expected an object')
        if ann.get('image_id') not in image_ids:
            raise CorruptDataError(f'{where} (id {ann.get("id")}) has image_id '
                                   f'{ann.get("image_id")!r}, which is not among the images')
        if ann.get('category_id') not in category_ids:
            raise CorruptDataError(f'{where} (id {ann.get("id")}) has category_id '
                                   f'{ann.get("category_id")!r}, which is not among the '
                                   f'categories {sorted(category_ids)[:20]}')
        box = ann.get('bbox')
        if box is not None and not (isinstance(box, list) and len(box) == 4
                                    and all(map(_is_number, box)) and box[2] >= 0
                                    and box[3] >= 0):
            raise CorruptDataError(f'{where} (id {ann.get("id")}) has bbox {box!r:.120}; '
                                   'expected [x, y, width, height] of finite numbers with '
                                   'width, height >= 0')
