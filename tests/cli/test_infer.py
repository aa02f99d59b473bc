"""`plksr infer` input collection and output names."""

from __future__ import annotations

from pathlib import Path


def test_infer_inputs_and_output_names(tmp_path: Path) -> None:
    from plksr_arch.cli.infer import collect_inputs
    from plksr_arch.inference.folders import output_path

    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "a/y.JPG", "a/notes.txt", "z.webp"):
        (tmp_path / name).write_bytes(b"")
    files, problems = collect_inputs([str(tmp_path / "a"), str(tmp_path / "*.webp"), str(tmp_path / "a" / "x.png")])
    assert [Path(f).name for f in files] == ["x.png", "y.JPG", "z.webp"]  # folders, globs, no duplicates
    assert problems == []
    assert collect_inputs([str(tmp_path / "none*.png")])[1] == [f"{tmp_path / 'none*.png'}: no image files found"]
    assert output_path("in/p.jpg", "out", sixteen_bit=False) == "out/p.jpg"
    assert output_path("in/p.jpg", "out", sixteen_bit=True) == "out/p.png"  # JPEG cannot hold 16 bits
    assert output_path("in/p.tif", "out", sixteen_bit=True) == "out/p.tif"
