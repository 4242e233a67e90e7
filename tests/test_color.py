"""colorgan.color against scikit-image's rgb2lab/lab2rgb (float64) as the independent oracle."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor

from colorgan import color

# float32 TF against skimage's float64 reference: cube roots and the 2.4 power in float32 leave
# errors of ~1e-4 Lab units; 0.05 is far below a visible difference (JND ~ 1) yet catches any
# wrong constant (a rounded matrix entry or white point moves Lab by > 0.1).
LAB_ATOL = 0.05
# Round trip RGB -> Lab -> RGB must not move any colour by one 8-bit level.
ROUND_TRIP_ATOL = 1.0 / 255.0
# lab_to_rgb against skimage's lab2rgb: float32 vs float64 on values in [0, 1]; measured ~5e-6,
# the margin covers the steep 1/2.4 power just above the linear-segment threshold.
LAB2RGB_ATOL = 1e-4
# Graph mode (tf.data map, tf.function) against eager: Grappler may fuse or reorder float32
# arithmetic, so allow a few ulps of the largest value (L = 100) instead of bit equality.
GRAPH_VS_EAGER_ATOL = 1e-4
# bfloat16 keeps 8 significant bits: rounding the float32 result to bfloat16 changes it by at
# most half an ulp, i.e. a relative 2**-8. Compared against float32 on the same (rounded) input.
BF16_RTOL = 2.0 ** -8
# Model-space scaling is a multiply-add in float32: exact to a few ulps.
SCALE_ATOL = 1e-6


def _edge_colors() -> np.ndarray:
    """Black, white, primaries, secondaries, near-grays and the piecewise thresholds."""
    corners = list(itertools.product([0.0, 1.0], repeat=3))  # black, white, primaries, secondaries
    step = 1.0 / 255.0
    near_grays = [(0.5, 0.5, 0.5), (0.5, 0.5, 0.5 + step), (0.5, 0.5, 0.5 - step),
                  (0.5 + step, 0.5, 0.5), (0.5, 0.5 - step, 0.5), (step, step, step),
                  (1.0 - step, 1.0, 1.0)]
    thresholds = [(0.04045,) * 3, (0.04045, 0.5, 0.9), (0.0998,) * 3, (0.1, 0.0, 0.0)]
    return np.array(corners + near_grays + thresholds, np.float32)


def _colors() -> np.ndarray:
    """Thousands of random sRGB colours (fixed seed) plus the edge cases."""
    rng = np.random.default_rng(1234)
    random = rng.uniform(0.0, 1.0, size=(4000, 3)).astype(np.float32)
    return np.concatenate([_edge_colors(), random])


def _sk_lab2rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        # skimage warns when it clips negative Z of out-of-gamut colours; that is the point here.
        warnings.simplefilter("ignore", UserWarning)
        return skcolor.lab2rgb(np.asarray(lab, np.float64))


def _random_lab(n: int, seed: int) -> np.ndarray:
    """Random Lab, mostly out of the sRGB gamut (|a|, |b| up to 150)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0, 100, n), rng.uniform(-150, 150, n),
                     rng.uniform(-150, 150, n)], -1).astype(np.float32)


def test_rgb_to_lab_matches_skimage():
    rgb = _colors()
    lab = color.rgb_to_lab(rgb).numpy()
    expected = skcolor.rgb2lab(rgb.astype(np.float64))
    assert lab.dtype == np.float32
    np.testing.assert_allclose(lab, expected, rtol=0, atol=LAB_ATOL)


def test_near_grays_have_near_zero_chroma_like_skimage():
    rgb = _edge_colors()[8:15]  # the near-grays
    lab = color.rgb_to_lab(rgb).numpy()
    expected = skcolor.rgb2lab(rgb.astype(np.float64))
    np.testing.assert_allclose(lab, expected, rtol=0, atol=LAB_ATOL)
    # One 8-bit step off gray is a small but non-zero chroma (< 3 Lab units).
    assert np.all(np.hypot(lab[:, 1], lab[:, 2]) < 3.0)


