"""Bad input everywhere (issue 8): one clear line naming the file, a skip with a count (batch work)
or exit status 2 (single input), never a traceback, a hang or a partial output file.

One module-scoped folder holds every bad and every odd-but-valid input, each named for what it is.
CI runs as root, so `chmod 000` cannot make a file unreadable: the `unreadable_permission.png`
file is a valid PNG whose reads are refused by a patched `builtins.open` (what Pillow opens files
with), active in every test of this module.
"""

from __future__ import annotations

import builtins
import io
import json
import logging
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import (cli, colorize, config, data, evaluate, export, images, inference, sources,
                      train)
from colorgan.errors import UserError
from conftest import run_main, smooth_color_image, write_images

BOMB_SIDE = 50_000  # header-claimed width and height of the decompression bomb (2.5 GP)
UNREADABLE = "unreadable_permission.png"

# Bad inputs: every one must be refused with one line naming it. "folder.jpg" is a directory.
BAD = (
    "empty_0_bytes.jpg",
    "truncated_jpeg_half.jpg",
    "truncated_png_half.png",
    "png_idat_length_short.png",
    "random_bytes.png",
    "text_file.jpg",
    "folder.jpg",
    "bomb_header_50000x50000.png",
    UNREADABLE,
)
# The bad inputs that are regular files (a folder walk sees these, not the directory).
BAD_FILES = tuple(n for n in BAD if n != "folder.jpg")
# Bad inputs whose *header* is already bad. The truncated files and the PNG with a wrong IDAT
# length have an intact header, and images.check_header documents that it reads only the header,
# so they are caught at decode time instead.
INTACT_HEADER = ("truncated_jpeg_half.jpg", "truncated_png_half.png", "png_idat_length_short.png")
BAD_HEADERS = tuple(n for n in BAD if n not in INTACT_HEADER)

# Odd but valid inputs -> their upright (width, height): each must be colourised at that size.
VALID = {
    "gray_16bit.png": (40, 24),
    "cmyk.jpg": (56, 40),
    "palette_transparency.png": (56, 40),
    "rgba.png": (56, 40),
    "one_by_one.png": (1, 1),
    "strip_1x10000.png": (10_000, 1),  # 1 px high, 10000 px wide
    "exif_orientation_6.jpg": (40, 56),  # stored 56 x 40, displayed rotated: w and h swap
}


