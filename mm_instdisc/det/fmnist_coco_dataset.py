"""The composed Fashion-MNIST instance set for mmdet (``FMNISTCocoDataset``).

mmdet's ``CocoDataset`` reads the set that ``mm-instdisc-make-fmnist-coco``
(:mod:`mm_instdisc.datasets.composed_coco`) writes; a missing annotation
file names the tool that writes it.
"""
import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

MAKE_SET = ('mm-instdisc-make-fmnist-coco --out {root} (or python '
            'tools/dataset_converters/make_fmnist_coco.py --out {root})')


@DATASETS.register_module()
class FMNISTCocoDataset(CocoDataset):
    """``CocoDataset`` of the composed Fashion-MNIST instance set; a missing
    annotation file is a ``FileNotFoundError`` that names it and the command
    that writes the set."""

    def __init__(self, *args, **kwargs) -> None:
        ann = kwargs.get('ann_file', '')
        root = kwargs.get('data_root') or ''
        path = ann if osp.isabs(ann) or not root else osp.join(root, ann)
        if ann and '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(
                f'The composed Fashion-MNIST set is missing: {path} does not '
                f'exist (data_root={root!r}). Write it with ' +
                MAKE_SET.format(root=root or 'DATA_ROOT') + ', or point '
                'data_root (environment variable MM_INSTDISC_DATA, or '
                '--cfg-options) at an existing one.')
        super().__init__(*args, **kwargs)
