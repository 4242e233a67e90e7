"""Batch colourisation throughput: the colourise CLI's path, the Beam pipeline in-process, and the
pipeline on worker processes, on the same photos at full resolution, in one run.

    python benchmarks/batch.py --data=../shared/datasets/bsds500-jpg.tar.gz --split=test

The photos (--data's --split, the first --limit of them; 0 = all) are copied to a temporary
folder. Every call colourises all of them into a fresh, empty output folder (removed after the
call, inside the timing, alike for every case). The model is loaded once, before timing, and
shared by the in-process cases. Cases:
  cli          colorize.colorize_paths, what `python -m colorgan.colorize` runs: one photo at a
               time, read -> colourise -> encode -> atomic write.
  batch        colorgan.pipeline.run on Beam's in-process DirectRunner (FnApiRunner, one worker):
               the checks (output grouping, existing outputs), RunInference with one model call
               per render shape (--batch_images, --batch_megapixels), atomic writes through
               FileSystems, the manifest, dead letters and counters.
  batch_Nproc  the same job with --direct_num_workers=--workers and
               --direct_running_mode=multi_processing: every call starts the worker processes,
               each importing TensorFlow and loading the model. TensorFlow already uses both
               cores in one process, so on this 2-core machine this case is about correctness,
               not speed.
  cli_one, batch_one   one photo: the fixed cost per job, to separate from the cost per photo.
Figures: images/s (median block, --repeats blocks of one call after --warmup calls), wall ms and
CPU ms per photo (this process's CPU time, all threads: the in-process cases only; the workers
of batch_Nproc are other processes), x cli. The pipeline's overhead per photo is
(batch - batch_one) / (cli - cli_one) per photo beyond the first (target <= 1.15); the plain
ratio batch / cli, which includes the fixed cost, is shown beside it.
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import shutil
import statistics
import tempfile
import time
from typing import Callable

from absl import app, flags

import common  # benchmarks/common.py
from colorgan import cli, colorize, config, pipeline, sources
from colorgan.errors import UserError
from colorgan.pipeline import handler

FLAGS = flags.FLAGS
NAME = "batch"
TARGET_OVERHEAD = 1.15
DEFAULT_DATA = "../shared/datasets/bsds500-jpg.tar.gz"

flags.DEFINE_integer("workers", 2, "Worker processes of the multi-process case.", lower_bound=2)
flags.DEFINE_list("cases", ["cli", "batch", "batch_nproc", "cli_one", "batch_one"],
                  "Cases to run (batch_nproc: --workers worker processes).")
flags.adopt_module_key_flags(common)
common.reuse_flag("data", default=DEFAULT_DATA)
common.reuse_flag("split", "Split of --data whose photos are colourised.", default="test")
common.reuse_flag("limit", "At most this many photos (0 = all).")
common.reuse_flag("model")
common.reuse_flag("render_size")
common.reuse_flag("batch_images")
common.reuse_flag("batch_megapixels")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


def copy_photos(scratch: str) -> tuple[str, str, int]:
    """(folder of the photos, folder of the first one alone, how many photos)."""
    root, files = sources.list_split(config.DataConfig(data=FLAGS.data), FLAGS.split)
    files = files[:FLAGS.limit] if FLAGS.limit else files
    folders = (os.path.join(scratch, "photos"), os.path.join(scratch, "one"))
    for i, src in enumerate(files):
        for folder in folders[:1] if i else folders:
            dst = os.path.join(folder, os.path.relpath(src, root))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
    return folders[0], folders[1], len(files)


def _timed_call(run: Callable[[str], int], expected: int, scratch: str, cpu: list[float]):
    """One call: `run(fresh output folder)` must write `expected` photos; its CPU time is kept."""
    def call():
        out = tempfile.mkdtemp(dir=scratch)
        start = time.process_time()
        written = run(out)
        shutil.rmtree(out)
        cpu.append(time.process_time() - start)
        if written != expected:
            raise RuntimeError(f"wrote {written} photos, expected {expected}")
    return call


def make_cases(folder: str, one: str, count: int, scratch: str, cpu: dict) -> dict:
    """The --cases, each a no-argument callable; `cpu[name]` collects their CPU seconds."""
    job = pipeline.Job(inputs=(folder,), output="unused", model=FLAGS.model,
                       render_size=FLAGS.render_size, batch_images=FLAGS.batch_images,
                       batch_megapixels=FLAGS.batch_megapixels, progress_every_s=3600)
    model = handler.load_model(job)  # the same Colorizer for every in-process case

    def cli_run(src):
        return lambda out: len(colorize.colorize_paths(model, [src], out,
                                                       render_size=FLAGS.render_size).written)

    def batch_run(src, beam_args=()):
        return lambda out: pipeline.run(dataclasses.replace(job, inputs=(src,), output=out),
                                        beam_args, quiet=True).ok

    multi = [f"--direct_num_workers={FLAGS.workers}", "--direct_running_mode=multi_processing"]
    runs = {"cli": (cli_run(folder), count), "batch": (batch_run(folder), count),
            "batch_nproc": (batch_run(folder, multi), count), "cli_one": (cli_run(one), 1),
            "batch_one": (batch_run(one), 1)}
    unknown = set(FLAGS.cases) - set(runs)
    if unknown:
        raise app.UsageError(f"unknown --cases {sorted(unknown)}; valid: {sorted(runs)}")
    return {name: _timed_call(*runs[name], scratch, cpu.setdefault(name, []))
            for name in FLAGS.cases}


def result_rows(timings: dict, cpu: dict, count: int) -> tuple[list[dict], list[dict]]:
    """One row per case, and the overhead rows (per photo beyond the first; 2 workers vs 1)."""
    photos_of = {name: 1 if name.endswith("_one") else count for name in timings}
    ms = {name: 1000 * t.median_s / photos_of[name] for name, t in timings.items()}
    rows = [{"case": f"batch_{FLAGS.workers}proc" if name == "batch_nproc" else name,
             "photos": photos_of[name], "images_per_s": t.units_per_s, "ms_per_photo": ms[name],
             "cpu_ms_per_photo": (None if name == "batch_nproc" else
                                  1000 * statistics.median(cpu[name]) / photos_of[name]),
             "x_cli": common.ratio(ms[name], ms.get("cli" if photos_of[name] > 1 else "cli_one")),
             "spread": t.spread} for name, t in timings.items()]
    overhead = []
    if count > 1 and {"cli", "batch", "cli_one", "batch_one"} <= set(timings):
        def marginal(name):
            return (timings[name].median_s - timings[f"{name}_one"].median_s) / (count - 1)
        # With too few photos or a noisy machine a marginal cost can come out <= 0: no figure.
        value = (common.ratio(marginal("batch"), marginal("cli"))
                 if marginal("cli") > 0 and marginal("batch") > 0 else None)
        overhead.append({"measure": "pipeline / CLI per photo beyond the first", "value": value,
                         "target": f"<= {TARGET_OVERHEAD:g}",
                         "met": None if value is None else ("yes" if value <= TARGET_OVERHEAD
                                                            else "no")})
        overhead.append({"measure": "pipeline / CLI per photo, fixed cost included",
                         "value": common.ratio(ms["batch"], ms["cli"])})
    if {"batch", "batch_nproc"} <= set(timings):
        overhead.append({"measure": f"{FLAGS.workers} worker processes / in-process, images/s",
                         "value": common.ratio(timings["batch_nproc"].units_per_s,
                                               timings["batch"].units_per_s)})
    return rows, overhead


CASE_COLUMNS = (common.Column("case", "case"), common.Column("photos", "photos"),
                common.Column("images_per_s", "images/s", "{:.2f}"),
                common.Column("ms_per_photo", "ms/photo", "{:.1f}"),
                common.Column("cpu_ms_per_photo", "CPU ms/photo", "{:.1f}"),
                common.Column("x_cli", "x cli", "{:.2f}"),
                common.Column("spread", "spread", "{:.2f}"))
OVERHEAD_COLUMNS = (common.Column("measure", "measure"), common.Column("value", "value", "{:.3f}"),
                    common.Column("target", "target"), common.Column("met", "met"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    std_logging.getLogger("apache_beam").setLevel(std_logging.WARNING)  # runner internals
    machine = common.machine_info()
    common.warn_if_busy(machine)
    with tempfile.TemporaryDirectory(prefix="colorgan-bench-batch-") as scratch:
        folder, one, count = copy_photos(scratch)
        if not count:
            raise UserError(f"no photos in {FLAGS.data} split {FLAGS.split}")
        cpu: dict[str, list[float]] = {}
        cases = make_cases(folder, one, count, scratch, cpu)
        timings = common.measure(cases, calls=1, repeats=FLAGS.repeats, warmup=FLAGS.warmup,
                                 units={n: 1 if n.endswith("_one") else count for n in cases})
        cpu = {name: seconds[FLAGS.warmup:] for name, seconds in cpu.items()}  # the timed calls
    rows, overhead = result_rows(timings, cpu, count)
    notes = [f"{count} photos of {FLAGS.data} ({FLAGS.split}) at full resolution; model "
             f"{FLAGS.model}, render size {FLAGS.render_size or 'the model training size'}",
             f"--batch_images={FLAGS.batch_images}, --batch_megapixels={FLAGS.batch_megapixels}",
             "CPU ms: this process, all threads (in-process cases)"]
    common.print_report("Batch colourisation: the CLI's path vs the Beam pipeline", rows,
                        CASE_COLUMNS, [])
    common.print_report("Overheads", overhead, OVERHEAD_COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings=common.flag_settings(["data", "split", "limit", "model",
                                                        "render_size", "batch_images",
                                                        "batch_megapixels", "workers", "cases",
                                                        "repeats", "warmup"]),
                         extra={"overhead": overhead,
                                "timings": {n: t.to_dict() for n, t in timings.items()},
                                "cpu_s_per_call": cpu})
    return 0


if __name__ == "__main__":
    app.run(main)
