from mm_instdisc.utils import apply_compat_patches

apply_compat_patches()

from .hooks import *  # noqa: F401,F403,E402
from .loops import *  # noqa: F401,F403,E402
from .optimizers import *  # noqa: F401,F403,E402
