import numpy as np
import pytest

from tests.helpers import write_fashion_mnist


def test_reads_idx_files(tmp_path):
    from mm_instdisc.datasets import FashionMNISTIDX
    root = write_fashion_mnist(tmp_path / 'fm', n_train=20, n_test=10)
    ds = FashionMNISTIDX(data_root=str(root), split='train',
                         pipeline=[dict(type='PackInputs')])
    assert len(ds) == 20
    info = ds.get_data_info(3)
    assert info['img'].shape == (28, 28) and info['img'].dtype == np.uint8
    assert info['gt_label'] == 3 and info['sample_idx'] == 3
    out = ds[5]
    assert tuple(out['inputs'].shape) == (1, 28, 28)
    assert out['data_samples'].sample_idx == 5
    assert list(ds.get_gt_labels()[:3]) == [0, 1, 2]
    test = FashionMNISTIDX(data_root=str(root), split='test')
    assert len(test) == 10
    sub = FashionMNISTIDX(data_root=str(root), split='train', indices=7)
    assert len(sub) == 7


def test_missing_files_name_setup_command(tmp_path):
    from mm_instdisc.datasets import FashionMNISTIDX
    with pytest.raises(FileNotFoundError, match='tools/setup.sh'):
        FashionMNISTIDX(data_root=str(tmp_path / 'nothing'), split='train')


def test_bad_split_and_corrupt_file(tmp_path):
    from mm_instdisc.datasets import FashionMNISTIDX
    from mm_instdisc.datasets.fashion_mnist import read_idx
    with pytest.raises(ValueError, match="Illegal split: 'val'"):
        FashionMNISTIDX(data_root=str(tmp_path), split='val')
    bad = tmp_path / 'bad'
    bad.write_bytes(b'\x01\x02\x03\x04')
    with pytest.raises(ValueError, match='not an IDX file'):
        read_idx(str(bad))


@pytest.mark.parametrize('damage', ['truncate', 'bad_bytes'])
def test_corrupt_gzip_names_the_file(tmp_path, damage):
    """A truncated download or flipped bytes: the error names the file and
    says how to recover, instead of gzip's bare EOFError/BadGzipFile."""
    import numpy as np

    from mm_instdisc.datasets.fashion_mnist import read_idx
    from tests.helpers import write_idx
    path = tmp_path / 'train-images-idx3-ubyte.gz'
    rng = np.random.default_rng(0)
    write_idx(str(path), rng.integers(0, 255, (50, 28, 28), dtype=np.uint8))
    data = path.read_bytes()
    half = len(data) // 2
    if damage == 'truncate':
        path.write_bytes(data[:half])
    else:
        path.write_bytes(data[:half] + bytes(b ^ 0x5A for b in data[half:half + 64])
                         + data[half + 64:])
    with pytest.raises(ValueError, match=r'train-images-idx3-ubyte\.gz: cannot '
                       'read it as a gzip-compressed IDX file.*prepare'):
        read_idx(str(path))
