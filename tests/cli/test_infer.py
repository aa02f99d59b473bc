"""`plksr infer` input collection (images by name, videos by content), output names, and the line that says how to
get PyAV."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_infer_inputs_and_output_names(tmp_path: Path) -> None:
    from plksr_arch.cli.infer import collect_inputs
    from plksr_arch.inference.folders import output_path

    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "a/y.JPG", "a/notes.txt", "z.webp"):
        (tmp_path / name).write_bytes(b"")
    files, problems = collect_inputs([str(tmp_path / "a"), str(tmp_path / "*.webp"), str(tmp_path / "a" / "x.png")])
    assert [Path(f).name for f in files] == ["x.png", "y.JPG", "z.webp"]  # folders, globs, no duplicates
    assert problems == []
    assert collect_inputs([str(tmp_path / "none*.png")])[1] == [
        f"{tmp_path / 'none*.png'}: no image or video files found"
    ]
    assert output_path("in/p.jpg", "out", sixteen_bit=False) == "out/p.jpg"
    assert output_path("in/p.jpg", "out", sixteen_bit=True) == "out/p.png"  # JPEG cannot hold 16 bits
    assert output_path("in/p.tif", "out", sixteen_bit=True) == "out/p.tif"


def test_folders_mix_images_and_videos_found_by_content(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from plksr_arch.cli.infer import collect_inputs, split_media
    from plksr_arch.data.clips import synthetic_clip
    from plksr_arch.inference.video import output_name

    (tmp_path / "a").mkdir()
    synthetic_clip(str(tmp_path / "a" / "clip.mkv"), 2, (32, 32), audio=False)
    synthetic_clip(str(tmp_path / "camera.mp4"), 2, (32, 32), audio=False)
    (tmp_path / "camera.mp4").rename(tmp_path / "a" / "camera_dump")  # an MP4 without a name for it
    (tmp_path / "a" / "x.png").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("not media")
    files, problems = collect_inputs([str(tmp_path / "a")])
    assert [Path(f).name for f in files] == ["camera_dump", "clip.mkv", "x.png"] and problems == []
    images, videos, problems = split_media(files)
    assert [Path(p).name for p in images] == ["x.png"] and problems == []
    assert {Path(p).name: output_name(v) for p, v in videos.items()} == {
        "camera_dump": "camera_dump.mp4",  # keeps its container
        "clip.mkv": "clip.mkv",
    }


def test_without_pyav_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    """PyAV hidden from the process: a video input is refused with the install line, exit 2, before any work."""
    import subprocess
    import sys

    import torch

    from plksr_arch import PLKSR

    from ..conftest import TINY_NET

    torch.save({"params": PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}).state_dict()}, tmp_path / "w.pth")
    (tmp_path / "clip.mp4").write_bytes(b"")
    code = (
        "import sys; sys.modules['av'] = None; from plksr_arch.cli import main; "
        f"sys.exit(main(['infer', 'w.pth', {str(tmp_path / 'clip.mp4')!r}, '-o', 'out']))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "plksr infer: error: video needs PyAV, which is not installed: pip install 'plksr-arch[video]'"
    )


def test_resume_keeps_outputs_already_there(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--resume` continues a folder run: an output that exists is kept as it is, the others are written."""
    import cv2
    import numpy as np
    import torch

    from plksr_arch import PLKSR
    from plksr_arch.cli import main

    from ..conftest import TINY_NET

    torch.save({"params": PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}).state_dict()}, tmp_path / "w.pth")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "in" / name), np.full((8, 8, 3), 100, np.uint8))
    (tmp_path / "out" / "a.png").write_bytes(b"done earlier")
    args = ["infer", str(tmp_path / "w.pth"), str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--resume"]
    assert main(args) == 0
    assert f"1 image(s) already in {tmp_path / 'out'}: kept (--resume)" in capsys.readouterr().out
    assert (tmp_path / "out" / "a.png").read_bytes() == b"done earlier"
    assert cv2.imread(str(tmp_path / "out" / "b.png")).shape == (32, 32, 3)  # TINY_NET is x4
