"""Crash-safe file writes (every output is written to a temporary name and renamed into place,
so a reader, or a run killed half-way, never sees a half-written file) and the cache directory
that data sources, scans and the TF.js converter share."""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, data: bytes | str) -> str:
    """Writes `data` to `path` atomically (same-directory temp file, fsync, rename). Returns path."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def cache_root(explicit: str = "") -> str:
    """The cache directory: `explicit` (--cache_dir), else $COLORGAN_CACHE, else ~/.cache/colorgan."""
    return (explicit or os.environ.get("COLORGAN_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "colorgan"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
