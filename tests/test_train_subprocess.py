"""The few things only a real process shows: `--help`, and SIGTERM saving a checkpoint.

Each subprocess pays TensorFlow's import (~5 s), so this file stays small.
"""

import os
import re
import signal
import subprocess
import sys
import time

import tensorflow as tf

from colorgan import workdir as workdir_lib

TIMEOUT_S = 180


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_help_shows_docstring_example_and_config_flags():
    proc = subprocess.run([sys.executable, "-m", "colorgan.train", "--help"], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=_env())
    assert proc.returncode in (0, 1)  # absl exits 1 after --help on some versions
    assert "--recipe=quickstart --workdir=" in proc.stdout
    assert "--image_size" in proc.stdout and "--pixel_weight" in proc.stdout


def test_sigterm_saves_a_checkpoint_and_exit_status_says_so(tmp_path):
    workdir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorgan.train", "--recipe=tiny", f"--workdir={workdir}",
         "--steps=1000000", "--ckpt_every_steps=1000000", "--sample_every_steps=1000000"],
        stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for line in proc.stderr:  # log lines: "step N: g_loss=..."
            if re.search(r"step (\d+):", line) and int(re.search(r"step (\d+):", line).group(1)) >= 5:
                break
            assert time.monotonic() < deadline, "training never reached step 5"
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=TIMEOUT_S)[1]
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, rest[-2000:]
    ckpt = tf.train.latest_checkpoint(os.path.join(workdir, workdir_lib.CKPT_DIR))
    saved_step = tf.train.load_variable(ckpt, "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert saved_step >= 5 and ckpt.endswith(f"ckpt-{saved_step}")
    assert "re-run to resume" in rest
