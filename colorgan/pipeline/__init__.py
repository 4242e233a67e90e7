"""Batch colourisation on Apache Beam: the pipeline behind `python -m colorgan.batch`.

Inputs are matched and read through Beam's FileSystems (files.py), checked before any pixel is
decoded (stages.py: shared output paths, outputs that are inputs, existing outputs), colourised
by `RunInference` with `ColorizerHandler` (handler.py: the model loaded once per worker process,
one model call per render shape in each batch) and written atomically. Every input gets one
manifest row (job.py); failed rows are also the dead letters. The output rules are the colourise
CLI's (colorgan.photos), so both write the same files. This package is the only part of colorgan
that imports apache_beam (the `batch` extra).
"""

from __future__ import annotations

import collections
import io
import json
import logging as std_logging
import time
import uuid
from typing import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from colorgan import photos
from colorgan.errors import UserError
from colorgan.pipeline import files, stages
from colorgan.pipeline.handler import ColorizerHandler, load_model
from colorgan.pipeline.job import DEAD_LETTERS, MANIFEST, NAMESPACE, Job, Summary

__all__ = ["Job", "Summary", "ColorizerHandler", "build", "run", "check_beam_args",
           "options_help", "MANIFEST", "DEAD_LETTERS", "NAMESPACE"]


def _is_failed(line: str) -> bool:
    return json.loads(line)["status"] == photos.FAILED


def build(p: beam.Pipeline, job: Job, expected: dict) -> beam.PCollection:
    """Adds the job to `p`; returns every input's manifest row (job.row), also written as JSON
    Lines to MANIFEST in job.output, the failed ones to DEAD_LETTERS. `expected`: the provenance
    record this job's outputs get (an existing output that has it is skipped)."""
    todo, refused = stages.checked_pairs(p, job, expected)
    decoded = todo | "Read" >> beam.ParDo(stages.Decode(job.max_pixels)).with_outputs(
        photos.FAILED, main="photos")
    written = (decoded.photos
               | "Colorize" >> RunInference(ColorizerHandler(job))
               | "Write" >> beam.ParDo(stages.Write(job.fmt)))
    # Counted where each row is made (the writes: as they happen), then gathered.
    account = stages.Account(uuid.uuid4().hex, job.progress_every_s)
    rows = ([pcoll | f"Account{i}" >> beam.ParDo(account)
             for i, pcoll in enumerate((*refused, decoded[photos.FAILED], written))]
            | "Rows" >> beam.Flatten())
    lines = rows | "Json" >> beam.Map(json.dumps, sort_keys=True)
    # One file each (num_shards=1), named exactly (no shard suffix); Beam writes it under a
    # temporary name and renames it at the end.
    lines | "Manifest" >> beam.io.WriteToText(FileSystems.join(job.output, MANIFEST),
                                              shard_name_template="", num_shards=1)
    (lines | "OnlyFailed" >> beam.Filter(_is_failed)
     | "DeadLetters" >> beam.io.WriteToText(FileSystems.join(job.output, DEAD_LETTERS),
                                            shard_name_template="", num_shards=1))
    return rows


def _is_direct(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


def _direct_runner(options: PipelineOptions):
    """Beam's FnApiRunner, the engine the DirectRunner falls back to for batch jobs, made as the
    DirectRunner makes it (its worker processes get the pipeline options), but picked directly:
    the DirectRunner would first try to download the Prism runner binary (the network)."""
    # pylint: disable=import-outside-toplevel
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


# Local worker processes (--direct_running_mode=multi_processing) print their own log lines,
# and the runner logs a forwarded copy of each: keep one copy, and in it only colorgan's lines
# (absl) and errors (Beam's and its libraries' warnings are about the local runner itself).
_QUIET_LOCAL_WORKERS = ('--sdk_harness_log_level_overrides={"root": "ERROR", "apache_beam": '
                        '"ERROR", "__main__": "ERROR", "absl": "INFO"}',)
_FORWARDED_WORKER_LOGS = "apache_beam.runners.portability.local_job_service"


def run(job: Job, beam_args: Sequence[str] = (), quiet: bool = False) -> Summary:
    """Runs the job to the end on the runner that `beam_args` (Beam pipeline options) choose.
    `quiet`: on the DirectRunner, Beam's own INFO lines stay off the screen (colorgan's stay).

    Raises:
      UserError: the model cannot be loaded (checked here, before any worker starts), or the
        runner reports that the job did not finish.
    """
    start = time.perf_counter()
    expected = load_model(job).provenance(job.render_size)
    options = PipelineOptions(list(beam_args))
    runner = None  # Beam creates the runner that --runner names
    if _is_direct(options):
        if quiet:  # the user's own overrides come later, so they win
            options = PipelineOptions([*_QUIET_LOCAL_WORKERS, *beam_args])
            std_logging.getLogger(_FORWARDED_WORKER_LOGS).setLevel(std_logging.CRITICAL)
        runner = _direct_runner(options)
    p = beam.Pipeline(runner=runner, options=options)
    build(p, job, expected)
    result = p.run()
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise UserError(f"the Beam job ended in state {state}; the outputs written are complete: "
                        "run the same command again to finish the rest")
    counts = _metric_counts(result) or _manifest_counts(job.output)
    return Summary(counts[photos.OK], counts[photos.SKIPPED], counts[photos.FAILED],
                   counts["pixels"], time.perf_counter() - start, job.output)


def _metric_counts(result) -> collections.Counter:
    """The job's colorgan counters (committed values where the runner has them), over all steps."""
    counts = collections.Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] += value or 0
    return counts


def _manifest_counts(output: str) -> collections.Counter:
    """Statuses and written pixels counted from the manifest, for runners that keep no counters."""
    counts = collections.Counter()
    text = files.read_bytes(FileSystems.join(output, MANIFEST)).decode("utf-8")
    for line in io.StringIO(text):
        entry = json.loads(line)
        counts[entry["status"]] += 1
        if entry["status"] == photos.OK:
            counts["pixels"] += entry["size"][0] * entry["size"][1]
    return counts


# ------------------------------------------------------------------ Beam's own options
def _options_parser():
    """The argparse parser PipelineOptions builds from every options class Beam defines."""
    parsers = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)
    parser = parsers[0]
    parser.exit_on_error = False  # a bad value raises instead of exiting with status 2
    return parser


def check_beam_args(args: Sequence[str]) -> list[str]:
    """`args` if each is a Beam pipeline option or its value; else ValueError naming the others
    (Beam itself only logs a warning and drops them, so a misspelt flag would be ignored)."""
    try:
        _, unknown = _options_parser().parse_known_args(list(args))
    except Exception as e:  # pylint: disable=broad-except  (argparse.ArgumentError and friends)
        raise ValueError(f"bad Beam pipeline option: {e}") from e
    if unknown:
        raise ValueError(f"unknown flag or argument {' '.join(unknown)} (neither a colorgan flag "
                         "nor a Beam pipeline option)")
    return list(args)


def options_help() -> str:
    """Beam's pipeline options as help text (shown by `python -m colorgan.batch --help`)."""
    parser = _options_parser()
    parser.usage = "--NAME=VALUE or --NAME VALUE, anywhere on the command line"
    return ("Apache Beam pipeline options (every flag that is not colorgan's goes to Beam's "
            "PipelineOptions):\n\n" + parser.format_help())

