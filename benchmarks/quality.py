"""Quality per CPU-minute: train recipes for the same time budget, score their checkpoints on
validation photos at full resolution beside gray, and plot quality against training time.

    python benchmarks/quality.py --runs=benchmarks/ablations/base.flags,benchmarks/ablations/coco.flags \\
        --cpu_minutes=30 --workdir=/work/refmodel/ablations

Method:
  1. Each `--runs` flagfile trains in its own workdir (`--workdir`/<file stem>) with
     `python -m colorgan.train --cpu_minutes=B`, one run at a time (they would share the CPU
     otherwise), a checkpoint every ~B/`--points` minutes. A finished run is not trained again.
  2. `--score_workdirs=NAME=DIR[@BEFORE][#vividness=V]` adds runs trained elsewhere (the shipped
     model's two phases): every checkpoint is scored; @BEFORE puts another workdir's training
     time in front (phase 2 after phase 1); #vividness=V scores at the vividness chosen for it
     (benchmarks/inference_settings.py) rather than the one its recipe names.
  3. Every checkpoint is colourised at full resolution on each `--eval_sets` set and scored
     beside the gray baseline (PSNR, AuC, CIEDE2000, flat-region ab error, colourfulness ratio);
     scores are cached in the run's workdir (quality.jsonl), so a re-run only scores what is new.
  4. x axis: the run's CPU time up to the checkpoint (`cpu_s` of the training log, both cores:
     pausing the training with SIGSTOP or sharing the CPU does not count) in minutes.
  5. Time to quality: the first checkpoint at which the first eval set's PSNR and AuC reach
     `--target_model`'s (scored in the same run) with colourfulness >= `--min_colorfulness`.
Writes the results JSON, a table (stdout) and the plot (`--plot`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from absl import app, flags, logging
import numpy as np

import common  # benchmarks/common.py
from colorgan import cli, config, evaluate, inference, plots
from colorgan import workdir as workdir_lib
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
NAME = "quality"
flags.DEFINE_list("runs", [], "Flagfiles to train, each for --cpu_minutes (name: file stem).")
flags.DEFINE_list("score_workdirs", [], "NAME=DIR[@BEFORE][#vividness=V]: existing training "
                  "workdirs to score (every checkpoint); @BEFORE adds workdir BEFORE's training "
                  "time first; #vividness=V scores at that vividness instead of the run's own.")
flags.DEFINE_list("eval_sets", ["bsds500_val=../shared/datasets/bsds500-jpg.tar.gz:val:0",
                                "coco_val=../shared/datasets/coco2014-256.tar.gz:val:200"],
                  "NAME=SOURCE:SPLIT:LIMIT validation sets (LIMIT 0 = all); the first decides "
                  "the time to quality.")
flags.DEFINE_integer("points", 4, "Checkpoints per trained run that are scored (evenly spaced in "
                     "time, the last included).", lower_bound=1)
flags.DEFINE_float("estimate_images_per_s", 30.0, "Expected training speed, to space the "
                   "checkpoints of a new run (--points per budget).", lower_bound=0.1)
flags.DEFINE_string("target_model", "default", "The model whose first-set PSNR and AuC define "
                    "'quality reached' (scored in the same run).")
flags.DEFINE_float("min_colorfulness", 0.8, "... with at least this colourfulness ratio.")
flags.DEFINE_string("plot", "", "Where to write the PNG (default: beside the results JSON).")
common.reuse_flag("workdir", "Parent folder of the trained runs' workdirs.", "/tmp/colorgan-quality")
common.reuse_flag("cpu_minutes", "Training budget per run, in CPU-minutes (~1.8 per wall "
                  "minute on the idle 2-core machine).", 30.0)

LOG_EVERY = 50  # training log lines (their cpu_s places checkpoints on the x axis)
CORES_BUSY = 1.8  # CPU-seconds per wall second of a training alone on the 2-core machine
METRICS = ("psnr", "auc", "ciede2000", "flat_ab_error", "colorfulness_ratio")


@dataclasses.dataclass(frozen=True)
class EvalSet:
    name: str
    data: config.DataConfig
    split: str
    limit: int


def parse_eval_sets(specs: list[str]) -> list[EvalSet]:
    sets = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        source, split, limit = rest.rsplit(":", 2)
        sets.append(EvalSet(name, config.DataConfig(data=source), split, int(limit)))
    return sets


def train_run(flagfile: str, workdir: str, minutes: float) -> None:
    """Trains one recipe for `minutes` in a subprocess (skipped once its budget is used up)."""
    clock = workdir_lib.logged_clock(workdir, 10 ** 12)
    if clock["cpu_s"] >= 60 * minutes * 0.98:
        logging.info("%s: already trained %.1f CPU-minutes", workdir, clock["cpu_s"] / 60)
        return
    cfg = cli.config_from_args([f"--flagfile={flagfile}"])
    # CPU-minutes to wall time: the training's threads keep both cores busy most of the time.
    every = max(1, round(60 * minutes / CORES_BUSY * FLAGS.estimate_images_per_s
                         / cfg.data.batch_size / FLAGS.points))
    every = every if every <= LOG_EVERY else LOG_EVERY * round(every / LOG_EVERY)  # on a log line
    cmd = [sys.executable, "-m", "colorgan.train", f"--flagfile={flagfile}", f"--workdir={workdir}",
           f"--cpu_minutes={minutes}", "--steps=100000000", f"--ckpt_every_steps={every}",
           "--keep_checkpoints=1000", f"--log_every_steps={min(every, LOG_EVERY)}"]
    logging.info("training: %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def parse_score_workdir(spec: str) -> tuple[str, str, str | None, float | None]:
    """NAME=DIR[@BEFORE][#vividness=V] -> (name, dir, before, vividness)."""
    spec, _, setting = spec.partition("#")
    name, _, rest = spec.partition("=")
    workdir, _, before = rest.partition("@")
    key, _, value = setting.partition("=")
    if not name or not workdir or (setting and key != "vividness"):
        raise app.UsageError(f"--score_workdirs: {spec!r} is not NAME=DIR[@BEFORE][#vividness=V]")
    return name, workdir, before or None, float(value) if setting else None


def cpu_minutes_at(workdir: str, step: int) -> float:
    """Training CPU time (minutes) up to `step`, from the last log line at or before it."""
    return workdir_lib.logged_clock(workdir, step)["cpu_s"] / 60


def checkpoint_steps(workdir: str, points: int | None) -> list[int]:
    paths = workdir_lib.checkpoint_paths(workdir)[::-1]  # oldest first
    steps = [int(p.rsplit("-", 1)[1]) for p in paths]
    if points is None or len(steps) <= points:
        return steps
    picks = np.linspace(0, len(steps) - 1, points).round().astype(int)
    return [steps[i] for i in sorted(set(picks))]


def score_model(spec: str, step: int, sets: list[EvalSet], cache_path: str | None,
                vividness: float | None = None) -> dict:
    """{set: {'model': {metric}, 'gray': {metric}}} for a model (a checkpoint), cached.
    `vividness`: None = the model's own (cache entries without one)."""
    cached = {}
    if cache_path and os.path.isfile(cache_path):
        for line in open(cache_path, encoding="utf-8"):
            entry = json.loads(line)
            cached[(entry["step"], entry["set"], entry.get("vividness"))] = entry["scores"]
    out, colorizer = {}, None
    for s in sets:
        if (step, s.name, vividness) in cached:
            out[s.name] = cached[(step, s.name, vividness)]
            continue
        colorizer = colorizer or inference.load_model(spec, step, vividness=vividness)
        result = evaluate.evaluate(colorizer, s.data, s.split, full_res=True, limit=s.limit)
        out[s.name] = {system: {m: result["means"][system][m] for m in METRICS}
                       for system in ("model", "gray")}
        if cache_path:
            with open(cache_path, "a", encoding="utf-8") as f:
                entry = {"step": step, "set": s.name, "scores": out[s.name]}
                if vividness is not None:
                    entry["vividness"] = vividness
                f.write(json.dumps(entry) + "\n")
    return out


def curve(name: str, workdir: str, before: str | None, sets: list[EvalSet],
          points: int | None, vividness: float | None = None) -> list[dict]:
    offset = cpu_minutes_at(before, 10 ** 12) if before else 0.0
    rows = []
    for step in checkpoint_steps(workdir, points):
        scores = score_model(workdir, step, sets, os.path.join(workdir, "quality.jsonl"),
                             vividness)
        row = {"run": name, "step": step, "cpu_minutes": offset + cpu_minutes_at(workdir, step)}
        for s in sets:
            model, gray = scores[s.name]["model"], scores[s.name]["gray"]
            row.update({f"{s.name}_{m}": model[m] for m in METRICS})
            row.update({f"{s.name}_gray_{m}": gray[m] for m in METRICS})
        rows.append(row)
        logging.info("%s step %d: %s", name, step, {k: round(v, 3) for k, v in row.items()
                                                     if isinstance(v, float)})
    return rows


def time_to_quality(rows: list[dict], first: str, target: dict, min_colorfulness: float):
    """CPU-minutes of the first row reaching the target's PSNR and AuC with enough colour."""
    for row in rows:
        if (row[f"{first}_psnr"] >= target["psnr"] and row[f"{first}_auc"] >= target["auc"]
                and row[f"{first}_colorfulness_ratio"] >= min_colorfulness):
            return row["cpu_minutes"]
    return None


def plot(rows: list[dict], sets: list[EvalSet], target: dict) -> bytes:
    """One panel per metric (model − gray, or ratio), one curve per run, per eval set."""
    fig, _ = plots.figure()
    fig.clear()
    fig.set_size_inches(4 * 4, 3.2 * len(sets))
    panels = (("psnr", "PSNR − gray (dB)"), ("auc", "AuC − gray"),
              ("flat_ab_error", "flat-region ab error / gray's"),
              ("colorfulness_ratio", "colourfulness / truth's"))
    runs = list(dict.fromkeys(r["run"] for r in rows))
    for i, s in enumerate(sets):
        for j, (metric, label) in enumerate(panels):
            ax = fig.add_subplot(len(sets), len(panels), i * len(panels) + j + 1)
            for run in runs:
                pts = [r for r in rows if r["run"] == run]
                x = [r["cpu_minutes"] for r in pts]
                model = np.array([r[f"{s.name}_{metric}"] for r in pts])
                gray = np.array([r[f"{s.name}_gray_{metric}"] for r in pts])
                y = model if metric == "colorfulness_ratio" else (
                    model / np.maximum(gray, 1e-6) if metric == "flat_ab_error" else model - gray)
                ax.plot(x, y, marker="o", label=run)
            if i == 0 and metric in ("psnr", "auc"):
                ax.axhline(target[metric] - target[f"gray_{metric}"], color="gray", ls="--", lw=1)
            ax.set(xlabel="training CPU-minutes (2 cores)", title=f"{s.name}: {label}")
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return plots.png(fig)


def main(argv: list[str]) -> int:
    common.check_usage(argv)
    sets = parse_eval_sets(FLAGS.eval_sets)
    machine = common.machine_info()
    rows = []
    for flagfile in FLAGS.runs:
        name = os.path.splitext(os.path.basename(flagfile))[0]
        workdir = os.path.join(FLAGS.workdir, name)
        train_run(flagfile, workdir, FLAGS.cpu_minutes)
        rows += curve(name, workdir, None, sets, FLAGS.points)
    for spec in FLAGS.score_workdirs:
        name, workdir, before, vividness = parse_score_workdir(spec)
        rows += curve(name, workdir, before, sets, None, vividness)
    first = sets[0].name
    target_scores = score_model(FLAGS.target_model, 0, sets[:1], None)[first]
    target = {**target_scores["model"], **{f"gray_{k}": v for k, v in target_scores["gray"].items()}}
    ttq = {run: time_to_quality([r for r in rows if r["run"] == run], first, target,
                                FLAGS.min_colorfulness)
           for run in dict.fromkeys(r["run"] for r in rows)}
    columns = [common.Column("run", "run"), common.Column("step", "step"),
               common.Column("cpu_minutes", "CPU-min", "{:.1f}")] + [
        common.Column(f"{first}_{m}", m, "{:.3f}") for m in METRICS]
    notes = [f"target ({FLAGS.target_model} on {first}): PSNR {target['psnr']:.3f} "
             f"(gray {target['gray_psnr']:.3f}), AuC {target['auc']:.4f} "
             f"(gray {target['gray_auc']:.4f}), colourfulness >= {FLAGS.min_colorfulness}"] + [
        f"time to quality, {run}: " + ("not reached" if t is None else f"{t:.1f} CPU-minutes")
        for run, t in ttq.items()]
    common.print_report("Quality per CPU-minute (first eval set)", rows, columns, notes)
    path = common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                                settings=common.flag_settings(["runs", "score_workdirs", "eval_sets",
                                                               "cpu_minutes", "points",
                                                               "target_model"]),
                                extra={"target": target, "time_to_quality": ttq})
    png = FLAGS.plot or os.path.splitext(path)[0] + ".png"
    write_atomic(png, plot(rows, sets, target))
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    app.run(main)
