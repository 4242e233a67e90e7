"""Colourising videos (colorgan.video, colorgan.frames, colorgan.video_io): containers in, H.264
MP4 out with frames, rate, sound and provenance kept; rotation, odd sizes, variable frame rates
and luminance; temporal smoothing and scene cuts; bad inputs, skips, atomic writes, bounded
memory and --help. Tiny clips (at most 64 px; 8 frames, 30 for the truncated MKV, 300 for
bounded memory) written by tests/videos.py."""

import dataclasses
import json
import logging
import os
import sys
import weakref

import av
import numpy as np
import pytest
import tensorflow as tf
from absl import app
from PIL import Image

from colorgan import clips, cli, color, frames, inference, temporal, video, video_io
from conftest import run_main, smooth_color_image
from videos import TONE_HZ, write_audio_only, write_frameless, write_video

FPS = 10
COUNT = 8  # frames per test clip
HW = (48, 64)
MAX_PIXELS = 10**7
# The colour test: the model's colour must be large (Lab units; a gray output has ~0) and reach
# the file within what 8-bit RGB -> YUV 4:2:0 -> RGB loses of a smooth colour field (measured:
# 1.0 at WRITTEN_HUE_CYCLES, all of it the 4:2:0 round trip; 5.5 at SCENE_HUE_CYCLES).
MIN_ADDED_AB = 5.0
MAX_WRITTEN_AB_ERROR = 2.0
# Rec.601 luma weights (what an MPEG decoder's Y plane and a TV's "gray" are).
REC601 = np.array([0.299, 0.587, 0.114])
# The tone's spectral peak must land this close to TONE_HZ (the FFT bin of a 0.8 s clip is
# 1.25 Hz): the sound that comes out is the sound that went in, not silence or noise.
TONE_TOLERANCE_HZ = 3.0


@pytest.fixture(scope="module")
def model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


# ------------------------------------------------------------------------------ helpers
def _moving(count: int = COUNT, hw=HW, seed: int = 1, gray: bool = False) -> np.ndarray:
    """uint8 (count, h, w, 3): a smooth colourful picture sliding 2 px per frame."""
    picture = smooth_color_image(hw[0], hw[1] + 2 * count, seed)
    clip = np.stack([picture[:, 2 * i:2 * i + hw[1]] for i in range(count)])
    return np.repeat(_luma(clip).round().astype(np.uint8)[..., None], 3, -1) if gray else clip


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float64) @ REC601


def _decode(path) -> tuple[np.ndarray, list[float], list[int]]:
    """(uint8 (T, H, W, 3) frames as stored, their times in seconds, their display rotations)."""
    with av.open(str(path)) as c:
        decoded = list(c.decode(video=0))
    return (np.stack([f.to_ndarray(format="rgb24") for f in decoded]),
            [float(f.time) for f in decoded], [int(f.rotation or 0) for f in decoded])


def _audio(path) -> tuple[str, int, float, float, np.ndarray]:
    """(codec, sample rate, start s, end s, the first channel's samples as float)."""
    with av.open(str(path)) as c:
        codec = c.streams.audio[0].codec_context.name
        decoded = list(c.decode(audio=0))
    rate = decoded[0].sample_rate
    samples = np.concatenate([f.to_ndarray().reshape(len(f.layout.channels), -1)[0]
                              for f in decoded]).astype(np.float64)
    end = float(decoded[-1].time) + decoded[-1].samples / rate
    return codec, rate, float(decoded[0].time), end, samples


def _audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def _colorize(model, src, dst, **kw) -> frames.VideoResult:
    return frames.colorize_video(model, str(src), str(dst), max_pixels=MAX_PIXELS, **kw)


