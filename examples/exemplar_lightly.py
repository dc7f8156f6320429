"""Exemplar-v2 in a plain PyTorch loop with lightly's data, transform and heads.

    python examples/exemplar_lightly.py [--data-root data/fashion_mnist] [--epochs 1]

No mmengine involved: lightly's ``LightlyDataset`` (which also returns each
image's label) and ``MoCoV2Transform`` feed a torchvision ResNet-18 with
lightly's ``MoCoProjectionHead`` and momentum update; mm_instdisc's
plain-PyTorch ``ExemplarQueue`` (keys + labels) and ``ExemplarLoss`` drop
the queued keys of the query's own class from the negatives. The queue is
updated after the loss, as in MoCo. At the end of each epoch the weighted
kNN accuracy of the backbone features on held-out test images is printed,
and how many same-class negatives the filter removed.
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
from lightly.transforms import MoCoV2Transform  # noqa: E402

from mm_instdisc.modules import (ExemplarLoss, ExemplarQueue,  # noqa: E402
                                 readout)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npid_lightly import IDXImages  # noqa: E402


class Encoder(torch.nn.Module):
    """ResNet-18 (CIFAR stem) backbone + MoCo v2 MLP head to 128-d."""

    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet18()
        resnet.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        resnet.maxpool = torch.nn.Identity()
        resnet.fc = torch.nn.Identity()
        self.backbone = resnet
        self.head = MoCoProjectionHead(512, 512, 128)

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--data-root', default='data/fashion_mnist')
    p.add_argument('--limit', type=int, default=5000, help='training images')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--queue-len', type=int, default=4096)
    p.add_argument('--max-steps', type=int, default=None)
    args = p.parse_args()
    torch.manual_seed(0)

    norm = dict(mean=[0.286] * 3, std=[0.353] * 3)
    # grey images: no colour jitter / grayscale; MoCo v2 crops, blur, flip
    transform = MoCoV2Transform(input_size=28, cj_prob=0.0,
                                random_gray_scale=0.0, gaussian_blur=0.5,
                                normalize=norm)
    T = torchvision.transforms
    test_tf = T.Compose([T.ToTensor(), T.Normalize(norm['mean'],
                                                   norm['std'])])
    base = IDXImages(args.data_root, 'train', args.limit)
    dataset = LightlyDataset.from_torch_dataset(base, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size,
                                         shuffle=True, drop_last=True)

    model = Encoder()
    model_k = copy.deepcopy(model)
    deactivate_requires_grad(model_k)
    queue = ExemplarQueue(queue_len=args.queue_len, feat_dim=128)
    criterion = ExemplarLoss(temperature=0.2)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9,
                          weight_decay=5e-4)
    test = IDXImages(args.data_root, 'test', limit=1000)
    train_eval = IDXImages(args.data_root, 'train', args.limit)
    step = 0
    for epoch in range(args.epochs):
        excluded = []
        for (x_q, x_k), y, _ in loader:
            q = model(x_q)
            with torch.no_grad():
                update_momentum(model, model_k, m=0.99)
                k = model_k(x_k)
            loss = criterion(q, k, queue.keys.clone(), y,
                             queue.labels.clone())
            excluded.append((y[:, None] == queue.labels[None]).float()
                            .mean().item())
            queue.enqueue(k, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 10 == 0:
                print(f'epoch {epoch} step {step} loss {loss.item():.4f}',
                      flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        # weighted kNN on backbone features: test images vs training images
        with torch.no_grad():
            model.eval()

            def feats(ds):
                x = torch.stack([test_tf(ds[i][0]) for i in range(len(ds))])
                return F.normalize(model.backbone(x), dim=1)

            ref, qry = feats(train_eval), feats(test)
            model.train()
        ref_labels = torch.as_tensor(train_eval.labels.copy()).long()
        acc = readout(ref, ref_labels, qry,
                      torch.as_tensor(test.labels.copy()).long(), ks=(20, ),
                      probe=False, num_classes=10)['knn_k20']
        print(f'epoch {epoch}: loss {loss.item():.4f}, same-class negatives '
              f'removed {100 * sum(excluded) / len(excluded):.1f}%, '
              f'labelled queue slots {queue.num_filled()}/{queue.queue_len}, '
              f'kNN top-1 (k=20) {acc:.2f}% ({len(test)} test images)')


if __name__ == '__main__':
    main()
