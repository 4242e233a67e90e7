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

from absl import app, flags, logging
import tqdm

from colorgan import cli, config, inference, photos, video_io
from colorgan.errors import UserError

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("video")
OUTPUT_FORMAT = "mp4"


def _frames():
    """colorgan.frames, imported only now: its OpenCV comes with the `video` extra."""
    try:
        from colorgan import frames  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(f"video needs OpenCV ({e}): pip install 'colorgan[video]'") from e
    return frames


def _progress_bar(name: str):
    """A per-video progress factory for frames.colorize_video: frames, fps and ETA."""
    bars = []

    def start(total: int | None):
        bars.append(tqdm.tqdm(total=total, unit="frame", desc=os.path.basename(name),
                              leave=False, disable=None))
        return lambda: bars[0].update(1)
    return start, bars


def colorize_video_paths(model: inference.Colorizer, inputs: list[str], output_dir: str, *,
                         mode: str, render_size: int, crf: int, batch_frames: int,
                         overwrite: bool, max_pixels: int) -> tuple[list[str], list[str], list[str]]:
    """Colourises every input video; never raises per file. Returns (written, failed, skipped)."""
    pairs = photos.expand_inputs(inputs, output_dir, OUTPUT_FORMAT, video_io.VIDEO_EXTENSIONS)
    if not pairs:
        raise UserError(f"no videos found in {' '.join(inputs)}")
    written, failed, skipped = [], [], []
    duplicates = photos.duplicates(pairs)
    input_ids = {photos.file_id(src) for src, _ in pairs} - {None}
    for src, dst in pairs:
        refusal = photos.refusal(src, dst, [dst], overwrite, input_ids, duplicates)
        if refusal:
            kind, reason = refusal
            if kind == photos.FAILED:
                logging.error("%s: %s; skipped", src, reason)
                failed.append(src)
            else:
                skipped.append(src)
            continue
        start, bars = _progress_bar(src)
        try:
            result = _frames().colorize_video(model, src, dst, mode=mode, render_size=render_size,
                                           crf=crf, batch_frames=batch_frames,
                                           max_pixels=max_pixels, progress=start)
            logging.info("%s: %d frames%s", dst, result.frames,
                         f", {len(result.cuts)} scene cuts" if result.cuts else "")
            written.append(dst)
        except Exception as e:  # pylint: disable=broad-except  (one bad file must not stop a batch)
            logging.error("%s: %s; skipped", src, photos.failure_reason(e))
            failed.append(src)
        finally:
            for bar in bars:
                bar.close()
    return written, failed, skipped


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",), positional=True)
    inputs = argv[1:]
    if not inputs:
        raise app.UsageError("give at least one INPUT (video file, folder or glob)")
    video_io.av_module()  # fail now, in one line, if the `video` extra is missing
    _frames()
    model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                 **cli.inference_settings(FLAGS))
    written, failed, skipped = colorize_video_paths(
        model, inputs, FLAGS.output, mode=FLAGS.temporal, render_size=FLAGS.render_size,
        crf=FLAGS.crf, batch_frames=FLAGS.batch_frames, overwrite=FLAGS.overwrite,
        max_pixels=FLAGS.max_pixels)
    for path in written:
        print(path)
    if skipped:
        logging.info("%d skipped: output exists, use --overwrite", len(skipped))
    if failed:
        logging.error("%d of %d inputs failed", len(failed),
                      len(failed) + len(written) + len(skipped))
        return cli.EXIT_USER_ERROR
    return cli.EXIT_OK


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
