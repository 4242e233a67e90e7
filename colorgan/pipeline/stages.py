"""The pipeline's steps around the model: which inputs may be written (checked across all workers
by grouping), reading photos, writing outputs, and counting every input's manifest row.

Failed and skipped inputs leave as tagged rows (job.row) with the colourise CLI's one-line
reasons; nothing here raises for one input.
"""

from __future__ import annotations

import threading
import time

from absl import logging
import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import PredictionResult

from colorgan import images, photos
from colorgan.pipeline import files
from colorgan.pipeline.handler import Decoded
from colorgan.pipeline.job import NAMESPACE, STATUSES, Job, row

FAILED, SKIPPED = photos.FAILED, photos.SKIPPED
_NEW = "new"  # tag of the pairs whose output does not exist yet


def _failed(src: str, dst: str, reason: str, **facts) -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(FAILED, row(src, dst, FAILED, reason, **facts))


class _Expand(beam.DoFn):
    """An --input -> its (input, output) pairs; an input that names no image is a failed row."""

    def __init__(self, output: str, fmt: str):
        self._output, self._fmt = output, fmt

    def process(self, item: str):
        try:
            pairs, left_out = files.expand_input(item, self._output, self._fmt)
        except Exception as e:  # pylint: disable=broad-except  (a listing that fails: one row)
            yield _failed(item, "", f"cannot list it ({photos.failure_reason(e)})")
            return
        if not pairs:
            yield _failed(item, "", "no image files found" + (
                f" ({left_out} below --output, which is never read as input)" if left_out else ""))
        yield from pairs


def _one_input_each(grouped: tuple[str, list[str]]):
    """(output, its inputs) -> the pair if there is one input; else every input fails, naming
    the others (no input silently wins, whichever worker sees it first)."""
    dst, srcs = grouped
    srcs = sorted(set(srcs))
    if len(srcs) == 1:
        yield srcs[0], dst
        return
    for src in srcs:
        yield _failed(src, dst, photos.shared_output_reason(dst, [s for s in srcs if s != src]))


def _by_output(pair: tuple[str, str]) -> tuple[str, str]:
    return pair[1], pair[0]


def _by_input_file(pair: tuple[str, str]) -> tuple[str, str]:
    return files.file_key(pair[0]) or "path:" + pair[0], pair[0]


def _by_existing_output_file(pair: tuple[str, str]):
    """(file key, pair) for an output that exists already; the pair, tagged new, otherwise."""
    key = files.file_key(pair[1])
    yield (key, pair) if key else beam.pvalue.TaggedOutput(_NEW, pair)


def _not_an_input(grouped: tuple[str, dict]):
    """Existing outputs that resolve to an input file are refused (--overwrite or not)."""
    _, found = grouped
    for src, dst in found["outputs"]:
        yield (_failed(src, dst, photos.output_is_input_reason(dst)) if found["inputs"]
               else (src, dst))


class _CheckExisting(beam.DoFn):
    """An existing output: kept (a skipped row) if its provenance record is the one this job
    writes; reported (a failed row) if another model or setting made it; with --overwrite,
    passed on to be rewritten."""

    def __init__(self, overwrite: bool, expected: dict):
        self._overwrite, self._expected = overwrite, expected

    def process(self, pair: tuple[str, str]):
        src, dst = pair
        if self._overwrite:
            yield pair
            return
        try:
            found = images.read_provenance(files.NamedBytes(files.read_bytes(dst), dst))
            mismatch = photos.provenance_mismatch(found, self._expected)
        except Exception as e:  # pylint: disable=broad-except  (a damaged output is reported)
            mismatch = f"unreadable ({photos.failure_reason(e)})"
        if mismatch is None:
            yield beam.pvalue.TaggedOutput(SKIPPED, row(src, dst, SKIPPED, "output exists, made "
                                                        "by the same model and settings",
                                                        model=self._expected["model"]))
        else:
            yield _failed(src, dst, f"its output {dst} exists, {mismatch}; not replaced (use "
                          "--overwrite to replace it)")


