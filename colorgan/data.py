"""The tf.data pipelines that turn a source's image files (colorgan.sources) into `{l, ab}`
examples, the chroma scan that drops grayscale images, and the training set's colour prior.

The training pipeline shuffles *file names* with a stateless per-epoch permutation and keys every
augmentation on (seed, global element index), so a run can resume at any step by skipping names,
without saving an iterator and without decoding anything twice.

Elements: `l` float32 (H, W, 1) and `ab` float32 (H, W, 2), both in [-1, 1] (see color.py);
evaluation elements add `path` (tf.string).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from absl import logging
import tensorflow as tf

from colorgan import bins, color, images, sources
from colorgan.config import DataConfig
from colorgan.sources import DataError
from colorgan.fileio import write_atomic

# The chroma scan looks at a small copy of each image: mean chroma barely depends on size.
_SCAN_SIZE = 64
# Images per source that the colour prior (class rebalancing) is measured on.
PRIOR_IMAGES = 2000
# The longest side any small working copy of an image may have, in multiples of its short side
# (the chroma scan here; the model's render size in inference): a 1x10000 strip stays bounded.
MAX_ASPECT = 8


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
    cache = os.path.join(sources.cache_dir(cfg), "scan",
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
        parts = [usable_files(one, split) for one in sources.single_sources(cfg)]
        scan = Scan(chroma={k: v for p in parts for k, v in p[2].chroma.items()},
                    bad={k: v for p in parts for k, v in p[2].bad.items()})
        return (os.path.commonpath([p[0] for p in parts]), [f for p in parts for f in p[1]], scan)
    root, files = sources.list_split(cfg, split)
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
        infos = [training_files(one) for one in sources.single_sources(cfg)]
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
        cache = os.path.join(sources.cache_dir(cfg), "prior", _file_identity(
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
