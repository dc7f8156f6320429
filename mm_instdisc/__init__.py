"""mm_instdisc: instance-discrimination pretraining for OpenMMLab and plain PyTorch.

Importing this package does not import mmengine; the OpenMMLab components live in
``mm_instdisc.models``, ``mm_instdisc.engine``, ``mm_instdisc.datasets`` and
``mm_instdisc.evaluation`` and register themselves into mmpretrain's registries.
"""
__version__ = '0.1.0'

from .configs import get_config, list_configs  # noqa: E402,F401 (no OpenMMLab)

__all__ = ['get_config', 'list_configs', '__version__']
