"""Training faults: SIGKILL at random steps, corrupt checkpoints, non-finite losses, failed writes.

Each must lose nothing that was saved, and a resumed run must reproduce an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from colorgan import cli, config, losses, models, train, workdir as workdir_lib
from colorgan.errors import UserError

KILL_TIMEOUT_S = 180
STEPS = 12
# The same deterministic graph in two processes: bit-identical; 1e-6 only absorbs JSON printing.
LOSS_ATOL = 1e-6
LOSSES = ("g_loss", "g_adv", "g_pixel", "d_loss", "d_real", "d_fake", "d_acc")
ARGV = ["--recipe=tiny", "--mode=gan", "--dropout_blocks=1", "--deterministic", f"--steps={STEPS}",
        "--log_every_steps=1", "--ckpt_every_steps=2", "--sample_every_steps=1000"]


def _config(extra=()) -> config.Config:
    with flagsaver.flagsaver():
        cli.parse_flags(["colorgan", *ARGV, *extra])
        return config.from_flags(flags.FLAGS)


def _last_entry_per_step(workdir: str) -> dict[int, dict]:
    return {e["step"]: e for e in workdir_lib.read_log(workdir) if e.get("split") == "train"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, dict]:
    """Per-step losses of an uninterrupted deterministic run."""
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    train.train(_config(), workdir)
    return _last_entry_per_step(workdir)


def _start_and_kill(workdir: str, kill_after_step: int) -> None:
    """Starts training in a subprocess and SIGKILLs it once it has logged `kill_after_step`."""
    proc = subprocess.Popen([sys.executable, "-m", "colorgan.train", *ARGV, f"--workdir={workdir}"],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        for line in proc.stderr:
            match = re.search(r"\] step (\d+): g_loss", line)
            if match and int(match.group(1)) >= kill_after_step:
                break
            assert time.monotonic() < deadline, "training never reached the kill step"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=KILL_TIMEOUT_S)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_at_random_steps_then_resume_reproduces_the_uninterrupted_run(reference, tmp_path):
    workdir = str(tmp_path / "killed")
    rng = np.random.default_rng(8)  # fixed, so a failure reproduces
    for kill_step in sorted(rng.choice(np.arange(3, STEPS - 1), size=2, replace=False)):
        _start_and_kill(workdir, int(kill_step))
        latest = tf.train.latest_checkpoint(os.path.join(workdir, "ckpt"))
        assert latest is not None  # a complete checkpoint survived every kill
    result = train.train(_config(), workdir)
    assert result.step == STEPS
    resumed = _last_entry_per_step(workdir)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step, entry in reference.items():
        for name in LOSSES:
            np.testing.assert_allclose(resumed[step][name], entry[name], rtol=0, atol=LOSS_ATOL,
                                       err_msg=f"{name} at step {step}")


def test_truncated_latest_checkpoint_falls_back_to_the_previous(reference, tmp_path, caplog):
    workdir = str(tmp_path / "run")
    train.train(dataclasses.replace(_config(), train=dataclasses.replace(_config().train, steps=6)),
                workdir)
    data_file = os.path.join(workdir, "ckpt", "ckpt-6.data-00000-of-00001")
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 3)
    caplog.set_level("WARNING")
    result = train.train(_config(), workdir)
    assert "ckpt-6 cannot be restored" in caplog.text
    assert result.step == STEPS
    resumed = _last_entry_per_step(workdir)
    for step in range(5, STEPS + 1):  # re-done from ckpt-4, and equal to the uninterrupted run
        np.testing.assert_allclose(resumed[step]["g_loss"], reference[step]["g_loss"], atol=LOSS_ATOL)


def test_no_restorable_checkpoint_is_a_clear_error(tmp_path):
    workdir = str(tmp_path / "run")
    cfg = _config()
    train.train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=4)), workdir)
    for name in os.listdir(os.path.join(workdir, "ckpt")):
        if ".data-" in name:
            with open(os.path.join(workdir, "ckpt", name), "wb") as f:
                f.write(b"garbage")
    with pytest.raises(UserError, match="none of the 2 checkpoints"):
        train.train(cfg, workdir)


def _nan_pixel_loss(kind, target, pred):
    return tf.reduce_mean(tf.cast(pred, tf.float32)) * float("nan")


def test_nonfinite_skip_leaves_the_model_untouched(tmp_path, monkeypatch):
    monkeypatch.setattr(losses, "pixel_loss", _nan_pixel_loss)
    cfg = _config(["--nonfinite=skip", "--steps=3", "--mode=unet"])
    result = train.train(cfg, str(tmp_path / "skip"))
    assert result.step == 3 and result.skipped == 3 and result.history == []
    keras.utils.set_random_seed(cfg.train.seed)
    fresh = models.build_generator(cfg.model)  # the same seeded initialisation train() made
    trained, _ = workdir_lib.load_generator(str(tmp_path / "skip"))
    for a, b in zip(fresh.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)  # weights *and* BatchNorm statistics unchanged


def test_nonfinite_stop_exits_2_and_saves_nothing(tmp_path, monkeypatch):
    from conftest import run_main  # noqa: PLC0415

    monkeypatch.setattr(losses, "pixel_loss", _nan_pixel_loss)
    workdir = str(tmp_path / "stop")
    assert run_main(train.main, [*ARGV, f"--workdir={workdir}"]) == cli.EXIT_USER_ERROR
    assert tf.train.latest_checkpoint(os.path.join(workdir, "ckpt")) is None


def test_unwritable_workdir_fails_before_training(tmp_path, monkeypatch):
    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(workdir_lib, "write_atomic", disk_full)
    with pytest.raises(UserError, match="preparing the workdir .* failed: No space left on device"):
        train.train(_config(), str(tmp_path / "full"))


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    real_save = tf.train.CheckpointManager.save

    def save_fails_at_step_6(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == 6:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_fails_at_step_6)
    with pytest.raises(UserError, match=r"checkpoint for step 6 .*intact: .*ckpt-4.* failed"):
        train.train(_config(), workdir)
    monkeypatch.undo()
    g, _ = workdir_lib.load_generator(workdir)  # ckpt-4 is whole and loads
    assert tf.train.latest_checkpoint(os.path.join(workdir, "ckpt")).endswith("ckpt-4")
    assert all(np.all(np.isfinite(w)) for w in g.get_weights())


def test_leftovers_of_a_checkpoint_write_killed_midway_are_ignored(reference, tmp_path):
    """A kill during manager.save() leaves temp files and data without an updated index file:
    the resume must use the last complete checkpoint and reproduce the uninterrupted run."""
    workdir = str(tmp_path / "run")
    cfg = _config()
    train.train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=4)), workdir)
    ckpt_dir = os.path.join(workdir, "ckpt")
    os.makedirs(os.path.join(ckpt_dir, "ckpt-6_temp", "part-00000-of-00001"))
    with open(os.path.join(ckpt_dir, "ckpt-6.data-00000-of-00001"), "wb") as f:
        f.write(b"\0" * 1000)  # half-written data; the index and `checkpoint` file never updated
    result = train.train(cfg, workdir)
    assert result.step == STEPS
    resumed = _last_entry_per_step(workdir)
    for step in range(5, STEPS + 1):
        np.testing.assert_allclose(resumed[step]["g_loss"], reference[step]["g_loss"], atol=LOSS_ATOL)
    assert tf.train.latest_checkpoint(ckpt_dir).endswith(f"ckpt-{STEPS}")
