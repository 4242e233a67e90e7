"""A batch job as plain values (they travel to the workers), its manifest rows and its summary."""

from __future__ import annotations

import dataclasses
from typing import Any

from apache_beam.io.filesystems import FileSystems

from colorgan import photos
from colorgan.config import DataConfig

NAMESPACE = "colorgan"  # Beam metrics: the counters ok, skipped, failed and pixels
MANIFEST, DEAD_LETTERS = "manifest.jsonl", "dead_letters.jsonl"  # in the job's output folder


@dataclasses.dataclass(frozen=True)
class Job:
    """What `python -m colorgan.batch` was asked to do. `settings`: the inference settings given on
    the command line, as (name, value) pairs (cli.inference_settings); the other fields mean what
    the flags of the same names mean (`fmt` is --format)."""
    inputs: tuple[str, ...]
    output: str
    model: str = "default"
    checkpoint_step: int = 0
    settings: tuple[tuple[str, Any], ...] = ()
    render_size: int = 0
    fmt: str = "png"
    overwrite: bool = False
    max_pixels: int = DataConfig.max_pixels
    batch_images: int = 8
    batch_megapixels: float = 24.0
    progress_every_s: float = 5.0

    def __post_init__(self):
        if not self.inputs or not self.output:
            raise ValueError(f"a job needs inputs and an output, got inputs={self.inputs!r}, "
                             f"output={self.output!r}")
        if self.fmt not in ("png", "jpg") or self.batch_images < 1 or self.batch_megapixels <= 0:
            raise ValueError(f"fmt={self.fmt!r} (png or jpg), batch_images={self.batch_images} "
                             f"(>= 1), batch_megapixels={self.batch_megapixels} (> 0)")


def row(src: str, dst: str, status: str, reason: str = "", *, size: list[int] | None = None,
        nbytes: int | None = None, ms: float | None = None, model: str = "") -> dict:
    """One manifest row (one JSON line per input).

    Keys: input, output (the paths); status (photos.OK, SKIPPED or FAILED); reason (one line,
    empty when ok); size ([width, height] of the photo, px); bytes (of the input file); ms (read
    and decode + its share of the model call + encode and write); model (the identity of the
    model that made the output, `Colorizer.identity`). Unknown values are null.
    """
    return {"input": src, "output": dst, "status": status, "reason": reason, "size": size,
            "bytes": nbytes, "ms": None if ms is None else round(ms, 1), "model": model}


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a job did, from its Beam counters (or its manifest where a runner keeps none)."""
    ok: int
    skipped: int
    failed: int
    pixels: int
    seconds: float
    output: str

    @property
    def total(self) -> int:
        return self.ok + self.skipped + self.failed

    def line(self) -> str:
        """The one-line summary the command ends with."""
        failed = f"{self.failed} failed" + (
            f" (reasons in {FileSystems.join(self.output, DEAD_LETTERS)})" if self.failed else "")
        return (f"{self.total} inputs in {self.seconds:.1f} s: {self.ok} written, {self.skipped} "
                f"skipped (already made by the same model and settings), {failed}; manifest "
                f"{FileSystems.join(self.output, MANIFEST)}")


STATUSES = (photos.OK, photos.SKIPPED, photos.FAILED)
