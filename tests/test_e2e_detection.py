"""Detection end to end on synthetic COCO: a tiny Mask R-CNN trains, then COCO bbox+segm AP."""
import json
import pickle

import os.path as osp

from conftest import DEMO_DET, ROOT, run_tool


def det_options(root):
    ann = f'{root}/annotations/instances_val2017.json'
    opts = [f'{loader}.dataset.data_root={root}/' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += [f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader',
                                               'test_dataloader')
             for key in ('num_workers=0', 'persistent_workers=False')]
    return opts + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
                   'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1',
                   # One epoch of training scores below mmdet's 0.05 threshold; keep every box
                   # so that COCO evaluation has predictions to score.
                   'model.test_cfg.rcnn.score_thr=0.0',
                   'default_hooks.logger.interval=1']


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