# ------------------------------------------------------------------------------- building
def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A real 8 x 8 PNG whose IHDR claims width x height, with a correct IHDR CRC.

    Layout: 8-byte signature, then the IHDR chunk: length (4) 'IHDR' (4) width (4) height (4)
    ... CRC over type + data. Width/height are bytes 16..24; the CRC covers bytes 12..29.
    """
    png = bytearray(_encode(Image.fromarray(smooth_color_image(8, 8, 9)), "PNG"))
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


def png_with_short_idat(png: bytes, short_by: int = 100) -> bytes:
    """`png` (IHDR then IDAT, as Pillow writes it) with the IDAT length field `short_by` too small:
    the header is intact, but the decoder then reads image data as the next chunk's header.
    (Found by the fuzz test: one flipped byte at offset 36, the low byte of that field.)"""
    assert png[37:41] == b"IDAT"
    (length,) = struct.unpack(">I", png[33:37])
    return png[:33] + struct.pack(">I", length - short_by) + png[37:]


def build_bad_folder(folder: str) -> None:
    """Writes every BAD and VALID input into `folder`."""
    os.makedirs(folder, exist_ok=True)
    rgb = smooth_color_image(40, 56, seed=1)
    img = Image.fromarray(rgb)
    good_jpg, good_png = _encode(img, "JPEG", quality=90), _encode(img, "PNG")
    contents = {
        "empty_0_bytes.jpg": b"",
        "truncated_jpeg_half.jpg": good_jpg[: len(good_jpg) // 2],
        "truncated_png_half.png": good_png[: len(good_png) // 2],
        "png_idat_length_short.png": png_with_short_idat(good_png),
        "random_bytes.png": np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes(),
        "text_file.jpg": b"plain text, not a JPEG\n" * 20,
        "bomb_header_50000x50000.png": bomb_png(BOMB_SIDE, BOMB_SIDE),
        UNREADABLE: good_png,  # valid content; reads are refused by _deny_reads
        # valid odd images
        "gray_16bit.png": _encode(Image.fromarray(
            np.linspace(0, 65535, 24 * 40).reshape(24, 40).astype(np.uint16)), "PNG"),
        "cmyk.jpg": _encode(img.convert("CMYK"), "JPEG", quality=90),
        "palette_transparency.png": _encode(img.convert("P"), "PNG", transparency=0),
        "rgba.png": _encode(Image.fromarray(np.dstack(
            [rgb, np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))]), "RGBA"), "PNG"),
        "one_by_one.png": _encode(Image.fromarray(rgb[:1, :1]), "PNG"),
        "strip_1x10000.png": _encode(Image.fromarray(smooth_color_image(1, 10_000, seed=2)), "PNG"),
    }
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    contents["exif_orientation_6.jpg"] = _encode(img, "JPEG", quality=90, exif=exif)
    for name, content in contents.items():
        with io.open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    os.makedirs(os.path.join(folder, "folder.jpg"), exist_ok=True)
    assert sorted(os.listdir(folder)) == sorted(BAD + tuple(VALID))


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("bad-inputs"))
    build_bad_folder(folder)
    return folder


@pytest.fixture(autouse=True)
def _deny_reads(monkeypatch, bad_dir):
    """Every open() of any `unreadable_permission.png` for reading raises PermissionError
    (as a mode-000 file would for a non-root user). Pillow opens paths with builtins.open."""
    real_open = builtins.open

    def guarded(file, mode="r", *args, **kwargs):
        if (isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file).endswith(UNREADABLE)
                and not any(c in mode for c in "wax+")):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    try:
        Image.open(os.path.join(bad_dir, UNREADABLE))
    except PermissionError:
        pass
    else:  # Pillow no longer opens through builtins.open: the injection does not reach it.
        pytest.skip("cannot inject an unreadable file: PIL.Image.open bypasses builtins.open")


# -------------------------------------------------------------------------------- helpers
def _path(bad_dir: str, name: str) -> str:
    return os.path.join(bad_dir, name)


def _colorize(workdir, out, *inputs, extra=()) -> int:
    return run_main(colorize.main, [f"--model={workdir}", f"--output={out}", *extra, *map(str, inputs)])


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _lines_naming(messages: list[str], name: str) -> list[str]:
    return [m for m in messages if name in m]


def _assert_no_traceback(caplog, capfd) -> None:
    assert all(r.exc_info is None for r in caplog.records), [r.getMessage() for r in caplog.records
                                                             if r.exc_info]
    assert "Traceback" not in caplog.text
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out


def _listing(folder) -> list[str]:
    """Everything in `folder` (hidden temporary files included); [] if it does not exist."""
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _stem_png(name: str) -> str:
    return os.path.splitext(name)[0] + ".png"


# ---------------------------------------------------------------------- the colourise CLI
@pytest.mark.parametrize("name", BAD)
def test_colorize_cli_single_bad_input(name, bad_dir, tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "out"
    assert _colorize(tiny_workdir, out, _path(bad_dir, name)) == cli.EXIT_USER_ERROR
    assert _listing(out) == []  # no output, no temporary file
    naming = _lines_naming(_errors(caplog), name)
    assert len(naming) == 1, _errors(caplog)
    assert "\n" not in naming[0]
    _assert_no_traceback(caplog, capfd)


@pytest.mark.parametrize("name", sorted(VALID))
def test_colorize_cli_odd_valid_input(name, bad_dir, tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "out"
    assert _colorize(tiny_workdir, out, _path(bad_dir, name)) == cli.EXIT_OK, _errors(caplog)
    assert _listing(out) == [_stem_png(name)]
    with Image.open(out / _stem_png(name)) as result:
        assert result.size == VALID[name]
    assert _errors(caplog) == []
    _assert_no_traceback(caplog, capfd)


def test_colorize_cli_whole_bad_folder(bad_dir, tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "out"
    assert _colorize(tiny_workdir, out, bad_dir) == cli.EXIT_USER_ERROR
    # Every valid input written at its upright size; nothing for the bad ones, no temporary files.
    assert _listing(out) == sorted(_stem_png(n) for n in VALID)
    for name, size in VALID.items():
        with Image.open(out / _stem_png(name)) as result:
            assert result.size == size, name
    errors = _errors(caplog)
    for name in BAD_FILES:  # the directory folder.jpg is walked into, not read as a file
        assert len(_lines_naming(errors, name)) == 1, (name, errors)
    assert errors[-1] == f"{len(BAD_FILES)} of {len(BAD_FILES) + len(VALID)} inputs failed"
    _assert_no_traceback(caplog, capfd)


def test_colorize_cli_missing_input(tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    missing = tmp_path / "no_such_photo.jpg"
    out = tmp_path / "out"
    assert _colorize(tiny_workdir, out, missing) == cli.EXIT_USER_ERROR
    assert _listing(out) == []
    assert len(_lines_naming(_errors(caplog), "no_such_photo.jpg")) == 1
    _assert_no_traceback(caplog, capfd)


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts Image.load calls (Pillow's decode) in colorize."""
    calls = []
    real_load = Image.Image.load

    def load(self, *args, **kwargs):
        calls.append(self.size)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "load", load)
    return calls


