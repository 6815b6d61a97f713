"""Start a vitext backbone from a related model's checkpoint (vitext/models/transfer.py) and save
it as a checkpoint that ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` loads strictly.

vitext convert deit-to-aft SRC.pth OUT.pth [--arch small]
    [--attn-type conv] [--num-heads 384] [--kernel-size 11]
vitext convert swin-to-slide-swin SRC.pth OUT.pth [--arch tiny]
    [--kernel-size 3] [--num-slide-stages 2]
(or python tools/convert_checkpoint.py ...)
Prints which parameters came from SRC and which kept their initialisation.
"""
import argparse
from typing import List, Optional


def build_target(args: argparse.Namespace):
    """The backbone SRC initialises, at its own initialisation (seeded).

    Args:
        args: the parsed command line (conversion, arch, attn_type, num_heads, kernel_size,
            num_slide_stages).
    """
    from vitext.models.backbones import AFTViT, SlideSwinTransformer
    if args.conversion == 'deit-to-aft':
        # Classification form (final norm, no pyramid): loads into classifiers and dense models.
        model = AFTViT(arch=args.arch or 'small', attn_type=args.attn_type,
                       num_heads=args.num_heads, kernel_size=args.kernel_size or 11,
                       out_indices=(11, ), out_pyramid=False, final_norm=True)
    else:
        model = SlideSwinTransformer(arch=args.arch or 'tiny', kernel_size=args.kernel_size or 3,
                                     num_slide_stages=args.num_slide_stages)
    model.init_weights()
    return model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vitext convert', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('conversion', choices=['deit-to-aft', 'swin-to-slide-swin'])
    parser.add_argument('src', help='deit-to-aft: DeiT / timm ViT checkpoint; swin-to-slide-swin: '
                        "Swin checkpoint (official, timm's or mmseg's/mmpretrain's layout); "
                        '.pth or .safetensors')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument('--arch', default=None,
                        help="target arch (AFTViT: 'tiny', 'small' (default); Slide-Swin: "
                        "'tiny' (default), 'small', 'base')")
    parser.add_argument('--attn-type', default='conv', choices=['conv', 'full', 'local',
                                                                 'simple'], help='AFT only')
    parser.add_argument('--num-heads', type=int, default=None, help='AFT only')
    parser.add_argument('--kernel-size', type=int, default=None,
                        help='AFT-conv position kernel (11) / slide neighbourhood (3)')
    parser.add_argument('--num-slide-stages', type=int, default=2, help='Slide-Swin only')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kept initialisation')
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Args:
        argv: the command's arguments; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)

    import torch

    from vitext.checkpoint import safe_load
    from vitext.models.transfer import deit_to_aft, describe, swin_to_slide_swin
    from vitext.models.weights import unwrap_state_dict
    torch.manual_seed(args.seed)
    model = build_target(args)
    convert = deit_to_aft if args.conversion == 'deit-to-aft' else swin_to_slide_swin
    try:
        transfer = convert(unwrap_state_dict(safe_load(args.src)), model)
    except ValueError as error:
        raise SystemExit(f'{args.src}: {error}')
    torch.save(dict(state_dict=transfer.state), args.out)
    print(describe(transfer))
    print(f'saved {args.out}')
