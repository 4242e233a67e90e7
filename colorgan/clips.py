"""Synthetic video clips with known camera motion, made from still photos.

A clip renders each frame from a photo through an affine camera pose, so the motion between two
frames is known exactly. That makes a ground-truth temporal-consistency check possible for a
video colouriser: the warping error of Lai et al. 2018, "Learning Blind Video Temporal
Consistency" (ECCV), without an optical-flow estimate. Warp colourised frame t-1 with `maps[t]`
and compare it with colourised frame t where `valid[t]` is True. NumPy and OpenCV only: this is
evaluation tooling, not part of the training data path or the exported graph.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import cv2
import numpy as np

MOTIONS = ("pan", "zoom", "rotate", "cut", "grain")

# Ranges the seed draws from. A few px/frame is typical hand-held or slow-pan motion at 320 px
# width. The floors are half of each range's low end: if a motion must be slowed below its floor
# to keep the view inside the photo, the photo is too small for that size and length, and we
# raise instead of returning a clip that barely moves.
PAN_PX_PER_FRAME = (2.0, 4.0)
CUT_PAN_PX_PER_FRAME = (1.0, 2.0)  # "cut" pans slowly, so the cut is the main event
ZOOM_PER_FRAME = (0.01, 0.02)  # relative scale change per frame
ROTATE_DEG_PER_FRAME = (0.5, 1.0)
FLOOR_FRACTION = 0.5
# A long zoom is slowed so that the whole clip magnifies by at most this factor: beyond it the
# frames are mostly bilinear upsampling blur.
MAX_ZOOM_FACTOR = 2.0
# Film-like grain, in 8-bit gray levels, added equally to R, G and B (luminance grain), so the
# gray input of a colouriser sees the full sigma.
GRAIN_SIGMA = 6.0
# A warped point must land at least this far inside frame t-1, so that all four bilinear
# neighbours of cv2.remap are real pixels and not the border.
VALID_MARGIN_PX = 1
# Bisection steps when slowing a motion to fit the photo (2**-30 of the range: far below 1/32 px,
# the sub-pixel resolution of cv2's bilinear warps).
_FIT_STEPS = 30

Poses = np.ndarray  # float64 (T, 3, 3): frame pixel (x, y, 1) -> photo coordinates (u, v, 1)


@dataclasses.dataclass
class Clip:
    """A clip with its ground-truth motion.

    Attributes:
        frames: uint8 (T, h, w, 3) sRGB, the ground-truth colour frames.
        maps: float32 (T, h, w, 2); maps[t][y, x] = (x', y'), the sub-pixel position in frame
            t-1 of the scene point seen at pixel (x, y) of frame t (cv2.remap's map_x, map_y).
            maps[0], and maps[t] for t in `cuts`, are unused (zeros).
        valid: bool (T, h, w); True where maps[t] lands inside frame t-1 with a
            VALID_MARGIN_PX margin and the point is inside the source photo. All False at t = 0
            and at each cut.
        cuts: indices t where frame t starts a new shot (a hard cut between t-1 and t).
        motion: one of MOTIONS.
    """

    frames: np.ndarray
    maps: np.ndarray
    valid: np.ndarray
    cuts: tuple[int, ...]
    motion: str


def make_clip(photo: np.ndarray, motion: str, frames: int, size: tuple[int, int], *,
              second: np.ndarray | None = None, seed: int = 0) -> Clip:
    """Renders a `frames`-long clip of `size` from `photo` with a known camera motion.

    Motions (magnitudes drawn from the seed within the module's ranges, slowed if needed so the
    whole trajectory stays inside the photo):
      pan: steady translation, PAN_PX_PER_FRAME in a seeded direction, centred on the photo.
      zoom: scale change of ZOOM_PER_FRAME per frame about the photo centre, in or out (seeded),
        never downsampling (the widest frame is a 1:1 crop); a long clip zooms more slowly, at
        most MAX_ZOOM_FACTOR in total.
      rotate: rotation of ROTATE_DEG_PER_FRAME about the photo centre, seeded sense.
      cut: frames // 2 frames of `photo`, then a hard cut to `second`, each shot with its own
        slow pan; cuts = (frames // 2,).
      grain: static camera, the centred crop photo[(H-h)//2:, (W-w)//2:][:h, :w]; frames
        frames//3 .. frames - frames//3 - 1 get fresh zero-mean Gaussian grain of GRAIN_SIGMA
        gray levels (same on R, G, B). The maps are the identity: the scene does not move.

    Frames are rendered with cv2.warpAffine (bilinear, border replicate), so
    cv2.remap(frames[t-1], maps[t][..., 0], maps[t][..., 1], cv2.INTER_LINEAR) reproduces
    frames[t] where valid[t], up to interpolation error.

    Args:
        photo: uint8 (H, W, 3) sRGB, at least `size`; pan, rotate and cut need room to move.
        motion: one of MOTIONS.
        frames: clip length T, at least 2.
        size: (h, w) of the clip, each at least 3.
        second: uint8 (H2, W2, 3), the photo after the cut; required for "cut". Other motions
            ignore it (but still check it), so one call can loop over MOTIONS.
        seed: seeds every random choice; the same arguments give the same clip.

    Returns:
        The Clip.

    Raises:
        ValueError: unknown motion, frames < 2, a bad size or photo, "cut" without `second`,
            or a photo too small for the motion at this size and length.
    """
    _check_args(photo, motion, frames, size, second)
    rng = np.random.default_rng(seed)
    if motion == "cut":
        cut = frames // 2
        first = _shot(photo, "cut", cut, size, rng)
        after = _shot(second, "cut", frames - cut, size, rng)
        parts = [np.concatenate([a, b]) for a, b in zip(first, after)]
        return Clip(*parts, cuts=(cut,), motion=motion)
    return Clip(*_shot(photo, motion, frames, size, rng), cuts=(), motion=motion)


def _check_args(photo: np.ndarray, motion: str, frames: int, size: tuple[int, int],
                second: np.ndarray | None) -> None:
    """Raises ValueError for arguments make_clip cannot honour, naming the offending value."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; expected one of {', '.join(MOTIONS)}")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    if (len(size) != 2 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              for n in size) or min(size) < 3):
        raise ValueError(f"size must be (h, w) with integers >= 3, got {size!r}")
    _check_photo("photo", photo, size)
    if motion == "cut" and second is None:
        raise ValueError("motion 'cut' needs `second`, the photo shown after the cut")
    if second is not None:
        _check_photo("second", second, size)


def _check_photo(name: str, photo: np.ndarray, size: tuple[int, int]) -> None:
    """Raises ValueError unless `photo` is uint8 (H, W, 3) with H >= h and W >= w."""
    if not isinstance(photo, np.ndarray) or photo.dtype != np.uint8 or photo.ndim != 3 \
            or photo.shape[2] != 3:
        shape = getattr(photo, "shape", None)
        raise ValueError(f"{name} must be a uint8 (H, W, 3) array, got {type(photo).__name__} "
                         f"{getattr(photo, 'dtype', '')} {shape}")
    if photo.shape[0] < size[0] or photo.shape[1] < size[1]:
        raise ValueError(f"{name} {photo.shape[0]}x{photo.shape[1]} is smaller than the clip "
                         f"size {size[0]}x{size[1]}")


def _shot(photo: np.ndarray, motion: str, frames: int, size: tuple[int, int],
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, maps, valid) of one continuous shot; maps[0] zeros and valid[0] False."""
    poses = _poses(photo.shape[:2], motion, frames, size, rng)
    rendered = _render(photo, poses, size)
    if motion == "grain":
        rendered = _add_grain(rendered, rng)
    maps, valid = _motion_maps(poses, photo.shape[:2], size)
    return rendered, maps, valid


def _poses(photo_hw: tuple[int, int], motion: str, frames: int, size: tuple[int, int],
           rng: np.random.Generator) -> Poses:
    """Draws the motion's parameters from `rng` and returns a trajectory that fits the photo."""
    if motion == "grain":
        offset = ((photo_hw[1] - size[1]) // 2, (photo_hw[0] - size[0]) // 2)
        return np.stack([_translation(*offset)] * frames)
    if motion == "zoom":
        return _zoom_poses(photo_hw, frames, size, rng)
    if motion == "rotate":
        return _rotate_poses(photo_hw, frames, size, rng)
    return _pan_poses(photo_hw, frames, size, rng,
                      PAN_PX_PER_FRAME if motion == "pan" else CUT_PAN_PX_PER_FRAME)


def _pan_poses(photo_hw: tuple[int, int], frames: int, size: tuple[int, int],
               rng: np.random.Generator, speed_range: tuple[float, float]) -> Poses:
    """A steady pan in a random direction, passing the photo centre midway."""
    speed = rng.uniform(*speed_range)
    heading = rng.uniform(0.0, 2 * np.pi)
    offsets = (np.arange(frames) - (frames - 1) / 2)[:, None]
    direction = np.array([np.cos(heading), np.sin(heading)])

    def make(px: float) -> Poses:
        return _trajectory(photo_hw, size, frames, shift=px * offsets * direction)
    return _fit(make, speed, speed_range[0] * FLOOR_FRACTION, photo_hw, size,
                f"pan over {frames} frames", "px/frame")


def _zoom_poses(photo_hw: tuple[int, int], frames: int, size: tuple[int, int],
                rng: np.random.Generator) -> Poses:
    """A steady zoom in or out about the photo centre; the widest frame is a 1:1 crop."""
    rate = rng.uniform(*ZOOM_PER_FRAME)
    zoom_in = bool(rng.integers(2))
    # Per-frame rate r with (1 + r) ** (T - 1) <= MAX_ZOOM_FACTOR.
    rate = min(rate, MAX_ZOOM_FACTOR ** (1.0 / (frames - 1)) - 1.0)
    steps = np.arange(frames, dtype=float)
    steps = steps if zoom_in else steps[::-1]
    # Scale <= 1 throughout and centred: the view stays inside the centred 1:1 crop, which
    # _check_photo has already fitted.
    return _trajectory(photo_hw, size, frames, scale=(1.0 + rate) ** -steps)


def _rotate_poses(photo_hw: tuple[int, int], frames: int, size: tuple[int, int],
                  rng: np.random.Generator) -> Poses:
    """A steady rotation about the photo centre, upright midway (so the tilt is symmetric)."""
    rate = rng.uniform(*ROTATE_DEG_PER_FRAME) * rng.choice([-1.0, 1.0])
    offsets = np.arange(frames) - (frames - 1) / 2

    def make(deg: float) -> Poses:
        return _trajectory(photo_hw, size, frames, angle=np.deg2rad(deg * offsets))
    return _fit(make, rate, ROTATE_DEG_PER_FRAME[0] * FLOOR_FRACTION, photo_hw, size,
                f"rotation over {frames} frames", "deg/frame")


def _trajectory(photo_hw: tuple[int, int], size: tuple[int, int], frames: int, *,
                scale: np.ndarray | float = 1.0, angle: np.ndarray | float = 0.0,
                shift: np.ndarray | None = None) -> Poses:
    """Poses mapping frame pixel p to photo centre + shift_t + scale_t * R(angle_t) (p - centre).

    Pixel centres are integer coordinates, as in OpenCV, so the frame centre is ((w-1)/2, (h-1)/2).
    """
    scale = np.broadcast_to(scale, (frames,))
    angle = np.broadcast_to(angle, (frames,))
    shift = np.zeros((frames, 2)) if shift is None else shift
    photo_centre = np.array([(photo_hw[1] - 1) / 2, (photo_hw[0] - 1) / 2])
    frame_centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2])
    poses = np.zeros((frames, 3, 3))
    for t in range(frames):
        c, s = np.cos(angle[t]), np.sin(angle[t])
        linear = scale[t] * np.array([[c, -s], [s, c]])
        poses[t, :2, :2] = linear
        poses[t, :2, 2] = photo_centre + shift[t] - linear @ frame_centre
        poses[t, 2, 2] = 1.0
    return poses


