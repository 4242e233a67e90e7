"""Scores for colourised video: flicker (Lai et al.'s warping error) and, where the input has
colour, per-frame PSNR and AuC against it; each beside its floor.

The input video is the ground truth: its frames are turned gray and colourised in both temporal
modes ('flow' and 'none') in one pass, streaming (state: the previous frame of each). The
warping error between consecutive output frames uses the flow estimated on the input's own gray
frames (OpenCV's DIS with the forward-backward check, temporal.FlowEstimator), as Lai et al.
estimate it on the input. It is reported on sRGB (their metric) and on a*b* alone (the colour
the model adds: the output's L is the input's, so the input's own warping error is a floor of
the sRGB figure, reported as `input`). Under known motion (synthetic clips) use
benchmarks/video_flicker.py instead.
"""

from __future__ import annotations

import statistics
from typing import Iterator

import numpy as np
import tensorflow as tf

from colorgan import color, frames, inference, metrics, temporal, video_io

# A video whose frames have less colourfulness than this is gray: no PSNR/AuC against it.
MIN_TRUTH_COLORFULNESS = 2.0


def _decoded(reader: video_io.VideoReader) -> Iterator[video_io.Frame]:
    return (item for item in reader if isinstance(item, video_io.Frame))


def evaluate_video(model: inference.Colorizer, path: str, *, render_size: int = 0,
                   max_pixels: int, limit: int = 0) -> dict:
    """Scores one video (at most `limit` frames; 0 = all).

    Returns {'frames', 'has_color', 'warping_error': {mode or 'input': float},
    'ab_warping_error': {mode: float}, 'psnr' / 'auc': {mode or 'gray': float} (colour inputs),
    'cuts': flow-mode scene cuts}.
    """
    estimator = temporal.FlowEstimator()
    sums: dict[str, list[float]] = {}
    prev: dict[str, np.ndarray] = {}
    stabilizer = temporal.Stabilizer()
    colour_seen = []
    with video_io.VideoReader(path, max_pixels) as reader:
        count = 0
        for truth, out_none, out_flow in frames.colorize_both_modes(
                model, _limited(_decoded(reader), limit), stabilizer, render_size=render_size):
            gray = color.to_uint8(color.gray_rgb(truth.rgb.astype(np.float32)
                                                 / color.UINT8_MAX)).numpy()
            outputs = {"flow": out_flow.rgb, "none": out_none.rgb, "input": gray}
            _accumulate(sums, prev, outputs, truth.rgb, estimator, colour_seen)
            count += 1
    return _summary(sums, count, bool(colour_seen) and statistics.mean(colour_seen) >=
                    MIN_TRUTH_COLORFULNESS, stabilizer.cuts)


def _limited(source: Iterator, limit: int) -> Iterator:
    for i, item in enumerate(source):
        if limit and i >= limit:
            return
        yield item


def _accumulate(sums: dict, prev: dict, outputs: dict[str, np.ndarray], truth: np.ndarray,
                estimator: temporal.FlowEstimator, colour_seen: list) -> None:
    """Adds one frame's scores: warping errors against the previous frame, PSNR and AuC."""
    gray_u8 = outputs["input"][..., 0]
    truth_f = tf.constant(truth[None], tf.float32) / color.UINT8_MAX
    colour_seen.append(float(metrics.colorfulness(truth_f)[0]))
    lab_true = color.rgb_to_lab(truth_f)
    if "gray" in prev:
        where, valid = estimator.backward_map(gray_u8, prev["gray"])
    for name, rgb in outputs.items():
        rgb_f = rgb.astype(np.float32) / color.UINT8_MAX
        lab = color.rgb_to_lab(rgb_f[None]).numpy()[0]
        if name in prev:
            rgb_prev, lab_prev = prev[name]
            for key, cur, old in (("warping_error", rgb_f, rgb_prev),
                                  ("ab_warping_error", lab[..., 1:], lab_prev[..., 1:])):
                error = temporal.warping_error(cur, old, where, valid)
                if error is not None and not (key == "ab_warping_error" and name == "input"):
                    sums.setdefault(f"{key}/{name}", []).append(error)
        prev[name] = (rgb_f, lab)
        system = "gray" if name == "input" else name
        sums.setdefault(f"psnr/{system}", []).append(
            float(metrics.psnr(truth_f, rgb_f[None])[0]))
        sums.setdefault(f"auc/{system}", []).append(
            float(metrics.ab_auc(lab_true[..., 1:], lab[None, ..., 1:])[0]))
    prev["gray"] = gray_u8


def _summary(sums: dict, count: int, has_color: bool, cuts: list[int]) -> dict:
    result = {"frames": count, "has_color": has_color, "cuts": cuts}
    for key, values in sorted(sums.items()):
        metric, system = key.split("/")
        if metric in ("psnr", "auc") and not has_color:
            continue
        result.setdefault(metric, {})[system] = statistics.mean(values)
    return result


def summary_markdown(results: dict[str, dict]) -> str:
    """One table row per video: flicker per mode (sRGB and a*b*), PSNR/AuC per mode and gray."""
    lines = ["| video | frames | warp err flow | warp err none | input's own | ab warp flow | "
             "ab warp none | PSNR flow | PSNR none | PSNR gray | AuC flow | AuC none | AuC gray |",
             "|---|---" + "|---" * 11 + "|"]
    for name, r in results.items():
        w, a = r.get("warping_error", {}), r.get("ab_warping_error", {})
        p, u = r.get("psnr", {}), r.get("auc", {})
        cells = [_fmt(w, "flow", "{:.2e}"), _fmt(w, "none", "{:.2e}"), _fmt(w, "input", "{:.2e}"),
                 _fmt(a, "flow", "{:.2f}"), _fmt(a, "none", "{:.2f}"),
                 *(_fmt(p, s, "{:.2f}") for s in ("flow", "none", "gray")),
                 *(_fmt(u, s, "{:.4f}") for s in ("flow", "none", "gray"))]
        lines.append(f"| {name} | {r['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(values: dict, key: str, fmt: str) -> str:
    return fmt.format(values[key]) if key in values else "n/a"

