"""BasicSR models for PLKSR."""

from .plksr_model import PLKSRModel

__all__ = ["PLKSRModel"]