def test_rgb_lab_rgb_round_trip():
    rgb = _colors()
    back = color.lab_to_rgb(color.rgb_to_lab(rgb)).numpy()
    np.testing.assert_allclose(back, rgb, rtol=0, atol=ROUND_TRIP_ATOL)


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    lab = _random_lab(4000, seed=7)
    lab = np.concatenate([lab, np.array([[0, 0, 0], [100, 0, 0], [50, 300, -300],
                                         [50, -300, 300], [0, 300, -300], [100, -300, 300],
                                         [60, 0, 250]], np.float32)])
    rgb = color.lab_to_rgb(lab).numpy()
    expected = _sk_lab2rgb(lab)
    # Most of these colours are out of gamut, so clipping is really exercised.
    clipped = np.any((expected == 0.0) | (expected == 1.0), axis=-1)
    assert clipped.mean() > 0.5
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_allclose(rgb, expected, rtol=0, atol=LAB2RGB_ATOL)


def test_white_and_black():
    lab = color.rgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], np.float32)).numpy()
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], rtol=0, atol=LAB_ATOL)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], rtol=0, atol=LAB_ATOL)
    rgb = color.lab_to_rgb(np.array([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)).numpy()
    np.testing.assert_allclose(rgb, [[1, 1, 1], [0, 0, 0]], rtol=0, atol=ROUND_TRIP_ATOL)


def _jacobian(fn, x: np.ndarray) -> np.ndarray:
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.batch_jacobian(y, x).numpy()


def test_rgb_to_lab_gradients_finite_at_edges_and_thresholds():
    rgb = np.array([[0, 0, 0], [1, 1, 1],
                    [0.04045] * 3,  # sRGB linear/power threshold
                    [0.0998] * 3,  # Y/Yn ~ 0.008856, the Lab f(t) threshold
                    [0.04045, 0.0, 1.0], [1e-7, 0.0, 0.0]], np.float32)
    jac = _jacobian(color.rgb_to_lab, rgb)
    assert np.all(np.isfinite(jac)), jac
    # Lightness rises with every channel at these points (the gradient is not just zeroed).
    assert np.all(jac[:4, 0, :] > 0.0), jac[:4, 0, :]


def test_rgb_to_lab_gradient_matches_finite_difference_of_skimage():
    # Interior points away from the thresholds, where the function is smooth.
    rgb = np.array([[0.2, 0.5, 0.7], [0.9, 0.3, 0.1], [0.4, 0.4, 0.45]], np.float32)
    jac = _jacobian(color.rgb_to_lab, rgb)
    eps = 1e-5
    numeric = np.zeros_like(jac)
    for k in range(3):
        step = np.zeros(3)
        step[k] = eps
        plus = skcolor.rgb2lab(rgb.astype(np.float64) + step)
        minus = skcolor.rgb2lab(rgb.astype(np.float64) - step)
        numeric[:, :, k] = (plus - minus) / (2 * eps)
    # float32 analytic gradient vs float64 central difference: 1% relative, 0.05 absolute.
    np.testing.assert_allclose(jac, numeric, rtol=1e-2, atol=0.05)


def test_lab_to_rgb_gradients_finite():
    lab = np.array([[0, 0, 0], [100, 0, 0], [50, 300, -300], [50, -300, 300], [0, 300, -300],
                    [100, -300, 300], [8.0, 0, 0],  # L where f(y) crosses 6/29
                    [60, 0, 250]], np.float32)  # negative Z, clipped to 0
    jac = _jacobian(color.lab_to_rgb, lab)
    assert np.all(np.isfinite(jac)), jac
    # At black, brightening L brightens every channel.
    assert np.all(jac[0, :, 0] > 0.0), jac[0]


@pytest.mark.parametrize("fn_name", ["rgb_to_lab", "lab_to_rgb"])
def test_bfloat16_in_bfloat16_out(fn_name):
    fn = getattr(color, fn_name)
    values = _colors()[:500] if fn_name == "rgb_to_lab" else _random_lab(500, seed=3)
    x_bf16 = tf.cast(values, tf.bfloat16)
    out = fn(x_bf16)
    assert out.dtype == tf.bfloat16
    # Same (bfloat16-rounded) input in float32: the only difference is the output rounding.
    ref = fn(tf.cast(x_bf16, tf.float32)).numpy()
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), ref, rtol=BF16_RTOL, atol=1e-6)


def test_model_space_scaling_is_invertible():
    lab = _random_lab(1000, seed=11)
    l, ab = color.lab_to_model(lab)
    assert l.shape == (1000, 1) and ab.shape == (1000, 2)
    np.testing.assert_allclose(l.numpy()[:, 0], lab[:, 0] / color.L_SCALE - 1.0, atol=SCALE_ATOL)
    np.testing.assert_allclose(ab.numpy(), lab[:, 1:] / color.AB_SCALE, atol=SCALE_ATOL)
    np.testing.assert_allclose(color.model_to_lab(l, ab).numpy(), lab, rtol=1e-6, atol=1e-4)


def test_every_srgb_colour_maps_into_unit_range():
    # A dense 33^3 grid of the RGB cube (including every corner, edge and face) plus random colours.
    grid = np.linspace(0.0, 1.0, 33, dtype=np.float32)
    rgb = np.concatenate([np.stack(np.meshgrid(grid, grid, grid), -1).reshape(-1, 3), _colors()])
    l, ab = color.rgb_to_model(rgb)
    l, ab = l.numpy(), ab.numpy()
    assert l.min() >= -1.0 and l.max() <= 1.0
    assert ab.min() >= -1.0 and ab.max() <= 1.0
    # The scale is not wasteful either: the gamut reaches at least 3/4 of the ab range.
    assert np.abs(ab).max() > 0.75
    np.testing.assert_allclose([l.min(), l.max()], [-1.0, 1.0], atol=1e-3)


def test_rgb_model_rgb_round_trip():
    rgb = _colors()
    l, ab = color.rgb_to_model(rgb)
    np.testing.assert_allclose(color.model_to_rgb(l, ab).numpy(), rgb, rtol=0,
                               atol=ROUND_TRIP_ATOL)
    np.testing.assert_array_equal(color.rgb_to_gray_l(rgb).numpy(), l.numpy())


def test_same_result_eager_in_dataset_map_and_in_tf_function():
    rgb = _colors()[:1000]
    eager_lab = color.rgb_to_lab(rgb).numpy()
    eager_rgb = color.lab_to_rgb(eager_lab).numpy()

    ds = tf.data.Dataset.from_tensor_slices(rgb).batch(100).map(
        lambda x: (color.rgb_to_lab(x), color.lab_to_rgb(color.rgb_to_lab(x))))
    parts = list(ds.as_numpy_iterator())
    mapped_lab = np.concatenate([p[0] for p in parts])
    mapped_rgb = np.concatenate([p[1] for p in parts])

    # Per-element map too (the shape the training pipeline uses: one image per call).
    per_elem = np.stack(list(tf.data.Dataset.from_tensor_slices(rgb[:50]).map(
        color.rgb_to_lab).as_numpy_iterator()))

    fn_lab = tf.function(color.rgb_to_lab)(tf.constant(rgb)).numpy()
    fn_rgb = tf.function(color.lab_to_rgb)(tf.constant(eager_lab)).numpy()

    for got in (mapped_lab, fn_lab):
        np.testing.assert_allclose(got, eager_lab, rtol=0, atol=GRAPH_VS_EAGER_ATOL)
    np.testing.assert_allclose(per_elem, eager_lab[:50], rtol=0, atol=GRAPH_VS_EAGER_ATOL)
    for got in (mapped_rgb, fn_rgb):
        np.testing.assert_allclose(got, eager_rgb, rtol=0, atol=GRAPH_VS_EAGER_ATOL)


def test_batched_and_single_colour_shapes():
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 1, size=(2, 4, 5, 3)).astype(np.float32)
    lab = color.rgb_to_lab(images).numpy()
    assert lab.shape == (2, 4, 5, 3)
    # Element-wise: the batched result equals the flat one and skimage's.
    flat = color.rgb_to_lab(images.reshape(-1, 3)).numpy().reshape(2, 4, 5, 3)
    np.testing.assert_allclose(lab, flat, rtol=0, atol=GRAPH_VS_EAGER_ATOL)
    np.testing.assert_allclose(lab, skcolor.rgb2lab(images.astype(np.float64)), atol=LAB_ATOL)
    assert color.lab_to_rgb(lab).shape == (2, 4, 5, 3)
    l, ab = color.rgb_to_model(images)
    assert l.shape == (2, 4, 5, 1) and ab.shape == (2, 4, 5, 2)
    assert color.model_to_rgb(l, ab).shape == (2, 4, 5, 3)

    single = np.array([1.0, 0.0, 0.0], np.float32)
    lab1 = color.rgb_to_lab(single).numpy()
    assert lab1.shape == (3,)
    np.testing.assert_allclose(lab1, skcolor.rgb2lab(single.astype(np.float64)), atol=LAB_ATOL)
    rgb1 = color.lab_to_rgb(lab1).numpy()
    assert rgb1.shape == (3,)
    np.testing.assert_allclose(rgb1, single, atol=ROUND_TRIP_ATOL)
