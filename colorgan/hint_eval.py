"""How much a user-guided model gains from hints: PSNR and AuC against the number of hints,
simulated from the ground truth (Zhang et al. 2017's protocol), beside gray and the automatic
mode (no hints), on the same images.

Per image and hint count k: k points drawn with a fixed seed (the image's index), each a
1-5 px patch at the model's view revealing the truth's mean a*b* there (colorgan.hints, as in
training); the model colours its view with that hint map and the colour is upsampled to the
photo's size as always. k = 0 is the automatic mode.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np
import tensorflow as tf
import tqdm

from colorgan import color, config, data, hints, inference, metrics, plots
from colorgan.fileio import write_atomic


def evaluate_hints(colorizer: inference.Colorizer, data_cfg: config.DataConfig, split: str,
                   counts: list[int], *, full_res: bool = False, render_size: int = 0,
                   limit: int = 0, seed: int = 0) -> dict:
    """Scores `colorizer` with each number of simulated hints in `counts` (and gray).

    Returns {'counts': [...], 'psnr': {k: mean}, 'auc': {k: mean}, 'gray': {'psnr', 'auc'},
    'images': n, 'worse': {k: images}}: 'worse' counts, per k, the images whose PSNR with k
    hints is below their automatic mode's (true hints should never hurt; needs 0 in counts).
    Raises:
      UserError: the model takes no hints.
    """
    counts = sorted(set(counts))
    _, files, _ = data.usable_files(data_cfg, split)
    files = files[:limit] if limit else files
    sums = {name: {k: [] for k in counts} for name in ("psnr", "auc")}
    gray = {"psnr": [], "auc": []}
    for index, path in enumerate(tqdm.tqdm(files, unit="img", disable=None)):
        rgb = data.decode_image(tf.io.read_file(path))
        if not full_res:
            rgb = data.center_crop(rgb, colorizer.train_size)
        rgb = rgb[None]
        lab_true = color.rgb_to_lab(rgb)
        _, ab_true = color.rgb_to_model(rgb)
        for k in counts:
            view = colorizer.hinted_view(rgb, true_hints(ab_true, k, (seed, index)), render_size)
            out = colorizer.finish(view)[None]
            _score(sums, k, rgb, lab_true, out)
        gray_rgb = color.gray_rgb(rgb)
        gray["psnr"].append(float(metrics.psnr(rgb, gray_rgb)[0]))
        gray["auc"].append(float(metrics.ab_auc(lab_true[..., 1:],
                                                color.rgb_to_lab(gray_rgb)[..., 1:])[0]))
    return {"counts": list(counts), "images": len(files),
            **{name: {k: float(np.mean(v)) for k, v in per.items()} for name, per in sums.items()},
            "gray": {name: float(np.mean(v)) for name, v in gray.items()},
            "worse": worse_than_automatic(sums["psnr"])}


def true_hints(ab_true: tf.Tensor, count: int, seed: tuple[int, int]
               ) -> Callable[[tuple[int, int]], tf.Tensor]:
    """A `hint_map_for` for Colorizer.hinted_view: `count` hints simulated from the photo's own
    model-space a*b* (1, H, W, 2), at whatever view size the model sees it (as in training)."""
    def hint_map_for(hw: tuple[int, int]) -> tf.Tensor:
        view_ab = tf.image.resize(ab_true, hw, antialias=True)
        return hints.simulate(view_ab, tf.constant(seed), count=count)
    return hint_map_for


def worse_than_automatic(psnr: dict[int, list[float]]) -> dict[int, int]:
    """Per hint count k > 0: how many images score a lower PSNR with k hints than with none
    (empty without a 0 count to compare with)."""
    if 0 not in psnr:
        return {}
    automatic = np.asarray(psnr[0])
    return {k: int(np.sum(np.asarray(v) < automatic)) for k, v in psnr.items() if k}


def _score(sums: dict, k: int, rgb: tf.Tensor, lab_true: tf.Tensor, out: tf.Tensor) -> None:
    sums["psnr"][k].append(float(metrics.psnr(rgb, out)[0]))
    sums["auc"][k].append(float(metrics.ab_auc(lab_true[..., 1:],
                                               color.rgb_to_lab(out)[..., 1:])[0]))


def summary_markdown(result: dict) -> str:
    """The table: one row per hint count, gray last."""
    lines = ["| hints | PSNR (dB) | AuC | images worse than automatic |", "|---|---|---|---|"]
    for k in result["counts"]:
        label = f"{k} (automatic)" if k == 0 else str(k)
        count = f"{result['worse'][k]} of {result['images']}" if k in result["worse"] else "—"
        lines.append(f"| {label} | {result['psnr'][k]:.2f} | {result['auc'][k]:.4f} | {count} |")
    lines.append(f"| gray | {result['gray']['psnr']:.2f} | {result['gray']['auc']:.4f} | — |")
    return "\n".join(lines) + "\n"


def plot(result: dict) -> bytes:
    """PSNR against the number of simulated hints, with the gray baseline: PNG bytes."""
    fig, ax = plots.figure()
    counts = result["counts"]
    ax.plot(counts, [result["psnr"][k] for k in counts], "o-", label="model")
    ax.axhline(result["gray"]["psnr"], color="gray", ls="--", label="gray baseline")
    ax.set(xlabel="simulated hints per image", ylabel="PSNR (dB)",
           title=f"PSNR vs hints ({result['images']} images)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return plots.png(fig)


def report(colorizer: inference.Colorizer, data_cfg: config.DataConfig, split: str,
           output: str, counts: list[int], **kwargs) -> str:
    """evaluate --hint_points: `evaluate_hints` into OUTPUT/hint_metrics.json, hint_summary.md
    and hint_curve.png; returns the summary table."""
    result = evaluate_hints(colorizer, data_cfg, split, counts, **kwargs)
    text = summary_markdown(result)
    write_atomic(os.path.join(output, "hint_metrics.json"), json.dumps(
        {"model": colorizer.source, "data": data_cfg.data, "split": split, **result},
        indent=2) + "\n")
    write_atomic(os.path.join(output, "hint_summary.md"), text)
    write_atomic(os.path.join(output, "hint_curve.png"), plot(result))
    return text
