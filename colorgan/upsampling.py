"""Bringing predicted a*b* from the model's resolution up to the photo's: bilinear, or edge-aware
guided by the photo's own full-resolution L. One definition in TF ops, used by colourise, the
exported SavedModel's bytes-in/PNG-out path and (mirrored in JS) the browser page.

The guided mode is the fast guided filter (He & Sun 2015, "Fast Guided Filter", arXiv 1505.00996;
He, Sun & Tang 2013): at low resolution, fit ab = A * L + B locally (box windows of `radius`,
regularised by `eps`); upsample A and B bilinearly; evaluate them on the full-resolution L. Colour
edges then follow the photo's own edges instead of a bilinear blur of a small grid, and where L is
flat (sky, walls) the fit degenerates to the local mean colour, so no new banding appears.
"""

from __future__ import annotations

import tensorflow as tf

from colorgan import color

UPSAMPLE_MODES = ("bilinear", "guided")
# Box radius in low-resolution pixels and the regulariser, in model-space L units squared
# (l in [-1, 1]: 1e-3 is a local L* standard deviation of ~1.6 L* units). Chosen on BSDS500 val.
GUIDED_RADIUS = 2
GUIDED_EPS = 1e-3


def _box(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Mean over (2r+1)^2 windows, same size out; at the borders over the pixels that exist
    (avg_pool with SAME padding counts only valid pixels: TFLite and TF.js do the same)."""
    size = 2 * radius + 1
    return tf.nn.avg_pool2d(x, size, strides=1, padding="SAME")


def guided_upsample(ab: tf.Tensor, l_small: tf.Tensor, l_full: tf.Tensor,
                    radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> tf.Tensor:
    """ab (N, h, w, 2) at the resolution of l_small (N, h, w, 1) -> ab (N, H, W, 2) at l_full's.

    All in model space, float32. Per channel: A = cov(L, ab) / (var(L) + eps), B = mean(ab) -
    A mean(L) over each window, both smoothed once more, upsampled, then ab = A L_full + B.
    """
    ab, l_small, l_full = (color.as_float32(t) for t in (ab, l_small, l_full))
    mean_l = _box(l_small, radius)
    mean_ab = _box(ab, radius)
    cov = _box(l_small * ab, radius) - mean_l * mean_ab
    var = _box(tf.square(l_small), radius) - tf.square(mean_l)
    a = cov / (var + eps)
    b = mean_ab - a * mean_l
    coeffs = tf.concat([_box(a, radius), _box(b, radius)], axis=-1)
    coeffs = tf.image.resize(coeffs, tf.shape(l_full)[1:3], method="bilinear")
    out = coeffs[..., :2] * l_full + coeffs[..., 2:]
    return tf.clip_by_value(out, -1.0, 1.0)


def upsample_ab(ab: tf.Tensor, l_small: tf.Tensor, l_full: tf.Tensor, mode: str) -> tf.Tensor:
    """ab at l_small's size -> ab at l_full's size, by `mode` ('bilinear' or 'guided')."""
    if mode == "bilinear":
        return tf.image.resize(color.as_float32(ab), tf.shape(l_full)[1:3], method="bilinear")
    if mode == "guided":
        return guided_upsample(ab, l_small, l_full)
    raise ValueError(f"unknown upsample mode {mode!r}; valid: {', '.join(UPSAMPLE_MODES)}")
