"""PLKSR and RealPLKSR network modules (torch only; registration happens in `plksr_arch.training.registration`)."""

from plksr_arch.archs.plksr_arch import PLKSR, PRESETS, plksr, plksr_tiny
from plksr_arch.archs.realplksr_arch import RealPLKSR, realplksr

__all__ = ["PLKSR", "PRESETS", "RealPLKSR", "plksr", "plksr_tiny", "realplksr"]
