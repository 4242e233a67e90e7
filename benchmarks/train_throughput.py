"""Train-step throughput: colorgan's step against a plain pix2pix-tutorial step, fp32/bf16, XLA.

    python benchmarks/train_throughput.py --modes=unet,gan --sizes=32,64,128,256 --jit

Models: colorgan's model flags at their defaults, with image_size set per --sizes: the paper's
fixed width (base_filters=64, max_filters=512), depth=0 (stride-2 blocks down to a 1x1
bottleneck: 5 blocks at 32 px, 8 at 256 px), Lab output, transposed-conv upsampling, the DCGAN
discriminator. So the width is fixed and the depth follows the size, as in the paper. Any model
flag (--base_filters, --upsample, --discriminator, ...) changes it, or --preset takes a preset of
colorgan.models (its depth is kept: every size must be a multiple of 2**depth).

Variants per (mode, size), all on the same Keras models from colorgan.models:
  plain_fp32  the TensorFlow pix2pix tutorial's step: two GradientTapes, two keras Adam
              optimizers, optimizer.apply_gradients, one @tf.function, no non-finite guard;
              colorgan's pixel loss, BinaryCrossentropy(from_logits=True) for D and adversarial.
  plain_bf16  the same under the mixed_bfloat16 policy (colorgan.workdir.precision).
  ours_fp32   step.build_state + step.make_train_step (guard, BN rollback, trackers).
  ours_bf16   the same in bfloat16.
  *_xla       with --jit: each variant again under tf.function(jit_compile=True) (ours:
              make_train_step(..., jit_compile=True)).
Losses and optimiser settings come from colorgan's train flags (--pixel_loss, --pixel_weight,
--learning_rate, ...; --helpfull lists them) for both implementations; both update D every step. Each step sees one constant in-memory batch
(l, ab from data.to_example of a smooth synthetic image): this times the step, not the input.

FLOPs are counted analytically from the Keras layers (see `forward_flops`); GFLOP/s is that count
times images/s, and its share of the matmul peak (--peak_gflops_*, or --measure_peak).
"""

from __future__ import annotations

import dataclasses
import gc
import time

from absl import app, flags, logging
import keras
import tensorflow as tf

import common
from colorgan import cli, data, losses, models, workdir
from colorgan import step as step_lib
from colorgan.config import ModelConfig, TrainConfig

FLAGS = flags.FLAGS
NAME = "train_throughput"
BASE_VARIANTS = ("plain_fp32", "plain_bf16", "ours_fp32", "ours_bf16")
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}
# A square matmul this large runs at the CPU's peak rate (2 * n^3 FLOPs per call).
PEAK_MATMUL_SIZE = 2048
PEAK_MATMUL_CALLS = 4

flags.DEFINE_list("modes", ["unet", "gan"], "Training modes to time: unet and/or gan.")
flags.DEFINE_list("sizes", ["32", "64", "128", "256"], "Image sizes (px, square) to time.")
flags.DEFINE_list("variants", list(BASE_VARIANTS), "Step variants (see the module docstring); "
                  "plain_fp32 and plain at each chosen precision are always added as baselines.")
flags.DEFINE_bool("jit", False, "Also time every variant under tf.function(jit_compile=True).")
flags.DEFINE_string("preset", None, "A colorgan.models preset instead of the model flags "
                    f"({', '.join(sorted(models.PRESETS))}); image_size is set per --sizes.")
flags.DEFINE_float("peak_gflops_fp32", 210.0, "The machine's fp32 matmul peak, GFLOP/s.",
                   lower_bound=0.0)
flags.DEFINE_float("peak_gflops_bf16", 410.0, "The machine's bf16 matmul peak, GFLOP/s.",
                   lower_bound=0.0)
flags.DEFINE_bool("measure_peak", False, f"Measure the peaks in this run ({PEAK_MATMUL_SIZE}^2 "
                  "matmuls) and use them instead of --peak_gflops_*.")
