"""Tests for colorgan.step: the train step (both networks' updates and their losses against
NumPy formulas, one trace), the EMA generator and the learning-rate schedules. The losses
themselves are tested in test_losses.py, the loop in test_train.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from colorgan import models
from colorgan import step as step_lib
from colorgan.config import TrainConfig
from conftest import changed, snapshot
from test_losses import np_sigmoid_ce

# float32 TF losses against float64 NumPy formulas (means of a few hundred terms).
LOSS_RTOL = 1e-5
# EMA weights: a few float32 multiply-adds per step against float64 on weights of ~0.02-1.
EMA_RTOL, EMA_ATOL = 1e-5, 1e-8
# A learning rate read back from the optimizer (float32) against the float64 cosine formula.
LR_RTOL = 1e-6
# The same float32 graph recomputed (inside vs outside the tf.function; oneDNN may reorder sums).
RECOMPUTE_RTOL = 1e-4
SIZE, BATCH = 32, 2
GAN_LOSSES = ("g_loss", "g_adv", "g_pixel", "d_loss", "d_real", "d_fake", "d_acc")


# ------------------------------------------------------------------------------- helpers
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
    state = step_lib.build_state(models.preset("tiny"), tc)
    batch = synthetic_batch()
    step = step_lib.make_train_step(state, models.preset("tiny"), tc, batch_spec(batch))
    return state, step, batch, tc


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
    state = step_lib.build_state(models.preset("tiny"), tc)
    assert state.discriminator is None and state.d_opt is None
    assert set(state.trackers) == {"g_loss", "g_pixel"}
    batch = synthetic_batch()
    step = step_lib.make_train_step(state, models.preset("tiny"), tc, batch_spec(batch))
    fake = state.generator(batch["l"], training=True)
    target = tf.concat([batch["l"], batch["ab"]], -1)
    want = float(np.mean((np.asarray(target, np.float64) - np.asarray(fake)) ** 2))
    values = step(batch, tf.constant(True))
    assert set(values) == {"g_loss", "g_pixel", "finite"} and bool(values["finite"])
    np.testing.assert_allclose(float(values["g_loss"]), want, rtol=RECOMPUTE_RTOL)
    assert float(values["g_loss"]) == float(values["g_pixel"])  # unet: the pixel loss alone


def test_save_restore_gives_identical_weights_and_step(tmp_path):
    state, step, batch, tc = gan_state()
    step(batch, tf.constant(True))
    step(batch, tf.constant(True))
    path = state.checkpoint.save(str(tmp_path / "ckpt"))
    fresh = step_lib.build_state(models.preset("tiny"), tc)
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


# --------------------------------------------------------------------------- EMA generator
def _by_path(variables) -> dict[str, np.ndarray]:
    return {v.path: np.array(v) for v in variables}


def _checkpointed_objects(state: step_lib.TrainState, directory) -> set[str]:
    """The top-level names a saved checkpoint of `state` holds."""
    path = state.checkpoint.save(os.path.join(str(directory), "ckpt"))
    return {name.split("/")[0] for name, _ in tf.train.list_variables(path)}


def test_ema_weights_follow_the_formula_over_the_recorded_steps(tmp_path):
    decay = 0.2  # below the warm-up's (1 + t) / (10 + t) from t = 2 on: both branches run
    tc = TrainConfig(mode="unet", ema_decay=decay)
    cfg = models.preset("tiny")
    state = step_lib.build_state(cfg, tc)
    g, ema = state.generator, state.ema_generator
    assert state.inference_generator is ema and ema is not g
    expected = _by_path(g.trainable_variables)
    assert set(expected) == set(_by_path(ema.trainable_variables))  # the same layer names
    for path, value in _by_path(ema.weights).items():  # starts as a copy of G
        np.testing.assert_array_equal(value, _by_path(g.weights)[path], err_msg=path)
    step = step_lib.make_train_step(state, cfg, tc, batch_spec(synthetic_batch()))
    for t in range(5):
        step(synthetic_batch(seed=t), tf.constant(True))
        d = min(decay, (1.0 + t) / (10.0 + t))  # t: the step counter before this step
        after = _by_path(g.trainable_variables)
        expected = {p: d * expected[p] + (1 - d) * after[p] for p in expected}
        got = _by_path(ema.trainable_variables)
        for path, value in expected.items():
            np.testing.assert_allclose(got[path], value, rtol=EMA_RTOL, atol=EMA_ATOL,
                                       err_msg=f"{path} after step {t + 1}")
        # BatchNorm statistics are copied from G, not averaged.
        g_stats = _by_path(g.non_trainable_variables)
        for path, value in _by_path(ema.non_trainable_variables).items():
            np.testing.assert_array_equal(value, g_stats[path], err_msg=path)
    assert any(not np.array_equal(expected[p], after[p]) for p in expected)  # EMA lags behind G
    assert {"generator", "ema_generator", "g_opt", "step"} <= _checkpointed_objects(state, tmp_path)


def test_no_ema_generator_without_ema_decay(tmp_path):
    state = step_lib.build_state(models.preset("tiny"), TrainConfig(mode="unet"))
    assert state.ema_generator is None and state.inference_generator is state.generator
    assert "ema_generator" not in _checkpointed_objects(state, tmp_path)


# ----------------------------------------------------------------- learning-rate schedule
def test_cosine_schedule_learning_rate_at_start_middle_end_and_after():
    lr, decay_steps, final = 1e-3, 4, 0.1
    tc = TrainConfig(mode="unet", learning_rate=lr, lr_schedule="cosine",
                     lr_decay_steps=decay_steps, lr_final_fraction=final)
    cfg = models.preset("tiny")
    state = step_lib.build_state(cfg, tc)
    step = step_lib.make_train_step(state, cfg, tc, batch_spec(synthetic_batch()))

    def cosine(t):  # lr * (final + (1 - final) * (1 + cos(pi * min(t, T) / T)) / 2)
        return lr * (final + (1 - final) * 0.5 * (1 + np.cos(np.pi * min(t, decay_steps)
                                                               / decay_steps)))

    seen = {0: float(state.g_opt.learning_rate)}
    for t in range(1, 7):
        step(synthetic_batch(seed=t), tf.constant(True))
        seen[t] = float(state.g_opt.learning_rate)
    for t, value in seen.items():
        np.testing.assert_allclose(value, cosine(t), rtol=LR_RTOL, err_msg=f"step {t}")
    assert seen[0] == pytest.approx(lr) and seen[2] == pytest.approx(lr * (final + 0.45))
    assert seen[4] == seen[6] == pytest.approx(lr * final)  # then it stays at the final value


def test_constant_schedule_keeps_the_learning_rate():
    assert step_lib.learning_rate(3e-4, TrainConfig()) == 3e-4
    state = step_lib.build_state(models.preset("tiny"), TrainConfig(learning_rate=3e-4))
    assert float(state.g_opt.learning_rate) == pytest.approx(3e-4)


@pytest.mark.parametrize("free_fraction", [0.0, 1.0])
def test_the_step_rebalances_only_hint_free_images_without_hinted_rebalance(free_fraction):
    """A classification hint model with every bin weighted 2: rebalanced, g_class is twice the
    plain cross-entropy; --nohinted_rebalance weighs the hinted images 1, so g_class drops
    (towards half when most images get hints), and not at all with --hint_free_fraction=1 (no
    image hinted). Both steps start from the same weights and draw the same hints.
    (losses.compute_losses' own test checks the per-image weights exactly.)"""
    cfg = models.preset("tiny", output_space="ab", head="classification", hint_inputs=True)
    batch = synthetic_batch(n=4)
    g_class = {}
    for rebalance in (True, False):
        tc = TrainConfig(mode="unet", pixel_loss="none", hinted_rebalance=rebalance,
                         hint_free_fraction=free_fraction)
        state = step_lib.build_state(cfg, tc)
        if rebalance:
            weights = state.generator.get_weights()
        else:
            state.generator.set_weights(weights)
        step = step_lib.make_train_step(state, cfg, tc, batch_spec(batch),
                                        class_weights=tf.fill([262], 2.0))
        g_class[rebalance] = float(step(batch, tf.constant(True))["g_class"])
    ratio = g_class[True] / g_class[False]
    if free_fraction == 1.0:
        np.testing.assert_allclose(ratio, 1.0, rtol=RECOMPUTE_RTOL)
    else:  # the geometric draw leaves an image without hints 1 time in 8 (here 1 of 4)
        assert 1.2 < ratio <= 2.0 + RECOMPUTE_RTOL
