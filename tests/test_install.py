"""vitext as a user installs it: a wheel built from the checkout, installed outside it.

The wheel is built with pip (no build isolation, no network) from a copy of the checkout, installed
with ``--no-deps --target`` into a scratch folder, and used from a directory outside the checkout
with only that folder ahead of the environment's site-packages (which may hold an editable vitext:
the test asserts the wheel's copy is the one imported)."""
import importlib
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
from packaging.requirements import Requirement

from conftest import ROOT

PACKAGE = osp.join(ROOT, 'vitext')
MIM_FOLDERS = ('configs', 'tools')  # what setup.py copies into vitext/.mim
MIM_LEFT_OUT = {'setup_env.sh', 'run_tests.sh', 'demo.sh', 'gpu'}  # checkout-only tools
# The packaged demo config the wheel is exercised with, narrowed further for a quick forward.
USER_CONFIG = """
_base_ = ['vitext::demo/upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py']
model = dict(
    backbone=dict(arch=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))),
    decode_head=dict(in_channels=[16, 32, 64, 128], channels=16),
    auxiliary_head=dict(in_channels=64, channels=16))
"""


def package_folders():
    """Every folder under vitext/ holding .py files, as a dotted package name."""
    found = []
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d not in ('__pycache__', '.mim')]
        if any(f.endswith('.py') for f in files):
            found.append(osp.relpath(root, ROOT).replace(os.sep, '.'))
    return sorted(found)


def test_every_package_folder_has_an_init():
    missing = [name for name in package_folders()
               if not osp.isfile(osp.join(ROOT, *name.split('.'), '__init__.py'))]
    assert not missing, f'folders with modules but no __init__.py (left out of a wheel): {missing}'


def checkout_only(folder, names):
    """What a copy of the checkout leaves out: caches, and at the top its environment, outputs
    and data (``vitext/data`` is a package)."""
    left_out = {'__pycache__', '.pytest_cache'}
    if osp.samefile(folder, ROOT):
        left_out |= {'.git', '.venv', 'build', 'dist', 'work_dirs', 'data'}
        left_out |= {n for n in names if n.endswith('.egg-info')}
    return left_out & set(names)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """vitext's wheel, built from a copy of the checkout (a build in place would leave build/
    behind, and a stale build/lib could hide a module missing from the checkout)."""
    work = tmp_path_factory.mktemp('wheel')
    source = work / 'src'
    shutil.copytree(ROOT, source, symlinks=True, ignore=checkout_only)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '--no-index', '-w', str(work / 'dist'), str(source)], check=True)
    (path,) = (work / 'dist').glob('vitext-*.whl')
    return str(path)


def wheel_metadata(path):
    with zipfile.ZipFile(path) as z:
        (name,) = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')]
        return z.read(name).decode()


