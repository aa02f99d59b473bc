"""Our BasicSR models (and the perceptual loss they build), registered under our names (see `registration`)."""

# basicsr first: its import runs our registration (see `_compat`), which imports these modules; importing one of
# them before basicsr would make the registration meet it half-initialised.
import basicsr  # noqa: F401

from plksr_arch.training.models.losses import PLKSRPerceptualLoss
from plksr_arch.training.models.plksr_model import PLKSRModel
from plksr_arch.training.models.realesr_model import PLKSRRealESRGANModel, PLKSRRealESRNetModel

__all__ = ["PLKSRModel", "PLKSRPerceptualLoss", "PLKSRRealESRGANModel", "PLKSRRealESRNetModel"]
