"""The ``vitext::`` config scope: the configs shipped inside the package, usable as bases.

OpenMMLab packages ship their configs under ``<package>/.mim/configs`` and a user's config
inherits one with ``_base_ = ['mmseg::path/in/configs.py']``. vitext does the same: a built wheel
carries copies of the checkout's ``configs/`` and ``tools/`` under ``vitext/.mim`` (setup.py), the
checkout has symlinks there. mmengine 0.10 resolves ``pkg::`` only for OpenMMLab's own packages
(its ``MODULE2PACKAGE`` table), so :func:`install`, called by ``import vitext``, teaches its
``Config`` the ``vitext::`` prefix. A config that inherits ``vitext::...`` therefore needs vitext
imported before it is read: vitext's tools and any script that runs ``import vitext`` first do
that; mmseg's/mmdet's own tools/train.py read the config first, so they take the config that
``vitext export-config`` writes (every base merged in; vitext/cli/export_config.py).

A ``vitext::`` base is read as if it lay next to the user's config: its objects are built in the
scope the configs declare (``default_scope = 'mmseg'`` or ``'mmdet'``, where vitext registers its
modules), not tagged ``_scope_='vitext'`` as mmengine tags an ``mmseg::`` base's objects, since
vitext has no registries of its own.
"""
import difflib
import importlib.util
import os
import os.path as osp
from importlib import metadata

PREFIX = 'vitext::'
MIM_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '.mim')
CONFIG_ROOT = osp.join(MIM_ROOT, 'configs')


def config_path(name: str) -> str:
    """Absolute path of the packaged config ``name``, e.g.
    ``'vitext::slide/upernet_slide-swin-t_8xb2-160k_ade20k-512x512.py'`` (prefix optional).

    Raises:
        ValueError: ``name`` is absolute or climbs out of the configs folder with ``..``.
        FileNotFoundError: no such config; the message names the closest packaged ones.
    """
    relative = name[len(PREFIX):] if name.startswith(PREFIX) else name
    # osp.join would take an absolute path as it is, and '..' climbs out: both would read (and
    # mmengine would run) a file outside the package under the package's name.
    if osp.isabs(relative) or osp.normpath(relative).split(os.sep)[0] == os.pardir:
        raise ValueError(f'{name!r}: a vitext:: base names a config inside vitext\'s configs '
                         f'folder ({CONFIG_ROOT}); expected a path relative to it that stays '
                         'there (a file elsewhere is a plain base path, without vitext::)')
    path = osp.join(CONFIG_ROOT, relative)
    if osp.isfile(path):
        return path
    if not osp.isdir(CONFIG_ROOT):
        raise FileNotFoundError(f'{name!r}: this vitext has no packaged configs ({CONFIG_ROOT} is '
                                'missing; reinstall vitext from a wheel or a full checkout)')
    known = [osp.relpath(osp.join(root, f), CONFIG_ROOT)
             for root, _, files in os.walk(CONFIG_ROOT, followlinks=True)
             for f in files if f.endswith('.py')]
    close = difflib.get_close_matches(relative, known, n=3, cutoff=0.5)
    hint = f'; closest: {", ".join(PREFIX + c for c in close)}' if close else ''
    raise FileNotFoundError(f'{name!r}: no such vitext config under {CONFIG_ROOT}{hint}')


def _distribution_installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def map_modules_to_installed_distributions() -> None:
    """Point mmengine's module -> distribution table (``MODULE2PACKAGE``) at the distribution
    that holds each module here, where the one it names is not installed.

    mmengine resolves ``mmseg::`` bases through the distribution its table names
    (``mmsegmentation``); the onedl-* fork installs the same module as ``onedl-mmsegmentation``,
    so mmengine would call mmseg "not installed" and refuse vitext's configs.
    """
    from mmengine.config.utils import MODULE2PACKAGE

    holders = None  # metadata.packages_distributions() reads every distribution: only if needed
    for module, distribution in MODULE2PACKAGE.items():
        if _distribution_installed(distribution) or importlib.util.find_spec(module) is None:
            continue
        holders = metadata.packages_distributions() if holders is None else holders
        if holders.get(module):
            MODULE2PACKAGE[module] = holders[module][0]


def install() -> None:
    """Make mmengine's ``Config`` resolve ``vitext::`` bases through :func:`config_path`, and
    OpenMMLab scopes through the distributions installed here
    (:func:`map_modules_to_installed_distributions`). Idempotent; other scopes keep mmengine's
    own resolution."""
    from mmengine.config import Config

    map_modules_to_installed_distributions()

    resolve = Config._get_cfg_path
    if getattr(resolve, 'resolves_vitext', False):
        return

    def get_cfg_path(cfg_path, filename):
        if cfg_path.startswith(PREFIX):
            return config_path(cfg_path), None  # scope None: read as a local base
        return resolve(cfg_path, filename)

    get_cfg_path.resolves_vitext = True
    Config._get_cfg_path = staticmethod(get_cfg_path)
