"""Keras functional builders for the U-Net generator and the conditional discriminator.

Both follow the seed (Nazeri, Ng & Ebrahimi 2018, arXiv 1803.05400): 4x4 stride-2 convolutions with
BatchNorm and LeakyReLU(0.2) going down, channels doubling (capped at `max_filters`); 4x4 stride-2
transposed convolutions with BatchNorm and ReLU coming up, each followed by concatenation with the
mirrored encoder activation; a 1x1 convolution and tanh at the end. Layer names are API:
checkpoints depend on them, and tests pin them.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers
import tensorflow as tf

from colorgan import bins, color, hint_spread, hints
from colorgan.config import ModelConfig, check_choice

# DCGAN/pix2pix weight initialisation: N(0, 0.02).
INIT_STDDEV = 0.02
LEAKY_SLOPE = 0.2
KERNEL = 4
# The dcgan discriminator halves the image down to this size, then one conv covers it all.
DCGAN_FINAL_SIZE = 4
# PatchGAN (pix2pix): three stride-2 convs, then stride-1 convs: one logit per ~70x70 patch at 256 px.
PATCH_DOWN_BLOCKS = 3

PRESETS: dict[str, ModelConfig] = {
    # The paper's CIFAR-10 setting: 32x32, 5 encoder blocks down to 1x1, 64..512 channels.
    "cifar10": ModelConfig(image_size=32, base_filters=64, depth=5),
    # The paper's Places365 setting: 256x256, 8 encoder blocks down to 1x1 (pix2pix's U-Net-256).
    "places365": ModelConfig(image_size=256, base_filters=64, depth=8),
    # For tests: tiny and fast.
    "tiny": ModelConfig(image_size=32, base_filters=8, max_filters=32, depth=3, disc_filters=8),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A preset ModelConfig by name, with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)


@keras.saving.register_keras_serializable(package="colorgan")
class BilinearUpsample2x(layers.Layer):
    """x2 bilinear upsampling that works when H and W are unknown at trace time.

    Keras 3.15's UpSampling2D(interpolation="bilinear") fails inside a tf.function traced with
    unknown spatial dims (full-resolution colourisation relaxes them), so this calls
    tf.image.resize directly: the same resize, no weights, so checkpoints are unaffected.
    """

    def call(self, inputs):
        size = tf.shape(inputs)[1:3] * 2
        return tf.cast(tf.image.resize(inputs, size, method="bilinear"), inputs.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c)

    def get_config(self):
        return super().get_config()


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, INIT_STDDEV)


def encoder_filters(cfg: ModelConfig, block: int) -> int:
    """Channels of encoder block `block` (1-based): base * 2**(block-1), capped."""
    return min(cfg.base_filters * 2 ** (block - 1), cfg.max_filters)


def _disc_filters(cfg: ModelConfig, block: int) -> int:
    """Channels of discriminator block `block` (0-based): disc_filters * 2**block, capped."""
    return min(cfg.disc_filters * 2 ** block, cfg.max_filters)


def down_block(x, filters: int, *, name: str, strides: int = 2, sync: bool = False, extra=None):
    """4x4 conv (stride 2 halves H and W) -> BatchNorm -> LeakyReLU(0.2).

    `sync`: BatchNorm statistics over the global batch of all replicas (tf.distribute), so a
    replica's small share of the batch trains the same model as the whole batch on one device.
    `extra`: another input at x's size (the hint map), through its own 4x4 conv whose weights
    start at zero, added before the BatchNorm: at initialisation the block is exactly the
    block without it (a fine-tune from an automatic model starts from that model)."""
    x = layers.Conv2D(filters, KERNEL, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=_init(), name=f"{name}_conv")(x)
    if extra is not None:
        side = layers.Conv2D(filters, KERNEL, strides=strides, padding="same", use_bias=False,
                             kernel_initializer="zeros", name=f"{name}_hint_conv")(extra)
        x = layers.Add(name=f"{name}_hint_add")([x, side])
    x = layers.BatchNormalization(synchronized=sync, name=f"{name}_norm")(x)
    return layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act")(x)


def up_block(x, filters: int, *, name: str, upsample: str, dropout: float = 0.0,
             sync: bool = False):
    """x2 upsampling (4x4 stride-2 transposed conv, or bilinear + 3x3 conv) -> BN -> ReLU [-> Dropout].
    `sync` as in down_block."""
    if upsample == "transpose":
        x = layers.Conv2DTranspose(filters, KERNEL, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_init(), name=f"{name}_up")(x)
    elif upsample == "resize_conv":
        x = BilinearUpsample2x(name=f"{name}_resize")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=_init(),
                          name=f"{name}_up")(x)
    else:
        raise ValueError(f"unknown upsample {upsample!r}; valid: transpose, resize_conv")
    x = layers.BatchNormalization(synchronized=sync, name=f"{name}_norm")(x)
    x = layers.ReLU(name=f"{name}_act")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def context_block(x, channels: int, *, name: str, sync: bool = False):
    """Image-level context (after Iizuka et al. 2016's global features and fusion layer): the
    global mean of `x` -> dense(channels) -> ReLU -> dense back to x's channels, added to a 1x1
    conv of x at every position -> BN -> ReLU. One image-wide vector lets distant regions agree
    (a sky one colour, not bands); it is size-independent, so any render size works."""
    width = x.shape[-1]
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)  # (1, 1, width)
    g = layers.Dense(channels, kernel_initializer=_init(), name=f"{name}_dense")(g)
    g = layers.ReLU(name=f"{name}_dense_act")(g)
    g = layers.Dense(width, use_bias=False, kernel_initializer=_init(), name=f"{name}_global")(g)
    local = layers.Conv2D(width, 1, use_bias=False, kernel_initializer=_init(),
                          name=f"{name}_local")(x)
    x = layers.Add(name=f"{name}_fuse")([local, g])  # broadcast over positions
    x = layers.BatchNormalization(synchronized=sync, name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_act")(x)


def head_channels(cfg: ModelConfig) -> int:
    """Channels of G's output: colour (3 Lab, 2 ab) or one logit per a*b* bin."""
    if check_choice("head", cfg.head) == "classification":
        return bins.NUM_BINS
    return cfg.output_channels


def build_generator(cfg: ModelConfig, *, sync_batchnorm: bool = False) -> keras.Model:
    """The U-Net generator G: `l` (N, H, W, 1) in [-1, 1] -> colour or bin logits at 1/stride.

    With d = cfg.num_down, f_i = encoder_filters(cfg, i) and s = log2(cfg.output_stride), at
    training size S:

        l (S, 1) -> enc1 (S/2, f1) -> enc2 (S/4, f2) -> ... -> enc_d (S/2^d, f_d)   [bottleneck]
        [hints (S, 3) -> enc1_hint_conv, zero-initialised, added to enc1's conv: --hint_inputs]
        [ctx: enc_d fused with its global mean (cfg.global_context channels)]
        dec_d:  up(enc_d) (S/2^(d-1), f_(d-1)) ++ enc_(d-1)
        ...
        dec_2:  up(dec_3) (S/2, f1) ++ enc1
        dec_1:  up(dec_2) (S, base_filters) ++ l
        out:    1x1 conv -> tanh (S, C)         C = 3 (Lab, the seed) or 2 (ab)
             or 1x1 conv -> logits (S, 262)     head='classification' (decode with decode_ab)
        [+ hints averaged per output cell -> out_hint_conv (1x1, adds nothing without hints): --hint_shortcut]

    Blocks dec_s .. dec_1 are left out for output_stride 2^s: the output is (S/2^s, C). The
    model is fully convolutional: H and W may be any multiple of 2^d. The first
    `cfg.dropout_blocks` decoder blocks (from the bottleneck) apply dropout. `sync_batchnorm`:
    cross-replica BatchNorm for multi-replica training (no effect on weights or inference).
    """
    l_in = keras.Input(shape=(None, None, 1), name="l")
    hints_in = keras.Input(shape=(None, None, hints.HINT_CHANNELS), name="hints") \
        if cfg.hint_inputs else None
    skips = []
    x = l_in
    for i in range(1, cfg.num_down + 1):
        x = down_block(x, encoder_filters(cfg, i), name=f"enc{i}", sync=sync_batchnorm,
                       extra=hints_in if i == 1 else None)
        skips.append(x)  # enc_i: (S/2^i, f_i)
    if cfg.global_context:
        x = context_block(x, cfg.global_context, name="ctx", sync=sync_batchnorm)
    last = cfg.num_down - cfg.decoder_blocks + 1  # the outermost decoder block kept
    for i in range(cfg.num_down, last - 1, -1):
        filters = encoder_filters(cfg, i - 1) if i > 1 else cfg.base_filters
        dropout = cfg.dropout_rate if cfg.num_down - i < cfg.dropout_blocks else 0.0
        x = up_block(x, filters, name=f"dec{i}", upsample=cfg.upsample, dropout=dropout,
                     sync=sync_batchnorm)
        mirror = skips[i - 2] if i > 1 else l_in  # (S/2^(i-1), ...)
        x = layers.Concatenate(name=f"dec{i}_concat")([x, mirror])
    x = layers.Conv2D(head_channels(cfg), 1, kernel_initializer=_init(), name="out_conv")(x)
    if cfg.hint_shortcut:
        x = hint_shortcut(x, hints_in, cfg)
    # float32 output even under mixed precision: losses and colour conversion need it.
    if cfg.head == "classification":
        out = layers.Activation("linear", dtype="float32", name="ab_logits")(x)
    else:
        out = layers.Activation("tanh", dtype="float32", name=cfg.output_space)(x)
    return keras.Model([l_in, hints_in] if cfg.hint_inputs else l_in, out, name="generator")


def hint_shortcut(x, hints_in, cfg: ModelConfig):
    """--hint_shortcut: the hint map averaged over each output cell ((a*b* x coverage, coverage);
    colorgan/hints.py leaves a*b* at 0 off the hints) through a bias-free 1x1 conv added to G's
    output `x`. No hints, no change: the automatic mode is exactly G without it.

    Classification heads start it at the Gaussian over the bins around the hint's colour
    (`hint_logits_kernel`): a covered cell decodes to the hint from step 0, and training only
    has to learn to spread hints (a zero start learns it far too slowly: Adam moves a weight by
    about the learning rate per step, and the kernel needs values in the hundreds). Regression
    heads start it at zero."""
    pooled = hints_in if cfg.output_stride == 1 else layers.AveragePooling2D(
        cfg.output_stride, name="out_hint_pool")(hints_in)
    if cfg.head == "classification":
        kernel = hint_logits_kernel()
        init = lambda shape, dtype=None: tf.reshape(tf.constant(kernel, dtype), shape)  # noqa: E731
    else:
        init = "zeros"
    side = layers.Conv2D(head_channels(cfg), 1, use_bias=False, kernel_initializer=init,
                         name="out_hint_conv")(pooled)
    return layers.Add(name="out_hint_add")([x, side])


def hint_logits_kernel(sigma: float = bins.SOFT_SIGMA_LAB) -> np.ndarray:
    """(3, NUM_BINS): logits_k = -|h - q_k|^2 / (2 sigma^2) (Lab units; q_k the bin centres) for
    a cell covered by a hint of colour h, up to a constant: linear in (h x coverage, coverage),
    as w_ab = q_k A^2 / sigma^2 and w_mask = -|q_k|^2 A^2 / (2 sigma^2), with q_k and h in
    model space and A = AB_SCALE. A partly covered cell gets the same Gaussian, scaled."""
    q = bins.bin_centers().numpy().astype(np.float64)  # (NUM_BINS, 2), model space
    gain = (color.AB_SCALE / sigma) ** 2
    return np.concatenate([q.T * gain, -0.5 * gain * np.sum(q * q, 1)[None]], 0).astype(np.float32)


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> None:
    """Sets every `target` layer that `source` has (by name) to source's weights; target's
    other layers (a hint model's zero-initialised hint branch) keep theirs."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def generator_inputs(cfg: ModelConfig, l, hint_map=None):
    """What G takes: `l`, or [l, hint map] for a hint model (no hints: the automatic mode's
    zeros). Every caller of G goes through this."""
    if not cfg.hint_inputs:
        return l
    return [l, hints.empty(l) if hint_map is None else tf.cast(hint_map, l.dtype)]


def decode_ab(output: tf.Tensor, cfg: ModelConfig, vividness: float = 1.0) -> tf.Tensor:
    """G's raw output (N, h, w, C) -> model-space ab (N, h, w, 2), at G's output resolution.

    Classification heads: the annealed mean at temperature 1 / vividness. Regression heads: a
    Lab model's predicted L is dropped, and ab is scaled by vividness (clipped to the range).
    """
    if check_choice("head", cfg.head) == "classification":
        return bins.annealed_mean(output, 1.0 / vividness)
    ab = output[..., -2:]
    return ab if vividness == 1.0 else tf.clip_by_value(ab * vividness, -1.0, 1.0)


def predict_ab(generator: keras.Model, l, cfg: ModelConfig,
               vividness: float | None = None, hint_map=None) -> tf.Tensor:
    """Inference: model-space `l` (N, H, W, 1) -> `ab` (N, H, W, 2) at l's size.

    `hint_map`: (N, H, W, 3) hints for a hint model (colorgan.hints; None: the automatic mode),
    spread after G by cfg.hint_reach (colorgan/hint_spread.py).

    Decodes G's output (see decode_ab; vividness None = the config's, chosen on validation data)
    and, for output_stride > 1, upsamples it bilinearly. With cfg.flip_average the photo and its
    mirror image go through G as one batch and their colours are averaged (test-time
    augmentation: twice the compute). Colourised outputs always keep the input's own L.
    """
    vividness = cfg.vividness if vividness is None else vividness
    n = tf.shape(l)[0]
    flip = lambda t: tf.concat([t, tf.reverse(t, axis=[2])], axis=0)  # noqa: E731
    batch = flip(l) if cfg.flip_average else l
    g_hints = flip(hint_map) if hint_map is not None and cfg.flip_average else hint_map
    ab = decode_ab(generator(generator_inputs(cfg, batch, g_hints), training=False), cfg,
                   vividness)
    if cfg.flip_average:
        ab = 0.5 * (ab[:n] + tf.reverse(ab[n:], axis=[2]))
    if hint_map is not None and cfg.hint_reach:
        ab = hint_spread.spread(ab, l, hint_map, cfg.hint_reach, cfg.output_stride)
    if cfg.output_stride > 1:
        ab = tf.image.resize(ab, tf.shape(l)[1:3], method="bilinear")
    return ab


def build_discriminator(cfg: ModelConfig, *, sync_batchnorm: bool = False) -> keras.Model:
    """The conditional discriminator D: (`l`, colour) -> logits (the seed's sigmoid is in the loss).

    Inputs: `l` (N, S, S, 1) and `color` (N, S, S, C), concatenated on channels (the colour image,
    real or generated, conditioned on the grayscale input). 4x4 stride-2 conv + BN + LeakyReLU(0.2)
    blocks with doubling channels, then
      - 'dcgan' (the seed): halve down to 4x4, one conv over the remaining map -> (N, 1);
      - 'patch' (pix2pix PatchGAN): 3 stride-2 blocks, a stride-1 block, a 4x4 conv -> (N, S/8, S/8, 1).
    `sync_batchnorm` as in build_generator.
    """
    size = cfg.image_size
    l_in = keras.Input(shape=(size, size, 1), name="l")
    color_in = keras.Input(shape=(size, size, cfg.output_channels), name="color")
    x = layers.Concatenate(name="disc_concat")([l_in, color_in])
    if cfg.discriminator == "dcgan":
        i = 0
        while size > DCGAN_FINAL_SIZE and size % 2 == 0:
            x = down_block(x, _disc_filters(cfg, i), name=f"disc{i + 1}", sync=sync_batchnorm)
            size //= 2
            i += 1
        x = layers.Conv2D(1, size, padding="valid", kernel_initializer=_init(),
                          name="disc_logit")(x)  # (N, 1, 1, 1)
        x = layers.Flatten(name="disc_flatten")(x)
    elif cfg.discriminator == "patch":
        blocks = 0
        while blocks < PATCH_DOWN_BLOCKS and size % 2 == 0 and size > 2:
            x = down_block(x, _disc_filters(cfg, blocks), name=f"disc{blocks + 1}",
                           sync=sync_batchnorm)
            size //= 2
            blocks += 1
        x = down_block(x, _disc_filters(cfg, blocks), name=f"disc{blocks + 1}", strides=1,
                       sync=sync_batchnorm)
        x = layers.Conv2D(1, KERNEL, padding="same", kernel_initializer=_init(),
                          name="disc_logit")(x)  # (N, S/8, S/8, 1)
    else:
        raise ValueError(f"unknown discriminator {cfg.discriminator!r}; valid: dcgan, patch")
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model([l_in, color_in], logits, name="discriminator")
