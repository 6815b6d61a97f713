"""Write CONFIG as one self-contained file, for mmseg's/mmdet's/mmpretrain's own tools.

vitext export-config CONFIG OUT.py [--cfg-options k=v ...]

mmengine 0.10 resolves ``pkg::`` config bases only for OpenMMLab's own packages, and mmseg's,
mmdet's and mmpretrain's ``tools/train.py``/``test.py`` read a config before anything imports
vitext, so they stop at a ``vitext::`` base ("mmengine does not support to load vitext config").
OUT holds CONFIG with every base merged in (``vitext::``, ``mmseg::`` and relative ones) and the
``--cfg-options`` applied: the form mmengine writes into each work dir. Its ``custom_imports``
still registers vitext's modules, so e.g. ``python mmseg/.mim/tools/train.py OUT.py`` trains it.
Export again after editing CONFIG.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext export-config', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a config, its bases may be vitext::, mmseg:: or paths')
    parser.add_argument('out', help='the .py file to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings in OUT, e.g. data_root=/data/ade')
    return parser


def export_config(config: str, out: str, cfg_options: Optional[dict] = None) -> None:
    """Write ``config``, its bases merged in and ``cfg_options`` applied, to ``out``.

    Args:
        config: the config file to read.
        out: the ``.py`` file to write (not ``config`` itself: that would lose its bases).
        cfg_options: settings to override, as ``--cfg-options`` gives them.

    Raises:
        ValueError: ``out`` is not a ``.py`` file or is ``config`` itself.
    """
    from vitext.preflight import load_config
    if not out.endswith('.py'):
        raise ValueError(f'{out!r}: the exported config must be a .py file')
    if osp.exists(out) and osp.samefile(out, config):
        raise ValueError(f'{out!r} is the config being exported; write it to another file')
    cfg = load_config(config, cfg_options)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(f'# {osp.abspath(config)} with its bases merged in (vitext export-config); '
                'export again after editing it.\n')
        f.write(cfg.pretty_text)


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    try:
        export_config(args.config, args.out, args.cfg_options)
    except ValueError as error:  # vitext.preflight.ConfigError is one
        raise SystemExit(f'vitext export-config: {error}') from None
    print(f'wrote {args.out}')
