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
