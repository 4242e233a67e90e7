"""The colourise CLI, in-process: inputs, outputs, odd images, failures and exit codes; existing
outputs skipped, inputs never overwritten; provenance and EXIF in every output."""

import logging
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import colorgan
from colorgan import cli, colorize, color, images, inference, sources
from conftest import run_main, smooth_color_image, write_images

# EXIF tags (TIFF 6.0) the tests write into inputs: camera make and model, date, orientation.
EXIF_MAKE, EXIF_MODEL, EXIF_DATETIME, EXIF_ORIENTATION = 0x010F, 0x0110, 0x0132, 0x0112
CAMERA_EXIF = {EXIF_MAKE: "Kodak", EXIF_MODEL: "Brownie 127", EXIF_DATETIME: "1959:07:14 10:00:00"}
OLD_MTIME_NS = 1_000_000_000 * 10**9  # 2001-09-09: an mtime no write during a test can give
TINY_RENDER_SIZE = 32  # the tiny recipe's image_size: the default render size of its model


def _run(workdir, out, *inputs, extra=()):
    return run_main(colorize.main, [f"--model={workdir}", f"--output={out}", *extra, *map(str, inputs)])


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _camera_jpeg(path, h: int = 30, w: int = 44, seed: int = 7, orientation: int = 0) -> np.ndarray:
    """Writes a colour JPEG with CAMERA_EXIF (and an orientation if given); returns its RGB."""
    rgb = smooth_color_image(h, w, seed)
    exif = Image.Exif()
    for tag, value in CAMERA_EXIF.items():
        exif[tag] = value
    if orientation:
        exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    return rgb


@pytest.fixture(scope="module")
def model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


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


def test_existing_output_is_skipped_unless_overwrite(tiny_workdir, model, tmp_path, caplog):
    src = write_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path / "in") == cli.EXIT_OK
    first = (out / "img000.png").read_bytes()
    existing = out / "img000.png"  # a stand-in that shows whether it was rewritten
    existing.write_bytes(b"an earlier result")
    os.utime(existing, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    os.remove(out / "img001.png")  # a missing output is written: re-running resumes a folder

    caplog.set_level(logging.INFO)
    assert _run(tiny_workdir, out, tmp_path / "in") == cli.EXIT_OK  # skipping is not a failure
    assert existing.read_bytes() == b"an earlier result"
    assert existing.stat().st_mtime_ns == OLD_MTIME_NS
    assert (out / "img001.png").is_file()
    assert _errors(caplog) == []
    assert any("1 skipped" in r.getMessage() for r in caplog.records), caplog.text

    outcome = colorize.colorize_paths(model, [str(tmp_path / "in")], str(out))
    assert outcome == colorize.Outcome(written=[], failed=[], skipped=sorted(src))

    assert _run(tiny_workdir, out, tmp_path / "in", extra=["--overwrite"]) == cli.EXIT_OK
    assert existing.read_bytes() == first  # rewritten, byte for byte what the first run wrote
    assert existing.stat().st_mtime_ns != OLD_MTIME_NS


@pytest.mark.parametrize("how", ["same_file", "symlink", "hard_link"])
def test_an_output_that_is_an_input_is_never_written(how, tiny_workdir, tmp_path, caplog):
    """--output=the input folder, or an output path linked to an input: that input is refused
    (with or without --overwrite) in one line; the rest of the batch is written; exit 2."""
    src = tmp_path / "in"
    write_images(src, 1)
    old = src / "old.png"
    os.rename(src / "img000.png", old)
    _camera_jpeg(src / "other.jpg")
    original = old.read_bytes()
    os.utime(old, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    out = src if how == "same_file" else tmp_path / "out"
    if how == "symlink":
        out.mkdir()
        os.symlink(old, out / "old.png")
    elif how == "hard_link":
        out.mkdir()
        os.link(old, out / "old.png")
    caplog.set_level(logging.WARNING)
    for extra in ([], ["--overwrite"]):
        caplog.clear()
        assert _run(tiny_workdir, out, old, src / "other.jpg", extra=extra) == cli.EXIT_USER_ERROR
        assert old.read_bytes() == original and old.stat().st_mtime_ns == OLD_MTIME_NS
        naming = [m for m in _errors(caplog) if "old.png" in m]
        assert len(naming) == 1 and "input" in naming[0] and "\n" not in naming[0], _errors(caplog)
        assert not any("other.jpg" in m for m in _errors(caplog))
        with Image.open(out / "other.png") as result:  # the rest of the batch is written
            assert result.size == (44, 30)
    if how == "symlink":
        assert os.readlink(out / "old.png") == str(old)
    if how == "hard_link":
        assert os.path.samefile(out / "old.png", old)


def test_outputs_carry_provenance_and_exif_and_repeat_byte_for_byte(tiny_workdir, model, tmp_path):
    photo = tmp_path / "in" / "camera.jpg"
    photo.parent.mkdir()
    _camera_jpeg(photo)
    runs = {"png": [], "jpg": ["--format=jpg", "--render_size=64", "--compare"],
            "png_again": []}
    for name, extra in runs.items():
        assert _run(tiny_workdir, tmp_path / name, photo, extra=extra) == cli.EXIT_OK
    png, jpg = tmp_path / "png" / "camera.png", tmp_path / "jpg" / "camera.jpg"
    assert png.read_bytes() == (tmp_path / "png_again" / "camera.png").read_bytes()

    assert re.fullmatch(r"g-[0-9a-f]{12}", model.identity)
    assert model.identity == inference.load_model(tiny_workdir).identity  # a hash, not a counter
    for path, render_size in ((png, TINY_RENDER_SIZE), (jpg, 64),
                              (tmp_path / "jpg" / "camera_compare.png", 64)):
        record = images.read_provenance(str(path))
        assert record == model.provenance(render_size), path
        assert record["software"] == f"colorgan {colorgan.__version__}"
        assert record["model"] == model.identity and record["model_kind"] == "keras"
        assert record["render_size"] == render_size
        assert record["vividness"] == model.config.model.vividness
        assert record["color_upsample"] == model.config.model.color_upsample
        assert record["note"] == images.PROVENANCE_NOTE
    with Image.open(png) as img:
        assert img.info["Software"] == f"colorgan {colorgan.__version__}"
        exif = img.getexif()
    with Image.open(jpg) as img:
        assert img.format == "JPEG"
        jpg_exif = img.getexif()
    assert jpg_exif[images.EXIF_SOFTWARE] == f"colorgan {colorgan.__version__}"
    for tag, value in CAMERA_EXIF.items():  # the photo's own EXIF, carried to both formats
        assert exif[tag] == value and jpg_exif[tag] == value


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
    _camera_jpeg(tmp_path / "rotated.jpg", 24, 40, seed=5, orientation=6)  # 6: turn 90 deg to show
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, tmp_path) == 0
    rgba_out = Image.open(out / "rgba.png")
    assert rgba_out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(rgba_out)[..., 3], alpha)
    assert Image.open(out / "palette.png").mode == "RGBA"
    assert Image.open(out / "gray16.png").size == (40, 24)
    with Image.open(out / "rotated.png") as rotated:
        assert rotated.size == (24, 40)  # upright: width and height swapped
        exif = rotated.getexif()
    assert EXIF_ORIENTATION not in exif  # applied to the pixels, so not carried
    assert {tag: exif.get(tag) for tag in CAMERA_EXIF} == CAMERA_EXIF


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
    assert _run(str(damaged), tmp_path / "out", sources.SAMPLES_DIR + "/chelsea.jpg") == 0
