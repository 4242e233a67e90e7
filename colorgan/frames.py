"""Colourising a stream of video frames, and a video file into an MP4: the shared core of the
video CLI and of evaluate's video scores.

Frames are coloured in batches (one model call per `batch_frames` frames, all of one render
shape), then, in order, their colour is smoothed over time (`temporal='flow'`,
colorgan.temporal.Stabilizer) before the full-resolution finish. Memory holds one batch.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator

import numpy as np

from colorgan import color, inference, temporal, video_io
from colorgan.config import DEFAULT_BATCH_FRAMES, DEFAULT_CRF
from colorgan.fileio import atomic_output


def colorize_frames(model: inference.Colorizer, frames: Iterable[video_io.Frame], *,
                    mode: str = "flow", render_size: int = 0,
                    batch_frames: int = DEFAULT_BATCH_FRAMES,
                    settings: temporal.FlowSettings = temporal.FlowSettings(),
                    stabilizer: temporal.Stabilizer | None = None) -> Iterator[video_io.Frame]:
    """Colourised frames (uint8 sRGB, the input's own L), in order, as the input yields them.

    Args:
      model: a loaded Colorizer.
      frames: uint8 RGB frames (colour or gray), all the same size.
      mode: 'flow' (temporal smoothing) or 'none' (each frame on its own).
      render_size: the short side the model sees (0: the model's own).
      batch_frames: frames per model call.
      settings: the flow mode's trust settings.
      stabilizer: the flow mode's state (a new one if None); pass one to read its cuts.
    Raises:
      ValueError: an unknown mode or batch_frames < 1 (now, not at the first frame).
    """
    temporal.check_mode(mode)
    if batch_frames < 1:
        raise ValueError(f"batch_frames={batch_frames} must be >= 1")
    if mode == "flow" and stabilizer is None:
        stabilizer = temporal.Stabilizer(settings)
    return _colorize_frames(model, frames, render_size, batch_frames,
                            stabilizer if mode == "flow" else None)


def _colorize_frames(model: inference.Colorizer, frames: Iterable[video_io.Frame],
                     render_size: int, batch_frames: int,
                     stabilizer: temporal.Stabilizer | None) -> Iterator[video_io.Frame]:
    batch: list[video_io.Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_frames:
            yield from _colorize_batch(model, batch, render_size, stabilizer)
            batch = []
    if batch:
        yield from _colorize_batch(model, batch, render_size, stabilizer)


def _colorize_batch(model: inference.Colorizer, batch: list[video_io.Frame], render_size: int,
                    stabilizer: temporal.Stabilizer | None) -> Iterator[video_io.Frame]:
    for frame, view in zip(batch, _views(model, batch, render_size)):
        if stabilizer is not None:
            view = _stabilized(stabilizer, view)
        yield _finished(model, frame, view)


def _views(model: inference.Colorizer, batch: list[video_io.Frame],
           render_size: int) -> list[inference.View]:
    return model.predict_views([f.rgb.astype(np.float32) / color.UINT8_MAX for f in batch],
                               render_size)


def _stabilized(stabilizer: temporal.Stabilizer, view: inference.View) -> inference.View:
    ab = stabilizer.step(view.small.numpy()[0, ..., 0], np.asarray(view.ab[0], np.float32))
    return dataclasses.replace(view, ab=ab[None])


def _finished(model: inference.Colorizer, frame: video_io.Frame,
              view: inference.View) -> video_io.Frame:
    return video_io.Frame(color.to_uint8(model.finish(view)).numpy(), frame.pts, frame.duration)


def colorize_both_modes(model: inference.Colorizer, frames: Iterable[video_io.Frame],
                        stabilizer: temporal.Stabilizer, *, render_size: int = 0
                        ) -> Iterator[tuple[video_io.Frame, video_io.Frame, video_io.Frame]]:
    """(input, 'none' output, 'flow' output) per frame, from one model call per frame: both
    modes share the prediction and differ only in the temporal smoothing (evaluate --video)."""
    for frame in frames:
        (view,) = _views(model, [frame], render_size)
        yield (frame, _finished(model, frame, view),
               _finished(model, frame, _stabilized(stabilizer, view)))


@dataclasses.dataclass
class VideoResult:
    """What colourising one video did."""
    frames: int
    cuts: list[int]  # frames the flow mode took for scene cuts
    info: video_io.VideoInfo


def colorize_video(model: inference.Colorizer, src: str, dst: str, *, mode: str = "flow",
                   render_size: int = 0, crf: int = DEFAULT_CRF,
                   batch_frames: int = DEFAULT_BATCH_FRAMES, max_pixels: int,
                   settings: temporal.FlowSettings = temporal.FlowSettings(),
                   progress: Callable[[int | None], Callable[[], None]] | None = None,
                   ) -> VideoResult:
    """Colourises the video `src` into the H.264 MP4 `dst`, atomically (a failure or interrupt
    leaves no file at `dst`), sound kept, with the provenance record in its metadata.

    Args:
      settings: the flow mode's trust settings.
      progress: called once with the frame count (None: unknown); returns a callable called
        after each frame (e.g. a tqdm bar's update).
    Raises:
      UserError: an unreadable, truncated or over-sized input (video_io.VideoReader).
    """
    stabilizer = temporal.Stabilizer(settings) if mode == "flow" else None
    with video_io.VideoReader(src, max_pixels) as reader, atomic_output(dst) as tmp:
        tick = progress(reader.info.frames or None) if progress else (lambda: None)
        writer = video_io.Mp4Writer(tmp, reader.info, reader.audio_stream,
                                    model.provenance(render_size) | {"temporal": mode}, crf=crf)
        try:
            for frame in colorize_frames(model, _video_frames(reader, writer), mode=mode,
                                         render_size=render_size, batch_frames=batch_frames,
                                         stabilizer=stabilizer):
                writer.write_frame(frame.rgb, frame.pts, frame.duration)
                tick()
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return VideoResult(writer.frames, stabilizer.cuts if stabilizer else [], reader.info)


def _video_frames(reader: video_io.VideoReader,
                  writer: video_io.Mp4Writer) -> Iterator[video_io.Frame]:
    """The reader's frames; its audio packets go straight to the writer (the muxer interleaves
    them with the frames that follow a batch later)."""
    for item in reader:
        if isinstance(item, video_io.Frame):
            yield item
        else:
            writer.write_audio(item)
