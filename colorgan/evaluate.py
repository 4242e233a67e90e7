"""Score a model on a dataset, beside the gray baseline, and write a report.

    python -m colorgan.evaluate --model=runs/quickstart --data=../shared/datasets/bsds500-jpg.tar.gz --split=test --full_res --output=runs/eval_bsds
    python -m colorgan.evaluate --table --model=/tmp/cifar10_unet,/tmp/cifar10_gan --data=../shared/datasets/cifar10-jpg.tar.gz --output=runs/table

Every run also scores the gray baseline (ab = 0: the input itself) on the same images, so no
number is read without its floor. Without --full_res images are centre-cropped to the model's
training size (the paper's CIFAR-10 protocol); with it, each image is colourised at its own size
(L at full resolution, colour rendered at --render_size and upsampled). --split defaults to test,
or to all of the images for a folder or archive without train/val/test folders.
REPORT_DIR gets metrics.json, per_image.csv, summary.md, curve.png, colorfulness.png, grid.png.

    python -m colorgan.evaluate --video=film.mp4 --video=home.mov --output=runs/eval_video

With --video (repeat it) videos are scored instead: each is turned gray and colourised with
--temporal=flow and none, and REPORT_DIR gets video_metrics.json and video_summary.md: flicker
(Lai et al.'s warping error on sRGB and on a*b*, beside the gray input's own) and, for colour
videos, PSNR and AuC against the video itself per mode and for gray (needs the `video` extra).
"""

from __future__ import annotations

import csv
import io
import json
import os

from absl import app, flags, logging
import numpy as np
import tensorflow as tf
import tqdm

from colorgan import cli, color, config, data, hint_eval, inference, metrics, plots, sources
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("evaluate")

SYSTEMS = ("model", "gray")
# Per-image metrics, in report order: (name, higher is better).
METRICS = (("accuracy", True), ("paper_mae", False), ("mae_rgb255", False), ("ab_l1", False),
           ("auc", True), ("psnr", True), ("ssim", True), ("ciede2000", False),
           ("flat_ab_error", False), ("colorfulness", None), ("colorfulness_ratio", None))
GRID_CELL = 128  # px, the side of each thumbnail in grid.png
EVAL_BATCH = 64  # centre-cropped images scored per step
_MIN_COLORFULNESS = 1e-6  # denominator floor for colourfulness ratios (a fully gray truth)


@tf.function(reduce_retracing=True)
def score(rgb_true: tf.Tensor, predictions: dict[str, tf.Tensor], threshold: float) -> dict:
    """Per-image metrics of each prediction (N, H, W, 3) against the truth, sRGB in [0, 1].

    Returns {'colorfulness_truth': (N,), system: {metric: (N,), 'cdf': (N, 151)}}; the truth's
    Lab and colourfulness are computed once for all systems.
    """
    lab_true = color.rgb_to_lab(rgb_true)
    cf_true = metrics.colorfulness(rgb_true)
    out = {"colorfulness_truth": cf_true}
    for system, rgb_pred in predictions.items():
        out[system] = _score_one(rgb_true, lab_true, cf_true, rgb_pred, threshold)
    return out


def _score_one(rgb_true, lab_true, cf_true, rgb_pred, threshold) -> dict[str, tf.Tensor]:
    lab_pred = color.rgb_to_lab(rgb_pred)
    cf_pred = metrics.colorfulness(rgb_pred)
    flat_error, flat_pixels = metrics.flat_ab_error(lab_true, lab_pred)
    return {
        "accuracy": metrics.paper_accuracy(lab_true, lab_pred, threshold),
        "paper_mae": metrics.paper_mae(lab_true, lab_pred),
        "mae_rgb255": metrics.rgb_mae_255(rgb_true, rgb_pred),
        "ab_l1": metrics.ab_l1(lab_true[..., 1:] / color.AB_SCALE, lab_pred[..., 1:] / color.AB_SCALE),
        "auc": metrics.ab_auc(lab_true[..., 1:], lab_pred[..., 1:]),
        "psnr": metrics.psnr(rgb_true, rgb_pred),
        "ssim": metrics.ssim(rgb_true, rgb_pred),
        "ciede2000": metrics.mean_ciede2000(lab_true, lab_pred),
        "flat_ab_error": flat_error,
        "flat_pixels": flat_pixels,
        "colorfulness": cf_pred,
        "colorfulness_ratio": cf_pred / tf.maximum(cf_true, _MIN_COLORFULNESS),
        "cdf": metrics.ab_error_cdf(lab_true[..., 1:], lab_pred[..., 1:]),
    }


