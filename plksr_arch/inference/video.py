"""Video upscaling in one pass and one process, with PyAV (the `video` extra; its wheels bundle FFmpeg): the video
stream is decoded, its frames go through `Upscaler` `batch` at a time and are encoded, while the audio, subtitle and
attachment streams are copied packet for packet into the same output. Every frame keeps its presentation timestamp
(variable frame rate, start offsets) and the output its colour tags, rotation and aspect ratio
(`video_formats`).

Memory is bounded by the batch: frames are decoded as they are needed and encoded as they come out of the network,
so an hour-long clip uses what a minute uses, plus the encoder's lookahead. The output is written under a temporary
name beside the target and moved into place when complete. Ctrl-C (or SIGTERM) closes what was written as a playable
`<name>.partial.<ext>` with a record beside it (`.json`: source, network and encoding), and `resume=True` continues it
from its last frame: its encoded packets are copied, the source frames they hold are decoded but not upscaled again,
and the rest is encoded as in an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import os.path as osp
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from plksr_arch.errors import UserError
from plksr_arch.inference.video_formats import (
    MATRIX_RGB,
    RANGE_FULL,
    TEXT_SUBTITLES,
    TEXT_TARGETS,
    Colour,
    Encoding,
    VideoSettings,
    check_frame_size,
    choose_codec,
    resolve_encoding,
    source_colour,
    subtitle_payload,
    subtitle_text,
)

INSTALL = "pip install 'plksr-arch[video]'"
# Names that say "video" before anything is probed: without PyAV they get the install line, not "cannot read".
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg",
    ".ogv", ".3gp", ".nut", ".y4m",
)  # fmt: skip
# Demuxers of still images (and GIF): such files are images, or not ours.
STILL_DEMUXERS = ("image2", "gif", "apng", "webp", "tiff", "bmp", "png", "jpeg")
# The extension a video without one is written with, by its demuxer (others: Matroska, which carries most codecs).
CONTAINER_EXTENSIONS = {"mov": ".mp4", "matroska": ".mkv", "avi": ".avi", "mpegts": ".ts", "flv": ".flv", "nut": ".nut"}
# Muxers that can say which codecs they carry (FFmpeg's codec tag lists or query functions).
LISTING_MUXERS = ("mp4", "mov", "matroska", "webm", "avi", "flv", "nut", "ipod", "3gp", "3g2", "ismv", "f4v")
# Audio codecs a stream is re-encoded to when the output container cannot carry it, in order of preference.
AUDIO_FALLBACKS = ("aac", "opus", "mp3", "flac", "ac3")
# Encoded batches waiting for the writer thread, at most (overlap on): they bound the memory the overlap costs.
WRITE_BEHIND = 2
# Metadata a muxer writes itself or that describes the old encoding: not carried over.
STALE_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder", "duration", "number_of_frames", "bps")


class Upscaler(Protocol):
    """What a video pass needs of `inference.upscaler.Upscaler` (named here, not imported: the upscaler imports this
    module for its `upscale_video`)."""

    model: Any
    scale: int
    precision: str
    tile: int | str | None
    tile_overlap: int
    device: Any

    def batch(self, imgs: list[np.ndarray]) -> list[np.ndarray]: ...


class PyAVMissing(UserError):
    """PyAV is not installed; the message says how to install it."""


def require_av() -> Any:
    """The `av` module, or `PyAVMissing` saying how to install it."""
    try:
        import av
    except ImportError:
        raise PyAVMissing(f"video needs PyAV, which is not installed: {INSTALL}") from None
    return av


@dataclass(frozen=True)
class StreamInfo:
    """A stream of the source other than the one upscaled."""

    index: int
    kind: str
    codec: str


@dataclass(frozen=True)
class VideoSource:
    """A probed video file: its first video stream (size, pixel format and depth, colour, rotation, interlacing, time
    base, frame rate, frame count estimate, and the count its container announces: 0 when it does not) and its other
    streams."""

    path: str
    container: str
    index: int
    width: int
    height: int
    pix_fmt: str
    bits: int
    colour: Colour
    rotation: int
    interlaced: bool
    aspect: Fraction | None
    time_base: Fraction
    start: Fraction
    rate: Fraction | None
    frames: int
    announced: int
    others: tuple[StreamInfo, ...]


def probe(path: str) -> VideoSource | None:
    """The file's video, or None when it is not one (no video stream, a still image, not a media file)."""
    av = require_av()
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError:
        return None
    with container:
        name = container.format.name.split(",")[0]
        if name in STILL_DEMUXERS or name.endswith("_pipe"):
            return None
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            return None
        stream = videos[0]
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise UserError(f"{path}: cannot decode its video ({err})") from None
        if first is None:
            raise UserError(f"{path}: its video stream has no frames")
        rate = stream.average_rate or stream.guessed_rate
        frames = stream.frames
        if not frames and container.duration and rate:
            frames = round(container.duration / 1e6 * float(rate))
        pix_fmt = first.format.name
        return VideoSource(
            path=path,
            container=name,
            index=stream.index,
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            bits=max(c.bits for c in first.format.components),
            colour=source_colour(
                pix_fmt,
                first.colorspace,
                first.color_range,
                first.color_primaries,
                first.color_trc,
                first.width,
                first.height,
            ),
            rotation=int(first.rotation or 0),
            interlaced=bool(first.interlaced_frame),
            aspect=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
            time_base=stream.time_base,
            start=(first.pts or 0) * stream.time_base,
            rate=Fraction(rate) if rate else None,
            frames=frames or 0,
            announced=stream.frames or 0,
            others=tuple(
                StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else "unknown")
                for s in container.streams
                if s.index != stream.index
            ),
        )


