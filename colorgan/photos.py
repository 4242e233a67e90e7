"""Photos in, colourised files out: the rules the colourise CLI and the batch pipeline share.

Which output each input gets (a folder keeps its structure below the output, every output is
`<stem>.<format>`), which inputs must not be written (two inputs for one output; an output path
that resolves to an input file), whether an existing output was made by the same model and
settings, and colourising one photo into the encoded bytes of its output (provenance record and
the input's EXIF included). Plain paths, no flags and no Beam: `colorgan.pipeline` applies the
same rules through Beam's file systems.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Callable, Iterable

import numpy as np

from absl import logging

from colorgan import color, fileio, images, inference, sources
from colorgan.errors import UserError

# Characters that make an --input a glob pattern (Python's glob and Beam's FileSystems.match).
GLOB_CHARS = frozenset("*?[")
# Manifest statuses: written now, skipped (an output by the same model and settings exists),
# failed (unreadable input, refused output, or an output made by another model or setting).
OK, SKIPPED, FAILED = "ok", "skipped", "failed"


def with_format(path: str, fmt: str) -> str:
    """`path` with its extension replaced by the output format's (`a/b.jpg`, png -> `a/b.png`)."""
    return os.path.splitext(path)[0] + "." + fmt


def is_listed_image(relpath: str) -> bool:
    """Whether a folder walk takes the file at `relpath` (relative to the folder, '/'-separated
    or os.sep): an image extension and no hidden part, as sources.list_images lists folders."""
    parts = relpath.replace(os.sep, "/").split("/")
    return parts[-1].lower().endswith(sources.IMAGE_EXTENSIONS) and not any(
        p.startswith(".") for p in parts)


def expand_inputs(inputs: list[str], output_dir: str, fmt: str,
                  extensions: tuple[str, ...] = sources.IMAGE_EXTENSIONS) -> list[tuple[str, str]]:
    """(input file, output file) pairs for files, folders (recursive, structure kept; the files
    with one of `extensions`) and globs."""
    pairs = []
    for item in inputs:
        if os.path.isdir(item):
            pairs += [(f, os.path.join(output_dir, os.path.relpath(f, item)))
                      for f in fileio.list_files(item, extensions)]
        elif os.path.exists(item):
            pairs.append((item, os.path.join(output_dir, os.path.basename(item))))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                pairs.append((item, os.path.join(output_dir, os.path.basename(item))))
            pairs += [(f, os.path.join(output_dir, os.path.basename(f))) for f in matches
                      if os.path.isfile(f)]
    return [(src, with_format(dst, fmt)) for src, dst in pairs]


def duplicates(pairs: list[tuple[str, str]]) -> set[str]:
    """Inputs whose output path an earlier input already takes (a/x.jpg and b/x.jpg, x.jpg and
    x.png): the colourise CLI skips them, never silently overwriting the first."""
    seen, dup = set(), set()
    for src, dst in pairs:
        if dst in seen:
            dup.add(src)
        seen.add(dst)
    return dup


def file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file `path` resolves to (symlinks followed), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def output_is_input_reason(out: str) -> str:
    """The one-line reason for refusing an output path that resolves to an input file."""
    return (f"its output {out} is an input file; refusing to overwrite an input (choose another "
            "--output)")


def shared_output_reason(dst: str, others: list[str]) -> str:
    """The one-line reason for an input whose output path other inputs map to as well."""
    return f"its output {dst} is also the output of {', '.join(sorted(others))}"


def refusal(src: str, dst: str, outputs: list[str], overwrite: bool, inputs: set,
            duplicate_inputs: set[str]) -> tuple[str, str] | None:
    """Why the CLI must not write `src` now: (FAILED, reason) or (SKIPPED, reason), or None.

    `inputs`: the file_id of every input; `duplicate_inputs`: from `duplicates`.
    """
    if src in duplicate_inputs:
        return FAILED, f"its output {dst} is taken by another input"
    for out in outputs:
        if file_id(out) is not None and file_id(out) in inputs:
            # Always, --overwrite or not: the output path is an input photo (same file, a
            # symlink or hard link to it, or the same name on a case-insensitive disk).
            return FAILED, output_is_input_reason(out)
    if not overwrite and any(os.path.exists(out) for out in outputs):
        return SKIPPED, f"{dst} exists"
    return None