flags.adopt_module_key_flags(common)
common.reuse_flag("steps", "Train steps per timed block.", default=10)
common.reuse_flag("batch_size")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")
for _name in ("base_filters", "max_filters", "depth", "output_space", "upsample", "discriminator",
              "disc_filters", "pixel_loss"):
    common.reuse_flag(_name)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    impl: str  # 'plain' or 'ours'
    precision: str  # 'fp32' or 'bf16'
    jit: bool

    @property
    def baseline(self) -> str:
        """The plain step at this variant's precision (without XLA)."""
        return f"plain_{self.precision}"


def parse_variants(names: list[str], jit: bool) -> list[Variant]:
    unknown = set(names) - set(BASE_VARIANTS)
    if unknown:
        raise app.UsageError(f"unknown --variants {sorted(unknown)}; valid: {', '.join(BASE_VARIANTS)}")
    wanted = set(names) | {"plain_fp32"} | {f"plain_{n.split('_')[1]}" for n in names}
    out = [Variant(n, *n.split("_"), jit=False) for n in BASE_VARIANTS if n in wanted]
    return out + ([dataclasses.replace(v, name=f"{v.name}_xla", jit=True) for v in out] if jit else [])


# ------------------------------------------------------------------------------ the steps
def make_plain_step(model_cfg: ModelConfig, train_cfg: TrainConfig, precision: str, jit: bool,
                    batch: dict[str, tf.Tensor]):
    """The pix2pix tutorial's train step around colorgan's models: (step(l, ab) -> g_loss, args)."""
    with workdir.precision(precision):
        generator = models.build_generator(model_cfg)
        discriminator = models.build_discriminator(model_cfg) if train_cfg.mode == "gan" else None
    g_opt = keras.optimizers.Adam(train_cfg.learning_rate, train_cfg.beta1, train_cfg.beta2)
    d_opt = keras.optimizers.Adam(train_cfg.d_learning_rate, train_cfg.beta1, train_cfg.beta2)
    loss_object = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)
    def step(l, ab):
        target = losses.target_color({"l": l, "ab": ab}, model_cfg.output_space)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(l, training=True)
            g_loss = losses.pixel_loss(train_cfg.pixel_loss, target, fake)
            if discriminator is not None:
                real_logits = discriminator([l, target], training=True)
                fake_logits = discriminator([l, fake], training=True)
                g_loss = (loss_object(tf.ones_like(fake_logits), fake_logits)
                          + train_cfg.pixel_weight * g_loss)
                d_loss = (loss_object(tf.ones_like(real_logits), real_logits)
                          + loss_object(tf.zeros_like(fake_logits), fake_logits))
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        if discriminator is not None:
            d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
            d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        return g_loss

    return step, (batch["l"], batch["ab"])


def make_our_step(model_cfg: ModelConfig, train_cfg: TrainConfig, precision: str, jit: bool,
                  batch: dict[str, tf.Tensor]):
    """colorgan's own step (step.build_state + step.make_train_step), optionally under XLA:
    (step(batch, update_d) -> losses, args)."""
    with workdir.precision(precision):
        state = step_lib.build_state(model_cfg, train_cfg)
    spec = {key: tf.TensorSpec.from_tensor(value) for key, value in batch.items()}
    step = step_lib.make_train_step(state, model_cfg, train_cfg, spec, jit_compile=jit)
    return step, (batch, tf.constant(True))


def make_step(variant: Variant, model_cfg: ModelConfig, train_cfg: TrainConfig, batch):
    """(tf.function, its arguments for `batch`) of one variant."""
    precision = PRECISIONS[variant.precision]
    cfg = dataclasses.replace(train_cfg, mixed_precision=precision)
    make = make_plain_step if variant.impl == "plain" else make_our_step
    return make(model_cfg, cfg, precision, variant.jit, batch)


