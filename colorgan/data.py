"""Image sources, and the tf.data pipelines that turn them into `{l, ab}` examples.

Every source becomes a sorted list of image files: `samples` (the photos bundled in the package),
a folder (recursive), a tar archive (extracted once to a cache directory) or `tfds:NAME` (exported
once, as the encoded images TFDS stores, to the cache directory). The training pipeline shuffles
*file names* with a stateless per-epoch permutation and keys every augmentation on
(seed, global element index), so a run can resume at any step by skipping names, without saving
an iterator and without decoding anything twice.

Elements: `l` float32 (H, W, 1) and `ab` float32 (H, W, 2), both in [-1, 1] (see color.py);
evaluation elements add `path` (tf.string).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import zlib

from absl import logging
from PIL import Image
import tensorflow as tf

from colorgan import color
from colorgan.config import DataConfig
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

SAMPLES_DIR = os.path.join(os.path.dirname(__file__), "samples")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
TFDS_SPLITS = {"train": ("train",), "val": ("validation", "test"), "test": ("test",)}
# The chroma scan looks at a small copy of each image: mean chroma barely depends on size.
_SCAN_SIZE = 64
# The longest side any small working copy of an image may have, in multiples of its short side
# (the chroma scan here; the model's render size in inference): a 1x10000 strip stays bounded.
MAX_ASPECT = 8


class DataError(UserError, ValueError):
    """A data source that cannot be used as asked (missing, empty, unknown split)."""


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What a training source resolved to."""
    root: str
    files: tuple[str, ...]
    dropped_gray: int


