"""colorgan.sources and colorgan.data: sources, splits, decoding, the tf.data pipelines (tiny images)."""

from __future__ import annotations

import os
import socket
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import color, data, errors, sources
from colorgan.config import DataConfig
from conftest import smooth_color_image, write_images

# Rebuilding RGB from the pipeline's (l, ab): the float32 Lab round trip is ~1e-5 and an
# identity-size antialiased resize ~3e-8, so 1e-3 (a quarter of an 8-bit level) is ample while
# any misalignment (a flipped, shifted or differently cropped pair) moves pixels by > 0.01.
PAIR_ATOL = 1e-3
# Decoding 8-bit PNGs to float32 is v / 255 rounded to float32.
DECODE_ATOL = 1e-6
# 16-bit PNGs: v / 65535 must survive to well below one 16-bit level (1 / 65535 = 1.5e-5),
# which an 8-bit detour (error up to 1 / 510) would fail.
DECODE16_ATOL = 0.25 / 65535
# JPEG: conforming IDCTs may differ from the reference decoder by one level (rounding);
# anything above that is a less accurate decoder, not rounding.
JPEG_ATOL = 1.0 / 255 + 1e-6


def _cfg(**kw) -> DataConfig:
    defaults = dict(image_size=32, batch_size=2, val_fraction=0.0, min_chroma=0.0)
    defaults.update(kw)
    return DataConfig(**defaults)


def _touch(path) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")
    return str(path)


# ------------------------------------------------------------------- listing and splits

def test_list_images_recursive_sorted_images_only(tmp_path):
    wanted = [_touch(tmp_path / p) for p in [
        "b.png", "a.jpg", "sub/c.JPEG", "sub/deeper/d.bmp", "sub/e.gif", "Z.PNG"]]
    for p in [".hidden.png", "notes.txt", "sub/readme.md", ".cache/x.png", "sub/.y.jpg",
              "sub/archive.tar.gz"]:
        _touch(tmp_path / p)
    found = sources.list_images(str(tmp_path))
    assert found == sorted(wanted)
    assert found == sorted(found)


def test_list_split_uses_split_folders(tmp_path):
    train = write_images(tmp_path / "train", 3, size=(8, 8))
    val = write_images(tmp_path / "validation", 2, size=(8, 8), seed=1)  # an accepted alias
    cfg = _cfg(data=str(tmp_path), val_fraction=0.5)  # ignored when split folders exist
    root, files = sources.list_split(cfg, "train")
    assert root == str(tmp_path / "train") and files == train
    root, files = sources.list_split(cfg, "val")
    assert root == str(tmp_path / "validation") and files == val
    with pytest.raises(sources.DataError, match="test"):
        sources.list_split(cfg, "test")


def test_hash_split_is_disjoint_complete_and_stable(tmp_path):
    all_files = write_images(tmp_path, 20, size=(8, 8))
    cfg = _cfg(data=str(tmp_path), val_fraction=0.3)
    root, train = sources.list_split(cfg, "train")
    _, val = sources.list_split(cfg, "val")
    _, test = sources.list_split(cfg, "test")
    assert root == str(tmp_path)
    assert train and val
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(all_files)
    assert test == val  # without split folders, the held-out files serve both
    for f in val:
        assert sources.in_heldout(os.path.relpath(f, root), 0.3)
    assert sources.list_split(cfg, "val") == (root, val)


def test_in_heldout_fraction_and_nesting():
    names = [f"dir{i % 7}/img{i:05d}.png" for i in range(4000)]
    held = np.array([sources.in_heldout(n, 0.2) for n in names])
    assert abs(held.mean() - 0.2) < 0.03  # a hash: close to the asked fraction
    more = np.array([sources.in_heldout(n, 0.5) for n in names])
    assert np.all(more[held])  # growing val_fraction only moves files from train to val
    assert not any(sources.in_heldout(n, 0.0) for n in names)


def test_val_fraction_zero_puts_everything_in_train(tmp_path):
    all_files = write_images(tmp_path, 5, size=(8, 8))
    cfg = _cfg(data=str(tmp_path), val_fraction=0.0)
    assert sources.list_split(cfg, "train")[1] == all_files
    with pytest.raises(sources.DataError, match="val") as excinfo:
        sources.list_split(cfg, "val")
    assert isinstance(excinfo.value, errors.UserError)


