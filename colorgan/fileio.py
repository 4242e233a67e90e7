"""Crash-safe file writes (every output is written to a temporary name and renamed into place,
so a reader, or a run killed half-way, never sees a half-written file) and the cache directory
that data sources, scans and the TF.js converter share."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


def write_atomic(path: str, data: bytes | str) -> str:
    """Writes `data` to `path` atomically (same-directory temp file, fsync, rename). Returns path."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with atomic_output(path) as tmp, open(tmp, mode) as f:
        f.write(data)
    return path


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path` for a writer that needs a file name (a video muxer
    streaming for hours); on success it is fsynced and renamed to `path`, on any failure or
    interrupt it is deleted, so `path` is either complete or untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def list_files(root: str, extensions: tuple[str, ...]) -> list[str]:
    """All files below `root` whose names end in one of `extensions` (any case; recursive,
    sorted, hidden files and folders skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in filenames
                  if f.lower().endswith(extensions) and not f.startswith(".")]
    return sorted(found)


def cache_root(explicit: str = "") -> str:
    """The cache directory: `explicit` (--cache_dir), else $COLORGAN_CACHE, else ~/.cache/colorgan."""
    return (explicit or os.environ.get("COLORGAN_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "colorgan"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
