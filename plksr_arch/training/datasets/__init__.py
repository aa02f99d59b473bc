"""Our BasicSR datasets, registered under our names (see `registration`): checked paired/single-image sets and
Real-ESRGAN's GT set with a configurable patch size."""

# basicsr first: its import runs our registration (see `_compat`), which imports these modules; importing one of
# them before basicsr would make the registration meet it half-initialised.
import basicsr  # noqa: F401

from plksr_arch.training.datasets.images import (
    PLKSRPairedImageDataset,
    PLKSRRealESRGANPairedDataset,
    PLKSRSingleImageDataset,
)
from plksr_arch.training.datasets.realesrgan import PLKSRRealESRGANDataset

__all__ = [
    "PLKSRPairedImageDataset",
    "PLKSRRealESRGANDataset",
    "PLKSRRealESRGANPairedDataset",
    "PLKSRSingleImageDataset",
]
