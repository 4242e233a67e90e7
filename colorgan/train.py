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

from colorgan import bins, cli, color, config, data, distribute, metrics, models, sources
from colorgan import workdir as workdir_lib
from colorgan.step import TrainState, build_state, make_train_step
from colorgan.config import Config, ModelConfig, TrainConfig
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("train")
SAMPLE_IMAGES = 8  # Rows in a sample grid.


# ------------------------------------------------------------------ validation and samples
def colorize_batch(generator: keras.Model, l: tf.Tensor, cfg: ModelConfig) -> tf.Tensor:
    """sRGB (N, H, W, 3) from model-space `l`: the input's own L with G's ab (inference path)."""
    return color.model_to_rgb(l, models.predict_ab(generator, l, cfg))


def validate(generator: keras.Model, dataset: tf.data.Dataset, batches: int,
             cfg: ModelConfig) -> dict[str, float]:
    """G on up to `batches` batches: mean ab L1 (Lab units), sRGB PSNR (dB) and colourfulness ratio.

    The colourfulness ratio (mean of G's over mean of the truth's) is the early warning for a sepia
    wash (well below 1) or oversaturation (above 1) that the losses alone do not show.
    """
    l1, psnr, colorful_pred, colorful_true = [], [], [], []
    for batch in dataset.take(batches):
        ab = models.predict_ab(generator, batch["l"], cfg)
        rgb_true = color.model_to_rgb(batch["l"], batch["ab"])
        rgb_pred = color.model_to_rgb(batch["l"], ab)
        l1.append(metrics.ab_l1(batch["ab"], ab))
        psnr.append(metrics.psnr(rgb_true, rgb_pred))
        colorful_pred.append(metrics.colorfulness(rgb_pred))
        colorful_true.append(metrics.colorfulness(rgb_true))
    mean = lambda values: float(tf.reduce_mean(tf.concat(values, 0)))  # noqa: E731
    return {"l1": mean(l1), "psnr": mean(psnr),
            "colorfulness_ratio": mean(colorful_pred) / max(mean(colorful_true), 1e-6)}


