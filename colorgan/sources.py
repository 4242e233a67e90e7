"""Where a data source's images are: `samples` (the photos bundled in the package), a folder
(recursive), a tar archive (extracted once to a cache directory) or `tfds:NAME` (exported once,
as the encoded images TFDS stores, to the cache directory), and which of them form each split
(split folders, or a stable hash of the path). colorgan.data builds the pipelines on top.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tarfile
import zlib

from absl import logging

from colorgan import fileio
from colorgan.config import DataConfig
from colorgan.errors import UserError
from colorgan.fileio import cache_root

SAMPLES_DIR = os.path.join(os.path.dirname(__file__), "samples")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
TFDS_SPLITS = {"train": ("train",), "val": ("validation", "test"), "test": ("test",)}


class DataError(UserError, ValueError):
    """A data source that cannot be used as asked (missing, empty, unknown split)."""


def single_sources(cfg: DataConfig) -> list[DataConfig]:
    """One DataConfig per source of a (possibly comma-separated) --data."""
    if len(cfg.sources) == 1:
        return [cfg]
    return [dataclasses.replace(cfg, data=source, data_weights="") for source in cfg.sources]


def cache_dir(cfg: DataConfig) -> str:
    """Where archives are extracted and scans cached (fileio.cache_root of --cache_dir)."""
    return cache_root(cfg.cache_dir)


def list_images(root: str) -> list[str]:
    """All image files below `root` (recursive, sorted, hidden files skipped)."""
    return fileio.list_files(root, IMAGE_EXTENSIONS)


def _single_child_root(root: str) -> str:
    """Descends through wrapper folders (`archive/imagenette/train/...` -> `archive/imagenette`)."""
    while True:
        entries = [e for e in os.listdir(root) if not e.startswith(".")]
        if len(entries) == 1 and os.path.isdir(os.path.join(root, entries[0])):
            root = os.path.join(root, entries[0])
        else:
            return root


def _finish_atomically(tmp: str, final: str) -> str:
    """Renames a fully written temporary directory into place (a concurrent winner is kept)."""
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(final):
            raise
    return final


def _extract_archive(path: str, cfg: DataConfig) -> str:
    """Extracts a tar archive once into the cache; returns the extracted folder."""
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    stem = os.path.basename(path).split(".")[0]
    final = os.path.join(cache_dir(cfg), "archives", f"{stem}-{key[:10]}")
    if not os.path.isdir(final):
        logging.info("extracting %s to %s (once)", path, final)
        tmp = f"{final}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        _finish_atomically(tmp, final)
    return _single_child_root(final)


def _export_tfds(name: str, split: str, cfg: DataConfig) -> str:
    """Writes a prepared TFDS dataset's encoded images to the cache once (no download)."""
    import tensorflow_datasets as tfds  # Imported lazily: slow, and only this source needs it.

    final = os.path.join(cache_dir(cfg), "tfds", name.replace("/", "_"), split)
    if os.path.isdir(final):
        return final
    kwargs = dict(download=False, decoders={"image": tfds.decode.SkipDecoding()})
    if cfg.tfds_data_dir:
        kwargs["data_dir"] = cfg.tfds_data_dir
    errors = []
    for tfds_split in TFDS_SPLITS[split]:
        try:
            ds = tfds.load(name, split=tfds_split, **kwargs)
            break
        except Exception as e:  # TFDS raises several types for a missing dataset or split.
            errors.append(f"{tfds_split}: {e}")
    else:
        raise DataError(f"TFDS dataset {name!r} ({split}) is not available locally "
                        f"(nothing is downloaded): {'; '.join(errors)}")
    logging.info("exporting tfds:%s/%s images to %s (once)", name, split, final)
    tmp = f"{final}.tmp-{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    for i, example in enumerate(ds.as_numpy_iterator()):
        data = example["image"]
        ext = ".png" if data[:4] == b"\x89PNG" else ".jpg"
        with open(os.path.join(tmp, f"{i:07d}{ext}"), "wb") as f:
            f.write(data)
    return _finish_atomically(tmp, final)


def _source_root(cfg: DataConfig) -> str:
    """The folder of a non-TFDS source (an archive is extracted first)."""
    source = cfg.data
    if source == "samples":
        return SAMPLES_DIR
    if os.path.isfile(source) and source.lower().endswith(ARCHIVE_EXTENSIONS):
        return _extract_archive(source, cfg)
    if os.path.isdir(source):
        return source
    raise DataError(f"data source {source!r} is not 'samples', 'tfds:NAME', a folder or a "
                    f".tar/.tar.gz archive")


def _has_split_folders(root: str) -> bool:
    return any(os.path.isdir(os.path.join(root, d)) for d in sum(SPLIT_FOLDERS.values(), ()))


def has_split_folders(cfg: DataConfig) -> bool:
    """Whether every source has its own train/val/test folders (TFDS datasets have splits)."""
    return all(one.data.startswith("tfds:") or _has_split_folders(_source_root(one))
               for one in single_sources(cfg))


def resolve_root(cfg: DataConfig, split: str) -> tuple[str, bool]:
    """The folder holding `split`'s images, and whether it is a split folder of its own.

    Returns (root, is_split_folder): when False the caller assigns files to splits by hash.
    """
    source = cfg.data
    if source.startswith("tfds:"):
        if split == "all":
            raise DataError("split 'all' is not supported for TFDS sources; pick train, val or test")
        return _export_tfds(source[len("tfds:"):], split, cfg), True
    root = _source_root(cfg)
    if split == "all":
        return root, True  # every image below the root, whatever its folder
    if not _has_split_folders(root):
        return root, False
    for folder in SPLIT_FOLDERS[split]:
        if os.path.isdir(os.path.join(root, folder)):
            return os.path.join(root, folder), True
    raise DataError(f"{source} has split folders but none for split {split!r} "
                    f"(looked for {', '.join(SPLIT_FOLDERS[split])})")


def in_heldout(relpath: str, val_fraction: float) -> bool:
    """Stable split assignment by path hash: the same file lands in the same split everywhere."""
    return zlib.crc32(relpath.encode("utf-8")) / 2.0 ** 32 < val_fraction


def list_split(cfg: DataConfig, split: str) -> tuple[str, list[str]]:
    """(root, sorted image files) of `split`; raises DataError if there are none."""
    root, is_split_folder = resolve_root(cfg, split)
    files = list_images(root)
    if not is_split_folder:
        heldout = split != "train"
        files = [f for f in files if in_heldout(os.path.relpath(f, root), cfg.val_fraction) == heldout]
    if not files:
        raise DataError(f"no images for split {split!r} in {cfg.data} (looked in {root}"
                        + ("" if is_split_folder else f", val_fraction={cfg.val_fraction}") + ")")
    return root, files