def failure_reason(error: Exception) -> str:
    """One line for an input that could not be colourised: a UserError's own message, else the
    exception's type and first line (never a traceback)."""
    if isinstance(error, UserError):
        return str(error)
    first = str(error).splitlines()[0] if str(error) else ""
    return f"cannot colourise ({type(error).__name__}: {first})"


def colorize_photo(model: inference.Colorizer, photo: images.Photo, render_size: int = 0,
                   points: list | None = None) -> np.ndarray:
    """The colourised photo: uint8 sRGB (H, W, 3), the input's own L at full resolution;
    `points`: user hints for a hint model (user_hints.Hint; none: automatic)."""
    return color.to_uint8(model.colorize_hints(photo.rgb[None], points or [], render_size)[0]
                          ).numpy()


def encode_output(photo: images.Photo, rgb_u8: np.ndarray, record: dict, fmt: str) -> bytes:
    """The bytes of an output file: `rgb_u8` (H, W, 3) with the photo's alpha (PNG) and EXIF,
    and the provenance `record` (Colorizer.provenance)."""
    return images.encode_image(rgb_u8, photo.alpha, fmt, record, photo.exif)


def colorized_bytes(model: inference.Colorizer, photo: images.Photo, render_size: int = 0,
                    fmt: str = "png") -> bytes:
    """Colourises one photo into the encoded bytes of its output, provenance included: exactly
    what `python -m colorgan.colorize` writes for it."""
    return encode_output(photo, colorize_photo(model, photo, render_size),
                         model.provenance(render_size), fmt)


def provenance_mismatch(found: dict | None, expected: dict) -> str | None:
    """None if an existing output's provenance record `found` names the same software, model and
    settings as `expected`; else a one-line description of the difference."""
    if found is None:
        return "without a colorgan provenance record"
    diffs = [f"{key} {found.get(key)!r} (this run: {expected[key]!r})"
             for key in sorted(expected) if found.get(key) != expected[key]]
    return "made with " + ", ".join(diffs) if diffs else None


@dataclasses.dataclass
class Outcome:
    """What a CLI run did: outputs written, inputs that failed, inputs skipped (output exists)."""
    written: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)


def process_pairs(pairs: list[tuple[str, str]], write_one: Callable[[str, str], None], *,
                  overwrite: bool, outputs_of: Callable[[str], list[str]] = lambda dst: [dst],
                  wrap: Callable[[Iterable], Iterable] = lambda pairs: pairs) -> Outcome:
    """The colourise and video CLIs' loop: `write_one(src, dst)` for every pair it may write
    (`refusal`), logging each failure in one line; one bad input never stops the rest.

    Args:
      outputs_of: every file `write_one` writes for `dst` (all are checked for refusals).
      wrap: wraps the pairs' iteration (a progress bar).
    """
    outcome = Outcome()
    dup = duplicates(pairs)
    input_ids = {file_id(src) for src, _ in pairs} - {None}
    for src, dst in wrap(pairs):
        refused = refusal(src, dst, outputs_of(dst), overwrite, input_ids, dup)
        if refused:
            kind, reason = refused
            if kind == FAILED:
                logging.error("%s: %s; skipped", src, reason)
            getattr(outcome, kind).append(src)
            continue
        try:
            write_one(src, dst)
            outcome.written.append(dst)
        except Exception as e:  # pylint: disable=broad-except  (one bad file must not stop a batch)
            logging.error("%s: %s; skipped", src, failure_reason(e))
            outcome.failed.append(src)
    return outcome
