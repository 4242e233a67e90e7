"""colorgan.bins against independent references: the in-gamut bins re-derived with scikit-image,
and NumPy (float64) transcriptions of Zhang, Isola & Efros 2016 (soft encoding, eq. 4's
rebalancing, eq. 5's annealed mean)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from skimage.color import rgb2lab

from colorgan import bins, color

# Zhang et al.'s bins: a 10-unit grid; the gamut is probed with a 128-level sRGB grid.
GRID_LEVELS = 128
# float32 TF against float64 NumPy for probabilities (values in [0, 1]): measured 4e-7 on 2000
# random colours (float32 squared distances in Lab units^2 enter a softmax); 1e-5 still exposes
# a wrong sigma or neighbour count, which move weights by > 1e-2 (sigma 5.5: 8e-2).
PROB_ATOL = 1e-5
# The same float32 op eagerly and inside Dataset.map: identical up to kernel reordering.
MODE_ATOL = 1e-7
# Bin centres: a float32 constant divided by AB_SCALE against the float64 quotient.
CENTRE_RTOL = 1e-7
# Model-space ab (|ab| <= 1) from a float32 matmul over 262 bins against float64 (measured 2e-7).
AB_ATOL = 1e-6
# Rebalancing weights are O(1)..O(Q): float32 matvec over 262 bins against float64 (measured
# 1.4e-7 relative).
WEIGHT_RTOL = 1e-5


# ------------------------------------------------------------------------------- helpers
def np_centers_lab() -> np.ndarray:
    return np.asarray(bins.BIN_CENTERS_LAB, np.float64)


def np_squared_distances(ab_model: np.ndarray) -> np.ndarray:
    """(..., 2) model-space ab -> (..., Q) squared distances to the bin centres, Lab units^2."""
    ab_lab = np.asarray(ab_model, np.float64) * color.AB_SCALE
    return np.sum((ab_lab[..., None, :] - np_centers_lab()) ** 2, axis=-1)


def np_soft_encode(ab_model: np.ndarray, neighbours: int = 5, sigma: float = 5.0) -> np.ndarray:
    """Zhang et al. sec. 2.1: the `neighbours` nearest bins, Gaussian-weighted, normalised."""
    d2 = np_squared_distances(ab_model)
    nearest = np.argsort(d2, axis=-1)[..., :neighbours]
    weight = np.exp(-np.take_along_axis(d2, nearest, -1) / (2 * sigma ** 2))
    weight /= weight.sum(-1, keepdims=True)
    out = np.zeros(d2.shape)
    np.put_along_axis(out, nearest, weight, -1)
    return out


def np_rebalance(counts: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """Zhang et al. eq. 4: w ~ ((1 - lam) p~ + lam / Q)^-1 with E_p~[w] = 1, where p~ is the
    empirical distribution with each bin's mass spread over the bins by a Gaussian of `sigma`
    Lab units (mass-preserving, as rebalance_weights documents)."""
    p = np.asarray(counts, np.float64) / np.sum(counts)
    centers = np_centers_lab()
    d2 = np.sum((centers[:, None] - centers[None]) ** 2, -1)
    spread = np.exp(-d2 / (2 * sigma ** 2))
    spread /= spread.sum(axis=0, keepdims=True)  # column j: where bin j's mass goes
    smoothed = spread @ p
    w = 1.0 / ((1 - lam) * smoothed + lam / len(p))
    return w / np.sum(smoothed * w), smoothed


def random_gamut_ab(rng, n: int) -> np.ndarray:
    """Model-space ab of `n` random sRGB colours (via scikit-image: the independent conversion)."""
    lab = rgb2lab(rng.random((n, 1, 3))).reshape(n, 3)
    return (lab[:, 1:] / color.AB_SCALE).astype(np.float32)


# ----------------------------------------------------------------------------- the gamut
def test_bins_are_the_cells_that_srgb_colours_round_into():
    levels = np.linspace(0.0, 1.0, GRID_LEVELS)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    ab = rgb2lab(rgb).reshape(-1, 3)[:, 1:]
    cells = {tuple(c) for c in np.round(ab / 10.0).astype(int)}
    table = {(round(a / 10), round(b / 10)) for a, b in bins.BIN_CENTERS_LAB}
    assert len(cells) == 262
    assert table == cells
    assert bins.NUM_BINS == len(bins.BIN_CENTERS_LAB) == 262
    assert len(set(bins.BIN_CENTERS_LAB)) == 262  # no duplicates
    # Every centre lies on the 10-unit grid.
    assert np.all(np.mod(np_centers_lab(), 10.0) == 0)


def test_bin_centers_are_in_model_space():
    np.testing.assert_allclose(bins.bin_centers().numpy(), np_centers_lab() / color.AB_SCALE,
                               rtol=CENTRE_RTOL)
    assert bins.bin_centers().dtype == tf.float32 and bins.bin_centers().shape == (262, 2)


# -------------------------------------------------------------------------- soft encoding
def test_soft_encode_matches_the_gaussian_formula():
    ab = random_gamut_ab(np.random.default_rng(0), 200).reshape(4, 5, 10, 2)
    got = bins.soft_encode(tf.constant(ab)).numpy()
    assert got.shape == (4, 5, 10, 262) and got.dtype == np.float32
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=PROB_ATOL)
    assert bins.SOFT_NEIGHBOURS == 5
    assert np.all(np.count_nonzero(got, axis=-1) == 5)
    np.testing.assert_allclose(got, np_soft_encode(ab), atol=PROB_ATOL)


def test_soft_encode_of_a_bin_centre_and_a_midpoint():
    # Exactly on the centre (0, 0): the 4 grid neighbours are 10 units away, the 5 nearest are the
    # centre and those 4: weights 1 : e^-2 (each), since d^2 / (2 sigma^2) = 100 / 50.
    got = bins.soft_encode(tf.zeros([2])).numpy()
    centre = bins.BIN_CENTERS_LAB.index((0.0, 0.0))
    e = np.exp(-2.0)
    np.testing.assert_allclose(got[centre], 1 / (1 + 4 * e), atol=PROB_ATOL)
    for neighbour in ((10.0, 0.0), (-10.0, 0.0), (0.0, 10.0), (0.0, -10.0)):
        np.testing.assert_allclose(got[bins.BIN_CENTERS_LAB.index(neighbour)], e / (1 + 4 * e),
                                   atol=PROB_ATOL)


def test_soft_encode_other_neighbours_and_sigma():
    ab = random_gamut_ab(np.random.default_rng(1), 50)
    got = bins.soft_encode(tf.constant(ab), neighbours=3, sigma=8.0).numpy()
    assert np.all(np.count_nonzero(got, axis=-1) == 3)
    np.testing.assert_allclose(got, np_soft_encode(ab, 3, 8.0), atol=PROB_ATOL)


def test_soft_encode_eagerly_and_inside_dataset_map():
    ab = random_gamut_ab(np.random.default_rng(2), 64).reshape(8, 8, 2)
    eager = bins.soft_encode(tf.constant(ab)).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors(ab).map(bins.soft_encode))).numpy()
    np.testing.assert_allclose(mapped, eager, rtol=0, atol=MODE_ATOL)
    np.testing.assert_allclose(eager, np_soft_encode(ab), atol=PROB_ATOL)


# --------------------------------------------------------------------- nearest bin, counts
def test_nearest_bin_is_the_argmin_distance():
    rng = np.random.default_rng(3)
    ab = np.concatenate([random_gamut_ab(rng, 300),
                         rng.uniform(-1, 1, (100, 2)).astype(np.float32)])  # out of gamut too
    got = bins.nearest_bin(tf.constant(ab)).numpy()
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.argmin(np_squared_distances(ab), axis=-1))
    # A bin's own centre is its nearest bin.
    np.testing.assert_array_equal(bins.nearest_bin(bins.bin_centers()).numpy(), np.arange(262))


def test_bin_counts_is_a_histogram_of_nearest_bins():
    ab = random_gamut_ab(np.random.default_rng(4), 500).reshape(5, 10, 10, 2)
    counts = bins.bin_counts(tf.constant(ab)).numpy()
    want = np.bincount(np.argmin(np_squared_distances(ab), -1).ravel(), minlength=262)
    assert counts.shape == (262,) and counts.dtype == np.float32
    np.testing.assert_array_equal(counts, want)
    assert counts.sum() == 500


# --------------------------------------------------------------------------- rebalancing
@pytest.mark.parametrize("lam,sigma", [(0.5, 5.0), (0.2, 5.0), (0.5, 12.0)])
def test_rebalance_weights_match_zhang_eq4(lam, sigma):
    rng = np.random.default_rng(5)
    # A skewed histogram: most mass near neutral, many bins empty (as real photos are).
    counts = np.zeros(262)
    counts[rng.choice(262, 60, replace=False)] = rng.integers(1, 50, 60)
    counts[bins.BIN_CENTERS_LAB.index((0.0, 0.0))] = 5000
    got = bins.rebalance_weights(tf.constant(counts, tf.float32), lam, sigma).numpy()
    want, smoothed = np_rebalance(counts, lam, sigma)
    np.testing.assert_allclose(got, want, rtol=WEIGHT_RTOL)
    assert np.sum(smoothed) == pytest.approx(1.0)  # the smoothing keeps the mass
    np.testing.assert_allclose(np.sum(smoothed * got), 1.0, rtol=WEIGHT_RTOL)  # E_p~[w] = 1
    # The neutral bin, the most common, weighs least; rare colours weigh more.
    assert np.argmin(got) == bins.BIN_CENTERS_LAB.index((0.0, 0.0))
    assert got.max() > 1.0 > got.min()


def test_rebalance_without_smoothing_is_the_closed_form():
    # sigma -> 0: p~ = p (the Gaussian between distinct centres, 10+ units apart, underflows),
    # so w = ((1 - lam) p + lam / Q)^-1 / sum_q p_q w_q, by hand.
    counts = np.zeros(262)
    counts[:4] = [6, 3, 1, 0]
    lam = 0.5
    p = counts / counts.sum()
    w = 1 / ((1 - lam) * p + lam / 262)
    w /= np.sum(p * w)
    got = bins.rebalance_weights(tf.constant(counts, tf.float32), lam, sigma=0.1).numpy()
    np.testing.assert_allclose(got, w, rtol=WEIGHT_RTOL)
    # Empty bins all get the largest weight, 1 / (lam / Q) before normalisation.
    np.testing.assert_allclose(got[3:], w[3], rtol=WEIGHT_RTOL)


def test_rebalance_lambda_one_is_uniform():
    counts = np.random.default_rng(6).integers(0, 100, 262).astype(np.float32)
    np.testing.assert_allclose(bins.rebalance_weights(counts, 1.0).numpy(), np.ones(262),
                               rtol=WEIGHT_RTOL)


# ------------------------------------------------------------------------- annealed mean
def test_annealed_mean_at_t1_is_the_mean_of_the_centres():
    logits = np.random.default_rng(7).normal(0, 2, (3, 4, 262)).astype(np.float32)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = p @ (np_centers_lab() / color.AB_SCALE)
    got = bins.annealed_mean(tf.constant(logits), 1.0).numpy()
    assert got.shape == (3, 4, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=AB_ATOL)


def test_annealed_mean_at_temperature_t_renormalises_p_to_the_power_1_over_t():
    logits = np.random.default_rng(8).normal(0, 1, (5, 262))
    t = 0.38  # Zhang et al.'s choice
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    q = p ** (1 / t) / np.sum(p ** (1 / t), -1, keepdims=True)  # eq. 5: f_T(z)
    got = bins.annealed_mean(tf.constant(logits, tf.float32), t).numpy()
    np.testing.assert_allclose(got, q @ (np_centers_lab() / color.AB_SCALE), atol=AB_ATOL)


def test_annealed_mean_at_small_t_is_the_mode():
    rng = np.random.default_rng(9)
    logits = rng.normal(0, 1, (6, 262)).astype(np.float32)
    mode = rng.choice(262, 6, replace=False)
    logits[np.arange(6), mode] = logits.max() + 1.0  # a clear mode, 1 logit above the rest
    got = bins.annealed_mean(tf.constant(logits), 1e-2).numpy()
    np.testing.assert_allclose(got, np_centers_lab()[mode] / color.AB_SCALE, atol=AB_ATOL)


def test_annealed_mean_of_a_one_hot_distribution_is_its_bin_centre():
    for index in (0, 100, 261):
        with np.errstate(divide="ignore"):
            logits = np.log(np.eye(262)[index]).astype(np.float32)  # 0 there, -inf elsewhere
        for t in (1.0, 0.38):
            got = bins.annealed_mean(tf.constant(logits), t).numpy()
            np.testing.assert_allclose(got, np_centers_lab()[index] / color.AB_SCALE,
                                       atol=AB_ATOL)
