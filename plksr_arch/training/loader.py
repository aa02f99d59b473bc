"""The training data loader off the step's critical path: a worker count the machine can feed (`cap_workers`), and
BasicSR's loader rebuilt with workers kept across epochs and pinned memory for CUDA copies (`faster_loader`).

BasicSR starts `num_worker_per_gpu` workers afresh at every epoch. The official PLKSR files ask for 16, which on a
2-core CPU means 16 processes competing with the training step's two compute threads and restarting every epoch (3
iterations on Set14 at batch 4): the official trainer spent 1.25-1.33 s per iteration where its step takes 0.75 s
(PLKSR-tiny x4, batch 4 x 48 px, AVX512 EPYC, 2 cores).
"""

from __future__ import annotations

import logging
import os

import torch
from torch.utils.data import DataLoader


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_cap(cuda: bool, cores: int) -> int:
    """How many data workers a training may use: every core when a GPU computes; a quarter of them when the CPU
    computes the step, whose threads the workers would otherwise take. On 2 cores that is none: loading in the
    training process (8 ms per Set14 sample) was as fast as one worker or faster (0.903 and 0.824 s/iter against 0.969
    and 0.847, alternating, PLKSR-tiny x4 batch 4 x 48 px, AVX2 oneDNN)."""
    return cores if cuda else cores // 4


def cap_workers(opt: dict, log: logging.Logger) -> None:
    """Lower the option file's `datasets.train.num_worker_per_gpu` (in memory) to `worker_cap`, saying so once."""
    train = opt["datasets"]["train"]
    asked, cores, cuda = train.get("num_worker_per_gpu", 0), available_cores(), opt["num_gpu"] > 0
    workers = min(asked, worker_cap(cuda, cores))
    if workers < asked:
        train["num_worker_per_gpu"] = workers
        computes = "a GPU computes" if cuda else f"the step computes on {torch.get_num_threads()} threads"
        log.info(f"datasets.train.num_worker_per_gpu: {asked} asked, {workers} used ({cores} cores, {computes})")


def faster_loader(loader: DataLoader, cuda: bool) -> DataLoader:
    """`loader` (BasicSR's training loader) with its workers persistent across epochs and, on CUDA, pinned batches;
    the same dataset, batch size, workers, sampler (and so data order), seeding and drop_last. A loader of another
    class (BasicSR's `prefetch_mode: cpu`) is returned as it is."""
    if type(loader) is not DataLoader:
        return loader
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=loader.sampler,
        num_workers=loader.num_workers,
        pin_memory=cuda,
        drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.num_workers > 0,
    )
