"""sRGB <-> CIE L*a*b* (D65) in pure TensorFlow, and the scaling into model space.

This module owns every colour constant. The conversion follows scikit-image's
`rgb2lab`/`lab2rgb` (sRGB primaries, D65 white, 2-degree observer), so scikit-image
serves as an independent oracle in the tests. Everything is written with
element-wise TF ops (no NumPy, no `py_function`, no matmul), so one implementation
serves `tf.data`, `tf.function`, the exported SavedModel and TFLite.

Model space: `l = L / 50 - 1` and `ab = (a, b) / 110`, both in [-1, 1] for every
sRGB colour (the sRGB gamut spans a in [-86, 98] and b in [-108, 95]).
"""

from __future__ import annotations

import tensorflow as tf

# scikit-image's sRGB -> XYZ matrix (skimage.color.colorconv.xyz_from_rgb).
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Its exact inverse (numpy.linalg.inv of the above, float64), as skimage uses.
RGB_FROM_XYZ = (
    (3.24048134, -1.53715152, -0.49853633),
    (-0.96925495, 1.87599, 0.04155593),
    (0.05564664, -0.20404134, 1.05731107),
)
# D65 reference white, 2-degree observer (skimage's default illuminant).
D65_WHITE = (0.95047, 1.0, 1.08883)

# sRGB transfer function (IEC 61966-2-1): linear segment below the thresholds, else
# ((c + A) / (1 + A)) ** GAMMA and its inverse.
_SRGB_LINEAR_IN = 0.04045
_SRGB_LINEAR_OUT = 0.0031308
_SRGB_A = 0.055
_SRGB_GAMMA = 2.4
_SRGB_SLOPE = 12.92
# CIE L*a*b* from f(X), f(Y), f(Z): L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)).
_L_MUL, _L_OFFSET, _A_MUL, _B_MUL = 116.0, 16.0, 500.0, 200.0
# CIE f(t) thresholds: (6/29)^3 and 6/29, with skimage's rounded constants.
_LAB_EPSILON = 0.008856
_LAB_KAPPA = 7.787
_LAB_DELTA = 0.2068966

# Model-space scale: L in [0, 100] -> [-1, 1]; a, b in about [-110, 110] -> [-1, 1].
L_SCALE = 50.0
AB_SCALE = 110.0
UINT8_MAX = 255.0


def _mix(channels: tf.Tensor, matrix) -> tf.Tensor:
    """Applies a 3x3 matrix to the last axis with element-wise ops (TFLite/int8 friendly)."""
    c0, c1, c2 = tf.unstack(channels, axis=-1)
    return tf.stack([m[0] * c0 + m[1] * c1 + m[2] * c2 for m in matrix], axis=-1)


