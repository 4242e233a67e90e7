"""Shared fixtures: a cache dir per session, synthetic image folders, one tiny trained model,
and an in-process CLI runner (absl flags restored after each call)."""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from PIL import Image

# Keep TF quiet and deterministic-ish on 2 cores before it is imported by the package.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from colorgan import cli, config, distribute, fileio  # noqa: E402  (after the environment is set)

# Two logical CPU devices, so --strategy=mirrored runs 2 replicas in-process (test_distribute).
# Must happen before TF initialises its devices; single-device code is unaffected (it runs on
# the first).
distribute.split_cpu(2)

FLAGS = flags.FLAGS
# The TF.js converter's environment (~3 GB, minutes to create) is kept between sessions in the
# user's cache, unlike the throwaway cache below (read here, before _session_cache replaces it).
CONVERTER_CACHE = fileio.cache_root()


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Archives, TFDS exports and chroma scans go to a throwaway cache, never ~/.cache."""
    os.environ["COLORGAN_CACHE"] = str(tmp_path_factory.mktemp("colorgan-cache"))


@pytest.fixture(autouse=True)
def _absl_logger_follows_root():
    """Every test sees colorgan's INFO lines when it asks for them (caplog). TensorFlow's
    SavedModel writer saves and restores absl's verbosity through the absl logger's *effective*
    level, so after an export under pytest (root at WARNING) that logger is pinned at WARNING."""
    std_logging.getLogger("absl").setLevel(std_logging.NOTSET)


def smooth_color_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth, colourful uint8 RGB image (gradients + blobs): learnable, not noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for _ in range(3):
        fy, fx, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        channels.append(0.5 + 0.45 * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase))
    return (np.stack(channels, -1) * 255).round().astype(np.uint8)


def write_images(folder, count: int, size=(40, 48), seed: int = 0, ext: str = "png",
                 gray: int = 0) -> list[str]:
    """Writes `count` colour images (plus `gray` grayscale ones) to `folder`; returns paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count + gray):
        rgb = smooth_color_image(size[0], size[1], seed * 1000 + i)
        img = Image.fromarray(rgb)
        if i >= count:
            img = img.convert("L")
        path = os.path.join(str(folder), f"img{i:03d}.{ext}")
        img.save(path)
        paths.append(path)
    return paths


def run_main(main, argv: list[str], passthrough: bool = False) -> int:
    """Runs a verb's `main` in-process as `python -m colorgan.<verb> ARGV` would, flags restored
    after. `passthrough`: as cli.parse_flags (the batch verb hands other flags to Beam)."""
    with flagsaver.flagsaver():
        try:
            positional = cli.parse_flags(["colorgan"] + list(argv), passthrough=passthrough)
        except SystemExit as e:  # bad flags: absl's exit status 1
            return int(e.code)
        return main(positional)


@pytest.fixture(scope="session")
def tiny_config() -> config.Config:
    """The `tiny` recipe as a Config (built from the recipe file, so the recipe is tested too)."""
    with flagsaver.flagsaver():
        cli.parse_flags(["colorgan", "--recipe=tiny"])
        return config.from_flags(FLAGS)


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory, tiny_config) -> str:
    """One tiny model trained once per session (6 steps on the bundled samples) and shared."""
    from colorgan import train  # noqa: PLC0415  (TF import only when needed)

    workdir = str(tmp_path_factory.mktemp("tiny-run"))
    train.train(tiny_config, workdir)
    return workdir


@pytest.fixture(scope="session")
def tiny_tfjs(tiny_workdir, tmp_path_factory) -> str:
    """The tiny model exported to TF.js (float16 weights) once per session: its version folder
    (export --formats=tfjs; needs Node.js for the parity check)."""
    from colorgan import export, inference  # noqa: PLC0415  (TF import only when needed)

    output = str(tmp_path_factory.mktemp("tfjs-export"))
    return export.export(inference.load_model(tiny_workdir), output, formats=("tfjs",),
                         cache_dir=CONVERTER_CACHE)[0]


HINT_REACH = 6.0  # the tiny hint model's, in pixels of its 32 px view


@pytest.fixture(scope="module")
def hint_model(tiny_workdir, tiny_config, tmp_path_factory):
    """A tiny hint model fine-tuned 2 steps from the tiny automatic one, its hint branch then
    made strong (2 steps barely move it) so a hint visibly changes the colour; its hints spread
    (hint_reach, as the shipped model's do) so every export carries the spreading too."""
    from colorgan import inference, train  # noqa: PLC0415  (TF import only when needed)

    cfg = with_changes(tiny_config, model={"hint_inputs": True},
                       train={"steps": 2, "init_from": tiny_workdir})
    workdir = str(tmp_path_factory.mktemp("hint-run"))
    train.train(cfg, workdir)
    model = inference.load_model(workdir)
    conv = model.generator.get_layer("enc1_hint_conv")
    rng = np.random.default_rng(0)
    conv.set_weights([rng.normal(0, 3.0, w.shape).astype(np.float32) for w in conv.get_weights()])
    return model.with_settings(hint_reach=HINT_REACH)


# -------------------------------------------------- helpers shared by the training tests
def snapshot(variables) -> list[np.ndarray]:
    return [np.array(v) for v in variables]


def changed(before, variables) -> list[bool]:
    return [not np.array_equal(b, np.asarray(v)) for b, v in zip(before, variables)]


def with_changes(cfg: config.Config, *, model=None, train=None) -> config.Config:
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, **(model or {})),
        train=dataclasses.replace(cfg.train, **(train or {})))