def _run(model_dir, out, *inputs, extra=()):
    return run_main(video.main, [f"--model={model_dir}", f"--output={out}", *extra,
                                 *map(str, inputs)])


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# _flickering's scene colour turns SCENE_HUE_CYCLES times over L's range [-1, 1]: a step of 12
# gray levels (the stabiliser's brightness tolerance) turns it by ~0.9 rad. WRITTEN_HUE_CYCLES:
# slow enough a hue for 4:2:0 chroma (half resolution) to keep it.
SCENE_HUE_CYCLES = 3.0
WRITTEN_HUE_CYCLES = 0.25
SCENE_CHROMA = 0.25  # model-space ab: ~27 Lab units
SWING_CHROMA = 0.25
SWING_SPEED = 2000.0  # rad per unit of mean L: a pan moving it by 0.001 turns it by 2 rad


def _flickering(model: inference.Colorizer,
                hue_cycles: float = SCENE_HUE_CYCLES) -> inference.Colorizer:
    """`model` plus a colour that belongs to the scene (a hue that is a function of each
    pixel's L, so it moves with the content) and a hue swing with each frame's mean L (uniform
    over the frame), as a per-frame colouriser's guess swings from frame to frame. The tiny
    model (6 training steps) adds almost no colour, so alone it does not flicker: its outputs'
    warping errors are the same with or without temporal smoothing. Only colour carried along
    the motion keeps the scene's colour in place while damping the swing; averaging each pixel
    with itself one frame earlier smears it. `_functions={}`: the copy must not reuse the
    model's traced functions."""
    def predict_ab(l):
        hue = np.pi * hue_cycles * l
        phase = SWING_SPEED * tf.reduce_mean(l, axis=[1, 2, 3], keepdims=True)
        return (model.predict_ab(l) + SCENE_CHROMA * tf.concat([tf.sin(hue), tf.cos(hue)], -1)
                + SWING_CHROMA * tf.concat([tf.sin(phase), tf.cos(phase)], -1))
    return dataclasses.replace(model, predict_ab=predict_ab, _functions={})


def _colorize_clip(model, clip_frames, mode, stabilizer=None) -> np.ndarray:
    out = frames.colorize_frames(model, [video_io.Frame(f, i) for i, f in enumerate(clip_frames)],
                                 mode=mode, stabilizer=stabilizer)
    return np.stack([f.rgb for f in out])


# ------------------------------------------------------------- containers, sound, metadata
CONTAINERS = {  # name: (file, write_video arguments, the input's audio codec as FFmpeg names it)
    "mp4-h264-aac": ("in.mp4", {}, "aac"),
    "avi-mpeg4-pcm": ("in.avi", {"vcodec": "mpeg4", "acodec": "pcm_s16le"}, "pcm_s16le"),
    "mkv-h264-opus": ("in.mkv", {"acodec": "libopus"}, "opus"),
    "webm-vp9-opus": ("in.webm", {"vcodec": "libvpx-vp9", "acodec": "libopus"}, "opus"),
}


@pytest.mark.parametrize("name", CONTAINERS)
def test_any_container_becomes_mp4_with_its_frames_rate_and_sound(name, model, tmp_path):
    file, kwargs, audio_codec = CONTAINERS[name]
    src, dst = tmp_path / file, tmp_path / "out.mp4"
    write_video(src, _moving(), FPS, **kwargs)
    in_frames, in_times, _ = _decode(src)
    result = _colorize(model, src, dst)

    out_frames, out_times, _ = _decode(dst)
    assert result.frames == COUNT
    assert out_frames.shape == (COUNT, *HW, 3)
    assert out_times == pytest.approx(in_times, abs=1e-3)
    with av.open(str(dst)) as c:
        assert c.format.name.startswith("mov,mp4")
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].average_rate == FPS
    assert result.info.audio_codec == audio_codec

    codec, rate, start, end, samples = _audio(dst)
    assert codec == "aac"
    if audio_codec == "aac":  # copied, packet for packet
        assert _audio_packets(dst) == _audio_packets(src)
    else:  # re-encoded at the input's rate; the tone survives
        assert rate == _audio(src)[1]
    assert _peak_hz(samples, rate) == pytest.approx(TONE_HZ, abs=TONE_TOLERANCE_HZ)
    video_end = out_times[-1] + 1 / FPS
    assert abs(start - out_times[0]) <= 1 / FPS
    assert abs((end - start) - (video_end - out_times[0])) <= 1 / FPS

    record = json.loads(video_io.read_metadata(str(dst))[video_io.METADATA_KEY])
    assert record["model"] == model.identity
    assert record["temporal"] == "flow"
    assert record == model.provenance() | {"temporal": "flow"}


