"""colorgan.losses against NumPy (float64) formulas and values worked out by hand, and the
train step's replica scaling (the losses themselves never divide by the replica count)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan import bins, distribute, hints, losses, models
from colorgan import step as step_lib
from colorgan.config import TrainConfig
from test_bins import np_soft_encode, np_squared_distances, random_gamut_ab
from test_upsampling import np_bilinear_resize

# float32 TF losses against float64 NumPy formulas (means of a few hundred terms).
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-6
# Cross-entropies over 262 bins (log-softmax of float32 logits, then a weighted sum): ~1e-6
# relative per pixel, averaged.
CE_RTOL = 1e-5
# The minimum cross-entropy, at logits = log z computed in float32 (5 terms per pixel).
ENTROPY_RTOL = 1e-4
# bfloat16 predictions keep 8 mantissa bits: 2^-8 = 0.4% per value, averaged over 384 terms.
BF16_RTOL = 2e-2
# Two float64 NumPy forms of the same expression.
FLOAT64_RTOL = 1e-12
# 1 device against 2 replicas: the same float32 math summed in another order (cross-replica
# sums of gradients and of BatchNorm moments), as in test_distribute.
STRATEGY_RTOL, STRATEGY_ATOL = 1e-4, 1e-6
# SGD learning rate for the replica-scaling test: large enough that the update is far above
# float32 noise on weights of ~0.02, small enough that nothing saturates.
SGD_LR = 0.5
LN2 = np.log(2.0)
SIZE = 32


# ------------------------------------------------------------------------------- helpers
def np_sigmoid_ce(logits, labels) -> float:
    """Mean sigmoid cross-entropy, the stable float64 form: max(x,0) - x*z + log(1 + e^-|x|)."""
    x = np.asarray(logits, np.float64)
    z = np.broadcast_to(np.asarray(labels, np.float64), x.shape)
    return float(np.mean(np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))))


def np_log_softmax(logits) -> np.ndarray:
    x = np.asarray(logits, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), -1, keepdims=True))


def np_classification_loss(logits, ab, weights=None) -> float:
    """Zhang et al. eq. 2: mean over pixels of w(nearest bin) * -sum_q z_q log p_q."""
    per_pixel = -np.sum(np_soft_encode(ab) * np_log_softmax(logits), -1)
    if weights is not None:
        per_pixel = per_pixel * np.asarray(weights)[np.argmin(np_squared_distances(ab), -1)]
    return float(np.mean(per_pixel))


def np_mean_colour(logits) -> np.ndarray:
    """The classification head's mean colour at T = 1: softmax(logits) @ bin centres."""
    return np.exp(np_log_softmax(logits)) @ (np.asarray(bins.BIN_CENTERS_LAB) / 110.0)


def block_mean(x: np.ndarray, stride: int) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // stride, stride, w // stride, stride, c).mean(axis=(2, 4))


def colour_batch(n: int = 2, size: int = SIZE, seed: int = 0) -> dict[str, tf.Tensor]:
    """A batch whose ab are real sRGB colours (so soft targets sit inside the gamut)."""
    rng = np.random.default_rng(seed)
    ab = random_gamut_ab(rng, n * size * size).reshape(n, size, size, 2)
    l = rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32)
    return {"l": tf.constant(l), "ab": tf.constant(ab)}


def classification_cfg(**overrides):
    return models.preset("tiny", head="classification", output_space="ab", **overrides)


# -------------------------------------------------------------------------- pixel losses
def test_pixel_loss_known_values():
    target = tf.constant([[0.0, 1.0], [-1.0, 0.5]])
    pred = tf.zeros([2, 2])
    assert float(losses.pixel_loss("l1", target, pred)) == pytest.approx((0 + 1 + 1 + 0.5) / 4)
    assert float(losses.pixel_loss("l2", target, pred)) == pytest.approx((0 + 1 + 1 + 0.25) / 4)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_pixel_loss(kind):
    rng = np.random.default_rng(2)
    target = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    pred = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    diff = target.astype(np.float64) - pred
    want = np.mean(np.abs(diff)) if kind == "l1" else np.mean(diff ** 2)
    got = losses.pixel_loss(kind, tf.constant(target), tf.constant(pred))
    assert got.dtype == tf.float32 and got.shape == ()
    np.testing.assert_allclose(float(got), want, rtol=LOSS_RTOL)
    # bfloat16 predictions (mixed precision) are compared in float32.
    got16 = losses.pixel_loss(kind, tf.constant(target), tf.cast(pred, tf.bfloat16))
    assert got16.dtype == tf.float32
    np.testing.assert_allclose(float(got16), want, rtol=BF16_RTOL)


