"""The colourise CLI, in-process: inputs, outputs, odd images, failures and exit codes."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from colorgan import cli, colorize, color
from conftest import run_main, smooth_color_image, write_images


def _run(workdir, out, *inputs, extra=()):
    return run_main(colorize.main, [f"--model={workdir}", f"--output={out}", *extra, *map(str, inputs)])


def test_folder_keeps_structure_and_sizes(tiny_workdir, tmp_path):
    src = tmp_path / "in"
    write_images(src / "a", 2, size=(61, 97))
    write_images(src / "b" / "c", 1, size=(50, 33), ext="jpg")
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, src) == cli.EXIT_OK
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert written == ["a/img000.png", "a/img001.png", "b/c/img000.png"]
    assert Image.open(out / "a" / "img000.png").size == (97, 61)
    assert Image.open(out / "b" / "c" / "img000.png").size == (33, 50)


def test_output_keeps_the_input_luminance(tiny_workdir, tmp_path):
    rgb = smooth_color_image(40, 56, seed=3)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    assert _run(tiny_workdir, tmp_path / "out", tmp_path / "p.png") == 0
    out = np.asarray(Image.open(tmp_path / "out" / "p.png")) / 255.0
    l_in = color.rgb_to_lab(rgb / 255.0).numpy()[..., 0]
    l_out = color.rgb_to_lab(out).numpy()[..., 0]
    # uint8 output quantisation and gamut clipping: well under one L* unit on average.
    assert np.mean(np.abs(l_in - l_out)) < 0.5


def test_bad_file_is_skipped_and_exit_status_is_2(tiny_workdir, tmp_path):
    src = tmp_path / "in"
    write_images(src, 2)
    (src / "broken.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, src) == cli.EXIT_USER_ERROR
    assert sorted(os.listdir(out)) == ["img000.png", "img001.png"]  # nothing half-written


def test_existing_output_needs_overwrite(tiny_workdir, tmp_path):
    write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path / "in") == 0
    assert _run(tiny_workdir, out, tmp_path / "in") == cli.EXIT_USER_ERROR
    assert _run(tiny_workdir, out, tmp_path / "in", extra=["--overwrite"]) == 0


def test_compare_and_jpeg_format(tiny_workdir, tmp_path):
    write_images(tmp_path / "in", 1, size=(30, 44))
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path / "in" / "img000.png", extra=["--compare", "--format=jpg"]) == 0
    assert Image.open(out / "img000.jpg").format == "JPEG"
    assert Image.open(out / "img000_compare.png").size == (88, 30)


def test_glob_input(tiny_workdir, tmp_path):
    write_images(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, str(tmp_path / "in" / "img00[01].png")) == 0
    assert sorted(os.listdir(out)) == ["img000.png", "img001.png"]


def test_alpha_palette_16bit_and_exif(tiny_workdir, tmp_path):
    rgb = smooth_color_image(24, 40, seed=5)
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (24, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png", transparency=0)
    gray16 = (np.linspace(0, 65535, 24 * 40).reshape(24, 40)).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", exif=exif)
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path) == 0
    rgba_out = Image.open(out / "rgba.png")
    assert rgba_out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(rgba_out)[..., 3], alpha)
    assert Image.open(out / "palette.png").mode == "RGBA"
    assert Image.open(out / "gray16.png").size == (40, 24)
    assert Image.open(out / "rotated.png").size == (24, 40)  # upright: width and height swapped


def test_read_image_16bit_keeps_precision(tmp_path):
    gray16 = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    Image.fromarray(gray16).save(tmp_path / "g.png")
    rgb, alpha = colorize.read_image(str(tmp_path / "g.png"))
    assert alpha is None and rgb.shape == (32, 32, 3)
    assert len(np.unique(rgb[..., 0])) == 1024  # more levels than 8 bits could hold


@pytest.mark.parametrize("argv,code", [
    (["--output=/tmp/x"], cli.EXIT_USAGE),                     # no inputs
    (["in.png"], cli.EXIT_USAGE),                              # no --output
    (["--render_size=-3", "--output=/tmp/x", "in.png"], cli.EXIT_USAGE),
])
def test_usage_errors(tiny_workdir, argv, code):
    assert run_main(colorize.main, [f"--model={tiny_workdir}", *argv]) == code


def test_missing_input_and_missing_model(tiny_workdir, tmp_path):
    assert _run(tiny_workdir, tmp_path / "out", tmp_path / "nope.png") == cli.EXIT_USER_ERROR
    assert run_main(colorize.main, [f"--model={tmp_path}", f"--output={tmp_path}/o", "x.png"]) == cli.EXIT_USER_ERROR


def test_outputs_have_ordinary_permissions(tiny_workdir, tmp_path):
    write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path / "in") == 0
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(out / "img000.png").st_mode & 0o777 == 0o666 & ~mask


def test_inputs_that_would_share_an_output_are_skipped_not_overwritten(tiny_workdir, tmp_path):
    write_images(tmp_path / "a", 1)
    write_images(tmp_path / "b", 1, seed=3)  # also img000.png
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path / "a" / "img000.png", tmp_path / "b" / "img000.png") \
        == cli.EXIT_USER_ERROR
    assert os.listdir(out) == ["img000.png"]  # the first input's result, kept


def test_latest_checkpoint_damaged_falls_back_for_inference(tiny_workdir, tmp_path):
    damaged = tmp_path / "run"
    shutil.copytree(tiny_workdir, damaged)
    data_file = damaged / "ckpt" / "ckpt-6.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:100])
    assert _run(str(damaged), tmp_path / "out", colorize.data.SAMPLES_DIR + "/chelsea.jpg") == 0