def test_decompression_bomb_is_refused_before_decoding(bad_dir, tiny_workdir, tmp_path, caplog,
                                                       count_decodes):
    caplog.set_level(logging.WARNING)
    name = "bomb_header_50000x50000.png"
    assert os.path.getsize(_path(bad_dir, name)) < 1000  # claims 2.5 GP in a few hundred bytes
    assert _colorize(tiny_workdir, tmp_path / "out", _path(bad_dir, name)) == cli.EXIT_USER_ERROR
    (line,) = _lines_naming(_errors(caplog), name)
    assert "--max_pixels" in line
    assert count_decodes == []


def test_max_pixels_flag_refuses_a_normal_image_before_decoding(bad_dir, tiny_workdir, tmp_path,
                                                                caplog, count_decodes):
    caplog.set_level(logging.WARNING)
    src = _path(bad_dir, "rgba.png")  # 56 x 40 = 2240 px
    out = tmp_path / "out"
    assert _colorize(tiny_workdir, out, src, extra=["--max_pixels=2000"]) == cli.EXIT_USER_ERROR
    (line,) = _lines_naming(_errors(caplog), "rgba.png")
    assert "--max_pixels" in line and "56x40" in line
    assert count_decodes == []
    assert _listing(out) == []
    # Exactly at the limit is allowed.
    assert _colorize(tiny_workdir, out, src, extra=["--max_pixels=2240"]) == cli.EXIT_OK


# ------------------------------------------------------------------- the library functions
@pytest.mark.parametrize("name", sorted(VALID))
def test_check_header_accepts_valid(name, bad_dir):
    assert images.check_header(_path(bad_dir, name), config.DataConfig.max_pixels) is None


@pytest.mark.parametrize("name", BAD_HEADERS)
def test_check_header_gives_a_reason(name, bad_dir):
    reason = images.check_header(_path(bad_dir, name), config.DataConfig.max_pixels)
    assert isinstance(reason, str) and reason and "\n" not in reason


def test_check_header_bomb_reason_names_the_limit(bad_dir):
    reason = images.check_header(_path(bad_dir, "bomb_header_50000x50000.png"), 120_000_000)
    assert reason.startswith("refused") and "--max_pixels" in reason


def test_max_pixels_above_pillows_own_limit_is_honoured(tmp_path):
    """--max_pixels is the user's limit: a 225 MP header with --max_pixels=300 MP passes the
    header check (Pillow's built-in bomb limit, 2 x 89.5 MP, must not override the flag)."""
    path = tmp_path / "big_scan_15000x15000.png"
    path.write_bytes(bomb_png(15_000, 15_000))
    assert images.check_header(str(path), 300_000_000) is None
    assert images.check_header(str(path), 200_000_000).startswith("refused")


@pytest.mark.parametrize("name", BAD)
def test_read_image_raises_user_error(name, bad_dir):
    with pytest.raises(UserError) as excinfo:
        images.read_image(_path(bad_dir, name), config.DataConfig.max_pixels)
    assert str(excinfo.value) and "\n" not in str(excinfo.value)


@pytest.mark.parametrize("name", sorted(VALID))
def test_read_image_odd_valid(name, bad_dir):
    rgb, alpha = images.read_image(_path(bad_dir, name), config.DataConfig.max_pixels)
    width, height = VALID[name]
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    has_alpha = name in ("rgba.png", "palette_transparency.png")
    assert (alpha is not None) == has_alpha
    if has_alpha:
        assert alpha.shape == (height, width)


