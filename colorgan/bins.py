"""The quantised a*b* colour space of Zhang, Isola & Efros 2016 ("Colorful Image Colorization",
ECCV 2016): the in-gamut bins, soft-encoded targets, class rebalancing from an empirical prior,
and the annealed-mean decoding. Pure TF (element-wise ops, softmax and one small matmul), so the
decoding runs inside the SavedModel, TFLite and TF.js graphs.

All ab values here are in model space (color.AB_SCALE units, [-1, 1]) unless a name says Lab.
"""

from __future__ import annotations

import tensorflow as tf

from colorgan import color

# Bin spacing in Lab units (Zhang et al.: a 10-unit grid over ab).
AB_BIN_SIZE = 10.0
# The grid cells centred at (10 i, 10 j) Lab units that some sRGB colour rounds into, as rows
# (i, first j, last j); every row is contiguous. Derived from a 128-level sRGB grid converted with
# scikit-image's rgb2lab (tests/test_bins.py re-derives it). Zhang et al.'s 313 bins also count
# cells that only touch the gamut; the 262 that hold colours carry all of the probability mass.
_GAMUT_ROWS = (
    (-9, 8, 8), (-8, 4, 8), (-7, 2, 9), (-6, 0, 9), (-5, -2, 9), (-4, -3, 9), (-3, -4, 9),
    (-2, -4, 9), (-1, -5, 9), (0, -6, 9), (1, -7, 8), (2, -8, 8), (3, -8, 8), (4, -9, 8),
    (5, -9, 7), (6, -10, 7), (7, -11, 7), (8, -11, 7), (9, -9, 0), (10, -7, -5),
)
BIN_CENTERS_LAB = tuple((AB_BIN_SIZE * i, AB_BIN_SIZE * j)
                        for i, first, last in _GAMUT_ROWS for j in range(first, last + 1))
NUM_BINS = len(BIN_CENTERS_LAB)  # 262
# Soft encoding (Zhang et al. sec. 2.1): the 5 nearest bins, weighted by a Gaussian, sigma 5.
SOFT_NEIGHBOURS = 5
SOFT_SIGMA_LAB = 5.0
# Class rebalancing (Zhang et al. eq. 4): mix the smoothed prior with a uniform one (lambda 0.5);
# the prior is smoothed with a Gaussian of sigma 5 Lab units.
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA_LAB = 5.0


def bin_centers() -> tf.Tensor:
    """(NUM_BINS, 2) float32: the bins' a*, b* centres in model space."""
    return tf.constant(BIN_CENTERS_LAB, tf.float32) / color.AB_SCALE


def _squared_distances(ab: tf.Tensor) -> tf.Tensor:
    """ab (..., 2) model space -> (..., NUM_BINS) squared distances to the bin centres, Lab units^2."""
    diff = color.as_float32(ab)[..., tf.newaxis, :] * color.AB_SCALE - bin_centers() * color.AB_SCALE
    return tf.reduce_sum(tf.square(diff), axis=-1)


def nearest_bin(ab: tf.Tensor) -> tf.Tensor:
    """ab (..., 2) model space -> (...) int32 index of the nearest bin."""
    return tf.argmin(_squared_distances(ab), axis=-1, output_type=tf.int32)


def soft_encode(ab: tf.Tensor, neighbours: int = SOFT_NEIGHBOURS,
                sigma: float = SOFT_SIGMA_LAB) -> tf.Tensor:
    """ab (..., 2) model space -> (..., NUM_BINS) target distribution: the `neighbours` nearest
    bins weighted by exp(-d^2 / (2 sigma^2)) (d in Lab units), summing to 1."""
    neg_d2, index = tf.math.top_k(-_squared_distances(ab), k=neighbours)
    weight = tf.nn.softmax(neg_d2 / (2.0 * sigma ** 2), axis=-1)  # normalised Gaussian weights
    return tf.reduce_sum(tf.one_hot(index, NUM_BINS) * weight[..., tf.newaxis], axis=-2)


def bin_counts(ab: tf.Tensor) -> tf.Tensor:
    """(NUM_BINS,) float32: how many of the ab values (..., 2) fall nearest to each bin."""
    return tf.math.bincount(tf.reshape(nearest_bin(ab), [-1]), minlength=NUM_BINS,
                            maxlength=NUM_BINS, dtype=tf.float32)


def rebalance_weights(counts, lam: float = REBALANCE_LAMBDA,
                      sigma: float = PRIOR_SIGMA_LAB) -> tf.Tensor:
    """Per-bin loss weights from an empirical colour histogram (Zhang et al. eq. 4).

    Args:
      counts: (NUM_BINS,) pixel counts per bin over the training set.
    Returns:
      (NUM_BINS,) float32 w proportional to ((1 - lam) p~ + lam / Q)^-1, with p~ the histogram
      smoothed by a Gaussian of `sigma` Lab units over the bin centres, normalised so that the
      expected weight under p~ is 1 (rare colours weigh more, the loss keeps its scale).
    """
    counts = color.as_float32(counts)
    prior = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    kernel = tf.exp(-_squared_distances(bin_centers()) / (2.0 * sigma ** 2))  # (Q, Q)
    smoothed = tf.linalg.matvec(kernel / tf.reduce_sum(kernel, axis=0, keepdims=True), prior)
    weights = 1.0 / ((1.0 - lam) * smoothed + lam / NUM_BINS)
    return weights / tf.reduce_sum(smoothed * weights)


def annealed_mean(logits: tf.Tensor, temperature) -> tf.Tensor:
    """Decodes per-pixel bin logits (..., NUM_BINS) into ab (..., 2) in model space.

    softmax(logits / T) is the predicted distribution re-normalised as p^(1/T) (Zhang et al.
    eq. 5): T = 1 gives its mean (safe, desaturated), T -> 0 its mode (vivid, patchy); they use
    T = 0.38. Computed in float32.
    """
    probs = tf.nn.softmax(color.as_float32(logits) / temperature, axis=-1)
    return tf.tensordot(probs, bin_centers(), axes=[[-1], [0]])