@pytest.mark.parametrize("rotation,quarter_turns", [(90, 1), (180, 2), (270, 3)])
def test_a_rotated_clip_comes_out_upright(rotation, quarter_turns, model, tmp_path):
    """FFmpeg's display matrix turns counter-clockwise: rotation 90 shows np.rot90(stored, 1).
    A bright block in the stored frame's top-left corner tells the four orientations apart."""
    stored = _moving(gray=True)
    stored[:, :12, :16] = 255
    src, dst = tmp_path / "phone.mp4", tmp_path / "out.mp4"
    write_video(src, stored, FPS, rotation=rotation)
    decoded, _, rotations = _decode(src)
    assert {r % 360 for r in rotations} == {rotation}  # FFmpeg reads it back in (-180, 180]
    _colorize(model, src, dst, crf=0)

    out, _, out_rotations = _decode(dst)
    assert set(out_rotations) == {0}  # turned once, in the pixels: no player turns it again
    upright = np.rot90(_luma(decoded), quarter_turns, axes=(1, 2))
    assert out.shape[1:3] == upright.shape[1:3]
    errors = {k: np.mean(np.abs(_luma(out) - np.rot90(_luma(decoded), k, axes=(1, 2))))
              for k in range(4) if np.rot90(decoded, k, axes=(1, 2)).shape == out.shape}
    assert min(errors, key=errors.get) == quarter_turns, errors
    assert errors[quarter_turns] < 2.0, errors


@pytest.mark.parametrize("file,kwargs", [("odd.mp4", {}),  # libx264 4:4:4 (4:2:0 needs even)
                                         ("odd.avi", {"vcodec": "mpeg4", "acodec": None})],
                         ids=["mp4-h264", "avi-mpeg4"])
def test_odd_sizes_are_padded_to_even_sides(file, kwargs, model, tmp_path):
    src, dst = tmp_path / file, tmp_path / "out.mp4"
    write_video(src, _moving(hw=(47, 63), gray=True), FPS, **kwargs)
    decoded, _, _ = _decode(src)
    assert decoded.shape == (COUNT, 47, 63, 3)
    _colorize(model, src, dst, crf=0)

    out, _, _ = _decode(dst)
    assert out.shape == (COUNT, 48, 64, 3)
    y_in, y_out = _luma(decoded), _luma(out)
    assert np.mean(np.abs(y_out[:, :47, :63] - y_in)) < 2.0  # content kept, not shifted
    assert np.mean(np.abs(y_out[:, 47, :63] - y_in[:, 46])) < 2.0  # padding repeats the edge
    assert np.mean(np.abs(y_out[:, :47, 63] - y_in[:, :, 62])) < 2.0