def cache_dir(cfg: DataConfig) -> str:
    return (cfg.cache_dir or os.environ.get("COLORGAN_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "colorgan"))


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(root: str) -> list[str]:
    """All image files below `root` (recursive, sorted, hidden files skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in filenames
                  if _is_image(f) and not f.startswith(".")]
    return sorted(found)


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


def resolve_root(cfg: DataConfig, split: str) -> tuple[str, bool]:
    """The folder holding `split`'s images, and whether it is a split folder of its own.

    Returns (root, is_split_folder): when False the caller assigns files to splits by hash.
    """
    source = cfg.data
    if source.startswith("tfds:"):
        if split == "all":
            raise DataError("split 'all' is not supported for TFDS sources; pick train, val or test")
        return _export_tfds(source[len("tfds:"):], split, cfg), True
    if source == "samples":
        root = SAMPLES_DIR
    elif os.path.isfile(source) and source.lower().endswith(ARCHIVE_EXTENSIONS):
        root = _extract_archive(source, cfg)
    elif os.path.isdir(source):
        root = source
    else:
        raise DataError(f"data source {source!r} is not 'samples', 'tfds:NAME', a folder or a "
                        f".tar/.tar.gz archive")
    has_splits = any(os.path.isdir(os.path.join(root, d)) for d in sum(SPLIT_FOLDERS.values(), ()))
    if split == "all":
        return root, True  # every image below the root, whatever its folder
    if not has_splits:
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


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF bytes -> float32 RGB (H, W, 3) in [0, 1].

    Grayscale is expanded to 3 channels, alpha is dropped, 16-bit PNGs keep their precision.
    JPEGs use the accurate integer IDCT: `tf.io.decode_image`'s default fast IDCT is off by up to
    16/255 from libjpeg's reference at high quality, and these pixels are the training targets.
    """
    rgb = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.image.convert_image_dtype(
            tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"), tf.float32),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32))
    return tf.ensure_shape(rgb, [None, None, 3])


def mean_chroma(rgb: tf.Tensor) -> tf.Tensor:
    """Mean of sqrt(a*^2 + b*^2) over an RGB image [..., H, W, 3]: about 0 for gray photos."""
    ab = color.rgb_to_lab(rgb)[..., 1:]
    return tf.reduce_mean(tf.norm(ab, axis=-1), axis=[-2, -1])


def _scan_view(rgb: tf.Tensor, size: int) -> tf.Tensor:
    """A small copy for the chroma scan: short side `size`, long side at most MAX_ASPECT * size (a
    1x10000 strip must not become 64x640000)."""
    shape = tf.cast(tf.shape(rgb)[:2], tf.float32)
    scale = tf.minimum(size / tf.reduce_min(shape), MAX_ASPECT * size / tf.reduce_max(shape))
    new = tf.maximum(tf.cast(tf.math.ceil(shape * scale), tf.int32), 1)
    return tf.image.resize(rgb, new, antialias=True)


@contextlib.contextmanager
def pillow_unlimited():
    """Turns off Pillow's own decompression-bomb limit (~179 MP), which would otherwise override a
    larger --max_pixels; callers check sizes themselves (check_header) before decoding."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def check_header(path: str, max_pixels: int) -> str | None:
    """Cheap checks before any decoding: the file opens as an image and is not a decompression bomb.

    Reads only the header (Pillow's lazy open; this is file validation, outside the tf.data
    path). Returns None if fine, else a one-line reason.
    """
    try:
        with pillow_unlimited(), Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises all three for bad files
        return f"not a readable image ({type(e).__name__}: {e})"
    if width * height > max_pixels:
        return (f"refused: {width}x{height} = {width * height / 1e6:.0f} MP exceeds "
                f"--max_pixels={max_pixels / 1e6:.0f} MP (a decompression bomb?)")
    return None


@dataclasses.dataclass(frozen=True)
class Scan:
    """Per-file facts from one pass over a file list: chroma of the good ones, reasons for the rest."""
    chroma: dict[str, float]
    bad: dict[str, str]

    def report(self, what: str) -> None:
        """Logs one line per bad file (the first 20) and the count."""
        for path, reason in list(self.bad.items())[:20]:
            logging.warning("%s: %s; skipped", path, reason)
        if self.bad:
            logging.warning("%s: skipped %d unreadable or refused files", what, len(self.bad))


def _decode_failure(path: str) -> str:
    """Why TF cannot decode `path` (called only for files that failed in the batch scan)."""
    try:
        decode_image(tf.io.read_file(path))
    except (tf.errors.OpError, ValueError) as e:
        return f"cannot decode ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    return "cannot decode"


def scan_files(files: list[str], cfg: DataConfig) -> Scan:
    """Checks every file (header, then a real decode) and measures its mean chroma, once.

    Cached in the cache directory by the file list's identity (paths, sizes, mtimes), so a
    resumed run or a second evaluation does not decode everything again.
    """
    ident = hashlib.sha1(f"max_pixels={cfg.max_pixels}\n".encode())
    for f in files:
        st = os.stat(f)
        ident.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    cache = os.path.join(cache_dir(cfg), "scan", ident.hexdigest() + ".json")
    if os.path.isfile(cache):
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        return Scan(chroma=cached["chroma"], bad=cached["bad"])
    bad = {f: reason for f in files if (reason := check_header(f, cfg.max_pixels))}
    candidates = [f for f in files if f not in bad]
    ds = tf.data.Dataset.from_tensor_slices(candidates or [""]).take(len(candidates)).map(
        lambda p: (p, mean_chroma(_scan_view(decode_image(tf.io.read_file(p)), _SCAN_SIZE))),
        num_parallel_calls=tf.data.AUTOTUNE)
    # ignore_errors drops the elements whose decode fails; their paths are missing from the result.
    chroma = {p.decode(): round(float(c), 3) for p, c in ds.ignore_errors().as_numpy_iterator()}
    bad.update({f: _decode_failure(f) for f in candidates if f not in chroma})
    write_atomic(cache, json.dumps({"chroma": chroma, "bad": bad}))
    return Scan(chroma=chroma, bad=bad)


def usable_files(cfg: DataConfig, split: str) -> tuple[str, list[str], Scan]:
    """(root, files that decode, scan) of `split`; bad files are logged and skipped."""
    root, files = list_split(cfg, split)
    scan = scan_files(files, cfg)
    scan.report(f"{cfg.data} ({split})")
    good = [f for f in files if f in scan.chroma]
    if not good:
        raise DataError(f"none of the {len(files)} files of {cfg.data} ({split}) can be read")
    return root, good, scan


def training_files(cfg: DataConfig) -> SourceInfo:
    """Readable files of the training split, minus grayscale photos (chroma < cfg.min_chroma)."""
    root, files, scan = usable_files(cfg, cfg.split)
    kept = [f for f in files if scan.chroma[f] >= cfg.min_chroma]
    dropped = len(files) - len(kept)
    logging.info("data: %d training images from %s (%s split); dropped %d grayscale images "
                 "(mean chroma < %.1f)", len(kept), cfg.data, cfg.split, dropped, cfg.min_chroma)
    if not kept:
        raise DataError(f"all {len(files)} images in {cfg.data} are grayscale; nothing to learn from")
    return SourceInfo(root=root, files=tuple(kept), dropped_gray=dropped)


def random_crop_flip(rgb: tf.Tensor, size: int, crop_min: float, flip: bool,
                     seed: tf.Tensor) -> tf.Tensor:
    """Training augmentation, stateless: a random square crop of crop_min..1 of the short side,
    resized to `size`, then a random horizontal flip. Same `seed` ([2] int) -> same result."""
    crop_seed, y_seed, x_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=4))
    hw = tf.shape(rgb)[:2]
    short = tf.cast(tf.reduce_min(hw), tf.float32)
    frac = tf.random.stateless_uniform([], crop_seed, minval=crop_min, maxval=1.0)
    side = tf.maximum(tf.cast(tf.round(short * frac), tf.int32), 1)
    y = tf.random.stateless_uniform([], y_seed, 0, hw[0] - side + 1, dtype=tf.int32)
    x = tf.random.stateless_uniform([], x_seed, 0, hw[1] - side + 1, dtype=tf.int32)
    crop = rgb[y:y + side, x:x + side]
    out = tf.image.resize(crop, [size, size], antialias=True)
    if flip:
        out = tf.image.stateless_random_flip_left_right(out, flip_seed)
    return tf.clip_by_value(out, 0.0, 1.0)


def center_crop(rgb: tf.Tensor, size: int) -> tf.Tensor:
    """Evaluation view: the central square of the short side, resized to `size`."""
    hw = tf.shape(rgb)[:2]
    side = tf.reduce_min(hw)
    y, x = (hw[0] - side) // 2, (hw[1] - side) // 2
    out = tf.image.resize(rgb[y:y + side, x:x + side], [size, size], antialias=True)
    return tf.clip_by_value(out, 0.0, 1.0)


def to_example(rgb: tf.Tensor) -> dict[str, tf.Tensor]:
    """RGB (H, W, 3) in [0, 1] -> {'l': (H, W, 1), 'ab': (H, W, 2)} in model space."""
    l, ab = color.rgb_to_model(rgb)
    return {"l": l, "ab": ab}


def _epoch_files(files: tf.Tensor, seed: int, epoch: tf.Tensor) -> tf.data.Dataset:
    n = tf.shape(files, out_type=tf.int64)[0]
    order = tf.random.experimental.stateless_shuffle(
        tf.range(n), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
    return tf.data.Dataset.from_tensor_slices((epoch * n + tf.range(n), tf.gather(files, order)))


def make_train_dataset(cfg: DataConfig, files: tuple[str, ...] | list[str], seed: int,
                       start_step: int = 0, *, shard: tuple[int, int] = (0, 1),
                       batch_size: int | None = None) -> tf.data.Dataset:
    """Infinite batches of augmented training examples, starting at `start_step`.

    Global batch k of a run is a pure function of (files, seed, k): the file order is a stateless
    permutation per epoch and augmentation is keyed on (seed, element index). Resuming at step k
    skips k * batch_size *names*; nothing is decoded twice.

    Distributed input (`shard` = (index, count) of this input pipeline, `batch_size` = the
    per-replica batch): each pipeline decodes only every count-th example from `index`, so
    the examples of global batch k, over all replicas, are the same ones whatever the strategy.
    """
    file_t = tf.constant(list(files))
    n = len(files)
    start_epoch, offset = divmod(start_step * cfg.batch_size, n)

    def load(index, path):
        rgb = decode_image(tf.io.read_file(path))
        rgb = random_crop_flip(rgb, cfg.image_size, cfg.crop_min, cfg.flip,
                               tf.stack([tf.constant(seed, tf.int64), index]))
        return to_example(rgb)

    ds = tf.data.Dataset.range(start_epoch, 2 ** 62).flat_map(
        lambda epoch: _epoch_files(file_t, seed, epoch))
    ds = ds.skip(offset).shard(shard[1], shard[0])
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # drop_remainder: static batch shapes, so the train step traces once.
    return ds.batch(batch_size or cfg.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(cfg: DataConfig, split: str = "val",
                      limit: int | None = None) -> tf.data.Dataset:
    """Center-cropped examples of `split`'s readable files in file order, batched, with `path`."""
    _, files, _ = usable_files(cfg, split)
    if limit is not None:
        files = files[:limit]

    def load(path):
        example = to_example(center_crop(decode_image(tf.io.read_file(path)), cfg.image_size))
        example["path"] = path
        return example

    ds = tf.data.Dataset.from_tensor_slices(files).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)
