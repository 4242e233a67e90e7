"""Tests for colorgan.workdir: the layout a run leaves, the resolved config files, the config
guard, and loading a generator back (checkpoints, EMA weights, the shipped model)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from colorgan import config, models, train, workdir as workdir_lib
from colorgan.errors import UserError
from conftest import changed, snapshot, with_changes



def test_workdir_layout(tiny_workdir, tiny_config):
    for name in ("config.json", "config.flags"):
        assert os.path.isfile(os.path.join(tiny_workdir, name))
    for sub in ("ckpt", os.path.join("tb", "train"), "samples"):
        assert os.path.isdir(os.path.join(tiny_workdir, sub))
    assert workdir_lib.read_config(tiny_workdir) == tiny_config
    state = tf.train.get_checkpoint_state(os.path.join(tiny_workdir, "ckpt"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-3", "ckpt-6"]
    assert os.listdir(os.path.join(tiny_workdir, "tb", "train"))
    samples = sorted(os.listdir(os.path.join(tiny_workdir, "samples")))
    assert samples == ["step_0000003.png", "step_0000006.png"]


def test_config_flags_reproduce_the_config(tiny_workdir, tiny_config):
    from absl import flags  # noqa: PLC0415
    from absl.testing import flagsaver  # noqa: PLC0415

    from colorgan import cli  # noqa: PLC0415
    with flagsaver.flagsaver():
        cli.parse_flags(["colorgan", f"--flagfile={os.path.join(tiny_workdir, 'config.flags')}"])
        assert config.from_flags(flags.FLAGS) == tiny_config


def test_rerun_with_different_model_config_raises(tiny_workdir, tiny_config):
    before = open(os.path.join(tiny_workdir, "config.json"), encoding="utf-8").read()
    with pytest.raises(UserError, match="base_filters: 8 -> 16"):
        train.train(with_changes(tiny_config, model=dict(base_filters=16)), tiny_workdir)
    after = open(os.path.join(tiny_workdir, "config.json"), encoding="utf-8").read()
    assert before == after


# ---------------------------------------------------------------------- loading generators
def test_load_generator_restores_the_checkpointed_weights(tiny_workdir, tiny_config):
    g, cfg = workdir_lib.load_generator(tiny_workdir)
    assert cfg == tiny_config
    reference = models.build_generator(tiny_config.model)
    fresh = snapshot(reference.weights)
    latest = tf.train.latest_checkpoint(os.path.join(tiny_workdir, "ckpt"))
    tf.train.Checkpoint(generator=reference).restore(latest).expect_partial()
    assert any(changed(fresh, reference.weights))  # the restore did something
    assert [w.path for w in g.weights] == [w.path for w in reference.weights]
    for a, b in zip(g.weights, reference.weights):
        assert a.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    # An earlier checkpoint by step: different weights.
    g3, _ = workdir_lib.load_generator(tiny_workdir, step=3)
    assert any(changed(snapshot(g3.weights), g.weights))
    with pytest.raises(UserError, match="no checkpoint for step 4"):
        workdir_lib.load_generator(tiny_workdir, step=4)


def test_missing_shipped_model_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(workdir_lib, "PRETRAINED_DIR", str(tmp_path))  # an install without it
    with pytest.raises(UserError, match="no reference model"):
        workdir_lib.load_generator("default")


def test_load_generator_from_a_non_workdir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a training workdir"):
        workdir_lib.load_generator(str(tmp_path))


def test_load_generator_of_an_ema_run_returns_the_ema_weights(tiny_config, tmp_path):
    workdir = str(tmp_path / "ema")
    result = train.train(with_changes(tiny_config, train=dict(steps=3, ema_decay=0.5)), workdir)
    loaded, cfg = workdir_lib.load_generator(workdir)
    assert cfg.train.ema_decay == 0.5
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "ckpt"))
    ema, plain = (models.build_generator(tiny_config.model) for _ in range(2))
    tf.train.Checkpoint(ema_generator=ema).restore(latest).expect_partial()
    tf.train.Checkpoint(generator=plain).restore(latest).expect_partial()
    for a, b, c in zip(loaded.weights, ema.weights, result.generator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c), err_msg=a.path)
    assert any(changed(snapshot(plain.trainable_variables), loaded.trainable_variables))
    # raw=True: the raw weights of the same checkpoint (benchmarks/ema.py compares the two).
    raw, _ = workdir_lib.load_generator(workdir, raw=True)
    for a, b in zip(raw.weights, plain.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