def test_tar_gz_archive_extracted_once_into_cache(tmp_path, monkeypatch):
    src = tmp_path / "src"
    train = write_images(src / "archive" / "train", 3, size=(8, 8))
    write_images(src / "archive" / "val", 1, size=(8, 8), seed=1)
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "photos.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "archive", arcname="archive")
    before = sorted(os.listdir(out))

    cfg = _cfg(data=str(archive))
    root, files = sources.list_split(cfg, "train")
    cache = os.path.realpath(os.environ["COLORGAN_CACHE"])
    assert os.path.realpath(root).startswith(cache + os.sep)
    assert os.path.basename(root) == "train"
    assert sorted(os.listdir(out)) == before  # nothing written next to the archive
    assert [os.path.basename(f) for f in files] == [os.path.basename(f) for f in train]
    for extracted, original in zip(files, train):
        with open(extracted, "rb") as a, open(original, "rb") as b:
            assert a.read() == b.read()

    # Second call: the extraction is reused (opening the archive again would fail).
    def no_reopen(*args, **kwargs):
        raise AssertionError("archive extracted twice")

    monkeypatch.setattr(sources.tarfile, "open", no_reopen)
    assert sources.list_split(cfg, "train") == (root, files)
    assert len(sources.list_split(cfg, "val")[1]) == 1


def test_samples_source_lists_bundled_photos():
    root, files = sources.list_split(_cfg(data="samples"), "train")
    assert root == sources.SAMPLES_DIR
    assert [os.path.basename(f) for f in files] == [
        "astronaut.jpg", "chelsea.jpg", "coffee.jpg", "grace_hopper.jpg",
        "hubble_deep_field.jpg", "rocket.jpg"]


def test_nonexistent_source_raises_user_error(tmp_path):
    cfg = _cfg(data=str(tmp_path / "no-such-folder"))
    with pytest.raises(sources.DataError, match="no-such-folder") as excinfo:
        sources.list_split(cfg, "train")
    assert isinstance(excinfo.value, errors.UserError)


def test_training_files_drops_grayscale(tmp_path):
    paths = write_images(tmp_path, 3, gray=2)
    info = data.training_files(_cfg(data=str(tmp_path), min_chroma=0.5))
    assert info.dropped_gray == 2
    assert info.files == tuple(paths[:3])
    assert info.root == str(tmp_path)

    keep_all = data.training_files(_cfg(data=str(tmp_path), min_chroma=0.0))
    assert keep_all.dropped_gray == 0 and keep_all.files == tuple(paths)


def test_training_files_all_gray_is_a_user_error(tmp_path):
    write_images(tmp_path, 0, gray=2)
    with pytest.raises(sources.DataError, match="grayscale"):
        data.training_files(_cfg(data=str(tmp_path), min_chroma=0.5))


# ------------------------------------------------------------------------------- decoding

def _decode_both_ways(path) -> np.ndarray:
    """decode_image eagerly and inside Dataset.map; both must agree exactly."""
    raw = tf.io.read_file(str(path))
    eager = data.decode_image(raw).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors(raw).map(data.decode_image))).numpy()
    np.testing.assert_array_equal(mapped, eager)
    assert eager.dtype == np.float32 and eager.ndim == 3 and eager.shape[-1] == 3
    return eager


def test_decode_grayscale_png(tmp_path):
    gray = smooth_color_image(20, 24, 1)[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    rgb = _decode_both_ways(tmp_path / "g.png")
    assert rgb.shape == (20, 24, 3)
    for c in range(3):
        np.testing.assert_allclose(rgb[..., c], gray / 255.0, atol=DECODE_ATOL)


def test_decode_rgba_png_drops_alpha(tmp_path):
    rgb_u8 = smooth_color_image(20, 24, 2)
    alpha = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (20, 1))  # includes alpha = 0
    Image.fromarray(np.dstack([rgb_u8, alpha])).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    rgb = _decode_both_ways(tmp_path / "a.png")
    # Colour kept as stored: not premultiplied, not composited onto a background.
    np.testing.assert_allclose(rgb, rgb_u8 / 255.0, atol=DECODE_ATOL)


