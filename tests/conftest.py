"""Shared fixtures: small synthetic data sets and a runner for the project's CLI tools.

Helpers are imported by module name from tests/helpers (never as ``tests.x``: mmseg's wheel
installs a top-level package called ``tests``)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

# Under pytest-xdist each worker keeps to one core, and so do the tools it starts: OpenMP threads
# of two workers (and of their tools) spinning on two cores wait on each other, and a gradient
# check of tiny tensors took minutes instead of a second.
if int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')) > 1:
    os.environ['OMP_NUM_THREADS'] = '1'
    import torch
    torch.set_num_threads(1)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
HELPERS = osp.join(ROOT, 'tests', 'helpers')
sys.path.insert(0, HELPERS)  # reference helpers for the tests (seg_reference, ...)
DEMO_SEG = osp.join(ROOT, 'configs', 'demo', 'upernet_r18-mini_4xb8-120it_synthetic-ade20k-128x128.py')
DEMO_DET = osp.join(ROOT, 'configs', 'demo', 'mask-rcnn_r18-mini_fpn_2xb4-4e_synthetic-coco.py')


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    """A small synthetic ADE20K (24 train / 6 val images, 64x64)."""
    from vitext.data.synthetic import make_ade20k
    return make_ade20k(str(tmp_path_factory.mktemp('ade')), num_train=24, num_val=6,
                       height=64, width=64, seed=1)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory):
    """A small synthetic COCO instances set (16 train / 4 val images, 96x128)."""
    from vitext.data.synthetic import make_coco
    return make_coco(str(tmp_path_factory.mktemp('coco')), num_train=16, num_val=4,
                     height=96, width=128, seed=1)


def last_logged(work_dir, key):
    """The last record holding ``key`` in the scalars.json that mmengine's runner wrote under
    ``work_dir`` (one run there): e.g. the validation after the last training iteration."""
    scalars, = glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        return [record for record in map(json.loads, f) if key in record][-1]


def tiny_seg_options(data_root, max_iters=4, ckpt_interval=2):
    """--cfg-options turning the demo config into a seconds-long CPU run on ``data_root``."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
        f'default_hooks.checkpoint.interval={ckpt_interval}',
        'default_hooks.checkpoint.max_keep_ckpts=10', 'default_hooks.logger.interval=1',
    ]


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


def train_demo(config, work, options):
    """tools/train.py on ``config`` into ``work`` with these --cfg-options; returns ``work``."""
    run_tool(['tools/train.py', config, '--work-dir', str(work), '--cfg-options', *options])
    return work


# Dropout draws random numbers in the iterations a resumed run skips.
NO_DROPOUT = ['model.decode_head.dropout_ratio=0', 'model.auxiliary_head.dropout_ratio=0']


# One short training run per model, shared by every test that only needs a trained work dir or
# checkpoint (the e2e, robustness, crash-safety, checkpoint and analysis tests): each run costs
# tens of seconds of the suite, most of it process start and the runner's setup.
@pytest.fixture(scope='session')
def seg_demo_run(ade_root, tmp_path_factory):
    """DEMO_SEG trained 4 iterations with a checkpoint after each (iter_1.pth .. iter_4.pth),
    dropout off so that a resumed run reproduces it exactly: the work dir. Read only."""
    options = tiny_seg_options(ade_root, max_iters=4, ckpt_interval=1) + NO_DROPOUT
    return train_demo(DEMO_SEG, tmp_path_factory.mktemp('seg_demo_run'), options)


@pytest.fixture(scope='session')
def mini_checkpoint(ade_root, tmp_path_factory):
    """``mini_checkpoint(config)``: iter_2.pth of a 2-iteration run of that demo config (trained
    on first use, then shared)."""
    checkpoints = {}

    def checkpoint(config):
        config = osp.abspath(config)
        if config not in checkpoints:
            work = tmp_path_factory.mktemp(osp.basename(config).split('_')[1])
            train_demo(config, work, tiny_seg_options(ade_root, max_iters=2, ckpt_interval=2))
            checkpoints[config] = work / 'iter_2.pth'
        return checkpoints[config]
    return checkpoint


@pytest.fixture(scope='session')
def mask_rcnn_run(coco_root, tmp_path_factory):
    """DEMO_DET trained one epoch (epoch_1.pth, validated after it): the work dir. Read only."""
    return train_demo(DEMO_DET, tmp_path_factory.mktemp('mask_rcnn_run'), det_options(coco_root))


# Runs each tools/*.py command of the JSON list in argv[1] as ``python TOOL ARGS`` would.
_TOOLS_SCRIPT = ('import json, runpy, sys\n'
                 'for argv in json.loads(sys.argv[1]):\n'
                 '    sys.argv = argv\n'
                 '    runpy.run_path(argv[0], run_name="__main__")\n')


def run_tools(commands, timeout_each=900):
    """Run several tools/*.py commands (argument lists, tool first) one after the other in one
    interpreter, whose start-up (imports: seconds of CPU) is then paid once; stops at the first
    that fails. Returns the CompletedProcess, with the output of all of them. The runs share
    mmengine's named instances, the configs' visualizer ('visualizer') among them: a later run
    of the same task may write its vis_data/scalars.json into an earlier run's log dir, so read
    no run's scalars (last_logged) after this."""
    return run_tool([sys.executable, '-c', _TOOLS_SCRIPT, json.dumps(list(map(list, commands)))],
                    timeout=timeout_each * len(commands))


def run_main(main, argv, capsys):
    """A command's ``main(argv)`` (e.g. ``vitext.cli.deploy.main``) in this process: (exit
    status, stdout, stderr). Where a test needs no process of its own, this saves the seconds
    a new interpreter spends importing torch and the OpenMMLab stack."""
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_tool(args, cwd=ROOT, env=None, timeout=900, check=True):
    """Run a command with this interpreter's environment; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = os.pathsep.join([ROOT, HELPERS, full_env.get('PYTHONPATH', '')])
    full_env.setdefault('OMP_NUM_THREADS', '2')  # one per pytest-xdist worker: see the top
    full_env.update(env or {})
    if args[0].endswith('.py'):
        args = [sys.executable] + list(args)
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'command failed ({proc.returncode}): {" ".join(args)}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc
