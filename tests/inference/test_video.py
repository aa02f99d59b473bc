"""Video upscaling (`inference.video`) on synthetic clips made with PyAV (`data.clips`): frames, size, timestamps,
duration, sound, subtitles and metadata carried over; quality against `Upscaler` on the decoded frames; streams the
container cannot carry; interruption, partials and `resume`; bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from plksr_arch.archs.plksr_arch import PLKSR
from plksr_arch.data.clips import SUBTITLES, synthetic_clip
from plksr_arch.errors import UserError
from plksr_arch.inference.upscaler import Upscaler
from plksr_arch.inference.video import VideoInterrupted, partial_path, probe, record_path, upscale_video
from plksr_arch.inference.video_formats import VideoSettings
from tests.conftest import TINY_NET, psnr

av = pytest.importorskip("av")


def natural_upscaler(scale: int = 2) -> Upscaler:
    """A tiny PLKSR whose last convolution is scaled by 0.1. Random weights add ~20 levels of independent noise per
    colour channel, which no 4:2:0 video can hold (22 dB RGB, 38 dB luma at CRF 18); a trained network's output is
    a natural image, which this one stays close to (its global skip)."""
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=scale).eval()
    with torch.no_grad():
        last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.mul_(0.1)
        last.bias.mul_(0.1)
    return Upscaler(net, "cpu", "fp32")


@pytest.fixture(scope="module")
def upscaler() -> Upscaler:
    return natural_upscaler()


def decoded(path: Path) -> list[tuple[float, np.ndarray, av.VideoFrame]]:
    """(time s, RGB frame, frame) of the first video stream, read with the frame's own colour tags."""
    with av.open(str(path)) as container:
        out = []
        for frame in container.decode(video=0):
            deep = max(c.bits for c in frame.format.components) > 8
            options = {}
            if not frame.format.name.startswith(("gbr", "rgb", "bgr")):
                options = {"src_colorspace": frame.colorspace, "src_color_range": frame.color_range}
            rgb = frame.to_ndarray(format="rgb48le" if deep else "rgb24", **options)
            out.append((round(float(frame.time), 6), rgb, frame))
        return out


def packets(path: Path, kind: str) -> list[tuple[bytes, float | None]]:
    """(payload, time s) of every packet of the streams of `kind`."""
    with av.open(str(path)) as container:
        return [
            (bytes(p), None if p.pts is None else round(float(p.pts * p.time_base), 6))
            for p in container.demux()
            if p.stream.type == kind and p.size
        ]