def _translation(dx: float, dy: float) -> np.ndarray:
    """The 3x3 pose of a 1:1 crop whose top-left pixel is photo pixel (dx, dy)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _fits(poses: Poses, photo_hw: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether every frame's four corner pixels land inside [0, W-1] x [0, H-1] of the photo.

    The view is a parallelogram and the photo a rectangle, so its corners decide.
    """
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    uv = np.einsum("tij,kj->tki", poses, corners)[..., :2]
    tol = 1e-9  # float round-off of the pose products, not a real excursion
    return bool((uv >= -tol).all() and (uv[..., 0] <= photo_hw[1] - 1 + tol).all()
                and (uv[..., 1] <= photo_hw[0] - 1 + tol).all())


def _fit(make: Callable[[float], Poses], nominal: float, floor: float,
         photo_hw: tuple[int, int], size: tuple[int, int], what: str, unit: str) -> Poses:
    """make(m) for the largest |m| <= |nominal| that fits the photo (same sign as nominal).

    Raises ValueError if even |m| = floor leaves the photo.
    """
    if _fits(make(nominal), photo_hw, size):
        return make(nominal)
    sign = np.sign(nominal)
    low, high = floor, abs(nominal)
    if not _fits(make(sign * low), photo_hw, size):
        raise ValueError(
            f"photo {photo_hw[0]}x{photo_hw[1]} is too small for a {size[0]}x{size[1]} {what}: "
            f"even {floor:g} {unit} leaves the photo; use a larger photo, a smaller size or "
            f"fewer frames")
    for _ in range(_FIT_STEPS):  # keep low fitting and high not fitting
        mid = (low + high) / 2
        low, high = (mid, high) if _fits(make(sign * mid), photo_hw, size) else (low, mid)
    return make(sign * low)


