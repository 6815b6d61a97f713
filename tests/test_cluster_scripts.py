"""The cluster launch scripts (tools/slurm_*.sh, tools/dist_*.sh) hand every argument on as it
was given and ask Slurm for the GPUs the job uses. A recorder program placed first on PATH
stands in for ``srun`` (and for the interpreter of the torchrun scripts): it writes the argv it
receives, NUL-separated, to a file, so each argument's boundaries can be checked."""
import os
import os.path as osp
import stat
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools')
CONFIG_WITH_SPACE = '/data/my configs/upernet r18.py'
OPTIONS_WITH_SPACE = ['--cfg-options', "work_dir_note=x y", 'a=b']


def write_recorder(folder, name):
    """An executable ``folder/name`` that writes its arguments, NUL-separated, to
    ``folder/name.argv`` and exits 0.

    Args:
        folder: folder for the program and its record (placed first on PATH by the caller).
        name: program name, e.g. ``srun``.
    """
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write('#!/usr/bin/env bash\nprintf \'%s\\0\' "$@" > "$0.argv"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def run_script(tmp_path, script, args, **env):
    """Run ``tools/<script>`` with a recording ``srun`` and interpreter; returns the argv the
    first of them received (srun's for the Slurm scripts, the interpreter's otherwise).

    Args:
        tmp_path: a fresh folder for the recorders.
        script: file name under tools/.
        args: the script's command-line arguments.
        **env: extra environment variables (GPUS, GPUS_PER_NODE, SRUN_ARGS, ...).
    """
    folder = str(tmp_path)
    srun = write_recorder(folder, 'srun')
    python = write_recorder(folder, 'python-recorder')
    full_env = dict(os.environ, PATH=folder + os.pathsep + os.environ['PATH'], PYTHON=python,
                    **env)
    proc = subprocess.run(['bash', osp.join(TOOLS, script), *args], env=full_env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    record = srun + '.argv' if osp.exists(srun + '.argv') else python + '.argv'
    with open(record) as f:
        return f.read().split('\0')[:-1]


def option(argv, name):
    """The value of ``--name=value`` in ``argv`` (exactly one such option must be there)."""
    values = [a.split('=', 1)[1] for a in argv if a.startswith(name + '=')]
    assert len(values) == 1, (name, argv)
    return values[0]


def test_slurm_train_keeps_arguments_whole(tmp_path):
    argv = run_script(tmp_path, 'slurm_train.sh',
                      ['gpu part', 'job name', CONFIG_WITH_SPACE, *OPTIONS_WITH_SPACE])
    assert argv[:2] == ['-p', 'gpu part'] and option(argv, '--job-name') == 'job name'
    script = argv.index(osp.join(TOOLS, 'train.py'))
    assert argv[script - 2:script] == [str(tmp_path / 'python-recorder'), '-u']
    assert argv[script + 1:] == [CONFIG_WITH_SPACE, '--launcher=slurm', *OPTIONS_WITH_SPACE]


def test_slurm_test_keeps_arguments_whole(tmp_path):
    checkpoint = '/data/run 1/iter_40.pth'
    argv = run_script(tmp_path, 'slurm_test.sh',
                      ['gpu', 'eval', CONFIG_WITH_SPACE, checkpoint, *OPTIONS_WITH_SPACE])
    script = argv.index(osp.join(TOOLS, 'test.py'))
    assert argv[script + 1:] == [CONFIG_WITH_SPACE, checkpoint, '--launcher=slurm',
                                 *OPTIONS_WITH_SPACE]


@pytest.mark.parametrize('gpus,tasks_per_node', [('2', '2'), ('16', '8'), ('8', '8')])
def test_slurm_asks_for_the_gpus_it_uses(tmp_path, gpus, tasks_per_node):
    argv = run_script(tmp_path, 'slurm_train.sh', ['gpu', 'job', 'cfg.py'],
                      GPUS=gpus, GPUS_PER_NODE='8')
    assert option(argv, '--gres') == f'gpu:{tasks_per_node}'
    assert option(argv, '--ntasks-per-node') == tasks_per_node
    assert option(argv, '--ntasks') == gpus


def test_slurm_extra_srun_options_are_separate_words(tmp_path):
    argv = run_script(tmp_path, 'slurm_train.sh', ['gpu', 'job', 'cfg.py'],
                      SRUN_ARGS='--quotatype=auto --time=10')
    assert '--quotatype=auto' in argv and '--time=10' in argv


@pytest.mark.parametrize('name,value', [('GPUS', '0'), ('GPUS', 'two'), ('GPUS_PER_NODE', '-1')])
def test_slurm_refuses_a_gpu_count_that_is_not_positive(tmp_path, name, value):
    write_recorder(str(tmp_path), 'srun')
    proc = subprocess.run(['bash', osp.join(TOOLS, 'slurm_train.sh'), 'gpu', 'job', 'cfg.py'],
                          env=dict(os.environ, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
                                   **{name: value}),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert f"{name} must be a positive whole number, got '{value}'" in proc.stderr
    assert not osp.exists(tmp_path / 'srun.argv')


def test_slurm_scripts_refuse_missing_positionals(tmp_path):
    for script, count in (('slurm_train.sh', 3), ('slurm_test.sh', 4)):
        proc = subprocess.run(['bash', osp.join(TOOLS, script), *['x'] * (count - 1)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and 'usage:' in proc.stderr, (script, proc.stderr)


@pytest.mark.parametrize('script,positionals,tool', [
    ('dist_train.sh', [CONFIG_WITH_SPACE, '2'], 'train.py'),
    ('dist_test.sh', [CONFIG_WITH_SPACE, '/ckpt dir/a.pth', '2'], 'test.py')])
def test_dist_scripts_keep_arguments_whole(tmp_path, script, positionals, tool):
    argv = run_script(tmp_path, script, [*positionals, *OPTIONS_WITH_SPACE],
                      MASTER_ADDR='127.0.0.1')
    at = argv.index(osp.join(TOOLS, tool))
    files = [p for p in positionals if not p.isdigit()]
    assert argv[at + 1:] == [*files, '--launcher', 'pytorch', *OPTIONS_WITH_SPACE]
    assert '--nproc_per_node=2' in argv
