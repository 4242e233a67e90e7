"""Sparse colour hints: the extra input of a user-guided generator (Zhang et al. 2017,
"Real-Time User-Guided Image Colorization with Learned Deep Priors").

A hint map is (N, H, W, 3) at the model's input resolution: model-space a*b* in [-1, 1] and a
mask channel (1 where a hint is, 0 elsewhere). All zeros is the automatic mode. Training
simulates hints as Zhang et al. do: a geometric number of points (often none), each a small
square patch revealing the ground truth's mean a*b* there, placed around the image centre.
Pure TensorFlow: it runs inside the train step's graph.
"""

from __future__ import annotations

import tensorflow as tf

from colorgan.config import HINT_MAX_POINTS as MAX_POINTS  # simulated hints per image at most

HINT_CHANNELS = 3  # a*, b*, mask
# After Zhang et al. 2017: P(k points) geometric with p = 1/8, centres ~ N(image centre,
# (side/4)^2). Their patches are 1x1 to 9x9 pixels; at colorgan's 128 px training size (and
# output stride 4) we take 1x1 to 5x5, centres clipped to the image and overlapping patches
# averaged (theirs overwrite). The hint-free share (free_fraction) is colorgan's addition.
GEOMETRIC_P = 0.125
MAX_PATCH = 5


def empty(l: tf.Tensor) -> tf.Tensor:
    """The automatic mode's hint map for model-space `l` (N, H, W, 1): all zeros."""
    return tf.zeros(tf.concat([tf.shape(l)[:3], [HINT_CHANNELS]], 0), l.dtype)


def hinted(hint_map: tf.Tensor | None) -> tf.Tensor | None:
    """(N,) bool: the images of a hint map (N, H, W, 3) that have any hint; None for None."""
    if hint_map is None:
        return None
    return tf.reduce_max(hint_map[..., 2], axis=[1, 2]) > 0


def simulate(ab: tf.Tensor, seed: tf.Tensor, *, free_fraction: float = 0.5,
             geometric_p: float = GEOMETRIC_P, max_patch: int = MAX_PATCH,
             count: int | None = None) -> tf.Tensor:
    """Simulated hints for a batch of true colours.

    Args:
      ab: (N, H, W, 2) model-space ground-truth a*b*.
      seed: int32 [2], for tf.random's stateless ops (the train step passes its step).
      free_fraction: the share of images given no hint at all (the automatic mode must stay
        as good: Zhang et al. train on some hint-free images too), besides those whose
        geometric draw is 0.
      geometric_p: p of the geometric number of points (mean (1 - p) / p).
      max_patch: patch sides are uniform in 1..max_patch pixels.
      count: exactly this many points per image instead of the geometric draw (evaluation:
        evaluate --hint_points); free_fraction is then ignored.
    Returns:
      (N, H, W, 3) float32 hint map.
    """
    ab = tf.cast(ab, tf.float32)
    shape = tf.shape(ab)
    n, h, w = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    if count is None:
        u = tf.random.stateless_uniform([n], seeds[0], minval=1e-6, maxval=1.0)
        drawn = tf.floor(tf.math.log(u) / tf.math.log(1.0 - geometric_p))
        free = tf.random.stateless_uniform([n], seeds[1]) < free_fraction
        points = tf.where(free, 0.0, tf.minimum(drawn, MAX_POINTS))
    else:
        if not 0 <= count <= MAX_POINTS:
            raise ValueError(f"count={count} must be in 0..{MAX_POINTS}")
        points = tf.fill([n], float(count))
    hw = tf.cast(tf.stack([h, w]), tf.float32)
    centre = tf.random.stateless_normal([n, MAX_POINTS, 2], seeds[2]) * hw / 4 + hw / 2
    centre = tf.clip_by_value(tf.round(centre), 0.0, hw - 1)
    side = tf.floor(tf.random.stateless_uniform([n, MAX_POINTS], seeds[3], 1.0, max_patch + 1.0))
    active = tf.range(MAX_POINTS, dtype=tf.float32)[None] < points[:, None]  # (N, K)
    return paint(ab, centre, side, active)


def paint(ab: tf.Tensor, centre: tf.Tensor, side: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    """A hint map of square patches, each revealing the mean of `ab` over itself.

    Args:
      ab: (N, H, W, 2) the colour the patches reveal (the truth, or a user's colour painted
        over the whole image).
      centre: (N, K, 2) float patch centres (row, column) in pixels.
      side: (N, K) patch sides in pixels (>= 1; even sides extend one more pixel down/right).
      active: (N, K) bool: which of the K patches exist.
    Returns:
      (N, H, W, 3): overlapping patches average their colours; the mask is 1 on any patch.
    """
    shape = tf.shape(ab)
    rows, cols = _patches(shape[1], shape[2], centre, side)
    area = tf.einsum("nkh,nkw->nk", rows, cols)
    mean = tf.einsum("nkh,nkw,nhwc->nkc", rows, cols, ab) / tf.maximum(area, 1.0)[..., None]
    return _draw(rows, cols, tf.cast(active, tf.float32), mean)


def paint_colours(hw: tf.Tensor, centre: tf.Tensor, side: tf.Tensor,
                  colours: tf.Tensor) -> tf.Tensor:
    """A hint map (1, H, W, 3) of square patches of given colours (a user's hints).

    Args:
      hw: [2] int, the map's (H, W).
      centre: (K, 2) patch centres (row, column); side: (K,) sides (>= 1), as in `paint`.
      colours: (K, 2) model-space a*b*.
    """
    rows, cols = _patches(hw[0], hw[1], centre[None], side[None])
    return _draw(rows, cols, tf.ones_like(side)[None], tf.cast(colours, tf.float32)[None])


def _patches(h, w, centre: tf.Tensor, side: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Row and column indicators (N, K, H) and (N, K, W) of square patches."""
    start = centre - tf.floor((side - 1) / 2)[..., None]  # (N, K, 2)
    stop = start + side[..., None]
    return _span(h, start[..., 0], stop[..., 0]), _span(w, start[..., 1], stop[..., 1])


def _draw(rows: tf.Tensor, cols: tf.Tensor, weight: tf.Tensor, colour: tf.Tensor) -> tf.Tensor:
    """Patches of `colour` (N, K, 2) with `weight` (N, K) -> (N, H, W, 3): overlaps average,
    the mask is 1 on any patch."""
    cover = tf.einsum("nkh,nkw,nk->nhw", rows, cols, weight)
    painted = tf.einsum("nkh,nkw,nk,nkc->nhwc", rows, cols, weight, colour)
    mask = tf.cast(cover > 0, tf.float32)[..., None]
    return tf.concat([painted / tf.maximum(cover, 1.0)[..., None], mask], -1)


def _span(size: tf.Tensor, start: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
    """(N, K, size) float: 1 on pixels start <= i < stop."""
    i = tf.range(tf.cast(size, tf.float32))
    return tf.cast((i >= start[..., None]) & (i < stop[..., None]), tf.float32)
