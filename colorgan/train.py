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

from colorgan import cli, color, config, data, distribute, metrics, models, workdir as workdir_lib
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


def _bce_with_logits(labels, logits) -> tf.Tensor:
    """Mean sigmoid cross-entropy. Not keras.losses.BinaryCrossentropy: under tf.distribute that
    divides by the number of replicas itself, and train_step does that explicitly for all losses."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.broadcast_to(tf.cast(labels, tf.float32), tf.shape(logits)), logits=logits))


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Cross-entropy on logits (the seed's sigmoid, applied stably). Returns (total, real, fake)."""
    real = _bce_with_logits(1.0 - label_smoothing, real_logits)
    fake = _bce_with_logits(0.0, fake_logits)
    return real + fake, real, fake


def generator_adversarial_loss(fake_logits) -> tf.Tensor:
    """Non-saturating GAN loss: -log D(G(x))."""
    return _bce_with_logits(1.0, fake_logits)


def target_color(batch: dict[str, tf.Tensor], output_space: str) -> tf.Tensor:
    """What G should output for a batch: Lab (l ++ ab, the seed) or ab, in model space."""
    return tf.concat([batch["l"], batch["ab"]], -1) if output_space == "lab" else batch["ab"]


# --------------------------------------------------------------------------------- the state
@dataclasses.dataclass
class TrainState:
    """Everything a run builds once; `checkpoint` tracks all of it."""
    strategy: tf.distribute.Strategy
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


