"""The training data loader (training.loader): workers capped by the cores and said once, persistent, same order."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader, TensorDataset

from plksr_arch.training import loader
from plksr_arch.training.loader import cap_workers, faster_loader, worker_cap


def test_worker_cap_leaves_the_cores_to_the_step_on_a_cpu() -> None:
    assert worker_cap(cuda=False, cores=2) == 0
    assert worker_cap(cuda=False, cores=16) == 4
    assert worker_cap(cuda=True, cores=16) == 16


def test_cap_workers_lowers_the_official_16_and_says_so(monkeypatch, caplog) -> None:
    monkeypatch.setattr(loader, "available_cores", lambda: 2)
    opt = {"num_gpu": 0, "datasets": {"train": {"num_worker_per_gpu": 16}}}
    log = logging.getLogger("test_loader")
    with caplog.at_level("INFO", logger="test_loader"):
        cap_workers(opt, log)
        cap_workers(opt, log)  # already capped: nothing more to say
    assert opt["datasets"]["train"]["num_worker_per_gpu"] == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("datasets.train.num_worker_per_gpu: 16 asked, 0 used (2 cores")


def test_faster_loader_keeps_order_and_batches_with_persistent_workers() -> None:
    data = TensorDataset(torch.arange(10.0))
    sampler = torch.utils.data.SequentialSampler(data)
    plain = DataLoader(data, batch_size=3, sampler=sampler, num_workers=1, drop_last=True)
    fast = faster_loader(plain, cuda=False)
    assert fast.persistent_workers and fast.num_workers == 1 and fast.sampler is sampler and not fast.pin_memory
    for _ in range(2):  # two epochs through the same workers
        assert [b[0].tolist() for b in fast] == [b[0].tolist() for b in plain]
    assert not faster_loader(DataLoader(data, num_workers=0), cuda=False).persistent_workers
