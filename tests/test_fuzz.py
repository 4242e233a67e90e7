"""Fuzz: a few hundred mutated JPEG/PNG files through the header check, TF's decoder and the
colouriser. No crash, no traceback, every file accounted for, and no hang.

What counts as handled:
  * images.check_header: returns None or a one-line reason; never raises.
  * data.decode_image (the tf.data / SavedModel path): decodes, or raises
    tf.errors.InvalidArgumentError. Any other exception type fails the test.
  * colorize.colorize_file (library): succeeds, or raises UserError (its documented contract,
    which covers Pillow's OSError/SyntaxError on data past an intact header). Anything else
    (OSError, ValueError, struct.error, zlib.error, ...) fails the test.
  * colorize.colorize_paths (what the CLI runs): never raises; returns an Outcome whose written
    and failed lists cover every file (none skipped: the output folder starts empty), failed
    being exactly the files colorize_file failed on; one error line per failed file; only
    complete outputs in the output folder.
Time: no performance assertion. Hang guards only, ~100x what these 40 x 56 images take on a
loaded 2-core machine: HANG_GUARD_FILE_S per file and HANG_GUARD_TOTAL_S for the whole folder.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import colorize, config, data, images, inference
from colorgan.errors import UserError
from conftest import smooth_color_image

COUNT = 300
SEED = 20240608
MUTATIONS = ("flip", "truncate", "splice", "zero", "flip+truncate")
HANG_GUARD_FILE_S = 30.0
HANG_GUARD_TOTAL_S = 120.0
MAX_PIXELS = config.DataConfig.max_pixels


def _sources() -> list[tuple[str, bytes]]:
    """Three small valid images of different structure: baseline JPEG, progressive 4:2:0 JPEG,
    RGBA PNG."""
    out = []
    for ext, (h, w), seed, kw in [("jpg", (40, 56), 1, dict(format="JPEG", quality=90)),
                                  ("jpg", (33, 47), 2, dict(format="JPEG", quality=75,
                                                            progressive=True, subsampling=2)),
                                  ("png", (36, 30), 3, dict(format="PNG"))]:
        img = Image.fromarray(smooth_color_image(h, w, seed))
        if ext == "png":
            img.putalpha(128)
        buf = io.BytesIO()
        img.save(buf, **kw)
        out.append((ext, buf.getvalue()))
    return out


def _mutate(content: bytes, others: list[bytes], kind: str, rng: np.random.Generator) -> bytes:
    b = bytearray(content)
    if "flip" in kind:  # XOR 1-16 random bytes with a non-zero value
        for pos in rng.integers(0, len(b), rng.integers(1, 17)):
            b[pos] ^= int(rng.integers(1, 256))
    if "truncate" in kind:
        b = b[: int(rng.integers(0, len(b)))]
    if kind == "splice":  # replace a span with a span of another (or the same) image
        other = others[int(rng.integers(len(others)))]
        src, n = int(rng.integers(len(other))), int(rng.integers(1, 200))
        dst = int(rng.integers(len(b)))
        b[dst: dst + n] = other[src: src + n]
    if kind == "zero":  # zero a region
        start = int(rng.integers(len(b)))
        end = min(len(b), start + int(rng.integers(1, 400)))
        b[start:end] = bytes(end - start)
    return bytes(b)


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory) -> dict[str, bytes]:
    """COUNT mutated files, {path: content}, named fuzz_<index>_<mutation>_<source>.<ext>."""
    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    sources = _sources()
    files = {}
    for i in range(COUNT):
        s = i % len(sources)
        ext, content = sources[s]
        kind = MUTATIONS[(i // len(sources)) % len(MUTATIONS)]
        mutated = _mutate(content, [c for _, c in sources], kind, rng)
        path = str(folder / f"fuzz_{i:03d}_{kind.replace('+', '-')}_src{s}.{ext}")
        with open(path, "wb") as f:
            f.write(mutated)
        files[path] = mutated
    assert len(set(files.values())) > 0.9 * COUNT  # the mutations really differ
    return files


@pytest.fixture(scope="module")
def model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


def test_check_header_never_raises(fuzz_files):
    for path in fuzz_files:
        reason = images.check_header(path, MAX_PIXELS)
        assert reason is None or (isinstance(reason, str) and reason and "\n" not in reason), path


def test_decode_image_raises_only_invalid_argument(fuzz_files):
    outcomes = collections.Counter()
    unhandled = []
    for path, content in fuzz_files.items():
        try:
            rgb = data.decode_image(tf.constant(content))
            assert rgb.dtype == tf.float32 and rgb.shape[-1] == 3
            outcomes["decoded"] += 1
        except tf.errors.InvalidArgumentError:
            outcomes["InvalidArgumentError"] += 1
        except Exception as e:  # noqa: BLE001  (collected: any other type fails below)
            unhandled.append((os.path.basename(path), type(e).__name__, str(e)[:200]))
    print(f"decode_image on {len(fuzz_files)} mutated files: {dict(outcomes)}")
    assert unhandled == []
    assert outcomes["InvalidArgumentError"] > 0  # the fuzz does reach the error path


def test_colorize_file_and_colorize_paths(fuzz_files, model, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING)
    # 1. The library function, file by file, timed (hang guard only).
    outcomes, failed_expected, unhandled, slow = collections.Counter(), set(), [], []
    single_out = tmp_path / "single"
    for path in fuzz_files:
        refused = images.check_header(path, MAX_PIXELS)
        dst = str(single_out / (os.path.splitext(os.path.basename(path))[0] + ".png"))
        t0 = time.perf_counter()
        error = None
        try:
            colorize.colorize_file(model, path, dst)
        except Exception as e:  # noqa: BLE001  (classified below)
            error = e
        elapsed = time.perf_counter() - t0
        if error is None:
            outcomes["ok"] += 1
            assert refused is None, path  # a refused header must never be colourised
        elif isinstance(error, UserError):
            outcomes["UserError"] += 1
            failed_expected.add(path)
        else:
            unhandled.append((os.path.basename(path), type(error).__name__, str(error)[:200]))
            failed_expected.add(path)
        if elapsed > HANG_GUARD_FILE_S:
            slow.append((os.path.basename(path), round(elapsed, 1)))
    print(f"colorize_file on {len(fuzz_files)} mutated files: {dict(outcomes)}, "
          f"unhandled {len(unhandled)}")
    assert unhandled == [], unhandled
    assert slow == []
    assert outcomes["ok"] > 0 and outcomes["UserError"] > 0  # both paths exercised
    assert sorted(os.listdir(single_out)) == sorted(
        os.path.splitext(os.path.basename(p))[0] + ".png" for p in fuzz_files if p not in failed_expected)

    # 2. The CLI's batch path on the whole folder: never raises, accounts for every file.
    caplog.clear()
    folder = os.path.dirname(next(iter(fuzz_files)))
    out = tmp_path / "batch"
    t0 = time.perf_counter()
    outcome = colorize.colorize_paths(model, [folder], str(out))
    assert time.perf_counter() - t0 < HANG_GUARD_TOTAL_S
    written, failed = outcome.written, outcome.failed
    assert outcome.skipped == []
    assert len(written) + len(failed) == len(fuzz_files)
    assert sorted(failed) == sorted(failed_expected)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(w) for w in written)  # no temp files
    for w in written:
        with Image.open(w) as img:
            img.load()  # complete, decodable outputs
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert "Traceback" not in capfd.readouterr().err
    for path in failed:
        naming = [r.getMessage() for r in errors if path in r.getMessage()]
        assert len(naming) == 1 and "\n" not in naming[0], (path, naming)
