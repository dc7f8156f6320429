"""SplitMask in a hand-written PyTorch loop (no Runner, no config).

    python examples/splitmask_plain.py [--data-root data/fashion_mnist]
        [--steps 200] [--batch-size 64]

No OpenMMLab: the encoder and decoder are small ViTs written below with
torch.nn (the registered SplitMaskViT / SplitMaskDecoder do the same for
mmpretrain configs); masks, tokeniser and losses come from
``mm_instdisc.modules`` (plain torch), and ``splitmask_step`` is the same
function the registered ``SplitMask`` algorithm calls. Reads Fashion-MNIST
from its IDX files (``mm_instdisc.datasets``); prints the losses.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mm_instdisc.datasets import read_idx  # noqa: E402
from mm_instdisc.modules import (SplitMaskGenerator, SplitMaskLoss,  # noqa
                                 SplitMaskTokenizer, splitmask_step)


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding, (grid * grid, dim)."""
    y, x = torch.meshgrid(torch.arange(grid, dtype=torch.float32),
                          torch.arange(grid, dtype=torch.float32),
                          indexing='ij')
    omega = 1.0 / 10000 ** (torch.arange(dim // 4) / (dim // 4))
    out = [f(c.reshape(-1, 1) * omega) for c in (x, y)
           for f in (torch.sin, torch.cos)]
    return torch.cat(out, 1)


def layers(width, depth, heads):
    layer = torch.nn.TransformerEncoderLayer(
        width, heads, 4 * width, dropout=0.0, activation='gelu',
        batch_first=True, norm_first=True)
    return torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class Encoder(torch.nn.Module):
    """ViT that sees only the patches ``ids``: (B, 1 + K, C), class first."""

    def __init__(self, img=32, patch=4, width=64, depth=2, heads=4):
        super().__init__()
        grid = img // patch
        self.embed = torch.nn.Conv2d(1, width, patch, patch)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer('pos', sincos_2d(grid, width)[None])
        self.blocks = layers(width, depth, heads)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, images, ids):
        x = self.embed(images).flatten(2).transpose(1, 2) + self.pos
        x = x.gather(1, ids[..., None].expand(-1, -1, x.shape[2]))
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        return self.norm(self.blocks(x))


class Decoder(torch.nn.Module):
    """Puts the encoder tokens back at ``ids``, a learned mask token
    elsewhere, position embeddings, transformer layers: (B, L, C)."""

    def __init__(self, grid=8, width=64, depth=2, heads=4):
        super().__init__()
        self.num_patches = grid * grid
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer('pos', sincos_2d(grid, width)[None])
        self.blocks = layers(width, depth, heads)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, x, ids):
        b, _, c = x.shape
        full = self.mask_token.expand(b, self.num_patches, c)
        full = full.scatter(1, ids[..., None].expand(-1, -1, c), x[:, 1:])
        full = torch.cat([x[:, :1], full + self.pos], 1)
        return self.norm(self.blocks(full))[:, 1:]


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
    encoder = Encoder(img=32, patch=4, width=width, depth=2, heads=4)
    decoder = Decoder(grid=8, width=width, depth=2, heads=4)
    torch.nn.init.trunc_normal_(encoder.cls, std=0.02)
    torch.nn.init.trunc_normal_(decoder.mask_token, std=0.02)
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
