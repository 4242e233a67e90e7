"""Flicker of colourised video, measured under known motion: --temporal=flow against none.

    python benchmarks/video_flicker.py --model=default --limit=8

Clips with ground truth (colorgan.clips): each of the first --limit photos of --data's --split
becomes one clip per motion (pan, zoom, rotate, grain, and a hard cut to the next photo), of
--clip_frames frames at 240x320 (320x240 for portrait photos). Each clip's gray version is
encoded to H.264 MP4 (crf 18), colourised end to end by frames.colorize_video (decode ->
colourise -> encode) in each mode, and the output decoded again. Scores per clip and mode:
  warping error   Lai et al. 2018: mean squared sRGB difference between each output frame and the
                  previous output frame warped by the clip's KNOWN motion (not a flow estimate),
                  over the pixels that motion maps validly (none across the cut)
  PSNR            per frame against the ground-truth colour frames, mean over frames (dB)
  colourfulness   Hasler & Suesstrunk's M, mean over frames
  cut PSNR        cut clips: PSNR of the first and second frame after the cut
Targets (issue 17): flow's warping error <= 50 % of none's; mean PSNR within 0.2 dB of none's;
colourfulness >= 0.9 x none's; second frame after a cut within 0.2 dB of none's PSNR.
"""

from __future__ import annotations

import fractions
import os
import statistics
import sys
import tempfile

from absl import app, flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  benchmarks/common.py

from colorgan import cli, clips, color, config, frames, images, inference, metrics  # noqa: E402
from colorgan import sources, temporal, video_io  # noqa: E402
from colorgan.errors import UserError  # noqa: E402

NAME = "video_flicker"
FLAGS = flags.FLAGS
MOTIONS = ("pan", "zoom", "rotate", "grain", "cut")
CLIP_SIZE = (240, 320)
CLIP_FPS = 24
flags.DEFINE_integer("clip_frames", 12, "Frames per synthetic clip.", lower_bound=4)
flags.DEFINE_float("blend", temporal.FlowSettings.blend, "FlowSettings.blend of the flow mode "
                   "(tune on --split=val).")
flags.DEFINE_float("cut_distance", temporal.FlowSettings.cut_distance, "FlowSettings.cut_distance.")


flags.DEFINE_string("strip", "", "Also write this PNG (README's picture): frames of the pan "
                    "clip with the median flicker of 'none', rows gray input | none | none's "
                    "colour change since the previous frame | flow | flow's change | original.")
STRIP_FRAMES = (3, 6, 9)
CHANGE_GAIN = 12.0  # a*b* change (Lab units) -> 8-bit heat: 20 units saturate


def settings() -> temporal.FlowSettings:
    return temporal.FlowSettings(blend=FLAGS.blend, cut_distance=FLAGS.cut_distance)
flags.adopt_module_key_flags(common)
common.reuse_flag("data", default="../shared/datasets/bsds500-jpg.tar.gz")
common.reuse_flag("split", "Split of --data whose photos become clips.", default="test")
common.reuse_flag("limit", "Photos used (one clip per motion each; 0 = all).", default=8)
common.reuse_flag("model")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


def load_photos() -> list[np.ndarray]:
    _, files = sources.list_split(config.DataConfig(data=FLAGS.data), FLAGS.split)
    files = files[:FLAGS.limit + 1] if FLAGS.limit else files  # +1: the last cut's second shot
    return [np.asarray(images.read_photo(f, config.DataConfig.max_pixels).rgb * 255 + 0.5,
                       np.uint8) for f in files]


def write_clip(path: str, seq: np.ndarray) -> None:
    """Frames (T, h, w, 3) uint8 as H.264 MP4 through the video CLI's writer (crf 18)."""
    height, width = seq.shape[1:3]
    info = video_io.VideoInfo(width, height, fps=fractions.Fraction(CLIP_FPS),
                              time_base=fractions.Fraction(1, CLIP_FPS), frames=len(seq),
                              rotation=0, audio_codec=None)
    writer = video_io.Mp4Writer(path, info, None, {"software": "benchmarks/video_flicker.py"})
    for t, rgb in enumerate(seq):
        writer.write_frame(rgb, t)
    writer.close()


def gray_frames(rgb: np.ndarray) -> np.ndarray:
    """The clip as an old film's scan gives it: Rec.601 luma in all three channels."""
    gray = np.round(rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]))
    return np.repeat(gray.clip(0, 255).astype(np.uint8)[..., None], 3, -1)


def decode(path: str) -> np.ndarray:
    with video_io.VideoReader(path, config.DataConfig.max_pixels) as reader:
        return np.stack([item.rgb for item in reader if isinstance(item, video_io.Frame)])


