"""python -m colorgan.batch end to end on Beam's DirectRunner, in-process (and one job on two
worker processes): outputs equal the colourise CLI's, bad files are dead letters with the CLI's
reasons, re-runs skip or restore exactly what they must, other models' outputs are reported,
inputs are never outputs; and the command line (our flags beside Beam's options, --help).

One in-process job on the shared folder is run once (module fixture); the re-run tests work on
copies of its output folder. The multi-process job pays TensorFlow's import in two worker
processes (~20 s): it is the only one."""

import contextlib
import dataclasses
import inspect
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from PIL import Image

from colorgan import batch, cli, colorize, config, images, pipeline
from colorgan.config import flag_definitions
from conftest import run_main, smooth_color_image
from test_bad_inputs import BOMB_SIDE, bomb_png

FLAGS = flags.FLAGS
# Batched and single convolutions may round differently by one uint8 level (the bound).
BATCHED_LEVELS = 1
# Good photos (path -> height, width): a.png and b.png (and the nested d.png) share the tiny
# model's render shape (32x40) at different full sizes, so they are colourised as one batch.
GOOD = {"a.png": (40, 48), "b.png": (41, 49), "c.jpg": (60, 48), "nested/deeper/d.png": (40, 48)}
GOOD_OUTPUTS = sorted(os.path.splitext(name)[0] + ".png" for name in GOOD)
BAD = ("empty_0_bytes.jpg", "truncated_jpeg_half.jpg", "text_file.jpg",
       f"bomb_header_{BOMB_SIDE}x{BOMB_SIDE}.png")
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
TIMEOUT_S = 300


