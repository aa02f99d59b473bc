"""plksr-arch: PLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution) as a BasicSR plugin.

`import plksr_arch` applies the basicsr compatibility fixes (see `_compat`), then registers `PLKSR` and
`PLKSRModel` in BasicSR's registries; nothing else happens at import time.
"""

from . import _compat

_compat.apply()

from .archs import PLKSR, PRESETS, plksr, plksr_tiny  # noqa: E402
from .checkpoint import load_model  # noqa: E402
from .inference import Upscaler  # noqa: E402
from .models import PLKSRModel  # noqa: E402
from .registration import register_all  # noqa: E402
from .version import __version__  # noqa: E402

register_all()

__all__ = ["PLKSR", "PRESETS", "PLKSRModel", "Upscaler", "__version__", "load_model", "plksr", "plksr_tiny"]