def _images(files: list[str], image_size: int, full_res: bool) -> tf.data.Dataset:
    """(rgb (B, H, W, 3), paths (B,)) batches: centre crops batched, full-size images one by one."""
    def load(path):
        rgb = data.decode_image(tf.io.read_file(path))
        return (rgb if full_res else data.center_crop(rgb, image_size)), path

    ds = tf.data.Dataset.from_tensor_slices(files).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(1 if full_res else EVAL_BATCH).prefetch(tf.data.AUTOTUNE)


def _systems(colorizer: inference.Colorizer, rgb: tf.Tensor, render_size: int) -> dict:
    """The model's output and the gray baseline's (ab = 0, the input itself) for a batch."""
    return {"model": colorizer.colorize(rgb, render_size),
            "gray": color.gray_rgb(rgb)}


def evaluate(colorizer: inference.Colorizer, data_cfg: config.DataConfig, split: str, *,
             full_res: bool = False, render_size: int = 0, threshold: float = 2.0,
             limit: int = 0) -> dict:
    """Scores `colorizer` and the gray baseline on every image of `split`.

    Returns {'rows': one dict per image, 'means': {system: {metric: mean over images}},
    'cdf': {system: (151,) mean cumulative ab-error curve}}.
    """
    _, files, _ = data.usable_files(data_cfg, split)
    files = files[:limit] if limit else files
    rows, cdfs = [], {s: [] for s in SYSTEMS}
    bar = tqdm.tqdm(total=len(files), unit="img", disable=None)
    for rgb, paths in _images(files, colorizer.train_size, full_res):
        batch_rows = [{"path": p.decode(), "height": int(rgb.shape[1]), "width": int(rgb.shape[2])}
                      for p in paths.numpy()]
        scored = score(rgb, _systems(colorizer, rgb, render_size), threshold)
        for i, row in enumerate(batch_rows):
            row["colorfulness_truth"] = float(scored["colorfulness_truth"][i])
        for system in SYSTEMS:
            scores = {k: v.numpy() for k, v in scored[system].items()}
            cdfs[system].append(scores.pop("cdf"))
            for i, row in enumerate(batch_rows):
                row.update({f"{system}_{k}": float(v[i]) for k, v in scores.items()})
        rows += batch_rows
        bar.update(len(batch_rows))
    bar.close()
    means = {s: {name: float(np.mean([r[f"{s}_{name}"] for r in rows])) for name, _ in METRICS}
             for s in SYSTEMS}
    # The dataset's ratio is mean output colourfulness over mean truth colourfulness: a mean of
    # per-image ratios explodes on nearly gray photos (truth colourfulness ~0).
    truth = float(np.mean([r["colorfulness_truth"] for r in rows]))
    for s in SYSTEMS:
        means[s]["colorfulness_ratio"] = means[s]["colorfulness"] / max(truth, _MIN_COLORFULNESS)
        # Over flat pixels, not images: a photo with a large sky counts for its sky.
        pixels = np.array([r[f"{s}_flat_pixels"] for r in rows])
        errors = np.array([r[f"{s}_flat_ab_error"] for r in rows])
        means[s]["flat_ab_error"] = float(np.sum(errors * pixels) / max(np.sum(pixels), 1.0))
    return {"rows": rows, "means": means, "truth_colorfulness": truth,
            "cdf": {s: np.mean(np.concatenate(cdfs[s]), axis=0) for s in SYSTEMS}}


def best_worst_grid(colorizer: inference.Colorizer, rows: list[dict], count: int, *,
                    full_res: bool, render_size: int) -> np.ndarray:
    """uint8 grid: the `count` best then `count` worst images by the model's ab error; columns
    gray | output | truth, each the central square at GRID_CELL px."""
    order = [int(i) for i in np.argsort([r["model_ab_l1"] for r in rows])]
    picks = order[:count] + [i for i in order[::-1][:count] if i not in order[:count]]
    grid_rows = []
    for rgb, _ in _images([rows[i]["path"] for i in picks], colorizer.train_size, full_res).unbatch():
        rgb = rgb[tf.newaxis]
        outputs = _systems(colorizer, rgb, render_size)
        cells = [_thumbnail(x[0]) for x in (outputs["gray"], outputs["model"], rgb)]
        grid_rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(grid_rows, axis=0)