def test_wheel_holds_every_package_and_the_configs(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for package in package_folders():
        folder = osp.join(ROOT, *package.split('.'))
        for f in os.listdir(folder):
            if f.endswith('.py'):
                assert f'{package.replace(".", "/")}/{f}' in names, f'{package}/{f} not in the wheel'
    for folder in MIM_FOLDERS:
        for root, dirs, files in os.walk(osp.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if d not in MIM_LEFT_OUT and d != '__pycache__']
            for f in files:
                if f in MIM_LEFT_OUT or f.endswith('.pyc'):
                    continue
                rel = osp.relpath(osp.join(root, f), ROOT).replace(os.sep, '/')
                assert f'vitext/.mim/{rel}' in names, f'{rel} not under vitext/.mim in the wheel'
    assert not any(n.startswith('vitext/.mim/tools/gpu/') for n in names)


def wheel_requirements(path, extra=None):
    """The wheel's Requires-Dist by distribution name: the unconditional ones, plus those of
    ``extra`` when given."""
    requires = {}
    for line in wheel_metadata(path).splitlines():
        if line.startswith('Requires-Dist:'):
            req = Requirement(line.split(':', 1)[1].strip())
            if req.marker is None or (extra and req.marker.evaluate({'extra': extra})):
                requires.setdefault(req.name, []).append(req)
    return requires


UPSTREAM_STACK = ('mmcv', 'mmengine', 'mmsegmentation')
FORK_STACK = ('onedl-mmcv', 'onedl-mmengine', 'onedl-mmsegmentation')


def test_wheel_metadata_states_ranges_not_pins(wheel):
    """Installing vitext must not replace the user's torch/mmcv/mmseg/mmengine; the floors are the
    ones the code checks."""
    from vitext.version import TORCH_MIN_VERSION
    requires = wheel_requirements(wheel, 'openmmlab')
    for name in ('torch',) + UPSTREAM_STACK:
        (req,) = requires[name]
        assert all(s.operator != '==' for s in req.specifier), f'{name} pinned: {req}'
    (torch_req,) = requires['torch']
    assert str(torch_req.specifier) == f'>={TORCH_MIN_VERSION}'
    (mmcv,) = requires['mmcv']
    assert mmcv.specifier.contains('2.0.0') and mmcv.specifier.contains('2.1.0')
    assert not mmcv.specifier.contains('2.2.0')  # mmseg 1.2.2 and mmdet 3.3.0 refuse it
    assert 'mmdet' not in requires
    # upstream mmengine reads config bases through pkg_resources, gone in setuptools 82
    (setuptools,) = requires['setuptools']
    assert not setuptools.specifier.contains('82.0')
    assert set(UPSTREAM_STACK) | {'mmdet'} <= set(wheel_requirements(wheel, 'det'))


def test_wheel_metadata_leaves_the_openmmlab_stack_to_extras(wheel):
    """The fork's distributions (onedl-*) hold the same modules as upstream's under other names:
    a plain requirement on one set would make pip install it next to the other, so vitext names
    neither unconditionally; ``[openmmlab]``/``[det]`` name upstream's, ``[onedl]``/``[onedl-det]``
    the fork's."""
    either_stack = set(UPSTREAM_STACK) | set(FORK_STACK) | {'mmdet', 'onedl-mmdetection'}
    for extra in (None, 'tests'):
        assert not set(wheel_requirements(wheel, extra)) & either_stack, extra
    fork = wheel_requirements(wheel, 'onedl')
    assert set(FORK_STACK) <= set(fork) and not set(UPSTREAM_STACK) & set(fork)
    for name in FORK_STACK:
        (req,) = fork[name]
        assert all(s.operator != '==' for s in req.specifier), f'{name} pinned: {req}'
    (mmcv,) = fork['onedl-mmcv']
    assert mmcv.specifier.contains('2.3.6')  # the version vitext's tests ran with
    fork_det = wheel_requirements(wheel, 'onedl-det')
    assert set(FORK_STACK) | {'onedl-mmdetection'} <= set(fork_det)
    assert not (set(UPSTREAM_STACK) | {'mmdet'}) & set(fork_det)


def test_wheel_installs_the_vitext_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith('.dist-info/entry_points.txt')]
        entry_points = z.read(name).decode().splitlines()
    assert entry_points[entry_points.index('[console_scripts]') + 1] == 'vitext = vitext.cli:main'


