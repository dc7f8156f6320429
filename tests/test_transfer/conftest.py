"""Fixtures of the transfer tests: tiny Fashion-MNIST, saved NPID checkpoint
(the model builders are in tests/helpers.py)."""
import pytest

from tests.helpers import (build_npid, save_selfsup_checkpoint,
                           write_fashion_mnist)


@pytest.fixture(scope='session')
def npid_model():
    return build_npid()


@pytest.fixture(scope='session')
def npid_ckpt(npid_model, tmp_path_factory):
    path = tmp_path_factory.mktemp('npid') / 'epoch_3.pth'
    return save_selfsup_checkpoint(npid_model, path)


@pytest.fixture(scope='session')
def fmnist_root(tmp_path_factory):
    return str(write_fashion_mnist(tmp_path_factory.mktemp('fm') / 'fm',
                                   n_train=200, n_test=40))