def _build_folder(root: str) -> None:
    for i, (name, (h, w)) in enumerate(GOOD.items()):
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        Image.fromarray(smooth_color_image(h, w, seed=i)).save(os.path.join(root, name),
                                                                quality=95)
    buf = io.BytesIO()
    Image.fromarray(smooth_color_image(40, 56, seed=9)).save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    contents = {"empty_0_bytes.jpg": b"", "truncated_jpeg_half.jpg": jpeg[:len(jpeg) // 2],
                "text_file.jpg": b"plain text, not a JPEG\n" * 20,
                BAD[3]: bomb_png(BOMB_SIDE, BOMB_SIDE)}
    for name, content in contents.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(content)


class _Records(logging.Handler):
    """Collects log records (module fixtures cannot use caplog)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@dataclasses.dataclass
class Run:
    code: int
    out: str
    stdout: str
    log: _Records

    def manifest(self, name: str = pipeline.MANIFEST) -> dict[str, dict]:
        """The manifest's (or dead letters') rows by input path."""
        with open(os.path.join(self.out, name), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        return {r["input"]: r for r in rows}

    def statuses(self) -> dict[str, str]:
        """Each input's status, by file name (the folder's names are unique)."""
        return {os.path.basename(k): r["status"] for k, r in self.manifest().items()}


@contextlib.contextmanager
def _recording():
    """Every log record at INFO and above while active (as the command's absl logging shows)."""
    records, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    try:
        yield records
    finally:
        root.removeHandler(records)
        root.setLevel(level)


def _run(argv: list[str], out: str) -> Run:
    stdout = io.StringIO()
    with _recording() as records, contextlib.redirect_stdout(stdout):
        code = run_main(batch.main, [*argv, f"--output={out}"], passthrough=True)
    return Run(code, out, stdout.getvalue(), records)


def _batch(model: str, inputs, out, *extra) -> Run:
    return _run([f"--model={model}", *(f"--input={i}" for i in inputs), *extra], str(out))


def _images_in(folder) -> dict[str, tuple[int, bytes]]:
    """Every file below `folder` except the manifest and dead letters: (mtime_ns, bytes)."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            if name not in (pipeline.MANIFEST, pipeline.DEAD_LETTERS):
                with open(path, "rb") as f:
                    found[os.path.relpath(path, folder)] = (os.stat(path).st_mtime_ns, f.read())
    return found


def _assert_same_picture(path_a, path_b) -> None:
    a, b = (np.asarray(Image.open(p)).astype(int) for p in (path_a, path_b))
    assert a.shape == b.shape, (path_a, a.shape, b.shape)
    assert np.abs(a - b).max() <= BATCHED_LEVELS, path_a
    assert images.read_provenance(str(path_a)) == images.read_provenance(str(path_b))


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("batch-photos"))
    _build_folder(root)
    return root


@pytest.fixture(scope="module")
def cli_run(tiny_workdir, photos_dir, tmp_path_factory):
    """The colourise CLI on the same folder: its outputs and its one-line reason per bad file."""
    out = str(tmp_path_factory.mktemp("cli"))
    with _recording() as records:
        code = run_main(colorize.main, [f"--model={tiny_workdir}", f"--output={out}", photos_dir])
    reasons = {}
    for message in records.errors():
        match = re.fullmatch(r"(.+?): (.+); skipped", message)
        if match:
            reasons[os.path.basename(match[1])] = match[2]
    return code, out, reasons


@pytest.fixture(scope="module")
def first_run(tiny_workdir, photos_dir, tmp_path_factory) -> Run:
    return _batch(tiny_workdir, [photos_dir], tmp_path_factory.mktemp("batch") / "out",
                  "--progress_every_s=0.1")


def _copy_of(run: Run, tmp_path) -> str:
    copy = str(tmp_path / "out")
    shutil.copytree(run.out, copy, copy_function=shutil.copy2)  # mtimes kept
    return copy


# ---------------------------------------------------------------------------- one job
def test_outputs_equal_the_clis(first_run, cli_run):
    cli_code, cli_out, _ = cli_run
    assert first_run.code == cli.EXIT_USER_ERROR == cli_code  # bad inputs: exit 2, like the CLI
    assert sorted(_images_in(first_run.out)) == GOOD_OUTPUTS == sorted(_images_in(cli_out))
    for name in GOOD_OUTPUTS:
        _assert_same_picture(os.path.join(first_run.out, name), os.path.join(cli_out, name))
    with Image.open(os.path.join(first_run.out, "nested", "deeper", "d.png")) as img:
        assert img.size == (48, 40)


def test_bad_files_are_dead_letters_with_the_clis_reasons(first_run, cli_run):
    _, _, cli_reasons = cli_run
    dead = {os.path.basename(k): r for k, r in first_run.manifest(pipeline.DEAD_LETTERS).items()}
    assert sorted(dead) == sorted(BAD)
    for name in BAD:
        assert dead[name]["status"] == "failed" and "\n" not in dead[name]["reason"]
        assert dead[name]["reason"] == cli_reasons[name], name
        assert len([m for m in first_run.log.errors() if name in m]) == 1  # logged once
    assert "--max_pixels" in dead[BAD[3]]["reason"]
    assert "truncated" in dead["truncated_jpeg_half.jpg"]["reason"]
    assert all(r.exc_info is None for r in first_run.log.records)


def test_manifest_has_one_row_per_input(first_run, tiny_workdir, photos_dir):
    from colorgan import inference  # noqa: PLC0415  (the model's identity)

    identity = inference.load_model(tiny_workdir).identity
    rows = first_run.manifest()
    assert sorted(first_run.statuses().items()) == sorted(
        [(os.path.basename(n), "ok") for n in GOOD] + [(n, "failed") for n in BAD])
    for name, (h, w) in GOOD.items():
        row = rows[os.path.join(photos_dir, name)]
        assert row["output"] == os.path.join(first_run.out, os.path.splitext(name)[0] + ".png")
        assert row["size"] == [w, h] and row["reason"] == "" and row["model"] == identity
        assert row["bytes"] == os.path.getsize(os.path.join(photos_dir, name)) and row["ms"] > 0
    assert set(rows[os.path.join(photos_dir, BAD[0])]) == {
        "input", "output", "status", "reason", "size", "bytes", "ms", "model"}


def test_summary_line_and_progress(first_run):
    lines = first_run.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"{len(GOOD) + len(BAD)} inputs in ") and f"{len(GOOD)} written, 0 skipped" in lines[0]
    assert f"{len(BAD)} failed (reasons in {first_run.out}/dead_letters.jsonl)" in lines[0]
    progress = [r.getMessage() for r in first_run.log.records
                if r.getMessage().startswith("batch progress (this worker): ")]
    assert progress and re.search(r"\d+ inputs done \(\d+ ok, \d+ skipped, \d+ failed\)",
                                  progress[-1])


# ------------------------------------------------------------------------------ re-runs
def test_second_run_skips_everything_and_writes_nothing(first_run, tiny_workdir, photos_dir,
                                                        tmp_path):
    out = _copy_of(first_run, tmp_path)
    before = _images_in(out)
    again = _batch(tiny_workdir, [photos_dir], out)
    assert again.code == cli.EXIT_USER_ERROR  # the bad files still fail
    assert _images_in(out) == before  # the same files, bytes and mtimes
    assert sorted(again.statuses().items()) == sorted(
        [(os.path.basename(n), "skipped") for n in GOOD] + [(n, "failed") for n in BAD])
    assert f"0 written, {len(GOOD)} skipped" in again.stdout


def test_deleting_two_outputs_restores_exactly_those(first_run, tiny_workdir, photos_dir,
                                                     tmp_path):
    out = _copy_of(first_run, tmp_path)
    before = _images_in(out)
    deleted = ["b.png", os.path.join("nested", "deeper", "d.png")]
    for name in deleted:
        os.remove(os.path.join(out, name))
    job = pipeline.Job(inputs=(photos_dir,), output=out, model=tiny_workdir)
    summary = pipeline.run(job)
    assert (summary.ok, summary.skipped, summary.failed) == (2, len(GOOD) - 2, len(BAD))
    assert summary.pixels == 41 * 49 + 40 * 48
    counted = pipeline._manifest_counts(out)  # the Beam counters agree with the manifest
    assert (counted["ok"], counted["skipped"], counted["failed"], counted["pixels"]) == (
        summary.ok, summary.skipped, summary.failed, summary.pixels)
    after = _images_in(out)
    assert sorted(after) == sorted(before)
    for name in after:
        if name in deleted:
            _assert_same_picture(os.path.join(out, name), os.path.join(first_run.out, name))
        else:
            assert after[name] == before[name], name  # untouched


def test_another_setting_is_reported_not_replaced(first_run, tiny_workdir, photos_dir, tmp_path):
    out = _copy_of(first_run, tmp_path)
    before = _images_in(out)
    other = _batch(tiny_workdir, [photos_dir], out, "--render_size=64")
    assert other.code == cli.EXIT_USER_ERROR and _images_in(out) == before
    for name in GOOD:
        row = other.manifest()[os.path.join(photos_dir, name)]
        assert row["status"] == "failed" and "render_size 32 (this run: 64)" in row["reason"]
        assert "--overwrite" in row["reason"]
    replaced = _batch(tiny_workdir, [photos_dir], out, "--render_size=64", "--overwrite")
    assert [s for s in replaced.statuses().values()].count("ok") == len(GOOD)
    for name in GOOD_OUTPUTS:
        assert images.read_provenance(os.path.join(out, name))["render_size"] == 64


# ------------------------------------------------------------------ what is never written
def test_output_folder_inside_the_input_tree_is_not_read_back(tiny_workdir, tmp_path):
    root = tmp_path / "in"
    _build_folder(str(root))
    for name in BAD:
        os.remove(root / name)
    out = root / "colorized"
    assert _batch(tiny_workdir, [root], out).code == cli.EXIT_OK
    again = _batch(tiny_workdir, [root], out)
    assert again.code == cli.EXIT_OK
    assert sorted(again.manifest()) == sorted(str(root / name) for name in GOOD)
    assert set(again.statuses().values()) == {"skipped"}


def test_shared_outputs_and_outputs_that_are_inputs(tiny_workdir, tmp_path):
    for folder, seed in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        Image.fromarray(smooth_color_image(40, 48, seed)).save(tmp_path / folder / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    own = out / "own.png"  # an input whose output path is itself
    Image.fromarray(smooth_color_image(40, 48, 3)).save(own)
    original = own.read_bytes()
    Image.fromarray(smooth_color_image(40, 48, 4)).save(tmp_path / "good.jpg")
    for extra in ([], ["--overwrite"]):
        run = _batch(tiny_workdir, [tmp_path / "a", tmp_path / "b", own, tmp_path / "good.jpg"],
                     out, *extra)
        assert run.code == cli.EXIT_USER_ERROR
        rows = run.manifest()
        for mine, theirs in (("a", "b"), ("b", "a")):
            row = rows[str(tmp_path / mine / "x.png")]
            assert row["status"] == "failed"
            assert row["reason"] == f"its output {out / 'x.png'} is also the output of " \
                                    f"{tmp_path / theirs / 'x.png'}"
        assert rows[str(own)]["reason"].startswith(f"its output {own} is an input file")
        assert rows[str(tmp_path / "good.jpg")]["status"] == "ok"
        assert own.read_bytes() == original and not (out / "x.png").exists()


# ----------------------------------------------------------------- two worker processes
def test_two_worker_processes_give_the_same_outputs(first_run, tiny_workdir, photos_dir,
                                                    tmp_path):
    """The same job on two worker processes: the same files, manifest rows and provenance; the
    pictures within BATCHED_LEVELS (which photos share a model call depends on the split)."""
    run = _batch(tiny_workdir, [photos_dir], tmp_path / "out", *MULTI_PROCESS)
    assert run.code == cli.EXIT_USER_ERROR
    assert sorted(_images_in(run.out)) == sorted(_images_in(first_run.out))
    for name in GOOD_OUTPUTS:
        _assert_same_picture(os.path.join(run.out, name), os.path.join(first_run.out, name))
    strip = ("ms", "output")
    assert ({k: {f: v for f, v in r.items() if f not in strip} for k, r in run.manifest().items()}
            == {k: {f: v for f, v in r.items() if f not in strip}
                for k, r in first_run.manifest().items()})


# ------------------------------------------------------------------------ the command line
@pytest.mark.parametrize("argv", [
    ["--output=/tmp/x"],  # no --input
    ["--input=in/"],  # no --output
    ["--input=in/", "--output=/tmp/x", "--no_such_flag=1"],
    ["--input=in/", "--output=/tmp/x", "photos/"],  # a stray positional argument
    ["--input=in/", "--output=/tmp/x", "--direct_num_workers=two"],
    ["--input=in/", "--output=/tmp/x", "--batch_images=0"],
])
def test_usage_errors_exit_1(argv):
    assert run_main(batch.main, argv, passthrough=True) == cli.EXIT_USAGE


def test_a_missing_model_is_one_line_and_exit_2(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    code = run_main(batch.main, [f"--model={tmp_path / 'nope'}", f"--input={tmp_path}",
                                 f"--output={tmp_path / 'out'}"], passthrough=True)
    assert code == cli.EXIT_USER_ERROR
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"model {tmp_path / 'nope'} does not exist"]
    assert not (tmp_path / "out").exists()


def test_split_argv_keeps_beams_two_word_options_in_order():
    argv = ["prog", "--model", "M", "--runner", "DataflowRunner", "--input=a", "--overwrite",
            "--project", "p", "--noflip_average", "--temp_location=gs://t", "--", "--input=z"]
    ours, rest = cli.split_argv(argv)
    assert ours == ["prog", "--model", "M", "--input=a", "--overwrite", "--noflip_average"]
    assert rest == ["--runner", "DataflowRunner", "--project", "p", "--temp_location=gs://t",
                    "--", "--input=z"]


def test_no_colorgan_flag_is_also_a_beam_option():
    """absl takes every flag it knows: one also named by Beam would never reach Beam."""
    beam_names = {option.lstrip("-") for action in pipeline._options_parser()._actions
                  for option in action.option_strings}
    assert "runner" in beam_names and "direct_num_workers" in beam_names
    assert set(FLAGS) & beam_names <= {"help", "h"}  # --help shows both (cli.parse_flags)


def test_every_flag_batch_reads_is_in_its_help():
    source = inspect.getsource(batch)
    read = {a or b for a, b in re.findall(r"""FLAGS(?:\.(\w+)|\[["'](\w+)["']\])""", source)}
    read |= set(config.NO_HINT_INFERENCE)  # cli.inference_settings(FLAGS, ...)
    keys = {f.name for f in FLAGS.get_key_flags_for_module(batch.__name__)}
    assert read and read <= keys == set(flag_definitions.VERB_FLAGS["batch"])


def test_help_shows_our_flags_and_beams_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "colorgan.batch", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert proc.returncode == cli.EXIT_USAGE  # absl's status after --help
    ours, _, beams = proc.stdout.partition("Apache Beam pipeline options")
    assert "python -m colorgan.batch --model=default --input=" in ours  # the example
    for name in ("--input", "--output", "--model", "--batch_images", "--overwrite"):
        assert name in ours, name
    assert "--beta1" not in ours  # a training flag
    for name in ("--runner", "--direct_num_workers", "--direct_running_mode", "--project"):
        assert name in beams, name
    assert "Traceback" not in proc.stderr
