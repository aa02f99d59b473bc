"""BasicSR's test pipeline for PLKSR plus `results/<name>/metrics.json`: `python -m plksr_arch.test -opt X.yml`.

Each test dataset gets the model's metrics and the bicubic baseline (MATLAB-bicubic upsampling of the same LR, the
same metric settings), so a table can always be read against the classic reference.
"""

from __future__ import annotations

import json
import os.path as osp
from typing import Any

import numpy as np


def bicubic_metrics(dataset: Any, metrics_opt: dict, scale: int) -> dict[str, float]:
    """Mean metrics of MATLAB-bicubic upsampling (BasicSR's `imresize`) of each LR image against its GT."""
    from basicsr.metrics import calculate_metric
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    sums = dict.fromkeys(metrics_opt, 0.0)
    for i in range(len(dataset)):
        item = dataset[i]
        lq = tensor2img(item["lq"], out_type=np.float32)  # BGR, [0, 1]
        up = np.clip(imresize(lq, scale), 0.0, 1.0)
        data = {"img": (up * 255.0).round().astype(np.uint8), "img2": tensor2img(item["gt"])}
        for name, metric_opt in metrics_opt.items():
            sums[name] += float(calculate_metric(data, metric_opt))
    return {name: total / len(dataset) for name, total in sums.items()}


def format_table(report: dict) -> str:
    """The metrics report as a Markdown table: one row per dataset, PLKSR and bicubic side by side."""
    datasets = report["datasets"]
    metrics = sorted({m for d in datasets.values() for m in d if m not in ("n_images", "bicubic")})
    header = ["dataset", "images"] + [f"{m.upper()} {who}" for m in metrics for who in ("PLKSR", "bicubic")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, d in datasets.items():
        cells = [name, str(d["n_images"])]
        for m in metrics:
            cells += [f"{d[m]:.4f}", f"{d['bicubic'][m]:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test(opt: dict) -> dict:
    """Test every dataset in `opt` (from `load_options(..., is_train=False)`); write and return metrics.json."""
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    from basicsr.utils import get_env_info, get_time_str, make_exp_dirs
    from basicsr.utils.options import dict2str

    from ._compat import run_logger

    make_exp_dirs(opt)
    log_file = osp.join(opt["path"]["log"], f"test_{opt['name']}_{get_time_str()}.log")
    logger = run_logger(log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    model = build_model(opt)
    metrics_opt = opt.get("val", {}).get("metrics") or {}
    report: dict[str, Any] = {"name": opt["name"], "scale": opt.get("scale"), "datasets": {}}
    for dataset_opt in opt["datasets"].values():
        dataset = build_dataset(dataset_opt)
        loader = build_dataloader(
            dataset, dataset_opt, num_gpu=opt["num_gpu"], dist=opt["dist"], sampler=None, seed=opt["manual_seed"]
        )
        name = dataset_opt["name"]
        logger.info(f"Testing {name} ({len(dataset)} images)...")
        model.validation(loader, current_iter=opt["name"], tb_logger=None, save_img=opt["val"].get("save_img"))
        entry: dict[str, Any] = {k: float(v) for k, v in getattr(model, "metric_results", {}).items()}
        entry["n_images"] = len(dataset)
        if metrics_opt:
            entry["bicubic"] = bicubic_metrics(dataset, metrics_opt, opt["scale"])
        report["datasets"][name] = entry
    path = osp.join(opt["path"]["results_root"], "metrics.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    logger.info(f"Metrics written to {path}")
    return report


def run(opt_path: str, **kwargs: Any) -> dict:
    """Load `opt_path` and test; return the metrics report."""
    from .options import load_options

    return test(load_options(opt_path, is_train=False, **kwargs))


if __name__ == "__main__":
    from .cli import main

    raise SystemExit(main(["test", *__import__("sys").argv[1:]]))
