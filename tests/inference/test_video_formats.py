"""The video encoding rules (`inference.video_formats`): codec per container, depth and chroma kept, lossless routes,
refusals before any work (frame limits, odd sides, bad options), colour tags."""

from __future__ import annotations

import pytest

from plksr_arch.errors import UserError
from plksr_arch.inference.video_formats import (
    CODECS,
    RANGE_FULL,
    RANGE_LIMITED,
    VideoSettings,
    check_frame_size,
    choose_codec,
    resolve_encoding,
    source_colour,
)

MP4 = {"h264", "hevc", "av1", "vp9", "ffv1"}
MOV = {"h264", "hevc", "av1", "vp9"}
X264 = ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"]
FORMATS = {
    "libx264": X264,
    "libx264rgb": ["bgr0", "bgr24", "rgb24"],
    "libx265": ["yuv420p", "yuv444p", "gbrp", "yuv420p10le", "gbrp10le"],
    "libvpx-vp9": ["yuv420p", "yuv444p", "gbrp"],
    "ffv1": ["yuv420p", "bgr0", "gbrp", "gbrp10le", "gbrp16le"],
}


def encoding(settings: VideoSettings, container: str = "mov", pix_fmt: str = "yuv420p", bits: int = 8):
    codec = choose_codec(settings, container, MP4 if container == "mov" else set(), bits)
    return resolve_encoding(settings, codec, pix_fmt, bits, FORMATS)


def test_defaults_keep_depth_and_chroma() -> None:
    enc, notes = encoding(VideoSettings())
    assert (enc.encoder, enc.pix_fmt, enc.options) == ("libx264", "yuv420p", {"preset": "medium", "crf": "18"})
    assert notes == []
    assert encoding(VideoSettings(), pix_fmt="yuv420p10le", bits=10)[0].pix_fmt == "yuv420p10le"
    assert encoding(VideoSettings(), pix_fmt="yuv444p")[0].pix_fmt == "yuv444p"
    vp9, notes = encoding(VideoSettings(codec="vp9"), pix_fmt="yuv420p10le", bits=10)
    assert vp9.pix_fmt == "yuv420p" and "no 10-bit format" in notes[0]  # this libvpx build is 8-bit only
    assert choose_codec(VideoSettings(), "webm", {"vp9", "av1"}, 8).name == "vp9"


def test_lossless_routes() -> None:
    assert encoding(VideoSettings(lossless=True), "matroska")[0].encoder == "ffv1"
    mp4 = encoding(VideoSettings(lossless=True))[0]
    assert (mp4.encoder, mp4.pix_fmt, mp4.options["qp"]) == ("libx264rgb", "rgb24", "0")
    deep = encoding(VideoSettings(lossless=True), pix_fmt="yuv420p10le", bits=10)[0]
    assert (deep.encoder, deep.pix_fmt, deep.options["x265-params"]) == (
        "libx265",
        "gbrp10le",
        "log-level=error:lossless=1",
    )
    assert encoding(VideoSettings(codec="ffv1"), "matroska", bits=10)[0].pix_fmt == "gbrp10le"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (VideoSettings(codec="mpeg2"), "--codec mpeg2: unknown (choose from h264, hevc, av1, vp9, ffv1)"),
        (VideoSettings(crf=60), "--crf 60: H.264 takes 0 to 51"),
        (VideoSettings(preset="quick"), "--preset quick: not a H.264 preset (choose from ultrafast,"),
        (VideoSettings(codec="vp9", preset="fast"), "--preset fast: not a VP9 preset (it has no presets)"),
        (VideoSettings(lossless=True, crf=10), "--crf 10: a lossless encoding has no CRF"),
        (VideoSettings(codec="av1", lossless=True), "--lossless: AV1 has no lossless mode here"),
        (VideoSettings(pix_fmt="nv12x"), "--pix-fmt nv12x: libx264 takes yuv420p, yuv422p"),
    ],
)
def test_bad_settings_are_one_line(settings: VideoSettings, message: str) -> None:
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        encoding(settings)


def test_a_codec_the_container_cannot_carry_is_refused() -> None:
    with pytest.raises(
        UserError, match="--codec ffv1: a mov file cannot carry FFV1 \\(it carries h264, hevc, av1, vp9\\)"
    ):
        choose_codec(VideoSettings(codec="ffv1"), "mov", MOV, 8)


def test_frame_limits_name_what_fits() -> None:
    h264 = CODECS["h264"]
    check_frame_size(h264, "yuv420p", 7680, 4320, 4, MP4, "out.mp4")  # 1080p x4 fits level 6.2
    with pytest.raises(UserError) as err:
        check_frame_size(h264, "yuv420p", 15360, 8640, 4, MP4, "out.mp4")  # 4K x4
    assert str(err.value) == (
        "out.mp4: output 15360x8640 is beyond H.264's level 6.2 (35,651,584 pixels, sides up to 16384x16384); "
        "choose --codec ffv1 or x2 weights (7680x4320)"
    )
    with pytest.raises(UserError, match="odd side, which yuv420p cannot hold: choose --pix-fmt yuv444p"):
        check_frame_size(h264, "yuv420p", 321, 180, 3, MP4, "out.mp4")
    check_frame_size(h264, "yuv444p", 321, 180, 3, MP4, "out.mp4")


def test_colour_tags_of_untagged_sources_follow_players() -> None:
    sd = source_colour("yuv420p", 2, 0, 2, 2, 640, 360)
    assert (sd.matrix, sd.range) == (6, RANGE_LIMITED)  # BT.601, TV range
    assert source_colour("yuv420p", 2, 0, 2, 2, 1920, 1080).matrix == 1  # BT.709
    hdr = source_colour("yuv420p10le", 9, 1, 9, 16, 3840, 2160)  # BT.2020, PQ
    assert (hdr.matrix, hdr.range, hdr.primaries, hdr.trc) == (9, RANGE_LIMITED, 9, 16)
    assert source_colour("yuvj420p", 5, 0, 2, 2, 640, 480).range == RANGE_FULL
    assert source_colour("gbrp", 0, 2, 1, 1, 64, 64).matrix == 0


def test_subtitle_text_between_codecs() -> None:
    from plksr_arch.inference.video_formats import subtitle_payload, subtitle_text

    assert subtitle_text(b"\x00\x05hello" + b"\x00\x00\x00\x0cstyl....", "mov_text") == "hello"  # style box dropped
    assert subtitle_text(b"<i>hello</i> world", "subrip") == "hello world"
    ass = b"3,0,Default,,0,0,0,,{\\an8}{\\i1}hello\\Nworld, again"
    assert subtitle_text(ass, "ass") == "hello\nworld, again"
    assert subtitle_payload("héllo", "mov_text") == b"\x00\x06h\xc3\xa9llo"
    assert subtitle_payload("hello", "subrip") == b"hello"
