"""colorgan.pipeline, piece by piece: inputs through Beam's FileSystems (the CLI's output rules),
file identities, atomic writes, local model copies, the model handler (one load per process, one
model call per render shape, a failing photo fails alone), batching weights through Beam's own
BatchElements, and the check of Beam's pipeline options. Whole jobs: tests/test_batch.py."""

import os

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, config, images, inference, photos, pipeline
from colorgan.errors import UserError
from colorgan.pipeline import files, handler
from colorgan.pipeline.handler import BATCH_WEIGHT, ColorizerHandler, Decoded, Rendered
from conftest import write_images

MAX_PIXELS = config.DataConfig.max_pixels
# Batched and single convolutions may round differently by one uint8 level (the bound).
BATCHED_LEVELS = 1
# Tiny model (depth 3: sides multiples of 8, render size 32): 40x48 and 41x49 both render at
# 32x40; 60x48 renders at 40x32.
SAME_RENDER_SHAPE = ((40, 48), (41, 49))
OTHER_RENDER_SHAPE = (60, 48)


@pytest.fixture(scope="module")
def model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


def _decoded(path: str, label: str = "") -> Decoded:
    return Decoded(path, label or path, images.read_photo(path, MAX_PIXELS), 0, 0.0)


# ------------------------------------------------------------------------ files and inputs
def _tree(root) -> None:
    write_images(root / "a", 2)
    write_images(root / "a" / "b", 1, ext="jpg")
    write_images(root / ".hidden", 1)
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "a" / ".img000.png.1234.tmp").write_bytes(b"a half-written output")


def test_expand_input_folder_is_the_clis(tmp_path):
    _tree(tmp_path / "in")
    out = str(tmp_path / "out")
    pairs, left_out = files.expand_input(str(tmp_path / "in"), out, "png")
    assert left_out == 0
    assert pairs == sorted(photos.expand_inputs([str(tmp_path / "in")], out, "png"))
    assert [os.path.relpath(d, out) for _, d in pairs] == [
        "a/b/img000.png", "a/img000.png", "a/img001.png"]


def test_expand_input_never_reads_its_output_folder_back(tmp_path):
    _tree(tmp_path / "in")
    out = tmp_path / "in" / "colorized"  # the output folder inside the input tree
    write_images(out / "a", 2)  # a previous run's outputs
    pairs, left_out = files.expand_input(str(tmp_path / "in") + "/", str(out), "jpg")
    assert left_out == 2
    assert [os.path.relpath(s, tmp_path / "in") for s, _ in pairs] == [
        "a/b/img000.jpg", "a/img000.png", "a/img001.png"]
    assert all(d.startswith(str(out) + os.sep) and d.endswith(".jpg") for _, d in pairs)


def test_expand_input_globs_files_and_missing(tmp_path):
    _tree(tmp_path / "in")
    out = str(tmp_path / "out")
    flat, _ = files.expand_input(str(tmp_path / "in" / "a" / "*.png"), out, "png")
    assert [(os.path.basename(s), os.path.relpath(d, out)) for s, d in flat] == [
        ("img000.png", "img000.png"), ("img001.png", "img001.png")]
    deep, _ = files.expand_input(str(tmp_path / "in" / "**" / "*.jpg"), out, "png")
    assert [os.path.relpath(d, out) for _, d in deep] == ["img000.png"]  # by file name
    one = str(tmp_path / "in" / "a" / "b" / "img000.jpg")
    assert files.expand_input(one, out, "png") == ([(one, os.path.join(out, "img000.png"))], 0)
    gone = str(tmp_path / "no_such.png")
    assert files.expand_input(gone, out, "png") == ([(gone, os.path.join(out, "no_such.png"))], 0)


def test_file_key_resolves_links(tmp_path):
    src = write_images(tmp_path, 2)
    os.link(src[0], tmp_path / "hard.png")
    os.symlink(src[0], tmp_path / "soft.png")
    key = files.file_key(src[0])
    assert key.startswith("inode:")
    assert files.file_key(str(tmp_path / "hard.png")) == key
    assert files.file_key(str(tmp_path / "soft.png")) == key
    assert files.file_key(src[1]) != key
    assert files.file_key(str(tmp_path / "missing.png")) is None


