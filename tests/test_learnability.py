"""The demo recipe learns the synthetic set: mIoU far above chance after a short CPU run.

The demo's recipe (model, batch 8, lr, warm-up and poly decay) over half its schedule: 60 of its
120 iterations, the decay ending there, on another draw of the set (seed 3). Measured: see the
assert's comment. Chance is about 100/12 ~ 8 % IoU per class for the 12 classes drawn."""
from conftest import DEMO_SEG, last_logged, run_tool

# Half the demo's 120 iterations: far above chance already (measured below), in half the time.
ITERS = 60


def test_demo_recipe_learns_synthetic_ade(tmp_path):
    from vitext.data.synthetic import make_ade20k
    root = make_ade20k(str(tmp_path / 'data'), num_train=200, num_val=30, seed=3)
    opts = [f'{loader}.dataset.data_root={root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
             'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
             'default_hooks.checkpoint.interval=1000',  # no checkpoint
             f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
             f'param_scheduler.1.end={ITERS}']
    run_tool(['tools/train.py', DEMO_SEG, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
              *opts])
    # The validation at the last iteration (tools/test.py on a checkpoint: tests/test_demo.py).
    miou = last_logged(tmp_path / 'work', 'mIoU')['mIoU']
    print(f'mIoU after {ITERS} iterations: {miou}')
    # Set seeds 3, 4, 5: 29.9, 27.8, 26.9; with the learning rate 0 (nothing learnt): 0.02.
    assert miou > 25, miou
