"""Files that are either wholly written or not there at all.

A process killed while it rewrites a file (a checkpoint, ``last_checkpoint``, robustness.json)
must leave the previous version, never a truncated one: the new content goes to a temporary
name in the same folder, is flushed to disk, and then renamed over the target, which POSIX
makes atomic. Pure Python, no mm imports.
"""
import contextlib
import os
import os.path as osp
from typing import Iterator, Union

TEMP_SUFFIX = '.partial'


def temp_path(path: str) -> str:
    """The temporary name that ``path`` is written under before it is renamed into place."""
    return path + TEMP_SUFFIX


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder or '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path for the caller to write; when the block ends normally the file
    is synced and renamed to ``path`` (replacing any previous one), otherwise it is removed.

        with atomic_path('out/iter_2.pth') as tmp:
            torch.save(state, tmp)
    """
    tmp = temp_path(path)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(osp.dirname(path))


def atomic_write(path: str, data: Union[str, bytes]) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data.encode() if isinstance(data, str) else data)