def test_is_below(tmp_path):
    (tmp_path / "in" / "out").mkdir(parents=True)
    os.symlink(tmp_path / "in", tmp_path / "link")
    assert files.is_below(str(tmp_path / "in" / "out" / "x.png"), str(tmp_path / "in"))
    assert files.is_below(str(tmp_path / "link" / "out" / "x.png"), str(tmp_path / "in"))
    assert not files.is_below(str(tmp_path / "input2" / "x.png"), str(tmp_path / "in"))
    assert files.is_below("gs://b/out/x.png", "gs://b/out/")
    assert not files.is_below("gs://b/output/x.png", "gs://b/out")


def test_write_atomic_replaces_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "sub" / "x.png")
    files.write_atomic(path, b"first")
    files.write_atomic(path, b"second")
    assert open(path, "rb").read() == b"second"
    assert os.listdir(tmp_path / "sub") == ["x.png"]
    (tmp_path / "sub" / "dir.png").mkdir()
    (tmp_path / "sub" / "dir.png" / "keep").write_text("a folder in the way")
    with pytest.raises(BeamIOError):  # the rename onto a folder fails: the temporary file goes
        files.write_atomic(str(tmp_path / "sub" / "dir.png"), b"never")
    assert sorted(os.listdir(tmp_path / "sub")) == ["dir.png", "x.png"]


def test_copy_to_local_folder_file_and_sidecar(tiny_workdir, model, tmp_path):
    copy = files.copy_to_local(tiny_workdir, str(tmp_path / "models"))
    assert copy == str(tmp_path / "models" / os.path.basename(tiny_workdir))
    assert inference.load_model(copy).identity == model.identity
    (tmp_path / "m.tflite").write_bytes(b"model")
    (tmp_path / "m.tflite.json").write_text("{}")
    local = files.copy_to_local(str(tmp_path / "m.tflite"), str(tmp_path / "one"))
    assert local == str(tmp_path / "one" / "m.tflite")
    assert sorted(os.listdir(tmp_path / "one")) == ["m.tflite", "m.tflite.json"]
    with pytest.raises(UserError, match="does not exist"):
        files.copy_to_local(str(tmp_path / "nothing"), str(tmp_path / "two"))
    assert files.local_model("default") == "default" and files.local_model(copy) == copy


