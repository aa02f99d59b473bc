"""What an upscaled video is encoded as: the codec table (encoder, default quality and preset, lossless route, the
largest frame its highest level allows), the pixel format that keeps the source's depth and chroma, and the colour
tags the output carries. Pure data and rules: `video.py` opens the files.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from plksr_arch.errors import UserError

# AVColorSpace / AVColorRange values (FFmpeg's pixfmt.h; swscale takes the same numbers for its YUV matrices).
MATRIX_RGB, MATRIX_BT709, MATRIX_UNSPECIFIED, MATRIX_SMPTE170M = 0, 1, 2, 6
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
# The largest frame of H.264 level 6.2 (139,264 macroblocks) and of HEVC, VP9 and AV1 at their top levels.
TOP_LEVEL_PIXELS = 35_651_584


@dataclass(frozen=True)
class FrameLimit:
    """The largest frame a codec's highest level allows: pixels, and each side."""

    pixels: int
    width: int
    height: int
    level: str

    def fits(self, width: int, height: int) -> bool:
        return width * height <= self.pixels and width <= self.width and height <= self.height


@dataclass(frozen=True)
class Codec:
    """One output codec: its FFmpeg encoder, default CRF (None: lossless only) and preset, its CRF range, presets,
    the encoder used for `lossless` (None: it has no lossless mode) and its frame limit (None: none)."""

    name: str
    label: str
    encoder: str
    crf: int | None = None
    crf_range: tuple[int, int] = (0, 51)
    preset: str | None = None
    presets: tuple[str, ...] = ()
    lossless_encoder: str | None = None
    limit: FrameLimit | None = None


X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        # CRF 18 is x264's "visually lossless" point; x265 and the others reach it at higher numbers.
        Codec("h264", "H.264", "libx264", 18, (0, 51), "medium", X26X_PRESETS, "libx264rgb",
              FrameLimit(TOP_LEVEL_PIXELS, 16384, 16384, "level 6.2")),
        Codec("hevc", "HEVC", "libx265", 20, (0, 51), "medium", X26X_PRESETS, "libx265",
              FrameLimit(TOP_LEVEL_PIXELS, 16384, 16384, "level 6.2")),
        Codec("av1", "AV1", "libsvtav1", 30, (1, 63), "8", tuple(map(str, range(14))), None,
              FrameLimit(TOP_LEVEL_PIXELS, 16384, 8704, "level 6.3")),
        Codec("vp9", "VP9", "libvpx-vp9", 28, (0, 63), None, (), "libvpx-vp9",
              FrameLimit(TOP_LEVEL_PIXELS, 16384, 16384, "level 6.2")),
        Codec("ffv1", "FFV1", "ffv1", lossless_encoder="ffv1"),
    )
}  # fmt: skip
ALIASES = {"h265": "hevc", "x264": "h264", "avc": "h264", "x265": "hevc"}


