"""The demo recipe learns the synthetic set: mIoU far above chance after a short CPU run.

The demo's own schedule (120 iterations of batch 8) on another draw of the set (seed 3). Measured:
see the assert's comment. Chance is about 100/12 ~ 8 % IoU per class for the 12 classes drawn."""
from conftest import DEMO_SEG, last_logged, run_tool


def test_demo_recipe_learns_synthetic_ade(tmp_path):
    from vitext.data.synthetic import make_ade20k
    root = make_ade20k(str(tmp_path / 'data'), num_train=200, num_val=30, seed=3)
    opts = [f'{loader}.dataset.data_root={root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
             'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
             'default_hooks.checkpoint.interval=1000']  # the demo's 120 iterations, no checkpoint
    run_tool(['tools/train.py', DEMO_SEG, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
              *opts])
    # The validation at the last iteration (tools/test.py on a checkpoint: tests/test_demo.py).
    miou = last_logged(tmp_path / 'work', 'mIoU')['mIoU']
    print(f'mIoU after 120 iterations: {miou}')
    assert miou > 25, miou