def to_rgb(frame: Any, source: VideoSource) -> np.ndarray:
    """A decoded frame of `source` as the network takes it: HxWx3 RGB, uint8 (uint16 above 8 bits), read with the
    source's YUV matrix and range."""
    colour = source.colour
    fmt = "rgb48le" if source.bits > 8 else "rgb24"
    if colour.matrix == MATRIX_RGB:
        return frame.to_ndarray(format=fmt)
    return frame.to_ndarray(format=fmt, src_colorspace=colour.matrix, src_color_range=colour.range)


def output_name(source: VideoSource) -> str:
    """The output file name of `source` in a folder: its own name, with its container's extension when it has
    none."""
    name = osp.basename(source.path)
    return name if osp.splitext(name)[1] else name + CONTAINER_EXTENSIONS.get(source.container, ".mkv")


@dataclass(frozen=True)
class OutputPlan:
    """How one source becomes one output: muxer, encoding, frame size, and what happens to each other stream."""

    container: str
    encoding: Encoding
    width: int
    height: int
    copy: tuple[int, ...]
    reencode: dict[int, str]
    convert: dict[int, str]
    notes: tuple[str, ...]


@functools.cache
def _matroska_codecs() -> frozenset[str]:
    """The codecs a Matroska file carries (for the hint on a stream left out)."""
    with require_av().open(os.devnull, "w", format="matroska") as matroska:
        return frozenset(matroska.supported_codecs)


