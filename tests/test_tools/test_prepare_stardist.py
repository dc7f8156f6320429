"""tools/dataset_converters/prepare_stardist.py on a synthetic label image
of discs: boxes, masks and areas against the label image, clipping and
dropping at tile borders, the split's disjointness, idempotence; the real
wheel when pip can download it."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest

from tests.helpers import ROOT

H, W, TILE, STRIDE = 64, 128, 32, 16
# (row, col, radius): discs inside tiles, across tile borders, on the
# split line (column 96) and in a corner
DISCS = [(10, 10, 5), (16, 40, 6), (40, 31, 7), (50, 96, 6), (5, 120, 4),
         (33, 70, 3), (60, 60, 4), (31, 100, 8)]


@pytest.fixture(scope='module')
def sd():
    path = osp.join(ROOT, 'tools/dataset_converters/prepare_stardist.py')
    spec = importlib.util.spec_from_file_location('prepare_stardist', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic():
    """A uint16 image and its label image of discs (ids 3, 6, 9, ...)."""
    yy, xx = np.mgrid[:H, :W]
    labels = np.zeros((H, W), np.uint16)
    for i, (r, c, rad) in enumerate(DISCS):
        labels[(yy - r)**2 + (xx - c)**2 <= rad**2] = 3 * (i + 1)
    rng = np.random.default_rng(0)
    image = (rng.integers(0, 100, (H, W)) + 800 * (labels > 0)).astype(
        np.uint16)
    return image, labels


def _decode(rle):
    from pycocotools import mask as mask_utils
    return mask_utils.decode(dict(rle, counts=rle['counts'].encode()))


def test_tiles_boxes_and_masks_match_the_label_image(sd, tmp_path):
    from PIL import Image
    image, labels = synthetic()
    out = str(tmp_path / 'out')
    res = sd.prepare(image, labels, out, tile=TILE, stride=STRIDE,
                     min_area=6, min_visible=0.25)
    assert res['written'] and res['split_x'] == 96
    img8 = sd.to_uint8(image)
    assert img8.dtype == np.uint8 and img8.max() == 255 and img8.min() == 0
    ids, counts = np.unique(labels, return_counts=True)
    full = dict(zip(ids.tolist(), counts.tolist()))
    seen = set()
    for split in ('train', 'test'):
        with open(osp.join(out, f'{split}.json')) as f:
            coco = json.load(f)
        assert coco['categories'] == [dict(id=1, name='nucleus',
                                           supercategory='cell')]
        by_image = {}
        for a in coco['annotations']:
            by_image.setdefault(a['image_id'], []).append(a)
        for img in coco['images']:
            x, y, w, h = img['tile']
            assert (w, h) == (img['width'], img['height']) == (TILE, TILE)
            png = np.asarray(Image.open(osp.join(out, split, 'images',
                                                 img['file_name'])))
            assert np.array_equal(png, img8[y:y + h, x:x + w])
            window = labels[y:y + h, x:x + w]
            # reference: every part of a disc in the window that is kept
            want = {}
            for nid in np.unique(window[window > 0]).tolist():
                m = window == nid
                if m.sum() >= 6 and m.sum() >= 0.25 * full[nid]:
                    want[nid] = m
            got = {a['nucleus_id']: a for a in by_image.get(img['id'], [])}
            assert set(got) == set(want), (img['file_name'], set(got))
            for nid, a in got.items():
                m = want[nid]
                assert np.array_equal(_decode(a['segmentation']), m)
                rows, cols = np.nonzero(m)
                assert a['bbox'] == [cols.min(), rows.min(),
                                     cols.max() - cols.min() + 1,
                                     rows.max() - rows.min() + 1]
                assert a['area'] == m.sum()
                assert a['iscrowd'] == 0 and a['category_id'] == 1
                seen.add(nid)
        ids_ = [a['id'] for a in coco['annotations']]
        assert len(set(ids_)) == len(ids_)
    assert seen == set(full) - {0}  # every disc is somewhere


def test_clipped_fragments_are_dropped(sd):
    _, labels = synthetic()
    full = {3 * (i + 1): int((labels == 3 * (i + 1)).sum())
            for i in range(len(DISCS))}
    # tile at (0, 0): disc 9 (centre (40, 31), radius 7) reaches 6 px in
    anns = sd.tile_annotations(labels, 16, 0, TILE, full, min_area=1,
                               min_visible=0.0)
    cut = [a for a in anns if a['nucleus_id'] == 9][0]
    assert cut['bbox'][0] + cut['bbox'][2] == TILE  # clipped at the border
    part = int((labels[16:48, :32] == 9).sum())
    assert cut['area'] == part < full[9]
    kept = sd.tile_annotations(labels, 16, 0, TILE, full, min_area=1,
                               min_visible=part / full[9] + 1e-6)
    assert 9 not in [a['nucleus_id'] for a in kept]
    kept = sd.tile_annotations(labels, 16, 0, TILE, full,
                               min_area=part + 1, min_visible=0.0)
    assert 9 not in [a['nucleus_id'] for a in kept]


def test_split_is_disjoint_by_position(sd):
    plan = sd.plan_tiles(H, W, TILE, STRIDE, 0.75)
    split = plan['split_x']
    assert split == 96
    train = {(y, x) for y, x in plan['train']}
    test = {(y, x) for y, x in plan['test']}
    assert all(x + TILE <= split for _, x in train)
    assert all(x >= split for _, x in test)
    # the pixels of the two sides never meet
    mask_tr, mask_te = np.zeros((H, W), bool), np.zeros((H, W), bool)
    for y, x in train:
        mask_tr[y:y + TILE, x:x + TILE] = True
    for y, x in test:
        mask_te[y:y + TILE, x:x + TILE] = True
    assert not (mask_tr & mask_te).any()
    assert (mask_tr | mask_te).all()  # and cover the image
    assert sd.tile_starts(100, 32, 30) == [0, 30, 60, 68]
    with pytest.raises(ValueError, match='narrower than a tile of 64'):
        sd.plan_tiles(H, W, 64, 16, 0.75)


def test_idempotent_and_refuses_other_settings(sd, tmp_path):
    image, labels = synthetic()
    out = str(tmp_path / 'out')
    sd.prepare(image, labels, out, tile=TILE, stride=STRIDE)
    js = osp.join(out, 'train.json')
    stamp = os.stat(js).st_mtime_ns
    again = sd.prepare(image, labels, out, tile=TILE, stride=STRIDE)
    assert again['written'] is False and os.stat(js).st_mtime_ns == stamp
    with pytest.raises(ValueError, match='written with other settings'):
        sd.prepare(image, labels, out, tile=TILE, stride=TILE)
    res = sd.prepare(image, labels, out, tile=TILE, stride=TILE, force=True)
    assert res['written'] and res['num_train'] == 2 * 3
    assert len(os.listdir(osp.join(out, 'train', 'images'))) == 6  # no stale
    with open(osp.join(out, 'README.md')) as f:
        assert 'input files' in f.read()  # no licence claimed for these
    other = tmp_path / 'other'
    (other / 'train').mkdir(parents=True)
    with pytest.raises(ValueError, match='not written by this script'):
        sd.prepare(image, labels, str(other), tile=TILE, stride=STRIDE)


def test_bad_input_is_refused(sd, tmp_path):
    image, labels = synthetic()
    with pytest.raises(ValueError, match='same shape'):
        sd.prepare(image[:, :100], labels, str(tmp_path))
    with pytest.raises(ValueError, match='non-negative integers'):
        sd.prepare(image, labels.astype(np.float32), str(tmp_path))
    with pytest.raises(ValueError, match='Illegal train_fraction: 1.0'):
        sd.prepare(image, labels, str(tmp_path), tile=TILE, stride=STRIDE,
                   train_fraction=1.0)
    bad = tmp_path / 'bad.whl'
    bad.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='not a wheel'):
        sd.read_wheel(str(bad))


def test_cli_reads_image_files_and_the_json_passes_the_det_checks(
        sd, tmp_path):
    from PIL import Image

    from mm_instdisc.det.own_coco import read_coco_json
    image, labels = synthetic()
    Image.fromarray(image).save(tmp_path / 'img.tif')
    Image.fromarray(labels).save(tmp_path / 'mask.tif')
    out = str(tmp_path / 'out')
    sd.main(['--image', str(tmp_path / 'img.tif'), '--mask',
             str(tmp_path / 'mask.tif'), '--out', out, '--tile', '32',
             '--stride', '16'])
    info = read_coco_json(osp.join(out, 'test.json'),
                          osp.join(out, 'test', 'images'), with_mask=True)
    assert info['classes'] == ('nucleus', ) and info['channels'] == 1
    assert info['num_images'] == 3  # one column of tiles, 3 rows


@pytest.mark.subprocess
def test_real_wheel(sd, tmp_path):
    try:
        wheel = sd.download_wheel(str(tmp_path))
    except RuntimeError as e:
        pytest.skip(f'the stardist wheel is not downloadable here: {e}')
    image, labels, licence = sd.read_wheel(wheel)
    assert image.shape == labels.shape == (512, 512)
    assert licence.startswith('BSD 3-Clause License')
    out = str(tmp_path / 'out')
    res = sd.prepare(image, labels, out, licence=licence)
    assert (res['num_train'], res['num_test']) == (5 * 7, 7)
    with open(osp.join(out, 'README.md')) as f:
        assert 'BSD-3-Clause' in f.read()
    seen = set()
    for split in ('train', 'test'):
        with open(osp.join(out, f'{split}.json')) as f:
            seen |= {a['nucleus_id'] for a in json.load(f)['annotations']}
    assert seen == set(np.unique(labels).tolist()) - {0}
