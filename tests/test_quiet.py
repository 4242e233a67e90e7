"""colorgan.quiet: TensorFlow's start-up noise filtered off file descriptor 2, everything else
passed through in order; which processes filter; and a real CLI process with and without
--verbose (two subprocesses, each paying TensorFlow's import: this file stays small)."""

import itertools
import os
import subprocess
import sys

import pytest

from colorgan import quiet
from conftest import write_images

TIMEOUT_S = 180
# Lines TF 2.21 prints on a machine without a GPU (copied from a real run; pids and times vary).
NOISE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796112731.247783    8168 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "I0000 00:00:1796112731.248201    8168 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.\n",
    "E0000 00:00:1796112731.390112    8168 cuda_executor.cc:1309] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "I0000 00:00:1796112731.315699    8168 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n",
)
# What must reach the screen: our own lines, real errors (TF's too), a traceback.
KEPT_LINES = (
    "I1201 08:00:00.000000 140 train.py:1] step 5: g_loss=1.234\n",
    "Error: cannot read photo.jpg (not a readable image)\n",
    "E0000 00:00:1796112731.400000    8168 op_kernel.cc:1] OOM when allocating tensor\n",
    "Traceback (most recent call last):\n",
    "  File \"colorgan/colorize.py\", line 1, in <module>\n",
)
# Substrings of TF's noise that a quiet CLI run must not show (and a --verbose one does).
NOISE_MARKERS = ("oneDNN", "cuda", "cuInit", "absl::InitializeLog", "cpu_feature_guard")


def _through_filter(tmp_path, lines, **kwargs) -> tuple[str, list[str]]:
    """Writes `lines` to fd 2 with os.write inside filtered_stderr(**kwargs), fd 2 pointing at a
    file; returns (what reached the file, the dropped lines)."""
    log = tmp_path / "stderr.txt"
    saved = os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        with quiet.filtered_stderr(**kwargs) as dropped:
            for line in lines:
                os.write(2, line.encode())
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return log.read_text(), dropped


# ---------------------------------------------------------------------------- the filter
def test_noise_is_dropped_and_the_rest_passes_in_order(tmp_path):
    # Interleaved, so order is tested across dropped lines too; the last line has no newline
    # (a crash's final words must not be lost at EOF).
    lines = [line for pair in itertools.zip_longest(NOISE_LINES, KEPT_LINES) for line in pair
             if line is not None] + ["last words"]
    passed, dropped = _through_filter(tmp_path, lines, force=True)
    assert passed == "".join(KEPT_LINES) + "last words"
    assert dropped == list(NOISE_LINES)
    assert all(quiet.NOISE.search(line) for line in NOISE_LINES)
    assert not any(quiet.NOISE.search(line) for line in KEPT_LINES)


def test_filter_restores_fd_2_afterwards():
    before = os.fstat(2)
    with quiet.filtered_stderr(force=True):
        pass
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


def test_filter_is_a_no_op_unless_enabled_or_forced(tmp_path):
    assert not quiet.enabled()  # a test runner imports colorgan as a library: not quiet
    passed, dropped = _through_filter(tmp_path, [NOISE_LINES[1], KEPT_LINES[1]])
    assert passed == NOISE_LINES[1] + KEPT_LINES[1]
    assert dropped == []


# ----------------------------------------------------------------- who filters: wanted()
@pytest.mark.parametrize("argv,expected", [
    (["-m", "--model=runs/x", "--output=out", "photo.jpg"], True),  # python -m colorgan.<verb>
    (["-m", "--recipe=tiny", "--workdir=w"], True),
    (["-m", "--verbose"], False),
    (["-m", "--output=out", "--verbose=true"], False),
    (["-m", "--verbose=True"], False),
    (["-m", "--verbose=1"], False),
    (["-m", "--noverbose"], True),
    (["-m", "--verbose=false"], True),
    (["/venv/bin/colorgan-colorize", "--output=out", "photo.jpg"], True),  # console script
    (["colorgan-train", "--verbose"], False),
    (["/venv/bin/pytest", "-q", "tests"], False),  # a test runner
    (["/venv/lib/python3/site-packages/ipykernel_launcher.py", "-f", "kernel.json"], False),
    (["-c"], False),  # python -c
    ([""], False),  # the interactive interpreter
    ([], False),
])
def test_wanted(argv, expected):
    assert quiet.wanted(argv) is expected


def test_wanted_reads_sys_argv_by_default(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["-m", "--output=out", "photo.jpg"])
    assert quiet.wanted() is True
    monkeypatch.setattr(sys, "argv", ["-m", "--output=out", "--verbose", "photo.jpg"])
    assert quiet.wanted() is False


# ------------------------------------------------------------------------- a real process
def test_cli_hides_tensorflow_noise_unless_verbose(tiny_workdir, tmp_path):
    (photo,) = write_images(tmp_path / "in", 1, size=(24, 32))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    stderr = {}
    for name, extra in (("quiet", []), ("verbose", ["--verbose"])):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "colorgan.colorize", f"--model={tiny_workdir}",
                               f"--output={out}", *extra, photo],
                              capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.split() == [str(out / "img000.png")]
        assert (out / "img000.png").is_file()
        stderr[name] = proc.stderr
    shown = [m for m in NOISE_MARKERS if m in stderr["quiet"]]
    assert shown == [], stderr["quiet"][-3000:]
    assert any(m in stderr["verbose"] for m in NOISE_MARKERS), stderr["verbose"][-3000:]
