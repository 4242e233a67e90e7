"""The training state (networks, optimizers, EMA, checkpoint) and the one compiled train step.

`build_state` makes everything a run holds once; `make_train_step` returns the `tf.function` that
colorgan.train's loop calls per batch: one forward pass, the losses of colorgan.losses, one update
of G (and of D in GAN mode), each on its own weights, under any tf.distribute strategy.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from colorgan import hints, losses, models
from colorgan.config import ModelConfig, TrainConfig, check_choice


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
    ema_generator: keras.Model | None = None  # --ema_decay: the average of G's weights

    @property
    def inference_generator(self) -> keras.Model:
        """The generator that validation, samples and exports use: the EMA one when kept."""
        return self.ema_generator if self.ema_generator is not None else self.generator


def learning_rate(rate: float, train_cfg: TrainConfig, updates_per_step: float = 1.0):
    """An optimizer's learning rate: constant, or a cosine decay by --lr_schedule over
    lr_decay_steps run steps (`updates_per_step`: how often this optimizer steps per run step,
    1 / g_steps_per_d_step for D: Keras schedules count the optimizer's own updates)."""
    if train_cfg.lr_schedule == "constant":
        return rate
    if train_cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            rate, max(1, round(train_cfg.lr_decay_steps * updates_per_step)),
            alpha=train_cfg.lr_final_fraction)
    raise ValueError(f"unknown lr_schedule {train_cfg.lr_schedule!r}")


def build_state(model_cfg: ModelConfig, train_cfg: TrainConfig,
                strategy: tf.distribute.Strategy | None = None) -> TrainState:
    """Models, optimizers (built now, so restores are not deferred), trackers and the checkpoint.

    Networks and optimizers live in `strategy`'s scope (default: the current strategy), with
    BatchNorm synchronised across replicas when there are several. The step counter and the loss
    trackers are local: the train step updates them with values already reduced over replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    sync = strategy.num_replicas_in_sync > 1
    discriminator = d_opt = ema = None
    with strategy.scope():
        generator = models.build_generator(model_cfg, sync_batchnorm=sync)
        g_opt = keras.optimizers.Adam(learning_rate(train_cfg.learning_rate, train_cfg),
                                      train_cfg.beta1, train_cfg.beta2)
        g_opt.build(generator.trainable_variables)
        objects = dict(generator=generator, g_opt=g_opt)
        if train_cfg.ema_decay:
            ema = models.build_generator(model_cfg, sync_batchnorm=sync)
            ema.set_weights(generator.get_weights())
            objects.update(ema_generator=ema)
        if train_cfg.mode == "gan":
            discriminator = models.build_discriminator(model_cfg, sync_batchnorm=sync)
            d_opt = keras.optimizers.Adam(
                learning_rate(train_cfg.d_learning_rate, train_cfg, 1 / train_cfg.g_steps_per_d_step),
                train_cfg.beta1, train_cfg.beta2)
            d_opt.build(discriminator.trainable_variables)
            objects.update(discriminator=discriminator, d_opt=d_opt)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    trackers = {name: keras.metrics.Mean(name=name)
                for name in losses.loss_names(model_cfg, train_cfg)}
    # Keras does not checkpoint the dropout layers' RNG state with the model; save it explicitly
    # so a resumed run draws the same dropout masks as an uninterrupted one.
    rng = [v for v in generator.non_trainable_variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(step=step, rng=rng, **objects)
    return TrainState(strategy, generator, discriminator, g_opt, d_opt, step, trackers, checkpoint,
                      ema)


def update_ema(ema: keras.Model, generator: keras.Model, decay: float, step: tf.Tensor) -> None:
    """ema <- d * ema + (1 - d) * G for trainable weights, with d = min(decay, (1 + t) / (10 + t))
    (the usual warm-up, so early averages are not dominated by the random init); BatchNorm
    statistics are copied (they are running averages already)."""
    t = tf.cast(step, tf.float32)
    d = tf.minimum(decay, (1.0 + t) / (10.0 + t))
    for e, v in zip(ema.trainable_variables, generator.trainable_variables):
        e.assign(d * e + (1.0 - d) * v)
    for e, v in zip(ema.non_trainable_variables, generator.non_trainable_variables):
        e.assign(v)


# ---------------------------------------------------------------------------- the train step
def make_train_step(state: TrainState, model_cfg: ModelConfig, train_cfg: TrainConfig,
                    batch_spec: dict[str, tf.TensorSpec], *, class_weights=None,
                    jit_compile: bool = False):
    """One `tf.function` (fixed signature: traces once) that updates G, and D when `update_d`.

    1. Each replica (one, without a distribution strategy) colours its share of the batch
       (training=True; a hint model with hints simulated from the batch's own colour, seeded
       by the step); in GAN mode D scores real and generated colour.
    2. D loss = cross-entropy(real -> 1 - smoothing) + cross-entropy(fake -> 0).
    3. G loss = reconstruction (pixel and/or classification) for unet, or adversarial +
       pixel_weight * reconstruction (gan): losses.compute_losses, with `class_weights` (the
       classification head's rebalancing).
    4. Gradients of each loss / replicas, so the optimizers' cross-replica sum is the gradient of
       the global batch's mean loss.
    5. The losses are averaged over replicas. If every one is finite: each gradient goes to its
       own network only (D's when `update_d`) and the loss trackers are updated. If not, nothing
       changes: the BatchNorm statistics the forward pass moved are put back, so a bad batch
       cannot poison the model. (The decision is taken once, outside the replicas: an optimizer
       update cannot sit inside a replica's control flow.)
    6. With --ema_decay, the EMA generator moves towards G (update_ema) after G's update.
    7. The step counter advances either way (the data position follows it). Returns the losses
       and `finite`.

    `batch_spec`: the element spec of the (distributed) dataset the step is fed. `jit_compile`:
    XLA (slower on the 2-core CPU this was measured on; see BENCHMARKS.md).
    """
    strategy, g, d = state.strategy, state.generator, state.discriminator
    gan = check_choice("mode", train_cfg.mode) == "gan"
    networks = [g, d] if gan else [g]
    stats = [v for net in networks for v in net.non_trainable_variables]
    replicas = strategy.num_replicas_in_sync

    def simulated_hints(batch):
        """--hint_inputs: hints drawn from the batch's own colour (seeded by the step and the
        replica, so a resumed run draws the same); None otherwise."""
        if not model_cfg.hint_inputs:
            return None
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.cast(state.step, tf.int32) + train_cfg.seed * 1_000_003,
                         tf.cast(replica, tf.int32)])
        return hints.simulate(batch["ab"], seed, free_fraction=train_cfg.hint_free_fraction)

    def replica_forward(batch, update_d):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            hint_map = simulated_hints(batch)
            fake = g(models.generator_inputs(model_cfg, batch["l"], hint_map), training=True)
            real_logits = fake_logits = None
            if gan:
                real = losses.target_color(batch, model_cfg.output_space)
                real_logits = d([batch["l"], real], training=True)
                fake_logits = d([batch["l"], fake], training=True)
            values = losses.compute_losses(fake, real_logits, fake_logits, batch, model_cfg,
                                           train_cfg, class_weights, hints.hinted(hint_map))
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
            if state.ema_generator is not None:
                update_ema(state.ema_generator, g, train_cfg.ema_decay, state.step)
            for name, value in values.items():
                state.trackers[name].update_state(value)
        else:
            for v, old in zip(stats, before):
                v.assign(old)
        state.step.assign_add(1)
        return {**values, "finite": finite}

    return train_step
