"""Detection end to end on synthetic COCO: a tiny Mask R-CNN trains, then COCO bbox+segm AP that
pycocotools, run here on the dumped predictions, confirms; Slide-PVT in deploy form predicts and
scores as its training form."""
import json
import os.path as osp

import numpy as np
from det_reference import coco_ap, load_predictions

from conftest import DEMO_DET, ROOT, det_options, run_tool, run_tools
from vitext.data.synthetic import default_coco_classes

AP_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')


def test_mask_rcnn_trains_and_reports_coco_ap(mask_rcnn_run, coco_root, tmp_path):
    ckpt = mask_rcnn_run / 'epoch_1.pth'  # tools/train.py, one epoch (conftest)
    assert ckpt.is_file()
    out = tmp_path / 'preds.pkl'
    proc = run_tool(['tools/test.py', DEMO_DET, str(ckpt), '--work-dir', str(tmp_path / 'test'),
                     '--out', str(out), '--cfg-options', *det_options(coco_root)])
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    assert 'coco/bbox_mAP' in proc.stdout
    assert len(load_predictions(str(out))) == 4
    # The JSON's AP is COCOeval's on the dumped predictions (mmdet rounds to 3 decimals).
    reference = coco_ap(str(out), f'{coco_root}/annotations/instances_val2017.json',
                        default_coco_classes())
    for key in AP_KEYS:
        assert metrics[f'coco/{key}'] == round(reference[key], 3), key
    # One epoch of training already finds some objects: the comparison is not of zeros.
    assert reference['bbox_mAP_50'] > 0 and reference['segm_mAP_50'] > 0, reference


def test_slide_pvt_mask_rcnn_trains_and_tests_in_deploy_form(coco_root, tmp_path):
    config = osp.join(ROOT, 'configs/demo/mask-rcnn_slide-pvt-mini_fpn_2xb4-4e_synthetic-coco.py')
    opts = det_options(coco_root)
    train = ['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *opts]
    scores, preds = {}, {}
    for form, extra in (('train', []), ('deploy', ['--deploy'])):
        out = tmp_path / f'{form}.pkl'
        test = ['tools/test.py', config, str(tmp_path / 'epoch_1.pth'), *extra,
                '--work-dir', str(tmp_path / form), '--out', str(out), '--cfg-options', *opts]
        # Training and the training-form test share one interpreter (one start-up); training
        # switches nothing to deploy form, so the output tells the same.
        proc = run_tools([train, test] if form == 'train' else [test])
        assert ('switched to deploy form: backbone' in proc.stdout + proc.stderr) == bool(extra)
        scores[form] = json.loads((tmp_path / form / 'test_results.json').read_text())['metrics']
        preds[form] = load_predictions(str(out))
    assert scores['deploy'] == scores['train']
    # The same detections; the 10 best of each image are compared, since the order of the
    # near-equal low scores that fill the rest (score_thr=0) may swap at the last bit.
    for trained, deployed in zip(preds['train'], preds['deploy']):
        a, b = (pred['pred_instances'] for pred in (trained, deployed))
        top_a, top_b = (np.argsort(-np.asarray(p['scores']), kind='stable')[:10] for p in (a, b))
        for key, atol in (('labels', 0), ('bboxes', 1e-3), ('scores', 1e-5)):
            np.testing.assert_allclose(np.asarray(b[key])[top_b], np.asarray(a[key])[top_a],
                                       rtol=0, atol=atol, err_msg=key)
