"""Shared by the GPU sweeps (``benchmarks/twoview_sweep.py``,
``pretext_sweep.py``): the Fashion-MNIST recipes' network in plain PyTorch
and a driver that runs many settings side by side on one device.

The GPU machine has torch but no OpenMMLab, so the sweeps replay a recipe's
training with ``mm_instdisc.modules`` alone, the read-out
(``mm_instdisc.modules.readout``) included, and read the images with
``mm_instdisc.datasets``' reader (which needs no OpenMMLab where none is
installed).
They rank settings; the OpenMMLab run of the chosen one on the CPU is what a
report publishes.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

from mm_instdisc.datasets.fashion_mnist_reader import load_fashion_mnist

#: the recipes' data preprocessor normalisation (0-255 pixels)
MEAN, STD = 72.94, 90.02


class BasicBlock(nn.Module):

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + idt)


def backbone(pool=True):
    """mmpretrain's ResNet_CIFAR(depth 18, stem/base 32, strides 2,2,2,2,
    one channel), with global average pooling (``pool``) or ending at the
    last feature map."""
    layers = [nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
              nn.ReLU(inplace=True)]
    cin = 32
    for i, stride in enumerate((2, 2, 2, 2)):
        cout = 32 * 2**i
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    if pool:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    net = nn.Sequential(*layers)
    for m in net.modules():  # mmpretrain's ResNet init
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                    nonlinearity='relu')
    return net


def load_split(data_root, split):
    x, y = load_fashion_mnist(data_root, split)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


@torch.no_grad()
def pooled_features(net, x, device, size=None):
    """L2-normalised pooled features of uint8 images (N, 28, 28) through
    ``net`` (images -> (N, D)) in eval mode, bf16 autocast; ``size``
    resizes the images first (bilinear)."""
    was_training = net.training
    net.eval()
    out = []
    for c in x.split(1024):
        c = (c.to(device).float()[:, None] - MEAN) / STD
        if size is not None and size != c.shape[-1]:
            c = F.interpolate(c, size=(size, size), mode='bilinear',
                              align_corners=False)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out.append(net(c).float().flatten(1))
    net.train(was_training)
    return F.normalize(torch.cat(out), dim=1)


def run_side_by_side(script, names, out, device, parallel, extra=()):
    """Runs ``script --one NAME --out PART`` for each name, ``parallel`` at a
    time, collecting each child's JSON result into ``out`` as it ends (so
    a sweep stopped early keeps what finished). Returns the results.
    A name may end in ``@SEED`` (the script's setting at another seed)."""
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    parts = tempfile.mkdtemp(prefix='sweep_')  # one JSON a child
    pending, procs, results = list(names), [], []
    while pending or procs:
        while pending and len(procs) < parallel:
            name = pending.pop(0)
            part = osp.join(parts, f'{name}.json')
            cmd = [sys.executable, script, '--out', part, '--device', device,
                   '--one', name, *extra]
            procs.append((name, part, subprocess.Popen(cmd)))
        time.sleep(1)
        for entry in list(procs):
            name, part, p = entry
            if p.poll() is None:
                continue
            procs.remove(entry)
            if p.returncode == 0:
                with open(part) as f:
                    results.append(json.load(f))
                print(f'== {name}: ' + summary(results[-1]), flush=True)
            else:
                print(f'== {name}: failed ({p.returncode})', flush=True)
            with open(out, 'w') as f:
                json.dump(results, f, indent=1)
    return results


def summary(r):
    keys = [k for k in r if k.startswith(('knn', 'probe'))]
    return ' '.join(f'{k} {r[k]:.2f}' for k in keys) + (
        f' ({r["minutes"]:.1f} min)' if 'minutes' in r else '')