# ---------------------------------------------------------------------------- the handler
def test_handler_loads_once_per_process(tiny_workdir, monkeypatch):
    monkeypatch.setattr(handler, "_MODELS", {})
    loads = []
    real = inference.load_model
    monkeypatch.setattr(inference, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    job = pipeline.Job(inputs=("x",), output="o", model=tiny_workdir)
    first = ColorizerHandler(job).load_model()
    assert ColorizerHandler(job).load_model() is first and handler.load_model(job) is first
    assert loads == [(tiny_workdir, 0)]


def test_handler_one_model_call_per_render_shape(model, tmp_path, monkeypatch):
    sizes = [*SAME_RENDER_SHAPE, OTHER_RENDER_SHAPE, SAME_RENDER_SHAPE[0]]
    items = [_decoded(write_images(tmp_path / f"p{i}", 1, size=hw, seed=i)[0])
             for i, hw in enumerate(sizes)]
    calls = []
    real = model.colorize_batch

    def colorize_batch(rgbs, size):
        calls.append([r.shape[:2] for r in rgbs])
        return real(rgbs, size)

    monkeypatch.setattr(model, "colorize_batch", colorize_batch)
    job = pipeline.Job(inputs=("x",), output="o")
    results = list(ColorizerHandler(job).run_inference(items, model))
    assert calls == [[(40, 48), (41, 49), (40, 48)], [(60, 48)]]
    for item, result in zip(items, results):
        assert result.example is item and isinstance(result.inference, Rendered)
        alone = color.to_uint8(model.colorize(item.photo.rgb[None])[0]).numpy()
        diff = np.abs(result.inference.rgb_u8.astype(int) - alone.astype(int))
        assert diff.max() <= BATCHED_LEVELS
        assert result.inference.record == model.provenance()


def test_a_photo_that_breaks_its_batch_fails_alone(model, tmp_path, monkeypatch):
    items = [_decoded(write_images(tmp_path / f"p{i}", 1, size=SAME_RENDER_SHAPE[i % 2], seed=i)[0])
             for i in range(3)]
    real = model.colorize_batch

    def colorize_batch(rgbs, size):
        if any(r.shape[:2] == SAME_RENDER_SHAPE[1] for r in rgbs):
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor\nmore")
        return real(rgbs, size)

    monkeypatch.setattr(model, "colorize_batch", colorize_batch)
    results = ColorizerHandler(pipeline.Job(inputs=("x",), output="o")).run_inference(items, model)
    outcomes = [r.inference for r in results]
    assert isinstance(outcomes[0], Rendered) and isinstance(outcomes[2], Rendered)
    assert outcomes[1] == "cannot colourise (ResourceExhaustedError: OOM when allocating tensor)"


def test_batch_weight_limits_count_and_pixels(tmp_path):
    small = _decoded(write_images(tmp_path, 1, size=(10, 10))[0])
    assert handler.batch_weight(small, 4, 24.0) == BATCH_WEIGHT // 4
    assert handler.batch_weight(small, 4, 100 / 1e6 * 2) == BATCH_WEIGHT // 2  # half the pixels
    assert handler.batch_weight(small, 4, 50 / 1e6) == BATCH_WEIGHT  # too big: a batch alone


def test_beam_batches_by_count_and_a_large_photo_runs_alone(tmp_path):
    """Through Beam's own BatchElements with the handler's batch_elements_kwargs: at most
    --batch_images per batch, and a photo over --batch_megapixels in a batch of its own."""
    items = [_decoded(write_images(tmp_path / str(i), 1, size=(10, 10))[0], f"s{i}")
             for i in range(5)]
    big = _decoded(write_images(tmp_path / "big", 1, size=(40, 40))[0], "big")
    kwargs = ColorizerHandler(pipeline.Job(inputs=("x",), output="o", batch_images=2,
                                           batch_megapixels=1000 / 1e6)).batch_elements_kwargs()
    options = PipelineOptions([])
    with beam.Pipeline(runner=pipeline._direct_runner(options), options=options) as p:
        batches = (p | beam.Create([*items[:3], big, *items[3:]], reshuffle=False)
                   | beam.BatchElements(**kwargs)
                   | beam.Map(lambda batch: tuple(item.dst for item in batch)))
        assert_that(batches, equal_to([("s0", "s1"), ("s2",), ("big",), ("s3", "s4")]))


# ------------------------------------------------------------------ jobs and Beam's options
def test_job_is_checked():
    with pytest.raises(ValueError, match="inputs"):
        pipeline.Job(inputs=(), output="o")
    with pytest.raises(ValueError, match="fmt='tif'"):
        pipeline.Job(inputs=("x",), output="o", fmt="tif")


def test_check_beam_args():
    good = ["--direct_num_workers=2", "--direct_running_mode", "multi_processing",
            "--runner", "DirectRunner"]
    assert pipeline.check_beam_args(good) == good
    with pytest.raises(ValueError, match="--no_such_option=1"):
        pipeline.check_beam_args(["--no_such_option=1"])
    with pytest.raises(ValueError, match="photos/"):  # inputs are --input, not positional
        pipeline.check_beam_args(["photos/"])
    with pytest.raises(ValueError, match="direct_num_workers"):
        pipeline.check_beam_args(["--direct_num_workers=two"])


def test_options_help_lists_beams_options():
    text = pipeline.options_help()
    for name in ("--runner", "--direct_num_workers", "--temp_location", "--setup_file",
                 "--flink_master", "--spark_master_url", "--job_endpoint"):
        assert name in text, name


def test_summary_line():
    line = pipeline.Summary(ok=3, skipped=1, failed=2, pixels=10, seconds=1.25, output="/o").line()
    assert line == ("6 inputs in 1.2 s: 3 written, 1 skipped (already made by the same model "
                    "and settings), 2 failed (reasons in /o/dead_letters.jsonl); manifest "
                    "/o/manifest.jsonl")
