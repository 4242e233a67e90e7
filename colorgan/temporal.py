"""Temporal consistency for video: colour carried along optical flow, and the flicker metric.

A per-frame colouriser guesses each frame's colour afresh, so the same shirt changes hue from
frame to frame (flicker). `Stabilizer` blends each frame's predicted colour with the previous
frame's output colour warped onto it by optical flow (OpenCV's DIS, computed on L), only where
the flow is trustworthy: a forward-backward consistency check (Sundaram et al. 2010, as Lai et
al. 2018 use it) and a brightness check mask out occlusions and new content, which take the new
prediction; a scene-cut detector resets the history. It works on the model's render-size view
(colour is smooth and upsampled afterwards anyway), so it costs two small flows per frame, and
its state is one frame.

`warping_error` is the flicker metric of Lai et al. 2018 ("Learning Blind Video Temporal
Consistency"): the mean squared difference between each output frame and the previous output
warped onto it, over the pixels the flow maps validly (mean over pixels and channels).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from colorgan.config import TEMPORAL_MODES
_UINT8_MAX = 255.0  # color.UINT8_MAX, not imported: this module runs without TensorFlow


@dataclasses.dataclass(frozen=True)
class FlowSettings:
    """How `Stabilizer` trusts the flow. Defaults measured on synthetic clips (BENCHMARKS.md)."""
    blend: float = 0.85  # weight of the warped previous colour where the flow is trusted
    cut_distance: float = 0.35  # L-histogram distance (0..1) above which a frame starts a shot
    min_tracked: float = 0.25  # a frame with fewer trusted pixels than this fraction: a cut
    max_brightness_error: float = 12.0  # |L_t - warped L_t-1| (gray levels) a trusted pixel allows
    mask_blur: float = 1.5  # sigma (px) softening the trust mask: no seams in the colour

    def __post_init__(self):
        for name, low, high in (("blend", 0.0, 0.99), ("cut_distance", 0.0, 1.0),
                                ("min_tracked", 0.0, 1.0)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"FlowSettings.{name}={getattr(self, name)} must be in "
                                 f"[{low}, {high}]")
        if self.max_brightness_error <= 0 or self.mask_blur < 0:
            raise ValueError("FlowSettings: max_brightness_error must be > 0, mask_blur >= 0")


def check_mode(mode: str) -> str:
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode {mode!r}; valid: {', '.join(TEMPORAL_MODES)}")
    return mode


def gray_u8(l: np.ndarray) -> np.ndarray:
    """Model-space L (h, w) in [-1, 1] -> uint8 gray, the input OpenCV's flow takes."""
    return np.clip(np.rint((np.asarray(l, np.float32) + 1.0) * (_UINT8_MAX / 2)), 0,
                   _UINT8_MAX).astype(np.uint8)


