"""The ``vitext`` command (``python -m vitext``): its commands, their help next to the tools that
wrap them, and ``vitext export-config``, whose output mmseg's own tools/train.py trains."""
import os
import os.path as osp
import runpy
import sys
from importlib.metadata import entry_points

import mmseg
import pytest
from mmengine.config import Config

from conftest import ROOT, run_tool, tiny_seg_options
from vitext.cli import main

# Each command and the checkout tool that wraps it (None: the command alone).
TOOLS = {'train': 'tools/train.py', 'test': 'tools/test.py', 'robustness': 'tools/robustness.py',
         'make-data': 'tools/make_synthetic_data.py', 'convert': 'tools/convert_checkpoint.py',
         'deploy': 'tools/analysis/deploy.py', 'flops': 'tools/analysis/get_flops.py',
         'export-config': None}
CBVIT_DEMO = 'demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py'


def help_text(argv, capsys):
    """What ``main(argv)`` prints for ``--help`` (it exits 0 after printing)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_console_script_lists_every_command_on_one_line(capsys, monkeypatch):
    script, = entry_points(group='console_scripts', name='vitext')
    assert osp.isfile(osp.join(osp.dirname(sys.executable), 'vitext'))
    monkeypatch.setattr('sys.argv', ['vitext', '--help'])
    assert script.load()() == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()
              if line.startswith('  ')]
    assert listed == list(TOOLS)


@pytest.mark.parametrize('command', list(TOOLS))
def test_every_command_has_help(command, capsys):
    assert help_text([command, '--help'], capsys).startswith(f'usage: vitext {command} ')


@pytest.mark.parametrize('command', [c for c, tool in TOOLS.items() if tool])
def test_tool_and_command_print_the_same_help(command, capsys, monkeypatch):
    tool = TOOLS[command]
    monkeypatch.setattr('sys.argv', [tool, '--help'])
    with pytest.raises(SystemExit):
        runpy.run_path(osp.join(ROOT, tool), run_name='__main__')
    tool_help = capsys.readouterr().out
    assert tool_help == help_text([command, '--help'], capsys)


def test_tools_import_the_installed_vitext():
    """One rule for every tools/*.py: they import vitext as installed (pip -e, the wheel, whose
    copies live under vitext/.mim/tools/), as tools/train.py always did; six of them put the
    checkout first on sys.path. A checkout that is not installed runs them with PYTHONPATH=.
    (as tools/dist_train.sh does)."""
    import glob
    tools = sorted(glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True))
    assert len(tools) >= 10
    for path in tools:
        with open(path) as f:
            assert 'sys.path' not in f.read(), osp.relpath(path, ROOT)


def test_unknown_command_fails_with_one_line(capsys):
    assert main(['trian', 'config.py']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert "unknown command 'trian'" in err and "did you mean 'train'?" in err


def run_module(module, argv, monkeypatch):
    """``python -m module *argv`` in this process; returns its exit status."""
    monkeypatch.setattr('sys.argv', [module] + argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
    return exit_info.value.code


def test_python_m_vitext_exits_2_on_an_unknown_command(capsys, monkeypatch):
    assert run_module('vitext', ['frobnicate'], monkeypatch) == 2
    assert "vitext: unknown command 'frobnicate'" in capsys.readouterr().err


def test_python_m_vitext_make_data_writes_a_tiny_set(tmp_path, monkeypatch):
    assert run_module('vitext', ['make-data', '--out', str(tmp_path), '--which', 'ade',
                                 '--num-train', '2', '--num-val', '1', '--height', '32',
                                 '--width', '32'], monkeypatch) == 0
    root = tmp_path / 'ade' / 'ADEChallengeData2016'
    for split, count in (('training', 2), ('validation', 1)):
        assert len(os.listdir(root / 'images' / split)) == count
        assert len(os.listdir(root / 'annotations' / split)) == count
    assert not (tmp_path / 'coco').exists()


# In this process the module is imported already, which runpy warns about; `python -m` is not.
@pytest.mark.filterwarnings('ignore:.*found in sys.modules after import:RuntimeWarning')
def test_python_m_synthetic_module_is_the_make_data_command(capsys, monkeypatch):
    assert run_module('vitext.data.synthetic', ['--help'], monkeypatch) == 0
    assert capsys.readouterr().out.startswith('usage: vitext make-data ')


def test_mmseg_own_train_tool_trains_an_exported_vitext_config(ade_root, tmp_path):
    """A user's config on a ``vitext::`` base, exported, trains with mmseg's unmodified
    tools/train.py (which cannot read the ``vitext::`` base itself)."""
    user_config = tmp_path / 'my_cbvit.py'
    user_config.write_text(f"_base_ = ['vitext::{CBVIT_DEMO}']\nmodel = dict(decode_head=dict("
                           "channels=32))\n")
    exported = tmp_path / 'exported' / 'my_cbvit.py'
    assert main(['export-config', str(user_config), str(exported),
                 '--cfg-options', *tiny_seg_options(ade_root, max_iters=2)]) == 0
    assert 'vitext::' not in exported.read_text()
    assert Config.fromfile(str(exported)).model.decode_head.channels == 32  # the user's edit
    mmseg_train = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    run_tool([mmseg_train, str(exported), '--work-dir', str(tmp_path / 'work')], cwd=tmp_path)
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


def test_export_config_refuses_to_overwrite_its_input(tmp_path):
    config = tmp_path / 'my.py'
    config.write_text(f"_base_ = ['vitext::{CBVIT_DEMO}']\n")
    with pytest.raises(SystemExit, match='is the config being exported'):
        main(['export-config', str(config), str(config)])
    assert config.read_text() == f"_base_ = ['vitext::{CBVIT_DEMO}']\n"


@pytest.mark.parametrize('name', [
    'slide/cascade-mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py',  # mmdet:: bases, nested tuples
    'aft/aftconv-s-16h-k11_4xb256_in1k.py',  # mmpretrain:: bases
    'cb/upernet_cbvit-s_8xb2-160k_ade20k-512x512.py'])
def test_exported_config_holds_what_the_config_holds(name, tmp_path):
    user_config = tmp_path / 'my.py'
    user_config.write_text(f"_base_ = ['vitext::{name}']\n")
    assert main(['export-config', str(user_config), str(tmp_path / 'exported.py')]) == 0
    exported = Config.fromfile(str(tmp_path / 'exported.py'))
    assert exported.to_dict() == Config.fromfile(osp.join(ROOT, 'configs', name)).to_dict()
