"""PLKSR network modules (torch only; registration happens in `plksr_arch.registration`)."""

from .plksr_arch import PLKSR, PRESETS, plksr, plksr_tiny

__all__ = ["PLKSR", "PRESETS", "plksr", "plksr_tiny"]
