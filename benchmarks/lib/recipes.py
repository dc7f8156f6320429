"""Where the 15-minute Fashion-MNIST recipes (``recipes_benchmark.py``) and
their transfer runs live, so that another benchmark (``claims_benchmark.py
--recipes``) can start from their checkpoints and reuse their finished
fine-tunings instead of repeating them."""
import os.path as osp

# method -> (recipe config, epochs it trains, a line for the report)
METHODS = {
    'npid': ('configs/npid/npid_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
             14, 'NPID, sampled softmax over 8192 shared negatives, ResNet-18 w32 (stride-2 first '
             'stage), batched augmentation, bf16'),
    'mocov2': ('configs/mocov2/mocov2_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
               9, "MoCo v2 (mmpretrain's MoCo), queue 8192, t 0.1, the NPID recipe's "
               'network, batched augmentation (two views), bf16'),
    'adco': ('configs/adco/adco_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
             9, 'AdCo, 8192 adversarial negatives (lr 1), t 0.12, mem_t 0.05, same network '
             'and augmentation as MoCo v2'),
    'exemplar': ('configs/exemplar/exemplar-v2_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
                 8, 'Exemplar-v2 (MoCo v2 recipe + label filter on the queue)'),
    'splitmask': ('configs/splitmask/splitmask_vit-w64d4-p4_1xb256-bf16-cos-15min_fashion-mnist.py',
                  6, 'SplitMask, ViT width 64, 4 layers, 4x4 patches at 28 px, 1-layer decoder, '
                  'batched augmentation, bf16'),
    # the classic pretext tasks, baselines on the same network (docs/pretext.md)
    'rotation': ('configs/pretext/rotation-pred_resnet18-w32s2_1xb256-bf16-cos-15min_'
                 'fashion-mnist.py', 3, 'Rotation prediction (4 rotations of every image, '
                 'linear 4-way classifier), the NPID recipe\'s network, bf16'),
    'relloc': ('configs/pretext/relative-loc_resnet18-w32s2_1xb256-bf16-cos-15min_'
               'fashion-mnist.py', 3, 'Relative patch location (3x3 grid of 7 px patches, '
               'gap 2, jitter 1, 8 pairs per image, lr 0.12), same network'),
    'jigsaw': ('configs/pretext/jigsaw_resnet18-w32s2_1xb256-bf16-cos-15min_fashion-mnist.py',
               4, 'Jigsaw (2x2 tiles of 12 px at the images\' scale, all 24 permutations in '
               'maximal-Hamming order), same network'),
    'maskint': ('configs/pretext/masked-intensity_resnet18-w32s2_1xb256-bf16-cos-15min_'
                'fashion-mnist.py', 7, "Colorization's recipe for grey images: the mean intensity's "
                'bin of 2 hidden quadrants of 4 (16 bins, soft targets, rebalancing; until '
                '2026-12-01 a 7x7 grid of 4 px cells), same network'),
}
PRETEXT = ('rotation', 'relloc', 'jigsaw', 'maskint')

# read-out by fine-tuning with labels: method -> (fine-tuning config, its
# epochs, the random-init run it is compared with), run from the recipe's
# checkpoint and from random init with the run's seed (the labelled subset's
# seed too). The ResNet recipes share one network, so one random-init
# fine-tuning per seed serves them all.
FT_RESNET = ('configs/benchmarks/classification/fashion_mnist/resnet18-w32s2_1xb64-ft-coslr-'
             '100e_fashion-mnist-1pc.py', 100, 'resnet18-w32s2-random')
FINETUNE = {
    'splitmask': ('configs/splitmask/benchmarks/vit-w64d4-p4_splitmask-15min-pre_1xb128-bf16-'
                  'coslr-30e_fashion-mnist-6k.py', 30, 'splitmask-random'),
    'npid': FT_RESNET, 'mocov2': FT_RESNET, 'adco': FT_RESNET, 'exemplar': FT_RESNET,
    **{m: FT_RESNET for m in PRETEXT},
}
# Mask R-CNN transfer of the ResNet recipes (detection_section)
RECIPE_DET_CONFIG = ('configs/benchmarks/mmdetection/fmnist_coco/'
                     'mask-rcnn_resnet18-w32s2-fpn_1xb4-6e_fmnist-coco.py')
DET_METHODS = ('npid', 'mocov2', 'adco', 'exemplar', *PRETEXT)
DET_EPOCHS = 3


def recipe_checkpoint(work_dir: str, method: str, seed: int) -> str:
    """The final pretraining checkpoint of ``method``'s recipe at ``seed``
    under the recipes' ``work_dir`` (it may not exist yet)."""
    return osp.join(work_dir, method, f'seed{seed}',
                    f'epoch_{METHODS[method][1]}.pth')


def finetune_work_dir(work_dir: str, method: str, seed: int,
                      pretrained) -> str:
    """Where the fine-tuning with labels (``FINETUNE[method]``) of seed
    ``seed`` runs: from the recipe's checkpoint, or (``pretrained`` false)
    from random init, shared by the methods with the same network."""
    if pretrained:
        return osp.join(work_dir, method, f'finetune_pretrained_seed{seed}')
    random_run = FINETUNE[method][2]
    return osp.join(work_dir, random_run[:-len('-random')],
                    f'finetune_random_seed{seed}')


def detection_work_dir(work_dir: str, seed: int, start: str) -> str:
    """Where Mask R-CNN fine-tuning from ``start`` (a method of
    ``DET_METHODS`` or ``'random'``) at ``seed`` runs."""
    return osp.join(work_dir, 'detection', f'seed{seed}', start)
