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

import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import zlib

from absl import logging
import tensorflow as tf

from colorgan import bins, color, fileio, images
from colorgan.config import DataConfig
from colorgan.errors import UserError
from colorgan.fileio import cache_root, write_atomic

SAMPLES_DIR = os.path.join(os.path.dirname(__file__), "samples")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
TFDS_SPLITS = {"train": ("train",), "val": ("validation", "test"), "test": ("test",)}
# The chroma scan looks at a small copy of each image: mean chroma barely depends on size.
_SCAN_SIZE = 64
# Images per source that the colour prior (class rebalancing) is measured on.
PRIOR_IMAGES = 2000
# The longest side any small working copy of an image may have, in multiples of its short side
# (the chroma scan here; the model's render size in inference): a 1x10000 strip stays bounded.
MAX_ASPECT = 8


class DataError(UserError, ValueError):
    """A data source that cannot be used as asked (missing, empty, unknown split)."""


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What the training sources resolved to: all files, and each source's own (`groups`, in
    --data order; one group for a single source)."""
    root: str
    files: tuple[str, ...]
    dropped_gray: int
    groups: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        if not self.groups:
            object.__setattr__(self, "groups", (self.files,))


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
    cache = os.path.join(cache_dir(cfg), "scan",
                         _file_identity(files, f"max_pixels={cfg.max_pixels}\n") + ".json")
    if os.path.isfile(cache):
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        return Scan(chroma=cached["chroma"], bad=cached["bad"])
    bad = {f: reason for f in files if (reason := images.check_header(f, cfg.max_pixels))}
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
    """(root, files that decode, scan) of `split`; bad files are logged and skipped. Several
    sources: their files one after the other, and the root they share."""
    if len(cfg.sources) > 1:
        parts = [usable_files(one, split) for one in single_sources(cfg)]
        scan = Scan(chroma={k: v for p in parts for k, v in p[2].chroma.items()},
                    bad={k: v for p in parts for k, v in p[2].bad.items()})
        return (os.path.commonpath([p[0] for p in parts]), [f for p in parts for f in p[1]], scan)
    root, files = list_split(cfg, split)
    scan = scan_files(files, cfg)
    scan.report(f"{cfg.data} ({split})")
    good = [f for f in files if f in scan.chroma]
    if not good:
        raise DataError(f"none of the {len(files)} files of {cfg.data} ({split}) can be read")
    return root, good, scan


def training_files(cfg: DataConfig) -> SourceInfo:
    """Readable files of the training split, minus grayscale photos (chroma < cfg.min_chroma),
    per source."""
    if len(cfg.sources) > 1:
        infos = [training_files(one) for one in single_sources(cfg)]
        return SourceInfo(root=os.path.commonpath([i.root for i in infos]),
                          files=tuple(f for i in infos for f in i.files),
                          dropped_gray=sum(i.dropped_gray for i in infos),
                          groups=tuple(i.files for i in infos))
    root, files, scan = usable_files(cfg, cfg.split)
    kept = [f for f in files if scan.chroma[f] >= cfg.min_chroma]
    dropped = len(files) - len(kept)
    logging.info("data: %d training images from %s (%s split); dropped %d grayscale images "
                 "(mean chroma < %.1f)", len(kept), cfg.data, cfg.split, dropped, cfg.min_chroma)
    if not kept:
        raise DataError(f"all {len(files)} images in {cfg.data} are grayscale; nothing to learn from")
    return SourceInfo(root=root, files=tuple(kept), dropped_gray=dropped)


def _file_identity(files, extra: str = "") -> str:
    """A cache key for a file list: paths, sizes and modification times."""
    ident = hashlib.sha1(extra.encode())
    for f in files:
        st = os.stat(f)
        ident.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return ident.hexdigest()


def _color_histogram(files) -> list[float]:
    """Pixel counts per a*b* bin over small copies of up to PRIOR_IMAGES evenly spaced `files`."""
    picked = list(files)[::max(1, len(files) // PRIOR_IMAGES)][:PRIOR_IMAGES]
    ds = tf.data.Dataset.from_tensor_slices(picked).map(
        lambda p: bins.bin_counts(color.rgb_to_model(
            _scan_view(decode_image(tf.io.read_file(p)), _SCAN_SIZE))[1]),
        num_parallel_calls=tf.data.AUTOTUNE)
    return [float(c) for c in ds.reduce(tf.zeros([bins.NUM_BINS]), tf.add).numpy()]


def color_prior(cfg: DataConfig, groups) -> tf.Tensor:
    """(NUM_BINS,) float32: the training data's a*b* distribution, the sources mixed by their
    mixing_weights: what class rebalancing (bins.rebalance_weights) reweighs against.

    Measured once per file list on small copies of up to PRIOR_IMAGES images per source (a
    histogram of 262 bins settles long before that), and cached in the cache directory.
    """
    total = tf.zeros([bins.NUM_BINS])
    for group, weight in zip(groups, mixing_weights(cfg, groups)):
        cache = os.path.join(cache_dir(cfg), "prior", _file_identity(
            group, f"bins={bins.NUM_BINS} images={PRIOR_IMAGES} size={_SCAN_SIZE}\n") + ".json")
        if os.path.isfile(cache):
            with open(cache, encoding="utf-8") as f:
                counts = json.load(f)
        else:
            counts = _color_histogram(group)
            write_atomic(cache, json.dumps(counts))
        counts = tf.constant(counts, tf.float32)
        total += weight * counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    return total


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


def mixing_weights(cfg: DataConfig, groups) -> list[float]:
    """Each source's share of the training examples: --data_weights, else its share of files."""
    weights = cfg.source_weights or [float(len(g)) for g in groups]
    return [w / sum(weights) for w in weights]