def known_motion_error(seq: np.ndarray, clip: clips.Clip) -> float:
    """Mean warping error of a sequence (T, h, w, C) under the clip's known motion."""
    errors = [temporal.warping_error(seq[t], seq[t - 1], clip.maps[t], clip.valid[t])
              for t in range(1, len(seq))]
    return statistics.mean(e for e in errors if e is not None)


def rgb_error(seq: np.ndarray, clip: clips.Clip) -> float:
    return known_motion_error(seq.astype(np.float32) / 255, clip)


def ab_error(seq: np.ndarray, clip: clips.Clip) -> float:
    return known_motion_error(color.rgb_to_lab(seq.astype(np.float32) / 255).numpy()[..., 1:],
                              clip)


def score(out: np.ndarray, clip: clips.Clip) -> dict:
    """Warping errors under the known motion (sRGB, and a*b*: the colour the model adds), PSNR
    and colourfulness of colourised frames."""
    out_f = out.astype(np.float32) / 255
    psnr = metrics.psnr(clip.frames.astype(np.float32) / 255, out_f).numpy()
    row = {"warping_error": rgb_error(out, clip), "ab_warping_error": ab_error(out, clip),
           "psnr": float(psnr.mean()),
           "colorfulness": float(metrics.colorfulness(out_f).numpy().mean())}
    if clip.cuts:
        row["cut_psnr"] = [float(psnr[clip.cuts[0]]), float(psnr[clip.cuts[0] + 1])]
    return row


def colour_change(seq: np.ndarray, clip: clips.Clip) -> np.ndarray:
    """Per frame, |a*b* - the previous frame's a*b* carried by the known motion| as a red heat
    image (T, h, w, 3) uint8 (black where the motion maps nothing)."""
    ab = color.rgb_to_lab(seq.astype(np.float32) / 255).numpy()[..., 1:]
    heat = np.zeros(seq.shape, np.uint8)
    for t in range(1, len(seq)):
        change = np.linalg.norm(ab[t] - temporal.remap(ab[t - 1], clip.maps[t]), axis=-1)
        level = np.clip(change * CHANGE_GAIN, 0, 255) * clip.valid[t]
        heat[t, ..., 0] = level.astype(np.uint8)
        heat[t, ..., 1] = heat[t, ..., 2] = (level * 0.25).astype(np.uint8)
    return heat


def write_strip(path: str, clip: clips.Clip, outputs: dict[str, np.ndarray]) -> None:
    """The README's picture: a row per sequence, STRIP_FRAMES across."""
    rows = [gray_frames(clip.frames), outputs["none"], colour_change(outputs["none"], clip),
            outputs["flow"], colour_change(outputs["flow"], clip), clip.frames]
    picked = [np.concatenate([seq[t] for t in STRIP_FRAMES], 1) for seq in rows]
    with open(path, "wb") as f:
        f.write(images.encode_image(np.concatenate(picked, 0), None, "png"))


def run_clip(model: inference.Colorizer, clip: clips.Clip, scratch: str,
             keep: dict | None = None) -> dict:
    """Both modes on the clip's encoded gray version, scored on the colouriser's frames (before
    the output encoder) and again after H.264, beside the floors: the ground truth's own error
    and the ground truth through the same encoder."""
    src, enc = os.path.join(scratch, "gray.mp4"), os.path.join(scratch, "out.mp4")
    write_clip(src, gray_frames(clip.frames))
    write_clip(enc, clip.frames)
    result = {"truth": {"warping_error": rgb_error(clip.frames, clip),
                        "ab_warping_error": ab_error(clip.frames, clip),
                        "ab_warping_error_h264": ab_error(decode(enc), clip)},
              "input_warping_error": rgb_error(decode(src), clip)}
    outputs = {}
    for mode in config.TEMPORAL_MODES:
        stabilizer = temporal.Stabilizer(settings())
        with video_io.VideoReader(src, config.DataConfig.max_pixels) as reader:
            decoded = (f for f in reader if isinstance(f, video_io.Frame))
            out = np.stack([f.rgb for f in frames.colorize_frames(
                model, decoded, mode=mode, stabilizer=stabilizer)])
        outputs[mode] = out
        write_clip(enc, out)
        result[mode] = score(out, clip) | {"ab_warping_error_h264": ab_error(decode(enc), clip),
                                           "cuts_found": stabilizer.cuts if mode == "flow" else []}
    if keep is not None:
        keep.update(outputs)
    return result


