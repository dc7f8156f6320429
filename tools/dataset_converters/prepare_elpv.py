"""Write the elpv solar-cell data set once as an image folder.

elpv (Buerhop-Lutz, Deitsch et al., EU PVSEC 2018): 2,624 electroluminescence
images of solar cells, 300x300 8-bit grey, each with a defect probability
(0, 1/3, 2/3 or 1) and a cell type (mono, poly), from the PyPI package
``elpv-dataset`` (``pip install elpv-dataset==1.0.0.post1``). Licence of the
data: CC BY-NC-SA 4.0. Never vendor or commit the images or images derived
from them; this script writes them below ``data/`` (ignored by git).

    python tools/dataset_converters/prepare_elpv.py [--out data/elpv]
        [--seed 0] [--test-fraction 0.25] [--ten-percent] [--force]

Layout written (``p0``, ``p033``, ``p067``, ``p1``: defect probability 0,
1/3, 2/3, 1; ``NNNN`` the image's index in ``load_dataset()``'s arrays)::

    OUT/train/{p0,p033,p067,p1}/NNNN.png
    OUT/test/{p0,p033,p067,p1}/NNNN.png
    OUT/train_10pct/{p0,...}/NNNN.png   (--ten-percent: links into train/)
    OUT/split.json                      (file -> index, class, cell type)
    OUT/README.md                       (source and licence)

The train / test split is stratified by defect class and drawn with
``--seed``; the 10% subset of the training images (for fine-tuning with 10%
of the labels) is stratified too, drawn with the same seed. Idempotent: a
folder already written with the same settings is left as it is (``--force``
rewrites it).
"""
import argparse
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: class folder of each defect probability k / 3, k = 0 .. 3
CLASSES = ('p0', 'p033', 'p067', 'p1')
SPLITS = ('train', 'test')
SUBSET = 'train_10pct'
SOURCE = 'elpv-dataset==1.0.0.post1'
README = """# elpv solar-cell images (image folder)

Written by `tools/dataset_converters/prepare_elpv.py` from the PyPI package
`{source}` (<https://github.com/zae-bayern/elpv-dataset>): {num} images of
solar cells in electroluminescence imaging, 300x300 8-bit grey PNG, in one
folder per defect probability (`p0`, `p033`, `p067`, `p1`: 0, 1/3, 2/3, 1).
Split: {num_train} train / {num_test} test, stratified by defect class,
seed {seed}{subset}. `split.json` maps every file to its index in
`elpv_dataset.utils.load_dataset()`, its class and its cell type.

**Licence: CC BY-NC-SA 4.0** (<https://creativecommons.org/licenses/by-nc-sa/4.0/>),
non-commercial use only, attribution, share-alike. Do not commit or
redistribute these images or images derived from them.

Cite: Buerhop-Lutz, C.; Deitsch, S.; Maier, A.; Gallwitz, F.; Berger, S.;
Doll, B.; Hauch, J.; Camus, C. & Brabec, C. J. A Benchmark for Visual
Identification of Defective Solar Cells in Electroluminescence Imagery.
EU PVSEC 2018. DOI 10.4229/35thEUPVSEC20182018-5CV.3.15. Deitsch, S. et al.
Automatic classification of defective photovoltaic module cells in
electroluminescence images. Solar Energy 185, 2019.
"""


def log(msg: str) -> None:
    print(f'[elpv] {msg}', flush=True)


