"""Colourisation quality metrics in pure TensorFlow, shared by training (validation scalars) and
evaluation. Each takes batched tensors and returns one value per image, so callers can average
or keep per-image values.
"""

from __future__ import annotations

import tensorflow as tf

from colorgan import color


def ab_l1(ab_true: tf.Tensor, ab_pred: tf.Tensor) -> tf.Tensor:
    """Mean absolute a*/b* error per image, in Lab units (not model space).

    Args:
      ab_true, ab_pred: (N, H, W, 2) model-space ab in [-1, 1].
    Returns:
      (N,) float32.
    """
    diff = (tf.cast(ab_true, tf.float32) - tf.cast(ab_pred, tf.float32)) * color.AB_SCALE
    return tf.reduce_mean(tf.abs(diff), axis=[1, 2, 3])


def psnr(rgb_true: tf.Tensor, rgb_pred: tf.Tensor) -> tf.Tensor:
    """Peak signal-to-noise ratio per image on sRGB in [0, 1], in dB: 10 log10(1 / MSE).

    Identical images give +inf. Returns (N,) float32.
    """
    mse = tf.reduce_mean(tf.square(tf.cast(rgb_true, tf.float32) - tf.cast(rgb_pred, tf.float32)),
                         axis=[1, 2, 3])
    return -10.0 * tf.math.log(mse) / tf.math.log(10.0)
