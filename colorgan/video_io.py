"""Video files through PyAV (FFmpeg's libraries, bundled in its wheel; the `video` extra): a
streaming reader for any container FFmpeg reads, and an H.264 MP4 writer that keeps the sound.

The reader yields frames upright (the display matrix's rotation applied, so a phone's portrait
clip is portrait) as uint8 sRGB, each with its own timestamp, interleaved with the audio packets
in file order; the writer takes them back one by one. Nothing holds more than a frame, a batch
and the encoder's look-ahead in memory, so a 2-hour film needs no more RAM than a few seconds.
Timestamps are kept as the input has them: variable-frame-rate phone clips stay in sync, and the
output has the input's frame rate. Sound is copied when MP4 can carry its codec, else re-encoded
to AAC. The MP4 carries the provenance record (images.provenance) in its `comment` tag.
"""

from __future__ import annotations

import dataclasses
import fractions
from typing import Iterator

from absl import logging
import numpy as np

from colorgan import images
from colorgan.config import DEFAULT_CRF
from colorgan.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".ts", ".3gp", ".ogv")
# Audio codecs the MP4 muxer takes as they are (copied); anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
AAC_BIT_RATE = 192_000
DEFAULT_PRESET = "medium"
METADATA_KEY = "comment"  # the MP4 tag (©cmt) that holds the provenance record
# A decoded frame count below this fraction of the container's own count is a truncated file.
TRUNCATED_FRACTION = 0.98
# A decoded length (no frame count in the file) this far short of the container's: truncated.
TRUNCATED_SECONDS = 0.25
# The output's YUV: BT.709 matrix, primaries and transfer, limited range (H.273 code 1 each),
# converted so and tagged so, so players show the colours as computed at any size.
BT709 = 1
LIMITED_RANGE = 1
# Frame intervals that differ by more than this fraction make a clip variable-frame-rate.
VFR_TOLERANCE = 0.1
# Audio packets held while waiting for the first video frame (a few seconds of sound).
MAX_LEADING_AUDIO_PACKETS = 2000


def _is_still_image(container) -> bool:
    """FFmpeg opens photos too (image2, png_pipe, ...): a video CLI must not take them."""
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