def test_decode_16bit_grayscale_png_keeps_precision(tmp_path):
    values = (np.arange(20 * 24, dtype=np.int64) * 137 % 65536).astype(np.uint16).reshape(20, 24)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    img.save(tmp_path / "g16.png")
    with open(tmp_path / "g16.png", "rb") as f:
        assert f.read(25)[24] == 16  # IHDR bit depth
    rgb = _decode_both_ways(tmp_path / "g16.png")
    for c in range(3):
        np.testing.assert_allclose(rgb[..., c], values / 65535.0, rtol=0, atol=DECODE16_ATOL)
    assert len(np.unique(rgb)) == values.size  # far more than 256 levels survive


@pytest.mark.parametrize("quality,subsampling", [(75, 2), (95, 0)])  # 2 = 4:2:0, 0 = 4:4:4
def test_decode_jpeg_matches_reference_decoder(tmp_path, quality, subsampling):
    """JPEG pixels as libjpeg's accurate IDCT (PIL) decodes them: ground-truth colour is what
    the model learns, and colorgan.colorize itself writes JPEGs at quality 95."""
    rgb_u8 = smooth_color_image(40, 48, 3)
    Image.fromarray(rgb_u8).save(tmp_path / "p.jpg", quality=quality, subsampling=subsampling)
    reference = np.asarray(Image.open(tmp_path / "p.jpg").convert("RGB")) / 255.0
    rgb = _decode_both_ways(tmp_path / "p.jpg")
    assert rgb.shape == (40, 48, 3)
    np.testing.assert_allclose(rgb, reference, rtol=0, atol=JPEG_ATOL)


# -------------------------------------------------------------------- training pipeline

@pytest.fixture(scope="module")
def train_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train-images")
    write_images(folder, 5, size=(40, 48))
    return str(folder)


def _batches(cfg, files, seed, count, start_step=0):
    ds = data.make_train_dataset(cfg, files, seed=seed, start_step=start_step)
    return list(ds.take(count).as_numpy_iterator())


def test_train_dataset_shapes_dtypes_ranges(train_folder):
    cfg = _cfg(data=train_folder)
    info = data.training_files(cfg)
    ds = data.make_train_dataset(cfg, info.files, seed=0)
    assert ds.element_spec["l"].shape.as_list() == [2, 32, 32, 1]
    assert ds.element_spec["ab"].shape.as_list() == [2, 32, 32, 2]
    batch = next(iter(ds))
    assert set(batch) == {"l", "ab"}
    l, ab = batch["l"].numpy(), batch["ab"].numpy()
    assert l.shape == (2, 32, 32, 1) and ab.shape == (2, 32, 32, 2)
    assert l.dtype == np.float32 and ab.dtype == np.float32
    assert -1.0 <= l.min() and l.max() <= 1.0 and -1.0 <= ab.min() and ab.max() <= 1.0
    # Colourful synthetic images: real spread in both L and chroma, not a constant.
    assert l.std() > 0.05 and np.abs(ab).max() > 0.1


def test_train_dataset_seeded(train_folder):
    cfg = _cfg(data=train_folder)
    files = data.training_files(cfg).files
    first = _batches(cfg, files, seed=7, count=3)
    again = _batches(cfg, files, seed=7, count=3)
    other = _batches(cfg, files, seed=8, count=3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["l"], b["l"])
        np.testing.assert_array_equal(a["ab"], b["ab"])
    assert not all(np.allclose(a["ab"], c["ab"]) for a, c in zip(first, other))


def test_train_dataset_resume_at_step(train_folder):
    """Batch k of a run started at k equals batch k of a run started at 0 (5 files, batch 2:
    step 2 straddles the epoch boundary, step 3 starts inside epoch 1)."""
    cfg = _cfg(data=train_folder, crop_min=0.5)
    files = data.training_files(cfg).files
    full = _batches(cfg, files, seed=3, count=6)
    for k in (1, 2, 3, 5):
        resumed = _batches(cfg, files, seed=3, count=1, start_step=k)[0]
        np.testing.assert_array_equal(resumed["l"], full[k]["l"], err_msg=f"step {k}")
        np.testing.assert_array_equal(resumed["ab"], full[k]["ab"], err_msg=f"step {k}")


def test_train_pair_alignment_without_augmentation(tmp_path):
    rgb_u8 = smooth_color_image(32, 32, 9)
    Image.fromarray(rgb_u8).save(tmp_path / "sq.png")
    cfg = _cfg(data=str(tmp_path), crop_min=1.0, flip=False)
    batch = _batches(cfg, [str(tmp_path / "sq.png")], seed=0, count=1)[0]
    rebuilt = color.model_to_rgb(batch["l"], batch["ab"]).numpy()
    for i in range(2):
        np.testing.assert_allclose(rebuilt[i], rgb_u8 / 255.0, rtol=0, atol=PAIR_ATOL)