def sample_grid(generator: keras.Model, batch: dict[str, tf.Tensor], cfg: ModelConfig) -> tf.Tensor:
    """uint8 image (N*H, 3*W, 3): one row per image, gray | prediction | truth."""
    l = batch["l"][:SAMPLE_IMAGES]
    gray = color.l_to_gray_rgb(l)
    truth = color.model_to_rgb(l, batch["ab"][:SAMPLE_IMAGES])
    rows = tf.concat([gray, colorize_batch(generator, l, cfg), truth], axis=2)  # (N, H, 3W, 3)
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
    """Copies --init_from's generator weights. An automatic model may start a hint model
    (--hint_inputs, --hint_shortcut), and a hint model one with the shortcut: every layer is
    copied by name and the new hint layers keep their start, which adds nothing without hints
    (the enc1 branch is zero; the shortcut sees no hint), so the automatic mode starts as
    exactly the --init_from model."""
    source, source_cfg = workdir_lib.load_generator(spec)
    theirs = source_cfg.model.generator_config()
    ours = model_cfg.generator_config()
    hint_fields = ("hint_inputs", "hint_shortcut")  # an automatic model may start a hint model
    if dataclasses.replace(theirs, **{f: getattr(ours, f) for f in hint_fields}) != ours or any(
            getattr(theirs, f) and not getattr(ours, f) for f in hint_fields):
        raise UserError(f"--init_from={spec} has a different generator config: {theirs} vs "
                        f"{ours}")
    if theirs == ours:
        generator.set_weights(source.get_weights())
    else:
        models.copy_weights_by_name(source, generator)
        logging.info("new hint layers: without hints this is %s's model, exactly", spec)
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
        if state.ema_generator is not None:
            state.ema_generator.set_weights(state.generator.get_weights())
    if not chief:  # Every worker saves (MultiWorkerMirroredStrategy needs all of them to).
        manager = tf.train.CheckpointManager(
            state.checkpoint, os.path.join(ckpt_dir, f".worker-{distribute.task_id(strategy)}"),
            max_to_keep=1)

    def train_input(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return data.make_train_dataset(cfg.data, source.groups, tc.seed, start_step=int(state.step),
                                       shard=(ctx.input_pipeline_id, ctx.num_input_pipelines),
                                       batch_size=replica_batch)

    train_ds = strategy.distribute_datasets_from_function(train_input)
    val_ds = None
    if tc.val_every_steps and chief:
        try:
            val_ds = data.make_eval_dataset(cfg.data, cfg.data.val_split)
        except sources.DataError as e:
            raise UserError(f"validation needs images ({e}); pass --val_split, a source with a "
                            "val folder or --val_fraction > 0, or --val_every_steps=0") from e
    sample_source = val_ds if val_ds is not None else data.make_train_dataset(
        cfg.data, source.groups, tc.seed)
    class_weights = None
    if cfg.model.head == "classification" and tc.rebalance_lambda < 1:
        class_weights = bins.rebalance_weights(data.color_prior(cfg.data, source.groups),
                                               tc.rebalance_lambda)
        logging.info("class rebalancing (lambda %.2f): bin weights %.2f..%.2f%s",
                     tc.rebalance_lambda, float(tf.reduce_min(class_weights)),
                     float(tf.reduce_max(class_weights)),
                     "" if tc.hinted_rebalance or not cfg.model.hint_inputs
                     else "; hint-free images only (--nohinted_rebalance)")
    step_fn = make_train_step(state, cfg.model, tc, train_ds.element_spec,
                              class_weights=class_weights)
    loop = _Loop(state=state, manager=manager, tc=tc, model_cfg=cfg.model, workdir=workdir,
                 val_ds=val_ds, train_step=step_fn,
                 sample_batch=next(iter(sample_source)), batch_size=cfg.data.batch_size,
                 chief=chief)
    return loop.run(iter(train_ds))


@dataclasses.dataclass
class _Loop:
    """The plain-Python training loop and its periodic work (logs, validation, samples, saves)."""
    state: TrainState
    manager: tf.train.CheckpointManager
    tc: TrainConfig
    model_cfg: ModelConfig
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
        self.window = (step, time.perf_counter(), time.process_time())
        # Cumulative training time over every session of this run (resumes included): what
        # quality-per-CPU-time comparisons (benchmarks/quality.py) put on their x axis.
        self.clock = workdir_lib.logged_clock(self.workdir, step)
        bar = tqdm.tqdm(total=tc.steps, initial=step, unit="step", disable=None, dynamic_ncols=True)
        try:
            while step < tc.steps and not stop.signum and not self._out_of_time():
                out = self.train_step(next(batches), tf.constant(step % tc.g_steps_per_d_step == 0))
                step += 1
                bar.update(1)
                if not bool(out["finite"]):
                    skipped += 1
                    self._non_finite(step, out)
                history += self._periodic(step, bar)
            history += self._finish(step)
        finally:
            bar.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            for writer in self.writers.values():
                writer.close()
        if stop.signum:
            logging.warning("stopped by signal %d at step %d; checkpoint saved, re-run to resume",
                            stop.signum, step)
        return TrainResult(step=step, generator=self.state.inference_generator, history=history,
                           interrupted_by=stop.signum, skipped=skipped)

    def _out_of_time(self) -> bool:
        """--cpu_minutes: the run's cumulative training CPU time (all sessions) has reached it."""
        if not self.tc.cpu_minutes:
            return False
        spent = self.clock["cpu_s"] + time.process_time() - self.window[2]
        if spent < 60 * self.tc.cpu_minutes:
            return False
        logging.info("budget reached: %.1f of %g CPU-minutes of training", spent / 60,
                     self.tc.cpu_minutes)
        return True

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
            scores = validate(self.state.inference_generator, self.val_ds, tc.val_batches,
                              self.model_cfg)
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
        start, t0, c0 = self.window
        self.window = (step, time.perf_counter(), time.process_time())
        wall, cpu = self.window[1] - t0, self.window[2] - c0
        self.clock = {"train_s": self.clock["train_s"] + wall, "cpu_s": self.clock["cpu_s"] + cpu}
        trackers = self.state.trackers
        if not any(float(t.count) for t in trackers.values()):
            return None
        values = {name: float(t.result()) for name, t in trackers.items()}
        for t in trackers.values():
            t.reset_state()
        values["images_per_s"] = (step - start) * self.batch_size / wall
        values.update(self.clock)
        with self.writers["train"].as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        entry = {"step": step, **values}
        if self.chief:
            workdir_lib.append_log(self.workdir, {**entry, "split": "train"})
        logging.info("step %d: %s", step, _fmt(entry))
        return entry

    def _write_samples(self, step: int) -> None:
        grid = sample_grid(self.state.inference_generator, self.sample_batch, self.model_cfg)
        path = os.path.join(self.workdir, workdir_lib.SAMPLES_DIR, _sample_name(step))
        with workdir_lib.writing(f"writing {path}"):
            write_atomic(path, tf.io.encode_png(grid).numpy())
        with self.writers["train"].as_default(step=step):
            tf.summary.image("gray_pred_truth", grid[tf.newaxis])

    def _finish(self, step: int) -> list[dict[str, float]]:
        """The end of a run (a signal, the CPU budget): the last partial log window (so the next
        session's clock starts from here), a checkpoint and a sample grid for `step`, flushed
        logs. Returns the partial window's entry, if there is one."""
        pending = self.window[0] != step
        entry = self._log_window(step) if pending else None
        if pending and entry is None and self.chief:  # every step of the window was skipped
            workdir_lib.append_log(self.workdir, {"step": step, "split": "train", **self.clock})
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
        return [entry] if entry else []


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
