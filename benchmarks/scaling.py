"""Data-parallel scaling: 1 worker on 1 core vs 2 localhost workers on 1 core each.

    python benchmarks/scaling.py --step_recipes=reference_pretrain,cifar10_gan

The machine has 2 cores, so the honest measure is per-core efficiency, weak scaling: each worker
keeps the per-worker batch (--batch_size), so 2 workers train a global batch twice as large.

  1 worker   one process, --strategy=default, pinned to core 0 with 1 intra-op and 1 inter-op
             thread: the baseline.
  2 workers  two processes, --strategy=multiworker (MultiWorkerMirroredStrategy over localhost
             gRPC, TF_CONFIG set by this script), each pinned to its own core with the same threads
             (--inter_op_threads).
  1 process  --strategy=default on both cores (TF's own threads): what you get without
             distribution, for comparison.

efficiency = (2 workers' global images/s) / (2 x the 1-worker images/s); target >= 0.85.

Each case runs colorgan's own train step (step.build_state + step.make_train_step, the model,
losses and precision of a recipe) on a constant in-memory batch fed through the strategy's
distributed dataset, so it measures compute plus the gradient all-reduce, not the input pipeline.
Every process runs --warmup steps, then --repeats timed blocks of --steps steps; a figure is the
median block (the workers' blocks are in lockstep: the all-reduce synchronises them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from absl import app, flags

import common
from colorgan import distribute

FLAGS = flags.FLAGS
NAME = "scaling"
WORKER_TIMEOUT_S = 3600

flags.DEFINE_list("step_recipes", ["reference_pretrain", "cifar10_gan"],
                  "Recipes whose model, losses and precision are timed (colorgan/configs).")
flags.DEFINE_integer("batch_size_per_worker", 16, "Images per worker per step.", lower_bound=1)
flags.DEFINE_integer("inter_op_threads", 1, "Inter-op threads of each pinned process (its "
                     "intra-op threads, the compute, stay at 1): 2 lets a worker's all-reduce "
                     "run beside its compute.", lower_bound=1)
flags.DEFINE_string("worker", None, "Internal: run one timed process with this JSON spec.")
flags.adopt_module_key_flags(common)
common.reuse_flag("steps", "Train steps per timed block.", default=5)
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


# ------------------------------------------------------------------------ one process
def run_worker(spec: dict) -> dict:
    """Times one process (a fresh interpreter, pinned by `launch`; threads are set before TF
    initialises)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if spec["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op_threads"])
    from colorgan import cli, data, workdir  # noqa: PLC0415
    from colorgan import step as step_lib  # noqa: PLC0415

    strategy = distribute.make_strategy(spec["strategy"])  # before any other op
    cfg = cli.config_from_recipe(spec["recipe"])
    size = cfg.model.image_size
    rgb = tf.constant(common.smooth_rgb_u8(size, size, seed=0))
    example = data.to_example(tf.image.convert_image_dtype(rgb, tf.float32))
    per_replica = spec["batch"] // strategy.num_replicas_in_sync
    batch = {k: tf.repeat(v[tf.newaxis], per_replica, axis=0) for k, v in example.items()}
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: tf.data.Dataset.from_tensors(batch).repeat())
    with workdir.precision(cfg.train.mixed_precision):
        state = step_lib.build_state(cfg.model, cfg.train, strategy)
    step = step_lib.make_train_step(state, cfg.model, cfg.train, dataset.element_spec)
    batches, update_d = iter(dataset), tf.constant(True)
    timing = common.measure({"step": lambda: step(next(batches), update_d)}, calls=spec["steps"],
                            repeats=spec["repeats"], warmup=spec["warmup"],
                            units=spec["batch"])["step"]
    return {"recipe": spec["recipe"], "strategy": spec["strategy"], "global_batch": spec["batch"],
            "replicas": strategy.num_replicas_in_sync, **timing.to_dict()}


