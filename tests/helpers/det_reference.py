"""Independent reference for the detection end-to-end tests: COCO AP of the raw predictions that
``tools/test.py --out preds.pkl`` dumps, scored by pycocotools' COCOeval directly (no mmdet
evaluator involved)."""
import contextlib
import io
import json
import pickle
from typing import Dict, List, Sequence

import numpy as np


def load_predictions(path: str) -> List[dict]:
    with open(path, 'rb') as f:  # our own file, written by mmdet's DumpDetResults
        return pickle.load(f)


def coco_results(preds: Sequence[dict], gt: dict, classes: Sequence[str]) -> Dict[str, list]:
    """COCO result lists for 'bbox' and 'segm': boxes as x, y, w, h; label i is the category
    named ``classes[i]`` in the ground-truth file."""
    cat_id = {c['name']: c['id'] for c in gt['categories']}
    out = dict(bbox=[], segm=[])
    for pred in preds:
        inst = pred['pred_instances']
        for box, score, label, mask in zip(np.asarray(inst['bboxes']),
                                           np.asarray(inst['scores']),
                                           np.asarray(inst['labels']), inst['masks']):
            x1, y1, x2, y2 = (float(v) for v in box)
            common = dict(image_id=int(pred['img_id']), score=float(score),
                          category_id=cat_id[classes[int(label)]])
            out['bbox'].append(dict(common, bbox=[x1, y1, x2 - x1, y2 - y1]))
            counts = mask['counts']
            out['segm'].append(dict(common, segmentation=dict(
                size=list(mask['size']),
                counts=counts.decode() if isinstance(counts, bytes) else counts)))
    return out


def coco_ap(pkl: str, ann_file: str, classes: Sequence[str]) -> Dict[str, float]:
    """``{'bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50'}`` from COCOeval at full
    precision."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with open(ann_file) as f:
        gt_json = json.load(f)
    results = coco_results(load_predictions(pkl), gt_json, classes)
    scores = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        for iou_type, dets in results.items():
            evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            scores[f'{iou_type}_mAP'] = float(evaluator.stats[0])
            scores[f'{iou_type}_mAP_50'] = float(evaluator.stats[1])
    return scores
