"""Colourisation quality metrics in pure TensorFlow, shared by training (validation scalars) and
evaluation. Each takes batched tensors and returns one float32 value per image, shape (N,), so
callers can average or keep per-image values (`ab_error_cdf` returns a curve per image and
`ciede2000` a value per pixel). All run eagerly and inside `tf.function` or `tf.data`.
"""

from __future__ import annotations

import math

import tensorflow as tf

from colorgan import color

# PSNR's ceiling: an MSE below 1e-10 (far under one 8-bit level, 1.5e-5) counts as exact.
PSNR_MAX_DB = 100.0


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

    Capped at PSNR_MAX_DB (identical images would give +inf, and one such image would make a
    dataset mean infinite). Returns (N,) float32.
    """
    mse = tf.reduce_mean(tf.square(tf.cast(rgb_true, tf.float32) - tf.cast(rgb_pred, tf.float32)),
                         axis=[1, 2, 3])
    mse = tf.maximum(mse, 10.0 ** (-PSNR_MAX_DB / 10.0))
    return -10.0 * tf.math.log(mse) / tf.math.log(10.0)


# 8-bit full scale: rgb_mae_255 and colourfulness are defined on sRGB in 0-255 units.
_RGB_8BIT_MAX = 255.0

# Nazeri et al. scale the accuracy tolerance of a and b by their range relative to L's:
# [-110, 110] against [0, 100], i.e. AB_SCALE / L_SCALE = 2.2 (the "2.2 * thresh" in their code).
_PAPER_AB_TOLERANCE_FACTOR = color.AB_SCALE / color.L_SCALE

# SSIM window and constants of Wang et al. 2004 (also tf.image.ssim's defaults).
_SSIM_FILTER_SIZE = 11
_SSIM_FILTER_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

# CIEDE2000 constants (Sharma, Wu & Dalal 2005, eqs. 2-22).
_DE00_CHROMA_PIVOT_POW7 = 25.0**7  # the 25^7 in G and R_C
_DE00_L_MID = 50.0  # the mid-grey lightness in S_L (a formula constant, not color.L_SCALE)
_DEG = math.pi / 180.0

# Hasler & Suesstrunk 2003: weight of the mean-chroma term in the colourfulness metric M^(3).
_COLORFULNESS_MEAN_WEIGHT = 0.3


def paper_accuracy(lab_true, lab_pred, threshold=2.0) -> tf.Tensor:
    """Per-image pixel accuracy of Nazeri, Ng & Ebrahimi 2018, as their reference code computes it.

    "Image Colorization using Generative Adversarial Networks" (AMDO 2018, arXiv:1803.05400);
    reference code github.com/ImagingLab/Colorizing-with-GANs, `pixelwise_accuracy` in src/ops.py
    (called from `BaseModel.build` in src/models.py with `--acc-thresh`, default 2.0 in
    src/options.py). It rounds the unscaled Lab values to integers and counts a pixel when

        |round(L) - round(L')| <= t, |round(a) - round(a')| <= 2.2 t, |round(b) - round(b')| <= 2.2 t

    i.e. within t percent of each channel's range (L spans 100, a and b span 220). Rounding is
    `tf.round` (half to even), as in the reference. The reference averages over a whole batch; here
    the mean is per image (equal for equal-size images once averaged). Its generator predicts all
    of L, a and b, so there L can miss; colorgan's outputs keep the input's L, so when `lab_pred`
    carries the true L, ΔL is 0 and the a/b test alone decides.

    Args:
      lab_true, lab_pred: (N, H, W, 3) float (any float dtype), unscaled CIE Lab: L in [0, 100],
        a and b in about [-110, 110].
      threshold: the paper's t (percent of a channel's range); float or scalar tensor.

    Returns:
      (N,) float32 in [0, 1]: the fraction of pixels within the tolerance.
    """
    diff = tf.abs(tf.round(color.as_float32(lab_true)) - tf.round(color.as_float32(lab_pred)))
    tolerance = tf.cast(threshold, tf.float32) * tf.constant(
        [1.0, _PAPER_AB_TOLERANCE_FACTOR, _PAPER_AB_TOLERANCE_FACTOR])
    within = tf.reduce_all(diff <= tolerance, axis=-1)
    return tf.reduce_mean(tf.cast(within, tf.float32), axis=[1, 2])


def rgb_mae_255(rgb_true, rgb_pred) -> tf.Tensor:
    """Mean absolute error per image on sRGB in 8-bit units: 255 x mean |Δ| over pixels and RGB.

    Args:
      rgb_true, rgb_pred: (N, H, W, 3) float (any float dtype), sRGB in [0, 1].

    Returns:
      (N,) float32 in [0, 255].
    """
    diff = color.as_float32(rgb_true) - color.as_float32(rgb_pred)
    return tf.reduce_mean(tf.abs(diff), axis=[1, 2, 3]) * _RGB_8BIT_MAX


def paper_mae(lab_true, lab_pred) -> tf.Tensor:
    """The mean absolute error reported by Nazeri, Ng & Ebrahimi 2018, in its units: sRGB 0-255.

    The reference code (github.com/ImagingLab/Colorizing-with-GANs) has no MAE function: the only
    L1 quantity it computes is the training loss "G L1", `tf.reduce_mean(tf.abs(self.input_color -
    gen)) * self.options.l1_weight` in `BaseModel.build` (src/models.py), i.e. 100 x the mean
    |Δ| over all three channels of their model space (L/50 - 1, a/110, b/110; src/ops.py
    `preprocess`). The paper's MAE is not that: asked in the repository's issue #13 ("MAE"),
    whose question quotes 5.1 on CIFAR-10, the author answered that "the statistics are measured
    on the test set, over the pixel intensities in RGB color space". A value of 5.1 only fits the
    0-255 scale, so this is `rgb_mae_255` after converting both images to sRGB with
    `color.lab_to_rgb` (out-of-gamut colours clipped). Values are not quantised to uint8 first.

    Args:
      lab_true, lab_pred: (N, H, W, 3) float (any float dtype), unscaled CIE Lab: L in [0, 100],
        a and b in about [-110, 110].

    Returns:
      (N,) float32 in [0, 255].
    """
    rgb_true = color.lab_to_rgb(color.as_float32(lab_true))
    return rgb_mae_255(rgb_true, color.lab_to_rgb(color.as_float32(lab_pred)))


def _ab_distance(ab_true, ab_pred) -> tf.Tensor:
    diff = color.as_float32(ab_true) - color.as_float32(ab_pred)
    return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1))


def ab_error_cdf(ab_true, ab_pred, max_threshold: int = 150) -> tf.Tensor:
    """Cumulative ab-error curve of Zhang, Isola & Efros 2016 ("Colorful Image Colorization", ECCV).

    For each integer threshold t = 0, 1, ..., max_threshold: the fraction of an image's pixels
    whose Euclidean distance in the ab plane, sqrt(Δa² + Δb²) in Lab units, is at most t. This is
    the unweighted curve (Zhang et al. also report a class-rebalanced variant, not done here).

    Args:
      ab_true, ab_pred: (N, H, W, 2) float (any float dtype), unscaled a and b in Lab units
        (about [-110, 110]); model-space ab must be multiplied by `color.AB_SCALE` first.
      max_threshold: the largest threshold, a Python int (it fixes the output shape).

    Returns:
      (N, max_threshold + 1) float32 in [0, 1], non-decreasing along axis 1.
    """
    dist = _ab_distance(ab_true, ab_pred)
    num_images = tf.shape(dist)[0]
    dist = tf.reshape(dist, [num_images, -1])
    # ceil(d) is the smallest integer t with d <= t, so one histogram of ceil(d) and a cumulative
    # sum give every threshold at O(pixels) memory; errors beyond max_threshold share the last bin.
    num_bins = max_threshold + 2
    bins = tf.cast(tf.minimum(tf.math.ceil(dist), float(max_threshold + 1)), tf.int32)
    segments = bins + num_bins * tf.range(num_images)[:, None]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(dist), segments, num_images * num_bins)
    cdf = tf.cumsum(tf.reshape(counts, [num_images, num_bins]), axis=1)[:, :max_threshold + 1]
    return cdf / tf.cast(tf.shape(dist)[1], tf.float32)


def ab_auc(ab_true, ab_pred, max_threshold: int = 150) -> tf.Tensor:
    """Area under `ab_error_cdf`, normalised to [0, 1]: the curve's mean over t = 0..max_threshold.

    Zhang, Isola & Efros 2016 report this "AuC" as a percentage of the maximum area (multiply by
    100 to compare). Identical images give 1.

    Args:
      ab_true, ab_pred: (N, H, W, 2) float, unscaled a and b in Lab units (see `ab_error_cdf`).
      max_threshold: the largest threshold, a Python int.

    Returns:
      (N,) float32 in [0, 1].
    """
    return tf.reduce_mean(ab_error_cdf(ab_true, ab_pred, max_threshold), axis=1)


def ssim(rgb_true, rgb_pred) -> tf.Tensor:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) per image, on sRGB.

    `tf.image.ssim` with an 11x11 Gaussian window (sigma 1.5), k1 = 0.01, k2 = 0.03 and a data
    range of 1, averaged over the valid (unpadded) window positions and the three channels.

    Args:
      rgb_true, rgb_pred: (N, H, W, 3) float (any float dtype), sRGB in [0, 1]; H, W >= 11.

    Returns:
      (N,) float32 in [-1, 1]; 1 for identical images.
    """
    return tf.image.ssim(color.as_float32(rgb_true), color.as_float32(rgb_pred), max_val=1.0,
                         filter_size=_SSIM_FILTER_SIZE, filter_sigma=_SSIM_FILTER_SIGMA,
                         k1=_SSIM_K1, k2=_SSIM_K2)


