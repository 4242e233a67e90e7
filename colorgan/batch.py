"""Colourise whole archives on Apache Beam: the DirectRunner here, Dataflow, Flink or Spark there.

    python -m colorgan.batch --model=default --input=colorgan/samples --output=/tmp/colorized_batch

Each --input (repeat it) is a file, a folder (searched recursively; its structure is kept under
--output) or a glob ('**' matches across folders); local paths or URIs (gs://...). Outputs are
the colourise CLI's: `<stem>.png` (or --format=jpg) at full resolution with the same provenance
record, written atomically. A re-run skips every input whose output exists with the same model
and settings, so a stopped job finishes with the same command; an output made by another model
or setting is reported, not replaced (--overwrite replaces it). Inputs are never overwritten, and
files below --output are never read as inputs. Bad inputs and refused outputs fail alone: each is
logged in one line and listed in OUTPUT/dead_letters.jsonl; OUTPUT/manifest.jsonl has a row for
every input (status ok, skipped or failed; reason; size; milliseconds; model). The command ends
with a one-line summary; the exit status is 2 if any input failed. Needs the `batch` extra:
pip install 'colorgan[batch]'.

Every flag that is not colorgan's is one of Beam's pipeline options (listed after colorgan's
flags below), e.g. --direct_num_workers=2 --direct_running_mode=multi_processing, or
--runner=DataflowRunner --project=P --region=R --temp_location=gs://... (see BUILD.md).
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os

from absl import app, flags

from colorgan import cli, config, quiet
from colorgan.errors import UserError

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("batch")


def _pipeline():
    """colorgan.pipeline, imported only now: the core install has no Apache Beam."""
    try:
        from colorgan import pipeline  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(f"Apache Beam is not installed ({e}): pip install 'colorgan[batch]'") from e
    return pipeline


def beam_help() -> str:
    """The text --help shows after colorgan's flags: Beam's pipeline options."""
    cli.hide_library_logs()
    _quiet_beam()
    try:
        return _pipeline().options_help()
    except UserError as e:
        return f"Beam's pipeline options: {e}"


def _quiet_beam() -> None:
    """Keeps Beam's INFO lines (runner internals, batch statistics; some logged on import) off
    the screen. A re-run's replacing of the previous manifest is expected, not a warning."""
    std_logging.getLogger("apache_beam").setLevel(std_logging.WARNING)
    std_logging.getLogger("apache_beam.io.filebasedsink").setLevel(std_logging.ERROR)


@contextlib.contextmanager
def _quiet_workers():
    """While the job runs, worker processes started by this one (multi-process DirectRunner)
    filter TensorFlow's start-up lines as this process does (colorgan.quiet)."""
    saved = {name: os.environ.get(name) for name in (quiet.WORKER_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    os.environ[quiet.WORKER_ENV] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv[:1], required=("output",))
    if not FLAGS.input:
        raise app.UsageError("give at least one --input (a file, folder or glob)")
    if not FLAGS.verbose:
        _quiet_beam()
    pipeline = _pipeline()
    try:
        beam_args = pipeline.check_beam_args(argv[1:])
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    job = pipeline.Job(
        inputs=tuple(FLAGS.input), output=FLAGS.output, model=FLAGS.model,
        checkpoint_step=FLAGS.checkpoint_step,
        settings=tuple(sorted(cli.inference_settings(FLAGS, config.NO_HINT_INFERENCE).items())),
        render_size=FLAGS.render_size, fmt=FLAGS.format, overwrite=FLAGS.overwrite,
        max_pixels=FLAGS.max_pixels, batch_images=FLAGS.batch_images,
        batch_megapixels=FLAGS.batch_megapixels, progress_every_s=FLAGS.progress_every_s)
    with contextlib.nullcontext() if FLAGS.verbose else _quiet_workers():
        summary = pipeline.run(job, beam_args, quiet=not FLAGS.verbose)
    print(summary.line())
    return cli.EXIT_USER_ERROR if summary.failed else cli.EXIT_OK


def run() -> None:
    cli.run(main, passthrough=True, extra_help=beam_help)


if __name__ == "__main__":
    run()