def test_scan_files_sorts_bad_from_good(bad_dir, tmp_path):
    cfg = config.DataConfig(data=bad_dir, cache_dir=str(tmp_path / "cache"))
    # The 1 x 10000 strip has its own test below (today it alone costs ~20 s and ~4 GB here).
    valid = [n for n in VALID if n != "strip_1x10000.png"]
    files = sorted(_path(bad_dir, n) for n in BAD + tuple(valid))
    scan = data.scan_files(files, cfg)
    assert sorted(scan.bad) == sorted(_path(bad_dir, n) for n in BAD)
    assert sorted(scan.chroma) == sorted(_path(bad_dir, n) for n in valid)
    for path, reason in scan.bad.items():
        assert isinstance(reason, str) and reason and "\n" not in reason, path
    assert all(np.isfinite(c) and c >= 0 for c in scan.chroma.values())
    # The cached second scan gives the same answer.
    assert data.scan_files(files, cfg) == scan


# The chroma scan measures "a small copy of each image". A copy of a 10 kP image must not be
# larger than this; today data.scan_files scales the short side to 64 px whatever the aspect,
# so a 1 x 10000 strip becomes 64 x 640000 (41 MP, ~4 GB of float32 intermediates, ~20 s).
SCAN_COPY_MAX_PIXELS = 1_000_000


def test_scan_of_a_long_strip_stays_small(bad_dir, tmp_path, monkeypatch):
    """Every resize during the scan is checked (in-graph, before allocating) against the bound;
    an oversized one fails that file's scan element instead of allocating gigabytes."""
    real_resize = tf.image.resize

    def bounded_resize(images, size, *args, **kwargs):
        pixels = tf.reduce_prod(tf.cast(size, tf.int64))
        check = tf.debugging.assert_less_equal(
            pixels, tf.constant(SCAN_COPY_MAX_PIXELS, tf.int64),
            message="the scan's small copy is larger than the image")
        with tf.control_dependencies([check]):
            return real_resize(images, size, *args, **kwargs)

    monkeypatch.setattr(tf.image, "resize", bounded_resize)
    strip = _path(bad_dir, "strip_1x10000.png")
    scan = data.scan_files([strip], config.DataConfig(data=bad_dir, cache_dir=str(tmp_path)))
    assert scan.bad == {} and list(scan.chroma) == [strip]


def _mixed_folder(root, bad_dir, good: int = 3) -> list[str]:
    """`good` colourful images plus every bad input (the directory included) in `root`."""
    paths = write_images(root, good, size=(36, 44), seed=7)
    for name in BAD:
        src = _path(bad_dir, name)
        if os.path.isdir(src):
            os.makedirs(os.path.join(root, name))
        else:
            with io.open(src, "rb") as fin, io.open(os.path.join(root, name), "wb") as fout:
                fout.write(fin.read())  # io.open: the unreadable file is only unreadable to builtins.open
    return paths


