"""SplitMask in a hand-written PyTorch loop (no Runner, no config).

    python examples/splitmask_plain.py [--data-root data/fashion_mnist]
        [--steps 200] [--batch-size 64]

The encoder and decoder are mm_instdisc's SplitMaskViT / SplitMaskDecoder
used as ordinary nn.Modules; masks, tokeniser and losses come from
``mm_instdisc.modules`` (plain torch), and ``splitmask_step`` is the same
function the registered ``SplitMask`` algorithm calls. Reads Fashion-MNIST
from its IDX files; prints the losses.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mm_instdisc.datasets.fashion_mnist import read_idx  # noqa: E402
from mm_instdisc.models import SplitMaskDecoder, SplitMaskViT  # noqa: E402
from mm_instdisc.modules import (SplitMaskGenerator, SplitMaskLoss,  # noqa
                                 SplitMaskTokenizer, splitmask_step)


def load_images(root, limit):
    for name in ('train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte'):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            x = torch.from_numpy(read_idx(path)[:limit].copy()).float()
            x = (x[:, None] - 72.94) / 90.02  # (N, 1, 28, 28)
            return F.interpolate(x, size=32, mode='bilinear',
                                 align_corners=False)
    raise SystemExit(f'No Fashion-MNIST IDX files in {root!r}.')


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--data-root', default=os.path.join(ROOT,
                                                       'data/fashion_mnist'))
    p.add_argument('--limit', type=int, default=10000)
    p.add_argument('--steps', type=int, default=200)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=5e-4)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)

    images = load_images(args.data_root, args.limit)
    width, vocab = 64, 256
    encoder = SplitMaskViT(
        arch=dict(embed_dims=width, num_layers=2, num_heads=4,
                  feedforward_channels=4 * width),
        img_size=32, patch_size=4, in_channels=1)
    decoder = SplitMaskDecoder(embed_dims=width, patch_resolution=8,
                               num_layers=2, num_heads=4)
    encoder.init_weights()
    decoder.init_weights()
    loss_fn = SplitMaskLoss(width, vocab_size=vocab, temperature=0.2)
    tokenizer = SplitMaskTokenizer(patch_size=4, in_channels=1,
                                   vocab_size=vocab, proj_dim=16)
    masks = SplitMaskGenerator(8, mode='block', ratio=0.5,
                               min_block_patches=4)
    params = [*encoder.parameters(), *decoder.parameters(),
              *loss_fn.parameters()]
    opt = torch.optim.AdamW([q for q in params if q.requires_grad],
                            lr=args.lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps):
        idx = torch.randint(len(images), (args.batch_size, ), generator=g)
        x = images[idx]
        if torch.rand(1, generator=g).item() < 0.5:
            x = x.flip(-1)
        out = splitmask_step(x, encoder, decoder, loss_fn, tokenizer, masks,
                             generator=g)
        opt.zero_grad()
        out['loss'].backward()
        opt.step()
        if step % 20 == 0 or step == args.steps - 1:
            print(f'step {step:4d}  loss {out["loss"].item():.4f}  mim '
                  f'{out["mim"].item():.4f}  nce {out["nce"].item():.4f}  '
                  f'token acc {out["mim_acc"].item():.3f}')
    print('done')


if __name__ == '__main__':
    main()
