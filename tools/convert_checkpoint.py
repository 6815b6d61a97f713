"""Start a vitext backbone from a related model's checkpoint (vitext/models/transfer.py) and save
it as a checkpoint that ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` loads strictly.

python tools/convert_checkpoint.py deit-to-aft SRC.pth OUT.pth [--arch small]
    [--attn-type conv] [--num-heads 384] [--kernel-size 11]
Prints which parameters came from SRC and which kept their initialisation.
"""
import argparse


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('conversion', choices=['deit-to-aft'])
    parser.add_argument('src', help='DeiT / timm ViT checkpoint (.pth or .safetensors)')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument('--arch', default='small', help="AFTViT arch ('tiny', 'small')")
    parser.add_argument('--attn-type', default='conv', choices=['conv', 'full', 'local',
                                                                 'simple'])
    parser.add_argument('--num-heads', type=int, default=None)
    parser.add_argument('--kernel-size', type=int, default=11)
    parser.add_argument('--seed', type=int, default=0, help='seed of the kept initialisation')
    args = parser.parse_args()

    import torch

    from vitext.checkpoint import safe_load
    from vitext.models.backbones import AFTViT
    from vitext.models.transfer import deit_to_aft, describe
    from vitext.models.weights import unwrap_state_dict
    torch.manual_seed(args.seed)
    # Classification form (final norm, no pyramid): loads into classifiers and dense models.
    model = AFTViT(arch=args.arch, attn_type=args.attn_type, num_heads=args.num_heads,
                   kernel_size=args.kernel_size, out_indices=(11, ), out_pyramid=False,
                   final_norm=True)
    model.init_weights()
    transfer = deit_to_aft(unwrap_state_dict(safe_load(args.src)), model)
    torch.save(dict(state_dict=transfer.state), args.out)
    print(describe(transfer))
    print(f'saved {args.out}')


if __name__ == '__main__':
    main()
