"""Colourise photos at their full resolution.

    python -m colorgan.colorize --model=/tmp/colorgan-quickstart --output=/tmp/colorized photo.jpg old_photos/

Each INPUT is a file, a folder (searched recursively) or a glob. Every output is `<stem>.png`
(lossless; `--format=jpg` on request) at the input's size, written atomically: the input's own
luminance with the model's colour. Colour photos are converted to gray first; 8/16-bit gray,
palette and alpha images are accepted (alpha is kept) and EXIF orientation is honoured.
Every output carries a provenance record (PNG text chunk / JPEG EXIF: colorgan's version, the
model's identity, the settings) and the input's own EXIF. An existing output is skipped (so
re-running a folder resumes it) unless --overwrite; an output path that is one of the inputs is
never written. A file that cannot be read is reported in one line and skipped; the exit status
is then 2. A model that takes colour hints (the shipped one; see --hint_reach) takes --hints=FILE
(`{"points": [{"x": 120, "y": 80, "color": "#4a7bd0"}]}`, colorgan/user_hints.py) or
--hints=auto (`<stem>.hints.json` beside each input where there is one).
"""

from __future__ import annotations

import os

from absl import app, flags
import numpy as np
import tqdm

from colorgan import cli, color, config, images, inference, photos, user_hints
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("colorize")
AUTO_HINTS = "auto"
HINTS_SUFFIX = ".hints.json"


def hints_path(src: str, hints: str) -> str:
    """The hints file for input `src`: --hints itself, or with 'auto' `<stem>.hints.json`
    beside the input if it exists ('' when there is none)."""
    if hints != AUTO_HINTS:
        return hints
    beside = os.path.splitext(src)[0] + HINTS_SUFFIX
    return beside if os.path.isfile(beside) else ""


def colorize_file(model: inference.Colorizer, src: str, dst: str, *, render_size: int = 0,
                  fmt: str = "png", compare: bool = False, hints: str = "",
                  max_pixels: int = config.DataConfig.max_pixels) -> None:
    """Colourises one file into `dst` (atomically), with the provenance record and the input's
    EXIF; with `compare`, also `<stem>_compare.png` (input | result). `hints`: as --hints."""
    photo = images.read_photo(src, max_pixels)
    path = hints_path(src, hints)
    points = user_hints.read(path, photo.rgb.shape[1], photo.rgb.shape[0]) if path else []
    out_u8 = photos.colorize_photo(model, photo, render_size, points)
    record = model.provenance(render_size)
    if points:  # an edited hints file makes another output
        record["hints"] = user_hints.fingerprint(points)
    write_atomic(dst, photos.encode_output(photo, out_u8, record, fmt))
    if compare:
        gray_u8 = color.to_uint8(color.gray_rgb(photo.rgb)).numpy()
        side = np.concatenate([gray_u8, out_u8], axis=1)
        write_atomic(compare_path(dst), images.encode_image(side, None, "png", record))


def compare_path(dst: str) -> str:
    return os.path.splitext(dst)[0] + "_compare.png"


Outcome = photos.Outcome


def colorize_paths(model: inference.Colorizer, inputs: list[str], output_dir: str, *,
                   render_size: int = 0, fmt: str = "png", compare: bool = False,
                   overwrite: bool = False, hints: str = "",
                   max_pixels: int = config.DataConfig.max_pixels) -> photos.Outcome:
    """Colourises every input; never raises per file. An existing output is skipped (re-running
    a folder resumes it) unless `overwrite`; an output that is an input file is never written."""
    pairs = photos.expand_inputs(inputs, output_dir, fmt)
    if not pairs:
        raise UserError(f"no images found in {' '.join(inputs)}")
    def write_one(src: str, dst: str) -> None:
        colorize_file(model, src, dst, render_size=render_size, fmt=fmt, compare=compare,
                      hints=hints, max_pixels=max_pixels)

    return photos.process_pairs(
        pairs, write_one, overwrite=overwrite,
        outputs_of=lambda dst: [dst] + ([compare_path(dst)] if compare else []),
        wrap=lambda p: tqdm.tqdm(p, unit="img", disable=None if len(p) > 1 else True))


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",), positional=True)
    inputs = argv[1:]
    if not inputs:
        raise app.UsageError("give at least one INPUT (file, folder or glob)")
    model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                 **cli.inference_settings(FLAGS))
    if FLAGS.hints and FLAGS.hints != AUTO_HINTS and not os.path.isfile(FLAGS.hints):
        raise UserError(f"hints {FLAGS.hints}: no such file")
    if FLAGS.hints and not model.takes_hints:
        raise UserError(f"--hints: {model.source} takes no hints (give it a --hint_reach, or "
                        "train one with --hint_inputs)")
    outcome = colorize_paths(model, inputs, FLAGS.output, render_size=FLAGS.render_size,
                             fmt=FLAGS.format, compare=FLAGS.compare, overwrite=FLAGS.overwrite,
                             hints=FLAGS.hints, max_pixels=FLAGS.max_pixels)
    return cli.report_outcome(outcome.written, outcome.failed, outcome.skipped)


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
