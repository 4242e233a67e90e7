"""README's picture of the shipped model: four photos of an evaluation, gray | colorgan | original.

    python benchmarks/readme_picture.py --report=runs/eval_bsds --model=default --output=docs/images/reference_bsds500.png

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
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  benchmarks/common.py

from colorgan import cli, color, config, images, inference, photos  # noqa: E402
from colorgan.fileio import write_atomic  # noqa: E402

FLAGS = flags.FLAGS
PERCENTILES = (0.2, 0.4, 0.6, 0.8)
flags.DEFINE_string("report", None, "An evaluate --full_res report directory (per_image.csv).")
flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("output", "The PNG to write.")


def picks(report: str) -> list[str]:
    """Landscape photos at PERCENTILES of the model's ab error, in that order."""
    with open(os.path.join(report, "per_image.csv"), encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if int(r["width"]) > int(r["height"])]
    rows.sort(key=lambda r: float(r["model_ab_l1"]))
    return [rows[min(int(p * len(rows)), len(rows) - 1)]["path"] for p in PERCENTILES]


def row(model: inference.Colorizer, path: str) -> np.ndarray:
    photo = images.read_photo(path, config.DataConfig.max_pixels)
    gray = color.to_uint8(color.gray_rgb(photo.rgb)).numpy()
    original = color.to_uint8(photo.rgb).numpy()
    strip = np.concatenate([gray, photos.colorize_photo(model, photo), original], 1)
    half = Image.fromarray(strip).resize((strip.shape[1] // 2, strip.shape[0] // 2),
                                         Image.LANCZOS)
    return np.asarray(half)


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if not FLAGS.report or not FLAGS.output:
        raise app.UsageError("--report and --output are required")
    model = inference.load_model(FLAGS.model)
    rows = [row(model, p) for p in picks(FLAGS.report)]
    width = min(r.shape[1] for r in rows)
    write_atomic(FLAGS.output, images.encode_image(np.concatenate([r[:, :width] for r in rows]),
                                                   None, "png"))
    print(FLAGS.output)
    return 0


if __name__ == "__main__":
    app.run(main)
