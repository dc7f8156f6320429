"""tools/dataset_converters/prepare_elpv.py on small fake arrays: the
train / test split and the 10% subset are stratified by defect class,
seeded and disjoint, and the folder it writes has the promised layout, is
written once and refuses other settings unless forced."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest

from tests.helpers import ROOT

COUNTS = (40, 12, 5, 23)  # images per class (p0, p033, p067, p1)


@pytest.fixture(scope='module')
def elpv():
    path = osp.join(ROOT, 'tools/dataset_converters/prepare_elpv.py')
    spec = importlib.util.spec_from_file_location('prepare_elpv', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake(seed=0):
    """Shuffled fake elpv: images (N, 12, 12), probabilities k / 3, types."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, k) for k, n in enumerate(COUNTS)])
    labels = labels[rng.permutation(len(labels))]
    images = rng.integers(0, 256, (len(labels), 12, 12), dtype=np.uint8)
    types = np.where(rng.random(len(labels)) < 0.5, 'mono', 'poly')
    return images, labels / 3.0, types, labels


def test_defect_classes_and_a_bad_probability(elpv):
    got = elpv.defect_classes([0.0, 1 / 3, 2 / 3, 1.0])
    assert got.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r'0\.5 \(image 1\)'):
        elpv.defect_classes([0.0, 0.5])
    with pytest.raises(ValueError, match='1.3333'):
        elpv.defect_classes([4 / 3])


def test_split_is_stratified_disjoint_and_seeded(elpv):
    _, _, _, labels = fake()
    train, test = elpv.stratified_split(labels, 0.25, seed=0)
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(len(labels)))
    for k, n in enumerate(COUNTS):  # round(n / 4) of each class in test
        assert int((labels[test] == k).sum()) == int(round(n * 0.25)), k
        assert int((labels[train] == k).sum()) == n - int(round(n * 0.25))
    again = elpv.stratified_split(labels, 0.25, seed=0)
    assert np.array_equal(again[1], test)
    other = elpv.stratified_split(labels, 0.25, seed=1)
    assert not np.array_equal(other[1], test)
    with pytest.raises(ValueError, match='test_fraction: 1.0'):
        elpv.stratified_split(labels, 1.0)


def test_a_class_of_one_or_two_images(elpv):
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    train, test = elpv.stratified_split(labels, 0.25, seed=3)
    assert (labels[test] == 1).sum() == 1 and (labels[train] == 1).sum() == 1
    assert 6 in train and 6 not in test  # a single image trains


def test_ten_percent_subset_is_stratified_seeded_and_in_train(elpv):
    _, _, _, labels = fake()
    train, _ = elpv.stratified_split(labels, 0.25, seed=0)
    sub = elpv.stratified_subset(labels, train, 0.1, seed=0)
    assert set(sub) <= set(train)
    for k in range(4):
        n = int((labels[train] == k).sum())
        assert int((labels[sub] == k).sum()) == max(int(round(n * 0.1)), 1)
    assert np.array_equal(sub, elpv.stratified_subset(labels, train, 0.1, 0))
    assert not np.array_equal(sub, elpv.stratified_subset(labels, train, 0.1,
                                                          1))


def test_folder_layout_once_and_forced(elpv, tmp_path):
    from PIL import Image
    images, probs, types, labels = fake()
    out = str(tmp_path / 'elpv')
    plan = elpv.plan_folder(probs, types, 0.25, seed=0, ten_percent=True)
    assert elpv.write_folder(images, plan, out) == 'written'
    with open(osp.join(out, 'split.json')) as f:
        meta = json.load(f)
    assert len(meta['files']) == len(labels)
    for path, item in meta['files'].items():
        split, cls, name = path.split('/')
        assert split == item['split'] and cls == item['class']
        assert cls == elpv.CLASSES[labels[item['index']]]
        assert name == f'{item["index"]:04d}.png'
        assert item['type'] == types[item['index']]
        with Image.open(osp.join(out, path)) as img:
            assert img.mode == 'L' and img.format == 'PNG'
            assert np.array_equal(np.asarray(img), images[item['index']])
    n_test = sum(int(round(n * 0.25)) for n in COUNTS)
    listed = [osp.join(s, c, f) for s in ('train', 'test')
              for c in os.listdir(osp.join(out, s))
              for f in os.listdir(osp.join(out, s, c))]
    assert len(listed) == len(labels)
    assert sum(p.startswith('test') for p in listed) == n_test
    assert sorted(os.listdir(osp.join(out, 'train'))) == list(elpv.CLASSES)
    for path in meta['train_10pct']:
        twin = osp.join(out, 'train', path.split('/', 1)[1])
        assert osp.samefile(osp.join(out, path), twin)
    readme = open(osp.join(out, 'README.md')).read()
    assert 'CC BY-NC-SA 4.0' in readme and 'elpv-dataset' in readme
    # written once: a second call touches nothing
    some = osp.join(out, next(iter(meta['files'])))
    stamp = os.stat(some).st_mtime_ns
    assert elpv.write_folder(images, plan, out) == 'skipped'
    assert os.stat(some).st_mtime_ns == stamp
    # other settings: refused, then rewritten with force
    other = elpv.plan_folder(probs, types, 0.25, seed=1)
    with pytest.raises(FileExistsError, match='--force'):
        elpv.write_folder(images, other, out)
    assert elpv.write_folder(images, other, out, force=True) == 'written'
    with open(osp.join(out, 'split.json')) as f:
        assert json.load(f)['seed'] == 1
    assert not osp.exists(osp.join(out, 'train_10pct'))
    # the subset added to a complete folder
    again = elpv.plan_folder(probs, types, 0.25, seed=1, ten_percent=True)
    assert elpv.write_folder(images, again, out) == 'subset added'
    assert len(os.listdir(osp.join(out, 'train_10pct', 'p0'))) == 3


def test_main_with_a_fake_load_dataset(elpv, tmp_path, monkeypatch):
    images, probs, types, _ = fake()
    monkeypatch.setattr(elpv, 'load_elpv', lambda: (images, probs, types))
    out = str(tmp_path / 'e')
    assert elpv.main(['--out', out, '--ten-percent']) == 'written'
    assert elpv.main(['--out', out, '--ten-percent']) == 'skipped'
    assert osp.isdir(osp.join(out, 'train_10pct', 'p067'))


def test_real_elpv_labels_plan(elpv):
    """The real package's labels (its csv only; the images are not
    decoded): four classes, 656 test images at the default split."""
    pkg = pytest.importorskip(
        'elpv_dataset', reason='elpv-dataset not installed '
        '(requirements/optional.txt)')
    csv = osp.join(osp.dirname(pkg.__file__), 'data', 'labels.csv')
    data = np.genfromtxt(csv, dtype=['|S19', '<f8', '|S4'],
                         names=['path', 'probability', 'type'])
    plan = elpv.plan_folder(data['probability'],
                            np.char.decode(data['type']), ten_percent=True)
    assert plan['num_images'] == 2624
    splits = [v['split'] for v in plan['files'].values()]
    assert splits.count('test') == 656
    assert len(plan['train_10pct']) == 197
