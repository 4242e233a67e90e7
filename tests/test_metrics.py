"""Metrics against independent references: NumPy transcriptions of the published formulas,
scikit-image, Sharma et al.'s CIEDE2000 table, and arithmetic by hand."""

import numpy as np
import pytest
import tensorflow as tf
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from skimage.metrics import structural_similarity

from colorgan import color, metrics
from conftest import smooth_color_image

# float32 TF against float64 NumPy on values of order 1.
RTOL = 1e-5
# Exact quantities (fractions of pixels, sums of small integers) computed in float32.
EXACT_ATOL = 1e-6
# sRGB 0-255 units: float32 TF colour conversion against skimage's float64 (measured ~1e-5).
RGB255_ATOL = 1e-3
# SSIM: TF filters 'valid' and skimage filters with reflection then crops (win_size - 1) // 2 = 5
# pixels per side. Both use the same 11-tap Gaussian (skimage: truncate 3.5 * sigma 1.5 -> radius
# 5), so the surviving window positions and weights coincide and only float32 (TF) against float64
# (skimage) rounding separates them (measured < 1e-6 on 48x48). The tolerance leaves 100x margin
# yet catches border handling: averaging skimage's map with its reflected border kept moves these
# images' SSIM by 3e-4 to 1e-2.
SSIM_ATOL = 1e-4
# CIEDE2000, float32 TF against skimage's float64: measured ~7e-5 on 5000 random pairs (the error
# grows with ΔE00, up to ~130 here); 1e-3 is far below a just-noticeable difference (~1).
DE00_ATOL = 1e-3
# Sharma et al. print ΔE00 to 4 decimals: rounding (5e-5) plus float32 error.
SHARMA_ATOL = 1e-4
# Colourfulness in 0-255 units (values up to ~150): float32 against float64.
COLORFULNESS_RTOL = 1e-5


