"""``python -m vitext COMMAND ...``: the same as the ``vitext`` command (see vitext/cli)."""
import sys

from vitext.cli import main

if __name__ == '__main__':
    sys.exit(main())
