"""Train the U-Net baseline (`--mode=unet`) or the conditional GAN (`--mode=gan`).

Example (the bundled photos, a small model, a few minutes on 2 CPU cores):

    python -m colorgan.train --recipe=quickstart --workdir=/tmp/colorgan-quickstart

Recipes are colorgan/configs/*.flags (`--recipe=NAME` works from any directory, `--flagfile=PATH`
for your own); flags given after them win. Re-running the same command resumes from the last
checkpoint in --workdir; only run-length and logging flags (--steps, --log_every_steps, ...) may
change between runs. See README.md for the workdir layout.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

from absl import flags, logging
import keras
import tensorflow as tf
import tqdm

from colorgan import cli, color, config, data, metrics, models, workdir as workdir_lib
from colorgan.config import Config, ModelConfig, TrainConfig
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(config)
SAMPLE_IMAGES = 8  # Rows in a sample grid.


# ------------------------------------------------------------------------------------ losses
def pixel_loss(kind: str, target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Mean over all pixels and channels: 'l2' (the seed's Euclidean loss) or 'l1' (pix2pix)."""
    diff = tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)
    return tf.reduce_mean(tf.square(diff) if kind == "l2" else tf.abs(diff))


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Cross-entropy on logits (the seed's sigmoid, applied stably). Returns (total, real, fake)."""
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    real = bce(tf.fill(tf.shape(real_logits), 1.0 - label_smoothing), real_logits)
    fake = bce(tf.zeros_like(fake_logits), fake_logits)
    return real + fake, real, fake


def generator_adversarial_loss(fake_logits) -> tf.Tensor:
    """Non-saturating GAN loss: -log D(G(x))."""
    return keras.losses.BinaryCrossentropy(from_logits=True)(tf.ones_like(fake_logits), fake_logits)


def target_color(batch: dict[str, tf.Tensor], output_space: str) -> tf.Tensor:
    """What G should output for a batch: Lab (l ++ ab, the seed) or ab, in model space."""
    return tf.concat([batch["l"], batch["ab"]], -1) if output_space == "lab" else batch["ab"]


# --------------------------------------------------------------------------------- the state
@dataclasses.dataclass
class TrainState:
    """Everything a run builds once; `checkpoint` tracks all of it."""
    generator: keras.Model
    discriminator: keras.Model | None
    g_opt: keras.optimizers.Optimizer
    d_opt: keras.optimizers.Optimizer | None
    step: tf.Variable
    trackers: dict[str, keras.metrics.Mean]
    checkpoint: tf.train.Checkpoint


def loss_names(mode: str) -> tuple[str, ...]:
    if mode == "unet":
        return ("g_loss",)
    return ("g_loss", "g_adv", "g_pixel", "d_loss", "d_real", "d_fake", "d_acc")


def build_state(model_cfg: ModelConfig, train_cfg: TrainConfig) -> TrainState:
    """Models, optimizers (built now, so restores are not deferred), trackers and the checkpoint."""
    generator = models.build_generator(model_cfg)
    g_opt = keras.optimizers.Adam(train_cfg.learning_rate, train_cfg.beta1, train_cfg.beta2)
    g_opt.build(generator.trainable_variables)
    discriminator = d_opt = None
    objects = dict(generator=generator, g_opt=g_opt)
    if train_cfg.mode == "gan":
        discriminator = models.build_discriminator(model_cfg)
        d_opt = keras.optimizers.Adam(train_cfg.d_learning_rate, train_cfg.beta1, train_cfg.beta2)
        d_opt.build(discriminator.trainable_variables)
        objects.update(discriminator=discriminator, d_opt=d_opt)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    trackers = {name: keras.metrics.Mean(name=name) for name in loss_names(train_cfg.mode)}
    # Keras does not checkpoint the dropout layers' RNG state with the model; save it explicitly
    # so a resumed run draws the same dropout masks as an uninterrupted one.
    rng = [v for v in generator.non_trainable_variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(step=step, rng=rng, **objects)
    return TrainState(generator, discriminator, g_opt, d_opt, step, trackers, checkpoint)


# ---------------------------------------------------------------------------- the train step
def make_train_step(state: TrainState, train_cfg: TrainConfig, output_space: str,
                    batch_spec: dict[str, tf.TensorSpec]):
    """One `tf.function` (fixed signature: traces once) that updates G, and D when `update_d`.

    1. G colours the batch (training=True); in GAN mode D scores real and generated colour.
    2. D loss = cross-entropy(real -> 1 - smoothing) + cross-entropy(fake -> 0).
    3. G loss = pixel loss (unet) or adversarial + pixel_weight * pixel loss (gan).
    4. If every loss is finite: each gradient goes to its own network only (D's when `update_d`)
       and the loss trackers are updated. If not, nothing changes: the BatchNorm statistics the
       forward pass moved are put back, so a bad batch cannot poison the model.
    5. The step counter advances either way (the data position follows it). Returns the losses
       and `finite`.
    """
    g, d = state.generator, state.discriminator
    gan = train_cfg.mode == "gan"
    networks = [g, d] if gan else [g]
    stats = [v for net in networks for v in net.non_trainable_variables]

    @tf.function(input_signature=[batch_spec, tf.TensorSpec([], tf.bool)])
    def train_step(batch, update_d):
        before = [tf.identity(v) for v in stats]
        target = target_color(batch, output_space)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = g(batch["l"], training=True)
            g_pixel = pixel_loss(train_cfg.pixel_loss, target, fake)
            values = {"g_loss": g_pixel}
            if gan:
                real_logits = d([batch["l"], target], training=True)
                fake_logits = d([batch["l"], fake], training=True)
                d_loss, d_real, d_fake = discriminator_loss(real_logits, fake_logits,
                                                            train_cfg.label_smoothing)
                g_adv = generator_adversarial_loss(fake_logits)
                d_acc = 0.5 * (tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
                               + tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32)))
                values = dict(g_loss=g_adv + train_cfg.pixel_weight * g_pixel, g_adv=g_adv,
                              g_pixel=g_pixel, d_loss=d_loss, d_real=d_real, d_fake=d_fake,
                              d_acc=d_acc)
        finite = tf.reduce_all(tf.math.is_finite(tf.stack(list(values.values()))))
        if finite:
            g_grads = g_tape.gradient(values["g_loss"], g.trainable_variables)
            state.g_opt.apply(g_grads, g.trainable_variables)
            if gan and update_d:
                d_grads = d_tape.gradient(values["d_loss"], d.trainable_variables)
                state.d_opt.apply(d_grads, d.trainable_variables)
            for name, value in values.items():
                state.trackers[name].update_state(value)
        else:
            for v, old in zip(stats, before):
                v.assign(old)
        state.step.assign_add(1)
        return {**values, "finite": finite}

    return train_step


