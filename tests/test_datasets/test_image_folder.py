"""ImageFolderDataset and read_image: layouts, formats, modes, sizes, the
channel count from the data, and bad files (stop, or skip and list)."""
import os

import numpy as np
import pytest
from PIL import Image

from mm_instdisc.datasets import ImageFolderDataset, read_image


def write_mixed_folder(root, seed=0):
    """Mixed formats, modes, sizes and aspect ratios in nested folders:
    {relative path: the array written}."""
    rng = np.random.default_rng(seed)
    files = {
        'a.jpg': rng.integers(0, 256, (120, 200, 3), dtype=np.uint8),
        'sub/b.png': rng.integers(0, 256, (64, 50), dtype=np.uint8),
        'sub/deeper/c16.png': rng.integers(0, 65536, (80, 80),
                                           dtype=np.uint16),
        'sub/d_rgba.PNG': rng.integers(0, 256, (70, 90, 4), dtype=np.uint8),
        'e.bmp': rng.integers(0, 256, (40, 60, 3), dtype=np.uint8),
        'f.tif': rng.integers(0, 256, (50, 50), dtype=np.uint8),
        'g.webp': rng.integers(0, 256, (33, 45, 3), dtype=np.uint8),
        'h.JPEG': rng.integers(0, 256, (100, 64), dtype=np.uint8),
    }
    for rel, arr in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(arr).save(path)
    with open(os.path.join(root, 'notes.txt'), 'w') as f:  # not an image
        f.write('ignored: not an image extension')
    return files


def _ds(root, **kw):
    kw.setdefault('pipeline', [dict(type='PackInputs')])
    return ImageFolderDataset(data_root=str(root), **kw)


def test_mixed_folder_reads_every_image_at_one_size(tmp_path):
    files = write_mixed_folder(tmp_path)
    ds = _ds(tmp_path, img_size=32)
    assert len(ds) == len(files)
    assert ds.channels == 3 and ds.metainfo['channels'] == 3  # colour found
    seen = set()
    for i in range(len(ds)):
        out = ds[i]
        assert out['inputs'].shape == (3, 32, 32)
        assert str(out['inputs'].dtype) == 'torch.uint8'
        assert out['data_samples'].sample_idx == i
        seen.add(os.path.relpath(out['data_samples'].img_path, tmp_path))
    assert seen == set(files)


def test_grey_folder_has_one_channel_and_channels_can_be_forced(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(
            tmp_path / f'{i}.png')
    assert _ds(tmp_path, img_size=16).channels == 1
    ds = _ds(tmp_path, img_size=16, channels=3)
    x = ds[0]['inputs']
    assert x.shape == (3, 16, 16)
    assert (x[0] == x[1]).all() and (x[1] == x[2]).all()


def test_read_image_resize_crop_and_modes(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / 'wide.png')
    img, colour = read_image(str(tmp_path / 'wide.png'), 20)
    assert colour and img.shape == (20, 20, 3)
    # crop: the shorter side to 20 (80x40 -> 40x20), the centre square
    ref = np.asarray(Image.fromarray(arr).resize(
        (40, 20), Image.BILINEAR, reducing_gap=3.0))[:, 10:30]
    assert np.array_equal(img, ref)
    sq, _ = read_image(str(tmp_path / 'wide.png'), 20, resize='squash')
    assert sq.shape == (20, 20, 3)
    # 16-bit: 0..65535 -> 0..255
    a16 = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    Image.fromarray(a16).save(tmp_path / 'x16.png')
    g, colour = read_image(str(tmp_path / 'x16.png'))
    assert not colour and g.tolist() == [[0, 255], [100, 200]]
    # RGBA: alpha dropped
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / 'a.png')
    out, _ = read_image(str(tmp_path / 'a.png'))
    assert np.array_equal(out, rgba[..., :3])
    # to one channel: ITU-R 601-2 luma, as PIL's 'L'
    one, _ = read_image(str(tmp_path / 'a.png'), channels=1)
    assert np.array_equal(
        one, np.asarray(Image.fromarray(rgba[..., :3]).convert('L')))


