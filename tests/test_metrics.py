"""Metrics against their formulas, computed independently in NumPy."""

import numpy as np
import tensorflow as tf

from colorgan import color, metrics

# float32 TF against float64 NumPy on values of order 1.
RTOL = 1e-5


def test_psnr_matches_formula():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 9, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    expected = 10 * np.log10(1.0 / np.mean((a - b) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(metrics.psnr(a, b).numpy(), expected, rtol=RTOL)


def test_psnr_of_identical_images_is_infinite():
    a = np.full((1, 4, 4, 3), 0.3, np.float32)
    assert np.isinf(metrics.psnr(a, a).numpy()[0])


def test_ab_l1_is_in_lab_units():
    rng = np.random.default_rng(1)
    t = rng.uniform(-1, 1, (2, 5, 6, 2))
    p = rng.uniform(-1, 1, (2, 5, 6, 2))
    expected = np.mean(np.abs(t - p) * color.AB_SCALE, axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.ab_l1(t, p).numpy(), expected, rtol=RTOL)
    # A constant offset of 0.1 in model space is 11 Lab units.
    np.testing.assert_allclose(metrics.ab_l1(t, t + 0.1).numpy(), [11.0, 11.0], rtol=RTOL)


def test_metrics_run_inside_tf_function():
    a = tf.random.stateless_uniform((2, 4, 4, 3), seed=[1, 2])
    b = tf.random.stateless_uniform((2, 4, 4, 3), seed=[3, 4])
    np.testing.assert_allclose(tf.function(metrics.psnr)(a, b).numpy(), metrics.psnr(a, b).numpy(),
                               rtol=RTOL)