def test_psnr_matches_formula():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 9, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    expected = 10 * np.log10(1.0 / np.mean((a - b) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(metrics.psnr(a, b).numpy(), expected, rtol=RTOL)


def test_psnr_of_identical_images_is_capped():
    a = np.full((1, 4, 4, 3), 0.3, np.float32)
    assert metrics.psnr(a, a).numpy()[0] == pytest.approx(metrics.PSNR_MAX_DB, rel=1e-5)


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



def _random_lab(rng, shape):
    """In-gamut Lab from random sRGB, through skimage (the independent conversion)."""
    return rgb2lab(rng.random(shape + (3,)))


def test_identical_images_score_perfectly():
    rng = np.random.default_rng(2)
    rgb = rng.random((2, 16, 16, 3))
    lab = rgb2lab(rgb)
    np.testing.assert_allclose(metrics.paper_accuracy(lab, lab).numpy(), [1.0, 1.0])
    np.testing.assert_allclose(metrics.ab_auc(lab[..., 1:], lab[..., 1:]).numpy(), [1.0, 1.0])
    np.testing.assert_allclose(metrics.ab_error_cdf(lab[..., 1:], lab[..., 1:]).numpy(),
                               np.ones((2, 151)))
    np.testing.assert_allclose(metrics.paper_mae(lab, lab).numpy(), [0.0, 0.0])
    np.testing.assert_allclose(metrics.rgb_mae_255(rgb, rgb).numpy(), [0.0, 0.0])
    np.testing.assert_allclose(metrics.ssim(rgb, rgb).numpy(), [1.0, 1.0], atol=SSIM_ATOL)
    np.testing.assert_allclose(metrics.ciede2000(lab, lab).numpy(), np.zeros((2, 16, 16)))
    np.testing.assert_allclose(metrics.mean_ciede2000(lab, lab).numpy(), [0.0, 0.0])


def test_gray_baseline_by_hand():
    # A 2x2 image at L = 50 whose true ab are (0, 0), (3, 4), (6, 8), (30, 40); the gray
    # baseline predicts ab = 0 and keeps L. Euclidean ab errors: 0, 5, 10, 50.
    ab_true = np.array([[[[0, 0], [3, 4]], [[6, 8], [30, 40]]]], np.float32)
    ab_pred = np.zeros_like(ab_true)
    lab_true = np.concatenate([np.full((1, 2, 2, 1), 50.0, np.float32), ab_true], -1)
    lab_pred = np.concatenate([lab_true[..., :1], ab_pred], -1)

    # Accuracy, t = 2: ΔL = 0 and |Δa|, |Δb| <= 2.2 * 2 = 4.4 holds for (0, 0) and (3, 4) only
    # -> 2 / 4.
    np.testing.assert_allclose(metrics.paper_accuracy(lab_true, lab_pred).numpy(), [0.5],
                               atol=EXACT_ATOL)
    # CDF: errors <= t for t = 0..4: 1 pixel; 5..9: 2; 10..49: 3; 50..150: 4 (of 4).
    expected_cdf = np.concatenate([np.full(5, 0.25), np.full(5, 0.5), np.full(40, 0.75),
                                   np.full(101, 1.0)])
    np.testing.assert_allclose(metrics.ab_error_cdf(ab_true, ab_pred).numpy(), [expected_cdf],
                               atol=EXACT_ATOL)
    # AuC = mean over the 151 thresholds = (5 * 0.25 + 5 * 0.5 + 40 * 0.75 + 101 * 1) / 151
    #     = (1.25 + 2.5 + 30 + 101) / 151 = 134.75 / 151 = 0.89238...
    np.testing.assert_allclose(metrics.ab_auc(ab_true, ab_pred).numpy(), [134.75 / 151],
                               atol=EXACT_ATOL)
    # Mean |Δa|, |Δb| in Lab units = (0 + 0 + 3 + 4 + 6 + 8 + 30 + 40) / 8 = 91 / 8 = 11.375.
    np.testing.assert_allclose(
        metrics.ab_l1(ab_true / color.AB_SCALE, ab_pred / color.AB_SCALE).numpy(), [11.375],
        rtol=RTOL)
    # The paper's MAE is on sRGB 0-255: compare with skimage's Lab -> sRGB.
    expected_mae = np.mean(np.abs(lab2rgb(lab_true[0]) - lab2rgb(lab_pred[0]))) * 255
    np.testing.assert_allclose(metrics.paper_mae(lab_true, lab_pred).numpy(), [expected_mae],
                               atol=RGB255_ATOL)


def test_paper_accuracy_rounds_then_applies_per_channel_tolerances():
    # One row of 6 pixels against L = 50, a = b = 0; threshold 2 -> ΔL <= 2, |Δa|, |Δb| <= 4.4.
    truth = np.array([[[50, 0, 0]] * 6], np.float32)[None]
    pred = np.array([[[52, 0, 0],      # ΔL = 2: in
                      [53, 0, 0],      # ΔL = 3: out
                      [50, 4.4, 0],    # rounds to 4 <= 4.4: in
                      [50, 0, -4.6],   # rounds to -5, |Δb| = 5 > 4.4: out
                      [50.4, 0, 0],    # rounds to 50: in
                      [50, 2.5, -2.5]  # half to even: 2 and -2: in
                      ]], np.float32)[None]
    np.testing.assert_allclose(metrics.paper_accuracy(truth, pred).numpy(), [4 / 6],
                               atol=EXACT_ATOL)
    # Threshold 1 -> ΔL <= 1, |Δa|, |Δb| <= 2.2: only the 50.4 and (2.5, -2.5) pixels pass.
    np.testing.assert_allclose(metrics.paper_accuracy(truth, pred, threshold=1.0).numpy(),
                               [2 / 6], atol=EXACT_ATOL)


def test_paper_accuracy_matches_reference_formula_in_numpy():
    # A NumPy transcription of pixelwise_accuracy in ImagingLab/Colorizing-with-GANs src/ops.py
    # (np.round, like tf.round, rounds half to even), per image instead of per batch.
    rng = np.random.default_rng(3)
    truth = _random_lab(rng, (3, 9, 10))
    pred = truth + rng.normal(0, 3, truth.shape)
    diff = np.abs(np.round(truth) - np.round(pred))
    ok = (diff[..., 0] <= 2.0) & (diff[..., 1] <= 2.2 * 2.0) & (diff[..., 2] <= 2.2 * 2.0)
    np.testing.assert_allclose(metrics.paper_accuracy(truth, pred, 2.0).numpy(),
                               ok.mean(axis=(1, 2)), atol=EXACT_ATOL)


def test_rgb_mae_255_and_paper_mae():
    rng = np.random.default_rng(4)
    a = rng.random((2, 5, 6, 3))
    b = rng.random((2, 5, 6, 3))
    np.testing.assert_allclose(metrics.rgb_mae_255(a, b).numpy(),
                               np.mean(np.abs(a - b), axis=(1, 2, 3)) * 255, rtol=RTOL)
    # A uniform offset of 10/255 is 10 in 8-bit units.
    np.testing.assert_allclose(metrics.rgb_mae_255(a * 0.5, a * 0.5 + 10 / 255).numpy(),
                               [10.0, 10.0], rtol=RTOL)
    lab_a, lab_b = rgb2lab(a), rgb2lab(b)
    expected = np.mean(np.abs(lab2rgb(lab_a) - lab2rgb(lab_b)), axis=(1, 2, 3)) * 255
    np.testing.assert_allclose(metrics.paper_mae(lab_a, lab_b).numpy(), expected, atol=RGB255_ATOL)


def test_ab_error_cdf_matches_brute_force():
    rng = np.random.default_rng(5)
    ab_true = rng.uniform(-110, 110, (2, 8, 9, 2))
    ab_pred = rng.uniform(-110, 110, (2, 8, 9, 2))
    ab_pred[:, :4] = ab_true[:, :4] + rng.normal(0, 5, (2, 4, 9, 2))  # a spread of small errors
    dist = np.sqrt(np.sum((ab_true - ab_pred) ** 2, -1)).reshape(2, -1)
    expected = (dist[:, :, None] <= np.arange(151)).mean(axis=1)
    cdf = metrics.ab_error_cdf(ab_true, ab_pred).numpy()
    assert cdf.shape == (2, 151) and cdf.dtype == np.float32
    np.testing.assert_allclose(cdf, expected, atol=EXACT_ATOL)
    np.testing.assert_allclose(metrics.ab_auc(ab_true, ab_pred).numpy(), expected.mean(axis=1),
                               atol=EXACT_ATOL)
    # A shorter curve is a prefix of the full one.
    np.testing.assert_allclose(metrics.ab_error_cdf(ab_true, ab_pred, max_threshold=20).numpy(),
                               expected[:, :21], atol=EXACT_ATOL)


def test_ssim_matches_skimage():
    rng = np.random.default_rng(6)
    smooth = np.stack([smooth_color_image(48, 48, seed) / 255.0 for seed in (1, 2)])
    noise = rng.random((2, 48, 48, 3))
    for truth in (smooth, noise):
        pred = np.clip(truth + rng.normal(0, 0.08, truth.shape), 0, 1)
        expected = [structural_similarity(t, p, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0,
                                          channel_axis=-1) for t, p in zip(truth, pred)]
        np.testing.assert_allclose(metrics.ssim(truth, pred).numpy(), expected, atol=SSIM_ATOL)


def _rotate_ab(ab, angle):
    """Rotates (a, b) rows by `angle` radians (float64)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([ab[:, 0] * cos - ab[:, 1] * sin, ab[:, 0] * sin + ab[:, 1] * cos], -1)


def _ciede2000_cases(rng) -> tuple[np.ndarray, np.ndarray]:
    """5000 Lab pairs: random, near, gray, identical, across the 0/360 hue wrap, near-opposite."""
    def lab(n, ab_range=128.0):
        return np.stack([rng.uniform(0, 100, n), rng.uniform(-ab_range, ab_range, n),
                         rng.uniform(-ab_range, ab_range, n)], -1)

    first, second = [lab(2000)], [lab(2000)]  # unrelated colours
    near = lab(1000)
    first.append(near)
    second.append(near + rng.normal(0, 1.5, near.shape))
    gray = lab(600)
    gray[:200, 1:] = 0  # gray against colour
    other = lab(600)
    other[200:400, 1:] = 0  # colour against gray
    gray[400:, 1:] = other[400:, 1:] = 0  # gray against gray
    first.append(gray)
    second.append(other)
    same = lab(400)
    first.append(same)
    second.append(same.copy())
    # Hue wrap-around: positive a, b just above and below 0 (hues near 0 and 360 degrees).
    wrap1, wrap2 = lab(500), lab(500)
    wrap1[:, 1], wrap2[:, 1] = rng.uniform(1, 60, 500), rng.uniform(1, 60, 500)
    wrap1[:, 2], wrap2[:, 2] = rng.uniform(0.001, 5, 500), -rng.uniform(0.001, 5, 500)
    first.append(wrap1)
    second.append(wrap2)
    # Nearly opposite hues, 1e-3 rad either side of 180 degrees (exact ties are tested apart).
    near_opposite = lab(500)
    turned = near_opposite.copy()
    turned[:, 0] = rng.uniform(0, 100, 500)
    turned[:, 1:] = -_rotate_ab(near_opposite[:, 1:], np.where(np.arange(500) % 2, 1e-3, -1e-3))
    turned[250:, 1:] *= 0.5
    first.append(near_opposite)
    second.append(turned)
    return np.concatenate(first), np.concatenate(second)


def test_ciede2000_matches_skimage():
    rng = np.random.default_rng(7)
    first, second = _ciede2000_cases(rng)
    expected = deltaE_ciede2000(first, second)
    # Batched as images: (N, H, W, 3) = (4, 25, 50, 3).
    got = metrics.ciede2000(first.reshape(4, 25, 50, 3), second.reshape(4, 25, 50, 3)).numpy()
    assert got.shape == (4, 25, 50) and got.dtype == np.float32
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.reshape(-1), expected, atol=DE00_ATOL)
    np.testing.assert_allclose(
        metrics.mean_ciede2000(first.reshape(4, 25, 50, 3), second.reshape(4, 25, 50, 3)).numpy(),
        expected.reshape(4, -1).mean(axis=1), atol=DE00_ATOL)


def test_ciede2000_exactly_opposite_hues_follow_sharma():
    # At |h1' - h2'| = 180 degrees exactly, Sharma's mean hue is (h1' + h2') / 2 (no wrap), the
    # limit from the side where |h1' - h2'| < 180. skimage decides this with float64 atan2
    # values that can miss 180 by one ulp (it then wraps, off by up to ~50 ΔE00 units), so the
    # reference here is skimage on the same pairs with the second colour turned 1e-6 rad towards
    # the first: unambiguous in float64 and, with ΔH' flat at 180 degrees, within DE00_ATOL.
    rng = np.random.default_rng(11)
    first = np.stack([rng.uniform(0, 100, 400), rng.uniform(-110, 110, 400),
                      rng.uniform(-110, 110, 400)], -1)
    second = first.copy()
    second[:, 0] = rng.uniform(0, 100, 400)
    # Exact negatives (and halves: a power-of-two scale keeps them exact in float32 too).
    second[:, 1:] = -first[:, 1:] * np.where(np.arange(400) < 200, 1.0, 0.5)[:, None]
    hue1 = np.mod(np.arctan2(first[:, 2], first[:, 1]), 2 * np.pi)
    hue2 = np.mod(np.arctan2(second[:, 2], second[:, 1]), 2 * np.pi)
    nudged = second.copy()
    nudged[:, 1:] = _rotate_ab(second[:, 1:], -np.sign(hue2 - hue1) * 1e-6)
    np.testing.assert_allclose(metrics.ciede2000(first, second).numpy(),
                               deltaE_ciede2000(first, nudged), atol=DE00_ATOL)


# Rows of Table 1 in Sharma, Wu & Dalal 2005 ("The CIEDE2000 color-difference formula:
# implementation notes, supplementary test data, and mathematical observations"): pairs 1-4, 7,
# 9-13 (the mean-hue discontinuity at |Δh'| = 180), 17, 18 and 25.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0010), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0011), 7.2195),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0012), 7.2195),
    ((50.0, -0.0010, 2.4900), (50.0, 0.0009, -2.4900), 4.8045),
    ((50.0, 2.5000, 0.0000), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5000, 0.0000), (61.0, -5.0, 29.0), 22.8977),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def test_ciede2000_matches_sharma_table():
    first = np.array([p[0] for p in SHARMA_PAIRS])
    second = np.array([p[1] for p in SHARMA_PAIRS])
    published = np.array([p[2] for p in SHARMA_PAIRS])
    # The typed-in rows agree with skimage too, so a typo would show here.
    np.testing.assert_allclose(deltaE_ciede2000(first, second), published, atol=SHARMA_ATOL)
    np.testing.assert_allclose(metrics.ciede2000(first, second).numpy(), published,
                               atol=SHARMA_ATOL)
    # The formula is symmetric in its two colours.
    np.testing.assert_allclose(metrics.ciede2000(second, first).numpy(), published,
                               atol=SHARMA_ATOL)


def _colorfulness_numpy(rgb):
    """Hasler & Suesstrunk 2003, M^(3), on 0-255 sRGB (NumPy's std is the population std)."""
    r, g, b = np.moveaxis(rgb.astype(np.float64) * 255, -1, 0)
    rg, yb = r - g, 0.5 * (r + g) - b
    axes = (1, 2)
    return (np.sqrt(rg.std(axis=axes) ** 2 + yb.std(axis=axes) ** 2)
            + 0.3 * np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2))


def test_colorfulness_matches_numpy_reference():
    rng = np.random.default_rng(8)
    rgb = np.concatenate([rng.random((2, 12, 10, 3)),
                          smooth_color_image(12, 10, 4)[None] / 255.0])
    np.testing.assert_allclose(metrics.colorfulness(rgb).numpy(), _colorfulness_numpy(rgb),
                               rtol=COLORFULNESS_RTOL)
    gray = np.repeat(rng.random((1, 12, 10, 1)), 3, axis=-1)
    np.testing.assert_allclose(metrics.colorfulness(gray).numpy(), [0.0], atol=EXACT_ATOL)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, tf.bfloat16])