def plan_output(source: VideoSource, dst: str, settings: VideoSettings, scale: int) -> OutputPlan:
    """Everything refused before any work: a container FFmpeg cannot write, a codec it cannot carry, a frame beyond
    the codec's limits; and the notes (one line each) on streams re-encoded or left out and on interlacing."""
    av = require_av()
    try:
        with av.open(dst, "w") as probe_out:  # opening names the muxer; nothing is written until a header
            container = probe_out.format.name
            # Muxers without a codec list (MPEG-TS, ...) name only their default codecs: for them it is unknown.
            carried = set(probe_out.supported_codecs) if container in LISTING_MUXERS else set()
    except ValueError:
        raise UserError(
            f"{dst}: FFmpeg writes no video container with the extension {osp.splitext(dst)[1]!r}"
        ) from None
    codec = choose_codec(settings, container, carried, source.bits)
    formats_of = {
        encoder: [f.name for f in av.Codec(encoder, "w").video_formats]
        for encoder in {codec.encoder, codec.lossless_encoder}
        if encoder
    }
    encoding, notes = resolve_encoding(settings, codec, source.pix_fmt, source.bits, formats_of)
    width, height = source.width * scale, source.height * scale
    check_frame_size(codec, encoding.pix_fmt, width, height, scale, carried, dst)
    notes = [f"{source.path}: {note}" for note in notes]
    if source.interlaced:
        notes.append(
            f"{source.path}: interlaced video, upscaled as whole frames (deinterlace it first for clean edges)"
        )
    copy, reencode, convert = [], {}, {}
    target = osp.splitext(dst)[1] or container
    for other in source.others:
        label = f"{source.path}: {other.kind} stream #{other.index} ({other.codec})"
        copyable = other.kind in ("audio", "subtitle") and (not carried or other.codec in carried)
        if copyable or (other.kind == "attachment" and container == "matroska"):
            copy.append(other.index)
        elif other.kind == "audio" and (fallback := next((c for c in AUDIO_FALLBACKS if c in carried), None)):
            reencode[other.index] = fallback
            notes.append(f"{label} cannot go in a {target} file: re-encoded to {fallback}")
        elif other.codec in TEXT_SUBTITLES and (text := next((c for c in TEXT_TARGETS if c in carried), None)):
            convert[other.index] = text
            notes.append(f"{label} cannot go in a {target} file: its text converted to {text} (styling dropped)")
        else:
            mkv = container != "matroska" and (other.kind == "attachment" or other.codec in _matroska_codecs())
            keep = " (a .mkv output keeps it)" if mkv else ""
            notes.append(f"{label} cannot go in a {target} file: left out{keep}")
    return OutputPlan(container, encoding, width, height, tuple(copy), reencode, convert, tuple(notes))