# ------------------------------------------------------------------ validation and samples
def colorize_batch(generator: keras.Model, l: tf.Tensor) -> tf.Tensor:
    """sRGB (N, H, W, 3) from model-space `l`: the input's own L with G's ab (inference path)."""
    return color.model_to_rgb(l, models.predict_ab(generator, l))


def validate(generator: keras.Model, dataset: tf.data.Dataset, batches: int) -> dict[str, float]:
    """Mean ab L1 (Lab units) and sRGB PSNR (dB) of G on up to `batches` batches."""
    l1, psnr = [], []
    for batch in dataset.take(batches):
        ab = models.predict_ab(generator, batch["l"])
        l1.append(metrics.ab_l1(batch["ab"], ab))
        psnr.append(metrics.psnr(color.model_to_rgb(batch["l"], batch["ab"]),
                                 color.model_to_rgb(batch["l"], ab)))
    return {"l1": float(tf.reduce_mean(tf.concat(l1, 0))),
            "psnr": float(tf.reduce_mean(tf.concat(psnr, 0)))}


def sample_grid(generator: keras.Model, batch: dict[str, tf.Tensor]) -> tf.Tensor:
    """uint8 image (N*H, 3*W, 3): one row per image, gray | prediction | truth."""
    l = batch["l"][:SAMPLE_IMAGES]
    gray = color.l_to_gray_rgb(l)
    truth = color.model_to_rgb(l, batch["ab"][:SAMPLE_IMAGES])
    rows = tf.concat([gray, colorize_batch(generator, l), truth], axis=2)  # (N, H, 3W, 3)
    grid = tf.reshape(rows, [-1, tf.shape(rows)[2], 3])
    return color.to_uint8(grid)