def test_metrics_accept_any_float_dtype_and_return_float32(dtype):
    rng = np.random.default_rng(9)
    rgb = tf.cast(rng.random((2, 12, 12, 3)), dtype)
    lab = tf.cast(rgb2lab(rng.random((2, 12, 12, 3))), dtype)
    outputs = [metrics.paper_accuracy(lab, lab), metrics.paper_mae(lab, lab),
               metrics.rgb_mae_255(rgb, rgb), metrics.ab_auc(lab[..., 1:], lab[..., 1:]),
               metrics.ssim(rgb, rgb), metrics.mean_ciede2000(lab, lab), metrics.colorfulness(rgb)]
    for out in outputs:
        assert out.dtype == tf.float32 and out.shape == (2,)


def test_metrics_run_in_tf_data_map_and_with_unknown_batch_size():
    rng = np.random.default_rng(10)
    lab_true = _random_lab(rng, (4, 6, 7)).astype(np.float32)
    lab_pred = (lab_true + rng.normal(0, 3, lab_true.shape)).astype(np.float32)
    eager = {"accuracy": metrics.paper_accuracy(lab_true, lab_pred).numpy(),
             "auc": metrics.ab_auc(lab_true[..., 1:], lab_pred[..., 1:]).numpy(),
             "de00": metrics.mean_ciede2000(lab_true, lab_pred).numpy()}

    def per_batch(t, p):
        return {"accuracy": metrics.paper_accuracy(t, p),
                "auc": metrics.ab_auc(t[..., 1:], p[..., 1:]),
                "de00": metrics.mean_ciede2000(t, p)}

    # Batches of 3 and 1: the map function sees an unknown batch dimension.
    dataset = tf.data.Dataset.from_tensor_slices((lab_true, lab_pred)).batch(3).map(per_batch)
    mapped = {k: np.concatenate([b[k].numpy() for b in dataset]) for k in eager}
    for key in eager:
        np.testing.assert_allclose(mapped[key], eager[key], rtol=RTOL, err_msg=key)

    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    graph_cdf = tf.function(lambda t, p: metrics.ab_error_cdf(t[..., 1:], p[..., 1:]),
                            input_signature=[spec, spec])
    np.testing.assert_allclose(graph_cdf(lab_true, lab_pred).numpy(),
                               metrics.ab_error_cdf(lab_true[..., 1:], lab_pred[..., 1:]).numpy(),
                               atol=EXACT_ATOL)