@pytest.mark.parametrize("kind", ["l3", "none", "L1"])
def test_unknown_pixel_loss_raises(kind):
    with pytest.raises(ValueError, match=f"unknown pixel_loss '{kind}'; valid: l1, l2"):
        losses.pixel_loss(kind, tf.zeros([2]), tf.zeros([2]))


# ------------------------------------------------------------------------ adversarial losses
def test_bce_with_logits_known_values():
    # At logit 0 the cross-entropy is ln 2 whatever the label.
    assert float(losses.bce_with_logits(0.3, tf.zeros([3, 1]))) == pytest.approx(LN2)
    # -log sigmoid(2) = log(1 + e^-2); the label broadcasts over the logits.
    assert float(losses.bce_with_logits(1.0, tf.fill([2, 2], 2.0))) == pytest.approx(
        np.log1p(np.exp(-2.0)), rel=LOSS_RTOL)
    # Per-element labels: mean of -log(1 - sigmoid(-1)) = log(1 + e^-1) and log(1 + e^1) at 1.
    got = losses.bce_with_logits(tf.constant([0.0, 1.0]), tf.constant([-1.0, -1.0]))
    assert float(got) == pytest.approx((np.log1p(np.exp(-1.0)) + np.log1p(np.e)) / 2,
                                       rel=LOSS_RTOL)


def test_discriminator_and_generator_losses_at_zero_logits():
    total, real, fake = losses.discriminator_loss(tf.zeros([4, 1]), tf.zeros([4, 1]))
    assert float(real) == pytest.approx(LN2) and float(fake) == pytest.approx(LN2)
    assert float(total) == pytest.approx(2 * LN2)  # the GAN equilibrium: D cannot tell
    assert float(losses.generator_adversarial_loss(tf.zeros([4, 1]))) == pytest.approx(LN2)


def test_label_smoothing_known_value():
    # Real logit 2, target 0.9: max(2, 0) - 2 * 0.9 + log(1 + e^-2) = 0.2 + 0.126928.
    _, real, fake = losses.discriminator_loss(tf.constant([[2.0]]), tf.constant([[2.0]]), 0.1)
    assert float(real) == pytest.approx(0.2 + np.log1p(np.exp(-2.0)), rel=LOSS_RTOL)
    # The fake side is not smoothed: -log(1 - sigmoid(2)) = 2 + log(1 + e^-2).
    assert float(fake) == pytest.approx(2.0 + np.log1p(np.exp(-2.0)), rel=LOSS_RTOL)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(4, 1), (2, 4, 4, 1)])  # dcgan head, PatchGAN map