def _thumbnail(rgb: tf.Tensor) -> np.ndarray:
    """uint8 (GRID_CELL, GRID_CELL, 3): the central square, resized."""
    square = data.center_crop(rgb, GRID_CELL)
    return color.to_uint8(square).numpy()


# ------------------------------------------------------------------------------ the report
def summary_markdown(means: dict, title: str) -> str:
    """Markdown table: metric | model | gray baseline | model - gray."""
    lines = [f"# {title}", "", "| metric | model | gray baseline | model − gray |", "|---|---|---|---|"]
    for name, higher in METRICS:
        m, g = means["model"][name], means["gray"][name]
        arrow = "" if higher is None else (" ↑" if higher else " ↓")
        lines.append(f"| {name}{arrow} | {m:.4f} | {g:.4f} | {m - g:+.4f} |")
    return "\n".join(lines) + "\n"


def plot_curve(cdf: dict[str, np.ndarray]) -> bytes:
    """The cumulative ab-error curve, model vs gray (Zhang et al. 2016, thresholds 0-150)."""
    fig, ax = plots.figure()
    for system, label in (("model", "model"), ("gray", "gray baseline")):
        curve = cdf[system]
        ax.plot(np.arange(len(curve)), curve, label=f"{label} (AuC {np.mean(curve):.3f})")
    ax.set(xlabel="threshold on ab distance (Lab units)", ylabel="fraction of pixels within",
           xlim=(0, len(cdf["model"]) - 1), ylim=(0, 1.01), title="Cumulative ab error")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return plots.png(fig)


def plot_colorfulness(rows: list[dict]) -> bytes:
    """Histogram of colourfulness: model outputs vs ground truth (gray is 0 by definition)."""
    fig, ax = plots.figure()
    truth = [r["colorfulness_truth"] for r in rows]
    model = [r["model_colorfulness"] for r in rows]
    bins = np.linspace(0, max(max(truth), max(model), 1.0), 30)
    ax.hist(truth, bins=bins, alpha=0.5, label=f"ground truth (mean {np.mean(truth):.1f})")
    ax.hist(model, bins=bins, alpha=0.5, label=f"model (mean {np.mean(model):.1f})")
    ax.set(xlabel="colourfulness (Hasler & Süsstrunk 2003)", ylabel="images",
           title="Colourfulness")
    ax.legend()
    return plots.png(fig)


def write_report(result: dict, grid: np.ndarray, output: str, identity: dict) -> dict:
    """Writes every report file into `output`; returns the metrics.json content."""
    report = {"means": {"model": result["means"]["model"], "gray_baseline": result["means"]["gray"]},
              "truth_colorfulness": result["truth_colorfulness"], "images": len(result["rows"]),
              **identity}
    write_atomic(os.path.join(output, "metrics.json"),
                 json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result["rows"][0]))
    writer.writeheader()
    writer.writerows(result["rows"])
    write_atomic(os.path.join(output, "per_image.csv"), buf.getvalue())
    title = f"{identity['model']['source']} on {identity['data']['source']} ({identity['data']['split']})"
    write_atomic(os.path.join(output, "summary.md"), summary_markdown(result["means"], title))
    write_atomic(os.path.join(output, "curve.png"), plot_curve(result["cdf"]))
    write_atomic(os.path.join(output, "colorfulness.png"), plot_colorfulness(result["rows"]))
    write_atomic(os.path.join(output, "grid.png"), tf.io.encode_png(grid).numpy())
    return report


def paper_table(rows: dict[str, dict]) -> str:
    """The paper's CIFAR-10 table layout: one row per model, MAE and accuracy columns."""
    lines = ["| model | MAE | accuracy |", "|---|---|---|"]
    for name, means in rows.items():
        lines.append(f"| {name} | {means['paper_mae']:.2f} | {100 * means['accuracy']:.2f} % |")
    return "\n".join(lines) + "\n"


def report(colorizer: inference.Colorizer, data_cfg: config.DataConfig, split: str, output: str,
           *, full_res: bool = False, render_size: int = 0, threshold: float = 2.0, limit: int = 0,
           grid_images: int = 4) -> dict:
    """Evaluates `colorizer` (and the gray baseline) and writes the whole report to `output`.

    Returns the evaluation result (see `evaluate`) with the metrics.json content under 'report'.
    """
    result = evaluate(colorizer, data_cfg, split, full_res=full_res, render_size=render_size,
                      threshold=threshold, limit=limit)
    identity = {"model": {"source": colorizer.source, "kind": colorizer.kind,
                          "config": config.to_dict(colorizer.config)},
                "data": {"source": data_cfg.data, "split": split},
                "flags": {"full_res": full_res, "render_size": render_size, "threshold": threshold,
                          "limit": limit, "grid_images": grid_images}}
    grid = best_worst_grid(colorizer, result["rows"], grid_images, full_res=full_res,
                           render_size=render_size)
    result["report"] = write_report(result, grid, output, identity)
    logging.info("report in %s", output)
    return result


