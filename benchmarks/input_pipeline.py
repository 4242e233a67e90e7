"""Input-pipeline throughput (data.make_train_dataset) against the train step's demand.

    python benchmarks/input_pipeline.py --data=../shared/datasets/imagenette-224.tar.gz --image_size=128

Timed in one process, one case after the other (each would steal the other's CPU if overlapped):
  pipeline   batches of data.make_train_dataset (read, decode, random crop and flip, RGB -> Lab)
             over data.training_files(--data), after --warmup batches (autotune settles, the
             prefetch buffer fills), --steps batches per timed block.
  step       the demand: colorgan's train step (step.build_state + step.make_train_step) with
             the model, mode and precision of --step_recipe (default reference_gan: the shipped
             model's GAN phase, bf16), at --image_size and --batch_size, on one constant batch
             taken from the pipeline.
  step_fed   the same step fed by the pipeline, as train.train feeds it: pipeline and step now
             share the CPU.
Ratios: pipeline / step (target >= 3: the pipeline can keep up with a third of the CPU or less)
and step_fed / step (1.0: the step never waits for data). --step_images_per_s=N takes N as the
demand instead (then it is not measured in this run, and step_fed is skipped).

The data config (crop, flip, gray-photo filter) is --step_recipe's, with --data, --image_size and
--batch_size from the command line; the archive is extracted and scanned once into colorgan's
cache, before any timing.
"""

from __future__ import annotations

import dataclasses
import os

from absl import app, flags, logging
import tensorflow as tf

import common
from colorgan import cli, data, workdir
from colorgan import step as step_lib
from colorgan.config import Config

FLAGS = flags.FLAGS
NAME = "input_pipeline"
TARGET_PIPELINE_RATIO = 3.0
DEFAULT_DATA = os.path.normpath(os.path.join(common.REPO_ROOT, "..", "shared", "datasets",
                                             "imagenette-224.tar.gz"))

flags.DEFINE_string("step_recipe", "reference_gan", "Recipe (colorgan/configs) whose model, "
                    "training mode, precision and augmentation the demand is measured with.")
flags.DEFINE_float("step_images_per_s", 0.0, "If > 0: the train step's demand in images/s, taken "
                   "as given instead of measured.", lower_bound=0.0)
flags.adopt_module_key_flags(common)
common.reuse_flag("data", default=DEFAULT_DATA)
common.reuse_flag("image_size", "Training crop size in pixels (square).", default=128)
common.reuse_flag("batch_size")
common.reuse_flag("steps", "Batches (pipeline) or train steps per timed block.", default=20)
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


def precision_name(cfg: Config) -> str:
    return "bf16" if cfg.train.mixed_precision == "bfloat16" else "fp32"


def measure_all(cfg: Config, files: tuple[str, ...], *, steps: int, repeats: int, warmup: int,
                demand: float) -> dict[str, common.Timing]:
    """Timings of 'pipeline', and unless `demand` is given, 'step' and 'step_fed'."""
    units = cfg.data.batch_size
    batches = iter(data.make_train_dataset(cfg.data, files, cfg.train.seed))
    timings = common.measure({"pipeline": lambda: next(batches)}, calls=steps, repeats=repeats,
                             warmup=warmup, units=units)
    if demand:
        return timings
    dataset = data.make_train_dataset(cfg.data, files, cfg.train.seed)
    with workdir.precision(cfg.train.mixed_precision):
        state = step_lib.build_state(cfg.model, cfg.train)
    step = step_lib.make_train_step(state, cfg.model, cfg.train, dataset.element_spec)
    batch, update_d = next(batches), tf.constant(True)
    timings.update(common.measure({"step": lambda: step(batch, update_d)}, calls=steps,
                                  repeats=repeats, warmup=warmup, units=units))
    fed = iter(dataset)
    timings.update(common.measure({"step_fed": lambda: step(next(fed), update_d)}, calls=steps,
                                  repeats=repeats, warmup=warmup, units=units))
    return timings


def result_rows(timings: dict[str, common.Timing], demand: float, step_name: str) -> list[dict]:
    ips = {name: t.units_per_s for name, t in timings.items()}
    demand = demand or ips["step"]
    rows = [{"key": "pipeline", "case": "pipeline", "images_per_s": ips["pipeline"],
             "ratio": ips["pipeline"] / demand, "target": f">= {TARGET_PIPELINE_RATIO:g}",
             "met": "yes" if ips["pipeline"] / demand >= TARGET_PIPELINE_RATIO else "no"}]
    if "step" in ips:
        rows += [{"key": "step", "case": f"step: {step_name}, constant batch",
                  "images_per_s": ips["step"], "ratio": 1.0},
                 {"key": "step_fed", "case": f"step_fed: {step_name}, fed by the pipeline",
                  "images_per_s": ips["step_fed"], "ratio": ips["step_fed"] / ips["step"],
                  "target": "~1.0"}]
    else:
        rows.append({"key": "given", "case": "step demand: --step_images_per_s, not measured",
                     "images_per_s": demand, "ratio": 1.0})
    for row in rows:
        timing = timings.get(row["key"])
        row.update(spread=timing.spread if timing else None,
                   timing=timing.to_dict() if timing else None)
    return rows


COLUMNS = (common.Column("case", "case"), common.Column("images_per_s", "img/s", "{:.1f}"),
           common.Column("ratio", "x step", "{:.2f}"), common.Column("target", "target"),
           common.Column("met", "met"), common.Column("spread", "spread", "{:.0%}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if FLAGS.steps < 1:
        raise app.UsageError("--steps must be at least 1")
    try:
        cfg = cli.config_from_recipe(FLAGS.step_recipe, data=FLAGS.data, image_size=FLAGS.image_size,
                                     batch_size=FLAGS.batch_size)
    except ValueError as e:
        raise app.UsageError(f"--step_recipe={FLAGS.step_recipe}: {e}") from e
    machine = common.machine_info()
    common.warn_if_busy(machine)
    source = data.training_files(cfg.data)
    logging.info("timing the pipeline over %d files", len(source.files))
    timings = measure_all(cfg, source.files, steps=FLAGS.steps, repeats=FLAGS.repeats,
                          warmup=FLAGS.warmup, demand=FLAGS.step_images_per_s)
    step_name = f"{FLAGS.step_recipe} ours_{precision_name(cfg)}"
    rows = result_rows(timings, FLAGS.step_images_per_s, step_name)
    notes = [f"data: {cfg.data.data} ({len(source.files)} training files), "
             f"{cfg.data.image_size} px, batch {cfg.data.batch_size}",
             f"step: {FLAGS.step_recipe}, mode {cfg.train.mode}, {cfg.train.mixed_precision}"]
    common.print_report(f"Input pipeline vs train-step demand, median of {FLAGS.repeats} x "
                        f"{FLAGS.steps} batches", rows, COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings={**common.flag_settings(["step_recipe", "step_images_per_s",
                                                           "steps", "repeats", "warmup"]),
                                   "config": dataclasses.asdict(cfg)})
    return 0


if __name__ == "__main__":
    app.run(main)
