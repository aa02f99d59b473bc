"""BasicSR models for PLKSR."""

# basicsr first: its import hook (see `_compat`) loads and registers PLKSRModel; importing `plksr_model` before
# basicsr would make that hook meet a half-initialised module.
import basicsr  # noqa: F401

from .plksr_model import PLKSRModel
from .realesr_model import RealESRGANModel, RealESRNetModel

__all__ = ["PLKSRModel", "RealESRGANModel", "RealESRNetModel"]
