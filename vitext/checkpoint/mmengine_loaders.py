"""mmengine's checkpoint loading routed through :func:`~.unpickle.safe_load`.

mmengine's ``CheckpointLoader`` loaders call ``torch.load`` without ``weights_only``
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` then turns safety off) or, for URLs, torch.hub's
``load_state_dict_from_url`` (``weights_only=False``). :func:`install` allows mmengine's own
objects for ``weights_only`` loading and replaces each scheme's loader, and mmengine's module-level
``load_from_*`` functions, with one that finds the file the same way and loads it safely.
torchvision://, modelzoo:// and mmcls:// resolve a URL and call mmengine's module-level
``load_from_http``, which is replaced too.
"""
import io
import os
import os.path as osp
from typing import Any, Optional
from urllib.parse import urlparse

import torch

from .unpickle import load_pickle, mmengine_safe_globals, safe_load


def load_from_local(filename: str, map_location: Any = None) -> Any:
    return safe_load(filename, map_location)


def _download(url: str, model_dir: Optional[str], progress: bool) -> str:
    """The cached download of ``url`` (torch.hub's cache, as ``load_state_dict_from_url``)."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(path):
        torch.hub.download_url_to_file(url, path, progress=progress)
    return path


def load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)) -> Any:
    """Download (rank 0 first, as mmengine does) and load the file safely."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        path = _download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = _download(filename, model_dir, progress)
    return safe_load(path, map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """``open-mmlab://name``: a URL or a path under MMENGINE_HOME from mmengine's model list
    (extended by ``$MMENGINE_HOME/open_mmlab.json``)."""
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import (_get_mmengine_home, get_deprecated_model_names,
                                            get_external_models)
    prefix, model_name = filename.split('://', 1)
    renamed = get_deprecated_model_names().get(model_name)
    if renamed:
        print_log(f'{prefix}://{model_name} is deprecated in favor of {prefix}://{renamed}',
                  logger='current')
        model_name = renamed
    models = get_external_models()
    if model_name not in models:
        raise KeyError(f'{filename!r} is not in mmengine\'s open-mmlab model list')
    url = models[model_name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return safe_load(osp.join(_get_mmengine_home(), url), map_location)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    from tempfile import TemporaryDirectory
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        path = osp.join(tmp_dir, model.name)
        model.download(path)
        return safe_load(path, map_location)


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with io.BytesIO(data) as buffer:
        return load_pickle(buffer, filename, map_location)


_SCHEMES = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'pavi://': load_from_pavi,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
}

_installed = False


def install() -> None:
    """Allow mmengine's objects for ``weights_only`` loading and route every mmengine checkpoint
    scheme (and mmengine's ``load_from_*`` functions) through :func:`safe_load`. Idempotent."""
    global _installed
    if _installed:
        return
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner import CheckpointLoader

    torch.serialization.add_safe_globals(mmengine_safe_globals())
    for prefixes, loader in _SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
        setattr(mmengine_checkpoint, loader.__name__, loader)
    _installed = True
