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
