"""The training workdir layout, its config files, checkpoints, and loading a generator back.

A workdir holds:
    config.json, config.flags   the resolved config (JSON; and a flagfile that reproduces it)
    ckpt/                        tf.train.CheckpointManager checkpoints: step, generator,
                                 discriminator (GAN), both optimizers
    tb/train, tb/val             TensorBoard events
    samples/                     PNG grids, gray | prediction | truth, one row per image

The data position needs no checkpoint of its own: batch k is a pure function of (config, k)
(see data.make_train_dataset), so restoring `step` restores the input pipeline too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from colorgan import config as config_lib
from colorgan import models
from colorgan.config import Config
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

LOG_JSONL = "log.jsonl"
CONFIG_JSON = config_lib.CONFIG_JSON
CONFIG_FLAGS = "config.flags"
CKPT_DIR = "ckpt"
TB_TRAIN = os.path.join("tb", "train")
TB_VAL = os.path.join("tb", "val")
SAMPLES_DIR = "samples"
# The shipped reference model: a workdir-like folder with config.json and fp16 weights.
PRETRAINED_DIR = config_lib.PRETRAINED_DIR
PRETRAINED_WEIGHTS = config_lib.PRETRAINED_WEIGHTS


def read_config(workdir: str) -> Config | None:
    """The config a workdir was created with, or None for a new workdir."""
    path = os.path.join(workdir, CONFIG_JSON)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return config_lib.from_dict(json.load(f))


def prepare(workdir: str, cfg: Config, *, write: bool = True) -> bool:
    """Creates or re-opens a workdir for `cfg`. Returns True if it already held a run.

    `write=False` (a non-chief worker of a cluster) only checks the config.

    Raises:
      UserError: the workdir was written by a config that differs in more than run length,
        logging or local paths (start a new workdir, or use --init_from to fine-tune).
    """
    old = read_config(workdir)
    if old is not None:
        diffs = config_lib.config_differences(old, cfg)
        if diffs:
            raise UserError(f"{workdir} was created with a different config ({'; '.join(diffs)}); "
                            "use a new --workdir (with --init_from to start from its weights)")
    if not write:
        return old is not None
    # Writing the config first doubles as the check that the workdir is writable at all.
    with writing(f"preparing the workdir {workdir}"):
        for sub in (CKPT_DIR, TB_TRAIN, TB_VAL, SAMPLES_DIR):
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        write_atomic(os.path.join(workdir, CONFIG_JSON), config_lib.to_json(cfg))
        write_atomic(os.path.join(workdir, CONFIG_FLAGS), config_lib.to_flagfile(cfg))
    return old is not None


@contextlib.contextmanager
def writing(what: str):
    """Turns a failed write (disk full, read-only, permissions) into one clear UserError."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise UserError(f"{what} failed: {reason}") from e


def append_log(workdir: str, entry: dict) -> None:
    """Appends one JSON line to workdir/log.jsonl (readers skip a torn last line)."""
    with writing(f"appending to {LOG_JSONL}"):
        with open(os.path.join(workdir, LOG_JSONL), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


def read_log(workdir: str) -> list[dict]:
    """The entries of workdir/log.jsonl, skipping a line torn by a crash."""
    path = os.path.join(workdir, LOG_JSONL)
    if not os.path.isfile(path):
        return []
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                logging.warning("%s: skipping a torn line", path)
    return entries


def logged_clock(workdir: str, step: int) -> dict[str, float]:
    """Cumulative `train_s` (wall) and `cpu_s` (this process's CPU time, all threads) of the run
    up to `step`, from the last training log line at or before it (zeros for a new run)."""
    clock = {"train_s": 0.0, "cpu_s": 0.0}
    for entry in read_log(workdir):
        if entry.get("split") == "train" and entry.get("step", 0) <= step and "train_s" in entry:
            clock = {key: float(entry[key]) for key in clock}
    return clock


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves checkpoint `step`. TF writes the data first and updates the `checkpoint` index file
    atomically last, so a failure (or SIGKILL) here leaves the previous checkpoint current."""
    with writing(f"writing the checkpoint for step {step} (earlier checkpoints are intact: "
                 f"{manager.latest_checkpoint or 'none'})"):
        return manager.save(checkpoint_number=step)


def restore_newest(checkpoint: tf.train.Checkpoint, paths: list[str], *,
                   partial: bool = False) -> str | None:
    """Restores the first of `paths` (newest first) that loads, warning about any it skips.

    `partial`: restore only what `checkpoint` tracks (e.g. the generator alone) and require those
    objects to match; otherwise everything in the file must be consumed. Returns the path used,
    or None for no paths. Raises UserError if none loads (corrupt files, another architecture).
    """
    error = None
    for path in paths:
        try:
            status = checkpoint.restore(path)
            if partial:
                status.expect_partial().assert_existing_objects_matched()
            else:
                status.assert_consumed()
            return path
        except (tf.errors.OpError, AssertionError, ValueError, IndexError, OSError) as e:
            # IndexError: TF's checkpoint reader on a truncated data file ("Read less bytes").
            error = str(e).splitlines()[0][:300]
            logging.warning("checkpoint %s cannot be restored (%s); trying the previous one", path, error)
    if paths:
        raise UserError(f"none of the {len(paths)} checkpoints in {os.path.dirname(paths[0])} "
                        f"can be restored (does it match its {CONFIG_JSON}? last error: {error})")
    return None


@contextlib.contextmanager
def precision(policy: str):
    """Temporarily sets Keras' global dtype policy ('float32' or 'bfloat16' -> mixed_bfloat16)."""
    policies = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policies[config_lib.check_choice("mixed_precision", policy)])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def checkpoint_paths(workdir: str, step: int = 0) -> list[str]:
    """Checkpoint prefixes to try, newest first (or just `step`'s). Raises UserError if none."""
    ckpt_dir = os.path.join(workdir, CKPT_DIR)
    state = tf.train.get_checkpoint_state(ckpt_dir)
    paths = list(state.all_model_checkpoint_paths)[::-1] if state else []
    if step:
        matches = [p for p in paths if p.endswith(f"ckpt-{step}")]
        if not matches:
            raise UserError(f"no checkpoint for step {step} in {ckpt_dir} "
                            f"(have: {', '.join(os.path.basename(p) for p in paths) or 'none'})")
        return matches
    if not paths:
        raise UserError(f"no checkpoint in {ckpt_dir}")
    return paths


