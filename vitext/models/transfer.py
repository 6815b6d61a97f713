"""Starting a vitext backbone from the checkpoint of a related model that users do have.

No ImageNet weights exist for AFT; the AFT paper (Table 8) initialises AFT-conv from DeiT: every
parameter except the position embedding, the class token and the key and query projections.
:func:`deit_to_aft` does that for :class:`~vitext.models.backbones.AFTViT` (AFT-full/local/simple
also take DeiT's class token, position table and q/k/v, which they share with DeiT). The result
is a complete state dict of the backbone (the parameters DeiT cannot give keep the backbone's
own initialisation), saved by ``tools/convert_checkpoint.py`` and then loaded strictly through
``init_cfg=dict(type='Pretrained', checkpoint=...)``. Every conversion reports which parameters
it took from the source and which it left at their initialisation.

Slide-Swin starts from Swin (:func:`swin_to_slide_swin`: the official/timm layout or
mmseg's/mmpretrain's, converted by Slide-Swin's own checkpoint filter): stages 3-4 and every
shared layer (patch embedding, norms, qkv/output projections, MLPs, patch merging) come from Swin;
in the slide-attention stages the shift and deformed convs and the k x k position table keep
their initialisation.
"""
from typing import Dict, List, NamedTuple

from torch import Tensor, nn

from ..ops.slide import SlideAttention
from .backbones import AFTViT, SlideSwinTransformer
from .conversions import slide_swin_checkpoint_filter, swin_official_names, vit_checkpoint_filter
from .weights import CLASSIFIER_PREFIXES


class Transfer(NamedTuple):
    state: Dict[str, Tensor]  # every key of the target backbone
    initialised: List[str]  # target keys taken from the source checkpoint
    left_at_init: List[str]  # target keys that keep the target's own initialisation
    unused: List[str]  # source keys the target has no place for


def _complete(model: nn.Module, taken: Dict[str, Tensor], source: Dict[str, Tensor],
              used: set) -> Transfer:
    """The model's whole state dict with the ``taken`` tensors in place.

    Raises:
        ValueError: nothing was taken (the source is of another model: saving the model's own
            initialisation as converted weights would pass for a conversion), or a taken
            tensor's shape differs from the model's.
    """
    if not taken:
        shown = ', '.join(list(source)[:5]) + (', ...' if len(source) > 5 else '')
        raise ValueError(f'no tensor of the source fits {type(model).__name__} (its keys '
                         f'besides a classifier\'s: {shown or "none"}); expected the weights of '
                         'the model this conversion starts from')
    own = model.state_dict()
    wrong = [f'{k}: source {tuple(v.shape)} vs model {tuple(own[k].shape)}'
             for k, v in taken.items() if k in own and v.shape != own[k].shape]
    if wrong:
        raise ValueError('source weights do not fit ' + type(model).__name__ + ': ' +
                         ', '.join(wrong))
    state = {k: taken.get(k, v) for k, v in own.items()}
    return Transfer(state, sorted(k for k in own if k in taken),
                    sorted(k for k in own if k not in taken),
                    sorted(k for k in source if k not in used))


def deit_to_aft(deit_state: Dict[str, Tensor], model: AFTViT) -> Transfer:
    """DeiT / timm ViT weights (plain names, ``attn.qkv``) -> ``model``'s state dict.

    AFT-conv (the paper's Table 8): patch embedding, norms, value and output projections, MLPs
    from DeiT; queries, keys (one channel per head in AFT-conv) and the position kernels keep
    their init; DeiT's class token and position table are unused. AFT-full/local/simple: also
    the class token, the position table (resized to the model's grid) and the q/k projections;
    the factorised position bias (U, V) keeps its init."""
    source = {k: v for k, v in deit_state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    converted = vit_checkpoint_filter(source, model)
    conv = model.attn_type == 'conv'
    taken, used = {}, set()
    for key, value in converted.items():
        if key.endswith(('attn.qkv.weight', 'attn.qkv.bias')):
            prefix, suffix = key.rsplit('.qkv.', 1)
            q, k, v = value.chunk(3, dim=0)
            parts = dict(v=v) if conv else dict(q=q, k=k, v=v)
            taken.update({f'{prefix}.{name}.{suffix}': t for name, t in parts.items()})
            used.add(key)
        elif conv and key in ('cls_token', 'pos_embed'):
            continue
        elif key in model.state_dict():
            taken[key] = value
            used.add(key)
    return _complete(model, taken, source, used)


def swin_to_slide_swin(swin_state: Dict[str, Tensor], model: SlideSwinTransformer) -> Transfer:
    """Swin weights (any layout :func:`~vitext.models.conversions.swin_official_names` reads)
    -> ``model``'s state dict, converted by Slide-Swin's own checkpoint filter
    (:func:`~vitext.models.conversions.slide_swin_checkpoint_filter`).

    Every layer Slide-Swin shares with Swin is taken: the patch embedding, norms, patch merging,
    MLPs, the window-attention stages whole (position tables resized to the model's window) and,
    in the slide-attention stages, the qkv and output projections. The shift and deformed convs
    and the slide position table keep their initialisation, as do the output norms when the
    source has none (official and timm classification weights); Swin's window position tables in
    those stages and its classifier (``head``, final ``norm``) are unused.

    Raises:
        ValueError: the source does not fit ``model`` (widths differ, or it has blocks or
            stages the model has not).
    """
    source = {k: v for k, v in swin_state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    own = model.state_dict()
    taken = {k: v for k, v in slide_swin_checkpoint_filter(source, model).items() if k in own}
    transfer = _complete(model, taken, swin_official_names(source), set(taken))
    slide_prefixes = tuple(f'{name}.' for name, module in model.named_modules()
                           if isinstance(module, SlideAttention))
    # Expected to be unused: the classifier's norm, output norms of stages the model does not
    # return, window tables of the slide stages.
    extra = [k for k in transfer.unused if not k.startswith(('norm.', 'out_norms.')) and not (
        k.startswith(slide_prefixes) and k.endswith('relative_position_bias_table'))]
    if extra:
        raise ValueError(f'source weights have {len(extra)} tensors {type(model).__name__} has '
                         f'no place for (another depth or number of stages?): '
                         + ', '.join(extra[:10]) + (', ...' if len(extra) > 10 else ''))
    return transfer


def describe(transfer: Transfer) -> str:
    """A report of a conversion: what was initialised from the source, what was not."""
    def names(keys: List[str]) -> str:
        return ', '.join(keys) if keys else '(none)'
    return (f'initialised from the source: {len(transfer.initialised)} tensors\n'
            f'left at their initialisation: {names(transfer.left_at_init)}\n'
            f'unused source tensors: {names(transfer.unused)}')