def test_train_pair_alignment_with_augmentation(tmp_path):
    """l and ab come from the same crop and flip: rebuilt RGB equals the augmentation of element
    i, which with a single file is random_crop_flip(image, seed=(seed, i))."""
    rgb_u8 = smooth_color_image(40, 48, 10)
    path = str(tmp_path / "wide.png")
    Image.fromarray(rgb_u8).save(path)
    cfg = _cfg(data=str(tmp_path), crop_min=0.5, flip=True, batch_size=4)
    seed = 11
    batch = _batches(cfg, [path], seed=seed, count=1)[0]
    rebuilt = color.model_to_rgb(batch["l"], batch["ab"]).numpy()
    source = data.decode_image(tf.io.read_file(path))
    for i in range(4):
        expected = data.random_crop_flip(source, 32, 0.5, True,
                                         tf.constant([seed, i], tf.int64)).numpy()
        np.testing.assert_allclose(rebuilt[i], expected, rtol=0, atol=PAIR_ATOL)
    # The four views really differ (crops/flips vary), so the check above is not vacuous.
    assert min(np.abs(rebuilt[0] - rebuilt[i]).max() for i in range(1, 4)) > 0.01


# ------------------------------------------------------------------------- eval pipeline

def test_eval_dataset_center_crops_with_paths(tmp_path):
    wide = smooth_color_image(40, 48, 20)
    tall = smooth_color_image(48, 40, 21)
    third = smooth_color_image(40, 40, 22)
    val = tmp_path / "val"
    val.mkdir()
    write_images(tmp_path / "train", 1, size=(8, 8))
    for name, img in [("a_wide.png", wide), ("b_tall.png", tall), ("c_square.png", third)]:
        Image.fromarray(img).save(val / name)

    # image_size = the short side: the center crop is then an exact pixel window.
    cfg = _cfg(data=str(tmp_path), image_size=40)
    batches = list(data.make_eval_dataset(cfg, "val").as_numpy_iterator())
    assert [len(b["path"]) for b in batches] == [2, 1]  # every file, no remainder dropped
    paths = [p.decode() for b in batches for p in b["path"]]
    assert paths == [str(val / n) for n in ("a_wide.png", "b_tall.png", "c_square.png")]
    rebuilt = np.concatenate([color.model_to_rgb(b["l"], b["ab"]).numpy() for b in batches])
    np.testing.assert_allclose(rebuilt[0], wide[:, 4:44] / 255.0, rtol=0, atol=PAIR_ATOL)
    np.testing.assert_allclose(rebuilt[1], tall[4:44, :] / 255.0, rtol=0, atol=PAIR_ATOL)
    np.testing.assert_allclose(rebuilt[2], third / 255.0, rtol=0, atol=PAIR_ATOL)

    limited = list(data.make_eval_dataset(_cfg(data=str(tmp_path), image_size=32), "val",
                                          limit=1).as_numpy_iterator())
    assert len(limited) == 1 and limited[0]["path"].tolist() == [paths[0].encode()]
    assert limited[0]["l"].shape == (1, 32, 32, 1) and limited[0]["ab"].shape == (1, 32, 32, 2)
    assert limited[0]["l"].dtype == np.float32


# --------------------------------------------------------------------------------- TFDS

def test_tfds_source_with_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    connects = []

    def refuse(self, address, *args, **kwargs):
        connects.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    cache = tmp_path / "cache"
    cfg = _cfg(data="tfds:cifar10", image_size=32, min_chroma=0.0, cache_dir=str(cache))
    with tfds.testing.mock_data(num_examples=5):
        info = data.training_files(cfg)
    export = cache / "tfds" / "cifar10" / "train"
    assert info.root == str(export)
    assert len(info.files) == 5 and info.dropped_gray == 0
    assert all(f.startswith(str(export) + os.sep) for f in info.files)
    for f in info.files:
        rgb = data.decode_image(tf.io.read_file(f)).numpy()
        assert rgb.shape == (32, 32, 3)
    assert not connects, f"tried to connect to {connects}"

    # The export is reused: no TFDS (and no mock) is needed the second time.
    assert data.training_files(cfg).files == info.files
    batch = next(iter(data.make_train_dataset(cfg, info.files, seed=0)))
    assert batch["l"].shape == (2, 32, 32, 1) and batch["ab"].shape == (2, 32, 32, 2)
    assert -1.0 <= batch["l"].numpy().min() and batch["l"].numpy().max() <= 1.0