def video_end(path: Path) -> float:
    """The end of the video stream: last frame time plus its duration (s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return max(float((p.pts + p.duration) * p.time_base) for p in container.demux(stream) if p.size)


VARIANTS = {
    "sound_and_subtitles.mp4": {"subtitles": True, "aspect": Fraction(4, 3)},
    "variable_rate.mkv": {"subtitles": True, "variable_rate": True, "chapters": True},
    "ten_bit.mp4": {"ten_bit": True},
    "rotated.mp4": {"rotation": 90},
    "start_offset.mov": {"start": 0.5},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_video_keeps_frames_timing_sound_subtitles_and_metadata(tmp_path: Path, upscaler: Upscaler, name: str) -> None:
    src, dst = tmp_path / name, tmp_path / f"out_{name}"
    clip = synthetic_clip(str(src), 12, (64, 36), **VARIANTS[name])
    run = upscale_video(upscaler, str(src), str(dst))
    ins, outs = decoded(src), decoded(dst)
    assert run.frames == len(outs) == len(ins) == 12
    assert [t for t, _, _ in outs] == [t for t, _, _ in ins] == [round(t, 6) for t in clip.times]
    assert video_end(dst) == pytest.approx(video_end(src), abs=1e-3)
    first_in, first_out = ins[0][2], outs[0][2]
    assert (first_out.width, first_out.height) == (128, 72)
    assert first_out.rotation == first_in.rotation == VARIANTS[name].get("rotation", 0)
    assert first_out.format.name == first_in.format.name  # 8 or 10 bits, 4:2:0
    source = probe(str(src))
    assert (first_out.colorspace, first_out.color_range) == (source.colour.matrix, source.colour.range)
    assert packets(dst, "audio") == packets(src, "audio")  # copied packet for packet, same times
    assert packets(dst, "subtitle") == packets(src, "subtitle")
    if VARIANTS[name].get("subtitles"):
        texts = [payload for payload, _ in packets(dst, "subtitle") if payload.strip(b"\0")]
        assert [t.decode().lstrip("\0\x05") for t in texts] == [words for _, _, words in SUBTITLES]
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert b.metadata.get("title") == a.metadata.get("title") == "plksr-arch synthetic clip"
        assert b.streams.audio[0].language == "eng"
        assert b.streams.video[0].sample_aspect_ratio == a.streams.video[0].sample_aspect_ratio
        assert [c["metadata"] for c in b.chapters()] == [c["metadata"] for c in a.chapters()]
        assert len(a.chapters()) == (2 if VARIANTS[name].get("chapters") else 0)
    peak = 65535 if ins[0][1].dtype == np.uint16 else 255
    worst = min(psnr(out, upscaler(rgb), peak) for (_, rgb, _), (_, out, _) in zip(ins, outs, strict=True))
    assert worst >= 30.0, f"{worst:.2f} dB"


@pytest.mark.parametrize(("container", "ten_bit"), [("mkv", False), ("mp4", False), ("mkv", True), ("mp4", True)])
def test_lossless_is_within_one_level(tmp_path: Path, upscaler: Upscaler, container: str, ten_bit: bool) -> None:
    """One level of the stored depth: 1 of 255, or 1 of 1023 (65 of 65535 as the frames are read) for 10 bits."""
    src, dst = tmp_path / f"clip.{container}", tmp_path / f"out.{container}"
    synthetic_clip(str(src), 6, (64, 36), ten_bit=ten_bit)
    run = upscale_video(upscaler, str(src), str(dst), VideoSettings(lossless=True))
    expected = {"mkv": "FFV1 (ffv1, gbrp10le" if ten_bit else "FFV1 (ffv1, bgr0", "mp4": "HEVC (libx265, gbrp10le"}
    assert run.encoding.startswith(expected[container] if container == "mkv" or ten_bit else "H.264 (libx264rgb")
    level = 65 if ten_bit else 1
    for (_, rgb, _), (_, out, _) in zip(decoded(src), decoded(dst), strict=True):
        assert np.abs(out.astype(np.int64) - upscaler(rgb)).max() <= level


def test_streams_the_container_cannot_carry_are_named(tmp_path: Path, upscaler: Upscaler) -> None:
    src = tmp_path / "pcm.mkv"
    with av.open(str(src), "w") as out:  # PCM sound and SubRip text, which WebM cannot carry
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 36, "yuv420p"
        sound = out.add_stream("pcm_s16le", rate=48000)
        sound.layout = "mono"
        text = out.add_mux_stream("subrip")
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((36, 64, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame.reformat(format="yuv420p")))
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 48000, i * 1920
            out.mux(sound.encode(samples))
        out.mux(video.encode())
        packet = av.Packet(b"hi")
        packet.stream, packet.time_base, packet.pts, packet.dts, packet.duration = text, Fraction(1, 1000), 0, 0, 100
        out.mux(packet)
    run = upscale_video(upscaler, str(src), str(tmp_path / "out.webm"))
    assert run.notes == [
        f"{src}: audio stream #1 (pcm_s16le) cannot go in a .webm file: re-encoded to opus",
        f"{src}: subtitle stream #2 (srt) cannot go in a .webm file: its text converted to webvtt (styling dropped)",
    ]
    with av.open(str(tmp_path / "out.webm")) as done:
        streams = [(s.type, s.codec_context.name) for s in done.streams]
        assert streams == [("video", "vp9"), ("audio", "opus"), ("subtitle", "webvtt")]
    assert packets(tmp_path / "out.webm", "subtitle") == [(b"hi", 0.0)]


@pytest.mark.parametrize(("source", "output", "codec"), [("mp4", "mkv", "subrip"), ("mkv", "mp4", "mov_text")])
def test_text_subtitles_are_converted_between_containers(
    tmp_path: Path, upscaler: Upscaler, source: str, output: str, codec: str
) -> None:
    """MP4 holds mov_text and Matroska SubRip: the cues keep their text and times in the other container's codec
    (times relative to the picture: a Matroska output moves every stream by the AAC priming)."""
    src, dst = tmp_path / f"clip.{source}", tmp_path / f"out.{output}"
    synthetic_clip(str(src), 25, (64, 36), subtitles=True)
    run = upscale_video(upscaler, str(src), str(dst))
    assert run.notes[0].endswith(f"its text converted to {codec} (styling dropped)")
    with av.open(str(dst)) as done:
        assert done.streams.subtitles[0].codec_context.name in ((codec, "srt") if codec == "subrip" else (codec,))
    from plksr_arch.inference.video_formats import subtitle_text

    shift = decoded(dst)[0][0] - decoded(src)[0][0]  # 0.021 s into Matroska, 0 into MP4
    cues = [(subtitle_text(p, codec), t - shift) for p, t in packets(dst, "subtitle")]
    expected = [(words, begin) for begin, _, words in SUBTITLES]
    assert [(text, round(t, 3)) for text, t in cues if text] == [(w, round(b, 3)) for w, b in expected]


def test_interlaced_input_is_said_once(tmp_path: Path, upscaler: Upscaler) -> None:
    src = tmp_path / "fields.mp4"
    synthetic_clip(str(src), 4, (64, 36), interlaced=True)
    run = upscale_video(upscaler, str(src), str(tmp_path / "out.mp4"))
    assert run.notes == [f"{src}: interlaced video, upscaled as whole frames (deinterlace it first for clean edges)"]


def test_frames_beyond_the_codec_are_refused_before_any_work(tmp_path: Path) -> None:
    src = tmp_path / "uhd.mp4"
    synthetic_clip(str(src), 1, (3840, 2160), audio=False)
    network = PLKSR(dim=8, n_blocks=1, kernel_size=5, split_ratio=0.25, use_ea=False, upscaling_factor=4)
    with pytest.raises(UserError, match="output 15360x8640 is beyond H.264's level 6.2 .*choose --codec ffv1 or x2"):
        upscale_video(Upscaler(network.eval(), "cpu", "fp32"), str(src), str(tmp_path / "out.mp4"))
    assert list(tmp_path.iterdir()) == [src]


def test_probe_tells_videos_from_images_by_content(tmp_path: Path) -> None:
    synthetic_clip(str(tmp_path / "clip.mp4"), 2, (32, 32), audio=False)
    (tmp_path / "clip.mp4").rename(tmp_path / "no_extension")
    assert probe(str(tmp_path / "no_extension")).container == "mov"
    import cv2

    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not media")
    assert probe(str(tmp_path / "still.png")) is None
    assert probe(str(tmp_path / "notes.txt")) is None


def interrupt_after(frames: int):
    """A progress callback that presses Ctrl-C once `frames` frames are done."""
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] >= frames:
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize(("container", "overlap"), [("mkv", False), ("mp4", False), ("mkv", True)])
def test_interrupt_then_resume_gives_the_uninterrupted_frames(
    tmp_path: Path, upscaler: Upscaler, container: str, overlap: bool
) -> None:
    src = tmp_path / f"clip.{container}"
    synthetic_clip(str(src), 30, (64, 36), subtitles=True)
    settings = VideoSettings(lossless=True)
    whole, cut = tmp_path / f"whole.{container}", tmp_path / f"cut.{container}"
    upscale_video(upscaler, str(src), str(whole), settings, overlap=overlap)
    with pytest.raises(VideoInterrupted) as stop:
        upscale_video(upscaler, str(src), str(cut), settings, progress=interrupt_after(11), overlap=overlap)
    partial = Path(partial_path(str(cut)))
    assert stop.value.partial == str(partial) and stop.value.frames >= 11
    assert str(stop.value).startswith(f"{partial} holds the first {stop.value.frames} frame(s)")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [src.name, whole.name, partial.name, Path(record_path(str(partial))).name]
    )  # no temporary file, nothing under the target's name
    assert len(decoded(partial)) == stop.value.frames  # playable
    with pytest.raises(UserError, match="holds .* frame\\(s\\) of an interrupted run; add --resume"):
        upscale_video(upscaler, str(src), str(cut), settings)
    with pytest.raises(UserError, match="was made with another encoding"):
        upscale_video(upscaler, str(src), str(cut), VideoSettings(), resume=True)
    run = upscale_video(upscaler, str(src), str(cut), settings, resume=True, overlap=overlap)
    assert (run.resumed, run.computed, run.frames) == (stop.value.frames, 30 - stop.value.frames, 30)
    a, b = decoded(whole), decoded(cut)
    assert [t for t, _, _ in a] == [t for t, _, _ in b]
    assert all(np.array_equal(x, y) for (_, x, _), (_, y, _) in zip(a, b, strict=True))
    assert packets(cut, "audio") == packets(whole, "audio")
    assert packets(cut, "subtitle") == packets(whole, "subtitle")
    assert not partial.exists() and not Path(record_path(str(partial))).exists()


def test_resume_of_a_lossy_partial_joins_the_two_encodings(tmp_path: Path, upscaler: Upscaler) -> None:
    src, cut = tmp_path / "clip.mp4", tmp_path / "cut.mp4"
    synthetic_clip(str(src), 30, (64, 36))
    with pytest.raises(VideoInterrupted):
        upscale_video(upscaler, str(src), str(cut), progress=interrupt_after(9))
    upscale_video(upscaler, str(src), str(cut), resume=True)
    ins, outs = decoded(src), decoded(cut)
    assert [t for t, _, _ in outs] == [t for t, _, _ in ins]
    assert min(psnr(out, upscaler(rgb), 255) for (_, rgb, _), (_, out, _) in zip(ins, outs, strict=True)) >= 30.0


def test_an_error_leaves_no_file(tmp_path: Path, upscaler: Upscaler, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "clip.mp4"
    synthetic_clip(str(src), 8, (64, 36))

    def broken(images: list[np.ndarray]) -> list[np.ndarray]:
        raise RuntimeError("network failed")

    monkeypatch.setattr(upscaler, "batch", broken)
    with pytest.raises(RuntimeError, match="network failed"):
        upscale_video(upscaler, str(src), str(tmp_path / "out.mp4"))
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


MEMORY_PROBE = """
import json, resource, sys, torch
from plksr_arch.archs.plksr_arch import PLKSR
from plksr_arch.inference.upscaler import Upscaler
from plksr_arch.inference.video import upscale_video
torch.set_num_threads(1)
net = PLKSR(dim=16, n_blocks=2, kernel_size=7, split_ratio=0.25, use_ea=True, upscaling_factor=4).eval()
up = Upscaler(net, "cpu", "fp32")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
before = rss()
run = upscale_video(up, sys.argv[1], sys.argv[2])
print(json.dumps({"before": before, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frames": run.frames}))
"""


@pytest.mark.slow
def test_memory_is_bounded_by_the_batch_not_the_clip(tmp_path: Path) -> None:
    """60 frames (past x264's 40-frame lookahead) against 600, 160x90 -> 640x360: holding every output frame would
    add 400 MiB to the long run."""
    peaks = {}
    for frames in (60, 600):
        src = tmp_path / f"clip{frames}.mp4"
        synthetic_clip(str(src), frames, (160, 90))
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(src), str(tmp_path / f"out{frames}.mp4")],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[frames] = json.loads(done.stdout.strip().splitlines()[-1])
        assert peaks[frames]["frames"] == frames
    short, long = peaks[60], peaks[600]
    print(json.dumps(peaks))
    assert long["peak"] <= 1.25 * short["peak"], peaks
    assert long["peak"] - long["before"] <= 1.25 * (short["peak"] - short["before"]) + 16, peaks


def test_a_truncated_file_is_said_and_a_changing_size_refused(tmp_path: Path, upscaler: Upscaler) -> None:
    from plksr_arch.data.clips import pattern

    def h264(path: Path, size: tuple[int, int], start: int, **options: str) -> None:
        with av.open(str(path), "w", **options) as out:
            video = out.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = *size, "yuv420p"
            for i in range(start, start + 20):
                rgb = (pattern(i, *size) * 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                out.mux(video.encode(frame))
            out.mux(video.encode())

    h264(tmp_path / "whole.mp4", (64, 36), 0, options={"movflags": "faststart"})  # frame count up front
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    run = upscale_video(upscaler, str(tmp_path / "cut.mp4"), str(tmp_path / "cut_x2.mp4"))
    assert 0 < run.frames < 20
    assert run.notes == [
        f"{tmp_path / 'cut.mp4'}: {run.frames} frame(s) decoded where the file announces 20: it may be truncated or "
        "damaged"
    ]
    # MPEG-TS files concatenate: 64x36 then 48x32 in one stream (and a container without a codec list)
    h264(tmp_path / "a.ts", (64, 36), 0, format="mpegts")
    h264(tmp_path / "b.ts", (48, 32), 20, format="mpegts")
    (tmp_path / "both.ts").write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    assert upscale_video(upscaler, str(tmp_path / "a.ts"), str(tmp_path / "a_x2.ts")).frames == 20
    with pytest.raises(UserError, match=r"both.ts: the frame at 0.800 s is 48x32, the video began at 64x36"):
        upscale_video(upscaler, str(tmp_path / "both.ts"), str(tmp_path / "both_x2.ts"))
    assert not (tmp_path / "both_x2.ts").exists() and not list(tmp_path.glob("*.tmp.*"))


def test_batches_of_frames_give_the_same_video(tmp_path: Path, upscaler: Upscaler) -> None:
    """`batch=4` (a GPU's way, here on the CPU; 10 frames leave a short last batch) against one frame a pass."""
    src = tmp_path / "clip.mkv"
    synthetic_clip(str(src), 10, (64, 36))
    one, four = tmp_path / "one.mkv", tmp_path / "four.mkv"
    upscale_video(upscaler, str(src), str(one), VideoSettings(lossless=True), batch=1)
    assert upscale_video(upscaler, str(src), str(four), VideoSettings(lossless=True), batch=4).frames == 10
    a, b = decoded(one), decoded(four)
    assert [t for t, _, _ in a] == [t for t, _, _ in b]
    assert max(np.abs(x.astype(int) - y).max() for (_, x, _), (_, y, _) in zip(a, b, strict=True)) <= 1