def _mixed_names(cfg: DataConfig, groups, seed: int) -> tf.data.Dataset:
    """Infinite (element index, path) names drawn from several sources by `mixing_weights`.

    Element i's source is a stateless draw keyed on (seed, i) and each source walks its own
    per-epoch permutations, so the stream is a pure function of (groups, weights, seed)."""
    logits = tf.math.log(tf.constant([mixing_weights(cfg, groups)], tf.float32))
    choice = tf.data.Dataset.range(2 ** 62).map(
        lambda i: tf.random.stateless_categorical(
            logits, 1, seed=tf.stack([tf.constant(seed, tf.int64), i]), dtype=tf.int64)[0, 0])
    names = [tf.data.Dataset.range(2 ** 62).flat_map(
        lambda epoch, files=tf.constant(list(g)), k=k: _epoch_files(files, seed + k, epoch))
        .map(lambda _, path: path) for k, g in enumerate(groups)]
    return tf.data.Dataset.choose_from_datasets(names, choice).enumerate()


def make_train_dataset(cfg: DataConfig, files, seed: int, start_step: int = 0, *,
                       shard: tuple[int, int] = (0, 1),
                       batch_size: int | None = None) -> tf.data.Dataset:
    """Infinite batches of augmented training examples, starting at `start_step`.

    `files`: one source's files, or a tuple of several sources' file tuples
    (SourceInfo.groups), mixed by --data_weights (see _mixed_names).

    Global batch k of a run is a pure function of (files, seed, k): the file order is a stateless
    permutation per epoch and augmentation is keyed on (seed, element index). Resuming at step k
    skips k * batch_size *names*; nothing is decoded twice.

    Distributed input (`shard` = (index, count) of this input pipeline, `batch_size` = the
    per-replica batch): each pipeline decodes only every count-th example from `index`, so
    the examples of global batch k, over all replicas, are the same ones whatever the strategy.
    """
    groups = [files] if isinstance(files[0], str) else [g for g in files]
    if len(groups) == 1:
        file_t = tf.constant(list(groups[0]))
        start_epoch, offset = divmod(start_step * cfg.batch_size, len(groups[0]))
        ds = tf.data.Dataset.range(start_epoch, 2 ** 62).flat_map(
            lambda epoch: _epoch_files(file_t, seed, epoch))
    else:
        ds, offset = _mixed_names(cfg, groups, seed), start_step * cfg.batch_size

    def load(index, path):
        rgb = decode_image(tf.io.read_file(path))
        rgb = random_crop_flip(rgb, cfg.image_size, cfg.crop_min, cfg.flip,
                               tf.stack([tf.constant(seed, tf.int64), index]))
        return to_example(rgb)

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