def summarise(rows: list[dict]) -> list[dict]:
    """Per motion and overall: none's and flow's means, and the targets' ratios and gaps."""
    out = []
    for motion in MOTIONS + ("all",):
        sel = [r for r in rows if motion in ("all", r["motion"])]
        mean = lambda mode, key: statistics.mean(r[mode][key] for r in sel)  # noqa: E731
        row = {"motion": motion, "clips": len(sel),
               "ab_none": mean("none", "ab_warping_error"),
               "ab_flow": mean("flow", "ab_warping_error"),
               "warp_input": statistics.mean(r["input_warping_error"] for r in sel),
               "ab_truth": mean("truth", "ab_warping_error"),
               "h264_truth": mean("truth", "ab_warping_error_h264"),
               "h264_none": mean("none", "ab_warping_error_h264"),
               "h264_flow": mean("flow", "ab_warping_error_h264"),
               "warp_none": mean("none", "warping_error"), "warp_flow": mean("flow", "warping_error"),
               "psnr_none": mean("none", "psnr"), "psnr_flow": mean("flow", "psnr"),
               "colour_ratio": mean("flow", "colorfulness") / mean("none", "colorfulness")}
        row["ab_ratio"] = row["ab_flow"] / row["ab_none"]
        row["warp_ratio"] = row["warp_flow"] / row["warp_none"]
        row["psnr_gap"] = row["psnr_flow"] - row["psnr_none"]
        cut = [r for r in sel if "cut_psnr" in r["none"]]
        if cut:
            row["cut2_gap"] = statistics.mean(r["flow"]["cut_psnr"][1] - r["none"]["cut_psnr"][1]
                                              for r in cut)
        out.append(row)
    return out


COLUMNS = (common.Column("motion", "motion"), common.Column("clips", "clips"),
           common.Column("ab_none", "ab err none", "{:.2f}"),
           common.Column("ab_flow", "ab err flow", "{:.2f}"),
           common.Column("ab_ratio", "ab flow/none", "{:.2f}"),
           common.Column("ab_truth", "ab err truth", "{:.2f}"),
           common.Column("warp_input", "RGB err input", "{:.2e}"),
           common.Column("warp_none", "RGB err none", "{:.2e}"),
           common.Column("warp_flow", "RGB err flow", "{:.2e}"),
           common.Column("warp_ratio", "RGB flow/none", "{:.2f}"),
           common.Column("psnr_none", "PSNR none", "{:.2f}"),
           common.Column("psnr_gap", "PSNR flow-none", "{:+.3f}"),
           common.Column("colour_ratio", "colour flow/none", "{:.3f}"),
           common.Column("cut2_gap", "cut+1 PSNR flow-none", "{:+.3f}"))
H264_COLUMNS = (common.Column("motion", "motion"),
                common.Column("h264_truth", "ab err truth", "{:.2f}"),
                common.Column("h264_none", "ab err none", "{:.2f}"),
                common.Column("h264_flow", "ab err flow", "{:.2f}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    machine = common.machine_info()
    photos = load_photos()
    if len(photos) < 2:
        raise UserError(f"need at least 2 photos in {FLAGS.data} split {FLAGS.split}")
    model = inference.load_model(FLAGS.model)
    rows, pans = [], []
    with tempfile.TemporaryDirectory(prefix="colorgan-bench-flicker-") as scratch:
        for i, photo in enumerate(photos[:-1]):
            size = CLIP_SIZE if photo.shape[1] >= photo.shape[0] else CLIP_SIZE[::-1]
            second = photos[i + 1]
            if second.shape[:2] != photo.shape[:2]:
                second = np.ascontiguousarray(np.rot90(second))
            for motion in MOTIONS:
                clip = clips.make_clip(photo, motion, FLAGS.clip_frames, size, second=second,
                                       seed=i)
                keep = {} if motion == "pan" else None
                rows.append({"photo": i, "motion": motion} | run_clip(model, clip, scratch, keep))
                if keep:
                    pans.append((rows[-1]["none"]["ab_warping_error"], clip, keep))
    if FLAGS.strip:
        _, clip, outputs = sorted(pans, key=lambda p: p[0])[len(pans) // 2]
        write_strip(FLAGS.strip, clip, outputs)
    summary = summarise(rows)
    notes = [f"{len(photos) - 1} photos of {FLAGS.data} ({FLAGS.split}), {FLAGS.clip_frames} "
             f"frames per clip at {CLIP_SIZE[1]}x{CLIP_SIZE[0]}; model {FLAGS.model}",
             "targets: flow/none <= 0.50, PSNR flow-none >= -0.2 dB, colour flow/none >= 0.9, "
             "cut+1 PSNR flow-none >= -0.2 dB"]
    common.print_report("Flicker under known motion: --temporal=flow vs none (the colouriser's "
                        "frames)", summary, COLUMNS, notes)
    common.print_report("After the output's H.264 encoding (crf 18, yuv420p)", summary,
                        H264_COLUMNS, ["ab err truth: the ground truth through the same encoder "
                                       "(4:2:0 chroma and 8-bit YUV rounding)"])
    common.write_results(NAME, machine=machine, rows=summary, notes=notes, method=__doc__,
                         settings=common.flag_settings(["data", "split", "limit", "model",
                                                        "clip_frames", "blend", "cut_distance"]),
                         extra={"clips": rows})
    return 0


if __name__ == "__main__":
    app.run(main)
