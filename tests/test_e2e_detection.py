"""Detection end to end on synthetic COCO: a tiny Mask R-CNN trains, then COCO bbox+segm AP."""
import json
import pickle

import os.path as osp

from conftest import DEMO_DET, ROOT, det_options, run_tool


def test_mask_rcnn_trains_and_reports_coco_ap(coco_root, tmp_path):
    run_tool(['tools/train.py', DEMO_DET, '--work-dir', str(tmp_path), '--cfg-options',
              *det_options(coco_root)])
    ckpt = tmp_path / 'epoch_1.pth'
    assert ckpt.is_file()
    out = tmp_path / 'preds.pkl'
    proc = run_tool(['tools/test.py', DEMO_DET, str(ckpt), '--work-dir', str(tmp_path / 'test'),
                     '--out', str(out), '--cfg-options', *det_options(coco_root)])
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0 <= metrics[key] <= 1, key
    assert 'coco/bbox_mAP' in proc.stdout
    with open(out, 'rb') as f:  # our own file, written by mmdet's DumpDetResults
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]


def test_slide_pvt_mask_rcnn_trains_and_tests_in_deploy_form(coco_root, tmp_path):
    config = osp.join(ROOT, 'configs/demo/mask-rcnn_slide-pvt-mini_fpn_2xb4-4e_synthetic-coco.py')
    run_tool(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options',
              *det_options(coco_root)])
    proc = run_tool(['tools/test.py', config, str(tmp_path / 'epoch_1.pth'), '--deploy',
                     '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                     *det_options(coco_root)])
    assert 'switched to deploy form: backbone' in proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    assert 0 <= metrics['coco/bbox_mAP'] <= 1
