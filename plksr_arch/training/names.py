"""Which other projects' names our commands read as ours, and what plksr-arch's registration in BasicSR found.

Plain data: `training.registration` fills it, `training.options` reads it, so options never import the classes.

`FOREIGN_NAMES` are the type names of BasicSR, Real-ESRGAN and the official PLKSR option files that `plksr train/test`
(and `python -m plksr_arch.train/test`, the pipelines, the demo) read as our classes: `options.load_options` rewrites
them and logs each mapping once. Outside our commands those names keep their owners' meaning.
"""

from __future__ import annotations

# Where an option file names a class (`model_type`, `datasets.*.type`, `train.*_opt.type`) -> {their name: ours}.
FOREIGN_NAMES: dict[str, dict[str, str]] = {
    "model": {
        "ESRModel": "PLKSRModel",  # the official PLKSR option files
        "RealESRNetModel": "PLKSRRealESRNetModel",
        "RealESRGANModel": "PLKSRRealESRGANModel",
    },
    "dataset": {
        "PairedImageDataset": "PLKSRPairedImageDataset",
        "SingleImageDataset": "PLKSRSingleImageDataset",
        "RealESRGANDataset": "PLKSRRealESRGANDataset",
        "RealESRGANPairedDataset": "PLKSRRealESRGANPairedDataset",
    },
    "loss": {"PerceptualLoss": "PLKSRPerceptualLoss"},
}

CLASHES: dict[str, str] = {}  # our name -> the warning line of the package that holds it
FAILURE: list[BaseException] = []  # an unexpected error of the registration, re-raised by `check`


def check() -> None:
    """Make sure basicsr is imported and our registration ran; re-raise its unexpected error (a bug) if it failed."""
    import basicsr  # noqa: F401  (its import runs the registration)

    if FAILURE:
        raise RuntimeError("plksr-arch's registration in BasicSR failed") from FAILURE[0]