def defect_classes(probabilities: Sequence[float]) -> np.ndarray:
    """Class index k of each defect probability k / 3 (0 .. 3).

    Args:
        probabilities (Sequence[float]): Defect probabilities, shape (N, ).

    Returns:
        np.ndarray: Class indices, shape (N, ), int64.

    Raises:
        ValueError: A probability that is not 0, 1/3, 2/3 or 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f'Expected probabilities of shape (N, ), got '
                         f'{p.shape}.')
    k = np.rint(p * 3)
    bad = np.flatnonzero(~np.isfinite(p) | (np.abs(p * 3 - k) > 1e-6)
                         | (k < 0) | (k > 3))
    if bad.size:
        raise ValueError(f'Defect probability {float(p[bad[0]])!r} (image '
                         f'{int(bad[0])}) is not one of 0, 1/3, 2/3, 1.')
    return k.astype(np.int64)


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise ValueError(f'Illegal {name}: {value!r}; expected a number in '
                         '(0, 1).')


def stratified_split(labels: Sequence[int], test_fraction: float = 0.25,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded train / test split stratified by class.

    Each class's indices are shuffled with one generator (classes in
    ascending order) and ``round(n_c * test_fraction)`` of them go to the
    test set, at least one and at most ``n_c - 1`` when the class has two
    or more images (a class of one image stays in training).

    Args:
        labels (Sequence[int]): Class of each item, shape (N, ).
        test_fraction (float): Share of each class in the test set.
            Defaults to 0.25.
        seed (int): Seed of the shuffle. Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: Sorted train and test indices.

    Raises:
        ValueError: On a fraction outside (0, 1) or labels not (N, ).
    """
    _check_fraction('test_fraction', test_fraction)
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f'Expected labels of shape (N, ), got {y.shape}.')
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = len(idx)
        n_test = min(max(int(round(n * test_fraction)), 1), n - 1) \
            if n > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_subset(labels: Sequence[int], indices: Sequence[int],
                      fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """A seeded subset of ``indices`` stratified by class:
    ``round(n_c * fraction)`` (at least one) of each class's items.

    Args:
        labels (Sequence[int]): Class of every item, shape (N, ).
        indices (Sequence[int]): The items to draw from (e.g. the training
            set's indices into ``labels``).
        fraction (float): Share of each class kept. Defaults to 0.1.
        seed (int): Seed of the draw. Defaults to 0.

    Returns:
        np.ndarray: Sorted indices, a subset of ``indices``.
    """
    _check_fraction('fraction', fraction)
    y = np.asarray(labels)
    idx = np.asarray(indices, dtype=np.int64)
    # a generator of its own: the subset does not depend on how many
    # numbers the split drew
    rng = np.random.default_rng([seed, 10])
    keep = []
    for c in np.unique(y[idx]):
        members = rng.permutation(idx[y[idx] == c])
        keep.append(members[:max(int(round(len(members) * fraction)), 1)])
    return np.sort(np.concatenate(keep))


def file_name(split: str, label: int, index: int) -> str:
    """Path of an image below OUT: ``split/<class>/NNNN.png``."""
    return f'{split}/{CLASSES[label]}/{index:04d}.png'


def plan_folder(probabilities: Sequence[float], types: Sequence[str],
                test_fraction: float = 0.25, seed: int = 0,
                ten_percent: bool = False) -> dict:
    """The folder's ``split.json``: which file each image becomes.

    Args:
        probabilities (Sequence[float]): Defect probability of each image.
        types (Sequence[str]): Cell type of each image (mono / poly).
        test_fraction (float): Share of each class in test. Defaults to 0.25.
        seed (int): Seed of the split and the subset. Defaults to 0.
        ten_percent (bool): Also list the 10% subset. Defaults to False.

    Returns:
        dict: ``seed``, ``test_fraction``, ``num_images``, ``classes``,
        ``files`` (``{path: {index, class, probability, type, split}}``)
        and, with ``ten_percent``, ``train_10pct`` (paths below
        ``train_10pct/``, each the image of the same name below ``train/``).
    """
    labels = defect_classes(probabilities)
    if len(types) != len(labels):
        raise ValueError(f'{len(labels)} probabilities but {len(types)} '
                         'cell types.')
    train, test = stratified_split(labels, test_fraction, seed)
    files: Dict[str, dict] = {}
    for split, idx in (('train', train), ('test', test)):
        for i in idx:
            files[file_name(split, labels[i], i)] = dict(
                index=int(i), **{'class': CLASSES[labels[i]]},
                probability=float(probabilities[i]), type=str(types[i]),
                split=split)
    plan = dict(source=SOURCE, seed=int(seed),
                test_fraction=float(test_fraction), num_images=len(labels),
                classes=list(CLASSES), files=files)
    if ten_percent:
        sub = stratified_subset(labels, train, 0.1, seed)
        plan[SUBSET] = [file_name(SUBSET, labels[i], i) for i in sub]
    return plan


def _same_setting(old: dict, new: dict) -> bool:
    keys = ('source', 'seed', 'test_fraction', 'num_images', 'files')
    return all(old.get(k) == new.get(k) for k in keys)


def _complete(out: str, paths: List[str]) -> bool:
    return all(osp.isfile(osp.join(out, p)) for p in paths)


def _link(src: str, dst: str) -> None:
    """``dst`` as a relative symlink to ``src`` (a copy where links fail)."""
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if osp.lexists(dst):
        os.remove(dst)
    try:
        os.symlink(osp.relpath(src, osp.dirname(dst)), dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_folder(images: np.ndarray, plan: dict, out: str,
                 force: bool = False) -> str:
    """Write the image folder described by ``plan`` (:func:`plan_folder`).

    ``split.json`` is written last, so a folder that has it with the same
    settings and all its files is complete and is left as it is; a folder
    of other settings raises unless ``force`` (which removes the old
    ``train``, ``test`` and ``train_10pct`` first). A subset missing from
    a complete folder is added.

    Args:
        images (np.ndarray): The images, shape (N, H, W), uint8.
        plan (dict): :func:`plan_folder`'s result for these images.
        out (str): The folder.
        force (bool): Rewrite whatever is there. Defaults to False.

    Returns:
        str: What was done: ``'skipped'``, ``'written'`` or
        ``'subset added'``.
    """
    from PIL import Image
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f'Expected grey uint8 images of shape (N, H, W), got '
                         f'{images.dtype} {images.shape}.')
    if len(images) != plan['num_images']:
        raise ValueError(f'{len(images)} images but the plan is of '
                         f'{plan["num_images"]}.')
    meta = osp.join(out, 'split.json')
    old: Optional[dict] = None
    if osp.isfile(meta) and not force:
        with open(meta) as f:
            old = json.load(f)
        if not _same_setting(old, plan):
            raise FileExistsError(
                f'{out} holds elpv written with other settings (seed '
                f'{old.get("seed")}, test_fraction '
                f'{old.get("test_fraction")}); pass --force to rewrite it or '
                'give another --out.')
        if _complete(out, list(plan['files'])):
            if SUBSET not in plan or (old.get(SUBSET) == plan[SUBSET]
                                      and _complete(out, plan[SUBSET])):
                return 'skipped'
            _write_subset(out, plan)
            _write_meta(out, dict(old, **{SUBSET: plan[SUBSET]}))
            return 'subset added'
    if force or old is None:
        for d in (*SPLITS, SUBSET):
            if osp.isdir(osp.join(out, d)):
                shutil.rmtree(osp.join(out, d))
        if osp.isfile(meta):
            os.remove(meta)
    for path, item in plan['files'].items():
        dst = osp.join(out, path)
        if osp.isfile(dst) and not force:
            continue  # an interrupted run's file
        os.makedirs(osp.dirname(dst), exist_ok=True)
        Image.fromarray(images[item['index']]).save(dst + '.tmp',
                                                    format='PNG')
        os.replace(dst + '.tmp', dst)
    if SUBSET in plan:
        _write_subset(out, plan)
    _write_meta(out, plan)
    return 'written'


def _write_subset(out: str, plan: dict) -> None:
    if osp.isdir(osp.join(out, SUBSET)):
        shutil.rmtree(osp.join(out, SUBSET))
    for path in plan[SUBSET]:
        src = osp.join(out, 'train', path.split('/', 1)[1])
        _link(src, osp.join(out, path))


def _write_meta(out: str, plan: dict) -> None:
    counts = {s: sum(1 for v in plan['files'].values() if v['split'] == s)
              for s in SPLITS}
    subset = (f'; `train_10pct/`: {len(plan[SUBSET])} training images (10% '
              'of each class, links into `train/`)' if SUBSET in plan else '')
    with open(osp.join(out, 'README.md'), 'w') as f:
        f.write(README.format(source=SOURCE, num=plan['num_images'],
                              num_train=counts['train'],
                              num_test=counts['test'], seed=plan['seed'],
                              subset=subset))
    with open(osp.join(out, 'split.json.tmp'), 'w') as f:
        json.dump(plan, f, indent=1)
    os.replace(osp.join(out, 'split.json.tmp'), osp.join(out, 'split.json'))


def load_elpv() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``elpv_dataset.utils.load_dataset()``: (images (N, 300, 300) uint8,
    defect probabilities (N, ), cell types (N, ))."""
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        raise SystemExit(
            'prepare_elpv: the elpv data come from the PyPI package '
            f'elpv-dataset: pip install {SOURCE} (requirements/optional.txt)'
        ) from None
    return load_dataset()


def main(argv: Optional[List[str]] = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/elpv')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--test-fraction', type=float, default=0.25)
    p.add_argument('--ten-percent', action='store_true',
                   help='also OUT/train_10pct: 10%% of each class of the '
                   'training images (links), for 10%%-label fine-tuning')
    p.add_argument('--force', action='store_true',
                   help='rewrite a folder written with other settings')
    args = p.parse_args(argv)
    if not 0 < args.test_fraction < 1:
        p.error(f'--test-fraction {args.test_fraction}: expected a number in '
                '(0, 1)')
    images, probs, types = load_elpv()
    plan = plan_folder(probs, types, args.test_fraction, args.seed,
                       args.ten_percent)
    done = write_folder(images, plan, args.out, args.force)
    n = {s: sum(1 for v in plan['files'].values() if v['split'] == s)
         for s in SPLITS}
    log(f'{done}: {args.out} ({n["train"]} train, {n["test"]} test'
        + (f', {len(plan[SUBSET])} in {SUBSET}' if SUBSET in plan else '')
        + '). Licence CC BY-NC-SA 4.0: do not commit these images.')
    return done


if __name__ == '__main__':
    main()
