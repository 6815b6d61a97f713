"""The ``vitext`` command (also ``python -m vitext``): one entry point for vitext's tools.

``vitext COMMAND [ARGS ...]`` runs ``vitext.cli.<module>.main(ARGS)``; each command's module holds
its argument parser and what it does, and the checkout's ``tools/*.py`` (the wheel's
``vitext/.mim/tools/*.py``) call the same ``main``, so both forms take the same arguments and
print the same help.
"""
import argparse
import difflib
import importlib
import sys
from typing import Dict, List, NamedTuple, Optional

from .. import OPENMMLAB_MODULES, missing_openmmlab_modules, openmmlab_missing_message
from ..version import __version__


class Command(NamedTuple):
    """One ``vitext`` command: the module under vitext.cli that runs it and its line in the
    help."""
    module: str
    summary: str


COMMANDS: Dict[str, Command] = {
    'train': Command('train', 'train a segmentor, detector or classifier from a config'),
    'test': Command('test', 'evaluate a checkpoint; metrics to <work-dir>/test_results.json'),
    'robustness': Command('robustness', "a checkpoint's scores under occlusion, FGSM/PGD and "
                          'common corruptions'),
    'make-data': Command('make_data', 'write synthetic ADE20K-, COCO- and ImageNet-format data '
                         'sets'),
    'convert': Command('convert', 'start a vitext backbone from a DeiT or Swin checkpoint'),
    'deploy': Command('deploy', 'save a checkpoint in deploy (re-parameterised) form, checked; '
                      'optionally ONNX'),
    'flops': Command('flops', 'parameters and FLOPs of a config or a backbone'),
    'export-config': Command('export_config', 'write a config with every base merged in, for '
                             "mmseg's/mmdet's own tools"),
}


def usage() -> str:
    """The text of ``vitext --help``: the synopsis and one line per command."""
    width = max(map(len, COMMANDS))
    lines = [f'usage: vitext COMMAND [ARGS ...]   (vitext {__version__}; also: python -m vitext)',
             '', 'commands:']
    lines += [f'  {name:<{width}}  {command.summary}' for name, command in COMMANDS.items()]
    lines += ['', "'vitext COMMAND --help' shows a command's options."]
    return '\n'.join(lines)


def _unknown_command(name: str) -> str:
    close = difflib.get_close_matches(name, list(COMMANDS), n=1)
    hint = f'; did you mean {close[0]!r}?' if close else ''
    return f'vitext: unknown command {name!r} (commands: {", ".join(COMMANDS)}){hint}'


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and ``--local_rank`` as mmengine's launchers pass them (train, test)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``vitext COMMAND ARGS``; returns the exit status (a command may also exit itself).

    Args:
        argv: the arguments after ``vitext``; default ``sys.argv[1:]``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    name, args = argv[0], argv[1:]
    if name in ('-h', '--help'):
        print(usage())
        return 0
    if name == '--version':
        print(f'vitext {__version__}')
        return 0
    if name not in COMMANDS:
        print(_unknown_command(name), file=sys.stderr)
        return 2
    try:
        command = importlib.import_module(f'{__name__}.{COMMANDS[name].module}')
    except ModuleNotFoundError as error:
        # vitext imports without the OpenMMLab stack (for vitext.ops); its commands do not
        if (error.name or '').split('.')[0] not in OPENMMLAB_MODULES:
            raise
        print(f'vitext {name}: {openmmlab_missing_message(missing_openmmlab_modules())}',
              file=sys.stderr)
        return 2
    command.main(args)
    return 0
