"""Tests for colorgan.train (losses, the train step, checkpoints, resume, the loop, the CLI) and
colorgan.workdir (layout, config guard, loading a generator back)."""

from __future__ import annotations

import dataclasses
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import color, config, data, models, train, workdir as workdir_lib
from colorgan.config import TrainConfig
from colorgan.errors import UserError
from conftest import run_main

# float32 TF losses against float64 NumPy formulas (means of a few hundred terms).
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-6
# The same float32 graph recomputed (inside vs outside the tf.function; oneDNN may reorder sums).
RECOMPUTE_RTOL = 1e-4
# Resumed vs uninterrupted run with op determinism: expected bit-identical; 1e-6 allows printing.
RESUME_ATOL = 1e-6
SIZE, BATCH = 32, 2
GAN_LOSSES = ("g_loss", "g_adv", "g_pixel", "d_loss", "d_real", "d_fake", "d_acc")


# ------------------------------------------------------------------------------- helpers
def np_sigmoid_ce(logits, labels) -> float:
    """Mean sigmoid cross-entropy, the stable float64 form: max(x,0) - x*z + log(1 + e^-|x|)."""
    x = np.asarray(logits, np.float64)
    z = np.broadcast_to(np.asarray(labels, np.float64), x.shape)
    return float(np.mean(np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))))