def test_measured_pins_lie_within_the_package_ranges(wheel):
    """requirements/runtime.txt (tools/setup_env.sh's exact set) satisfies what the wheel states."""
    requires = [Requirement(line.split(':', 1)[1].strip()) for line in
                wheel_metadata(wheel).splitlines() if line.startswith('Requires-Dist:')]
    pins = {}
    with open(osp.join(ROOT, 'requirements', 'runtime.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if '==' in line:
                req = Requirement(line)
                pins[req.name] = next(iter(req.specifier)).version
    pins['mmcv'] = re.search(r'MMCV_VERSION=(\S+)',
                             open(osp.join(ROOT, 'tools', 'setup_env.sh')).read()).group(1)
    for req in requires:
        if req.name in pins:
            assert req.specifier.contains(pins[req.name]), \
                f'requirements/runtime.txt pins {req.name}=={pins[req.name]}, outside {req}'


def run_outside_checkout(tmp_path, code, pythonpath):
    """``python -c code`` in ``tmp_path`` with only ``pythonpath`` added to the path."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(PYTHONPATH=pythonpath, OMP_NUM_THREADS='1', PYTHONNOUSERSITE='1')
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)


def test_installed_wheel_builds_and_runs_a_model_from_a_vitext_config(wheel, tmp_path):
    scratch = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index',
                    '--target', str(scratch), wheel], check=True)
    work = tmp_path / 'user'
    work.mkdir()
    (work / 'my_config.py').write_text(USER_CONFIG)
    result = run_outside_checkout(work, f"""
        import os.path as osp
        import torch
        from mmengine.config import Config
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        import vitext
        from vitext.config_scope import CONFIG_ROOT

        scratch = {str(scratch)!r}
        assert vitext.__file__.startswith(scratch + '/'), vitext.__file__
        assert CONFIG_ROOT.startswith(scratch + '/') and not osp.islink(CONFIG_ROOT)
        register_all_modules()
        cfg = Config.fromfile('my_config.py')
        assert cfg.default_scope == 'mmseg' and cfg.model.backbone.type == 'SlideSwinTransformer'
        model = MODELS.build(cfg.model).eval()
        backbone_file = __import__(type(model.backbone).__module__, fromlist=['_']).__file__
        assert backbone_file.startswith(scratch + '/'), backbone_file
        with torch.no_grad():
            logits = model(torch.rand(1, 3, 64, 64), mode='tensor')
        assert logits.shape == (1, 150, 16, 16) and torch.isfinite(logits).all()
        print('OK', vitext.__version__, tuple(logits.shape))
        """, str(scratch))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'OK' in result.stdout


def test_vitext_scope_names_the_closest_config(tmp_path):
    import vitext  # noqa: F401  (teaches mmengine the vitext:: scope)
    from mmengine.config import Config
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("_base_ = ['vitext::slide/upernet_slide-swin-t_8xb2-160k_ade20k-512.py']\n")
    with pytest.raises(FileNotFoundError, match=r'closest: vitext::slide/upernet_slide-swin-t_8xb2-'
                                                r'160k_ade20k-512x512\.py'):
        Config.fromfile(str(cfg))


def test_vitext_scope_reads_a_base_in_the_configs_own_scope(tmp_path):
    """A vitext:: base is read as a local one: no ``_scope_='vitext'`` (vitext has no registries
    of its own), the config's default_scope and its own mmseg:: bases as they are."""
    import vitext  # noqa: F401
    from mmengine.config import Config
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("_base_ = ['vitext::slide/upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py']\n"
                   "model = dict(backbone=dict(drop_path_rate=0.1))\n")
    cfg = Config.fromfile(str(cfg))
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.backbone.type == 'SlideSwinTransformer'
    assert cfg.model.backbone.arch == 'tiny' and cfg.model.backbone.drop_path_rate == 0.1
    assert '_scope_' not in cfg.model
    assert cfg.custom_imports.imports == ['vitext']


def test_a_scope_resolves_through_the_distribution_that_holds_its_module(tmp_path, monkeypatch):
    """The onedl-* fork installs the mmseg module as onedl-mmsegmentation, where mmengine's
    table names mmsegmentation (then mmseg:: bases are "not installed"): the table pointing at a
    distribution that is not installed stands for it."""
    import vitext  # noqa: F401
    from mmengine.config import Config
    from mmengine.config.utils import MODULE2PACKAGE
    from vitext.config_scope import map_modules_to_installed_distributions
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'no-such-mmsegmentation-distribution')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("_base_ = ['mmseg::_base_/models/upernet_swin.py']\n")
    map_modules_to_installed_distributions()
    assert MODULE2PACKAGE['mmseg'] != 'no-such-mmsegmentation-distribution'
    assert Config.fromfile(str(cfg)).model.type == 'EncoderDecoder'


def test_import_names_the_torch_floor_when_torch_is_older(tmp_path):
    """Simulated with the installed torch reporting an older version."""
    from vitext.version import TORCH_MIN_VERSION
    result = run_outside_checkout(tmp_path, """
        import torch
        torch.__version__ = '2.3.1'
        import vitext
        """, ROOT)
    assert result.returncode != 0
    assert re.search(rf'ImportError: vitext needs PyTorch >= {re.escape(TORCH_MIN_VERSION)} .*'
                     r'the installed torch is 2\.3\.1', result.stderr), result.stderr[-2000:]


# ``sys.modules[name] = None`` makes a module absent to find_spec and import alike.
HIDE_MMSEG = "import sys; sys.modules['mmseg'] = None\n"
HIDE_STACK = "import sys; sys.modules.update(mmengine=None, mmcv=None, mmseg=None)\n"


def test_import_names_what_of_the_openmmlab_stack_is_missing(tmp_path):
    result = run_outside_checkout(tmp_path, HIDE_MMSEG + 'import vitext', ROOT)
    assert result.returncode != 0
    (line,) = [l for l in result.stderr.splitlines() if l.startswith('ImportError:')]
    assert 'missing here: mmseg.' in line and 'mmengine,' not in line.split('missing here')[1]
    assert "'vitext[openmmlab]'" in line and "'vitext[onedl]'" in line


def test_without_the_openmmlab_stack_the_ops_import_and_the_command_names_it(tmp_path):
    result = run_outside_checkout(tmp_path, HIDE_STACK + textwrap.dedent("""
        import torch
        from vitext.ops.broadcast import ContextBroadcast
        print('OPS', tuple(ContextBroadcast()(torch.ones(1, 4, 2)).shape))
        from vitext.cli import main
        sys.exit(main(['flops', 'my_config.py']))
        """), ROOT)
    assert 'OPS (1, 4, 2)' in result.stdout, result.stderr[-2000:]
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith('vitext flops: ') and 'missing here: mmengine, mmcv, mmseg.' in line
    assert "'vitext[onedl]'" in line



def run_offline_installer(bundle, *args, **env):
    return subprocess.run(['bash', osp.join(ROOT, 'tools', 'gpu', 'install_offline.sh'), str(bundle),
                           '--python', sys.executable, '--dry-run', *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'VITEXT_MMCV_CUDA': '0', **env})


def test_offline_installer_keeps_torch_and_builds_mmcv_against_it(wheel, tmp_path):
    """The commands tools/gpu/install_offline.sh would run against this environment (dry run: the
    real run builds mmcv for minutes)."""
    import torch
    pinned = f'torch=={torch.__version__}'
    if importlib.util.find_spec('torchvision'):
        pinned += f' torchvision=={importlib.import_module("torchvision").__version__}'
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    shutil.copy(wheel, bundle)
    shutil.copy(osp.join(ROOT, 'requirements', 'offline.txt'), bundle / 'requirements.txt')
    (bundle / 'mmcv-2.1.0.tar.gz').write_bytes(b'')  # named, not read, by a dry run

    result = run_offline_installer(bundle, '--rebuild-mmcv')
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'constraints: {pinned}\n' in result.stdout
    commands = [line for line in result.stdout.splitlines() if line.startswith('+ ')]
    assert len(commands) == 3, commands
    for command in commands:
        assert f'-m pip install --no-index --find-links {bundle} -c ' in command
    requirements, mmcv, vitext = commands
    assert requirements.endswith('-r ' + str(bundle / 'requirements.txt'))
    assert mmcv.startswith('+ env MMCV_WITH_OPS=1 ') and 'FORCE_CUDA=0' in mmcv
    assert '--no-build-isolation' in mmcv and mmcv.endswith(str(bundle / 'mmcv-2.1.0.tar.gz'))
    assert vitext.endswith(osp.basename(wheel) + r'\[det\]')

    # mmcv 2.1.0 with its ops already works here: kept, not rebuilt
    result = run_offline_installer(bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mmcv 2.1.0 with ops already works here' in result.stdout
    assert not any('mmcv-2.1.0' in line for line in result.stdout.splitlines()
                   if line.startswith('+ '))


def test_offline_installer_refuses_an_environment_with_the_onedl_fork(wheel, tmp_path):
    """The bundle is the upstream set: in an environment holding onedl-mmcv it would build
    upstream mmcv beside it (both import as ``mmcv``); the installer stops first, naming the fork's
    packages and the fork's install command. The fork is made visible to this interpreter by its
    installed-distribution metadata, which is what the installer reads."""
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    shutil.copy(wheel, bundle)
    shutil.copy(osp.join(ROOT, 'requirements', 'offline.txt'), bundle / 'requirements.txt')
    (bundle / 'mmcv-2.1.0.tar.gz').write_bytes(b'')
    site = tmp_path / 'site'
    dist_info = site / 'onedl_mmcv-2.3.6.dist-info'
    dist_info.mkdir(parents=True)
    (dist_info / 'METADATA').write_text('Metadata-Version: 2.1\nName: onedl-mmcv\nVersion: 2.3.6\n')
    result = run_offline_installer(bundle, PYTHONPATH=str(site))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not any(line.startswith('+ ') for line in result.stdout.splitlines()), result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert 'has the onedl-* fork (onedl-mmcv==2.3.6)' in line
    assert "pip install 'vitext[onedl-det]'" in line
