"""README's picture of the shipped model: four photos of an evaluation, gray | colorgan | original.

    python benchmarks/readme_picture.py --report=runs/eval_bsds --model=default --output=docs/images/reference_bsds500.png
    python benchmarks/readme_picture.py --report=runs/eval_bsds --model=default --true_hints=10 --output=docs/images/hints_bsds500.png

With --true_hints=N (a hint model) each row is gray | automatic | with N hints | original: the hints
simulated from the original as `evaluate --hint_points` does (its seed, with the row's index
as the photo's), each hinted patch outlined in black and white.

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
                     lower_bound=0)
flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("output", "The PNG to write.")


def picks(report: str) -> list[str]:
    """Landscape photos at PERCENTILES of the model's ab error, in that order."""
    with open(os.path.join(report, "per_image.csv"), encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if int(r["width"]) > int(r["height"])]
    rows.sort(key=lambda r: float(r["model_ab_l1"]))
    return [rows[min(int(p * len(rows)), len(rows) - 1)]["path"] for p in PERCENTILES]


def hinted(model: inference.Colorizer, rgb: np.ndarray, count: int, index: int) -> np.ndarray:
    """The photo coloured with `count` true hints (seeded as evaluate --hint_points seeds its
    image `index`), uint8, each hinted patch outlined."""
    rgb = tf.constant(rgb[None])
    _, ab_true = color.rgb_to_model(rgb)
    hint_map = hint_eval.true_hints(ab_true, count, (0, index))(model.render_shape(rgb.shape[1:3]))
    out = color.to_uint8(model.finish(model.hinted_view(rgb, lambda hw: hint_map))).numpy()
    mask = tf.image.resize(hint_map[..., 2:], rgb.shape[1:3], "nearest")[0, ..., 0].numpy()
    mask = Image.fromarray((mask > 0).astype(np.uint8) * 255)
    inner, outer = (np.asarray(mask.filter(ImageFilter.MaxFilter(k))) > 0 for k in (3, 7))
    edge = np.asarray(mask) == 0
    out[outer & ~inner & edge] = 0
    out[inner & edge] = 255
    return out


def row(model: inference.Colorizer, path: str, index: int = 0) -> np.ndarray:
    photo = images.read_photo(path, config.DataConfig.max_pixels)
    gray = color.to_uint8(color.gray_rgb(photo.rgb)).numpy()
    original = color.to_uint8(photo.rgb).numpy()
    columns = [gray, photos.colorize_photo(model, photo)]
    if FLAGS.true_hints:
        columns.append(hinted(model, photo.rgb, FLAGS.true_hints, index))
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
    rows = [row(model, path, index) for index, path in enumerate(picks(FLAGS.report))]
    width = min(r.shape[1] for r in rows)
    write_atomic(FLAGS.output, images.encode_image(np.concatenate([r[:, :width] for r in rows]),
                                                   None, "png"))
    print(FLAGS.output)
    return 0


if __name__ == "__main__":
    app.run(main)