# ------------------------------------------------------------------- flat regions, banding
def np_local_std(l_star: np.ndarray, window: int) -> np.ndarray:
    """(N, H, W) -> per-pixel population std of L* over a window x window box, clipped at the
    borders (only the pixels that exist), float64, by explicit loops."""
    n, h, w = l_star.shape
    r = window // 2
    out = np.zeros(l_star.shape)
    for i in range(h):
        for j in range(w):
            box = l_star[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[:, i, j] = box.reshape(n, -1).std(axis=1)
    return out


def _flat_and_textured(rng, h: int = 24, w: int = 32) -> np.ndarray:
    """(2, H, W) L*: image 0 flat (L* 60) on its left half and a 40/80 checkerboard on its right
    (mean 60 too, so only texture separates them); image 1 the checkerboard plus noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    checker = np.where((yy + xx) % 2, 40.0, 80.0)
    l_star = np.stack([checker, checker + rng.normal(0, 3, (h, w))])
    l_star[0, :, : w // 2] = 60.0
    return l_star


def test_flat_mask_matches_a_numpy_local_std():
    l_star = _flat_and_textured(np.random.default_rng(20))
    mask = metrics.flat_mask(tf.constant(l_star, tf.float32)).numpy()
    assert mask.shape == l_star.shape and mask.dtype == np.float32
    want = np_local_std(l_star, metrics.FLAT_WINDOW) < metrics.FLAT_MAX_STD_L
    np.testing.assert_array_equal(mask, want.astype(np.float32))
    # The known answer: flat exactly where the 9x9 window stays inside the flat half (columns
    # 0 .. 16 - 4 - 1); one checkerboard column (+-20) in 9 is a std of 20 / 3 = 6.7 L* units.
    r = metrics.FLAT_WINDOW // 2
    assert metrics.FLAT_WINDOW == 9 and metrics.FLAT_MAX_STD_L == 2.0
    np.testing.assert_array_equal(mask[0, :, :16 - r], 1.0)
    np.testing.assert_array_equal(mask[0, :, 16 - r:], 0.0)
    np.testing.assert_array_equal(mask[1], 0.0)


def test_flat_mask_threshold_on_a_gentle_ramp():
    # A horizontal L* ramp of slope s has window std s * sqrt((9^2 - 1) / 12) = 2.582 s in the
    # interior (the std of 9 evenly spaced columns): flat below s = 2 / 2.582 = 0.775 per px.
    cols = np.arange(40, dtype=np.float64)
    for slope, flat in ((0.7, True), (0.85, False)):
        l_star = np.broadcast_to(30 + slope * cols, (1, 20, 40))
        mask = metrics.flat_mask(tf.constant(l_star, tf.float32)).numpy()
        assert np.all(mask[:, :, 4:-4] == float(flat)), slope


def test_flat_ab_error_on_known_errors():
    rng = np.random.default_rng(21)
    l_star = _flat_and_textured(rng)
    ab_true = rng.uniform(-40, 40, l_star.shape + (2,))
    lab_true = np.concatenate([l_star[..., None], ab_true], -1)
    lab_pred = lab_true.copy()
    lab_pred[0, :, :16, 1:] += (3.0, 4.0)  # an error of 5 everywhere on the flat half
    lab_pred[:, :, 16:, 1:] += 50.0  # and a huge one where L* is textured: not counted
    lab_pred[..., 0] += rng.normal(0, 5, l_star.shape)  # L* of the prediction is not used
    error, count = metrics.flat_ab_error(tf.constant(lab_true, tf.float32),
                                         tf.constant(lab_pred, tf.float32))
    r = metrics.FLAT_WINDOW // 2
    np.testing.assert_allclose(count.numpy(), [24 * (16 - r), 0.0])
    # 5 on the flat pixels; 0 (not NaN) for an image without any.
    np.testing.assert_allclose(error.numpy(), [5.0, 0.0], rtol=RTOL)
    # Against NumPy on the same mask with arbitrary errors.
    lab_pred[0, :, :16, 1:] = lab_true[0, :, :16, 1:] + rng.normal(0, 6, (24, 16, 2))
    error, _ = metrics.flat_ab_error(tf.constant(lab_true, tf.float32),
                                     tf.constant(lab_pred, tf.float32))
    flat = np_local_std(l_star, 9) < 2.0
    dist = np.sqrt(np.sum((lab_true[..., 1:] - lab_pred[..., 1:]) ** 2, -1))
    np.testing.assert_allclose(error.numpy()[0], dist[0][flat[0]].mean(), rtol=RTOL)