@dataclass
class VideoRun:
    """What `upscale_video` did: the output, its frames (`resumed` of them copied from a partial, `computed`
    upscaled here), wall and network seconds, the encoding and the notes (one line each)."""

    output: str
    frames: int = 0
    computed: int = 0
    resumed: int = 0
    seconds: float = 0.0
    network_seconds: float = 0.0
    encoding: str = ""
    notes: list[str] = field(default_factory=list)


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM: `signum`) during `upscale_video`: what was written is closed as `partial` (None when no
    frame was), holding `frames` frames, and `resume=True` continues it."""

    def __init__(self, partial: str | None, frames: int, video_seconds: float, signum: int = signal.SIGINT) -> None:
        self.partial, self.frames, self.video_seconds, self.signum = partial, frames, video_seconds, signum
        if partial:
            message = (
                f"{partial} holds the first {frames} frame(s) ({video_seconds:.1f} s of video); run again with "
                "--resume to continue it"
            )
        else:
            message = "no frame was written"
        super().__init__(message)


def partial_path(dst: str) -> str:
    """`clip_x4.mp4` -> `clip_x4.partial.mp4`."""
    stem, ext = osp.splitext(dst)
    return f"{stem}.partial{ext}"


def record_path(partial: str) -> str:
    return partial + ".json"


def network_fingerprint(upscaler: Upscaler) -> str:
    """SHA-256 of the network's state dict (names and fp32 values): a partial is continued only by the same weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(upscaler.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def run_record(source: VideoSource, upscaler: Upscaler, plan: OutputPlan) -> dict[str, Any]:
    """What must be unchanged for a partial to be continued: the source file, the network and its arithmetic, and
    the encoding."""
    stat = os.stat(source.path)
    return {
        "source": {"path": osp.abspath(source.path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "network": network_fingerprint(upscaler),
        "scale": upscaler.scale,
        "precision": upscaler.precision,
        "tile": [upscaler.tile, upscaler.tile_overlap],
        "encoding": {"encoder": plan.encoding.encoder, "pix_fmt": plan.encoding.pix_fmt, **plan.encoding.options},
    }


class _Interrupts:
    """Ctrl-C (SIGINT) or SIGTERM while frames go into the encoder and the muxer takes effect once they are in, so a
    stopped output ends on a whole frame; anywhere else (decoding, the network) it stops the pass at once, as a
    KeyboardInterrupt, and `signum` says which signal it was. Only on the main thread, and only for a signal that
    has its default handling (a shell's background job ignores SIGINT: then so do we)."""

    DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def __init__(self) -> None:
        self.holding, self.pending, self.signum = 0, False, None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum, default in self.DEFAULTS.items():
                if signal.getsignal(signum) is default:
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
        if not self.holding and self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def hold_for_good(self) -> None:
        """From now on (closing the output), the signals are ignored."""
        self.holding += 1


class _Transcode:
    """One pass from `source` to the file `out_path`: demux, decode, upscale, encode, mux; `continued` is a partial
    whose video packets come first."""

    def __init__(
        self,
        upscaler: Upscaler,
        source: VideoSource,
        plan: OutputPlan,
        out_path: str,
        continued: str | None,
        last_pts: int | None,
        overlap: bool,
        interrupts: _Interrupts,
    ) -> None:
        av = require_av()
        self.av, self.upscaler, self.source, self.plan, self.interrupts = av, upscaler, source, plan, interrupts
        self.last_pts = last_pts  # frames up to this pts are in `continued`
        self.inp = av.open(source.path, metadata_errors="ignore")
        self.out = av.open(out_path, "w", format=plan.container)
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="plksr-video-writer") if overlap else None
        self.writes: deque[Future] = deque()
        self.frames_out = 0  # video packets muxed: one per frame
        self.sent_pts: int | None = None  # the last frame given to the encoder
        self.last_dts: Fraction | None = None  # the last copied partial packet's (s)
        self.network_seconds = 0.0
        self._open_streams(continued)

    def _open_streams(self, continued: str | None) -> None:
        av, source, plan, enc = self.av, self.source, self.plan, self.plan.encoding
        vin = self.inp.streams[source.index]
        vin.thread_type = "AUTO"
        self.out.metadata.update(_fresh_tags(self.inp.metadata))
        vout = self.out.add_stream(enc.encoder, rate=source.rate)
        self._configure(vout.codec_context)
        vout.time_base = source.time_base
        if source.rotation:
            vout.set_display_rotation(source.rotation)
        vout.metadata.update(_fresh_tags(vin.metadata))
        vout.disposition = vin.disposition
        self.vin, self.vout = vin, vout
        self.streams: dict[int, Any] = {}
        self.audio_encoders: dict[int, Any] = {}
        for index in plan.copy:
            template = self.inp.streams[index]
            self.streams[index] = self.out.add_stream_from_template(template)
            self.streams[index].metadata.update(_fresh_tags(template.metadata))
            self.streams[index].disposition = template.disposition
        for index, codec in plan.reencode.items():
            template = self.inp.streams[index]
            stream = self.out.add_stream(codec, rate=template.rate)
            stream.layout = template.layout
            stream.metadata.update(_fresh_tags(template.metadata))
            self.streams[index] = self.audio_encoders[index] = stream
        for index, codec in plan.convert.items():
            template = self.inp.streams[index]
            stream = self.out.add_mux_stream(codec, time_base=template.time_base)
            stream.metadata.update(_fresh_tags(template.metadata))
            stream.disposition = template.disposition
            self.streams[index] = stream
        chapters = self.inp.chapters()
        if chapters:
            self.out.set_chapters(chapters)
        self.kept = [vin, *(self.inp.streams[i] for i in (*plan.copy, *plan.reencode, *plan.convert))]
        self.partial = av.open(continued, metadata_errors="ignore") if continued else None
        self.partial_packets = self._partial_packets() if self.partial else iter(())
        self.next_partial = next(self.partial_packets, None)

    def _partial_packets(self) -> Iterator[Any]:
        """The continued partial's video packets, as our encoder writes them. MP4 and Matroska store H.264/HEVC
        length-prefixed with the parameter sets in the stream header, while the encoder hands the muxer start-code
        packets; `*_mp4toannexb` converts them and repeats the partial's own parameter sets before each keyframe, so
        its frames decode with its headers whatever the new encoder writes. A container that cannot hold negative
        times (Matroska) shifted the partial's times when an audio stream started before the video (AAC priming);
        the shift is taken out again, as the new output applies its own."""
        stream = self.partial.streams.video[0]
        extradata = stream.codec_context.extradata or b""
        name = stream.codec_context.name
        convert = name in ("h264", "hevc") and extradata[:1] == b"\x01"
        bsf = self.av.bitstream.BitStreamFilterContext(f"{name}_mp4toannexb", stream) if convert else None
        shift = None
        for packet in self.partial.demux(stream):
            for out in [packet] if bsf is None else bsf.filter(packet if packet.size else None):
                if not out.size:
                    continue
                if shift is None and out.pts is not None:
                    shift = out.pts - round(self.source.start / out.time_base)
                if shift:
                    out.pts -= shift
                    if out.dts is not None:
                        out.dts -= shift
                yield out

    def _configure(self, cc: Any) -> None:
        """Size, pixel format, time base, options, colour tags and aspect ratio of the video encoder `cc`."""
        source, plan, enc, colour = self.source, self.plan, self.plan.encoding, self.source.colour
        cc.width, cc.height, cc.pix_fmt = plan.width, plan.height, enc.pix_fmt
        cc.time_base = source.time_base
        if source.rate:
            cc.framerate = source.rate
        cc.options = dict(enc.options)
        cc.colorspace, cc.color_range = (MATRIX_RGB, RANGE_FULL) if enc.rgb else (colour.matrix, colour.range)
        cc.color_primaries, cc.color_trc = colour.primaries, colour.trc
        if source.aspect:
            cc.sample_aspect_ratio = source.aspect

    # Muxing: all of it on one thread (the writer, when overlapping), in order.
    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        if self.writer is None:
            with self.interrupts.held():
                fn(*args)
            return
        self.writes.append(self.writer.submit(fn, *args))
        while len(self.writes) > WRITE_BEHIND or (self.writes and self.writes[0].done()):
            self.writes.popleft().result()

    def _drain_partial(self, until: float | None) -> None:
        """Mux the continued partial's video packets up to time `until` (s; None: all)."""
        while self.next_partial is not None:
            packet = self.next_partial
            if until is not None and packet.dts is not None and float(packet.dts * packet.time_base) > until:
                return
            if packet.dts is not None:
                self.last_dts = packet.dts * packet.time_base
            packet.stream = self.vout
            self.out.mux_one(packet)
            self.frames_out += 1
            self.next_partial = next(self.partial_packets, None)

    def _mux_video(self, packets: list[Any]) -> None:
        """Mux newly encoded packets, after all of a continued partial's. Where the two parts join, a decode
        timestamp that would not increase is moved up (never past the packet's presentation time)."""
        if packets:
            self._drain_partial(None)
        for packet in packets:
            if self.last_dts is not None and packet.dts is not None:
                floor = math.floor(self.last_dts / packet.time_base) + 1
                if packet.dts < floor <= packet.pts:
                    packet.dts = floor
            packet.stream = self.vout
            self.out.mux_one(packet)
            self.frames_out += 1

    def _mux_copy(self, packet: Any, stream: Any) -> None:
        if packet.dts is not None:
            self._drain_partial(float(packet.dts * packet.time_base))
        packet.stream = stream
        self.out.mux_one(packet)

    def _mux_text(self, packet: Any, stream: Any) -> None:
        """A text subtitle packet in the output's text codec: same times, the text alone (empty cues dropped)."""
        text = subtitle_text(bytes(packet), packet.stream.codec_context.name)
        if not text.strip():
            return
        converted = self.av.Packet(subtitle_payload(text, self.plan.convert[packet.stream.index]))
        converted.time_base, converted.pts, converted.dts = packet.time_base, packet.pts, packet.dts
        converted.duration = packet.duration
        self._mux_copy(converted, stream)

    def _mux_reencoded(self, frames: list[Any], stream: Any) -> None:
        for frame in frames:
            packets = stream.encode(frame)
            if packets and packets[0].dts is not None:
                self._drain_partial(float(packets[0].dts * packets[0].time_base))
            self.out.mux(packets)

    def _encode(self, images: list[np.ndarray], stamps: list[tuple[int, int]]) -> None:
        av, enc, colour = self.av, self.plan.encoding, self.source.colour
        for image, (pts, duration) in zip(images, stamps, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
            if enc.rgb:
                frame = frame.reformat(format=enc.pix_fmt)
            else:
                frame = frame.reformat(format=enc.pix_fmt, dst_colorspace=colour.matrix, dst_color_range=colour.range)
            frame.pts, frame.time_base = pts, self.source.time_base
            if duration:
                frame.duration = duration
            self._mux_video(self.vout.encode(frame))

    def _flush_encoders(self) -> None:
        self._mux_video(self.vout.encode(None))
        for stream in self.audio_encoders.values():
            self.out.mux(stream.encode(None))
        self._drain_partial(None)

    def frames(self) -> Iterator[Any]:
        """Decoded frames of the upscaled stream, in presentation order, while the other streams are copied."""
        for packet in self.inp.demux(self.kept):
            index = packet.stream.index
            if index == self.source.index:
                yield from packet.decode()
            elif index in self.audio_encoders:
                self._submit(self._mux_reencoded, packet.decode(), self.streams[index])
            elif index in self.plan.convert and packet.size:
                self._submit(self._mux_text, packet, self.streams[index])
            elif packet.size:
                self._submit(self._mux_copy, packet, self.streams[index])

    def run(self, batch: int, progress: Callable[[int], object]) -> None:
        group: list[np.ndarray] = []
        stamps: list[tuple[int, int]] = []
        for frame in self.frames():
            pts = frame.pts if frame.pts is not None else frame.best_effort_timestamp
            if self.last_pts is not None and pts is not None and pts <= self.last_pts:
                progress(1)  # in the partial already
                continue
            if (frame.width, frame.height) != (self.source.width, self.source.height):
                raise UserError(
                    f"{self.source.path}: the frame at {frame.time or 0:.3f} s is "
                    f"{frame.width}x{frame.height}, the video began at {self.source.width}x{self.source.height}; a "
                    "size that changes within a video is not supported (split it there)"
                )
            group.append(to_rgb(frame, self.source))
            stamps.append((pts, frame.duration))
            if len(group) == batch:
                self._upscale(group, stamps)
                progress(len(stamps))
                group, stamps = [], []
        if group:
            self._upscale(group, stamps)
            progress(len(stamps))

    def _upscale(self, group: list[np.ndarray], stamps: list[tuple[int, int]]) -> None:
        tick = time.perf_counter()
        images = self.upscaler.batch(group)
        self.network_seconds += time.perf_counter() - tick
        self.sent_pts = stamps[-1][0]
        self._submit(self._encode, images, stamps)

    def finish(self) -> None:
        """Flush the encoders and close the output: all frames given to the encoder end up in it. With a writer
        thread the flush is its last job, after every one submitted."""
        if self.writer is None:
            self._flush_encoders()
        else:
            self.writes.append(self.writer.submit(self._flush_encoders))
            self.writer.shutdown(wait=True)
            while self.writes:
                self.writes.popleft().result()
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.shutdown(wait=True)
        for container in (self.out, self.inp, self.partial):
            if container is not None:
                container.close()


def _fresh_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in STALE_TAGS and not k.startswith("_STATISTICS")}


def _read_record(partial: str) -> dict[str, Any]:
    try:
        with open(record_path(partial), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UserError(f"{record_path(partial)}: cannot read the record of {partial} ({err})") from None


def check_partial(dst: str, resume: bool) -> dict[str, Any] | None:
    """The record of `dst`'s partial when there is one to continue (None: there is none); a partial without `resume`
    is refused, so an interrupted run's work is never overwritten."""
    partial = partial_path(dst)
    if not osp.exists(partial):
        return None
    old = _read_record(partial)
    if not resume:
        raise UserError(
            f"{partial}: holds {old.get('frames', '?')} frame(s) of an interrupted run; add --resume to continue it, "
            "or delete it to start over"
        )
    return old


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [key for key in new if old.get(key) != new[key]]


def upscale_video(
    upscaler: Upscaler,
    src: str,
    dst: str,
    settings: VideoSettings | None = None,
    *,
    batch: int | None = None,
    resume: bool = False,
    overlap: bool = True,
    progress: Callable[[int], object] = lambda n: None,
    source: VideoSource | None = None,
    plan: OutputPlan | None = None,
) -> VideoRun:
    """Upscale the video `src` into `dst` (see the module). `batch`: frames per network pass (default: 8 on a GPU,
    1 on a CPU). `overlap`: encode and mux on a writer thread while the network runs on the next frames (on a 2-core
    AVX512-BF16 CPU, PLKSR-tiny x4 to HD, it ran 5-7% faster than in line in three `plksr bench --video` runs; on a
    GPU, where the network takes milliseconds, it is the point). `resume`: continue `dst`'s partial; without it an
    existing partial is refused, so no work is lost. `progress(n)` is called as n more frames are done. Raises
    `VideoInterrupted` on Ctrl-C, UserError on bad input."""
    start = time.perf_counter()
    source = source or probe(src)
    if source is None:
        raise UserError(f"{src}: not a video PyAV can read")
    plan = plan or plan_output(source, dst, settings or VideoSettings(), upscaler.scale)
    cuda = upscaler.device.type == "cuda"
    batch = batch or (8 if cuda else 1)
    if osp.abspath(dst) == osp.abspath(src):
        raise UserError(f"{dst}: is the input; choose another output")
    record = run_record(source, upscaler, plan)
    partial = partial_path(dst)
    continued, last_pts, resumed = None, None, 0
    old = check_partial(dst, resume)
    if old is not None:
        changed = _differences(old, record)
        if changed:
            raise UserError(
                f"{partial}: was made with another {', '.join(changed)}; continue it with the same ones, or delete it "
                "(and its .json) to start over"
            )
        continued, last_pts, resumed = partial, old["last_pts"], old["frames"]
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    stem, ext = osp.splitext(dst)
    temporary = f"{stem}.{os.getpid()}.tmp{ext}"
    run = VideoRun(dst, encoding=plan.encoding.describe(), notes=list(plan.notes), resumed=resumed)
    with _Interrupts() as interrupts:
        job = None
        try:
            job = _Transcode(upscaler, source, plan, temporary, continued, last_pts, overlap, interrupts)
            if resumed:
                progress(0)
            job.run(batch, progress)
            interrupts.hold_for_good()
            job.finish()
        except KeyboardInterrupt:
            interrupts.hold_for_good()
            signum = interrupts.signum or signal.SIGINT
            raise _keep_partial(job, temporary, partial, record, last_pts, signum) from None
        except BaseException as err:
            interrupts.hold_for_good()
            if job is not None:
                with contextlib.suppress(Exception):
                    job.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            if isinstance(err, OSError) and err.filename == temporary:  # a full disk, a file-size limit
                raise UserError(f"{dst}: cannot write it ({err.strerror}); the incomplete file was removed") from None
            if isinstance(err, require_av().FFmpegError):  # a broken source, a stream the muxer refuses
                raise UserError(f"{src} -> {dst}: FFmpeg stopped: {err}; the incomplete file was removed") from None
            raise
    os.replace(temporary, dst)
    for leftover in (partial, record_path(partial)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    run.frames, run.computed = job.frames_out, job.frames_out - resumed
    if source.announced and run.frames != source.announced:
        run.notes.append(
            f"{src}: {run.frames} frame(s) decoded where the file announces {source.announced}: it may be truncated "
            "or damaged"
        )
    run.network_seconds, run.seconds = job.network_seconds, time.perf_counter() - start
    return run


def _keep_partial(
    job: _Transcode | None, temporary: str, partial: str, record: dict[str, Any], last_pts: int | None, signum: int
) -> VideoInterrupted:
    """Close an interrupted output as `partial` (with its record), or remove it when it holds no frame."""
    try:
        if job is not None:
            job.finish()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    sent = None if job is None else job.sent_pts if job.sent_pts is not None else last_pts
    if job is None or not job.frames_out or sent is None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        return VideoInterrupted(None, 0, 0.0, signum)
    os.replace(temporary, partial)
    with open(record_path(partial), "w", encoding="utf-8") as f:
        json.dump({**record, "frames": job.frames_out, "last_pts": sent}, f, indent=1)
    return VideoInterrupted(partial, job.frames_out, float(sent * job.source.time_base), signum)
