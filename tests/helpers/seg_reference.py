"""Independent references for the segmentation end-to-end tests: the ADE20K metrics recomputed
with numpy from predicted and ground-truth label PNGs, and predictions of a checkpoint made
in-process through mmseg's own inference API (no vitext tool, runner or evaluator involved)."""
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
from PIL import Image

IGNORE = 255


def read_labels(folder: str) -> Dict[str, np.ndarray]:
    """``{file stem: label array}`` for every PNG in ``folder``."""
    return {osp.splitext(name)[0]: np.array(Image.open(osp.join(folder, name)))
            for name in sorted(os.listdir(folder)) if name.endswith('.png')}


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """ADE20K's label shift: 0 (other) is ignored, classes 1..150 become 0..149."""
    out = label.astype(np.int64) - 1
    out[label == 0] = IGNORE
    return out


def ade_metrics(preds: Dict[str, np.ndarray], gt_dir: str, num_classes: int = 150) -> dict:
    """mmseg's mIoU/mAcc/aAcc definitions computed directly: per-class intersection, union and
    label area summed over all images, IoU/Acc NaN for a class with no union/label, means over
    the other classes, in % rounded to 2 decimals as mmseg reports them. ``preds`` holds class
    indices 0..num_classes-1 per image stem."""
    gts = read_labels(gt_dir)
    assert sorted(preds) == sorted(gts), (sorted(preds), sorted(gts))
    inter, area_pred, area_gt = (np.zeros(num_classes, np.int64) for _ in range(3))
    for stem, pred in preds.items():
        gt = reduce_zero_label(gts[stem])
        assert pred.shape == gt.shape, (stem, pred.shape, gt.shape)
        keep = gt != IGNORE
        p, g = pred[keep].astype(np.int64), gt[keep]
        inter += np.bincount(p[p == g], minlength=num_classes)
        area_pred += np.bincount(p, minlength=num_classes)
        area_gt += np.bincount(g, minlength=num_classes)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = inter / (area_pred + area_gt - inter)
        acc = inter / area_gt
    def percent(value):  # mmseg's rounding: np.round(value * 100, 2)
        return float(np.round(value * 100, 2))

    return dict(aAcc=percent(inter.sum() / area_gt.sum()), mIoU=percent(np.nanmean(iou)),
                mAcc=percent(np.nanmean(acc)), IoU=iou * 100, Acc=acc * 100)


def saved_predictions(pred_dir: str) -> Dict[str, np.ndarray]:
    """Predictions written by ``tools/test.py --out DIR`` (mmseg stores class + 1 for ADE20K)."""
    return {stem: label.astype(np.int64) - 1 for stem, label in read_labels(pred_dir).items()}


def mmseg_predictions(config: str, checkpoint: str, img_dir: str,
                      cfg_options: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """Class-index predictions of ``checkpoint`` for every image in ``img_dir``, made with
    ``mmseg.apis.init_model`` / ``inference_model`` on CPU."""
    from mmseg.apis import inference_model, init_model

    from vitext.preflight import load_config
    cfg = load_config(config, cfg_options)
    # inference_model drops mmseg's LoadAnnotations only; vitext's loader is its stand-in.
    cfg.test_pipeline = [t for t in cfg.test_pipeline if t['type'] != 'LoadSegAnnotations']
    model = init_model(cfg, checkpoint, device='cpu')
    # One image at a time, as tools/test.py's data loader feeds them.
    return {osp.splitext(name)[0]: inference_model(model, osp.join(img_dir, name))
            .pred_sem_seg.data[0].numpy().astype(np.int64) for name in sorted(os.listdir(img_dir))}