def av_module():
    """PyAV, imported only when a video is touched: the core install has no FFmpeg."""
    try:
        import av  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(f"video needs PyAV ({e}): pip install 'colorgan[video]'") from e
    return av


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the writer needs to know about an input video (sizes upright)."""
    width: int
    height: int
    fps: fractions.Fraction  # the average frame rate
    time_base: fractions.Fraction  # of the frame timestamps the reader yields
    frames: int  # the container's frame count, or estimated from its duration (0: unknown)
    rotation: int  # degrees counter-clockwise the reader turns each decoded frame
    audio_codec: str | None  # None: no sound


@dataclasses.dataclass
class Frame:
    """One decoded frame: uint8 sRGB (H, W, 3) upright, its timestamp (VideoInfo.time_base
    units, counted from the start of the file) and how long it shows (same units; 0: unknown;
    a variable-frame-rate clip's last frame keeps its length through it)."""
    rgb: np.ndarray
    pts: int
    duration: int = 0


class VideoReader:
    """Opens a video and decodes its first frame (so a file that is not a video, has no video
    stream, no frames or frames over `max_pixels` fails here, in one clear line).

    Iterate it for Frame objects and audio packets (av.Packet) in file order.

    Raises:
      UserError: as above.
    """

    def __init__(self, path: str, max_pixels: int):
        av = av_module()
        self.path = path
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise UserError(f"not a readable video ({type(e).__name__}: {e})") from e
        try:
            self._start(max_pixels)
        except BaseException:
            self._container.close()
            raise

    def _start(self, max_pixels: int) -> None:
        av = av_module()
        container = self._container
        if _is_still_image(container):
            raise UserError("a still image, not a video (colourise photos with colorgan.colorize)")
        videos = [s for s in container.streams.video
                  if not s.disposition & av.stream.Disposition.attached_pic]  # not cover art
        if not videos:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise UserError(f"no video stream (it has: {', '.join(kinds)})")
        self._video = videos[0]
        self._video.thread_type = "AUTO"
        audio = container.streams.audio
        self._audio = audio[0] if audio else None
        if len(audio) > 1:
            logging.info("%s: %d audio tracks; the first is kept", self.path, len(audio))
        ctx = self._video.codec_context
        if ctx.width * ctx.height > max_pixels:
            raise UserError(f"refused: {ctx.width}x{ctx.height} = {ctx.width * ctx.height:,} "
                            f"pixels per frame exceed --max_pixels={max_pixels:,}")
        self._offsets = {s.index: _start_seconds(s) for s in (self._video, self._audio) if s}
        self._t0 = min(self._offsets.values())
        self._items = self._demux()
        first = next(self._items, None)
        self._pending = []
        while first is not None and not isinstance(first, Frame):  # audio before the first frame
            self._pending.append(first)
            if len(self._pending) > MAX_LEADING_AUDIO_PACKETS:
                raise UserError(f"no video frame in the first {MAX_LEADING_AUDIO_PACKETS} "
                                "packets")
            first = next(self._items, None)
        if first is None:
            raise UserError("no video frames could be decoded")
        self._pending.append(first)
        height, width = first.rgb.shape[:2]
        rate = self._video.average_rate or self._video.guessed_rate or fractions.Fraction(25)
        frames = int(self._video.frames or 0)
        if not frames and container.duration:  # MKV/WebM: estimated, for a progress bar's ETA
            frames = round(container.duration / 1e6 * rate)
        self.info = VideoInfo(width=width, height=height, fps=fractions.Fraction(rate),
                              time_base=fractions.Fraction(self._video.time_base or
                                                           fractions.Fraction(1, 90000)),
                              frames=frames, rotation=self._rotation,
                              audio_codec=self._audio.codec_context.name if self._audio else None)

    @property
    def audio_stream(self):
        """The input's audio stream (av.AudioStream), or None."""
        return self._audio

    def __iter__(self) -> Iterator:
        yield from self._pending
        self._pending = []
        yield from self._items

    def _demux(self) -> Iterator:
        av = av_module()
        streams = [s for s in (self._video, self._audio) if s]
        decoded, last_pts = 0, None
        self._rotation = 0
        step = _frame_step(self._video)
        data_end = 0.0  # seconds: where the last packet of any stream ends
        try:
            for packet in self._container.demux(streams):
                if packet.pts is not None:
                    data_end = max(data_end, float((packet.pts + (packet.duration or 0))
                                                   * packet.time_base))
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        _shift(packet, self._t0)
                        yield packet
                    continue
                for frame in packet.decode():
                    if decoded == 0:
                        self._rotation = int(round(frame.rotation or 0))
                        size = (frame.width, frame.height)
                    elif (frame.width, frame.height) != size:
                        raise UserError(f"frame size changed at frame {decoded + 1}: "
                                        f"{frame.width}x{frame.height} after {size[0]}x{size[1]}")
                    pts = self._frame_pts(frame, last_pts, step)
                    last_pts, duration = pts, int(frame.duration or 0)
                    decoded += 1
                    yield Frame(_upright(frame.to_ndarray(format="rgb24"), self._rotation), pts,
                                duration)
        except av.error.FFmpegError as e:
            raise UserError(f"cannot decode frame {decoded + 1} ({type(e).__name__}: {e})") from e
        if decoded:
            start = (self._container.start_time or 0) / 1e6
            self._check_complete(decoded, data_end - start)

    def _check_complete(self, decoded: int, data_seconds: float) -> None:
        """Raises UserError if the file holds less than it says: fewer frames than its frame
        count (MP4, AVI) or, without one (MKV, WebM), its data (any stream's) ending before
        its stated duration."""
        expected = int(self._video.frames or 0)
        if expected and decoded < TRUNCATED_FRACTION * expected - 1:
            raise UserError(f"truncated: {decoded} of {expected} frames could be decoded")
        total = self._container.duration / 1e6 if self._container.duration else 0.0
        if not expected and total and data_seconds < total - TRUNCATED_SECONDS:
            raise UserError(f"truncated: {data_seconds:.2f} s of {total:.2f} s could be decoded")

    def _frame_pts(self, frame, last_pts: int | None, step: int) -> int:
        """The frame's timestamp from the start of the file; made up from the frame rate where
        the file has none, and kept strictly increasing (the MP4 muxer requires it)."""
        if frame.pts is None:
            pts = 0 if last_pts is None else last_pts + step
        else:
            pts = frame.pts - round(self._t0 / self._video.time_base)
        return pts if last_pts is None or pts > last_pts else last_pts + 1

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _start_seconds(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _shift(packet, t0: float) -> None:
    """Moves a packet's timestamps so the file starts at 0 (the same shift as the frames)."""
    offset = round(t0 / packet.time_base)
    packet.dts -= offset
    if packet.pts is not None:
        packet.pts -= offset


def _frame_step(stream) -> int:
    """One frame interval in the stream's time base (for frames without a timestamp)."""
    rate = stream.average_rate or stream.guessed_rate or 25
    return max(1, round(1 / (fractions.Fraction(rate) * stream.time_base)))


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turns a decoded frame by the display matrix's counter-clockwise `rotation` (multiples of
    90; others are rounded to the nearest quarter turn)."""
    quarter_turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size H.264 4:2:0 can encode: odd sides are padded by one (edge) pixel."""
    return width + width % 2, height + height % 2


class Mp4Writer:
    """Writes H.264 (yuv420p) MP4 from Frame objects and the reader's audio packets.

    Args:
      path: the file to write (the caller makes it atomic: fileio.atomic_output).
      info: the input's VideoInfo (size, rate, time base).
      audio_stream: the input's audio stream to carry over (None: a silent video).
      record: the provenance record (images.provenance), stored in the `comment` tag.
      crf, preset: x264's quality (lower: better, larger) and speed/size trade-off.
    """

    def __init__(self, path: str, info: VideoInfo, audio_stream, record: dict, *,
                 crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET):
        av = av_module()
        self._av = av
        self._out = av.open(path, "w", format="mp4")
        try:
            self._setup(info, audio_stream, record, crf, preset)
        except BaseException:
            self._out.close()
            raise

    def _setup(self, info: VideoInfo, audio_stream, record: dict, crf: int, preset: str) -> None:
        self._out.metadata[METADATA_KEY] = images.provenance_text(record)
        width, height = even_size(info.width, info.height)
        if (width, height) != (info.width, info.height):
            logging.info("%dx%d frames padded to %dx%d (H.264 4:2:0 needs even sides)",
                         info.width, info.height, width, height)
        self._video = self._out.add_stream("libx264", rate=info.fps)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._video.codec_context.time_base = info.time_base  # the input's timestamps, as they are
        self._video.options = {"crf": str(crf), "preset": preset}
        ctx = self._video.codec_context
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = BT709
        ctx.color_range = LIMITED_RANGE
        self._time_base = info.time_base
        self._audio_in, self._audio = audio_stream, None
        self._resampler = None
        self._interval_range = (float("inf"), 0)
        self._vfr_logged = False
        self._last_pts: int | None = None
        self.frames = 0
        if audio_stream is not None:
            self._add_audio(audio_stream)

    def _add_audio(self, stream) -> None:
        name = stream.codec_context.name
        if name in MP4_AUDIO_CODECS:
            self._audio = self._out.add_stream_from_template(stream)
            return
        logging.info("sound: %s cannot go into MP4 as it is; re-encoded to AAC", name)
        rate = stream.codec_context.sample_rate or 48000
        # A named layout for its channel count (AAC cannot take "2 channels": no order); other
        # counts are downmixed to stereo.
        channels = stream.codec_context.channels or 2
        layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels, "stereo")
        self._audio = self._out.add_stream("aac", rate=rate, layout=layout)
        self._audio.bit_rate = AAC_BIT_RATE
        self._resampler = self._av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._next_sample = None

    def write_frame(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None:
        """One colourised frame, uint8 (H, W, 3) at the input's size, at timestamp `pts`, shown
        for `duration` (0: until the next frame; the encoder guesses the last one's)."""
        pad_h, pad_w = rgb.shape[0] % 2, rgb.shape[1] % 2
        if pad_h or pad_w:
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        reformatter = self._av.video.reformatter
        frame = frame.reformat(format="yuv420p", dst_colorspace=reformatter.Colorspace.ITU709,
                               dst_color_range=reformatter.ColorRange.MPEG)
        frame.pts, frame.time_base = pts, self._time_base
        if duration > 0:
            frame.duration = duration
        self._note_interval(pts)
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def _note_interval(self, pts: int) -> None:
        """Logs once when frame intervals vary (a phone's variable frame rate): kept as is."""
        if self._last_pts is not None and not self._vfr_logged:
            interval = pts - self._last_pts
            self._interval_range = (min(self._interval_range[0], interval),
                                    max(self._interval_range[1], interval))
            low, high = self._interval_range
            if high > low * (1 + VFR_TOLERANCE) + 1:  # +1: a time base's rounding (33/34 ms)
                logging.info("variable frame rate (frame intervals %.1f to %.1f ms): timestamps "
                             "kept as they are", 1000 * low * self._time_base,
                             1000 * high * self._time_base)
                self._vfr_logged = True
        self._last_pts = pts

    def write_audio(self, packet) -> None:
        """One audio packet from the reader: copied, or decoded and re-encoded to AAC."""
        if self._audio is None:
            return
        if self._resampler is None:
            packet.stream = self._audio
            self._out.mux(packet)
            return
        for frame in packet.decode():
            if self._next_sample is None:
                start = frame.pts * frame.time_base if frame.pts is not None else 0
                self._next_sample = max(0, round(start * self._audio.rate))
            for chunk in self._resampler.resample(frame):
                self._encode_audio(chunk)

    def _encode_audio(self, chunk) -> None:
        chunk.pts, chunk.time_base = self._next_sample, fractions.Fraction(1, self._audio.rate)
        self._next_sample += chunk.samples
        for out in self._audio.encode(chunk):
            self._out.mux(out)

    def close(self) -> None:
        """Flushes the encoders and finishes the file."""
        for packet in self._video.encode(None):
            self._out.mux(packet)
        if self._resampler is not None:
            for chunk in self._resampler.resample(None):
                self._encode_audio(chunk)
            for packet in self._audio.encode(None):
                self._out.mux(packet)
        self._out.close()

    def abort(self) -> None:
        """Closes the file without finishing it (the caller deletes it)."""
        try:
            self._out.close()
        except Exception:  # pylint: disable=broad-except  (already failing; keep the first error)
            pass


def read_metadata(path: str) -> dict:
    """The container's metadata tags of a video (e.g. METADATA_KEY)."""
    with av_module().open(path) as container:
        return dict(container.metadata)
