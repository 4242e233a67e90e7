"""README's picture of the shipped model: four photos of an evaluation, gray | colorgan | original.

    python benchmarks/readme_picture.py --report=runs/eval_bsds --model=default --output=docs/images/reference_bsds500.png
    python benchmarks/readme_picture.py --report=runs/eval_bsds --model=default --true_hints=10 --output=docs/images/hints_bsds500.png

With --true_hints=N (a hint model) each row is gray | automatic | with N hints | original: the hints
simulated from the original exactly as `evaluate --hint_points` simulates them for that photo
(its seed and the photo's position in the split, which is its row in the report), each hinted
patch outlined in white and black. The report must be a plain `evaluate --full_res` one (a
--hint_points report has no per_image.csv).

The photos are the landscape ones of an `evaluate --full_res` report (its per_image.csv) at
the 20th, 40th, 60th and 80th percentile of the model's ab error: typical results, neither the
best nor the worst. Each row is shown at half size.
"""

from __future__ import annotations

import csv
import os
import sys

from absl import app, flags
import numpy as np
from PIL import Image, ImageFilter
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  benchmarks/common.py

from colorgan import cli, color, config, hint_eval, images, inference, photos  # noqa: E402
from colorgan.fileio import write_atomic  # noqa: E402

FLAGS = flags.FLAGS
PERCENTILES = (0.2, 0.4, 0.6, 0.8)
flags.DEFINE_string("report", None, "An evaluate --full_res report directory (per_image.csv).")
flags.DEFINE_integer("true_hints", 0, "Add a column with this many hints simulated from the truth.",
                     lower_bound=0, upper_bound=config.HINT_MAX_POINTS)
flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("output", "The PNG to write.")


def picks(report: str) -> list[tuple[int, str]]:
    """Landscape photos at PERCENTILES of the model's ab error, in that order, each with its
    position in the report (the photo's index in the evaluated split)."""
    with open(os.path.join(report, "per_image.csv"), encoding="utf-8") as f:
        rows = [(i, r) for i, r in enumerate(csv.DictReader(f))
                if int(r["width"]) > int(r["height"])]
    rows.sort(key=lambda item: float(item[1]["model_ab_l1"]))
    chosen = [rows[min(int(p * len(rows)), len(rows) - 1)] for p in PERCENTILES]
    return [(i, r["path"]) for i, r in chosen]


def hinted(model: inference.Colorizer, rgb: np.ndarray, count: int, index: int) -> np.ndarray:
    """The photo coloured with `count` true hints (seeded as evaluate --hint_points seeds its
    image `index`), uint8, each hinted patch outlined (2 px white, 2 px black: 1 px each in
    the half-size picture)."""
    rgb = tf.constant(rgb[None])
    _, ab_true = color.rgb_to_model(rgb)
    simulate = hint_eval.true_hints(ab_true, count, (0, index))
    made = []  # the hint map at the view size hinted_view asks for, kept for the outline
    view = model.hinted_view(rgb, lambda hw: made.append(simulate(hw)) or made[-1])
    out = color.to_uint8(model.finish(view)).numpy()
    mask = tf.image.resize(made[0][..., 2:], rgb.shape[1:3], "nearest")[0, ..., 0].numpy()
    mask = Image.fromarray((mask > 0).astype(np.uint8) * 255)
    inner, outer = (np.asarray(mask.filter(ImageFilter.MaxFilter(k))) > 0 for k in (5, 9))
    edge = np.asarray(mask) == 0
    out[outer & ~inner & edge] = 0
    out[inner & edge] = 255
    return out


def row(model: inference.Colorizer, path: str, index: int = 0, true_hints: int = 0
        ) -> np.ndarray:
    photo = images.read_photo(path, config.DataConfig.max_pixels)
    gray = color.to_uint8(color.gray_rgb(photo.rgb)).numpy()
    original = color.to_uint8(photo.rgb).numpy()
    columns = [gray, photos.colorize_photo(model, photo)]
    if true_hints:
        columns.append(hinted(model, photo.rgb, true_hints, index))
    strip = np.concatenate(columns + [original], 1)
    half = Image.fromarray(strip).resize((strip.shape[1] // 2, strip.shape[0] // 2),
                                         Image.LANCZOS)
    return np.asarray(half)


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if not FLAGS.report or not FLAGS.output:
        raise app.UsageError("--report and --output are required")
    model = inference.load_model(FLAGS.model)
    if FLAGS.true_hints and not model.takes_hints:
        raise app.UsageError(f"--true_hints: {FLAGS.model} takes no hints")
    rows = [row(model, path, index, FLAGS.true_hints) for index, path in picks(FLAGS.report)]
    width = min(r.shape[1] for r in rows)
    write_atomic(FLAGS.output, images.encode_image(np.concatenate([r[:, :width] for r in rows]),
                                                   None, "png"))
    print(FLAGS.output)
    return 0


if __name__ == "__main__":
    app.run(main)