def load_generator(spec: str, step: int = 0, raw: bool = False) -> tuple[keras.Model, Config]:
    """A float32 generator with trained weights, and its config.

    Args:
      spec: a training workdir (its latest checkpoint, or `step`), a packaged model directory
        (config.json + generator_fp16.npz, as `export --formats=fp16_weights` writes), or
        'default' (the shipped model, colorgan/pretrained).
      step: checkpoint step to load from a workdir; 0 = latest.
      raw: a workdir's raw weights even when it keeps an EMA (benchmarks/ema.py compares them).
    Returns the EMA weights for a run trained with --ema_decay (unless `raw`).
    """
    if spec == "default":
        return _load_pretrained()
    if os.path.isfile(os.path.join(spec, PRETRAINED_WEIGHTS)):
        return load_weights_fp16(spec)
    cfg = read_config(spec) if os.path.isdir(spec) else None
    if cfg is None:
        raise UserError(f"{spec} is not a training workdir (no {CONFIG_JSON})")
    with precision("float32"):
        generator = models.build_generator(cfg.model)
    # With --ema_decay the moving average of G's weights is the model (validation used it too).
    name = "ema_generator" if cfg.train.ema_decay and not raw else "generator"
    restore_newest(tf.train.Checkpoint(**{name: generator}), checkpoint_paths(spec, step),
                   partial=True)
    return generator, cfg


def save_weights_fp16(generator: keras.Model, cfg: Config, directory: str) -> list[str]:
    """Writes a packaged generator: `config.json` and its weights as float16, keyed by weight path.

    float16 halves the size (the shipped model's budget is 12 MiB) and costs the colour nothing
    measurable: weights keep 11 significant bits and inference runs in float32 after loading.
    """
    arrays = {w.path: np.asarray(w.numpy(), np.float16) for w in generator.weights}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with writing(f"writing the packaged model to {directory}"):
        return [write_atomic(os.path.join(directory, PRETRAINED_WEIGHTS), buf.getvalue()),
                write_atomic(os.path.join(directory, CONFIG_JSON), config_lib.to_json(cfg))]


def load_weights_fp16(directory: str) -> tuple[keras.Model, Config]:
    """Inverse of `save_weights_fp16`: a float32 generator and its config."""
    cfg = read_config(directory)
    weights = os.path.join(directory, PRETRAINED_WEIGHTS)
    if cfg is None or not os.path.isfile(weights):
        raise UserError(f"{directory} holds no packaged model ({CONFIG_JSON} + {PRETRAINED_WEIGHTS})")
    with precision("float32"):
        generator = models.build_generator(cfg.model)
    with np.load(weights) as arrays:
        missing = [w.path for w in generator.weights if w.path not in arrays]
        if missing or len(arrays.files) != len(generator.weights):
            raise UserError(f"{weights} does not match its config (missing: {missing[:3]})")
        for w in generator.weights:
            w.assign(arrays[w.path].astype(np.float32))
    return generator, cfg


def _load_pretrained() -> tuple[keras.Model, Config]:
    if not os.path.isfile(os.path.join(PRETRAINED_DIR, PRETRAINED_WEIGHTS)):
        raise UserError("this colorgan version ships no reference model yet; pass a training "
                        "workdir as --model")
    return load_weights_fp16(PRETRAINED_DIR)
