"""colorgan.upsampling: bilinear against TF's resize and a NumPy transcription of it; the fast
guided filter (He & Sun 2015) on fields with a known answer (constant, affine in L, a step)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from colorgan import upsampling

# float32 TF against float64 NumPy on values of order 1 (a few products and sums; the guided
# filter's box means of squares lose ~1e-7 to cancellation, divided by var + eps ~ 1e-2).
ATOL = 1e-5
# The same float32 graph eagerly and in a tf.function (kernels may reorder sums).
MODE_ATOL = 1e-6
# Far from the edge the guided output is the flat colour up to its ~0.003 regularisation gap
# (A * L + B with A shrunk by eps); bilinear-sized errors there would be ~0.5.
FLAT_SIDE_ATOL = 0.01
# Upsampling factor and full-resolution side of the synthetic photos below.
STRIDE, SIZE = 4, 64
# The guided filter is exact for ab affine in L only where its windows see what the interior
# sees: two box passes of `GUIDED_RADIUS` low-resolution pixels each, plus the bilinear
# interpolation's one pixel, in full-resolution pixels.
INTERIOR = STRIDE * (2 * upsampling.GUIDED_RADIUS + 1)


# ------------------------------------------------------------------------------- helpers
def np_bilinear_resize(x: np.ndarray, size) -> np.ndarray:
    """(N, h, w, C) -> (N, H, W, C): bilinear with half-pixel centres (TF2's tf.image.resize),
    edges clamped; separable, float64."""
    out = np.asarray(x, np.float64)
    for axis, new in ((1, size[0]), (2, size[1])):
        old = out.shape[axis]
        src = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, old - 1)
        frac = (src - lo).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, lo, axis) * (1 - frac) + np.take(out, hi, axis) * frac
    return out


def downsample(x: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Block means (what a photo looks like to a model at 1/stride)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // stride, stride, w // stride, stride, c).mean(axis=(2, 4))


def l_ramp() -> np.ndarray:
    """(1, S, S, 1) L varying linearly in x and y, sampled at pixel centres."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    l = -0.8 + 0.9 * (xx + 0.5) / SIZE + 0.7 * (yy + 0.5) / SIZE
    return l[None, ..., None]


# --------------------------------------------------------------------------------- bilinear
def test_numpy_bilinear_reference_matches_tf_resize():
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 3))
    for size in ((20, 28), (10, 21), (5, 7)):
        np.testing.assert_allclose(np_bilinear_resize(x, size),
                                   tf.image.resize(x.astype(np.float32), size).numpy(), atol=ATOL)


def test_bilinear_mode_is_tf_resize():
    rng = np.random.default_rng(1)
    ab = rng.uniform(-1, 1, (2, 8, 12, 2)).astype(np.float32)
    l_small = rng.uniform(-1, 1, (2, 8, 12, 1)).astype(np.float32)
    l_full = rng.uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32)
    got = upsampling.upsample_ab(ab, l_small, l_full, "bilinear").numpy()
    np.testing.assert_array_equal(got, tf.image.resize(ab, (32, 48), method="bilinear").numpy())
    np.testing.assert_allclose(got, np_bilinear_resize(ab, (32, 48)), atol=ATOL)


def test_unknown_mode_names_the_valid_ones():
    x = tf.zeros([1, 4, 4, 2])
    with pytest.raises(ValueError, match="unknown upsample mode 'bicubic'; valid: bilinear, guided"):
        upsampling.upsample_ab(x, x[..., :1], tf.zeros([1, 8, 8, 1]), "bicubic")