def synthetic_batch(seed: int = 0, n: int = BATCH) -> dict[str, tf.Tensor]:
    """Smooth `l`/`ab` fields in [-1, 1] (learnable, not noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    chans = []
    for _ in range(n * 3):
        fy, fx, ph = rng.uniform(1, 3, 3)
        chans.append(0.9 * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph))
    arr = np.stack(chans, -1).reshape(SIZE, SIZE, n, 3).transpose(2, 0, 1, 3).astype(np.float32)
    return {"l": tf.constant(arr[..., :1]), "ab": tf.constant(arr[..., 1:])}


def batch_spec(batch) -> dict[str, tf.TensorSpec]:
    return {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()}


def gan_state(**train_overrides):
    tc = TrainConfig(mode="gan", **train_overrides)
    state = train.build_state(models.preset("tiny"), tc)
    batch = synthetic_batch()
    step = train.make_train_step(state, tc, "lab", batch_spec(batch))
    return state, step, batch, tc


def snapshot(variables) -> list[np.ndarray]:
    return [np.array(v) for v in variables]


def changed(before, variables) -> list[bool]:
    return [not np.array_equal(b, np.asarray(v)) for b, v in zip(before, variables)]


def with_changes(cfg: config.Config, *, model=None, train=None) -> config.Config:
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, **(model or {})),
        train=dataclasses.replace(cfg.train, **(train or {})))


@pytest.fixture
def op_determinism():
    """train(deterministic=True) turns op determinism on process-wide (TF has no public switch
    back); restore the previous state so later tests run as they would alone."""
    from tensorflow.python.framework import config as tf_framework_config  # noqa: PLC0415

    was_enabled = tf_framework_config.is_op_determinism_enabled()
    yield
    if not was_enabled:
        tf_framework_config.disable_op_determinism()


# --------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(4, 1), (2, 4, 4, 1)])  # dcgan head, PatchGAN map
def test_discriminator_loss_matches_sigmoid_cross_entropy(shape, smoothing):
    rng = np.random.default_rng(0)
    real = rng.normal(0, 3, shape).astype(np.float32)
    fake = rng.normal(0, 3, shape).astype(np.float32)
    real.flat[0], fake.flat[0] = 40.0, -40.0  # far in the tails: the stable form must hold
    total, r, f = train.discriminator_loss(tf.constant(real), tf.constant(fake), smoothing)
    want_r = np_sigmoid_ce(real, 1.0 - smoothing)
    want_f = np_sigmoid_ce(fake, 0.0)
    np.testing.assert_allclose(float(r), want_r, rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(float(f), want_f, rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(float(total), want_r + want_f, rtol=LOSS_RTOL, atol=LOSS_ATOL)


def test_discriminator_loss_smoothing_is_one_sided():
    logits = tf.constant([[2.0], [-1.0]])
    _, r0, f0 = train.discriminator_loss(logits, logits, 0.0)
    _, r1, f1 = train.discriminator_loss(logits, logits, 0.2)
    assert float(f0) == float(f1)  # fake targets stay 0
    # d/ds of the real loss is mean(x) = 0.5 > 0: smoothing raises it by 0.2 * 0.5 exactly.
    np.testing.assert_allclose(float(r1) - float(r0), 0.2 * 0.5, rtol=LOSS_RTOL)


@pytest.mark.parametrize("shape", [(4, 1), (2, 4, 4, 1)])
def test_generator_adversarial_loss_is_minus_log_sigmoid(shape):
    fake = np.random.default_rng(1).normal(0, 3, shape).astype(np.float32)
    fake.flat[0] = -40.0
    want = np_sigmoid_ce(fake, 1.0)  # = mean(-log sigmoid(x))
    np.testing.assert_allclose(float(train.generator_adversarial_loss(tf.constant(fake))), want,
                               rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(want, np.mean(np.log1p(np.exp(-fake.astype(np.float64)))),
                               rtol=1e-12)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_pixel_loss(kind):
    rng = np.random.default_rng(2)
    target = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    pred = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    diff = target.astype(np.float64) - pred
    want = np.mean(np.abs(diff)) if kind == "l1" else np.mean(diff ** 2)
    got = train.pixel_loss(kind, tf.constant(target), tf.constant(pred))
    assert got.dtype == tf.float32 and got.shape == ()
    np.testing.assert_allclose(float(got), want, rtol=LOSS_RTOL)
    # bfloat16 predictions (mixed precision) are compared in float32.
    got16 = train.pixel_loss(kind, tf.constant(target), tf.cast(pred, tf.bfloat16))
    assert got16.dtype == tf.float32
    np.testing.assert_allclose(float(got16), want, rtol=2e-2)


# ----------------------------------------------------------------------------- train step
def test_gan_steps_change_both_networks_and_losses_match_the_formulas():
    state, step, batch, tc = gan_state()
    g, d = state.generator, state.discriminator
    target = tf.concat([batch["l"], batch["ab"]], -1)
    # What the first step must compute (same weights, training-mode BatchNorm, no dropout).
    fake = g(batch["l"], training=True)
    real_logits = np.asarray(d([batch["l"], target], training=True))
    fake_logits = np.asarray(d([batch["l"], fake], training=True))
    want_pixel = float(np.mean((np.asarray(target, np.float64) - np.asarray(fake)) ** 2))
    g_before, d_before = snapshot(g.trainable_variables), snapshot(d.trainable_variables)

    first = {k: float(v) for k, v in step(batch, tf.constant(True)).items()}
    second = {k: float(v) for k, v in step(batch, tf.constant(True)).items()}
    assert first.pop("finite") == second.pop("finite") == 1.0

    assert set(first) == set(GAN_LOSSES)
    for values in (first, second):
        assert all(np.isfinite(v) for v in values.values()), values
        np.testing.assert_allclose(values["g_loss"],
                                   values["g_adv"] + tc.pixel_weight * values["g_pixel"],
                                   rtol=LOSS_RTOL)
        np.testing.assert_allclose(values["d_loss"], values["d_real"] + values["d_fake"],
                                   rtol=LOSS_RTOL)
        assert 0.0 <= values["d_acc"] <= 1.0
    np.testing.assert_allclose(first["g_pixel"], want_pixel, rtol=RECOMPUTE_RTOL)
    np.testing.assert_allclose(first["d_real"], np_sigmoid_ce(real_logits, 1.0), rtol=RECOMPUTE_RTOL)
    np.testing.assert_allclose(first["d_fake"], np_sigmoid_ce(fake_logits, 0.0), rtol=RECOMPUTE_RTOL)
    np.testing.assert_allclose(first["g_adv"], np_sigmoid_ce(fake_logits, 1.0), rtol=RECOMPUTE_RTOL)
    want_acc = 0.5 * (np.mean(real_logits > 0) + np.mean(fake_logits < 0))
    assert first["d_acc"] == pytest.approx(want_acc)
    assert first != second
    assert all(changed(g_before, g.trainable_variables))
    assert all(changed(d_before, d.trainable_variables))
    assert int(state.step) == 2
    assert int(state.g_opt.iterations) == 2 and int(state.d_opt.iterations) == 2
    # Trackers hold the mean of both steps.
    np.testing.assert_allclose(float(state.trackers["g_loss"].result()),
                               (first["g_loss"] + second["g_loss"]) / 2, rtol=LOSS_RTOL)


def test_update_d_false_leaves_discriminator_unchanged():
    state, step, batch, _ = gan_state()
    g, d = state.generator, state.discriminator
    g_before, d_before = snapshot(g.trainable_variables), snapshot(d.trainable_variables)
    d_opt_before = snapshot(state.d_opt.variables)
    values = step(batch, tf.constant(False))
    assert all(np.isfinite(float(v)) for v in values.values())
    assert all(changed(g_before, g.trainable_variables))
    assert not any(changed(d_before, d.trainable_variables))
    assert not any(changed(d_opt_before, state.d_opt.variables))  # no Adam slot or count moved
    assert int(state.d_opt.iterations) == 0 and int(state.g_opt.iterations) == 1


def _slots(opt) -> list:
    return [v for v in opt.variables if v.path.endswith(("_momentum", "_velocity"))]


def test_each_optimizer_holds_only_its_own_networks_slots():
    state, _, _, _ = gan_state()
    for opt, net, other in ((state.g_opt, state.generator, state.discriminator),
                            (state.d_opt, state.discriminator, state.generator)):
        slots = _slots(opt)
        own = net.trainable_variables
        assert len(slots) == 2 * len(own)  # Adam: one momentum and one velocity per variable
        assert sorted(tuple(v.shape) for v in slots) == sorted(
            2 * [tuple(v.shape) for v in own])
        own_layers = {layer.name for layer in net.layers if layer.trainable_weights}
        other_layers = {layer.name for layer in other.layers if layer.trainable_weights}
        for v in slots:
            name = v.path.split("/")[-1]
            assert any(name.startswith(f"{layer}_") for layer in own_layers), v.path
            assert not any(name.startswith(f"{layer}_") for layer in other_layers), v.path


def test_gradients_go_only_to_their_own_network():
    # With one learning rate at 0, that network must not move even though the other's loss
    # depends on it (D's loss on G's output, G's loss through D).
    state, step, batch, _ = gan_state(learning_rate=0.0)
    g_before = snapshot(state.generator.trainable_variables)
    d_before = snapshot(state.discriminator.trainable_variables)
    step(batch, tf.constant(True))
    assert not any(changed(g_before, state.generator.trainable_variables))
    assert all(changed(d_before, state.discriminator.trainable_variables))

    state, step, batch, _ = gan_state(d_learning_rate=0.0)
    g_before = snapshot(state.generator.trainable_variables)
    d_before = snapshot(state.discriminator.trainable_variables)
    step(batch, tf.constant(True))
    assert all(changed(g_before, state.generator.trainable_variables))
    assert not any(changed(d_before, state.discriminator.trainable_variables))


def test_train_step_traces_once():
    state, step, _, _ = gan_state()
    for i in range(4):
        step(synthetic_batch(seed=i), tf.constant(i % 2 == 0))
    assert step.experimental_get_tracing_count() == 1
    assert int(state.step) == 4
    assert int(state.d_opt.iterations) == 2 and int(state.g_opt.iterations) == 4


def test_unet_mode_has_no_discriminator():
    tc = TrainConfig(mode="unet")
    state = train.build_state(models.preset("tiny"), tc)
    assert state.discriminator is None and state.d_opt is None
    assert set(state.trackers) == {"g_loss"}
    batch = synthetic_batch()
    step = train.make_train_step(state, tc, "lab", batch_spec(batch))
    fake = state.generator(batch["l"], training=True)
    target = tf.concat([batch["l"], batch["ab"]], -1)
    want = float(np.mean((np.asarray(target, np.float64) - np.asarray(fake)) ** 2))
    values = step(batch, tf.constant(True))
    assert set(values) == {"g_loss", "finite"} and bool(values["finite"])
    np.testing.assert_allclose(float(values["g_loss"]), want, rtol=RECOMPUTE_RTOL)


def test_save_restore_gives_identical_weights_and_step(tmp_path):
    state, step, batch, tc = gan_state()
    step(batch, tf.constant(True))
    step(batch, tf.constant(True))
    path = state.checkpoint.save(str(tmp_path / "ckpt"))
    fresh = train.build_state(models.preset("tiny"), tc)
    pairs = [(state.generator.weights, fresh.generator.weights),
             (state.discriminator.weights, fresh.discriminator.weights),
             (state.g_opt.variables, fresh.g_opt.variables),
             (state.d_opt.variables, fresh.d_opt.variables)]
    assert int(fresh.step) == 0
    assert any(changed(snapshot(state.generator.weights), fresh.generator.weights))  # new init
    fresh.checkpoint.restore(path).assert_consumed()
    assert int(fresh.step) == int(state.step) == 2
    for saved, restored in pairs:
        assert len(saved) == len(restored)
        for a, b in zip(saved, restored):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


# ------------------------------------------------------------------------ the loop / resume
def test_resume_matches_uninterrupted_run(tiny_config, tmp_path, op_determinism):
    cfg = with_changes(tiny_config, model=dict(dropout_blocks=1),
                       train=dict(mode="gan", deterministic=True, log_every_steps=1, steps=6))
    whole = train.train(cfg, str(tmp_path / "whole"))
    split_dir = str(tmp_path / "split")
    first = train.train(with_changes(cfg, train=dict(steps=3)), split_dir)
    second = train.train(cfg, split_dir)

    assert whole.step == second.step == 6 and first.step == 3
    assert [h["step"] for h in whole.history] == [1, 2, 3, 4, 5, 6]
    assert [h["step"] for h in first.history] == [1, 2, 3]
    assert [h["step"] for h in second.history] == [4, 5, 6]
    for a, b in zip(whole.history, first.history + second.history):
        assert set(a) == set(b) == {"step", "images_per_s", *GAN_LOSSES}
        for name in GAN_LOSSES:
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=RESUME_ATOL,
                                       err_msg=f"{name} at step {a['step']}")


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


def test_sample_grid_png(tiny_workdir, tiny_config):
    path = os.path.join(tiny_workdir, "samples", "step_0000006.png")
    grid = np.asarray(Image.open(path))
    rows = min(tiny_config.data.batch_size, train.SAMPLE_IMAGES)
    s = tiny_config.data.image_size
    assert grid.shape == (rows * s, 3 * s, 3) and grid.dtype == np.uint8
    gray = grid[:, :s].astype(int)
    # Left column: the input with a = b = 0, i.e. neutral gray (R = G = B up to rounding).
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 2
    assert np.abs(gray[..., 1] - gray[..., 2]).max() <= 2
    truth = grid[:, 2 * s:].astype(int)
    assert np.abs(truth[..., 0] - truth[..., 2]).max() > 20  # the ground truth is in colour


def test_tensorboard_scalars_at_each_step(tiny_workdir):
    steps_by_tag: dict[str, list[int]] = {}
    tb = os.path.join(tiny_workdir, "tb", "train")
    for f in sorted(os.listdir(tb)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(tb, f)):
            for value in event.summary.value:
                steps_by_tag.setdefault(value.tag, []).append(event.step)
    assert sorted(steps_by_tag["g_loss"]) == [1, 2, 3, 4, 5, 6]  # log_every_steps=1
    assert set(steps_by_tag["gray_pred_truth"]) == {3, 6}  # sample_every_steps=3


def test_one_sample_summary_per_step(tiny_workdir):
    # The final sample grid is written again when the last step is already a sample step
    # (the checkpoint at the end has a guard against this; the sample does not).
    tb = os.path.join(tiny_workdir, "tb", "train")
    sample_steps = [event.step for f in sorted(os.listdir(tb))
                    for event in tf.compat.v1.train.summary_iterator(os.path.join(tb, f))
                    for value in event.summary.value if value.tag == "gray_pred_truth"]
    assert sorted(sample_steps) == [3, 6]


def test_rerun_with_different_model_config_raises(tiny_workdir, tiny_config):
    before = open(os.path.join(tiny_workdir, "config.json"), encoding="utf-8").read()
    with pytest.raises(UserError, match="base_filters: 8 -> 16"):
        train.train(with_changes(tiny_config, model=dict(base_filters=16)), tiny_workdir)
    after = open(os.path.join(tiny_workdir, "config.json"), encoding="utf-8").read()
    assert before == after


def test_more_steps_continue_a_run(tiny_workdir, tiny_config, tmp_path):
    workdir = str(tmp_path / "copy")
    shutil.copytree(tiny_workdir, workdir)
    result = train.train(with_changes(tiny_config, train=dict(steps=8)), workdir)
    assert result.step == 8
    assert [h["step"] for h in result.history] == [7, 8]
    assert tf.train.latest_checkpoint(os.path.join(workdir, "ckpt")).endswith("ckpt-8")
    assert workdir_lib.read_config(workdir).train.steps == 8


# -------------------------------------------------------------------------------- the CLI
def test_cli_end_to_end(tmp_path):
    workdir = str(tmp_path / "run")
    assert run_main(train.main, ["--recipe=tiny", f"--workdir={workdir}"]) == 0
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "ckpt"))
    assert latest is not None and latest.endswith("ckpt-6")
    assert os.path.isfile(latest + ".index")
    # A different model config in the same workdir: a user error, nothing overwritten.
    assert run_main(train.main, ["--recipe=tiny", f"--workdir={workdir}",
                                 "--base_filters=16"]) == 2
    assert workdir_lib.read_config(workdir).model.base_filters == 8
    # A longer run: allowed, continues to the new step count.
    assert run_main(train.main, ["--recipe=tiny", f"--workdir={workdir}", "--steps=7"]) == 0
    assert tf.train.latest_checkpoint(os.path.join(workdir, "ckpt")).endswith("ckpt-7")


def test_cli_bad_flags(tmp_path):
    workdir = str(tmp_path / "bad")
    assert run_main(train.main, ["--recipe=tiny", f"--workdir={workdir}", "--image_size=abc"]) == 1
    assert run_main(train.main, ["--recipe=tiny"]) == 1  # --workdir is required
    assert run_main(train.main, ["--recipe=nope", f"--workdir={workdir}"]) == 1
    assert not os.path.exists(workdir)


def test_non_finite_loss_raises_naming_the_step(tiny_config, tmp_path, monkeypatch):
    def nan_pixel_loss(kind, target, pred):
        return tf.reduce_mean(tf.cast(pred, tf.float32)) * float("nan")

    monkeypatch.setattr(train, "pixel_loss", nan_pixel_loss)
    workdir = str(tmp_path / "nan")
    cfg = with_changes(tiny_config, train=dict(steps=4, log_every_steps=2))
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 1 .*--nonfinite=skip"):
        train.train(cfg, workdir)
    # NaN weights are never checkpointed (the first save would be at step 3).
    assert tf.train.latest_checkpoint(os.path.join(workdir, "ckpt")) is None


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


# ---------------------------------------------------------------------- mixed precision
def test_bfloat16_training_is_finite_and_restores_policy(tiny_config, tmp_path):
    assert keras.config.dtype_policy().name == "float32"
    with workdir_lib.precision("bfloat16"):
        state = train.build_state(tiny_config.model, TrainConfig(mode="gan"))
    assert keras.config.dtype_policy().name == "float32"
    conv = state.generator.get_layer("enc1_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert state.generator.output.dtype == "float32"  # tanh output kept in float32
    assert state.discriminator.output.dtype == "float32"

    cfg = with_changes(tiny_config, train=dict(mode="gan", mixed_precision="bfloat16", steps=2,
                                               log_every_steps=1))
    result = train.train(cfg, str(tmp_path / "bf16"))
    assert result.step == 2 and [h["step"] for h in result.history] == [1, 2]
    for entry in result.history:
        assert set(entry) == {"step", "images_per_s", *GAN_LOSSES}
        assert all(np.isfinite(v) for v in entry.values()), entry
        assert entry["g_pixel"] > 0 and entry["d_loss"] > 0
    assert keras.config.dtype_policy().name == "float32"
    # Its checkpoint loads back as a float32 generator.
    g, _ = workdir_lib.load_generator(str(tmp_path / "bf16"))
    assert g.get_layer("enc1_conv").compute_dtype == "float32"


def test_init_from_copies_the_generator_whatever_the_discriminator(tiny_workdir, tiny_config,
                                                                   tmp_path):
    # The NoGAN schedule: a pixel-loss U-Net run, then a GAN with its own D starts from its G.
    cfg = with_changes(tiny_config, model=dict(discriminator="patch", disc_filters=4),
                       train=dict(mode="gan", steps=0, init_from=tiny_workdir))
    result = train.train(cfg, str(tmp_path / "gan"))
    source, _ = workdir_lib.load_generator(tiny_workdir)
    for a, b in zip(source.get_weights(), result.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = with_changes(cfg, model=dict(base_filters=tiny_config.model.base_filters * 2))
    with pytest.raises(UserError, match="different generator config"):
        train.train(other, str(tmp_path / "wider"))


def test_validate_reports_colorfulness_ratio_and_errors(tiny_config):
    """A generator that outputs neutral colour: ratio 0, ab error = the truth's mean |ab|."""
    generator = models.build_generator(tiny_config.model)
    out_conv = generator.get_layer("out_conv")
    out_conv.set_weights([np.zeros_like(w) for w in out_conv.get_weights()])
    dataset = data.make_eval_dataset(tiny_config.data, "train")
    scores = train.validate(generator, dataset, batches=1)
    batch = next(iter(dataset))
    assert set(scores) == {"l1", "psnr", "colorfulness_ratio"}
    assert scores["colorfulness_ratio"] < 1e-3
    np.testing.assert_allclose(scores["l1"], color.AB_SCALE * np.mean(np.abs(batch["ab"])), rtol=1e-4)