@dataclass(frozen=True)
class VideoSettings:
    """How `plksr infer` encodes an upscaled video. `codec`: h264, hevc, av1, vp9 or ffv1 (None: the container's
    usual codec, H.264 where it carries it); `crf` and `preset`: the codec's (None: its default); `pix_fmt`: an FFmpeg
    pixel format the encoder takes (None: the source's depth and chroma); `lossless`: RGB stored exactly (FFV1 in
    Matroska/AVI, x264 RGB for 8 bits or x265 for more in other containers)."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    lossless: bool = False


@dataclass(frozen=True)
class Colour:
    """The colour tags of a video: YUV matrix, range, primaries and transfer (FFmpeg's enum values)."""

    matrix: int
    range: int
    primaries: int
    trc: int


@dataclass(frozen=True)
class Encoding:
    """A resolved encoder: FFmpeg encoder name, its options, pixel format and the codec it belongs to."""

    codec: Codec
    encoder: str
    options: dict[str, str]
    pix_fmt: str
    lossless: bool

    @property
    def rgb(self) -> bool:
        return is_rgb(self.pix_fmt)

    def describe(self) -> str:
        quality = "lossless" if self.lossless else f"crf {self.options.get('crf')}"
        preset = f", preset {self.options['preset']}" if "preset" in self.options else ""
        return f"{self.codec.label} ({self.encoder}, {self.pix_fmt}, {quality}{preset})"


def is_rgb(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("gbr", "rgb", "bgr"))


def chroma(pix_fmt: str) -> str:
    """'420', '422' or '444' (RGB counts as 444)."""
    if is_rgb(pix_fmt):
        return "444"
    return next((c for c in ("444", "422", "440", "411", "410") if c in pix_fmt), "420")


def source_colour(
    pix_fmt: str, matrix: int, colour_range: int, primaries: int, trc: int, width: int, height: int
) -> Colour:
    """The tags to read a source with and to give its upscale. An untagged YUV matrix is read as players read it
    (BT.709 from 1280 wide or more than 576 lines, BT.601 below) and written explicitly, since the upscaled frame
    would otherwise be read as BT.709 whatever the source was; an untagged range is limited (TV)."""
    if is_rgb(pix_fmt):
        return Colour(MATRIX_RGB, RANGE_FULL, primaries, trc)
    if matrix in (MATRIX_RGB, MATRIX_UNSPECIFIED, 3):
        matrix = MATRIX_BT709 if width >= 1280 or height > 576 else MATRIX_SMPTE170M
    if pix_fmt.startswith("yuvj"):
        colour_range = RANGE_FULL
    return Colour(matrix, colour_range if colour_range != RANGE_UNSPECIFIED else RANGE_LIMITED, primaries, trc)


def codec_named(name: str) -> Codec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CODECS:
        raise UserError(f"--codec {name}: unknown (choose from {', '.join(CODECS)})")
    return CODECS[key]


def choose_codec(settings: VideoSettings, container: str, carried: Collection[str], bits: int) -> Codec:
    """The codec of `settings`, or the container's usual one: VP9 in WebM; H.264 elsewhere (lossless: FFV1 in
    Matroska and AVI, else x264 RGB for 8 bits and x265 above). Refused when the container cannot carry it."""
    if settings.codec:
        codec = codec_named(settings.codec)
    elif settings.lossless and container in ("matroska", "avi", "nut"):
        codec = CODECS["ffv1"]
    elif settings.lossless:
        codec = CODECS["h264" if bits <= 8 else "hevc"]
    else:
        codec = CODECS["vp9" if container == "webm" else "h264"]
    if carried and codec.name not in carried:
        fits = [c for c in CODECS if c in carried]
        raise UserError(
            f"--codec {codec.name}: a {container} file cannot carry {codec.label}"
            + (f" (it carries {', '.join(fits)})" if fits else "")
        )
    return codec


def resolve_encoding(
    settings: VideoSettings, codec: Codec, source_pix_fmt: str, bits: int, formats_of: dict[str, list[str]]
) -> tuple[Encoding, list[str]]:
    """The encoder, options and pixel format for `settings` and a source of `source_pix_fmt` (`bits` per sample):
    the source's depth and chroma where the encoder takes them (`formats_of`: encoder -> its pixel formats), and
    the notes (one line each) where it does not."""
    lossless = settings.lossless or codec.crf is None
    notes: list[str] = []
    if lossless and settings.crf is not None:
        raise UserError(f"--crf {settings.crf}: a lossless encoding has no CRF")
    if lossless and codec.lossless_encoder is None:
        raise UserError(f"--lossless: {codec.label} has no lossless mode here (choose ffv1, h264, hevc or vp9)")
    if settings.preset is not None and settings.preset not in codec.presets:
        hint = f"choose from {', '.join(codec.presets)}" if codec.presets else "it has no presets"
        raise UserError(f"--preset {settings.preset}: not a {codec.label} preset ({hint})")
    low, high = codec.crf_range
    if settings.crf is not None and not low <= settings.crf <= high:
        raise UserError(f"--crf {settings.crf}: {codec.label} takes {low} to {high}")
    encoder = codec.lossless_encoder if lossless else codec.encoder
    assert encoder is not None
    formats = formats_of[encoder]
    if settings.pix_fmt:
        if settings.pix_fmt not in formats:
            raise UserError(f"--pix-fmt {settings.pix_fmt}: {encoder} takes {', '.join(formats)}")
        pix_fmt = settings.pix_fmt
    else:
        deep = bits > 8
        if lossless:
            wanted = ["gbrp10le", "gbrp16le", "rgb48le"] if deep else ["gbrp", "rgb24", "bgr0"]
            wanted += ["gbrp", "rgb24"]
        else:
            part = chroma(source_pix_fmt) if chroma(source_pix_fmt) in ("420", "422", "444") else "420"
            wanted = [f"yuv{part}p10le", "yuv420p10le"] if deep else []
            wanted += [f"yuv{part}p", "yuv420p"]
        pix_fmt = next((f for f in wanted if f in formats), formats[0])
        if deep and not any(c in pix_fmt for c in ("10", "12", "16")):
            notes.append(f"{codec.label} ({encoder}) has no {bits}-bit format here: 8-bit {pix_fmt} output")
    options: dict[str, str] = {}
    if codec.preset is not None:
        options["preset"] = settings.preset or codec.preset
    if encoder == "libx264rgb":
        options["qp"] = "0"
    elif encoder == "libx265":
        options["x265-params"] = "log-level=error" + (":lossless=1" if lossless else "")
    elif encoder == "libvpx-vp9":
        options.update({"lossless": "1"} if lossless else {"b": "0"})
        options["row-mt"] = "1"
    elif encoder == "ffv1":
        options.update({"level": "3", "slicecrc": "1"})
    if not lossless:
        options["crf"] = str(settings.crf if settings.crf is not None else codec.crf)
    return Encoding(codec, encoder, options, pix_fmt, lossless), notes


def check_frame_size(
    codec: Codec, pix_fmt: str, width: int, height: int, scale: int, carried: Collection[str], what: str
) -> None:
    """Refuse, before any work, an output frame beyond the codec's highest level or odd-sized under 4:2:0/4:2:2
    chroma, naming what fits: codecs the container carries, or a smaller scale."""
    part = chroma(pix_fmt)
    if (part == "420" and (width % 2 or height % 2)) or (part == "422" and width % 2):
        raise UserError(
            f"{what}: output {width}x{height} has an odd side, which {pix_fmt} cannot hold: choose --pix-fmt "
            f"{'yuv444p10le' if '10' in pix_fmt else 'yuv444p'}"
        )
    limit = codec.limit
    if limit is None or limit.fits(width, height):
        return
    others = [
        c.name
        for c in CODECS.values()
        if c is not codec and (not carried or c.name in carried) and (c.limit is None or c.limit.fits(width, height))
    ]
    smaller = [s for s in range(scale - 1, 0, -1) if limit.fits(width // scale * s, height // scale * s)]
    choices = [f"--codec {name}" for name in others]
    if smaller and smaller[0] > 1:
        choices.append(f"x{smaller[0]} weights ({width // scale * smaller[0]}x{height // scale * smaller[0]})")
    raise UserError(
        f"{what}: output {width}x{height} is beyond {codec.label}'s {limit.level} ({limit.pixels:,} pixels, sides "
        f"up to {limit.width}x{limit.height}); choose " + (" or ".join(choices) if choices else "a smaller input")
    )


# Text subtitle codecs (FFmpeg names; `srt` is SubRip's decoder name) and what each output container takes.
TEXT_SUBTITLES = ("mov_text", "subrip", "srt", "ass", "ssa", "webvtt")
TEXT_TARGETS = ("subrip", "mov_text", "webvtt")


def subtitle_text(payload: bytes, codec: str) -> str:
    """The plain text of one subtitle packet: mov_text's length-prefixed UTF-8 (its style boxes dropped), an ASS
    event's Text field (override blocks dropped, `\\N` as a line break), SubRip's and WebVTT's text (tags dropped)."""
    if codec == "mov_text":
        size = int.from_bytes(payload[:2], "big")
        return payload[2 : 2 + size].decode("utf-8", "replace")
    text = payload.decode("utf-8", "replace")
    if codec in ("ass", "ssa"):
        text = text.split(",", 8)[-1]
        text = re.sub(r"\{[^}]*\}", "", text).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    return re.sub(r"<[^>]+>", "", text)


def subtitle_payload(text: str, codec: str) -> bytes:
    """One subtitle packet of `codec` (a TEXT_TARGETS) holding `text`."""
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data if codec == "mov_text" else data
