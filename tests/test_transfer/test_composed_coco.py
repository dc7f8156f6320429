"""The composed Fashion-MNIST instance-segmentation set is valid COCO."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mm_instdisc.datasets import read_idx
from mm_instdisc.datasets.composed_coco import (ComposeSettings,
                                                compose_canvas, drop_fragments,
                                                item_silhouette,
                                                make_composed_coco,
                                                mask_to_bbox, split_item_range)
from tests.helpers import ROOT

TINY = dict(canvas_size=64, scale_range=(0.8, 1.6), min_items=2, max_items=4)


def _load_fmnist(root):
    imgs = read_idx(os.path.join(root, 'train-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(root, 'train-labels-idx1-ubyte.gz'))
    return imgs, labels


def _make(root, out, seed=0, n_train=8, n_val=4):
    imgs, labels = _load_fmnist(root)
    items = split_item_range((100, 200), len(imgs), 0.25)
    files = make_composed_coco(imgs, labels, str(out), items,
                               dict(train=n_train, val=n_val),
                               ComposeSettings(**TINY), seed=seed,
                               log=lambda msg: None)
    return files, items


@pytest.fixture(scope='module')
def composed(fmnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('coco')
    files, items = _make(fmnist_root, out)
    return out, files, items


def test_pycocotools_reads_it_and_masks_match_boxes(composed):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    out, files, items = composed
    for split, n_img in (('train', 8), ('val', 4)):
        coco = COCO(files[split])
        assert len(coco.getImgIds()) == n_img
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())][:2] == [
            'T-shirt/top', 'Trouser']
        assert len(coco.getCatIds()) == 10
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) >= n_img  # at least one object per canvas
        lo, hi = items[split][0], items[split][-1]
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            assert ann['area'] > 0 and ann['area'] == mask.sum()
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0
            mx, my, mw, mh = mask_to_bbox(mask)
            np.testing.assert_allclose([x, y, x + w, y + h],
                                       [mx, my, mx + mw, my + mh], atol=1)
            # pycocotools' own box of the RLE agrees too
            np.testing.assert_allclose(
                mask_utils.toBbox(ann['segmentation']), ann['bbox'], atol=1)
            assert lo <= ann['fmnist_index'] <= hi  # disjoint item ranges
            assert ann['iscrowd'] == 0
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            path = os.path.join(out, split, info['file_name'])
            from PIL import Image
            img = np.asarray(Image.open(path))
            assert img.shape == (info['height'], info['width']) == (64, 64)
            masks = [coco.annToMask(a).astype(bool)
                     for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
            # visible masks never share a pixel (occlusion resolved)
            assert (np.sum(masks, 0) <= 1).all()
            # every object pixel is drawn from its item, so not all black
            for m in masks:
                assert img[m].max() > TINY.get('threshold', 20)


def test_train_and_val_items_are_disjoint(composed):
    _, files, _ = composed
    used = {}
    for split, path in files.items():
        anns = json.load(open(path))['annotations']
        used[split] = {a['fmnist_index'] for a in anns}
    assert used['train'] and used['val']
    assert not used['train'] & used['val']


def test_deterministic_by_seed(fmnist_root, tmp_path):
    def digest(out):
        h = hashlib.sha256()
        for dirpath, _, names in sorted(os.walk(out)):
            for name in sorted(names):
                h.update(name.encode())
                h.update(open(os.path.join(dirpath, name), 'rb').read())
        return h.hexdigest()
    _make(fmnist_root, tmp_path / 'a', seed=3)
    _make(fmnist_root, tmp_path / 'b', seed=3)
    _make(fmnist_root, tmp_path / 'c', seed=4)
    assert digest(tmp_path / 'a') == digest(tmp_path / 'b')
    assert digest(tmp_path / 'a') != digest(tmp_path / 'c')


def _blob(h, w):
    img = np.zeros((28, 28), np.uint8)
    img[2:2 + h, 2:2 + w] = 200
    return img


def test_later_items_occlude_earlier_ones():
    """Two opaque squares on the same spot: the back one loses the overlap."""
    settings = ComposeSettings(canvas_size=40, min_items=1, max_items=2,
                               scale_range=(1., 1.), overlap_prob=1.,
                               min_visible=0.05, min_fragment=1)
    items = [(_blob(24, 24), 3, 10), (_blob(10, 10), 7, 11)]
    canvas, inst = compose_canvas(items, np.random.default_rng(0), settings)
    assert [i['label'] for i in inst] == [3, 7]
    back, front = inst[0]['mask'], inst[1]['mask']
    assert front.sum() == 100  # in front: its whole silhouette
    assert not (back & front).any()
    assert back.sum() + front.sum() == (canvas > 0).sum()
    assert back.sum() < 24 * 24  # the front square covers part of it
    assert inst[0]['bbox'] == mask_to_bbox(back)


def test_min_visible_keeps_earlier_items_visible():
    settings = ComposeSettings(canvas_size=28, min_items=1, max_items=3,
                               scale_range=(1., 1.), min_visible=0.9,
                               max_tries=5)
    # three full-canvas items: the second would hide the first completely
    items = [(np.full((28, 28), 200, np.uint8), i, i) for i in range(3)]
    _, inst = compose_canvas(items, np.random.default_rng(0), settings)
    assert len(inst) == 1 and inst[0]['mask'].all()


def test_fragments_and_silhouettes():
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True  # 64 px
    mask[15, 15:17] = True  # a 2 px sliver
    kept = drop_fragments(mask, min_fragment=8)
    assert kept.sum() == 64 and not kept[15, 15]
    tiny = np.zeros((5, 5), bool)
    tiny[0, 0] = tiny[4, 4] = True
    assert drop_fragments(tiny, 8).sum() == 1  # the largest piece stays
    ring = np.zeros((10, 10), np.uint8)
    ring[2:8, 2:8] = 200
    ring[4:6, 4:6] = 0  # a dark hole inside the item
    assert item_silhouette(ring, 20).sum() == 36


def test_bad_arguments_name_the_value(fmnist_root):
    with pytest.raises(ValueError, match=r'Illegal item range: \[50000, '
                       r'60000\).*<= 200'):
        split_item_range((50000, 60000), 200, 0.2)
    with pytest.raises(ValueError, match='Illegal val_fraction: 0.0'):
        split_item_range((0, 100), 200, 0.0)
    with pytest.raises(ValueError, match=r'Illegal scale_range: \(2.0, 1.0\)'):
        ComposeSettings(scale_range=(2, 1))
    with pytest.raises(ValueError, match='Illegal canvas_size: 16'):
        ComposeSettings(canvas_size=16)


@pytest.mark.subprocess
def test_tool_writes_a_set(fmnist_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, 'tools/dataset_converters/make_fmnist_coco.py',
           '--fmnist-root', fmnist_root, '--out', str(tmp_path / 'fc'),
           '--num-train', '3', '--num-val', '2', '--canvas', '64',
           '--scale', '0.8', '1.5', '--item-start', '100', '--item-end',
           '200']
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '[train] 3/3 images' in r.stderr
    assert 'train indices 100-179' in r.stderr
    ann = json.load(open(tmp_path / 'fc/annotations/instances_val.json'))
    assert len(ann['images']) == 2
    assert ann['info']['fmnist_train_indices'] == [180, 200]
    r = subprocess.run(cmd[:-4], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)  # default range 50000-60000
    assert r.returncode != 0 and 'Illegal item range' in r.stderr
