"""Reference results (the paper's tables, or any method's) to print beside our metrics, read from YAML files.

A reference file maps a key to one method's published numbers:

    PLKSR-tiny_DIV2K_x4:
      source: "Lee, Yun, Ro 2024, arXiv 2404.11848, Table 4"
      Set5: {psnr: 32.18, ssim: 0.8956}
      Set14: {psnr: 28.67, ssim: 0.7838}

Keys of released PLKSR variants are `<variant>_<train set>_x<scale>` (`released_key`), so a test of such a network
finds its row without configuration. Dataset names match case-insensitively, with B100 = BSD100.
"""

from __future__ import annotations

import os.path as osp
import re
from collections.abc import Mapping
from typing import Any

import yaml

from plksr_arch.errors import UserError

TRAIN_SETS = ("DF2K", "DIV2K")
_ALIASES = {"bsd100": "b100", "bsds100": "b100"}


class ReferenceFileError(UserError):
    """A reference file or key that cannot be used; the message names the file and the key."""


def released_variant(network: Mapping[str, Any] | Any) -> str | None:
    """The paper's preset (e.g. 'PLKSR' or 'PLKSR-tiny') that `network` (a `network_g` mapping, or a built network
    with `hyperparameters`) is, from `archs.registry`; None for any other configuration."""
    from plksr_arch.archs.registry import paper_preset_of

    return paper_preset_of(network)


def train_set(*hints: str | None) -> str:
    """The training set named in the run name or weights path (`DF2K` before `DIV2K`); `DIV2K` when none is."""
    text = " ".join(h for h in hints if h).upper()
    return next((name for name in TRAIN_SETS if name in text), "DIV2K")


def released_key(opt: dict) -> str | None:
    """The reference key of a test option dict's network, e.g. `PLKSR-tiny_DIV2K_x4`; None for other networks."""
    variant = released_variant(opt["network_g"])
    if variant is None:
        return None
    data = train_set(opt.get("name"), opt.get("path", {}).get("pretrain_network_g"))
    return f"{variant}_{data}_x{opt['scale']}"


def dataset_id(name: str) -> str:
    """A dataset name normalised for matching (`Set5`, `set5`, `BSD100` and `B100` match)."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _ALIASES.get(key, key)


def load_references(path: str) -> dict[str, dict[str, Any]]:
    """Read and check a reference file: {key: {source: str, <dataset>: {psnr: float, ssim: float}}}."""
    if not osp.isfile(path):
        raise ReferenceFileError(f"{path}: no such reference file")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ReferenceFileError(f"{path}: expected a mapping of reference keys")
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise ReferenceFileError(f"{path}: {key}: expected a mapping of datasets")
        for dataset, values in entry.items():
            if dataset == "source":
                continue
            if (
                not isinstance(values, dict)
                or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values())
            ):
                raise ReferenceFileError(f"{path}: {key}.{dataset}: expected a mapping of metric names to numbers")
    return data


def lookup(references: dict[str, dict[str, Any]], key: str, dataset: str) -> dict[str, float] | None:
    """The reference metrics of `dataset` under `key`, or None."""
    return entry_values(references.get(key) or {}, dataset)


def entry_values(entry: Mapping[str, Any], dataset: str) -> dict[str, float] | None:
    """The metrics of `dataset` in one reference entry ({source, <dataset>: {...}}), or None."""
    wanted = dataset_id(dataset)
    return next((v for d, v in entry.items() if d != "source" and dataset_id(d) == wanted), None)