def test_variable_frame_rate_timestamps_are_kept(model, tmp_path):
    intervals = [50, 100] * (COUNT // 2)
    src, dst = tmp_path / "phone.mp4", tmp_path / "out.mp4"
    write_video(src, _moving(), FPS, intervals_ms=intervals)
    _, in_times, _ = _decode(src)
    assert np.diff(in_times) == pytest.approx(np.array(intervals[:-1]) / 1000, abs=1e-3)
    _colorize(model, src, dst)

    _, out_times, _ = _decode(dst)
    assert out_times == pytest.approx(in_times, abs=1e-3)
    assert _audio(dst)[0] == "aac"
    # The last frame is kept with its length: the video lasts as long as the input's, up to the
    # MP4 muxer's track length with B-frames (it ends at the last packet in decode order; 25 ms
    # short here), well under a lost last frame (100 ms).
    assert _video_seconds(dst) == pytest.approx(_video_seconds(src), abs=0.05)


def _video_seconds(path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


@pytest.mark.parametrize("gray", [True, False], ids=["gray-rec601", "colour-cie-l"])
def test_only_colour_is_added(gray, model, tmp_path):
    """The output's lightness is the input's. A gray input's Rec.601 luma is kept (its gray
    levels); for a colour input the model keeps CIE L* (colorgan.color), not Rec.601 luma,
    which weighs the channels differently, so that is what is compared."""
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_video(src, _moving(gray=gray), FPS, acodec=None)
    decoded, _, _ = _decode(src)
    _colorize(model, src, dst, crf=0)

    out, _, _ = _decode(dst)
    if gray:
        assert np.mean(np.abs(_luma(out) - _luma(decoded))) < 1.0  # gray levels of 255
    else:
        l_in = color.rgb_to_lab(decoded / 255.0).numpy()[..., 0]
        l_out = color.rgb_to_lab(out / 255.0).numpy()[..., 0]
        assert np.mean(np.abs(l_out - l_in)) < 0.6  # L* units of 100


def test_the_colour_the_model_adds_is_what_the_mp4_holds(model, tmp_path):
    """--temporal=none, crf 0: the written frames' a*b* are those of model.colorize_batch on
    the decoded input frames (what the CLI colours), and that colour is large: a writer that
    dropped or shifted the colour, or coloured other frames, fails."""
    flickering = _flickering(model, WRITTEN_HUE_CYCLES)
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_video(src, _moving(gray=True), FPS, acodec=None)
    decoded, _, _ = _decode(src)
    _colorize(flickering, src, dst, mode="none", crf=0)

    out, _, _ = _decode(dst)
    expected = np.stack([color.to_uint8(rgb).numpy() for rgb in flickering.colorize_batch(
        [rgb.astype(np.float32) / color.UINT8_MAX for rgb in decoded])])
    ab_out = color.rgb_to_lab(out / color.UINT8_MAX).numpy()[..., 1:]
    ab_expected = color.rgb_to_lab(expected / color.UINT8_MAX).numpy()[..., 1:]
    added, written = np.mean(np.abs(ab_expected)), np.mean(np.abs(ab_out))
    error = np.mean(np.abs(ab_out - ab_expected))
    assert added > MIN_ADDED_AB and written > MIN_ADDED_AB, (added, written)
    assert error < MAX_WRITTEN_AB_ERROR, (error, added)


# ------------------------------------------------------------------- temporal smoothing
def test_flow_flickers_less_than_frame_by_frame_and_than_motionless_blending(model,
                                                                             monkeypatch):
    """Lai et al.'s warping error along the clip's true motion, averaged over the frames: flow
    against each frame on its own, and against the same stabiliser whose flow is replaced by
    no motion at all (each pixel blended with itself one frame earlier, every pixel trusted).
    Measured (warping error, sRGB): flow 0.0015, no motion 0.0095, none 0.029."""
    clip = clips.make_clip(smooth_color_image(120, 160, 0), "pan", frames=COUNT, size=HW)
    flickering = _flickering(model)

    def warping(mode):
        out = _colorize_clip(flickering, clip.frames, mode) / 255.0
        return np.mean([temporal.warping_error(out[t], out[t - 1], clip.maps[t],
                                               clip.valid[t]) for t in range(1, COUNT)])
    error = {mode: warping(mode) for mode in ("flow", "none")}
    monkeypatch.setattr(temporal.FlowEstimator, "backward_map", lambda self, cur, prev: (
        temporal.pixel_grid(cur.shape), np.ones(cur.shape[:2], bool)))
    error["no motion"] = warping("flow")
    assert error["flow"] < 0.5 * error["none"], error
    assert error["flow"] < 0.5 * error["no motion"], error


def test_a_scene_cut_resets_the_colour_history(model):
    clip = clips.make_clip(smooth_color_image(120, 160, 0), "cut", frames=COUNT, size=HW,
                           second=smooth_color_image(120, 160, 50))
    flickering = _flickering(model)
    stabilizer = temporal.Stabilizer()
    flow = _colorize_clip(flickering, clip.frames, "flow", stabilizer)
    none = _colorize_clip(flickering, clip.frames, "none")

    cut = COUNT // 2
    assert clip.cuts == (cut,)
    assert stabilizer.cuts == [cut]
    assert np.array_equal(flow[cut], none[cut])  # the new shot's first frame: no history
    assert not np.array_equal(flow[cut - 1], none[cut - 1])  # history in use before the cut
    assert not np.array_equal(flow[cut + 1], none[cut + 1])  # and again after it


# ------------------------------------------------------------- the CLI: failures and skips
def test_bad_inputs_fail_in_one_line_each_and_the_rest_is_written(tiny_workdir, tmp_path,
                                                                  caplog, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_video(src / "good.mp4", _moving(hw=(32, 48)), FPS)
    (src / "text.mp4").write_text("this is not a video\n")
    whole = tmp_path / "whole.mp4"
    for name, options in (("half.mp4", {}), ("half_faststart.mp4", {"movflags": "+faststart"})):
        # moov after the frames (FFmpeg's default): half a file has no index; faststart: the
        # index promises frames that half a file does not have
        write_video(whole, _moving(hw=(32, 48)), FPS, options=options)
        data = whole.read_bytes()
        (src / name).write_bytes(data[:len(data) // 2])
    write_audio_only(src / "sound.m4a", COUNT / FPS)
    write_video(src / "big.mp4", _moving(hw=(64, 96)), FPS)
    reasons = {"text.mp4": "not a readable video", "half.mp4": "not a readable video",
               "half_faststart.mp4": "truncated", "sound.m4a": "no video stream",
               "big.mp4": "--max_pixels"}
    caplog.set_level(logging.INFO)
    inputs = sorted(src.iterdir())  # the .m4a by name: a folder scan takes video extensions only
    assert _run(tiny_workdir, out, *inputs,
                extra=[f"--max_pixels={32 * 48}"]) == cli.EXIT_USER_ERROR

    assert os.listdir(out) == ["good.mp4"]  # no output, no temp file for the failed ones
    assert _decode(out / "good.mp4")[0].shape == (COUNT, 32, 48, 3)
    _assert_one_line_each(caplog, capsys, src, reasons, len(inputs))


def test_truncated_still_and_frameless_inputs_fail_in_one_line_each(tiny_workdir, tmp_path,
                                                                   caplog, capsys):
    """An MKV cut at 60 % of its bytes (no frame count: its data ends before its duration), a
    photo named explicitly, a video stream with no packets (alone, and beside sound)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_video(src / "good.mp4", _moving(hw=(32, 48)), FPS)
    whole = tmp_path / "whole.mkv"
    # 3 s: 60 % of the bytes end ~0.8 s early, far over video_io's tolerance (0.25 s)
    write_video(whole, _moving(count=30, hw=(32, 48)), FPS)
    data = whole.read_bytes()
    (src / "cut.mkv").write_bytes(data[:len(data) * 6 // 10])
    Image.fromarray(smooth_color_image(32, 48, 2)).save(src / "photo.png")
    write_frameless(src / "empty.avi", "mpeg4")
    write_frameless(src / "sound_only.mkv", "libx264", seconds_of_sound=1.0)
    reasons = {"cut.mkv": "truncated", "photo.png": "still image",
               "empty.avi": "no video frames", "sound_only.mkv": "no video frames"}
    caplog.set_level(logging.INFO)
    inputs = sorted(src.iterdir())
    assert _run(tiny_workdir, out, *inputs) == cli.EXIT_USER_ERROR

    assert os.listdir(out) == ["good.mp4"]
    assert _decode(out / "good.mp4")[0].shape == (COUNT, 32, 48, 3)
    _assert_one_line_each(caplog, capsys, src, reasons, len(inputs))


def test_a_frame_size_change_mid_stream_fails(tiny_workdir, tmp_path, caplog, capsys):
    """Two MPEG-TS files joined byte for byte are one stream (how recordings and HLS segments
    are joined): 8 frames at 48x32, then 8 at 64x48. An MP4 has one frame size: refused in one
    line, and the frames already written are not left behind."""
    first, second, joined = tmp_path / "a.ts", tmp_path / "b.ts", tmp_path / "joined.ts"
    write_video(first, _moving(hw=(32, 48)), FPS, acodec=None)
    write_video(second, _moving(hw=(48, 64)), FPS, acodec=None)
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with av.open(str(joined)) as c:  # the input is what it claims: both sizes decode
        sizes = [(f.height, f.width) for f in c.decode(video=0)]
    assert sizes == [(32, 48)] * COUNT + [(48, 64)] * COUNT
    out = tmp_path / "out"
    assert _run(tiny_workdir, out, joined, extra=["--batch_frames=2"]) == cli.EXIT_USER_ERROR

    assert not out.exists() or os.listdir(out) == []
    _assert_one_line_each(caplog, capsys, tmp_path, {"joined.ts": "frame size changed"}, 1)


def _assert_one_line_each(caplog, capsys, folder, reasons: dict[str, str], inputs: int):
    """Each failed input in `folder` has one error line naming it and giving its reason; the
    last line counts them; no traceback anywhere."""
    errors = _errors(caplog)
    for name, reason in reasons.items():
        lines = [e for e in errors if str(folder / name) in e]
        assert len(lines) == 1 and reason in lines[0] and "\n" not in lines[0], (name, errors)
    assert f"{len(reasons)} of {inputs} inputs failed" in errors[-1], errors
    assert "Traceback" not in caplog.text + "".join(capsys.readouterr())


def test_an_existing_output_is_skipped_unless_overwrite(tiny_workdir, tmp_path, caplog):
    src, out = tmp_path / "clip.avi", tmp_path / "out"
    write_video(src, _moving(), FPS, vcodec="mpeg4", acodec=None)
    out.mkdir()
    existing = out / "clip.mp4"
    existing.write_bytes(b"an earlier result")
    caplog.set_level(logging.INFO)
    assert _run(tiny_workdir, out, src) == cli.EXIT_OK  # skipping is not a failure
    assert existing.read_bytes() == b"an earlier result"
    assert any("1 skipped" in r.getMessage() for r in caplog.records), caplog.text

    assert _run(tiny_workdir, out, src, extra=["--overwrite"]) == cli.EXIT_OK
    assert _decode(existing)[0].shape == (COUNT, *HW, 3)
    assert sorted(os.listdir(out)) == ["clip.mp4"]


def test_an_output_that_is_its_input_is_refused(tiny_workdir, tmp_path, caplog):
    """--output = the input folder: clip.mp4's output is clip.mp4 itself; refused even with
    --overwrite, in one line; other.avi (output other.mp4) is still written; exit 2."""
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "clip.mp4", _moving(), FPS)
    write_video(folder / "other.avi", _moving(seed=2), FPS, vcodec="mpeg4", acodec=None)
    original = (folder / "clip.mp4").read_bytes()
    assert _run(tiny_workdir, folder, folder, extra=["--overwrite"]) == cli.EXIT_USER_ERROR
    assert (folder / "clip.mp4").read_bytes() == original
    assert sorted(os.listdir(folder)) == ["clip.mp4", "other.avi", "other.mp4"]
    lines = [e for e in _errors(caplog) if str(folder / "clip.mp4") in e]
    assert len(lines) == 1 and "input" in lines[0], _errors(caplog)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_mid_stream_leaves_no_file(error, model, tmp_path, monkeypatch):
    src, out = tmp_path / "in.mp4", tmp_path / "out"
    write_video(src, _moving(), FPS)
    write_frame = video_io.Mp4Writer.write_frame

    def third_fails(self, rgb, pts, *rest):
        if self.frames == 2:
            raise error("disk on fire")
        write_frame(self, rgb, pts)
    monkeypatch.setattr(video_io.Mp4Writer, "write_frame", third_fails)
    with pytest.raises(error, match="disk on fire"):
        _colorize(model, src, out / "in.mp4", batch_frames=2)
    assert os.listdir(out) == []


def test_frames_stream_through_in_bounded_memory(model):
    """600 frames, made one at a time: the frames read but not yet given back, and the input
    frames alive, never exceed one batch (a list of the whole video would be 600)."""
    batch, total = 4, 600
    picture = smooth_color_image(32, 96, 3)
    counts = {"made": 0, "alive": 0}

    def gone():
        counts["alive"] -= 1

    def source():
        for i in range(total):
            frame = video_io.Frame(np.ascontiguousarray(picture[:, i % 48:i % 48 + 48]), i)
            counts["made"] += 1
            counts["alive"] += 1
            weakref.finalize(frame, gone)
            yield frame

    lag, alive, pts = 0, 0, []
    for frame in frames.colorize_frames(model, source(), batch_frames=batch):
        lag = max(lag, counts["made"] - len(pts))
        alive = max(alive, counts["alive"])
        pts.append(frame.pts)
    assert pts == list(range(total))
    assert lag <= batch
    assert alive <= batch + 1


def test_a_long_video_file_streams_through_in_bounded_memory(model, tmp_path, monkeypatch):
    """300 frames (with sound) read, coloured and written by frames.colorize_video in batches
    of 4: the video_io.Frame objects alive at once, decoded and coloured, stay within two
    batches and a few (the reader's next frame, the writer's current one), not the clip's
    length. Counted from each Frame's creation to its release (weakref.finalize)."""
    batch, total = 4, 300
    src, dst = tmp_path / "long.mp4", tmp_path / "out.mp4"
    write_video(src, _moving(count=total, hw=(32, 48)), FPS)
    alive = {"now": 0, "peak": 0, "made": 0}

    def gone():
        alive["now"] -= 1

    def counted_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        alive["now"] += 1
        alive["made"] += 1
        alive["peak"] = max(alive["peak"], alive["now"])
        weakref.finalize(self, gone)
    init = video_io.Frame.__init__
    monkeypatch.setattr(video_io.Frame, "__init__", counted_init)
    result = _colorize(model, src, dst, batch_frames=batch)

    assert result.frames == total
    assert alive["made"] >= 2 * total  # every frame counted, going in and coming out
    assert alive["peak"] <= 2 * batch + 2, alive
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == total


def test_help_shows_the_video_flags(monkeypatch, capsys):
    """In-process `python -m colorgan.video --help`: absl prints __main__'s docstring and the
    key flags of the module named by argv[0], then exits with status 1."""
    app.define_help_flags()  # app.run defines --help; run_main parses without app.run
    monkeypatch.setitem(sys.modules, "__main__", video)
    monkeypatch.setattr(sys, "argv", [video.__name__])
    assert run_main(video.main, ["--help"]) == cli.EXIT_USAGE
    text = capsys.readouterr().out
    assert "python -m colorgan.video --output=" in text
    for name in ("temporal", "crf", "batch_frames", "render_size", "max_pixels", "overwrite"):
        assert f"--{name}" in text, name
    assert "<flow|none>" in text
