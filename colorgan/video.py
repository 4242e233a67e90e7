"""Colourise videos: any container FFmpeg reads in, H.264 MP4 with the sound out.

    python -m colorgan.video --output=/tmp/colorized film.mp4 home_movies/

Each INPUT is a video file, a folder (searched recursively for video files) or a glob. Every
output is `<stem>.mp4` at the input's size (odd sides padded by a pixel), frame timestamps and
rate, upright (a phone's rotation applied once), with the input's sound (copied, or re-encoded
to AAC when MP4 cannot carry it) and the provenance record in its `comment` tag. With
--temporal=flow (the default) colour follows the motion from frame to frame instead of
flickering. Frames stream through in batches (memory stays that of a few frames) and the output
is renamed into place only when complete. An existing output is skipped unless --overwrite; an
input is never overwritten. An unreadable input is reported in one line and skipped; the exit
status is then 2. Needs the `video` extra: pip install 'colorgan[video]'.
"""

from __future__ import annotations

import os
import time

from absl import app, flags, logging
import tqdm

from colorgan import cli, config, inference, photos, video_io
from colorgan.errors import UserError

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("video")
OUTPUT_FORMAT = "mp4"
LOG_EVERY_S = 30.0  # progress lines when stderr is not a terminal


def _frames():
    """colorgan.frames, imported only now: its OpenCV comes with the `video` extra."""
    try:
        from colorgan import frames  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(f"video needs OpenCV ({e}): pip install 'colorgan[video]'") from e
    return frames


class _Progress:
    """Per-video progress for frames.colorize_video: a tqdm bar (frames, fps, ETA) on a
    terminal, else a log line every LOG_EVERY_S seconds (a 2-hour film in a log file)."""

    def __init__(self, name: str):
        self.name, self.bar, self.done, self.total = os.path.basename(name), None, 0, None
        self.start = self.last_log = time.monotonic()

    def __call__(self, total: int | None):
        self.total = total
        self.bar = tqdm.tqdm(total=total, unit="frame", desc=self.name, leave=False,
                             disable=None)
        return self.tick

    def tick(self) -> None:
        self.done += 1
        self.bar.update(1)
        now = time.monotonic()
        if self.bar.disable and now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            fps = self.done / (now - self.start)
            eta = f", ETA {(self.total - self.done) / fps:.0f} s" if self.total else ""
            logging.info("%s: %d/%s frames, %.1f fps%s", self.name, self.done,
                         self.total or "?", fps, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def colorize_video_paths(model: inference.Colorizer, inputs: list[str], output_dir: str, *,
                         mode: str, render_size: int, crf: int, batch_frames: int,
                         overwrite: bool, max_pixels: int) -> photos.Outcome:
    """Colourises every input video; never raises per file."""
    pairs = photos.expand_inputs(inputs, output_dir, OUTPUT_FORMAT, video_io.VIDEO_EXTENSIONS)
    if not pairs:
        raise UserError(f"no videos found in {' '.join(inputs)}")
    frames = _frames()

    def write_one(src: str, dst: str) -> None:
        progress = _Progress(src)
        try:
            result = frames.colorize_video(model, src, dst, mode=mode, render_size=render_size,
                                           crf=crf, batch_frames=batch_frames,
                                           max_pixels=max_pixels, progress=progress)
        finally:
            progress.close()
        logging.info("%s: %d frames%s", dst, result.frames,
                     f", {len(result.cuts)} scene cuts" if result.cuts else "")

    return photos.process_pairs(pairs, write_one, overwrite=overwrite)


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",), positional=True)
    inputs = argv[1:]
    if not inputs:
        raise app.UsageError("give at least one INPUT (video file, folder or glob)")
    if FLAGS.output.lower().endswith(video_io.VIDEO_EXTENSIONS):
        raise app.UsageError(f"--output is the folder the videos go to (each as <stem>.mp4), "
                             f"not a file name: {FLAGS.output}")
    video_io.av_module()  # fail now, in one line, if the `video` extra is missing
    _frames()
    model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                 **cli.inference_settings(FLAGS, config.NO_HINT_INFERENCE))
    outcome = colorize_video_paths(
        model, inputs, FLAGS.output, mode=FLAGS.temporal, render_size=FLAGS.render_size,
        crf=FLAGS.crf, batch_frames=FLAGS.batch_frames, overwrite=FLAGS.overwrite,
        max_pixels=FLAGS.max_pixels)
    return cli.report_outcome(outcome.written, outcome.failed, outcome.skipped)


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