def default_split(data_cfg: config.DataConfig) -> str:
    """'test' where the source has split folders; else 'all' (a flat folder of photos is
    evaluated whole, not a hash-picked tenth of it)."""
    if sources.has_split_folders(data_cfg):
        return "test"
    logging.info("%s has no train/val/test folders: evaluating all of its images (--split picks "
                 "a hash-assigned split instead)", data_cfg.data)
    return "all"


def video_reports(colorizer: inference.Colorizer, paths: list[str], output: str, *,
                  render_size: int = 0, limit: int = 0,
                  max_pixels: int) -> tuple[dict, str, list[str]]:
    """Scores each video (colorgan.video_eval) and writes OUTPUT/video_metrics.json and
    video_summary.md. A video that cannot be read is logged in one line and skipped.

    Returns:
      (results per video, the summary table, the videos that failed).
    Raises:
      UserError: no video could be scored, or the `video` extra is missing.
    """
    try:
        from colorgan import video_eval  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(f"video evaluation needs OpenCV ({e}): pip install 'colorgan[video]'") \
            from e
    results, failed = {}, []
    for path in tqdm.tqdm(paths, unit="video", disable=None if len(paths) > 1 else True):
        try:
            results[path] = video_eval.evaluate_video(colorizer, path, render_size=render_size,
                                                      max_pixels=max_pixels, limit=limit)
        except UserError as e:  # one bad video must not lose the others' scores
            logging.error("%s: %s; skipped", path, e)
            failed.append(path)
    if not results:
        raise UserError(f"none of the {len(paths)} videos could be scored")
    text = video_eval.summary_markdown(results)
    write_atomic(os.path.join(output, "video_metrics.json"), json.dumps(
        {"model": colorizer.source, "videos": results, "failed": failed}, indent=2) + "\n")
    write_atomic(os.path.join(output, "video_summary.md"), text)
    return results, text, failed


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",))
    if FLAGS.video:
        clash = [f"--{name}" for name in ("data", "table", "full_res", "split")
                 if FLAGS[name].present]
        if clash:
            raise app.UsageError(f"--video scores videos; {', '.join(clash)} belong to photo "
                                 "evaluation")
        model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                     **cli.inference_settings(FLAGS))
        _, text, failed = video_reports(model, FLAGS.video, FLAGS.output,
                                        render_size=FLAGS.render_size, limit=FLAGS.limit,
                                        max_pixels=FLAGS.max_pixels)
        print(text)
        return cli.EXIT_USER_ERROR if failed else cli.EXIT_OK
    data_cfg = cli.config_from_flags(FLAGS).data
    split = FLAGS.split if FLAGS["split"].present else default_split(data_cfg)
    if FLAGS.hint_points:
        model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                     **cli.inference_settings(FLAGS))
        print(hint_eval.report(model, data_cfg, split, FLAGS.output,
                               [int(v) for v in FLAGS.hint_points], full_res=FLAGS.full_res,
                               render_size=FLAGS.render_size, limit=FLAGS.limit))
        return cli.EXIT_OK
    specs = FLAGS.model.split(",") if FLAGS.table else [FLAGS.model]
    table = {}
    for i, spec in enumerate(specs):
        out = os.path.join(FLAGS.output, f"{i + 1}_{os.path.basename(spec.rstrip('/'))}") \
            if FLAGS.table else FLAGS.output
        model = inference.load_model(spec, FLAGS.checkpoint_step, **cli.inference_settings(FLAGS))
        result = report(model, data_cfg, split, out,
                        full_res=FLAGS.full_res, render_size=FLAGS.render_size,
                        threshold=FLAGS.accuracy_threshold, limit=FLAGS.limit,
                        grid_images=FLAGS.grid_images)
        table[spec] = result["means"]["model"]
        if not FLAGS.table:
            print(summary_markdown(result["means"], spec))
    if FLAGS.table:
        text = paper_table({**table, "gray baseline": result["means"]["gray"]})
        write_atomic(os.path.join(FLAGS.output, "table.md"), text)
        print(text)
    return 0


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
