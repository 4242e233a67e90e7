"""Test clips written with PyAV: any container and codec FFmpeg encodes, an optional sine tone as
long as the video, a display rotation, variable frame rates. Tests only (the `video` extra)."""

from __future__ import annotations

import fractions

import av
import numpy as np

TONE_HZ = 440.0  # the test tone: one clear spectral peak, far from 0 and from Nyquist
TONE_AMPLITUDE = 0.3  # of full scale: no clipping after a lossy round trip
AUDIO_CHUNK = 1024  # samples per audio frame handed to the encoder (AAC's own frame size)
OPUS_RATE = 48000  # libopus encodes at 48/24/16/12/8 kHz only
VFR_TIME_BASE = fractions.Fraction(1, 1000)  # intervals_ms clips: timestamps in milliseconds


def write_video(path, frames: np.ndarray, fps: int = 10, *, vcodec: str = "libx264",
                acodec: str | None = "aac", audio_rate: int | None = None, rotation: int = 0,
                intervals_ms=None, pix_fmt: str | None = None,
                options: dict | None = None) -> float:
    """Writes `frames` as a video (container from the file extension), with a sine tone lasting
    exactly the video's duration.

    Args:
      path: the file; its extension picks the container (.mp4, .avi, .mkv, .webm, ...).
      frames: uint8 (T, H, W, 3) RGB.
      fps: the nominal frame rate (constant-rate clips: frame t at t / fps seconds).
      vcodec, acodec: FFmpeg encoder names; acodec None writes no sound.
      audio_rate: the tone's sample rate (None: 48000 for libopus, else 44100).
      rotation: the display matrix's counter-clockwise rotation in degrees (a phone's portrait
        clip stores landscape frames and rotation 90 or 270).
      intervals_ms: per-frame durations (ms) for a variable-frame-rate clip: frame t at
        sum(intervals_ms[:t]) ms, in time base 1/1000. None: constant rate.
      pix_fmt: the encoder's pixel format (None: yuv420p, or yuv444p for odd sides with
        libx264, which cannot code 4:2:0 at odd sizes).
      options: the container's muxer options (e.g. {"movflags": "+faststart"}).
    Returns:
      The video's duration in seconds.
    """
    frames = np.asarray(frames, np.uint8)
    count, height, width = frames.shape[:3]
    if intervals_ms is not None and len(intervals_ms) != count:
        raise ValueError(f"{len(intervals_ms)} intervals for {count} frames")
    if pix_fmt is None:
        odd = height % 2 or width % 2
        pix_fmt = "yuv444p" if odd and vcodec == "libx264" else "yuv420p"
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if rotation:
            video.set_display_rotation(rotation)
        if intervals_ms is None:
            time_base, starts = fractions.Fraction(1, fps), list(range(count))
            duration = fractions.Fraction(count, fps)
        else:
            time_base = VFR_TIME_BASE
            starts = [int(s) for s in np.concatenate([[0], np.cumsum(intervals_ms)[:-1]])]
            duration = fractions.Fraction(int(sum(intervals_ms)), 1000)
        video.codec_context.time_base = time_base
        audio = None
        if acodec:
            rate = audio_rate or (OPUS_RATE if acodec == "libopus" else 44100)
            audio = out.add_stream(acodec, rate=rate, layout="stereo")
        for rgb, pts in zip(frames, starts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            _write_tone(out, audio, duration)
    return float(duration)


def write_audio_only(path, seconds: float, acodec: str = "aac", rate: int = 44100) -> None:
    """A file with a sine tone and no video stream (e.g. an .m4a)."""
    with av.open(str(path), "w") as out:
        _write_tone(out, out.add_stream(acodec, rate=rate, layout="stereo"),
                    fractions.Fraction(seconds).limit_denominator(1000))


def _write_tone(out, stream, duration: fractions.Fraction) -> None:
    """TONE_HZ for exactly `duration` seconds (to the sample) on both channels."""
    rate = stream.codec_context.sample_rate
    total = int(duration * rate)
    fmt = stream.codec_context.format
    for start in range(0, total, AUDIO_CHUNK):
        n = min(AUDIO_CHUNK, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        tone = (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
        stereo = np.stack([tone, tone])  # (channels, samples): the planar layout
        if fmt.name == "s16":  # packed int16 (PCM): samples interleaved in one plane
            stereo = (stereo * np.iinfo(np.int16).max).astype(np.int16).T.reshape(1, -1)
        elif not fmt.is_planar:
            stereo = stereo.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format=fmt.name, layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        frame.time_base = fractions.Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_frameless(path, vcodec: str, seconds_of_sound: float = 0.0) -> None:
    """A file whose video stream has a header and no packets (no frame to decode), with a tone
    of `seconds_of_sound` (0: no sound stream)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(vcodec, rate=10)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        if seconds_of_sound:
            _write_tone(out, out.add_stream("aac", rate=44100, layout="stereo"),
                        fractions.Fraction(seconds_of_sound).limit_denominator(1000))
        else:
            out.start_encoding()  # the header, which the first packet would otherwise write
