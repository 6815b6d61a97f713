"""Segmentation metrics that keep their per-class results."""
from collections import OrderedDict
from typing import Dict, Optional

import numpy as np
from mmseg.evaluation.metrics import IoUMetric


class PerClassIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` (same summary, same printed table) that also keeps the per-class
    values in :attr:`per_class`, ``{class name: {'IoU': %, 'Acc': %, ...}}``, so tools can write
    them out (``tools/test.py`` saves them as JSON). Classes absent from both ground truth and
    prediction are NaN, as in mmseg, and written as ``null``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_class: Optional[Dict[str, Dict[str, float]]] = None

    def total_area_to_metrics(self, *args, **kwargs) -> OrderedDict:
        ret = IoUMetric.total_area_to_metrics(*args, **kwargs)
        names = self.dataset_meta['classes']
        self.per_class = {
            name: {key: (None if np.isnan(val[i]) else round(float(val[i]) * 100, 2))
                   for key, val in ret.items() if key != 'aAcc'}
            for i, name in enumerate(names)}
        return ret
