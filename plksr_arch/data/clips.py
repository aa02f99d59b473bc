"""Synthetic video clips, made with PyAV: a moving colour pattern over a photo-like gradient, with optional AAC sine
audio, text subtitles, variable frame rate, 10-bit samples, a display rotation and a start offset. They are the
video benchmark's input (`plksr bench --video`) and the test suite's, so no video file is shipped or downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

SAMPLE_RATE = 48000
SUBTITLES = ((0.1, 0.4, "hello"), (0.6, 0.4, "world"))  # (start s, duration s, text)


@dataclass(frozen=True)
class Clip:
    """What `synthetic_clip` wrote: the presentation time of each frame (s) and the end of the last one."""

    path: str
    times: tuple[float, ...]
    duration: float


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` of the moving pattern: HxWx3 float in [0, 1], smooth enough to compress like a natural video."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shift = 2.0 * index
    red = 0.5 + 0.35 * np.sin((xx + shift) / 9.0) * np.cos(yy / 13.0)
    green = 0.5 + 0.3 * np.cos((yy - shift) / 7.0 + xx / 23.0)
    blue = 0.25 + 0.5 * ((xx + yy) / (width + height)) + 0.1 * np.sin((xx - yy + shift) / 5.0)
    return np.clip(np.stack([red, green, blue], axis=-1), 0.0, 1.0)


def synthetic_clip(
    path: str,
    frames: int = 30,
    size: tuple[int, int] = (64, 36),
    rate: int = 25,
    *,
    audio: bool = True,
    subtitles: bool = False,
    variable_rate: bool = False,
    ten_bit: bool = False,
    rotation: int = 0,
    start: float = 0.0,
    interlaced: bool = False,
    aspect: Fraction | None = None,
    chapters: bool = False,
) -> Clip:
    """Write a clip of `frames` frames of `size` (width, height) to `path` (H.264, yuv420p or yuv420p10le; the
    container from the extension) and return its frame times. `variable_rate`: every third frame lasts 1.5x as
    long; `audio`: a 440 Hz stereo AAC tone as long as the video; `subtitles`: two cues (mov_text in MP4/MOV,
    SubRip elsewhere); `rotation`: a display rotation in degrees; `start`: the first frame's time (s); `interlaced`:
    coded as top-field-first fields; `aspect`: the sample (pixel) aspect ratio; `chapters`: two chapters, "one" and
    "two", splitting the clip in the middle. The container has a title and the
    sound the language "eng", so metadata can be followed."""
    import av

    width, height = size
    container = av.open(path, "w")
    video = container.add_stream("libx264", rate=rate)
    video.width, video.height = width, height
    video.pix_fmt = "yuv420p10le" if ten_bit else "yuv420p"
    video.options = {"crf": "12", "preset": "fast", **({"x264-params": "tff=1"} if interlaced else {})}
    if aspect:
        video.codec_context.sample_aspect_ratio = aspect
    container.metadata["title"] = "plksr-arch synthetic clip"
    if chapters:
        half, end = round(500 * frames / rate), round(1000 * frames / rate)
        container.set_chapters(
            [
                {"id": 1, "start": 0, "end": half, "time_base": Fraction(1, 1000), "metadata": {"title": "one"}},
                {"id": 2, "start": half, "end": end, "time_base": Fraction(1, 1000), "metadata": {"title": "two"}},
            ]
        )
    time_base = Fraction(1, 1000) if variable_rate else Fraction(1, rate * 10)
    video.time_base = video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=SAMPLE_RATE) if audio else None
    if sound is not None:
        sound.layout = "stereo"
        sound.metadata["language"] = "eng"
    text_codec = "mov_text" if path.lower().endswith((".mp4", ".mov", ".m4v")) else "subrip"
    text = container.add_mux_stream(text_codec) if subtitles else None
    times, t = [], start
    for index in range(frames):
        rgb = pattern(index, width, height)
        if ten_bit:
            frame = av.VideoFrame.from_ndarray((rgb * 65535).round().astype(np.uint16), format="rgb48le")
        else:
            frame = av.VideoFrame.from_ndarray((rgb * 255).round().astype(np.uint8), format="rgb24")
        frame = frame.reformat(format=video.pix_fmt)
        frame.pts, frame.time_base = round(t / time_base), time_base
        times.append(frame.pts * float(time_base))
        t += (1.5 if variable_rate and index % 3 == 0 else 1.0) / rate
        container.mux(video.encode(frame))
    container.mux(video.encode())
    if sound is not None:
        total, done = round(t * SAMPLE_RATE), round(start * SAMPLE_RATE)
        while done < total:
            n = min(1024, total - done)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(done, done + n) / SAMPLE_RATE)).astype(np.float32)
            samples = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            samples.sample_rate, samples.pts, samples.time_base = SAMPLE_RATE, done, Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(samples))
            done += n
        container.mux(sound.encode())
    if text is not None:
        for begin, length, words in SUBTITLES:
            payload = words.encode()
            if text_codec == "mov_text":
                payload = len(payload).to_bytes(2, "big") + payload
            packet = av.Packet(payload)
            packet.stream, packet.time_base = text, Fraction(1, 1000)
            packet.pts = packet.dts = round((start + begin) * 1000)
            packet.duration = round(length * 1000)
            container.mux(packet)
    container.close()
    return Clip(path, tuple(times), t)
