from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

# init_cfg=dict(type='ConvertedPretrained'): torchvision / timm weights
from mm_instdisc.utils.backbone_formats import \
    ConvertedPretrainedInit  # noqa: F401,E402

from .data_preprocessors import *  # noqa: F401,F403,E402
from .heads import *  # noqa: F401,F403,E402
from .losses import *  # noqa: F401,F403,E402
from .necks import *  # noqa: F401,F403,E402
from .selfsup import *  # noqa: F401,F403,E402