def test_discriminator_loss_matches_sigmoid_cross_entropy(shape, smoothing):
    rng = np.random.default_rng(0)
    real = rng.normal(0, 3, shape).astype(np.float32)
    fake = rng.normal(0, 3, shape).astype(np.float32)
    real.flat[0], fake.flat[0] = 40.0, -40.0  # far in the tails: the stable form must hold
    total, r, f = losses.discriminator_loss(tf.constant(real), tf.constant(fake), smoothing)
    want_r = np_sigmoid_ce(real, 1.0 - smoothing)
    want_f = np_sigmoid_ce(fake, 0.0)
    np.testing.assert_allclose(float(r), want_r, rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(float(f), want_f, rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(float(total), want_r + want_f, rtol=LOSS_RTOL, atol=LOSS_ATOL)


def test_discriminator_loss_smoothing_is_one_sided():
    logits = tf.constant([[2.0], [-1.0]])
    _, r0, f0 = losses.discriminator_loss(logits, logits, 0.0)
    _, r1, f1 = losses.discriminator_loss(logits, logits, 0.2)
    assert float(f0) == float(f1)  # fake targets stay 0
    # d/ds of the real loss is mean(x) = 0.5 > 0: smoothing raises it by 0.2 * 0.5 exactly.
    np.testing.assert_allclose(float(r1) - float(r0), 0.2 * 0.5, rtol=LOSS_RTOL)


@pytest.mark.parametrize("shape", [(4, 1), (2, 4, 4, 1)])
def test_generator_adversarial_loss_is_minus_log_sigmoid(shape):
    fake = np.random.default_rng(1).normal(0, 3, shape).astype(np.float32)
    fake.flat[0] = -40.0
    want = np_sigmoid_ce(fake, 1.0)  # = mean(-log sigmoid(x))
    np.testing.assert_allclose(float(losses.generator_adversarial_loss(tf.constant(fake))), want,
                               rtol=LOSS_RTOL, atol=LOSS_ATOL)
    np.testing.assert_allclose(want, np.mean(np.log1p(np.exp(-fake.astype(np.float64)))),
                               rtol=FLOAT64_RTOL)


# ----------------------------------------------------------------------- classification
def test_classification_loss_matches_soft_target_cross_entropy():
    rng = np.random.default_rng(3)
    ab = random_gamut_ab(rng, 2 * 3 * 4).reshape(2, 3, 4, 2)
    logits = rng.normal(0, 2, (2, 3, 4, 262)).astype(np.float32)
    weights = rng.uniform(0.2, 5.0, 262).astype(np.float32)
    got = losses.classification_loss(tf.constant(logits), tf.constant(ab))
    np.testing.assert_allclose(float(got), np_classification_loss(logits, ab), rtol=CE_RTOL)
    got_w = losses.classification_loss(tf.constant(logits), tf.constant(ab), tf.constant(weights))
    np.testing.assert_allclose(float(got_w), np_classification_loss(logits, ab, weights),
                               rtol=CE_RTOL)
    assert got_w.dtype == tf.float32 and got_w.shape == ()


def test_classification_loss_known_values():
    # Uniform logits: -sum_q z_q log(1/Q) = log Q whatever the (normalised) target.
    ab = tf.constant(random_gamut_ab(np.random.default_rng(4), 6).reshape(1, 2, 3, 2))
    np.testing.assert_allclose(float(losses.classification_loss(tf.zeros([1, 2, 3, 262]), ab)),
                               np.log(262), rtol=CE_RTOL)
    # Weights of 2 everywhere double it; bfloat16 logits are scored in float32.
    np.testing.assert_allclose(
        float(losses.classification_loss(tf.zeros([1, 2, 3, 262], tf.bfloat16), ab,
                                         tf.fill([262], 2.0))), 2 * np.log(262), rtol=CE_RTOL)
    # The minimum is the target's own entropy, reached at logits = log z (finite logits: the
    # bins outside z's support get log 1e-30, a probability mass of 257e-30).
    z = np_soft_encode(ab.numpy())
    logits = np.log(np.maximum(z, 1e-30)).astype(np.float32)
    entropy = -np.sum(np.where(z > 0, z * np.log(np.where(z > 0, z, 1)), 0), -1).mean()
    np.testing.assert_allclose(float(losses.classification_loss(tf.constant(logits), ab)),
                               entropy, rtol=ENTROPY_RTOL)


def test_downsample_ab_is_the_block_mean():
    ab = np.random.default_rng(5).uniform(-1, 1, (2, 8, 12, 2)).astype(np.float32)
    np.testing.assert_array_equal(losses.downsample_ab(tf.constant(ab), 1).numpy(), ab)
    for stride in (2, 4):
        np.testing.assert_allclose(losses.downsample_ab(tf.constant(ab), stride).numpy(),
                                   block_mean(ab, stride), atol=LOSS_ATOL)


# ------------------------------------------------------------------------ compute_losses
def test_compute_losses_unet_regression():
    cfg, tc = models.preset("tiny"), TrainConfig(mode="unet", pixel_loss="l2")
    batch = colour_batch()
    g_out = np.random.default_rng(6).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    values = losses.compute_losses(tf.constant(g_out), None, None, batch, cfg, tc)
    assert tuple(values) == losses.loss_names(cfg, tc) == ("g_loss", "g_pixel")
    target = np.concatenate([batch["l"].numpy(), batch["ab"].numpy()], -1)  # Lab: l ++ ab
    want = np.mean((target.astype(np.float64) - g_out) ** 2)
    np.testing.assert_allclose(float(values["g_pixel"]), want, rtol=LOSS_RTOL)
    assert float(values["g_loss"]) == float(values["g_pixel"])
    # An ab model compares ab only.
    cfg_ab = models.preset("tiny", output_space="ab")
    values = losses.compute_losses(tf.constant(g_out[..., 1:]), None, None, batch, cfg_ab,
                                   dataclasses.replace(tc, pixel_loss="l1"))
    np.testing.assert_allclose(float(values["g_loss"]),
                               np.mean(np.abs(batch["ab"].numpy() - g_out[..., 1:])),
                               rtol=LOSS_RTOL)


@pytest.mark.parametrize("pixel_loss", ["l1", "none"])
def test_compute_losses_unet_classification(pixel_loss):
    cfg = classification_cfg()
    tc = TrainConfig(mode="unet", pixel_loss=pixel_loss, class_weight=0.7)
    batch = colour_batch(size=8)
    logits = np.random.default_rng(7).normal(0, 2, (2, 8, 8, 262)).astype(np.float32)
    weights = np.random.default_rng(8).uniform(0.5, 2.0, 262).astype(np.float32)
    values = losses.compute_losses(tf.constant(logits), None, None, batch, cfg, tc,
                                   tf.constant(weights))
    names = ("g_loss", "g_class") if pixel_loss == "none" else ("g_loss", "g_pixel", "g_class")
    assert tuple(values) == losses.loss_names(cfg, tc) == names
    want_class = np_classification_loss(logits, batch["ab"].numpy(), weights)
    np.testing.assert_allclose(float(values["g_class"]), want_class, rtol=CE_RTOL)
    reconstruction = 0.7 * want_class
    if pixel_loss == "l1":
        # The pixel loss scores the decoded mean colour (temperature 1).
        want_pixel = np.mean(np.abs(batch["ab"].numpy() - np_mean_colour(logits)))
        np.testing.assert_allclose(float(values["g_pixel"]), want_pixel, rtol=LOSS_RTOL)
        reconstruction += want_pixel
    np.testing.assert_allclose(float(values["g_loss"]), reconstruction, rtol=CE_RTOL)


def test_hinted_images_skip_the_rebalancing_without_hinted_rebalance():
    """--nohinted_rebalance: an image given hints weighs every bin 1, the others keep the
    rebalancing weights; with it (the default) every image is rebalanced."""
    cfg = classification_cfg()
    batch = colour_batch(size=8)
    logits = np.random.default_rng(9).normal(0, 2, (2, 8, 8, 262)).astype(np.float32)
    weights = np.random.default_rng(10).uniform(0.2, 5.0, 262).astype(np.float32)
    ab = batch["ab"].numpy()
    hinted = tf.constant([True, False])
    def g_class(hinted_rebalance):
        tc = TrainConfig(mode="unet", pixel_loss="none", hinted_rebalance=hinted_rebalance)
        return float(losses.compute_losses(tf.constant(logits), None, None, batch, cfg, tc,
                                           tf.constant(weights), hinted)["g_class"])
    per_image = [np_classification_loss(logits[i:i + 1], ab[i:i + 1], w)
                 for i, w in ((0, None), (1, weights))]  # equal pixel counts: mean of means
    np.testing.assert_allclose(g_class(False), np.mean(per_image), rtol=CE_RTOL)
    np.testing.assert_allclose(g_class(True), np_classification_loss(logits, ab, weights),
                               rtol=CE_RTOL)
    assert g_class(False) != pytest.approx(g_class(True), rel=1e-3)


def test_hinted_marks_the_images_with_any_hint():
    hint_map = np.zeros((3, 4, 4, 3), np.float32)
    hint_map[1, 2, 3] = [0.1, -0.2, 1.0]
    assert hints.hinted(tf.constant(hint_map)).numpy().tolist() == [False, True, False]
    assert hints.hinted(None) is None


def test_compute_losses_gan():
    cfg = models.preset("tiny")
    tc = TrainConfig(mode="gan", pixel_loss="l1", pixel_weight=10.0, label_smoothing=0.1)
    batch = colour_batch()
    rng = np.random.default_rng(9)
    g_out = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    d_real = rng.normal(0, 2, (2, 4, 4, 1)).astype(np.float32)
    d_fake = rng.normal(0, 2, (2, 4, 4, 1)).astype(np.float32)
    values = losses.compute_losses(tf.constant(g_out), tf.constant(d_real), tf.constant(d_fake),
                                   batch, cfg, tc)
    assert tuple(values) == losses.loss_names(cfg, tc) == (
        "g_loss", "g_adv", "g_pixel", "d_loss", "d_real", "d_fake", "d_acc")
    target = np.concatenate([batch["l"].numpy(), batch["ab"].numpy()], -1)
    want = {"g_pixel": np.mean(np.abs(target.astype(np.float64) - g_out)),
            "g_adv": np_sigmoid_ce(d_fake, 1.0),
            "d_real": np_sigmoid_ce(d_real, 0.9),
            "d_fake": np_sigmoid_ce(d_fake, 0.0),
            "d_acc": 0.5 * (np.mean(d_real > 0) + np.mean(d_fake < 0))}
    want["g_loss"] = want["g_adv"] + 10.0 * want["g_pixel"]
    want["d_loss"] = want["d_real"] + want["d_fake"]
    for name, value in want.items():
        np.testing.assert_allclose(float(values[name]), value, rtol=LOSS_RTOL, err_msg=name)


def test_output_stride_pixel_loss_compares_the_bilinearly_upsampled_prediction():
    cfg = models.preset("tiny", output_space="ab", output_stride=2)
    tc = TrainConfig(mode="unet", pixel_loss="l2")
    batch = colour_batch()
    g_out = np.random.default_rng(10).uniform(-1, 1, (2, SIZE // 2, SIZE // 2, 2))
    values = losses.compute_losses(tf.constant(g_out, tf.float32), None, None, batch, cfg, tc)
    upsampled = np_bilinear_resize(g_out.astype(np.float32), (SIZE, SIZE))
    want = np.mean((batch["ab"].numpy() - upsampled) ** 2)
    np.testing.assert_allclose(float(values["g_pixel"]), want, rtol=LOSS_RTOL)
    # Not the same as comparing against a downsampled truth (so the check above has teeth).
    assert abs(np.mean((block_mean(batch["ab"].numpy(), 2) - g_out) ** 2) - want) > 1e-3


def test_output_stride_classification_scores_the_block_mean_colour():
    cfg = classification_cfg(output_stride=4)
    tc = TrainConfig(mode="unet", pixel_loss="l1", class_weight=2.0)
    batch = colour_batch()
    logits = np.random.default_rng(11).normal(0, 2, (2, SIZE // 4, SIZE // 4, 262))
    values = losses.compute_losses(tf.constant(logits, tf.float32), None, None, batch, cfg, tc)
    ab = batch["ab"].numpy()
    want_class = np_classification_loss(logits.astype(np.float32), block_mean(ab, 4))
    want_pixel = np.mean(np.abs(ab - np_bilinear_resize(np_mean_colour(logits), (SIZE, SIZE))))
    np.testing.assert_allclose(float(values["g_class"]), want_class, rtol=CE_RTOL)
    np.testing.assert_allclose(float(values["g_pixel"]), want_pixel, rtol=LOSS_RTOL)
    np.testing.assert_allclose(float(values["g_loss"]), want_pixel + 2.0 * want_class,
                               rtol=CE_RTOL)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_losses_are_per_replica_means_not_divided_by_anything(head):
    """compute_losses of a batch = the mean of its two halves' (every term here is a mean over
    equally sized examples): the replica division belongs to the train step alone."""
    cfg = classification_cfg() if head == "classification" else models.preset("tiny")
    tc = TrainConfig(mode="unet", pixel_loss="l1")
    batch = colour_batch(n=4, size=8)
    channels = 262 if head == "classification" else 3
    g_out = tf.constant(np.random.default_rng(12).normal(0, 1, (4, 8, 8, channels)), tf.float32)
    if head == "regression":
        g_out = tf.tanh(g_out)
    whole = losses.compute_losses(g_out, None, None, batch, cfg, tc)
    halves = [losses.compute_losses(g_out[s], None, None, {k: v[s] for k, v in batch.items()},
                                    cfg, tc) for s in (slice(0, 2), slice(2, 4))]
    for name in whole:
        np.testing.assert_allclose(float(whole[name]),
                                   (float(halves[0][name]) + float(halves[1][name])) / 2,
                                   rtol=LOSS_RTOL, err_msg=name)


# ------------------------------------------------------------- replica scaling in the step
def _sgd(state: step_lib.TrainState, lr: float) -> None:
    """Swaps the state's Adam for plain SGD: Adam's first step, lr * g / |g|, is blind to the
    gradient's scale, SGD's update is lr * gradient."""
    with state.strategy.scope():
        state.g_opt = keras.optimizers.SGD(lr)
        state.g_opt.build(state.generator.trainable_variables)
        if state.discriminator is not None:
            state.d_opt = keras.optimizers.SGD(lr)
            state.d_opt.build(state.discriminator.trainable_variables)


@pytest.fixture(scope="module")
def mirrored():
    """The process's 2-replica strategy (make_strategy keeps one: see distribute._mirrored)."""
    return distribute.make_strategy("mirrored")


@pytest.mark.parametrize("mode", ["unet", "gan"])
def test_two_replicas_apply_the_global_batch_mean_gradient(mode, mirrored):
    """Each of 2 replicas differentiates its half's loss / 2; the optimizer sums the replicas'
    gradients, so the update equals one device's on the whole batch (and not twice it)."""
    cfg = models.preset("tiny")
    tc = TrainConfig(mode=mode, pixel_loss="l2", pixel_weight=1.0)
    batch = colour_batch(n=4)
    one = step_lib.build_state(cfg, tc)
    two = step_lib.build_state(cfg, tc, mirrored)
    assert two.strategy.num_replicas_in_sync == 2
    two.generator.set_weights(one.generator.get_weights())
    if mode == "gan":
        two.discriminator.set_weights(one.discriminator.get_weights())
    deltas = []
    for state in (one, two):
        _sgd(state, SGD_LR)
        dataset = state.strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(batch))
        step = step_lib.make_train_step(state, cfg, tc, dataset.element_spec)
        nets = [state.generator] + ([state.discriminator] if mode == "gan" else [])
        before = [np.array(v) for net in nets for v in net.trainable_variables]
        out = step(next(iter(dataset)), tf.constant(True))
        assert bool(out["finite"])
        after = [np.array(v) for net in nets for v in net.trainable_variables]
        deltas.append(([a - b for a, b in zip(after, before)], float(out["g_loss"])))
    (delta_one, loss_one), (delta_two, loss_two) = deltas
    np.testing.assert_allclose(loss_two, loss_one, rtol=STRATEGY_RTOL)  # reported: global mean
    norm = lambda ds: np.sqrt(sum(np.sum(d.astype(np.float64) ** 2) for d in ds))  # noqa: E731
    assert norm(delta_one) > 1e-3  # the update is far above rounding
    assert norm(delta_two) / norm(delta_one) == pytest.approx(1.0, rel=1e-3)
    for a, b in zip(delta_one, delta_two):
        np.testing.assert_allclose(b, a, rtol=STRATEGY_RTOL, atol=STRATEGY_ATOL)


def test_one_device_sgd_update_is_lr_times_the_loss_gradient():
    """The reference of the test above, recomputed: with SGD one step moves G by -lr * dL/dG."""
    cfg, tc = models.preset("tiny"), TrainConfig(mode="unet", pixel_loss="l2")
    batch = colour_batch(n=2)
    state = step_lib.build_state(cfg, tc)
    _sgd(state, SGD_LR)
    g = state.generator
    with tf.GradientTape() as tape:
        values = losses.compute_losses(g(batch["l"], training=True), None, None, batch, cfg, tc)
    grads = tape.gradient(values["g_loss"], g.trainable_variables)
    before = [np.array(v) for v in g.trainable_variables]
    step = step_lib.make_train_step(state, cfg, tc,
                                 {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()})
    step(batch, tf.constant(True))
    for b, v, grad in zip(before, g.trainable_variables, grads):
        np.testing.assert_allclose(np.array(v) - b, -SGD_LR * grad.numpy(),
                                   rtol=STRATEGY_RTOL, atol=STRATEGY_ATOL, err_msg=v.path)
