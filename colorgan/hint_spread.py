"""Hint spreading: a hint brings the colour where it lies close to its own and, edge-aware,
the colour around it.

A hint model's generator learns to use hints, but a fine-tune short enough for this machine
learns them as a global cue: its colour at a hint is not the hint's (the rocket's navy sky
comes out bright blue), and a hint on a face turns the background behind it the face's
colour (BENCHMARKS.md, the hint fine-tunes). So, after G and before upsampling, at G's output
cells (`--hint_reach` > 0), the hint's own correction is spread explicitly:

  r_j = hint colour - G's colour, on the cells j a hint covers (m_j: its hinted view pixels);
  r_i = sum_j k_ij m_j r_j / (sum_j k_ij m_j + PRIOR)   k: a Gaussian in space x lightness L*
                                                        (k_ii = 1);
  ab_i += fade(distance from cell i to the nearest hint) * r_i.

The normalised convolution (the colour of the nearby hints of similar lightness; PRIOR keeps a
lone hint from reaching far) is a bilateral grid: the cells are splatted into lightness bins,
each bin blurred in space, then read back at each cell's own lightness. Static-shape ops only
(pooling, depthwise convolution, pads, slices), so it exports with the generator to
SavedModel, TFLite (float; not int8: export.hint_variants) and TF.js. With no hint (an
all-zero map) the colour is G's, exactly. A hinted cell moves m / (m + PRIOR) of the way to
its hint (97 % for a 1-pixel hint at stride 4, 99.7 % for a 3x3 one).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from colorgan import color

EDGE_L = 10.0  # the kernel's lightness sigma (L* units): a hint stops at an unlike lightness
BIN_SIGMA = EDGE_L / math.sqrt(2.0)  # a splat and a read each weigh a bin by its Gaussian
PRIOR = 0.03  # "no correction"'s weight, in hinted view pixels at kernel weight 1
SPACE_OF_REACH = 2.0 / 3.0  # the kernel's spatial sigma, as a share of the reach
# Chosen on BSDS500 val and the bundled photos with 10 simulated hints (BENCHMARKS.md): PRIOR
# 0.1 -> 0.03 gained 0.11 dB; 0.01 another 0.05 but made one more val photo worse.


def spread(ab: tf.Tensor, l: tf.Tensor, hint_map: tf.Tensor, reach: float,
           stride: int) -> tf.Tensor:
    """G's decoded colour with its hints' corrections spread (see the module docstring).

    Args:
      ab: (N, h, w, 2) model-space a*b* at G's output cells.
      l: (N, h * stride, w * stride, 1) model-space L of the model's view.
      hint_map: (N, h * stride, w * stride, 3) the hints G saw (colorgan/hints.py).
      reach: the fade's sigma in view pixels (> 0); the kernel's is SPACE_OF_REACH of it.
      stride: G's output stride (view pixels per output cell, per side); h * stride and
        w * stride are the view's sides (G's views are multiples of 2**depth).
    Returns:
      (N, h, w, 2) float32: `ab` plus each cell's faded correction.
    """
    if reach <= 0:
        raise ValueError(f"reach={reach} must be > 0")
    ab = tf.convert_to_tensor(ab, tf.float32)
    hint_map = tf.cast(hint_map, tf.float32)
    mask = hint_map[..., 2:]
    pool = (lambda t: t) if stride == 1 else (
        lambda t: tf.nn.avg_pool2d(t, stride, stride, "VALID"))
    pixels = float(stride * stride)
    cover = pool(mask)  # (N, h, w, 1): the share of each cell a hint covers
    weight = cover * pixels  # its hinted view pixels m_j
    # m_j r_j = (the hints' colour summed over the cell) - m_j ab_j: no division (int8 TFLite)
    residual = pool(hint_map[..., :2] * mask) * pixels - weight * ab
    lum = (pool(tf.cast(l, tf.float32)) + 1.0) * color.L_SCALE
    bins = _bin_weights(lum)  # (N, h, w, B)
    sigma = reach * SPACE_OF_REACH / stride
    splat = tf.concat([bins * residual[..., c:c + 1] for c in range(2)] + [bins * weight], -1)
    blurred = _blur(splat, sigma)
    n_bins = bins.shape[-1]
    read = [tf.reduce_sum(bins * blurred[..., k * n_bins:(k + 1) * n_bins], -1, keepdims=True)
            for k in range(3)]
    norm = _bin_norm()
    # 1 / x as rsqrt(x)^2: int8 TFLite's DIV refuses (or badly rounds) a divisor this small
    inverse = tf.square(tf.math.rsqrt(read[2] + PRIOR * norm))
    correction = tf.concat(read[:2], -1) * inverse
    fade = _dilate(tf.cast(cover > 0, tf.float32), reach / stride)
    return ab + fade * correction


def _bin_centres() -> np.ndarray:
    """Lightness bins one BIN_SIGMA apart, from two below L* 0 to two above 100, so that every
    lightness has its neighbours' bins on both sides (the kernel's sigma is sqrt(2) BIN_SIGMA
    = EDGE_L)."""
    return np.arange(-2 * BIN_SIGMA, 100.0 + 2.5 * BIN_SIGMA, BIN_SIGMA, dtype=np.float32)


def _bin_weights(lum: tf.Tensor) -> tf.Tensor:
    return tf.exp(-tf.square(lum - _bin_centres()) / (2.0 * BIN_SIGMA * BIN_SIGMA))


def _bin_norm() -> float:
    """The kernel's lightness weight of a cell with itself (the sum of its squared bin weights,
    on a bin centre), so that k_ii = 1 and PRIOR is in hinted pixels."""
    centres = _bin_centres()
    middle = centres[len(centres) // 2]
    return float(np.sum(np.exp(-np.square(centres - middle) / (BIN_SIGMA * BIN_SIGMA))))


def _taps(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    k = np.arange(-radius, radius + 1, dtype=np.float32)
    return np.exp(-k * k / (2.0 * sigma * sigma))


def _blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """A separable Gaussian of peak 1 (not normalised: the sum over hints is the point), zero
    beyond the borders."""
    taps = _taps(sigma)
    channels = x.shape[-1]
    rows = np.tile(taps[:, None, None, None], (1, 1, channels, 1))
    cols = np.tile(taps[None, :, None, None], (1, 1, channels, 1))
    x = tf.nn.depthwise_conv2d(x, rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(x, cols, [1, 1, 1, 1], "SAME")


def _dilate(mask: tf.Tensor, sigma: float) -> tf.Tensor:
    """max_j mask_j exp(-|i - j|^2 / 2 sigma^2): the Gaussian of the distance to the nearest
    hinted cell (separable: the max of shifted copies along each axis)."""
    taps = _taps(sigma)
    radius = len(taps) // 2
    for axis in (1, 2):
        pads = [[0, 0]] * 4
        pads[axis] = [radius, radius]
        padded = tf.pad(mask, pads)
        size = tf.shape(mask)[axis]
        shifted = [_slice(padded, axis, k, size) * float(t) for k, t in enumerate(taps)]
        mask = tf.reduce_max(tf.stack(shifted, 0), 0)
    return mask


def _slice(x: tf.Tensor, axis: int, start: int, size: tf.Tensor) -> tf.Tensor:
    return x[:, start:start + size] if axis == 1 else x[:, :, start:start + size]