# ------------------------------------------------------------------------------- the loop
class _StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save a checkpoint before exiting."""

    def __init__(self):
        self.signum = 0

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _: setattr(self, "signum", signum))
        return previous


@dataclasses.dataclass
class TrainResult:
    step: int
    history: list[dict[str, float]]  # One entry per log window: {'step': s, 'g_loss': ...}.
    interrupted_by: int = 0  # Signal number if SIGINT/SIGTERM stopped the run.
    skipped: int = 0  # Batches skipped for a non-finite loss (--nonfinite=skip).


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss became NaN/inf and --nonfinite=stop: nothing of that step was applied or saved."""


def _init_generator(generator: keras.Model, spec: str, model_cfg: ModelConfig) -> None:
    source, source_cfg = workdir_lib.load_generator(spec)
    if source_cfg.model != model_cfg:
        raise UserError(f"--init_from={spec} has a different model config: "
                        f"{source_cfg.model} vs {model_cfg}")
    generator.set_weights(source.get_weights())
    logging.info("initialised the generator from %s", spec)


def train(cfg: Config, workdir: str) -> TrainResult:
    """Trains (or resumes) a run in `workdir` until `cfg.train.steps`. See the module docstring.

    Order: workdir (config guard) -> seeds -> data scan -> models and optimizers -> restore the
    newest loadable checkpoint (or --init_from) -> datasets from the restored step -> loop.
    """
    tc = cfg.train
    resumed = workdir_lib.prepare(workdir, cfg)
    logging.info("config (non-default values): %s", config.non_defaults(cfg))
    keras.utils.set_random_seed(tc.seed)
    if tc.deterministic:
        tf.config.experimental.enable_op_determinism()
    source = data.training_files(cfg.data)
    with workdir_lib.precision(tc.mixed_precision):
        state = build_state(cfg.model, tc)
    manager = tf.train.CheckpointManager(state.checkpoint, os.path.join(workdir, workdir_lib.CKPT_DIR),
                                         max_to_keep=tc.keep_checkpoints)
    restored = workdir_lib.restore_newest(state.checkpoint, manager.checkpoints[::-1])
    if restored:
        logging.info("resumed from %s (step %d)", restored, int(state.step))
    elif resumed:
        logging.warning("%s has a config but no checkpoint: starting at step 0", workdir)
    if not restored and tc.init_from:
        _init_generator(state.generator, tc.init_from, cfg.model)
    train_ds = data.make_train_dataset(cfg.data, source.files, tc.seed, start_step=int(state.step))
    val_ds = None
    if tc.val_every_steps:
        try:
            val_ds = data.make_eval_dataset(cfg.data, cfg.data.val_split)
        except data.DataError as e:
            raise UserError(f"validation needs images ({e}); pass --val_split, a source with a "
                            "val folder or --val_fraction > 0, or --val_every_steps=0") from e
    loop = _Loop(state=state, manager=manager, tc=tc, workdir=workdir, val_ds=val_ds,
                 train_step=make_train_step(state, tc, cfg.model.output_space, train_ds.element_spec),
                 sample_batch=next(iter(val_ds if val_ds is not None else train_ds)),
                 batch_size=cfg.data.batch_size)
    return loop.run(iter(train_ds))


