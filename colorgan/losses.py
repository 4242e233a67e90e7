"""Training losses, as pure functions of tensors: pixel (L1/L2), adversarial, and the rebalanced
classification loss of Zhang et al. 2016; `compute_losses` assembles a step's named losses.

Every loss is a mean over this replica's examples. Under tf.distribute the train step divides
the totals by the replica count before differentiating (so the optimizers' cross-replica sum is
the global batch's mean); nothing here divides by replicas, which is why Keras' loss classes
(which do) are not used.
"""

from __future__ import annotations

import tensorflow as tf

from colorgan import bins, models
from colorgan.config import ModelConfig, TrainConfig, check_choice


def pixel_loss(kind: str, target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Mean over all pixels and channels: 'l2' (the seed's Euclidean loss) or 'l1' (pix2pix)."""
    diff = tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)
    if kind == "l2":
        return tf.reduce_mean(tf.square(diff))
    if kind == "l1":
        return tf.reduce_mean(tf.abs(diff))
    raise ValueError(f"unknown pixel_loss {kind!r}; valid: l1, l2")


def bce_with_logits(labels, logits) -> tf.Tensor:
    """Mean sigmoid cross-entropy; `labels` broadcast to the logits' shape."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.broadcast_to(tf.cast(labels, tf.float32), tf.shape(logits)), logits=logits))


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Cross-entropy on logits (the seed's sigmoid, applied stably). Returns (total, real, fake)."""
    real = bce_with_logits(1.0 - label_smoothing, real_logits)
    fake = bce_with_logits(0.0, fake_logits)
    return real + fake, real, fake


def generator_adversarial_loss(fake_logits) -> tf.Tensor:
    """Non-saturating GAN loss: -log D(G(x))."""
    return bce_with_logits(1.0, fake_logits)


def downsample_ab(ab: tf.Tensor, stride: int) -> tf.Tensor:
    """ab (N, H, W, 2) -> (N, H/stride, W/stride, 2): the mean colour of each stride x stride cell."""
    if stride == 1:
        return ab
    return tf.nn.avg_pool2d(tf.cast(ab, tf.float32), stride, stride, padding="VALID")


def classification_loss(logits: tf.Tensor, ab: tf.Tensor, class_weights: tf.Tensor | None = None,
                        rebalanced: tf.Tensor | None = None) -> tf.Tensor:
    """Rebalanced multinomial cross-entropy (Zhang et al. 2016, eq. 2).

    Args:
      logits: (N, h, w, NUM_BINS) bin logits.
      ab: (N, h, w, 2) model-space target ab at the logits' resolution.
      class_weights: (NUM_BINS,) per-bin weights (bins.rebalance_weights), or None (all 1).
      rebalanced: (N,) bool, the images `class_weights` apply to (the others weigh every bin
        1); None = all.
    Returns:
      Scalar: mean over pixels of w(nearest bin) * -sum_q z_q log softmax(logits)_q, where z is
      the soft-encoded target.
    """
    target = bins.soft_encode(ab)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    per_pixel = -tf.reduce_sum(target * log_probs, axis=-1)
    if class_weights is not None:
        weights = tf.gather(class_weights, tf.argmax(target, axis=-1, output_type=tf.int32))
        if rebalanced is not None:
            weights = tf.where(rebalanced[:, None, None], weights, 1.0)
        per_pixel *= weights
    return tf.reduce_mean(per_pixel)


def target_color(batch: dict[str, tf.Tensor], output_space: str) -> tf.Tensor:
    """What a regression G should output for a batch: Lab (l ++ ab, the seed) or ab."""
    if check_choice("output_space", output_space) == "lab":
        return tf.concat([batch["l"], batch["ab"]], -1)
    return batch["ab"]


def pixel_prediction(g_out: tf.Tensor, cfg: ModelConfig, size) -> tf.Tensor:
    """The colour the pixel loss compares, at the training `size` ([2] int): a regression
    output (all its channels), or a classification head's mean colour (temperature 1), upsampled
    bilinearly from G's output resolution as inference does."""
    regression = check_choice("head", cfg.head) == "regression"
    pred = g_out if regression else models.decode_ab(g_out, cfg, 1.0)
    if cfg.output_stride > 1:
        pred = tf.image.resize(pred, size, method="bilinear")
    return pred


def loss_names(model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple[str, ...]:
    """The named values `compute_losses` returns for this config, in log order."""
    names = ["g_loss"]
    if train_cfg.mode == "gan":
        names.append("g_adv")
    if train_cfg.pixel_loss != "none":
        names.append("g_pixel")
    if model_cfg.head == "classification":
        names.append("g_class")
    if train_cfg.mode == "gan":
        names += ["d_loss", "d_real", "d_fake", "d_acc"]
    return tuple(names)


def compute_losses(g_out: tf.Tensor, d_real: tf.Tensor | None, d_fake: tf.Tensor | None,
                   batch: dict[str, tf.Tensor], model_cfg: ModelConfig, train_cfg: TrainConfig,
                   class_weights: tf.Tensor | None = None, hinted: tf.Tensor | None = None
                   ) -> dict[str, tf.Tensor]:
    """A step's losses (scalars, this replica's means), named as in `loss_names`.

    reconstruction = g_pixel + class_weight * g_class (the terms the config has);
    g_loss = reconstruction (unet) or g_adv + pixel_weight * reconstruction (gan, as pix2pix's
    lambda = 100). d_loss = D's cross-entropy on real (label-smoothed) and generated colour;
    d_acc = the fraction of D's logits on the right side of 0.

    Args:
      g_out: G's raw output for batch['l'] (training=True).
      d_real, d_fake: D's logits on real and generated colour (None unless mode='gan').
      batch: {'l', 'ab'} model-space training batch.
      class_weights: per-bin rebalancing weights for a classification head (None: uniform).
      hinted: (N,) bool, the images given simulated hints (a hint model); without
        --hinted_rebalance they are not rebalanced.
    """
    values, reconstruction = {}, 0.0
    if train_cfg.pixel_loss != "none":
        target = target_color(batch, model_cfg.output_space)
        pred = pixel_prediction(g_out, model_cfg, tf.shape(target)[1:3])
        values["g_pixel"] = pixel_loss(train_cfg.pixel_loss, target, pred)
        reconstruction += values["g_pixel"]
    if model_cfg.head == "classification":
        rebalanced = None if hinted is None or train_cfg.hinted_rebalance else ~hinted
        values["g_class"] = classification_loss(
            g_out, downsample_ab(batch["ab"], model_cfg.output_stride), class_weights, rebalanced)
        reconstruction += train_cfg.class_weight * values["g_class"]
    if train_cfg.mode != "gan":
        return {"g_loss": reconstruction, **values}
    d_loss, real, fake = discriminator_loss(d_real, d_fake, train_cfg.label_smoothing)
    g_adv = generator_adversarial_loss(d_fake)
    d_acc = 0.5 * (tf.reduce_mean(tf.cast(d_real > 0, tf.float32))
                   + tf.reduce_mean(tf.cast(d_fake < 0, tf.float32)))
    return {"g_loss": g_adv + train_cfg.pixel_weight * reconstruction, "g_adv": g_adv, **values,
            "d_loss": d_loss, "d_real": real, "d_fake": fake, "d_acc": d_acc}