def as_float32(x) -> tf.Tensor:
    """A tensor of any float dtype (or array-like) as float32: colour maths always runs in float32."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) if x.dtype != tf.float32 else x


def rgb_to_lab(rgb) -> tf.Tensor:
    """Converts sRGB to CIE L*a*b* (D65).

    Args:
      rgb: float tensor [..., 3] in [0, 1] (float32 or bfloat16; values outside are clipped).

    Returns:
      Tensor [..., 3] of the input's dtype: L in [0, 100], a and b in about [-110, 110].
      Computed in float32 whatever the input dtype, so bfloat16 callers lose no accuracy here.
    """
    dtype = tf.convert_to_tensor(rgb).dtype
    rgb = tf.clip_by_value(as_float32(rgb), 0.0, 1.0)
    # The pow branch gets a clamped argument so neither branch of tf.where can
    # produce NaN/inf gradients (tf.where multiplies the unused branch's gradient by 0).
    linear = tf.where(
        rgb > _SRGB_LINEAR_IN,
        tf.pow((tf.maximum(rgb, _SRGB_LINEAR_IN) + _SRGB_A) / (1.0 + _SRGB_A),
               _SRGB_GAMMA),
        rgb / _SRGB_SLOPE,
    )
    xyz = _mix(linear, XYZ_FROM_RGB) / tf.constant(D65_WHITE)
    f = tf.where(
        xyz > _LAB_EPSILON,
        tf.pow(tf.maximum(xyz, _LAB_EPSILON), 1.0 / 3.0),
        _LAB_KAPPA * xyz + _L_OFFSET / _L_MUL,
    )
    fx, fy, fz = tf.unstack(f, axis=-1)
    lab = tf.stack([_L_MUL * fy - _L_OFFSET, _A_MUL * (fx - fy), _B_MUL * (fy - fz)], axis=-1)
    return tf.cast(lab, dtype)


def lab_to_rgb(lab) -> tf.Tensor:
    """Converts CIE L*a*b* (D65) to sRGB, clipping out-of-gamut colours as scikit-image does.

    Args:
      lab: float tensor [..., 3]: L in [0, 100], a and b unbounded (out-of-gamut allowed).

    Returns:
      Tensor [..., 3] of the input's dtype, sRGB in [0, 1]. Gradients are finite everywhere.
    """
    dtype = tf.convert_to_tensor(lab).dtype
    l, a, b = tf.unstack(as_float32(lab), axis=-1)
    fy = (l + _L_OFFSET) / _L_MUL
    fx = a / _A_MUL + fy
    # skimage clips negative z (very saturated blue-less colours) to 0 before inverting f.
    fz = tf.maximum(fy - b / _B_MUL, 0.0)
    f = tf.stack([fx, fy, fz], axis=-1)
    xyz = tf.where(f > _LAB_DELTA, tf.pow(f, 3.0), (f - _L_OFFSET / _L_MUL) / _LAB_KAPPA)
    linear = _mix(xyz * tf.constant(D65_WHITE), RGB_FROM_XYZ)
    rgb = tf.where(
        linear > _SRGB_LINEAR_OUT,
        (1.0 + _SRGB_A) * tf.pow(tf.maximum(linear, _SRGB_LINEAR_OUT), 1.0 / _SRGB_GAMMA)
        - _SRGB_A,
        linear * _SRGB_SLOPE,
    )
    return tf.cast(tf.clip_by_value(rgb, 0.0, 1.0), dtype)


def lab_to_model(lab) -> tuple[tf.Tensor, tf.Tensor]:
    """Splits unscaled Lab [..., 3] into model-space `l` [..., 1] and `ab` [..., 2], both in [-1, 1]."""
    lab = tf.convert_to_tensor(lab)
    l = lab[..., :1] / L_SCALE - 1.0
    ab = lab[..., 1:] / AB_SCALE
    return l, ab


def model_to_lab(l, ab) -> tf.Tensor:
    """Inverse of `lab_to_model`: model-space `l` [..., 1] and `ab` [..., 2] -> unscaled Lab [..., 3]."""
    l = tf.convert_to_tensor(l)
    ab = tf.cast(ab, l.dtype)
    return tf.concat([(l + 1.0) * L_SCALE, ab * AB_SCALE], axis=-1)


def rgb_to_model(rgb) -> tuple[tf.Tensor, tf.Tensor]:
    """sRGB [..., 3] in [0, 1] -> (`l` [..., 1], `ab` [..., 2]) in model space [-1, 1]."""
    return lab_to_model(rgb_to_lab(rgb))


def model_to_rgb(l, ab) -> tf.Tensor:
    """Model-space `l` [..., 1] and `ab` [..., 2] -> sRGB [..., 3] in [0, 1]."""
    return lab_to_rgb(model_to_lab(l, ab))


def rgb_to_gray_l(rgb) -> tf.Tensor:
    """The model input for a photo: its L channel in model space, [..., 1] in [-1, 1]."""
    return rgb_to_model(rgb)[0]


def gray_rgb(rgb) -> tf.Tensor:
    """sRGB [..., 3] -> the same image with its colour removed (its own L*, a* = b* = 0)."""
    return l_to_gray_rgb(rgb_to_gray_l(rgb))


def to_uint8(rgb) -> tf.Tensor:
    """sRGB in [0, 1] -> uint8, rounded to nearest. The one conversion every output uses, so the
    CLI, the Python API and the SavedModel agree to the level."""
    return tf.cast(tf.round(tf.clip_by_value(as_float32(rgb), 0.0, 1.0) * UINT8_MAX), tf.uint8)


def l_to_gray_rgb(l) -> tf.Tensor:
    """Model-space `l` [..., 1] -> the gray sRGB image [..., 3] it shows (a = b = 0)."""
    l = tf.convert_to_tensor(l)
    return model_to_rgb(l, tf.zeros(tf.concat([tf.shape(l)[:-1], [2]], 0), l.dtype))