def test_training_files_keeps_exactly_the_good_ones(bad_dir, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    good = _mixed_folder(tmp_path / "mixed", bad_dir)
    cfg = config.DataConfig(data=str(tmp_path / "mixed"), val_fraction=0.0,
                            cache_dir=str(tmp_path / "cache"))
    info = data.training_files(cfg)
    assert info.files == tuple(good)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in BAD_FILES:
        assert len(_lines_naming(warnings, name)) == 1, (name, warnings)
    assert any(f"skipped {len(BAD_FILES)} unreadable or refused files" in w for w in warnings)


def test_only_bad_files_is_a_data_error(bad_dir, tmp_path):
    root = tmp_path / "all-bad"
    _mixed_folder(root, bad_dir, good=0)
    cfg = config.DataConfig(data=str(root), val_fraction=0.0, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(sources.DataError, match=f"none of the {len(BAD_FILES)} files"):
        data.training_files(cfg)


# ------------------------------------------------------------------------- the train CLI
def test_train_cli_empty_dataset(tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    (tmp_path / "empty").mkdir()
    code = run_main(train.main, ["--recipe=tiny", f"--data={tmp_path / 'empty'}",
                                 f"--workdir={tmp_path / 'run'}"])
    assert code == cli.EXIT_USER_ERROR
    errors = _errors(caplog)
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "no images" in errors[0] and str(tmp_path / "empty") in errors[0]
    _assert_no_traceback(caplog, capfd)


@pytest.mark.parametrize("line", ["--no_such_flag=1", "--image_size=abc"])
def test_train_cli_bad_flagfile(line, tmp_path, capfd):
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text(f"--recipe=tiny\n{line}\n")
    workdir = tmp_path / "run"
    assert run_main(train.main, [f"--flagfile={flagfile}", f"--workdir={workdir}"]) == cli.EXIT_USAGE
    err = capfd.readouterr().err
    assert line.split("=")[0].lstrip("-") in err  # the message names the offending flag
    assert "Traceback" not in err
    assert not workdir.exists()


def test_train_cli_invalid_config(tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    workdir = tmp_path / "run"
    code = run_main(train.main, ["--recipe=tiny", "--image_size=48", "--depth=0",
                                 f"--workdir={workdir}"])
    assert code == cli.EXIT_USAGE  # an inconsistent flag combination is a usage error
    (error,) = _errors(caplog)
    assert error.startswith("usage: invalid flags") and "48" in error and "\n" not in error
    assert not workdir.exists()
    _assert_no_traceback(caplog, capfd)


def test_train_cli_skips_bad_files(bad_dir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    _mixed_folder(tmp_path / "mixed", bad_dir)
    workdir = tmp_path / "run"
    code = run_main(train.main, ["--recipe=tiny", f"--data={tmp_path / 'mixed'}", "--steps=2",
                                 f"--workdir={workdir}"])
    assert code == cli.EXIT_OK, _errors(caplog)
    assert tf.train.latest_checkpoint(str(workdir / "ckpt")).endswith("ckpt-2")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in BAD_FILES:
        assert len(_lines_naming(warnings, name)) == 1, (name, warnings)
    _assert_no_traceback(caplog, capfd)


# ---------------------------------------------------------------------- the evaluate CLI
def test_evaluate_cli_skips_and_counts_bad_files(bad_dir, tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    root = tmp_path / "eval-data"
    write_images(root / "train", 1, size=(32, 32), seed=3)
    good = _mixed_folder(root / "test", bad_dir)
    out = tmp_path / "report"
    code = run_main(evaluate.main, [f"--model={tiny_workdir}", f"--data={root}", "--split=test",
                                    f"--output={out}", "--grid_images=1"])
    assert code == cli.EXIT_OK, _errors(caplog)
    with open(out / "metrics.json", encoding="utf-8") as f:
        assert json.load(f)["images"] == len(good)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in BAD_FILES:
        assert len(_lines_naming(warnings, name)) == 1, (name, warnings)
    assert any(f"skipped {len(BAD_FILES)} unreadable or refused files" in w for w in warnings)
    _assert_no_traceback(caplog, capfd)


# ----------------------------------------------- a checkpoint from a different architecture
def test_checkpoint_from_a_different_architecture(bad_dir, tiny_workdir, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    other = tmp_path / "other-arch"
    shutil.copytree(tiny_workdir, other)
    with open(other / "config.json", encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["model"]["base_filters"] *= 2  # the checkpoint's kernels no longer fit
    (other / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    assert _colorize(other, out, _path(bad_dir, "rgba.png")) == cli.EXIT_USER_ERROR
    errors = _errors(caplog)
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert str(other) in errors[0]
    assert not errors[0].startswith("internal error")
    assert _listing(out) == []
    _assert_no_traceback(caplog, capfd)


# ------------------------------------------------------------- the SavedModel bytes signature
@pytest.fixture(scope="module")
def serve(tiny_workdir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "colorgan")
    (path,) = export.export(inference.load_model(tiny_workdir), out, formats=("saved_model",))
    loaded = tf.saved_model.load(path)
    return loaded, loaded.signatures[inference.BYTES_SIGNATURE]


@pytest.mark.parametrize("name", ["empty_0_bytes.jpg", "random_bytes.png", "text_file.jpg",
                                  "truncated_jpeg_half.jpg", "truncated_png_half.png",
                                  "png_idat_length_short.png", "bomb_header_50000x50000.png"])
def test_serving_signature_rejects_undecodable_bytes(name, bad_dir, serve):
    _, signature = serve
    with io.open(_path(bad_dir, name), "rb") as f:
        content = f.read()
    with pytest.raises(tf.errors.InvalidArgumentError):
        signature(image_bytes=tf.constant([content]))
    # Still serving afterwards, at the input's full size.
    with io.open(_path(bad_dir, "rgba.png"), "rb") as f:
        good = f.read()
    png = signature(image_bytes=tf.constant([good]))["colorized_png_bytes"].numpy()[0]
    assert tf.io.decode_png(png).shape == (40, 56, 3)