def test_tfds_unavailable_dataset_is_a_user_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    cfg = _cfg(data="tfds:cifar10", cache_dir=str(tmp_path / "cache"),
               tfds_data_dir=str(tmp_path / "empty-tfds"))
    with pytest.raises(sources.DataError, match="not available locally"):
        sources.list_split(cfg, "train")


def test_split_all_takes_every_image(tmp_path):
    write_images(tmp_path / "flat", 5)
    cfg = _cfg(data=str(tmp_path / "flat"), val_fraction=0.5)
    _, everything = sources.list_split(cfg, "all")
    _, train = sources.list_split(cfg, "train")
    assert len(everything) == 5 and set(train) < set(everything)
    write_images(tmp_path / "split" / "train", 2)
    write_images(tmp_path / "split" / "test", 3, seed=1)
    assert len(sources.list_split(_cfg(data=str(tmp_path / "split")), "all")[1]) == 5


# ------------------------------------------------------------------------- several sources
# Elements drawn to measure the mixing shares. Each element's source is an independent draw, so
# a share is binomial: standard deviation sqrt(p (1 - p) / n) = 0.0137 at p = 0.25, n = 1000;
# 4 of them (a 6e-5 two-sided chance of a false alarm) still catch a swapped or ignored weight
# (off by 0.25 or more).
MIX_ELEMENTS = 1000
MIX_SIGMAS = 4.0
# Colour priors are float32 normalised histograms: sums and shares exact up to float32 rounding.
PRIOR_RTOL = 1e-6
# A 32-px image scanned at 64 px (antialiased resize): the two columns at a colour seam blend,
# 2 of 64 columns, so up to 1/32 of the mass leaves the two pure bins.
SEAM_MASS = 1 / 32


