"""Argument checks shared by the backbones: arch presets, stage/block indices, head widths."""
from typing import Dict, Sequence, Union


def resolve_arch(arch: Union[str, dict], zoo: Dict[str, dict], keys: Sequence[str]) -> dict:
    """An ``arch`` name from ``zoo``, or a dict holding at least ``keys``."""
    if isinstance(arch, str):
        if arch not in zoo:
            raise ValueError(f'arch {arch!r} is not one of {sorted(zoo)} (or a dict with '
                             f'{", ".join(keys)})')
        return dict(zoo[arch])
    missing = [k for k in keys if k not in arch]
    if missing:
        raise ValueError(f'arch dict {arch} lacks {missing}')
    return dict(arch)


def check_out_indices(out_indices: Sequence[int], count: int, unit: str) -> tuple:
    """``out_indices`` as a tuple, each in [0, count) (``unit``: 'blocks' or 'stages')."""
    bad = [i for i in out_indices if not 0 <= i < count]
    if bad:
        raise ValueError(f'out_indices {bad} out of range for {count} {unit}')
    return tuple(out_indices)


def check_head_dims(dims: Sequence[int], num_heads: Sequence[int]) -> None:
    """Every width splits evenly into its heads (one entry per stage)."""
    if len(dims) != len(num_heads):
        raise ValueError(f'{len(dims)} widths {tuple(dims)} but {len(num_heads)} head counts '
                         f'{tuple(num_heads)}')
    for i, (dim, heads) in enumerate(zip(dims, num_heads)):
        if dim % heads:
            where = f'stage {i}: ' if len(dims) > 1 else ''
            raise ValueError(f'{where}embed_dims {dim} is not divisible by num_heads {heads}')
