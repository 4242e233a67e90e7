"""The shipped reference model (colorgan/pretrained): within budget, loads as the default, and
colours a bundled photo it never saw better than the gray baseline."""

import os

import numpy as np

import colorgan
from colorgan import cli, color, colorize, config, images, workdir
from conftest import run_main

BUDGET_BYTES = 12 * 1024 * 1024
PHOTO = os.path.join(os.path.dirname(colorize.__file__), "samples", "chelsea.jpg")
# Mean chroma (Lab units) below which an output counts as gray; the photo's own is ~23.
MIN_CHROMA = 3.0


def test_package_within_budget_and_float16():
    files = [os.path.join(workdir.PRETRAINED_DIR, f) for f in os.listdir(workdir.PRETRAINED_DIR)]
    assert sum(os.path.getsize(f) for f in files) <= BUDGET_BYTES
    with np.load(os.path.join(workdir.PRETRAINED_DIR, workdir.PRETRAINED_WEIGHTS)) as arrays:
        assert {arrays[k].dtype for k in arrays.files} == {np.dtype(np.float16)}


def test_default_model_colours_a_held_out_photo_better_than_gray():
    model = colorgan.load_model("default")
    rgb, _ = images.read_image(PHOTO, config.DataConfig.max_pixels)
    out = model.colorize(rgb[None])[0].numpy()
    ab_true = color.rgb_to_lab(rgb).numpy()[..., 1:]
    ab_out = color.rgb_to_lab(out).numpy()[..., 1:]
    assert np.mean(np.linalg.norm(ab_out, axis=-1)) > MIN_CHROMA  # not gray
    # Closer to the truth than the gray baseline (ab = 0), in mean ab error.
    assert np.mean(np.abs(ab_out - ab_true)) < np.mean(np.abs(ab_true))


def test_colorize_cli_uses_the_shipped_model_by_default(tmp_path):
    assert run_main(colorize.main, [f"--output={tmp_path}", PHOTO]) == cli.EXIT_OK
    assert os.path.isfile(tmp_path / "chelsea.png")
