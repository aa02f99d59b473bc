"""Faults of `plksr infer` on videos: Ctrl-C or SIGTERM in the middle (a playable partial, then `--resume`), a
partial that a new run would overwrite, an output beyond the codec, options that do not fit, a file output for
several inputs, a full disk. Nothing half-written ever carries the target's name."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ..conftest import PLKSR
from .harness import fault, run, tiny_weights

av = pytest.importorskip("av")
pytestmark = pytest.mark.slow


def clip(path: Path, frames: int = 20, size: tuple[int, int] = (64, 36)) -> Path:
    from plksr_arch.data.clips import synthetic_clip

    synthetic_clip(str(path), frames, size, subtitles=True)
    return path


FRAMES = 60


def _written(folder: Path) -> int:
    """Bytes in the temporary output so far (0 before it exists)."""
    return sum(p.stat().st_size for p in folder.glob("cut.*.tmp.mkv"))


def frames_of(path: Path) -> list[tuple[int, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_stop_keeps_a_playable_partial_that_resume_finishes(tmp_path: Path, how: str) -> None:
    """Ctrl-C or SIGTERM: the frames given to the encoder are flushed, the file closed as a partial, exit 128 + the
    signal; `--resume` finishes it frame for frame as the uninterrupted run."""
    weights = tiny_weights(tmp_path / "w.pth")
    src = clip(tmp_path / "clip.mp4", FRAMES, (320, 180))
    whole = run("infer", str(weights), str(src), "-o", "whole.mkv", "--lossless", cwd=tmp_path)
    assert whole.status == 0, whole.stderr[-2000:]
    proc = subprocess.Popen(
        [str(PLKSR), "infer", str(weights), str(src), "-o", "cut.mkv", "--lossless"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts it (see train's)
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and _written(tmp_path) < 2**17:  # a few frames in
        time.sleep(0.02)
    proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, how), err[-2000:]
    assert "Traceback" not in out + err
    line = err.strip().splitlines()[-1]
    said = "interrupted" if how == "SIGINT" else "stopped by SIGTERM"
    assert line.startswith(f"plksr infer: {said}: cut.partial.mkv holds the first ") and "--resume" in line
    held = int(line.split("holds the first ")[1].split(" ")[0])
    assert 0 < held < FRAMES
    assert not (tmp_path / "cut.mkv").exists() and not list(tmp_path.glob("*.tmp.*"))
    assert len(frames_of(tmp_path / "cut.partial.mkv")) == held  # playable, whole frames only
    done = run("infer", str(weights), str(src), "-o", "cut.mkv", "--lossless", "--resume", cwd=tmp_path)
    assert done.status == 0, done.stderr[-2000:]
    assert f"cut.mkv: {FRAMES} frame(s), {held} from the partial" in done.stdout
    a, b = frames_of(tmp_path / "whole.mkv"), frames_of(tmp_path / "cut.mkv")
    assert [t for t, _ in a] == [t for t, _ in b] and all(
        np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True)
    )
    assert sorted(p.name for p in tmp_path.glob("cut*")) == ["cut.mkv"]


def test_a_partial_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "w.pth")
    src = clip(tmp_path / "clip.mp4")
    partial, record = tmp_path / "out.partial.mp4", tmp_path / "out.partial.mp4.json"
    partial.write_bytes(b"frames of an earlier run")
    record.write_text('{"frames": 7}')
    fault(
        "infer",
        str(weights),
        str(src),
        "-o",
        "out.mp4",
        cwd=tmp_path,
        names=["out.partial.mp4: holds 7 frame(s) of an interrupted run; add --resume"],
        kept=[partial, record],
    )
    assert not (tmp_path / "out.mp4").exists()


def test_an_output_beyond_the_codec_is_refused_before_any_work(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "w.pth", scale=4)
    src = clip(tmp_path / "uhd.mp4", 1, (3840, 2160))
    fault(
        "infer",
        str(weights),
        str(src),
        "-o",
        "out.mp4",
        cwd=tmp_path,
        names=["out.mp4: output 15360x8640 is beyond H.264's level 6.2", "choose --codec ffv1 or x2 weights"],
        kept=[src],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uhd.mp4", "w.pth"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param(["--crf", "99"], "--crf 99: H.264 takes 0 to 51", id="crf"),
        pytest.param(
            ["--codec", "mpeg2"], "--codec mpeg2: unknown (choose from h264, hevc, av1, vp9, ffv1)", id="codec"
        ),
        pytest.param(["--codec", "av1", "--lossless"], "--lossless: AV1 has no lossless mode here", id="lossless"),
        pytest.param(["--pix-fmt", "yuv420p12le"], "--pix-fmt yuv420p12le: libx264 takes yuv420p,", id="pix_fmt"),
    ],
)
def test_video_options_that_do_not_fit(tmp_path: Path, options: list[str], named: str) -> None:
    weights = tiny_weights(tmp_path / "w.pth")
    src = clip(tmp_path / "clip.mp4", 2)
    fault("infer", str(weights), str(src), "-o", "out.mp4", *options, cwd=tmp_path, names=[named], kept=[src])
    assert not (tmp_path / "out.mp4").exists()


def test_a_file_output_for_several_inputs(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "w.pth")
    a, b = clip(tmp_path / "a.mp4", 2), clip(tmp_path / "b.mp4", 2)
    fault(
        "infer",
        str(weights),
        str(a),
        str(b),
        "-o",
        "out.mp4",
        cwd=tmp_path,
        names=["-o out.mp4: names a video file, which is for one video input (2 video(s), 0 image(s) found)"],
        kept=[a, b],
    )


def test_a_full_disk_leaves_no_half_written_video(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "w.pth")
    src = clip(tmp_path / "clip.mp4", 60, (160, 90))
    fault(
        "infer",
        str(weights),
        str(src),
        "-o",
        "out.mkv",
        "--lossless",
        cwd=tmp_path,
        names=["out.mkv: cannot write it (File too large); the incomplete file was removed"],
        kept=[src],
        status=1,  # as an image that cannot be written: the run's other inputs would be done
        file_limit=2**20,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "w.pth"]
