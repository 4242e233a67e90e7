"""colorgan.photos: the output rules the colourise CLI and the batch pipeline share (output paths,
shared outputs, outputs that are inputs, existing outputs), one-line failure reasons, and one
photo colourised into the bytes the CLI writes."""

import os

import numpy as np
import pytest
from PIL import Image

from colorgan import colorize, config, images, inference, photos
from colorgan.errors import UserError
from conftest import write_images

MAX_PIXELS = config.DataConfig.max_pixels


@pytest.fixture(scope="module")
def model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


def test_with_format_replaces_the_extension():
    assert photos.with_format("out/a/b.jpeg", "png") == "out/a/b.png"
    assert photos.with_format("gs://bucket/scan.tif", "jpg") == "gs://bucket/scan.jpg"
    assert photos.with_format("noext", "png") == "noext.png"


@pytest.mark.parametrize("relpath,listed", [
    ("a.jpg", True), ("b/c/d.PNG", True), ("x.gif", True), ("notes.txt", False),
    (".hidden.jpg", False), (".cache/a.jpg", False), ("a/.b/c.png", False), ("a.jpg.tmp", False),
])
def test_is_listed_image_is_what_a_folder_walk_takes(relpath, listed):
    assert photos.is_listed_image(relpath) is listed


def test_expand_inputs_folders_files_globs_and_missing(tmp_path):
    write_images(tmp_path / "in" / "sub", 1)
    write_images(tmp_path / "in", 2, ext="jpg")
    (tmp_path / "in" / "readme.txt").write_text("not an image")
    out = str(tmp_path / "out")
    pairs = photos.expand_inputs([str(tmp_path / "in"), str(tmp_path / "in" / "img000.jpg"),
                                  str(tmp_path / "in" / "*1.jpg"), str(tmp_path / "gone.png")],
                                 out, "png")
    assert [(os.path.relpath(s, tmp_path), os.path.relpath(d, out)) for s, d in pairs] == [
        ("in/img000.jpg", "img000.png"), ("in/img001.jpg", "img001.png"),
        ("in/sub/img000.png", "sub/img000.png"),  # the folder: recursive, structure kept
        ("in/img000.jpg", "img000.png"),  # a file
        ("in/img001.jpg", "img001.png"),  # a glob: by file name
        ("gone.png", "gone.png")]  # missing: one pair, whose read fails with a reason


def test_duplicates_are_the_later_inputs_of_one_output():
    pairs = [("a/x.jpg", "o/x.png"), ("b/x.png", "o/x.png"), ("c/y.jpg", "o/y.png"),
             ("d/x.gif", "o/x.png")]
    assert photos.duplicates(pairs) == {"b/x.png", "d/x.gif"}


def test_refusal_rules(tmp_path):
    src = write_images(tmp_path / "in", 1)[0]
    linked = tmp_path / "out" / "linked.png"
    linked.parent.mkdir()
    os.link(src, linked)
    existing = tmp_path / "out" / "existing.png"
    existing.write_bytes(b"an earlier result")
    inputs = {photos.file_id(src)}
    for overwrite in (False, True):  # an input is never an output, --overwrite or not
        kind, reason = photos.refusal(src, str(linked), [str(linked)], overwrite, inputs, set())
        assert kind == photos.FAILED and reason == photos.output_is_input_reason(str(linked))
    assert photos.refusal("x", str(existing), [str(existing)], False, inputs, set()) == (
        photos.SKIPPED, f"{existing} exists")
    assert photos.refusal("x", str(existing), [str(existing)], True, inputs, set()) is None
    assert photos.refusal("x", "o/x.png", ["o/x.png"], True, inputs, {"x"})[0] == photos.FAILED


def test_failure_reason_is_one_line():
    assert photos.failure_reason(UserError("refused: too big")) == "refused: too big"
    reason = photos.failure_reason(ValueError("first line\nsecond line"))
    assert reason == "cannot colourise (ValueError: first line)"
    assert photos.shared_output_reason("o/x.png", ["b/x.jpg", "a/x.png"]) == (
        "its output o/x.png is also the output of a/x.png, b/x.jpg")


def test_colorized_bytes_are_what_the_cli_writes(model, tmp_path):
    src = write_images(tmp_path / "in", 1, size=(37, 53))[0]
    for fmt, render_size in (("png", 0), ("jpg", 64)):
        dst = str(tmp_path / f"cli.{fmt}")
        colorize.colorize_file(model, src, dst, render_size=render_size, fmt=fmt)
        photo = images.read_photo(src, MAX_PIXELS)
        with open(dst, "rb") as f:
            assert photos.colorized_bytes(model, photo, render_size, fmt) == f.read()
        assert images.read_provenance(dst) == model.provenance(render_size)


def test_colorize_photo_gives_the_clis_pixels(model, tmp_path):
    src = write_images(tmp_path / "in", 1, size=(30, 70))[0]
    out = photos.colorize_photo(model, images.read_photo(src, MAX_PIXELS))
    assert out.shape == (30, 70, 3) and out.dtype == np.uint8
    colorize.colorize_file(model, src, str(tmp_path / "cli.png"))
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "cli.png")))


def test_provenance_mismatch_names_what_differs(model):
    expected = model.provenance(32)
    assert photos.provenance_mismatch(dict(expected), expected) is None
    assert photos.provenance_mismatch(None, expected) == "without a colorgan provenance record"
    other = dict(expected, model="g-000000000000", render_size=64)
    assert photos.provenance_mismatch(other, expected) == (
        f"made with model 'g-000000000000' (this run: {expected['model']!r}), render_size 64 "
        "(this run: 32)")