# ----------------------------------------------------------------------------------- FLOPs
_COUNTED = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)


def forward_flops(model: keras.Model, input_shapes: list[tuple[int, ...]]) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of one image, from the layers' shapes.

    Conv2D: kh*kw*Cin*Cout MACs per output pixel. Conv2DTranspose: kh*kw*Cin*Cout per *input*
    pixel (each input pixel scatters one kh x kw x Cout patch), i.e. the output-pixel formula
    divided by stride^2. Dense: Cin*Cout per position. BatchNorm, activations, concatenation and
    the losses are element-wise and not counted (a few % at most).
    """
    counted = [layer for layer in model.layers if isinstance(layer, _COUNTED)]
    probe = keras.Model(model.inputs, [layer.output for layer in counted])
    specs = [keras.KerasTensor(shape) for shape in input_shapes]
    outputs = keras.tree.flatten(probe.compute_output_spec(specs if len(specs) > 1 else specs[0]))
    macs = 0
    for layer, out in zip(counted, outputs):
        kernel = tuple(layer.kernel.shape)
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, c_out, c_in = kernel
            sh, sw = layer.strides
            macs += kh * kw * c_in * c_out * (out.shape[1] // sh) * (out.shape[2] // sw)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = kernel
            macs += kh * kw * c_in * c_out * out.shape[1] * out.shape[2]
        else:
            positions = 1
            for dim in out.shape[1:-1]:
                positions *= dim
            macs += kernel[0] * kernel[1] * positions
    return 2 * macs


def step_flops(model_cfg: ModelConfig, mode: str) -> dict:
    """Training FLOPs per image. unet: 3 x G forward (forward, input and weight gradients).

    gan: 3 x G + 7 x D: D forward on real and fake (2), D's backward for its update on both
    (2 x 2), and G's adversarial gradient back through D(fake) (input gradients only: 1).
    """
    size = model_cfg.image_size
    generator = models.build_generator(model_cfg)
    g = forward_flops(generator, [(1, size, size, 1)])
    out = {"generator_forward": g, "generator_params": generator.count_params()}
    if mode == "unet":
        return {**out, "train_step": 3 * g}
    discriminator = models.build_discriminator(model_cfg)
    d = forward_flops(discriminator, [(1, size, size, 1), (1, size, size, model_cfg.output_channels)])
    return {**out, "discriminator_forward": d,
            "discriminator_params": discriminator.count_params(), "train_step": 3 * g + 7 * d}


def measure_peaks(repeats: int, warmup: int) -> dict[str, float]:
    """Achieved GFLOP/s of a large square matmul in fp32 and bf16."""
    n = PEAK_MATMUL_SIZE
    matmul = tf.function(tf.matmul)
    cases = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        a = tf.cast(tf.random.normal([n, n], seed=1), dtype)
        b = tf.cast(tf.random.normal([n, n], seed=2), dtype)
        cases[name] = lambda a=a, b=b: matmul(a, b)
    timings = common.measure(cases, calls=PEAK_MATMUL_CALLS, repeats=repeats, warmup=warmup)
    return {name: 2 * n ** 3 * t.units_per_s / 1e9 for name, t in timings.items()}


# ----------------------------------------------------------------------------- measuring
def synthetic_batch(batch_size: int, size: int) -> dict[str, tf.Tensor]:
    """A constant batch exactly as the pipeline shapes it: data.to_example of smooth RGB images."""
    rgb_u8 = tf.stack([common.smooth_rgb_u8(size, size, seed=i) for i in range(batch_size)])
    return data.to_example(tf.image.convert_image_dtype(rgb_u8, tf.float32))


def time_group(model_cfg: ModelConfig, train_cfg: TrainConfig, variants: list[Variant],
               batch: dict[str, tf.Tensor], *, steps: int, repeats: int, warmup: int):
    """Builds every variant, makes its first (tracing) call, then times them interleaved.

    Returns ({variant: Timing}, {variant: {first_call_s, traces}}, {variant: error}). A variant
    that fails to build or compile (XLA may reject an op) is reported, not fatal.
    """
    steps_by_name, fns, facts, failed = {}, {}, {}, {}
    for variant in variants:
        try:
            start = time.perf_counter()
            step, args = make_step(variant, model_cfg, train_cfg, batch)
            common.block_until_done(step(*args))
            facts[variant.name] = {"first_call_s": time.perf_counter() - start,
                                   "traces_first_call": step.experimental_get_tracing_count()}
            steps_by_name[variant.name] = step
            fns[variant.name] = lambda step=step, args=args: step(*args)
        except (tf.errors.OpError, ValueError, NotImplementedError) as e:
            failed[variant.name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            logging.warning("%s failed: %s", variant.name, failed[variant.name])
    timings = common.measure(fns, calls=steps, repeats=repeats, warmup=warmup,
                             units=int(batch["l"].shape[0]))
    for name, step in steps_by_name.items():  # Expected 0; the first call may trace twice (the
        # plain step's optimizers create their variables then).
        facts[name]["retraces_while_timed"] = (step.experimental_get_tracing_count()
                                               - facts[name]["traces_first_call"])
    return timings, facts, failed


def group_rows(mode: str, size: int, variants: list[Variant], timings: dict, facts: dict,
               flops: dict, peaks: dict[str, float]) -> list[dict]:
    """One table row per variant: images/s, ratios to the plain baselines, GFLOP/s, % of peak."""
    ips = {name: t.units_per_s for name, t in timings.items()}
    rows = []
    for v in variants:
        timing = timings.get(v.name)
        gflops = flops["train_step"] * ips[v.name] / 1e9 if timing else None
        rows.append({
            "mode": mode, "size": size, "variant": v.name, "images_per_s": ips.get(v.name),
            "vs_plain_fp32": common.ratio(ips.get(v.name), ips.get("plain_fp32")),
            "vs_plain_same_precision": common.ratio(ips.get(v.name), ips.get(v.baseline)),
            "gflops_per_s": gflops,
            "share_of_peak": common.ratio(gflops, peaks[v.precision]),
            "spread": timing.spread if timing else None,
            **facts.get(v.name, {}),
            "timing": timing.to_dict() if timing else None,
        })
    return rows


def run_all(modes, model_cfgs: dict[int, ModelConfig], train_cfg: TrainConfig,
            variants: list[Variant], peaks: dict[str, float], *, batch_size: int, steps: int,
            repeats: int, warmup: int) -> tuple[list[dict], dict, dict]:
    rows, flops_by_group, failures = [], {}, {}
    for mode in modes:
        for size, model_cfg in model_cfgs.items():
            logging.info("timing %s at %d px: %s", mode, size, ", ".join(v.name for v in variants))
            group_cfg = dataclasses.replace(train_cfg, mode=mode)
            flops = step_flops(model_cfg, mode)
            batch = synthetic_batch(batch_size, size)
            timings, facts, failed = time_group(model_cfg, group_cfg, variants, batch,
                                                steps=steps, repeats=repeats, warmup=warmup)
            rows += group_rows(mode, size, variants, timings, facts, flops, peaks)
            flops_by_group[f"{mode}_{size}"] = flops
            failures.update({f"{mode}_{size}_{name}": err for name, err in failed.items()})
            del timings, batch
            keras.backend.clear_session()  # free this group's models before building the next
            gc.collect()
    return rows, flops_by_group, failures


# -------------------------------------------------------------------------------- main
def section_from_flags(cls, **overrides):
    """A config section from colorgan's flags, without Config's cross-field checks (the image
    size is set per --sizes here, not by --image_size)."""
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(cls)}
    return cls(**{**values, **overrides})


def model_configs(sizes: list[str], preset: str | None) -> dict[int, ModelConfig]:
    out = {}
    for text in sizes:
        try:
            size = int(text)
            out[size] = (models.preset(preset, image_size=size) if preset
                         else section_from_flags(ModelConfig, image_size=size))
        except ValueError as e:
            raise app.UsageError(f"--sizes={text}: {e}") from e
    return out


def notes_for(rows: list[dict], flops: dict, failures: dict, peak_source: str) -> list[str]:
    notes = [f"{group}: G {f['generator_params'] / 1e6:.2f} M params"
             + (f", D {f['discriminator_params'] / 1e6:.2f} M" if "discriminator_params" in f else "")
             + f"; {f['train_step'] / 1e9:.3g} GFLOP per image per train step"
             for group, f in flops.items()]
    notes.append("GFLOP/s: analytic conv/dense FLOPs (unet 3xG, gan 3xG + 7xD forward) x images/s; "
                 f"% peak against {peak_source}")
    notes += [f"{name} n/a: {err}" for name, err in failures.items()]
    notes += [f"{r['mode']}_{r['size']}_{r['variant']} retraced {r['retraces_while_timed']} times "
              "while timed" for r in rows if r.get("retraces_while_timed")]
    return notes


COLUMNS = (common.Column("mode", "mode"), common.Column("size", "px"),
           common.Column("variant", "variant"), common.Column("images_per_s", "img/s", "{:.1f}"),
           common.Column("vs_plain_fp32", "x plain_fp32", "{:.2f}"),
           common.Column("vs_plain_same_precision", "x plain same prec", "{:.2f}"),
           common.Column("gflops_per_s", "GFLOP/s", "{:.1f}"),
           common.Column("share_of_peak", "of peak", "{:.1%}"),
           common.Column("spread", "spread", "{:.0%}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if FLAGS.steps < 1:
        raise app.UsageError("--steps must be at least 1")
    if set(FLAGS.modes) - {"unet", "gan"}:
        raise app.UsageError(f"--modes takes unet and/or gan, got {FLAGS.modes}")
    variants = parse_variants(FLAGS.variants, FLAGS.jit)
    model_cfgs = model_configs(FLAGS.sizes, FLAGS.preset)
    train_cfg = section_from_flags(TrainConfig)
    machine = common.machine_info()
    common.warn_if_busy(machine)
    peaks = {"fp32": FLAGS.peak_gflops_fp32, "bf16": FLAGS.peak_gflops_bf16}
    if FLAGS.measure_peak:
        peaks = measure_peaks(FLAGS.repeats, FLAGS.warmup)
    rows, flops, failures = run_all(FLAGS.modes, model_cfgs, train_cfg, variants, peaks,
                                    batch_size=FLAGS.batch_size, steps=FLAGS.steps,
                                    repeats=FLAGS.repeats, warmup=FLAGS.warmup)
    source = ("matmul peaks measured in this run" if FLAGS.measure_peak else "--peak_gflops_*")
    peak_text = f"fp32 {peaks['fp32']:.0f} / bf16 {peaks['bf16']:.0f} GFLOP/s ({source})"
    notes = notes_for(rows, flops, failures, peak_text)
    common.print_report(f"Train-step throughput, batch {FLAGS.batch_size}, median of "
                        f"{FLAGS.repeats} x {FLAGS.steps} steps", rows, COLUMNS, notes)
    common.write_results(
        NAME, machine=machine, rows=rows, notes=notes,
        settings={**common.flag_settings(["modes", "sizes", "variants", "jit", "preset", "steps",
                                          "batch_size", "repeats", "warmup"]),
                  "model_configs": {s: dataclasses.asdict(c) for s, c in model_cfgs.items()},
                  "train_config": dataclasses.asdict(train_cfg)},
        method=__doc__, extra={"peak_gflops": {**peaks, "source": source}, "flops": flops})
    return 0


if __name__ == "__main__":
    app.run(main)