def checked_pairs(p: beam.Pipeline, job: Job, expected: dict):
    """The (input, output) pairs to colourise, and the PCollections of rows of the others.

    Those are: inputs that name no image, inputs that share an output path (all of them fail;
    grouped by output path, so it holds across workers), outputs that are input files (grouped
    by file identity with all inputs), existing outputs (skipped if `expected` is their
    provenance record, else failed; unless job.overwrite).
    """
    expanded = (p | "Inputs" >> beam.Create(sorted(set(job.inputs)))
                | "Expand" >> beam.ParDo(_Expand(job.output, job.fmt)).with_outputs(
                    FAILED, main="pairs"))
    unique = (expanded.pairs | "ByOutput" >> beam.Map(_by_output)
              | "GroupByOutput" >> beam.GroupByKey()
              | "OneInputEach" >> beam.FlatMap(_one_input_each).with_outputs(FAILED, main="pairs"))
    outputs = (unique.pairs | "KeyExisting" >> beam.FlatMap(_by_existing_output_file)
               .with_outputs(_NEW, main="existing"))
    inputs = expanded.pairs | "KeyInputs" >> beam.Map(_by_input_file)
    not_inputs = ({"inputs": inputs, "outputs": outputs.existing} | "ByFile" >> beam.CoGroupByKey()
                  | "NotAnInput" >> beam.FlatMap(_not_an_input).with_outputs(FAILED, main="pairs"))
    existing = (not_inputs.pairs
                | "CheckExisting" >> beam.ParDo(_CheckExisting(job.overwrite, expected))
                .with_outputs(FAILED, SKIPPED, main="pairs"))
    todo = (outputs[_NEW], existing.pairs) | "ToColorize" >> beam.Flatten()
    rows = [expanded[FAILED], unique[FAILED], not_inputs[FAILED], existing[FAILED],
            existing[SKIPPED]]
    return todo, rows


class Decode(beam.DoFn):
    """(input, output) -> Decoded, or a failed row with the colourise CLI's one-line reason."""

    def __init__(self, max_pixels: int):
        self._max_pixels = max_pixels

    def process(self, pair: tuple[str, str]):
        src, dst = pair
        start = time.perf_counter()
        try:
            content = files.read_bytes(src)
        except Exception as e:  # pylint: disable=broad-except  (missing, a folder, no permission)
            yield _failed(src, dst, images.unreadable_reason(e))
            return
        try:
            photo = images.read_photo(files.NamedBytes(content, src), self._max_pixels)
        except Exception as e:  # pylint: disable=broad-except  (one bad file never fails the job)
            yield _failed(src, dst, photos.failure_reason(e), nbytes=len(content))
            return
        yield Decoded(src, dst, photo, len(content), 1000 * (time.perf_counter() - start))


class Write(beam.DoFn):
    """A PredictionResult -> its output file, written atomically, and its manifest row."""

    def __init__(self, fmt: str):
        self._fmt = fmt

    def process(self, result: PredictionResult):
        item, rendered = result.example, result.inference
        height, width = item.photo.rgb.shape[:2]
        facts = {"size": [width, height], "nbytes": item.nbytes}
        if isinstance(rendered, str):
            yield row(item.src, item.dst, FAILED, rendered, **facts)
            return
        start = time.perf_counter()
        try:
            files.write_atomic(item.dst, photos.encode_output(item.photo, rendered.rgb_u8,
                                                              rendered.record, self._fmt))
        except Exception as e:  # pylint: disable=broad-except  (an unwritable output fails alone)
            yield row(item.src, item.dst, FAILED, photos.failure_reason(e), **facts)
            return
        ms = item.ms + rendered.ms + 1000 * (time.perf_counter() - start)
        yield row(item.src, item.dst, photos.OK, **facts, ms=ms, model=rendered.record["model"])


class _Progress:
    """One job's rows seen by this process, and when it last logged them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(STATUSES, 0)
        self.start = self.last = time.monotonic()


_PROGRESS: dict[str, _Progress] = {}  # per job id: the Accounts of one process add up
_PROGRESS_LOCK = threading.Lock()


class Account(beam.DoFn):
    """Counts every row (Beam counters ok, skipped, failed; pixels written), logs each failure in
    one line, and a progress line per worker process every `every_s` seconds."""

    def __init__(self, job_id: str, every_s: float):
        self._job_id, self._every_s = job_id, every_s

    def setup(self):
        self._counters = {s: Metrics.counter(NAMESPACE, s) for s in STATUSES}
        self._pixels = Metrics.counter(NAMESPACE, "pixels")
        with _PROGRESS_LOCK:
            self._progress = _PROGRESS.setdefault(self._job_id, _Progress())

    def process(self, entry: dict):
        status = entry["status"]
        self._counters[status].inc()
        if status == photos.OK:
            self._pixels.inc(entry["size"][0] * entry["size"][1])
        if status == FAILED:
            logging.error("%s: %s; skipped", entry["input"], entry["reason"])
        progress = self._progress
        with progress.lock:
            progress.counts[status] += 1
            now = time.monotonic()
            if now - progress.last >= self._every_s:
                progress.last = now
                done = sum(progress.counts.values())
                logging.info("batch progress (this worker): %d inputs done (%s), %.1f inputs/s",
                             done, ", ".join(f"{n} {s}" for s, n in progress.counts.items()),
                             done / (now - progress.start))
        yield entry