def _render(photo: np.ndarray, poses: Poses, size: tuple[int, int]) -> np.ndarray:
    """uint8 (T, h, w, 3): frame t samples the photo at poses[t] @ (x, y, 1), bilinearly."""
    h, w = size
    src = np.ascontiguousarray(photo)
    return np.stack([
        cv2.warpAffine(src, pose[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_REPLICATE)
        for pose in poses])


def _add_grain(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`frames` with fresh luminance grain on the middle third (t in [T//3, T - T//3))."""
    out = frames.copy()
    count, h, w = frames.shape[:3]
    for t in range(count // 3, count - count // 3):
        grain = rng.normal(0.0, GRAIN_SIGMA, (h, w, 1))
        out[t] = np.clip(np.rint(frames[t] + grain), 0, 255).astype(np.uint8)
    return out


def _motion_maps(poses: Poses, photo_hw: tuple[int, int],
                 size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """maps float32 (T, h, w, 2) and valid bool (T, h, w) from frame t to t-1 of one shot.

    maps[t] = A_{t-1}^-1 A_t at each pixel centre; entry 0 is zeros / all False.
    """
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # (h, w, 3)
    maps = np.zeros((len(poses), h, w, 2), np.float32)
    valid = np.zeros((len(poses), h, w), bool)
    m = VALID_MARGIN_PX
    for t in range(1, len(poses)):
        to_prev = np.linalg.inv(poses[t - 1]) @ poses[t]
        prev = pixels @ to_prev[:2].T  # (h, w, 2): (x', y') in frame t-1
        photo_uv = pixels @ poses[t][:2].T  # the scene point, in photo coordinates
        in_prev = ((prev[..., 0] >= m) & (prev[..., 0] <= w - 1 - m)
                   & (prev[..., 1] >= m) & (prev[..., 1] <= h - 1 - m))
        in_photo = ((photo_uv[..., 0] >= 0) & (photo_uv[..., 0] <= photo_hw[1] - 1)
                    & (photo_uv[..., 1] >= 0) & (photo_uv[..., 1] <= photo_hw[0] - 1))
        maps[t] = prev
        valid[t] = in_prev & in_photo
    return maps, valid
