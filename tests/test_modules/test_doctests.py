"""The docstring examples of mm_instdisc.modules run and hold."""
import doctest

import pytest

from mm_instdisc.modules import feature_readout, knn, memory_bank, npid_loss


@pytest.mark.parametrize('module',
                         [knn, memory_bank, npid_loss, feature_readout])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
