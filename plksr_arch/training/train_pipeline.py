"""BasicSR's training pipeline for PLKSR, rooted at the working directory: `python -m plksr_arch.train -opt X.yml`.

Differs from `basicsr.train.train_pipeline` in what the current stack and a CPU need: validated options
(`training.options`), auto-resume from the run's own folder, CPU-mapped resume states, a checkpoint on
SIGINT/SIGTERM, on a run of non-finite steps (`NonFiniteLoss`) and on a bad training image (a `UserError` from the
data loader, naming it) so a stopped run loses no work, and epochs that run until `total_iter` is reached.
"""

from __future__ import annotations

import datetime
import logging
import os.path as osp
import signal
import time
from typing import Any

import torch

from plksr_arch.errors import UserError
from plksr_arch.training import basicsr_fixes
from plksr_arch.training.loader import cap_workers, faster_loader
from plksr_arch.training.models.plksr_model import ModelKeys, NonFiniteLoss
from plksr_arch.training.options import OptionsError, load_options
from plksr_arch.training.process import start_process


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving its state; `signum` is the signal's number."""

    def __init__(self, signum: int, iteration: int) -> None:
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at iter {iteration}; models and training state saved"
        )
        self.signum = signum


class StopRequest:
    """Signal handler that asks the training loop to stop at the next iteration boundary (a second signal: now).

    Raising from the handler itself could land inside a checkpoint write or a logging call (both of which catch
    exceptions in BasicSR), so the loop polls `signum` instead.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum


def prepare_run(opt: dict, opt_path: str) -> tuple[dict | None, logging.Logger, Any]:
    """Resume state (or None), logger and tensorboard logger of a run; creates the experiment folders."""
    from basicsr.train import init_tb_loggers
    from basicsr.utils import get_env_info, get_time_str, make_exp_dirs, mkdir_and_rename
    from basicsr.utils.options import copy_opt_file, dict2str

    resume_state = basicsr_fixes.load_resume_state(opt)
    if resume_state is None:
        make_exp_dirs(opt)
        if opt["logger"].get("use_tb_logger") and "debug" not in opt["name"] and opt["rank"] == 0:
            mkdir_and_rename(osp.join(opt["root_path"], "tb_logger", opt["name"]))
    copy_opt_file(opt_path, opt["path"]["experiments_root"])  # rank 0 only; records the command line
    log_file = osp.join(opt["path"]["log"], f"train_{opt['name']}_{get_time_str()}.log")
    logger = basicsr_fixes.run_logger(log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    return resume_state, logger, init_tb_loggers(opt)


def training_setup(opt: dict, logger: logging.Logger, *, fast: bool) -> tuple[Any, Any, list, int]:
    """(train loader, its sampler, validation loaders, total iterations) as BasicSR builds them, with cuDNN's
    benchmark mode on; `fast` (everything but --exact) adds TF32 on CUDA and the capped, persistent data loader
    (`training.loader`). `plksr bench --train` builds its trainers through this too."""
    from basicsr.train import create_train_val_dataloader

    cuda = opt["num_gpu"] > 0
    torch.backends.cudnn.benchmark = True
    if cuda and fast:  # TF32 for the fp32 matmuls and convolutions left outside autocast
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if fast:
        cap_workers(opt, logger)
    train_loader, train_sampler, val_loaders, _, total_iters = create_train_val_dataloader(opt, logger)
    if fast:
        train_loader = faster_loader(train_loader, cuda)
    return train_loader, train_sampler, val_loaders, total_iters


def train(opt: dict, opt_path: str) -> str:
    """Run training as configured in `opt` (from `load_options`); return the path of the latest weights."""
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
    from basicsr.models import build_model
    from basicsr.utils import AvgTimer, MessageLogger

    start_process(opt)
    resume_state, logger, tb_logger = prepare_run(opt, opt_path)
    fast = not ModelKeys.of(opt).exact
    train_loader, train_sampler, val_loaders, total_iters = training_setup(opt, logger, fast=fast)
    model = build_model(opt)
    start_epoch, current_iter = 0, 0
    if resume_state:
        model.resume_training(resume_state)
        start_epoch, current_iter = resume_state["epoch"], resume_state["iter"]
        logger.info(f"Resuming training from epoch: {start_epoch}, iter: {current_iter}.")
    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    if opt["datasets"]["train"].get("prefetch_mode") == "cuda":
        prefetcher: Any = CUDAPrefetcher(train_loader, opt)
    else:
        prefetcher = CPUPrefetcher(train_loader)

    logger.info(f"Start training from epoch: {start_epoch}, iter: {current_iter}")

    def next_batch() -> dict | None:
        """The next batch; a bad training image (a UserError naming it) stops the run after saving its progress."""
        try:
            return prefetcher.next()
        except UserError as err:
            if current_iter == start_iter:
                raise
            model.save(epoch, current_iter)
            raise type(err)(
                f"{err}; models and training state saved as iter {current_iter}: fix or remove it, then resume "
                "with --auto_resume"
            ) from None

    start_iter = current_iter
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    val_freq = opt.get("val", {}).get("val_freq")
    stop = StopRequest()
    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    epoch = start_epoch
    try:
        # Epochs run until total_iter is reached: BasicSR counts epochs without the loader's drop_last and can stop
        # short of total_iter.
        while current_iter < total_iters:
            train_sampler.set_epoch(epoch)
            prefetcher.reset()
            train_data = next_batch()
            if train_data is None:
                raise OptionsError(
                    f"{opt_path}: datasets.train.batch_size_per_gpu: {opt['datasets']['train']['batch_size_per_gpu']} "
                    f"x {opt['world_size']} process(es) is more than the {len(train_loader.dataset)} training images"
                )
            while train_data is not None and current_iter < total_iters:
                data_timer.record()
                current_iter += 1
                model.update_learning_rate(current_iter, warmup_iter=opt["train"].get("warmup_iter", -1))
                model.feed_data(train_data)
                try:
                    model.optimize_parameters(current_iter)
                except NonFiniteLoss as err:
                    model.save(epoch, current_iter)  # the weights are the last good ones: skipped steps change nothing
                    raise NonFiniteLoss(
                        f"{opt_path}: {err}; the last good weights and training state are saved as iter "
                        f"{current_iter} in {opt['path']['experiments_root']} (resume with --auto_resume)"
                    ) from None
                iter_timer.record()
                if current_iter == 1:
                    msg_logger.reset_start_time()
                if current_iter % opt["logger"]["print_freq"] == 0:
                    log_vars = {"epoch": epoch, "iter": current_iter, "lrs": model.get_current_learning_rate()}
                    log_vars.update(time=iter_timer.get_avg_time(), data_time=data_timer.get_avg_time())
                    log_vars.update(model.get_current_log())
                    msg_logger(log_vars)
                if current_iter % int(opt["logger"]["save_checkpoint_freq"]) == 0:
                    logger.info("Saving models and training states.")
                    model.save(epoch, current_iter)
                if val_freq and current_iter % int(val_freq) == 0:
                    for val_loader in val_loaders:
                        model.validation(val_loader, current_iter, tb_logger, opt["val"]["save_img"])
                if stop.signum is not None:
                    name = signal.Signals(stop.signum).name
                    logger.warning(f"{name} received: saving models and training state at iter {current_iter}.")
                    model.save(epoch, current_iter)
                    logger.warning(f"Resume with: plksr train -opt {opt_path} --auto_resume")
                    raise Interrupted(stop.signum, current_iter)
                data_timer.start()
                iter_timer.start()
                train_data = next_batch()
            epoch += 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    consumed = str(datetime.timedelta(seconds=int(time.time() - start_time)))
    logger.info(f"End of training. Time consumed: {consumed}")
    logger.info("Save the latest model.")
    model.save(epoch=-1, current_iter=-1)
    if opt.get("val") is not None:
        for val_loader in val_loaders:
            model.validation(val_loader, current_iter, tb_logger, opt["val"]["save_img"])
    if tb_logger:
        tb_logger.close()
    return osp.join(opt["path"]["models"], "net_g_latest.pth")


def run(opt_path: str, **kwargs: Any) -> str:
    """Load `opt_path` (see `load_options` for the keywords) and train; return the latest weights' path."""
    return train(load_options(opt_path, is_train=True, **kwargs), opt_path)