def _solid_images(folder, rgb_u8, count: int) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(str(folder), f"solid{i}.png")
        Image.fromarray(np.full((32, 32, 3), rgb_u8, np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def red_blue(tmp_path_factory):
    """Two sources told apart by colour: 1 red image, 3 blue ones (b* > 0 vs b* < 0)."""
    root = tmp_path_factory.mktemp("two-sources")
    red = _solid_images(root / "red", (255, 0, 0), 1)
    blue = _solid_images(root / "blue", (0, 0, 255), 3)
    return str(root), red, blue


def _mixed_cfg(red_blue, **kw) -> DataConfig:
    root = red_blue[0]
    return _cfg(data=f"{root}/red,{root}/blue", **kw)


def test_training_files_of_several_sources_keeps_their_groups(red_blue):
    root, red, blue = red_blue
    info = data.training_files(_mixed_cfg(red_blue))
    assert info.groups == (tuple(red), tuple(blue))
    assert info.files == tuple(red + blue)
    assert info.root == root  # the folder both share
    single = data.training_files(_cfg(data=f"{root}/blue"))
    assert single.groups == (single.files,) == (tuple(blue),)


def test_mixing_weights_by_size_or_by_data_weights(red_blue):
    groups = data.training_files(_mixed_cfg(red_blue)).groups
    assert data.mixing_weights(_mixed_cfg(red_blue), groups) == pytest.approx([0.25, 0.75])
    weighted = _mixed_cfg(red_blue, data_weights="3,1")
    assert data.mixing_weights(weighted, groups) == pytest.approx([0.75, 0.25])


def _source_shares(cfg, groups, seed) -> np.ndarray:
    """Fraction of MIX_ELEMENTS training examples from the red source (b* > 0)."""
    ds = data.make_train_dataset(cfg, groups, seed=seed)
    b = np.concatenate([batch["ab"][..., 1].mean(axis=(1, 2))
                        for batch in ds.take(MIX_ELEMENTS // cfg.batch_size).as_numpy_iterator()])
    assert len(b) == MIX_ELEMENTS and np.all(np.abs(b) > 0.3)  # every example is red or blue
    return np.mean(b > 0)


@pytest.mark.parametrize("weights,red_share", [("", 0.25), ("3,1", 0.75), ("1,1", 0.5),
                                               ("0,1", 0.0)])
def test_mixed_stream_follows_the_weights(red_blue, weights, red_share):
    cfg = _mixed_cfg(red_blue, data_weights=weights, batch_size=8)
    groups = data.training_files(cfg).groups
    tolerance = MIX_SIGMAS * np.sqrt(red_share * (1 - red_share) / MIX_ELEMENTS)
    assert abs(_source_shares(cfg, groups, seed=1) - red_share) <= tolerance


@pytest.fixture(scope="module")
def two_textured_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-textured")
    write_images(root / "a", 3, size=(40, 48), seed=1)
    write_images(root / "b", 2, size=(48, 40), seed=2)
    cfg = _cfg(data=f"{root}/a,{root}/b", data_weights="1,2", crop_min=0.5)
    return cfg, data.training_files(cfg).groups


def test_mixed_stream_is_seeded(two_textured_sources):
    cfg, groups = two_textured_sources
    first = _batches(cfg, groups, seed=5, count=4)
    again = _batches(cfg, groups, seed=5, count=4)
    other = _batches(cfg, groups, seed=6, count=4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["l"], b["l"])
        np.testing.assert_array_equal(a["ab"], b["ab"])
    assert not all(np.allclose(a["ab"], c["ab"]) for a, c in zip(first, other))


def test_mixed_stream_resumes_where_an_uninterrupted_one_is(two_textured_sources):
    cfg, groups = two_textured_sources
    whole = data.make_train_dataset(cfg, groups, seed=3)
    for k in (1, 3, 7):
        skipped = next(iter(whole.skip(k)))
        resumed = next(iter(data.make_train_dataset(cfg, groups, seed=3, start_step=k)))
        for key in ("l", "ab"):
            np.testing.assert_array_equal(resumed[key].numpy(), skipped[key].numpy(),
                                          err_msg=f"step {k}")


def _nearest_bin_of(rgb) -> int:
    """Independent: scikit-image's Lab, the nearest of the bin centres in NumPy."""
    from skimage.color import rgb2lab  # noqa: PLC0415

    from colorgan import bins  # noqa: PLC0415
    ab = rgb2lab(np.asarray(rgb, np.float64).reshape(1, 1, 3) / 255.0)[0, 0, 1:]
    return int(np.argmin(np.sum((np.asarray(bins.BIN_CENTERS_LAB) - ab) ** 2, -1)))


@pytest.mark.parametrize("weights,red_mass", [("", 0.25), ("3,1", 0.75)])
def test_color_prior_puts_the_mass_in_the_sources_colours(red_blue, weights, red_mass,
                                                          monkeypatch):
    cfg = _mixed_cfg(red_blue, data_weights=weights)
    groups = data.training_files(cfg).groups
    prior = data.color_prior(cfg, groups).numpy()
    red_bin, blue_bin = _nearest_bin_of((255, 0, 0)), _nearest_bin_of((0, 0, 255))
    assert prior.shape == (262,) and red_bin != blue_bin
    np.testing.assert_allclose(prior.sum(), 1.0, rtol=PRIOR_RTOL)
    np.testing.assert_allclose(prior[red_bin], red_mass, rtol=PRIOR_RTOL)
    np.testing.assert_allclose(prior[blue_bin], 1 - red_mass, rtol=PRIOR_RTOL)

    # Measured once per file list: the second call reads the cache.
    def no_histogram(files):
        raise AssertionError("colour histogram measured twice")

    monkeypatch.setattr(data, "_color_histogram", no_histogram)
    np.testing.assert_array_equal(data.color_prior(cfg, groups).numpy(), prior)


def test_color_prior_of_one_source_is_its_pixel_histogram(tmp_path):
    # Half red, half green images: the prior splits evenly between the two bins.
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = (255, 0, 0)
    img[:, 16:] = (0, 255, 0)
    Image.fromarray(img).save(tmp_path / "half.png")
    cfg = _cfg(data=str(tmp_path))
    prior = data.color_prior(cfg, data.training_files(cfg).groups).numpy()
    red, green = _nearest_bin_of((255, 0, 0)), _nearest_bin_of((0, 255, 0))
    np.testing.assert_allclose(prior.sum(), 1.0, rtol=PRIOR_RTOL)
    assert prior[red] == pytest.approx(0.5, abs=SEAM_MASS)
    assert prior[green] == pytest.approx(0.5, abs=SEAM_MASS)
    assert prior[red] + prior[green] >= 1 - SEAM_MASS
