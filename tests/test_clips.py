"""colorgan.clips: synthetic clips with known motion (tiny 64x96 clips from a 200x300 photo)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from colorgan import clips

PHOTO_HW = (200, 300)
SIZE = (64, 96)
FRAMES = 6
# Remapping frame t-1 with the true map resamples bilinearly a second time, so it differs from
# frame t by interpolation error only: ~0-0.3 gray levels on this smooth photo. 2 levels is
# ample, while a map off by BROKEN_SHIFT_PX costs ~7-9 levels (the photo's gradients average
# ~4 levels/px), well above BROKEN_MAE_MIN.
REMAP_MAE_MAX = 2.0
BROKEN_SHIFT_PX = 2.0
BROKEN_MAE_MIN = 4.0
# Only a 1-px border plus the few pixels that move out of view are invalid.
MIN_VALID_FRACTION = 0.8
# float32 maps hold pixel positions < 100 to ~1e-5.
MAP_ATOL = 1e-4


def _photo(seed: int = 0) -> np.ndarray:
    """A smooth uint8 (200, 300, 3) photo: colour gradients, a ripple and soft-edged discs,
    kept within [38, 217] so that grain of a few sigma never clips."""
    rng = np.random.default_rng(seed)
    h, w = PHOTO_HW
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    ripple = 0.5 + 0.5 * np.sin(xx / 7 + yy / 9)  # period ~35 px: smooth, yet clear motion
    rgb = np.stack([xx / w, yy / h, np.full_like(xx, 0.5)], -1) * 0.5 + ripple[..., None] * 0.5
    for _ in range(4):
        cx, cy, r = rng.uniform(40, w - 40), rng.uniform(30, h - 30), rng.uniform(15, 35)
        alpha = np.clip((r - np.hypot(xx - cx, yy - cy)) / 4 + 0.5, 0, 1)[..., None]
        rgb = rgb * (1 - alpha) + alpha * rng.uniform(0, 1, 3)
    return np.rint((0.15 + 0.7 * rgb) * 255).astype(np.uint8)


def _clip(motion: str, frames: int = FRAMES, seed: int = 0) -> clips.Clip:
    return clips.make_clip(_photo(), motion, frames, SIZE, second=_photo(1)[::-1, ::-1].copy(),
                           seed=seed)


def _remap_mae(clip: clips.Clip, t: int, shift_px: float = 0.0) -> float:
    """Mean abs error, on valid pixels, of frame t against frame t-1 warped by maps[t]."""
    warped = cv2.remap(clip.frames[t - 1], clip.maps[t][..., 0] + shift_px, clip.maps[t][..., 1],
                       cv2.INTER_LINEAR)
    mask = clip.valid[t] if clip.valid[t].any() else np.ones(SIZE, bool)
    return float(np.abs(warped.astype(float) - clip.frames[t])[mask].mean())


def _grid() -> np.ndarray:
    ys, xs = np.mgrid[0:SIZE[0], 0:SIZE[1]].astype(np.float32)
    return np.stack([xs, ys], -1)


@pytest.mark.parametrize("motion", clips.MOTIONS)
def test_shapes_dtypes_and_first_frame(motion):
    clip = _clip(motion)
    assert clip.frames.shape == (FRAMES, *SIZE, 3) and clip.frames.dtype == np.uint8
    assert clip.maps.shape == (FRAMES, *SIZE, 2) and clip.maps.dtype == np.float32
    assert clip.valid.shape == (FRAMES, *SIZE) and clip.valid.dtype == bool
    assert clip.motion == motion
    assert clip.cuts == ((FRAMES // 2,) if motion == "cut" else ())
    assert not clip.valid[0].any()
    np.testing.assert_array_equal(clip.maps[0], 0)


@pytest.mark.parametrize("motion", clips.MOTIONS)
def test_same_seed_same_clip_other_seed_other_clip(motion):
    a, b, other = _clip(motion, seed=3), _clip(motion, seed=3), _clip(motion, seed=4)
    for name in ("frames", "maps", "valid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.frames, other.frames)
    if motion != "grain":  # grain keeps a static camera: only the grain follows the seed
        assert not np.array_equal(a.maps, other.maps)


@pytest.mark.parametrize("motion", ["pan", "zoom", "rotate", "cut"])
def test_remap_with_maps_reproduces_next_frame(motion):
    clip = _clip(motion)
    for t in range(1, FRAMES):
        if t in clip.cuts:
            continue
        assert clip.valid[t].mean() > MIN_VALID_FRACTION, t
        assert _remap_mae(clip, t) < REMAP_MAE_MAX, t
        assert _remap_mae(clip, t, BROKEN_SHIFT_PX) > BROKEN_MAE_MIN, t
        if motion in ("zoom", "rotate"):
            continue  # their per-frame motion is < 1 px, too little for the check below
        # the camera really moves: without the map (identity) frame t is not reproduced
        identity = clips.Clip(clip.frames, np.broadcast_to(_grid(), clip.maps.shape),
                              clip.valid, clip.cuts, motion)
        assert _remap_mae(identity, t) > 2 * _remap_mae(clip, t) + 0.5, t


def test_cut_starts_a_new_shot():
    clip = _clip("cut")
    cut = FRAMES // 2
    assert clip.cuts == (cut,)
    assert not clip.valid[cut].any()
    np.testing.assert_array_equal(clip.maps[cut], 0)
    assert clip.valid[cut - 1].any() and clip.valid[cut + 1].any()
    # across the cut the scene changes: no map could reproduce it; here the pan's does not
    across = clips.Clip(clip.frames, clip.maps.copy(), clip.valid.copy(), clip.cuts, "cut")
    across.maps[cut] = clip.maps[cut + 1]
    across.valid[cut] = clip.valid[cut + 1]
    assert _remap_mae(across, cut) > 3 * BROKEN_MAE_MIN


def test_cut_requires_second():
    with pytest.raises(ValueError, match="second"):
        clips.make_clip(_photo(), "cut", FRAMES, SIZE)


def test_pan_is_a_steady_translation_of_a_few_px():
    clip = _clip("pan", seed=5)
    steps = clip.maps[1:] - _grid()
    # one displacement per frame, the same at every pixel and in every frame
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0, 0, 0], steps.shape),
                               atol=MAP_ATOL)
    assert clips.PAN_PX_PER_FRAME[0] <= np.hypot(*steps[0, 0, 0]) <= clips.PAN_PX_PER_FRAME[1]


def _linear_part(maps_t: np.ndarray) -> np.ndarray:
    """The 2x2 matrix of an affine map field, from its differences along x and y."""
    h, w = maps_t.shape[:2]
    dx = (maps_t[0, w - 1] - maps_t[0, 0]) / (w - 1)
    dy = (maps_t[h - 1, 0] - maps_t[0, 0]) / (h - 1)
    return np.stack([dx, dy], -1)


def _centre_is_fixed(maps_t: np.ndarray) -> bool:
    """Whether the frame centre maps to itself (opposite corners average to it)."""
    h, w = maps_t.shape[:2]
    return np.allclose((maps_t[0, 0] + maps_t[-1, -1]) / 2, [(w - 1) / 2, (h - 1) / 2],
                       atol=MAP_ATOL)


@pytest.mark.parametrize("seed", [0, 2])  # the seed picks zoom in (0) and out (2)
def test_zoom_is_a_slow_scale_change_about_the_centre(seed):
    clip = _clip("zoom", seed=seed)
    low, high = clips.ZOOM_PER_FRAME
    for t in range(1, FRAMES):
        linear = _linear_part(clip.maps[t])
        ratio = linear[0, 0]  # frame t -> t-1 scale: (1 + r) or 1 / (1 + r)
        np.testing.assert_allclose(linear, ratio * np.eye(2), atol=1e-5)
        assert 1 / (1 + high) - 1e-6 <= ratio <= 1 / (1 + low) or 1 + low <= ratio <= 1 + high
        assert _centre_is_fixed(clip.maps[t])


def test_rotation_is_a_slight_steady_rotation_about_the_centre():
    clip = _clip("rotate", seed=2)
    angles = []
    for t in range(1, FRAMES):
        linear = _linear_part(clip.maps[t])
        angles.append(np.degrees(np.arctan2(linear[1, 0], linear[0, 0])))
        np.testing.assert_allclose(np.linalg.det(linear), 1.0, atol=1e-5)  # no scaling
        assert _centre_is_fixed(clip.maps[t])
    np.testing.assert_allclose(angles, angles[0], atol=1e-3)
    assert clips.ROTATE_DEG_PER_FRAME[0] <= abs(angles[0]) <= clips.ROTATE_DEG_PER_FRAME[1]


@pytest.mark.parametrize("seed", range(4))
def test_long_pan_is_slowed_to_stay_inside_the_photo(seed):
    frames = 40  # at 2-4 px/frame some headings would leave the 200x300 photo
    clip = _clip("pan", frames=frames, seed=seed)
    step = clip.maps[1, 0, 0] - _grid()[0, 0]  # steady: one step describes the whole pan
    travel = np.abs(step) * (frames - 1)
    assert travel[0] <= PHOTO_HW[1] - SIZE[1] + 1e-3 and travel[1] <= PHOTO_HW[0] - SIZE[0] + 1e-3
    assert np.hypot(*step) >= clips.PAN_PX_PER_FRAME[0] * clips.FLOOR_FRACTION
    assert all(_remap_mae(clip, t) < REMAP_MAE_MAX for t in (1, frames // 2, frames - 1))


def test_grain_static_camera_with_zero_mean_grain_on_the_middle_third():
    clip = _clip("grain", seed=7)
    h, w = SIZE
    top, left = (PHOTO_HW[0] - h) // 2, (PHOTO_HW[1] - w) // 2
    crop = _photo()[top:top + h, left:left + w].astype(float)
    grainy = set(range(FRAMES // 3, FRAMES - FRAMES // 3))
    assert grainy == {2, 3}
    interior = np.zeros(SIZE, bool)
    interior[1:-1, 1:-1] = True
    for t in range(FRAMES):
        if t:
            np.testing.assert_array_equal(clip.maps[t], _grid())
            np.testing.assert_array_equal(clip.valid[t], interior)
        diff = clip.frames[t] - crop
        if t not in grainy:
            np.testing.assert_array_equal(diff, 0)
            continue
        # luminance grain: the same offset on R, G and B (the photo is far from 0 and 255)
        np.testing.assert_array_equal(diff[..., 0], diff[..., 1])
        np.testing.assert_array_equal(diff[..., 0], diff[..., 2])
        # 6144 samples: the mean is ~0 to +-0.08 (1 s.d.), the s.d. to ~1 %
        assert abs(diff.mean()) < 0.5
        assert abs(diff[..., 0].std() - clips.GRAIN_SIGMA) < 0.5
    assert not np.array_equal(clip.frames[2], clip.frames[3])  # fresh grain every frame


@pytest.mark.parametrize("kwargs, match", [
    (dict(motion="dolly"), "pan, zoom, rotate, cut, grain"),
    (dict(frames=1), "frames"),
    (dict(frames=0), "frames"),
    (dict(frames=2.5), "frames"),
    (dict(size=(2, 96)), "size"),
    (dict(size=(64,)), "size"),
    (dict(photo=np.zeros((200, 300, 3), np.float32)), "uint8"),
    (dict(photo=np.zeros((200, 300), np.uint8)), "uint8"),
    (dict(photo=np.zeros((200, 300, 4), np.uint8)), "uint8"),
    (dict(photo=np.zeros((60, 300, 3), np.uint8)), "smaller than the clip size"),
    (dict(motion="cut", second=np.zeros((200, 300), np.uint8)), "second"),
    # a 1:1 crop fits, but no pan or rotation can move inside it
    (dict(motion="pan", photo=np.zeros((64, 96, 3), np.uint8)), "too small"),
    (dict(motion="rotate", photo=np.zeros((64, 96, 3), np.uint8)), "too small"),
    (dict(motion="pan", frames=400), "too small"),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(photo=_photo(), motion="pan", frames=FRAMES, size=SIZE)
    args.update(kwargs)
    second = args.pop("second", None)
    with pytest.raises(ValueError, match=match):
        clips.make_clip(args.pop("photo"), args.pop("motion"), args.pop("frames"),
                        args.pop("size"), second=second)


def test_static_motions_fit_a_photo_of_exactly_the_clip_size():
    photo = _photo()[:SIZE[0], :SIZE[1]].copy()
    for motion in ("zoom", "grain"):
        clip = clips.make_clip(photo, motion, FRAMES, SIZE)
        assert clip.frames.shape == (FRAMES, *SIZE, 3)
    # 3 frames: grain on frame 1 only, frame 0 is the photo itself
    np.testing.assert_array_equal(clips.make_clip(photo, "grain", 3, SIZE).frames[0], photo)


def test_points_outside_the_photo_are_invalid():
    # make_clip never leaves the photo, so drive the private map builder with a view that does:
    # a 1:1 crop whose left 10 columns lie left of the photo, panning right by 1 px.
    poses = np.stack([np.array([[1.0, 0, dx], [0, 1, 50], [0, 0, 1]]) for dx in (-11.0, -10.0)])
    maps, valid = clips._motion_maps(poses, PHOTO_HW, SIZE)  # pylint: disable=protected-access
    np.testing.assert_allclose(maps[1], _grid() + [1.0, 0.0], atol=MAP_ATOL)
    assert not valid[1][:, :10].any()  # photo x = -10 .. -1
    np.testing.assert_array_equal(valid[1][1:-1, 10:-2], True)  # x' = x + 1 <= w - 2
    assert not valid[1][:, -2:].any() and not valid[1][[0, -1]].any()
