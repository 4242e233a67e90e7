"""Files through Beam's FileSystems: which inputs an --input names and their output paths (the
colourise CLI's rules, colorgan.photos), file identities, atomic writes and local model copies.

Local paths and URIs (gs://, s3://, hdfs:// where Beam's extra for them is installed) take the
same calls; only file identity differs (inodes locally, the URI elsewhere).
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from colorgan import photos
from colorgan.errors import UserError

RAW = CompressionTypes.UNCOMPRESSED  # never guess a compression from a file name


def is_remote(path: str) -> bool:
    """Whether `path` is a URI (scheme://...) rather than a local path."""
    return FileSystems.get_scheme(path) is not None


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=RAW) as f:
        return f.read()


class NamedBytes(io.BytesIO):
    """A file's bytes that Pillow's error messages name by the file's path, as for a file name
    (so a bad input gets the colourise CLI's very reason)."""

    def __init__(self, content: bytes, label: str):
        super().__init__(content)
        self._label = label

    def __repr__(self) -> str:
        return repr(self._label)


def file_key(path: str) -> str | None:
    """What `path` resolves to, or None if nothing is there: locally the (device, inode) of the
    file (symlinks and hard links resolve to their target; a case-insensitive disk's other
    spellings too); for a URI the URI itself."""
    if is_remote(path):
        return path if FileSystems.exists(path) else None
    identity = photos.file_id(path)
    return None if identity is None else f"inode:{identity[0]}:{identity[1]}"


def is_below(path: str, folder: str) -> bool:
    """Whether `path` lies inside `folder` (local paths compared after resolving symlinks)."""
    if is_remote(path) or is_remote(folder):
        return path.startswith(folder.rstrip("/") + "/")
    return os.path.realpath(path).startswith(os.path.realpath(folder).rstrip(os.sep) + os.sep)


def _kind(item: str) -> str:
    """'folder', 'file' or 'glob', decided in the colourise CLI's order for local paths (an
    existing name with glob characters is taken as itself); a URI with glob characters is a glob
    (anything else would list the whole bucket), else a folder if objects lie below it."""
    globbed = bool(photos.GLOB_CHARS & set(item))
    if not is_remote(item):
        if os.path.isdir(item):
            return "folder"
        return "glob" if globbed and not os.path.exists(item) else "file"
    if globbed:
        return "glob"
    below = item.endswith("/") or bool(_match(item.rstrip("/") + "/**", limit=1))
    return "folder" if below else "file"


def _match(pattern: str, limit: int | None = None) -> list[str]:
    """Paths of the files `pattern` matches (Beam's glob: `*` within a folder, `**` across)."""
    return [m.path for m in FileSystems.match([pattern], [limit])[0].metadata_list]


def expand_input(item: str, output: str, fmt: str) -> tuple[list[tuple[str, str]], int]:
    """The (input file, output file) pairs of one --input, and how many files it left out for
    being below `output` (a re-run never reads its own outputs back as inputs).

    As the colourise CLI (photos.expand_inputs): a folder is searched recursively for images
    (hidden files skipped) and keeps its structure below `output`; a glob's files map to
    `output/<name>`; anything else is one file, which may not exist (its read then fails with
    the CLI's reason). Every output is `<stem>.<fmt>`.
    """
    kind = _kind(item)
    if kind == "glob":
        found = [(f, FileSystems.split(f)[1]) for f in _match(item)]
        found = [(f, name) for f, name in found if not name.startswith(".")]
    elif kind == "folder":
        root = item.rstrip("/") or "/"
        found = [(f, f[len(root):].lstrip("/")) for f in _match(FileSystems.join(root, "**"))]
        found = [(f, rel) for f, rel in found if photos.is_listed_image(rel)]
    else:
        return [(item, photos.with_format(FileSystems.join(output, FileSystems.split(item)[1]),
                                          fmt))], 0
    kept = [(f, rel) for f, rel in found if not is_below(f, output)]
    pairs = sorted((f, photos.with_format(FileSystems.join(output, rel), fmt)) for f, rel in kept)
    return pairs, len(found) - len(kept)


def write_atomic(path: str, content: bytes) -> None:
    """Writes `content` to `path` through FileSystems: a hidden temporary name in the same folder,
    then a rename, so no reader and no re-run ever sees a half-written output."""
    folder, name = FileSystems.split(path)
    tmp = FileSystems.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with FileSystems.create(tmp, compression_type=RAW) as f:
            f.write(content)
        FileSystems.rename([tmp], [path])
    except BaseException:
        if FileSystems.exists(tmp):
            FileSystems.delete([tmp])
        raise


def local_model(spec: str) -> str:
    """`spec` itself for 'default' and local paths; for a URI, a local copy of its files (Dataflow
    workers cannot see the submitting machine's disk)."""
    if spec == "default" or not is_remote(spec):
        return spec
    return copy_to_local(spec, tempfile.mkdtemp(prefix="colorgan-model-"))


def copy_to_local(source: str, local_dir: str) -> str:
    """Copies the folder or file at `source` (a path or URI; a `.tflite` brings its `.json`
    sidecar) into `local_dir` through FileSystems. Returns the local path of the copy.

    Raises:
      UserError: nothing at `source`.
    """
    base = source.rstrip("/")
    name = FileSystems.split(base)[1]
    files = _match(FileSystems.join(base, "**"))
    if files:
        copies = [(f, os.path.join(local_dir, name, f[len(base):].lstrip("/"))) for f in files]
    else:
        copies = [(f, os.path.join(local_dir, FileSystems.split(f)[1]))
                  for f in (base, base + ".json") if FileSystems.exists(f)]
    if not copies:
        raise UserError(f"model {source} does not exist")
    for src, dst in copies:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(read_bytes(src))
    return os.path.join(local_dir, name)
