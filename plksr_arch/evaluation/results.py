"""Evaluation results as data: what `PLKSRModel.validation` returns and `metrics.json` is serialised from.

`DatasetResult.as_dict()` is one entry of metrics.json's `datasets` (see `evaluation.report` for the whole file):
the mean of each metric, `n_images`, `seconds`, `images_per_second`, the bicubic means when the images have a
baseline, the reference when one is given, and the per-image records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ImageResult:
    """One image: its metrics (e.g. psnr, ssim) and, when testing, those of the MATLAB-bicubic baseline."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    bicubic: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, **self.metrics}
        if self.bicubic is not None:
            record["bicubic"] = self.bicubic
        return record


@dataclass
class DatasetResult:
    """One dataset: per-image results, wall time of the loop and time in the network (seconds)."""

    name: str
    images: list[ImageResult]
    seconds: float
    network_seconds: float
    metric_names: tuple[str, ...] = ()

    @property
    def means(self) -> dict[str, float]:
        """Mean of each metric over the images that have them all; empty when none has (no ground truth)."""
        scored = [i for i in self.images if all(m in i.metrics for m in self.metric_names)]
        if not scored or not self.metric_names:
            return {}
        return {m: float(np.mean([i.metrics[m] for i in scored])) for m in self.metric_names}

    @property
    def bicubic_means(self) -> dict[str, float] | None:
        with_baseline = [i.bicubic for i in self.images if i.bicubic]
        if not with_baseline:
            return None
        return {m: float(np.mean([b[m] for b in with_baseline])) for m in with_baseline[0]}

    @property
    def images_per_second(self) -> float:
        return len(self.images) / self.seconds if self.seconds else 0.0

    def as_dict(self, reference: dict[str, float] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = dict(self.means)
        entry.update(n_images=len(self.images), seconds=self.seconds, images_per_second=self.images_per_second)
        if self.bicubic_means is not None:
            entry["bicubic"] = self.bicubic_means
        if reference:
            entry["reference"] = reference
        entry["images"] = [i.as_dict() for i in self.images]
        return entry
