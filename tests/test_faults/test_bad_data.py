"""Fault injection on data files: a missing, foreign, truncated or corrupted
Fashion-MNIST file is an error that names the file and what was expected."""
import pytest


def test_bad_split_and_corrupt_file(tmp_path):
    from mm_instdisc.datasets import FashionMNISTIDX, read_idx
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

    from mm_instdisc.datasets import read_idx
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