# ----------------------------------------------------------------------------------- guided
def test_guided_keeps_a_constant_colour_constant():
    rng = np.random.default_rng(2)
    l_full = rng.uniform(-1, 1, (2, SIZE, SIZE, 1))  # textured L: the fit must find no slope
    ab = np.broadcast_to(np.array([0.25, -0.4]), (2, SIZE // STRIDE, SIZE // STRIDE, 2))
    got = upsampling.upsample_ab(ab.astype(np.float32), downsample(l_full).astype(np.float32),
                                 l_full.astype(np.float32), "guided").numpy()
    assert got.shape == (2, SIZE, SIZE, 2)
    np.testing.assert_allclose(got, np.broadcast_to([0.25, -0.4], got.shape), atol=ATOL)


@pytest.mark.parametrize("eps", [upsampling.GUIDED_EPS, 1e-8])
def test_guided_recovers_colour_that_is_affine_in_l(eps):
    """ab = 0.3 L + 0.1 (and -0.2 L) at low resolution -> the same function of the full-res L.

    With eps > 0 the fitted slope is shrunk (A = 0.3 var / (var + eps)), but for a linear L the
    local mean of L equals L in the interior, so B = mean(ab) - A mean(L) compensates exactly."""
    l_full = l_ramp()
    l_small = downsample(l_full)
    ab_small = np.concatenate([0.3 * l_small + 0.1, -0.2 * l_small], -1)
    got = upsampling.guided_upsample(ab_small.astype(np.float32), l_small.astype(np.float32),
                                     l_full.astype(np.float32), eps=eps).numpy()
    want = np.concatenate([0.3 * l_full + 0.1, -0.2 * l_full], -1)
    inner = (slice(None), slice(INTERIOR, -INTERIOR), slice(INTERIOR, -INTERIOR))
    np.testing.assert_allclose(got[inner], want[inner], atol=ATOL)
    # Bilinear upsampling of the same ab is right too here (ab is smooth): the guided filter's
    # point is edges (next test), not smooth fields.
    np.testing.assert_allclose(np_bilinear_resize(ab_small, (SIZE, SIZE))[inner], want[inner],
                               atol=ATOL)


def test_guided_edge_is_sharper_than_bilinear():
    """An object edge at x = 30 (not on the 4-px grid): L and the true ab both step there."""
    xx = np.broadcast_to(np.arange(SIZE), (SIZE, SIZE))
    step = np.where(xx < 30, -1.0, 1.0)[None, ..., None]
    l_full = 0.6 * step
    ab_full = np.concatenate([0.5 * step, -0.3 * step], -1)  # the ideal colour
    ab_small, l_small = downsample(ab_full), downsample(l_full)
    args = (ab_small.astype(np.float32), l_small.astype(np.float32), l_full.astype(np.float32))
    guided = upsampling.upsample_ab(*args, "guided").numpy()
    bilinear = upsampling.upsample_ab(*args, "bilinear").numpy()

    def transition_width(ab):
        """Pixels per row strictly between 10% and 90% of the a step (-0.5 -> 0.5)."""
        a = ab[0, :, :, 0]
        return np.sum((a > -0.4) & (a < 0.4), axis=1)

    # Bilinear spreads the step over ~1.5 low-res pixels (6 here); guided follows L's edge.
    assert np.all(transition_width(bilinear) >= STRIDE)
    assert np.all(transition_width(guided) == 0)
    err_guided = np.abs(guided - ab_full).mean()
    err_bilinear = np.abs(bilinear - ab_full).mean()
    assert err_bilinear > 0.02 and err_guided < err_bilinear / 10
    # Away from the edge both are the flat colour.
    np.testing.assert_allclose(guided[:, :, :16], ab_full[:, :, :16], atol=FLAT_SIDE_ATOL)


def test_guided_output_is_clipped_to_the_model_range():
    # Fit ab = 1.2 L at low resolution (|ab| <= 0.94), then apply it to a full-resolution L that
    # has 1.5x the contrast: the affine map extrapolates to |ab| up to 1.4 without the clip.
    l_small = downsample(l_ramp())
    ab_small = np.concatenate([1.2 * l_small, -1.2 * l_small], -1)
    got = upsampling.guided_upsample(ab_small.astype(np.float32), l_small.astype(np.float32),
                                     (1.5 * l_ramp()).astype(np.float32)).numpy()
    assert got.min() >= -1.0 and got.max() <= 1.0
    assert np.mean(np.abs(got) == 1.0) > 0.05  # the clip was needed


def test_guided_eagerly_and_in_a_tf_function_with_unknown_sizes():
    rng = np.random.default_rng(3)
    l_full = rng.uniform(-1, 1, (1, 48, 32, 1)).astype(np.float32)
    l_small = downsample(l_full).astype(np.float32)
    ab = rng.uniform(-1, 1, l_small.shape[:3] + (2,)).astype(np.float32)
    eager = upsampling.guided_upsample(ab, l_small, l_full).numpy()
    spec = tf.TensorSpec([None, None, None, None], tf.float32)
    fn = tf.function(upsampling.guided_upsample, input_signature=[spec, spec, spec])
    np.testing.assert_allclose(fn(ab, l_small, l_full).numpy(), eager, atol=MODE_ATOL)
    assert eager.shape == (1, 48, 32, 2)
