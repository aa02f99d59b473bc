"""Folder inference with overlapped I/O: image files are decoded ahead in a reader thread and the results encoded in
writer threads while the network runs on the next image (OpenCV releases the GIL while it decodes and encodes), and
consecutive inputs of one size and dtype (video frames) go through the network together, `batch` at a time.

The overlap is for GPUs, where the network takes milliseconds and PNG encoding of a 4K output a large fraction of a
second, so the I/O sets the pace of a sequential loop. On a CPU the network already uses every core and takes ~97%
of the time: on a 2-core AVX2 EPYC (PLKSR-tiny x4, 50 frames to HD) the overlap ran at 0.94x and 0.96x of the
sequential loop, within the machine's drift, so there the I/O runs in line, between passes.
`benchmarks/infer_throughput.py` measures it.
"""

from __future__ import annotations

import os
import os.path as osp
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from plksr_arch.errors import UserError
from plksr_arch.inference.upscaler import Upscaler, check_image

# Images decoded ahead of the network, and encoded results waiting for a writer, at most (beyond one batch): they
# bound the memory the overlap costs.
READ_AHEAD = 2
WRITE_BEHIND = 4
WRITERS = 2


@dataclass
class FolderRun:
    """What `upscale_files` did: written files (output -> input), problems (one line each), wall and network
    seconds."""

    written: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    network_seconds: float = 0.0


def swap_rb(img: np.ndarray) -> np.ndarray:
    """BGR(A) <-> RGB(A) (OpenCV reads and writes BGR; the network is RGB); grey passes through."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return img[..., [2, 1, 0, *range(3, img.shape[2])]]
    return img


def output_path(path: str, outdir: str, sixteen_bit: bool) -> str:
    """Same name in `outdir`; 16-bit images go to PNG when their format cannot hold 16 bits (JPEG, BMP, WebP)."""
    stem, ext = osp.splitext(osp.basename(path))
    if sixteen_bit and ext.lower() not in (".png", ".tif", ".tiff"):
        ext = ".png"
    return osp.join(outdir, stem + ext)


def _read(path: str) -> np.ndarray | None:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def _write(path: str, img: np.ndarray) -> str | None:
    """Encode and write; the problem, or None."""
    try:
        ok = cv2.imwrite(path, swap_rb(img))
    except cv2.error as err:
        return f"{path}: cannot write this image ({str(err).strip().splitlines()[-1]})"
    return None if ok else f"{path}: cannot write this image"


Submit = Callable[..., Future]


def _run_now(fn: Callable[..., object], *args: object) -> Future:
    """`fn(*args)` run here and now, as a finished Future: the in-line stand-in for a pool's `submit`."""
    future: Future = Future()
    future.set_result(fn(*args))
    return future


def _decoded(files: list[str], submit: Submit, ahead: int) -> Iterator[tuple[str, np.ndarray | None]]:
    """(path, image or None) in order, decoded up to `ahead` images before they are asked for."""
    pending: deque[tuple[str, Future]] = deque()
    for path in files:
        pending.append((path, submit(_read, path)))
        if len(pending) > ahead:
            done_path, future = pending.popleft()
            yield done_path, future.result()
    while pending:
        done_path, future = pending.popleft()
        yield done_path, future.result()


def upscale_files(
    upscaler: Upscaler,
    files: list[str],
    outdir: str,
    batch: int = 1,
    overlap: bool | None = None,
    progress: Callable[[int], object] = lambda n: None,
) -> FolderRun:
    """Upscale `files` into `outdir` (made if missing; same names); with `overlap` (default: on a GPU) decoding ahead
    and encoding behind the network in threads. Consecutive images of one shape and dtype run `batch` at a time. A
    file that cannot be read, upscaled or written is a problem of its own; the others go on. `progress(n)` is called
    as n more images are done."""
    if overlap is None:
        overlap = upscaler.device.type == "cuda"
    os.makedirs(outdir, exist_ok=True)
    run = FolderRun()
    claimed: dict[str, str] = {}
    group: list[tuple[str, str, np.ndarray]] = []
    writes: deque[tuple[str, str, Future]] = deque()
    start = time.perf_counter()

    def collect(block: bool) -> None:
        while writes and (block or len(writes) > WRITE_BEHIND or writes[0][2].done()):
            out_path, path, future = writes.popleft()
            problem = future.result()
            if problem:
                run.problems.append(problem)
            else:
                run.written[out_path] = path

    def flush(write: Submit) -> None:
        tick = time.perf_counter()
        try:
            outs = upscaler.batch([img for _, _, img in group])
        except UserError as err:
            run.problems += [f"{path}: {err}" for path, _, _ in group]
            outs = []
        run.network_seconds += time.perf_counter() - tick
        for (path, out_path, _), out in zip(group, outs, strict=False):
            writes.append((out_path, path, write(_write, out_path, out)))
        progress(len(group))
        group.clear()
        collect(block=False)

    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(WRITERS) as writer:
        read, write = (reader.submit, writer.submit) if overlap else (_run_now, _run_now)
        for path, img in _decoded(files, read, READ_AHEAD + batch):
            if img is None:
                run.problems.append(f"{path}: cannot read this image")
                progress(1)
                continue
            try:
                check_image(img)
            except UserError as err:
                run.problems.append(f"{path}: {err}")
                progress(1)
                continue
            out_path = output_path(path, outdir, img.dtype == np.uint16)
            if out_path in claimed:
                run.problems.append(f"{path}: same output name as {claimed[out_path]} ({out_path}); skipped")
                progress(1)
                continue
            claimed[out_path] = path
            if group and (len(group) == batch or (img.shape, img.dtype) != (group[0][2].shape, group[0][2].dtype)):
                flush(write)
            group.append((path, out_path, swap_rb(img)))
        if group:
            flush(write)
        collect(block=True)
    run.seconds = time.perf_counter() - start
    return run