def _write_bad_files(root):
    (root / 'empty.png').write_bytes(b'')
    (root / 'text.jpg').write_text('this is not a JPEG')
    good = np.random.default_rng(3).integers(0, 256, (64, 64, 3),
                                             dtype=np.uint8)
    Image.fromarray(good).save(root / 'full.jpg', quality=90)
    data = (root / 'full.jpg').read_bytes()
    (root / 'truncated.jpg').write_bytes(data[:len(data) // 2])


def test_bad_files_stop_the_run_with_their_names(tmp_path):
    _write_bad_files(tmp_path)
    with pytest.raises(ValueError) as e:
        _ds(tmp_path, img_size=16)
    msg = str(e.value)
    assert '3 of 4 files' in msg
    for name, why in (('empty.png', '0 bytes'), ('text.jpg', 'identify'),
                      ('truncated.jpg', 'truncated')):
        line = [ln for ln in msg.splitlines() if name in ln]
        assert line and why in line[0], (name, msg)
    assert 'skip_bad=True' in msg


def test_skip_bad_leaves_them_out_and_lists_them_once(tmp_path,
                                                      monkeypatch):
    from mmengine.logging import MMLogger
    _write_bad_files(tmp_path)
    warnings = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning',
                        warnings.append)
    ds = _ds(tmp_path, img_size=16, skip_bad=True)
    assert len(warnings) == 1
    assert 'left out 3 of 4 files' in warnings[0]
    for name in ('empty.png', 'text.jpg', 'truncated.jpg'):
        assert warnings[0].count(name) == 1
    assert len(ds) == 1 and ds[0]['data_samples'].sample_idx == 0
    assert ds[0]['data_samples'].img_path.endswith('full.jpg')
    assert sorted(os.path.basename(p) for p, _ in ds.bad_files) == [
        'empty.png', 'text.jpg', 'truncated.jpg']


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match='No images below .*empty.*png'):
        _ds(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _ds(tmp_path / 'missing')
    with pytest.raises(ValueError, match='Illegal img_size'):
        _ds(tmp_path, img_size=0)
    with pytest.raises(ValueError, match='Illegal channels'):
        _ds(tmp_path, channels=2)


def test_labelled_folder_and_uncached_decoding(tmp_path):
    rng = np.random.default_rng(4)
    for cls in ('cat', 'dog'):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (30, 30, 3),
                                         dtype=np.uint8)).save(
                tmp_path / cls / f'{i}.png')
    cached = _ds(tmp_path, img_size=16, with_label=True)
    assert cached.metainfo['classes'] == ('cat', 'dog')
    assert [cached[i]['data_samples'].gt_label.item() for i in range(4)] == [
        0, 0, 1, 1]
    # cache_gb=0: decoded by the loader (workers) on every read, same result
    lazy = _ds(tmp_path, img_size=16, with_label=True, cache_gb=0)
    assert 'img' not in lazy.get_data_info(0)
    for i in range(4):
        assert (lazy[i]['inputs'] == cached[i]['inputs']).all()


def test_unchecked_folder_keeps_every_file(tmp_path):
    """check=False (no decoding before training; inspect_folder's mode):
    all files are listed, not only the ones whose headers set the channels;
    a bad file then fails when the loader reads it, named."""
    rng = np.random.default_rng(5)
    for i in range(120):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
            tmp_path / f'{i:03d}.png')
    ds = _ds(tmp_path, img_size=8, check=False)
    assert len(ds) == 120 and ds.channels == 1
    assert ds[119]['inputs'].shape == (1, 8, 8)
    (tmp_path / '120.png').write_bytes(b'')
    with pytest.raises(ValueError, match='120.png: empty file'):
        _ds(tmp_path, img_size=8, check=False)[120]
