"""AdCo in a plain PyTorch loop with lightly's data, transforms and helpers.

    python examples/adco_lightly.py [--data-root data/fashion_mnist] [--epochs 1]

No mmengine involved: lightly's ``LightlyDataset`` and ``SimCLRTransform``
give two views per image, lightly's ``MoCoProjectionHead`` and
``update_momentum`` build the MoCo-v2 query/key pair, and mm_instdisc's
plain-PyTorch ``AdversarialNegatives`` + ``AdCoLoss`` do the rest:

* the negatives are filled from the keys of the first iterations (frozen
  meanwhile), as in the official code;
* then each step, one backward of ``encoder_loss + negatives_loss`` gives
  both players' gradients; the encoder's SGD *descends*, the negatives' SGD
  is built with ``maximize=True`` (lr 3, momentum 0.9, wd 1e-4), so it
  *ascends* on the loss at mem_t.

At the end of each epoch it prints the weighted kNN accuracy of the backbone
features of 1000 test images against the training images.
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lightly.data import LightlyDataset  # noqa: E402
from lightly.models.modules import MoCoProjectionHead  # noqa: E402
from lightly.models.utils import deactivate_requires_grad  # noqa: E402
from lightly.models.utils import update_momentum  # noqa: E402
from lightly.transforms import SimCLRTransform  # noqa: E402

from mm_instdisc.modules import (AdCoLoss, AdversarialNegatives,  # noqa: E402
                                 readout)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npid_lightly import IDXImages  # noqa: E402


def backbone_net():
    """torchvision ResNet-18 with a CIFAR stem, 512-d pooled output."""
    resnet = torchvision.models.resnet18()
    resnet.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    resnet.maxpool = torch.nn.Identity()
    resnet.fc = torch.nn.Identity()
    return resnet


@torch.no_grad()
def knn_accuracy(backbone, train, test, tf, n_test=1000):
    backbone.eval()

    def feats(ds, n):
        x = torch.stack([tf(ds[i][0]) for i in range(n)])
        return F.normalize(torch.cat([backbone(c) for c in x.split(256)]), dim=1)

    n_train = len(train)
    bank = feats(train, n_train)
    n_test = min(n_test, len(test))
    acc = readout(bank, torch.tensor(train.labels[:n_train].astype('int64')),
                  feats(test, n_test),
                  torch.tensor(test.labels[:n_test].astype('int64')),
                  ks=(20, ), probe=False, num_classes=10)['knn_k20']
    backbone.train()
    return acc


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--data-root', default='data/fashion_mnist')
    p.add_argument('--limit', type=int, default=5000, help='training images')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--num-negatives', type=int, default=1024)
    p.add_argument('--max-steps', type=int, default=None)
    args = p.parse_args()
    torch.manual_seed(0)

    norm = dict(mean=[0.286] * 3, std=[0.353] * 3)
    transform = SimCLRTransform(input_size=28, cj_prob=0.0, min_scale=0.2,
                                random_gray_scale=0.0, gaussian_blur=0.0,
                                normalize=norm)
    T = torchvision.transforms
    test_tf = T.Compose([T.ToTensor(), T.Normalize(norm['mean'], norm['std'])])
    base = IDXImages(args.data_root, 'train', args.limit)
    dataset = LightlyDataset.from_torch_dataset(base, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size,
                                         shuffle=True, drop_last=True)

    query = torch.nn.Sequential(backbone_net(), MoCoProjectionHead(512, 512, 128))
    key = copy.deepcopy(query)
    deactivate_requires_grad(key)
    negatives = AdversarialNegatives(args.num_negatives, feat_dim=128,
                                     init='keys')
    criterion = AdCoLoss(temperature=0.12, mem_temperature=0.02)
    opt = torch.optim.SGD(query.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=5e-4)
    # the adversary: gradient ASCENT on the loss at mem_t
    opt_neg = torch.optim.SGD(negatives.parameters(), lr=3.0, momentum=0.9,
                              weight_decay=1e-4, maximize=True)
    step, w_init = 0, None
    for epoch in range(args.epochs):
        for (x_q, x_k), _, _ in loader:
            update_momentum(query, key, m=0.99)
            q = F.normalize(query(x_q), dim=1)
            with torch.no_grad():
                k = F.normalize(key(x_k), dim=1)
            if not negatives.initialised:
                # initialisation phase: own key as the only positive, the
                # negatives are frozen and filled with this step's keys
                enc, _ = criterion(q, k, negatives().detach(),
                                   batch_negatives=False)
                opt.zero_grad()
                enc.backward()
                opt.step()
                if negatives.init_from_keys(k) and negatives.initialised:
                    key.load_state_dict(query.state_dict())
                    w_init = negatives().detach().clone()
            else:
                enc, adv = criterion(q, k, negatives())
                opt.zero_grad()
                opt_neg.zero_grad()
                (enc + adv).backward()
                opt.step()
                opt_neg.step()
            step += 1
            if step % 10 == 0:
                print(f'epoch {epoch} step {step} loss {enc.item():.4f} '
                      f'negatives filled {int(negatives.num_filled)}',
                      flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        # kNN reference: the training images without augmentation
        train = IDXImages(args.data_root, 'train', args.limit)
        test = IDXImages(args.data_root, 'test')
        acc = knn_accuracy(query[0], train, test, test_tf)
        print(f'epoch {epoch}: loss {enc.item():.4f}, backbone kNN top-1 '
              f'(k=20) {acc:.2f}% (1000 test images)')
    if w_init is not None:
        moved = (negatives().detach() - w_init).norm(dim=0).mean().item()
        print(f'negatives: {int(negatives.num_filled)} initialised from keys, '
              f'mean column moved by ascent {moved:.4f}')


if __name__ == '__main__':
    main()