class FlowEstimator:
    """Dense optical flow between gray frames (OpenCV's DIS, medium preset)."""

    def __init__(self):
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def flow(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """uint8 (h, w) frames -> float32 (h, w, 2) flow: src(x) ~ dst(x + flow(x))."""
        return self._dis.calc(src, dst, None)

    def backward_map(self, cur: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel of `cur` was in `prev`: (map (h, w, 2) of absolute x, y positions
        in `prev`, cv2.remap's convention; bool mask (h, w) where the map passes the
        forward-backward check and stays inside the frame)."""
        backward, forward = self.flow(cur, prev), self.flow(prev, cur)
        grid = pixel_grid(cur.shape)
        where = grid + backward
        forward_there = remap(forward, where)
        # Sundaram et al.: the two flows must cancel, up to a tolerance growing with the motion.
        mismatch = np.sum((backward + forward_there) ** 2, -1)
        tolerance = 0.01 * (np.sum(backward ** 2, -1) + np.sum(forward_there ** 2, -1)) + 0.5
        return where, (mismatch < tolerance) & inside(where, cur.shape)


def pixel_grid(shape: tuple[int, ...]) -> np.ndarray:
    """float32 (h, w, 2): each pixel's own (x, y)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return np.stack([xs, ys], -1)


def inside(where: np.ndarray, shape: tuple[int, ...], margin: float = 0.0) -> np.ndarray:
    """bool (h, w): positions `where` (h, w, 2) inside an image of `shape`, `margin` px in."""
    x, y = where[..., 0], where[..., 1]
    return ((x >= margin) & (y >= margin) & (x <= shape[1] - 1 - margin)
            & (y <= shape[0] - 1 - margin))


def remap(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`image` sampled (bilinear, edges replicated) at positions `where` (h, w, 2)."""
    return cv2.remap(np.ascontiguousarray(image, np.float32), where[..., 0], where[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Total-variation distance (0: same, 1: disjoint) of two uint8 frames' gray histograms."""
    ha = np.bincount(a.ravel().astype(np.int32) * bins // 256, minlength=bins) / a.size
    hb = np.bincount(b.ravel().astype(np.int32) * bins // 256, minlength=bins) / b.size
    return float(0.5 * np.abs(ha - hb).sum())


class Stabilizer:
    """Blends each frame's predicted colour with the previous output colour carried by flow.

    Feed frames in order through `step`; `cuts` lists the frames it took for new shots.
    """

    def __init__(self, settings: FlowSettings = FlowSettings()):
        self.settings = settings
        self._flow = FlowEstimator()
        self._prev_gray: np.ndarray | None = None
        self._prev_ab: np.ndarray | None = None
        self.frames = 0
        self.cuts: list[int] = []

    def step(self, l: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """One frame's model-space L (h, w) and predicted ab (h, w, 2) -> the ab to show."""
        gray, ab = gray_u8(l), np.asarray(ab, np.float32)
        out = ab
        if self._prev_gray is not None and self._prev_gray.shape == gray.shape:
            trust = self._trust(gray)
            if trust is None:
                self.cuts.append(self.frames)
            else:
                carried = remap(self._prev_ab, self._where)
                weight = (self.settings.blend * trust)[..., None]
                out = weight * carried + (1.0 - weight) * ab
        self._prev_gray, self._prev_ab = gray, out
        self.frames += 1
        return out

    def _trust(self, gray: np.ndarray) -> np.ndarray | None:
        """float32 (h, w) in [0, 1]: how far the flow from the previous frame can be trusted
        per pixel; None at a scene cut."""
        s = self.settings
        if histogram_distance(gray, self._prev_gray) > s.cut_distance:
            return None
        self._where, valid = self._flow.backward_map(gray, self._prev_gray)
        brightness = np.abs(remap(self._prev_gray, self._where) - gray.astype(np.float32))
        valid &= brightness <= s.max_brightness_error
        if valid.mean() < s.min_tracked:
            return None
        trust = valid.astype(np.float32)
        if s.mask_blur > 0:
            trust = cv2.GaussianBlur(trust, (0, 0), s.mask_blur) * trust  # soft edges, inside only
        return trust


def warping_error(cur: np.ndarray, prev: np.ndarray, where: np.ndarray,
                  valid: np.ndarray) -> float | None:
    """Lai et al.'s warping error of one frame pair: mean over valid pixels and channels of
    (cur - prev warped by `where`)^2.

    Args:
      cur, prev: float (h, w, C) output frames in [0, 1] (sRGB).
      where: (h, w, 2) position in `prev` of each pixel of `cur` (known motion, or
        FlowEstimator.backward_map on the input frames).
      valid: bool (h, w): pixels that `where` maps (not occluded, not across a cut).
    Returns:
      The error, or None when no pixel is valid (a cut).
    """
    if not valid.any():
        return None
    diff = (np.asarray(cur, np.float32) - remap(prev, where))[valid]
    return float(np.mean(diff ** 2))
