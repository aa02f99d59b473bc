"""BasicSR's test pipeline for PLKSR plus `results/<name>/metrics.{json,md,csv}`: `python -m plksr_arch.test -opt X`.

Each test dataset gets the model's metrics (mean and per image), the bicubic baseline (MATLAB-bicubic upsampling of
the same LR, the same metric settings), and, when a reference file holds the network's published numbers, those
and our delta. Test-time self-ensemble, tiling and AMP are the `val.*` keys of PLKSRModel.
"""

from __future__ import annotations

import os.path as osp
from typing import Any

from plksr_arch.evaluation.report import write_reports


def reference_for(opt: dict) -> tuple[str | None, dict[str, Any]]:
    """(key, references) for a test option dict: `val.reference` (a key, `auto` or null) in `val.reference_file`
    (a YAML file, or `paper`, the default: the PLKSR paper's tables shipped with the package).

    `auto` (the default) uses the released-variant key of the network (`released_key`) when the file holds it, so a
    released configuration gets the paper's row without any option; an explicit key that the file lacks is an error
    naming both.
    """
    from plksr_arch.evaluation import paper
    from plksr_arch.evaluation.references import ReferenceFileError, load_references, released_key
    from plksr_arch.training.models.plksr_model import TestKeys

    keys = TestKeys.read(opt.get("val"))
    path, key = keys.reference_file, keys.reference
    if key is None or path is None:
        if key not in (None, "auto"):
            raise ReferenceFileError(f"val.reference: {key!r} needs val.reference_file")
        return None, {}
    references = paper.results() if path == paper.NAME else load_references(osp.expanduser(path))
    if key == "auto":
        key = released_key(opt)
        return (key, references) if key in references else (None, {})
    if key not in references:
        raise ReferenceFileError(f"{path}: val.reference: {key!r} is not in the file (has: {', '.join(references)})")
    return key, references


def test(opt: dict) -> dict:
    """Test every dataset in `opt` (from `load_options(..., is_train=False)`); write and return the report."""
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    from basicsr.utils import get_env_info, get_time_str, make_exp_dirs
    from basicsr.utils.options import dict2str

    from plksr_arch.evaluation.metrics import BicubicBaseline
    from plksr_arch.evaluation.references import lookup, released_variant
    from plksr_arch.training.basicsr_fixes import run_logger
    from plksr_arch.training.process import start_process

    start_process(opt)
    key, references = reference_for(opt)
    make_exp_dirs(opt)
    log_file = osp.join(opt["path"]["log"], f"test_{opt['name']}_{get_time_str()}.log")
    logger = run_logger(log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    model = build_model(opt)
    val = opt["val"]
    settings = {"self_ensemble": model.self_ensemble, "tile": model.tile, "use_amp": model.val_amp}
    if model.tile:
        settings["tile_overlap"] = model.tile_overlap
    report: dict[str, Any] = {
        "name": opt["name"],
        "scale": opt.get("scale"),
        "variant": released_variant(model.get_bare_model(model.net_g)),
        "settings": settings,
        "reference": {"key": key, "source": references[key].get("source")} if key else None,
        "datasets": {},
    }
    for dataset_opt in opt["datasets"].values():
        dataset = build_dataset(dataset_opt)
        loader = build_dataloader(
            dataset, dataset_opt, num_gpu=opt["num_gpu"], dist=opt["dist"], sampler=None, seed=opt["manual_seed"]
        )
        name = dataset_opt["name"]
        save_img = val.get("save_img", False)
        strips = osp.join(opt["path"]["visualization"], name) if save_img else None
        baseline = BicubicBaseline(val.get("metrics") or {}, opt["scale"], strips, opt["network_g"]["type"])
        result = model.validation(loader, opt["name"], tb_logger=None, save_img=save_img, on_image=baseline)
        if result is None:  # a rank other than 0 of a distributed test: rank 0 scores and writes
            continue
        report["datasets"][name] = result.as_dict(reference=lookup(references, key, name) if key else None)
    if not any("reference" in d for d in report["datasets"].values()):
        report["reference"] = None  # the reference has none of these datasets (e.g. the demo's photos)
    paths = write_reports(report, opt["path"]["results_root"])
    logger.info(f"Metrics written to {paths['json']}, {paths['md']} and {paths['csv']}")
    return report


def run(opt_path: str, **kwargs: Any) -> dict:
    """Load `opt_path` and test; return the metrics report."""
    from plksr_arch.training.options import load_options

    return test(load_options(opt_path, is_train=False, **kwargs))
