"""NPID in a plain PyTorch loop with lightly's data and transforms.

    python examples/npid_lightly.py [--data-root data/fashion_mnist] [--epochs 1]

No mmengine involved: lightly's ``LightlyDataset`` and ``SimCLRViewTransform``
feed a torchvision ResNet-18, and mm_instdisc's plain-PyTorch
``MemoryBank`` + ``NPIDLoss`` do non-parametric instance discrimination.
The bank is updated *after* the optimizer step (the full-softmax backward
reads it) and the weighted kNN accuracy against the bank is printed at the
end of each epoch.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lightly.data import LightlyDataset  # noqa: E402
from lightly.transforms import SimCLRViewTransform  # noqa: E402

from mm_instdisc.datasets import FashionMNIST  # noqa: E402
from mm_instdisc.modules import MemoryBank, NPIDLoss, readout  # noqa: E402


def IDXImages(root, split='train', limit=None):
    """Fashion-MNIST as (RGB PIL image, label), torchvision style (numpy and
    torch only: mm_instdisc.datasets' reader needs no OpenMMLab)."""
    return FashionMNIST(root, split, limit=limit, rgb=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--data-root', default='data/fashion_mnist')
    p.add_argument('--limit', type=int, default=5000, help='training images')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--max-steps', type=int, default=None)
    p.add_argument('--num-negatives', type=int, default=1024,
                   help='m noise rows per step (must be < --limit)')
    args = p.parse_args()
    torch.manual_seed(0)

    transform = SimCLRViewTransform(input_size=28, cj_prob=0.0, min_scale=0.5,
                                    random_gray_scale=0.0, gaussian_blur=0.0,
                                    normalize=dict(mean=[0.286] * 3,
                                                   std=[0.353] * 3))
    T = torchvision.transforms
    test_tf = T.Compose([T.ToTensor(), T.Normalize([0.286] * 3, [0.353] * 3)])
    base = IDXImages(args.data_root, 'train', args.limit)
    # the filename is the image's index: NPID's handle on the memory bank
    dataset = LightlyDataset.from_torch_dataset(
        base, transform=transform, index_to_filename=lambda ds, i: str(i))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size,
                                         shuffle=True, drop_last=True)

    resnet = torchvision.models.resnet18(num_classes=128)
    resnet.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    resnet.maxpool = torch.nn.Identity()
    bank = MemoryBank(len(dataset), feat_dim=128, momentum=0.5)
    criterion = NPIDLoss(mode='nce', num_negatives=args.num_negatives,
                         temperature=0.1,
                         shared_negatives=True)
    opt = torch.optim.SGD(resnet.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=5e-4)
    labels = torch.as_tensor(base.labels).long()
    step = 0
    for epoch in range(args.epochs):
        for x, _, fnames in loader:
            idx = torch.tensor([int(f) for f in fnames])
            f = F.normalize(resnet(x), dim=1)
            loss = criterion(f, idx, bank.bank)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bank.update(idx, f.detach())
            step += 1
            if step % 10 == 0:
                print(f'epoch {epoch} step {step} loss {loss.item():.4f}',
                      flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        # weighted kNN: held-out test images (no augmentation) vs the bank
        test = IDXImages(args.data_root, 'test', limit=1000)
        with torch.no_grad():
            resnet.eval()
            tq = torch.stack([test_tf(test[i][0]) for i in range(len(test))])
            q = F.normalize(resnet(tq), dim=1)
            resnet.train()
        acc = readout(bank.bank, labels, q,
                      torch.as_tensor(test.labels).long(), ks=(200, ),
                      probe=False, num_classes=10)['knn_k200']
        print(f'epoch {epoch}: loss {loss.item():.4f}, kNN top-1 vs bank '
              f'{acc:.2f}% (1000 test images)')


if __name__ == '__main__':
    main()
