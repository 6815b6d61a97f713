"""Argument checks shared by the backbones: arch presets, stage/block indices, head widths,
image sizes."""
from typing import Dict, Sequence, Tuple, Union


def resolve_arch(arch: Union[str, dict], zoo: Dict[str, dict], keys: Sequence[str],
                 optional: Sequence[str] = ()) -> dict:
    """An ``arch`` name from ``zoo``, or a dict holding every one of ``keys``, optionally some of
    ``optional``, and nothing else (a misspelt or foreign key, e.g. mmpretrain's
    ``feedforward_channels``, would otherwise be ignored without a word)."""
    if isinstance(arch, str):
        if arch not in zoo:
            raise ValueError(f'arch {arch!r} is not one of {sorted(zoo)} (or a dict with '
                             f'{", ".join(keys)})')
        return dict(zoo[arch])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
    missing = [k for k in keys if k not in arch]
    if missing:
        raise ValueError(f'arch dict {arch} lacks {missing}')
    unknown = sorted(set(arch) - set(keys) - set(optional))
    if unknown:
        raise ValueError(f'arch dict has unknown keys {unknown}; it takes {list(keys)} and '
                         f'optionally {list(optional)}')
    return dict(arch)


def check_out_indices(out_indices: Union[int, Sequence[int]], count: int, unit: str) -> tuple:
    """``out_indices`` as a tuple of indices in [0, count) (``unit``: 'blocks' or 'stages').

    As in mmseg and mmpretrain, a single int stands for a one-element sequence and negative
    indices count from the end (-1 = the last stage or block)."""
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    if isinstance(out_indices, (str, dict)) or not all(isinstance(i, int) for i in out_indices):
        raise TypeError(f'out_indices must be an int or a sequence of ints, got {out_indices!r}')
    bad = [i for i in out_indices if not -count <= i < count]
    if bad:
        raise ValueError(f'out_indices {bad} out of range for {count} {unit}')
    return tuple(i % count for i in out_indices)


def check_head_dims(dims: Sequence[int], num_heads: Sequence[int]) -> None:
    """Every width splits evenly into its heads (one entry per stage)."""
    if len(dims) != len(num_heads):
        raise ValueError(f'{len(dims)} widths {tuple(dims)} but {len(num_heads)} head counts '
                         f'{tuple(num_heads)}')
    for i, (dim, heads) in enumerate(zip(dims, num_heads)):
        if dim % heads:
            where = f'stage {i}: ' if len(dims) > 1 else ''
            raise ValueError(f'{where}embed_dims {dim} is not divisible by num_heads {heads}')


def to_2tuple(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """An image or patch size given as an int or an (h, w) pair (mmseg's configs write
    ``img_size=(512, 512)``) -> (h, w) of positive ints."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and s > 0 for s in pair):
        raise ValueError(f'{name} must be a positive int or an (h, w) pair of them, got {size!r}')
    return pair


def check_int_in_range(value: int, low: int, high: int, name: str) -> int:
    """``value`` if it is an int in [low, high]; otherwise one error naming the argument."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f'{name} must be an int in [{low}, {high}], got {value!r}')
    return value