def _chroma_weight(c: tf.Tensor) -> tf.Tensor:
    """sqrt(C^7 / (C^7 + 25^7)), shared by G and R_C in CIEDE2000."""
    c7 = tf.pow(c, 7.0)
    return tf.sqrt(c7 / (c7 + _DE00_CHROMA_PIVOT_POW7))


def _hue(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Hue angle atan2(b, a) in [0, 2 pi), defined as 0 for a = b = 0 (atan2(0, -0) would be pi)."""
    h = tf.atan2(b, a)
    h = tf.where(h < 0.0, h + 2.0 * math.pi, h)
    return tf.where((a == 0.0) & (b == 0.0), tf.zeros_like(h), h)


def ciede2000(lab_true, lab_pred) -> tf.Tensor:
    """CIEDE2000 colour difference ΔE00 per pixel (CIE 142-2001), with kL = kC = kH = 1.

    Implements eqs. (2)-(22) of Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula:
    implementation notes, supplementary test data, and mathematical observations", Color Res.
    Appl. 30(1), 2005, including their conventions: hue 0 and Δh' = 0 where a chroma is 0, the
    mean hue taken the short way round the circle, and at exactly opposite hues the sign of
    h2' - h1' kept. Δh' comes from atan2 of the cross and dot products of the two (a', b')
    vectors, which is exact for opposite hues in float32, so the discontinuity in Sharma's table
    (pairs 9-12) falls on the right side. Gray pixels give finite values (no NaN); gradients are
    not meant to be used.

    Args:
      lab_true, lab_pred: (..., 3) float (any float dtype), unscaled CIE Lab; (N, H, W, 3) for
        images.

    Returns:
      float32 of shape (...), e.g. (N, H, W); >= 0, 0 for identical colours.
    """
    l1, a1, b1 = tf.unstack(color.as_float32(lab_true), axis=-1)
    l2, a2, b2 = tf.unstack(color.as_float32(lab_pred), axis=-1)
    # a' = (1 + G) a, with G from the mean chroma of the pair (eqs. 2-6).
    c_mean = 0.5 * (tf.sqrt(a1 * a1 + b1 * b1) + tf.sqrt(a2 * a2 + b2 * b2))
    scale = 1.0 + 0.5 * (1.0 - _chroma_weight(c_mean))
    a1, a2 = a1 * scale, a2 * scale
    c1, c2 = tf.sqrt(a1 * a1 + b1 * b1), tf.sqrt(a2 * a2 + b2 * b2)
    h1, h2 = _hue(a1, b1), _hue(a2, b2)
    chromatic = c1 * c2 > 0.0
    # Δh' in (-pi, pi] (eq. 10); at exactly opposite hues Sharma keeps h2' - h1' = ±pi.
    cross, dot = a1 * b2 - b1 * a2, a1 * a2 + b1 * b2
    dh = tf.atan2(cross, dot)
    dh = tf.where((cross == 0.0) & (dot < 0.0), tf.sign(h2 - h1) * math.pi, dh)
    dh = tf.where(chromatic, dh, tf.zeros_like(dh))
    dh_big = 2.0 * tf.sqrt(c1 * c2) * tf.sin(0.5 * dh)  # ΔH' (eq. 11)
    # Mean hue (eq. 14): h1' + Δh'/2 wrapped to [0, 2 pi) is Sharma's case analysis in one step;
    # where a chroma is 0 it is h1' + h2'.
    h_mean = tf.where(chromatic, tf.math.floormod(h1 + 0.5 * dh, 2.0 * math.pi), h1 + h2)
    t = (1.0 - 0.17 * tf.cos(h_mean - 30.0 * _DEG) + 0.24 * tf.cos(2.0 * h_mean)
         + 0.32 * tf.cos(3.0 * h_mean + 6.0 * _DEG) - 0.20 * tf.cos(4.0 * h_mean - 63.0 * _DEG))
    d_theta = 30.0 * _DEG * tf.exp(-tf.square((h_mean / _DEG - 275.0) / 25.0))
    c_bar = 0.5 * (c1 + c2)
    l_offset = tf.square(0.5 * (l1 + l2) - _DE00_L_MID)
    s_l = 1.0 + 0.015 * l_offset / tf.sqrt(20.0 + l_offset)
    s_c = 1.0 + 0.045 * c_bar
    s_h = 1.0 + 0.015 * c_bar * t
    r_t = -tf.sin(2.0 * d_theta) * 2.0 * _chroma_weight(c_bar)
    l_term, c_term, h_term = (l2 - l1) / s_l, (c2 - c1) / s_c, dh_big / s_h
    de2 = tf.square(l_term) + tf.square(c_term) + tf.square(h_term) + r_t * c_term * h_term
    return tf.sqrt(tf.maximum(de2, 0.0))


def mean_ciede2000(lab_true, lab_pred) -> tf.Tensor:
    """Mean CIEDE2000 ΔE00 over each image's pixels (see `ciede2000`).

    Args:
      lab_true, lab_pred: (N, H, W, 3) float (any float dtype), unscaled CIE Lab.

    Returns:
      (N,) float32, >= 0.
    """
    return tf.reduce_mean(ciede2000(lab_true, lab_pred), axis=[1, 2])


def colorfulness(rgb) -> tf.Tensor:
    """Colourfulness M^(3) of Hasler & Suesstrunk 2003, "Measuring colourfulness in natural images".

    On sRGB in 0-255 units: rg = R - G, yb = (R + G) / 2 - B, and
    M = sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²), with means and population standard
    deviations over the image's pixels. 0 for any gray image.

    Args:
      rgb: (N, H, W, 3) float (any float dtype), sRGB in [0, 1].

    Returns:
      (N,) float32, >= 0 (in the paper's 0-255 based units).
    """
    r, g, b = tf.unstack(color.as_float32(rgb) * _RGB_8BIT_MAX, axis=-1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    axes = [1, 2]
    spread = tf.sqrt(tf.math.reduce_variance(rg, axes) + tf.math.reduce_variance(yb, axes))
    mean = tf.sqrt(tf.square(tf.reduce_mean(rg, axes)) + tf.square(tf.reduce_mean(yb, axes)))
    return spread + _COLORFULNESS_MEAN_WEIGHT * mean


# Flat regions (sky, walls, water), where false colour shows as bands: pixels whose L* has a local
# standard deviation below FLAT_MAX_STD_L L* units over a FLAT_WINDOW x FLAT_WINDOW window.
FLAT_WINDOW = 9
FLAT_MAX_STD_L = 2.0


def flat_mask(l_star) -> tf.Tensor:
    """(N, H, W) float32 1/0: the flat pixels of L* (N, H, W) (0-100 units), windows clipped at
    the borders (avg_pool with SAME padding averages the pixels that exist)."""
    l_star = color.as_float32(l_star)[..., tf.newaxis]
    mean = tf.nn.avg_pool2d(l_star, FLAT_WINDOW, 1, "SAME")
    mean_sq = tf.nn.avg_pool2d(tf.square(l_star), FLAT_WINDOW, 1, "SAME")
    std = tf.sqrt(tf.maximum(mean_sq - tf.square(mean), 0.0))[..., 0]
    return tf.cast(std < FLAT_MAX_STD_L, tf.float32)


def flat_ab_error(lab_true, lab_pred) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean ab distance (Lab units) over each image's flat pixels, where banding shows.

    Flat pixels are found on the truth's L* (outputs keep the input's L). Returns ((N,) mean
    error, 0 for an image without flat pixels; (N,) flat pixel count), so a dataset's value can be
    weighted by pixels: sum(error * count) / sum(count).
    """
    mask = flat_mask(color.as_float32(lab_true)[..., 0])
    dist = _ab_distance(color.as_float32(lab_true)[..., 1:], color.as_float32(lab_pred)[..., 1:])
    count = tf.reduce_sum(mask, axis=[1, 2])
    return tf.reduce_sum(dist * mask, axis=[1, 2]) / tf.maximum(count, 1.0), count