@dataclasses.dataclass
class _Loop:
    """The plain-Python training loop and its periodic work (logs, validation, samples, saves)."""
    state: TrainState
    manager: tf.train.CheckpointManager
    tc: TrainConfig
    workdir: str
    val_ds: tf.data.Dataset | None
    train_step: object
    sample_batch: dict
    batch_size: int

    def __post_init__(self):
        self.writers = {k: tf.summary.create_file_writer(os.path.join(self.workdir, sub))
                        for k, sub in (("train", workdir_lib.TB_TRAIN), ("val", workdir_lib.TB_VAL))}

    def run(self, batches) -> TrainResult:
        tc, step = self.tc, int(self.state.step)
        stop, history, skipped = _StopFlag(), [], 0
        previous_handlers = stop.install()
        self.window = (step, time.perf_counter())
        bar = tqdm.tqdm(total=tc.steps, initial=step, unit="step", disable=None, dynamic_ncols=True)
        try:
            while step < tc.steps and not stop.signum:
                out = self.train_step(next(batches), tf.constant(step % tc.g_steps_per_d_step == 0))
                step += 1
                bar.update(1)
                if not bool(out["finite"]):
                    skipped += 1
                    self._non_finite(step, out)
                history += self._periodic(step, bar)
            self._finish(step)
        finally:
            bar.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            for writer in self.writers.values():
                writer.close()
        if stop.signum:
            logging.warning("stopped by signal %d at step %d; checkpoint saved, re-run to resume",
                            stop.signum, step)
        return TrainResult(step=step, history=history, interrupted_by=stop.signum, skipped=skipped)

    def _non_finite(self, step: int, out: dict) -> None:
        values = _fmt({k: float(v) for k, v in out.items() if k != "finite"})
        if self.tc.nonfinite == "stop":
            raise NonFiniteLossError(
                f"non-finite loss at step {step} ({values}); nothing of it was applied and the last "
                f"checkpoint ({self.manager.latest_checkpoint or 'none'}) is intact. Lower "
                "--learning_rate, or pass --nonfinite=skip to skip such batches")
        logging.warning("step %d: non-finite loss (%s); batch skipped", step, values)

    def _periodic(self, step: int, bar) -> list[dict[str, float]]:
        tc, logged = self.tc, []
        if step % tc.log_every_steps == 0 or step == tc.steps:
            entry = self._log_window(step)
            if entry:
                bar.set_postfix(g_loss=f"{entry['g_loss']:.4f}", img_s=f"{entry['images_per_s']:.1f}")
                logged.append(entry)
        if self.val_ds is not None and tc.val_every_steps and step % tc.val_every_steps == 0:
            scores = validate(self.state.generator, self.val_ds, tc.val_batches)
            with self.writers["val"].as_default(step=step):
                for name, value in scores.items():
                    tf.summary.scalar(name, value)
            workdir_lib.append_log(self.workdir, {"step": step, "split": "val", **scores})
            logging.info("step %d validation: %s", step, _fmt(scores))
        if step % tc.sample_every_steps == 0:
            self._write_samples(step)
        if step % tc.ckpt_every_steps == 0:
            workdir_lib.save_checkpoint(self.manager, step)
        return logged

    def _log_window(self, step: int) -> dict[str, float] | None:
        """Scalars of the steps since the last log (None if every one was skipped)."""
        start, t0 = self.window
        self.window = (step, time.perf_counter())
        trackers = self.state.trackers
        if not any(float(t.count) for t in trackers.values()):
            return None
        values = {name: float(t.result()) for name, t in trackers.items()}
        for t in trackers.values():
            t.reset_state()
        values["images_per_s"] = (step - start) * self.batch_size / (time.perf_counter() - t0)
        with self.writers["train"].as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        entry = {"step": step, **values}
        workdir_lib.append_log(self.workdir, {**entry, "split": "train"})
        logging.info("step %d: %s", step, _fmt(entry))
        return entry

    def _write_samples(self, step: int) -> None:
        grid = sample_grid(self.state.generator, self.sample_batch)
        path = os.path.join(self.workdir, workdir_lib.SAMPLES_DIR, _sample_name(step))
        with workdir_lib.writing(f"writing {path}"):
            write_atomic(path, tf.io.encode_png(grid).numpy())
        with self.writers["train"].as_default(step=step):
            tf.summary.image("gray_pred_truth", grid[tf.newaxis])

    def _finish(self, step: int) -> None:
        """The end of a run (or a signal): a checkpoint and a sample grid for `step`, flushed logs."""
        latest = self.manager.latest_checkpoint
        if latest is None or not latest.endswith(f"-{step}"):
            workdir_lib.save_checkpoint(self.manager, step)
        if not os.path.exists(os.path.join(self.workdir, workdir_lib.SAMPLES_DIR, _sample_name(step))):
            self._write_samples(step)
        for writer in self.writers.values():
            writer.flush()


def _sample_name(step: int) -> str:
    return f"step_{step:07d}.png"


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k != "step")


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("workdir",))
    result = train(cli.config_from_flags(FLAGS), FLAGS.workdir)
    if result.interrupted_by:
        return 128 + result.interrupted_by
    logging.info("done: step %d, checkpoints in %s", result.step,
                 os.path.join(FLAGS.workdir, workdir_lib.CKPT_DIR))
    return 0


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