def launch(specs: list[dict], tf_configs: list[str | None]) -> list[dict]:
    """Runs each spec in its own `python benchmarks/scaling.py --worker=...`; their results."""
    procs, outputs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (spec, tf_config) in enumerate(zip(specs, tf_configs)):
            out = os.path.join(tmp, f"worker{i}.json")
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            env.pop("TF_CONFIG", None)
            if tf_config:
                env["TF_CONFIG"] = tf_config
            cmd = [sys.executable, os.path.abspath(__file__), f"--worker={json.dumps(spec)}",
                   f"--output={out}"]
            core = spec["core"]
            pin = None if core is None else (lambda core=core: os.sched_setaffinity(0, {core}))
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True, preexec_fn=pin))
            outputs.append(out)
        try:
            errors = [p.communicate(timeout=WORKER_TIMEOUT_S)[1] for p in procs]
        finally:
            for p in procs:
                p.kill()
        for p, err in zip(procs, errors):
            if p.returncode:
                raise RuntimeError(f"a benchmark process failed:\n{err[-3000:]}")
        results = []
        for out in outputs:
            with open(out, encoding="utf-8") as f:
                results.append(json.load(f))
        return results


def measure_recipe(recipe: str) -> list[dict]:
    base = dict(recipe=recipe, steps=FLAGS.steps, repeats=FLAGS.repeats, warmup=FLAGS.warmup,
                inter_op_threads=FLAGS.inter_op_threads)
    per_worker = FLAGS.batch_size_per_worker
    one = launch([dict(base, strategy="default", batch=per_worker, core=0, threads=1)], [None])[0]
    two = launch([dict(base, strategy="multiworker", batch=2 * per_worker, core=i, threads=1)
                  for i in range(2)], distribute.localhost_tf_configs(2))[0]
    both = launch([dict(base, strategy="default", batch=per_worker, core=None, threads=0)],
                  [None])[0]
    rows = []
    for case, result, cores in (("1 worker, 1 core", one, 1), ("2 workers, 1 core each", two, 2),
                                ("1 process, 2 cores (TF threads)", both, 2)):
        rate = result["units_per_s"]
        rows.append({"recipe": recipe, "case": case, "cores": cores,
                     "global_batch": result["global_batch"], "images_per_s": rate,
                     "vs_1_worker": common.ratio(rate, one["units_per_s"]),
                     "per_core_efficiency": common.ratio(rate / cores, one["units_per_s"]),
                     "spread": result["spread"], "raw": result})
    return rows


COLUMNS = (common.Column("recipe", "recipe"), common.Column("case", "case"),
           common.Column("global_batch", "batch"),
           common.Column("images_per_s", "img/s", "{:.1f}"),
           common.Column("vs_1_worker", "x 1 worker", "{:.2f}"),
           common.Column("per_core_efficiency", "per-core eff.", "{:.2f}"),
           common.Column("spread", "spread", "{:.0%}"))


def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if FLAGS.worker:
        result = run_worker(json.loads(FLAGS.worker))
        with open(FLAGS.output, "w", encoding="utf-8") as f:
            json.dump(result, f)
        return 0
    if os.cpu_count() < 2:
        raise app.UsageError("needs at least 2 CPU cores")
    machine = common.machine_info()
    common.warn_if_busy(machine)
    rows = [row for recipe in FLAGS.step_recipes for row in measure_recipe(recipe)]
    notes = ["per-core efficiency = images/s / cores / (the 1-worker images/s); target >= 0.85 "
             "for 2 workers",
             f"per-worker batch {FLAGS.batch_size_per_worker} (weak scaling); processes pinned "
             f"with sched_setaffinity, 1 intra-op + {FLAGS.inter_op_threads} inter-op thread(s) each "
             "(not the 2-core row)"]
    common.print_report(f"Scaling, median of {FLAGS.repeats} x {FLAGS.steps} steps", rows,
                        COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings=common.flag_settings(["step_recipes", "batch_size_per_worker", "inter_op_threads",
                                                        "steps", "repeats", "warmup"]))
    return 0


if __name__ == "__main__":
    app.run(main)