def build_state(model_cfg: ModelConfig, train_cfg: TrainConfig,
                strategy: tf.distribute.Strategy | None = None) -> TrainState:
    """Models, optimizers (built now, so restores are not deferred), trackers and the checkpoint.

    Networks and optimizers live in `strategy`'s scope (default: the current strategy), with
    BatchNorm synchronised across replicas when there are several. The step counter and the loss
    trackers are local: the train step updates them with values already reduced over replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    sync = strategy.num_replicas_in_sync > 1
    discriminator = d_opt = None
    with strategy.scope():
        generator = models.build_generator(model_cfg, sync_batchnorm=sync)
        g_opt = keras.optimizers.Adam(train_cfg.learning_rate, train_cfg.beta1, train_cfg.beta2)
        g_opt.build(generator.trainable_variables)
        objects = dict(generator=generator, g_opt=g_opt)
        if train_cfg.mode == "gan":
            discriminator = models.build_discriminator(model_cfg, sync_batchnorm=sync)
            d_opt = keras.optimizers.Adam(train_cfg.d_learning_rate, train_cfg.beta1,
                                          train_cfg.beta2)
            d_opt.build(discriminator.trainable_variables)
            objects.update(discriminator=discriminator, d_opt=d_opt)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    trackers = {name: keras.metrics.Mean(name=name) for name in loss_names(train_cfg.mode)}
    # Keras does not checkpoint the dropout layers' RNG state with the model; save it explicitly
    # so a resumed run draws the same dropout masks as an uninterrupted one.
    rng = [v for v in generator.non_trainable_variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(step=step, rng=rng, **objects)
    return TrainState(strategy, generator, discriminator, g_opt, d_opt, step, trackers, checkpoint)


# ---------------------------------------------------------------------------- the train step
def make_train_step(state: TrainState, train_cfg: TrainConfig, output_space: str,
                    batch_spec: dict[str, tf.TensorSpec], *, jit_compile: bool = False):
    """One `tf.function` (fixed signature: traces once) that updates G, and D when `update_d`.

    1. Each replica (one, without a distribution strategy) colours its share of the batch
       (training=True); in GAN mode D scores real and generated colour.
    2. D loss = cross-entropy(real -> 1 - smoothing) + cross-entropy(fake -> 0).
    3. G loss = pixel loss (unet) or adversarial + pixel_weight * pixel loss (gan).
    4. Gradients of each loss / replicas, so the optimizers' cross-replica sum is the gradient of
       the global batch's mean loss.
    5. The losses are averaged over replicas. If every one is finite: each gradient goes to its
       own network only (D's when `update_d`) and the loss trackers are updated. If not, nothing
       changes: the BatchNorm statistics the forward pass moved are put back, so a bad batch
       cannot poison the model. (The decision is taken once, outside the replicas: an optimizer
       update cannot sit inside a replica's control flow.)
    6. The step counter advances either way (the data position follows it). Returns the losses
       and `finite`.

    `batch_spec`: the element spec of the (distributed) dataset the step is fed. `jit_compile`:
    XLA (slower on the 2-core CPU this was measured on; see BENCHMARKS.md).
    """
    strategy, g, d = state.strategy, state.generator, state.discriminator
    gan = train_cfg.mode == "gan"
    networks = [g, d] if gan else [g]
    stats = [v for net in networks for v in net.non_trainable_variables]
    replicas = strategy.num_replicas_in_sync

    def replica_forward(batch, update_d):
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
            scaled = {name: values[name] / replicas for name in ("g_loss", "d_loss") if name in values}
        g_grads = g_tape.gradient(scaled["g_loss"], g.trainable_variables)
        if not gan:
            return values, g_grads, []
        d_backward = lambda: d_tape.gradient(scaled["d_loss"], d.trainable_variables)  # noqa: E731
        if replicas > 1:
            # Synchronised BatchNorm's gradient is a cross-replica sum, which cannot sit inside
            # a replica's tf.cond: D's backward runs even on steps that will not apply it.
            return values, g_grads, d_backward()
        # One replica: D's backward only on steps that update D (--g_steps_per_d_step).
        d_grads = tf.cond(update_d, d_backward,
                          lambda: [tf.zeros_like(v) for v in d.trainable_variables])
        return values, g_grads, d_grads

    @tf.function(input_signature=[batch_spec, tf.TensorSpec([], tf.bool)], jit_compile=jit_compile)
    def train_step(batch, update_d):
        before = [tf.identity(v) for v in stats]
        per_replica, g_grads, d_grads = strategy.run(replica_forward, args=(batch, update_d))
        values = {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                  for name, value in per_replica.items()}
        finite = tf.reduce_all(tf.math.is_finite(tf.stack(list(values.values()))))
        if finite:
            strategy.run(lambda grads: state.g_opt.apply(grads, g.trainable_variables),
                         args=(g_grads,))
            if gan and update_d:
                strategy.run(lambda grads: state.d_opt.apply(grads, d.trainable_variables),
                             args=(d_grads,))
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
    """G on up to `batches` batches: mean ab L1 (Lab units), sRGB PSNR (dB) and colourfulness ratio.

    The colourfulness ratio (mean of G's over mean of the truth's) is the early warning for a sepia
    wash (well below 1) or oversaturation (above 1) that the losses alone do not show.
    """
    l1, psnr, colorful_pred, colorful_true = [], [], [], []
    for batch in dataset.take(batches):
        ab = models.predict_ab(generator, batch["l"])
        rgb_true = color.model_to_rgb(batch["l"], batch["ab"])
        rgb_pred = color.model_to_rgb(batch["l"], ab)
        l1.append(metrics.ab_l1(batch["ab"], ab))
        psnr.append(metrics.psnr(rgb_true, rgb_pred))
        colorful_pred.append(metrics.colorfulness(rgb_pred))
        colorful_true.append(metrics.colorfulness(rgb_true))
    mean = lambda values: float(tf.reduce_mean(tf.concat(values, 0)))  # noqa: E731
    return {"l1": mean(l1), "psnr": mean(psnr),
            "colorfulness_ratio": mean(colorful_pred) / max(mean(colorful_true), 1e-6)}


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
    generator: keras.Model  # The trained generator (on every worker).
    history: list[dict[str, float]]  # One entry per log window: {'step': s, 'g_loss': ...}.
    interrupted_by: int = 0  # Signal number if SIGINT/SIGTERM stopped the run.
    skipped: int = 0  # Batches skipped for a non-finite loss (--nonfinite=skip).


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss became NaN/inf and --nonfinite=stop: nothing of that step was applied or saved."""


def _init_generator(generator: keras.Model, spec: str, model_cfg: ModelConfig) -> None:
    source, source_cfg = workdir_lib.load_generator(spec)
    if source_cfg.model.generator_config() != model_cfg.generator_config():
        raise UserError(f"--init_from={spec} has a different generator config: "
                        f"{source_cfg.model.generator_config()} vs {model_cfg.generator_config()}")
    generator.set_weights(source.get_weights())
    logging.info("initialised the generator from %s", spec)


def train(cfg: Config, workdir: str) -> TrainResult:
    """Trains (or resumes) a run in `workdir` until `cfg.train.steps`. See the module docstring.

    Order: workdir (config guard) -> seeds -> data scan -> models and optimizers -> restore the
    newest loadable checkpoint (or --init_from) -> datasets from the restored step -> loop.
    """
    tc = cfg.train
    # First: a multi-worker strategy must be set up before TF runs any op.
    strategy = distribute.make_strategy(tc.strategy, tc.tpu)
    replica_batch = distribute.replica_batch_size(cfg.data.batch_size, strategy)
    chief = distribute.is_chief(strategy)
    resumed = workdir_lib.prepare(workdir, cfg, write=chief)
    logging.info("config (non-default values): %s", config.non_defaults(cfg))
    if strategy.num_replicas_in_sync > 1:
        logging.info("strategy %s: %d replicas, %d images each", tc.strategy,
                     strategy.num_replicas_in_sync, replica_batch)
    keras.utils.set_random_seed(tc.seed)
    if tc.deterministic:
        tf.config.experimental.enable_op_determinism()
    source = data.training_files(cfg.data)
    with workdir_lib.precision(tc.mixed_precision):
        state = build_state(cfg.model, tc, strategy)
    ckpt_dir = os.path.join(workdir, workdir_lib.CKPT_DIR)
    manager = tf.train.CheckpointManager(state.checkpoint, ckpt_dir, max_to_keep=tc.keep_checkpoints)
    restored = workdir_lib.restore_newest(state.checkpoint, manager.checkpoints[::-1])
    if restored:
        logging.info("resumed from %s (step %d)", restored, int(state.step))
    elif resumed:
        logging.warning("%s has a config but no checkpoint: starting at step 0", workdir)
    if not restored and tc.init_from:
        _init_generator(state.generator, tc.init_from, cfg.model)
    if not chief:  # Every worker saves (MultiWorkerMirroredStrategy needs all of them to).
        manager = tf.train.CheckpointManager(
            state.checkpoint, os.path.join(ckpt_dir, f".worker-{distribute.task_id(strategy)}"),
            max_to_keep=1)

    def train_input(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return data.make_train_dataset(cfg.data, source.files, tc.seed, start_step=int(state.step),
                                       shard=(ctx.input_pipeline_id, ctx.num_input_pipelines),
                                       batch_size=replica_batch)

    train_ds = strategy.distribute_datasets_from_function(train_input)
    val_ds = None
    if tc.val_every_steps and chief:
        try:
            val_ds = data.make_eval_dataset(cfg.data, cfg.data.val_split)
        except data.DataError as e:
            raise UserError(f"validation needs images ({e}); pass --val_split, a source with a "
                            "val folder or --val_fraction > 0, or --val_every_steps=0") from e
    sample_source = val_ds if val_ds is not None else data.make_train_dataset(
        cfg.data, source.files, tc.seed)
    loop = _Loop(state=state, manager=manager, tc=tc, workdir=workdir, val_ds=val_ds,
                 train_step=make_train_step(state, tc, cfg.model.output_space, train_ds.element_spec),
                 sample_batch=next(iter(sample_source)), batch_size=cfg.data.batch_size,
                 chief=chief)
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
    batch_size: int  # The global batch.
    chief: bool = True  # Only the chief writes logs, summaries and samples, and validates.

    def __post_init__(self):
        def writer(sub):
            if not self.chief:
                return tf.summary.create_noop_writer()
            return tf.summary.create_file_writer(os.path.join(self.workdir, sub))
        self.writers = {"train": writer(workdir_lib.TB_TRAIN), "val": writer(workdir_lib.TB_VAL)}

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
        return TrainResult(step=step, generator=self.state.generator, history=history,
                           interrupted_by=stop.signum, skipped=skipped)

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
        if step % tc.sample_every_steps == 0 and self.chief:
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
        if self.chief:
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
        if not self.chief:  # A worker's checkpoints only existed for the collective save.
            tf.io.gfile.rmtree(self.manager.directory)
        elif not os.path.exists(os.path.join(self.workdir, workdir_lib.SAMPLES_DIR,
                                             _sample_name(step))):
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
