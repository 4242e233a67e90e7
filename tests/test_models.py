"""Tests for colorgan.models: shapes, layer kinds and wiring, pinned parameter counts and names."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan import models
from colorgan.config import ModelConfig

# float32 Keras tanh against float64 NumPy tanh of the same float32 pre-activations.
TANH_RTOL, TANH_ATOL = 1e-5, 1e-6
KERNEL, STRIDE, SLOPE = 4, 2, 0.2
PRESET_SIZES = {"tiny": 32, "cifar10": 32, "places365": 256}


# ------------------------------------------------------------------------------- helpers
_MODEL_CACHE: dict[tuple, keras.Model] = {}


def generator(name: str, **overrides) -> keras.Model:
    """Builds (once per module) the generator of a preset; places365 has 54M params."""
    key = ("g", name, tuple(sorted(overrides.items())))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = models.build_generator(models.preset(name, **overrides))
    return _MODEL_CACHE[key]


def discriminator(name: str, **overrides) -> keras.Model:
    key = ("d", name, tuple(sorted(overrides.items())))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = models.build_discriminator(models.preset(name, **overrides))
    return _MODEL_CACHE[key]


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _MODEL_CACHE.clear()
    keras.backend.clear_session()


def source_names(layer: keras.layers.Layer) -> list[str]:
    """Names of the layers whose outputs feed `layer` (in input order)."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history.operation.name for t in inputs]


def expected_encoder_filters(base: int, cap: int, depth: int) -> list[int]:
    """Independent restatement of the paper's rule: double per block, capped."""
    out, f = [], base
    for _ in range(depth):
        out.append(min(f, cap))
        f *= 2
    return out


def expected_generator_params(base: int, cap: int, depth: int, out_channels: int = 3,
                              upsample_kernel: int = KERNEL) -> int:
    """Parameter count of the U-Net from the architecture formula.

    Conv / transposed conv without bias: k*k*cin*cout; BatchNorm: 4*c (gamma, beta, moving mean,
    moving variance); the 1x1 output conv has a bias: cin*cout + cout.
    """
    f = expected_encoder_filters(base, cap, depth)
    total, cin = 0, 1
    for c in f:  # encoder
        total += KERNEL * KERNEL * cin * c + 4 * c
        cin = c
    for i in range(depth, 0, -1):  # decoder: dec_i upsamples to f_(i-1) (base for dec1)
        cout = f[i - 2] if i > 1 else base
        skip = f[i - 2] if i > 1 else 1  # the mirrored encoder activation, or `l`
        total += upsample_kernel * upsample_kernel * cin * cout + 4 * cout
        cin = cout + skip
    return total + cin * out_channels + out_channels


# --------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", ["cifar10", "places365"])
def test_paper_presets_output_shapes(name):
    size = PRESET_SIZES[name]
    cfg = models.preset(name)
    assert cfg.image_size == size
    n = 1 if size > 32 else 2  # the 54M-parameter model on one image only
    rng = np.random.default_rng(0)
    l = rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32)
    g = generator(name)
    out = np.asarray(g(l, training=False))
    assert out.shape == (n, size, size, 3)
    assert np.all(np.abs(out) <= 1.0)
    d = discriminator(name)
    logits = np.asarray(d([l, out], training=False))
    assert logits.shape == (n, 1)
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name", ["cifar10", "places365"])
def test_patch_discriminator_output_shape(name):
    size = PRESET_SIZES[name]
    n = 1 if size > 32 else 2
    d = discriminator(name, discriminator="patch")
    rng = np.random.default_rng(1)
    l = rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32)
    color = rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
    logits = np.asarray(d([l, color], training=False))
    assert logits.shape == (n, size // 8, size // 8, 1)
    assert d.output_shape == (None, size // 8, size // 8, 1)


@pytest.mark.parametrize("name", ["tiny", "cifar10"])
def test_ab_output_space_has_two_channels(name):
    size = PRESET_SIZES[name]
    g = generator(name, output_space="ab")
    out = np.asarray(g(np.zeros((2, size, size, 1), np.float32), training=False))
    assert out.shape == (2, size, size, 2)
    assert g.layers[-1].name == "ab"
    assert g.get_layer("out_conv").filters == 2
    d = discriminator(name, output_space="ab")
    assert d.get_layer("color").output.shape == (None, size, size, 2)
    assert d([np.zeros((2, size, size, 1), np.float32), out]).shape == (2, 1)


def test_places365_patch_is_70px_receptive_field_shape():
    # pix2pix PatchGAN at 256 px: 30x30 in the valid-padded original; 'same' padding gives S/8.
    assert discriminator("places365", discriminator="patch").output_shape == (None, 32, 32, 1)


def test_generator_is_fully_convolutional():
    g = generator("tiny")
    l = np.random.default_rng(2).uniform(-1, 1, (2, 64, 96, 1)).astype(np.float32)
    out = np.asarray(g(l, training=False))
    assert out.shape == (2, 64, 96, 3)
    assert np.all(np.abs(out) <= 1.0)


def test_dcgan_discriminator_emits_one_logit_per_image():
    d = discriminator("tiny")
    assert d.output_shape == (None, 1)
    assert [i.name for i in d.inputs] == ["l", "color"]
    logit_conv = d.get_layer("disc_logit")
    # tiny: 32 -> 16 -> 8 -> 4 with three stride-2 blocks, then one 4x4 valid conv covers 4x4.
    assert [l.name for l in d.layers if l.name.endswith("_conv")] == [
        "disc1_conv", "disc2_conv", "disc3_conv"]
    assert logit_conv.kernel_size == (4, 4) and logit_conv.padding == "valid"
    assert logit_conv.filters == 1
    x = np.zeros((3, 32, 32, 1), np.float32)
    assert d([x, np.zeros((3, 32, 32, 3), np.float32)]).shape == (3, 1)


# -------------------------------------------------------------------- layer kinds / wiring
@pytest.mark.parametrize("name", ["tiny", "cifar10", "places365"])
def test_encoder_blocks(name):
    cfg = models.preset(name)
    g = generator(name)
    filters = expected_encoder_filters(cfg.base_filters, cfg.max_filters, cfg.num_down)
    for k in range(1, cfg.num_down + 1):
        conv = g.get_layer(f"enc{k}_conv")
        assert type(conv) is keras.layers.Conv2D
        assert conv.kernel_size == (KERNEL, KERNEL)
        assert conv.strides == (STRIDE, STRIDE)
        assert conv.padding == "same"
        assert conv.filters == filters[k - 1] == models.encoder_filters(cfg, k)
        norm = g.get_layer(f"enc{k}_norm")
        assert isinstance(norm, keras.layers.BatchNormalization)
        assert source_names(norm) == [f"enc{k}_conv"]
        act = g.get_layer(f"enc{k}_act")
        assert isinstance(act, keras.layers.LeakyReLU)
        assert act.negative_slope == pytest.approx(SLOPE)
        assert source_names(act) == [f"enc{k}_norm"]
        assert source_names(conv) == [f"enc{k - 1}_act" if k > 1 else "l"]


@pytest.mark.parametrize("name", ["tiny", "cifar10", "places365"])
def test_decoder_blocks_and_output(name):
    cfg = models.preset(name)
    g = generator(name)
    filters = expected_encoder_filters(cfg.base_filters, cfg.max_filters, cfg.num_down)
    d = cfg.num_down
    for k in range(d, 0, -1):
        up = g.get_layer(f"dec{k}_up")
        assert type(up) is keras.layers.Conv2DTranspose
        assert up.kernel_size == (KERNEL, KERNEL)
        assert up.strides == (STRIDE, STRIDE)
        assert up.padding == "same"
        assert up.filters == (filters[k - 2] if k > 1 else cfg.base_filters)
        assert source_names(up) == [f"enc{d}_act" if k == d else f"dec{k + 1}_concat"]
        assert isinstance(g.get_layer(f"dec{k}_norm"), keras.layers.BatchNormalization)
        assert source_names(g.get_layer(f"dec{k}_norm")) == [f"dec{k}_up"]
        act = g.get_layer(f"dec{k}_act")
        assert type(act) is keras.layers.ReLU
        assert act.negative_slope == 0 and act.max_value is None and act.threshold == 0
    out_conv = g.get_layer("out_conv")
    assert type(out_conv) is keras.layers.Conv2D
    assert out_conv.kernel_size == (1, 1) and out_conv.filters == 3
    assert source_names(out_conv) == ["dec1_concat"]
    final = g.layers[-1]
    assert final.name == "lab"
    assert isinstance(final, keras.layers.Activation)
    assert final.activation is keras.activations.tanh
    assert source_names(final) == ["out_conv"]


def test_resize_conv_upsampling():
    cfg = models.preset("tiny", upsample="resize_conv")
    g = models.build_generator(cfg)
    for k in range(cfg.num_down, 0, -1):
        resize = g.get_layer(f"dec{k}_resize")
        assert type(resize) is models.BilinearUpsample2x  # x2 bilinear, as UpSampling2D (tested below)
        up = g.get_layer(f"dec{k}_up")
        assert type(up) is keras.layers.Conv2D
        assert up.kernel_size == (3, 3) and up.strides == (1, 1) and up.padding == "same"
        assert source_names(up) == [f"dec{k}_resize"]
    assert not [l for l in g.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    # 3x3 decoder convs instead of 4x4: 25086 - (16-9)*(32*16 + 32*8 + 16*8) = 25086 - 6272.
    assert g.count_params() == expected_generator_params(8, 32, 3, upsample_kernel=3) == 18814
    out = np.asarray(g(np.zeros((2, 64, 32, 1), np.float32)))
    assert out.shape == (2, 64, 32, 3)


def test_tanh_output_in_range_and_equals_tanh_of_logits():
    g = models.build_generator(models.preset("tiny"))
    out_conv = g.get_layer("out_conv")
    kernel, bias = out_conv.get_weights()
    # Large weights push the pre-activation far outside [-1, 1]: only a real tanh keeps the output in.
    out_conv.set_weights([np.full_like(kernel, 50.0), bias])
    pre_model = keras.Model(g.input, out_conv.output)
    l = np.random.default_rng(3).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    pre = np.asarray(pre_model(l, training=False), np.float64)
    out = np.asarray(g(l, training=False))
    assert np.abs(pre).max() > 5.0  # the check below is meaningful
    assert out.dtype == np.float32
    assert np.all(out >= -1.0) and np.all(out <= 1.0)
    np.testing.assert_allclose(out, np.tanh(pre), rtol=TANH_RTOL, atol=TANH_ATOL)


@pytest.mark.parametrize("name,overrides,expected", [
    ("tiny", {}, [8, 16, 32]),
    ("tiny", {"depth": 5}, [8, 16, 32, 32, 32]),  # capped at max_filters=32
    ("cifar10", {}, [64, 128, 256, 512, 512]),
    ("places365", {}, [64, 128, 256, 512, 512, 512, 512, 512]),
])
def test_channel_doubling_with_cap(name, overrides, expected):
    cfg = models.preset(name, **overrides)
    assert [models.encoder_filters(cfg, k) for k in range(1, cfg.num_down + 1)] == expected
    if name != "places365":  # the 54M model's layers are checked in test_encoder_blocks
        g = generator(name, **overrides)
        assert [g.get_layer(f"enc{k}_conv").filters for k in range(1, cfg.num_down + 1)] == expected


@pytest.mark.parametrize("name", ["tiny", "cifar10", "places365"])
def test_skip_connections(name):
    cfg = models.preset(name)
    g = generator(name)
    d = cfg.num_down
    size = PRESET_SIZES[name]
    concats, probes = [], []
    for k in range(d, 0, -1):
        concat = g.get_layer(f"dec{k}_concat")
        mirror = f"enc{k - 1}_act" if k > 1 else "l"
        assert source_names(concat) == [f"dec{k}_act", mirror]
        concats.append(concat)
        probes += [concat.input[0], concat.input[1]]
    # Spatial sizes on a concrete input: both halves at S / 2^(k-1).
    probe = keras.Model(g.input, probes)
    outs = probe(np.zeros((1, size, size, 1), np.float32), training=False)
    filters = expected_encoder_filters(cfg.base_filters, cfg.max_filters, d)
    for j, k in enumerate(range(d, 0, -1)):
        up, skip = outs[2 * j], outs[2 * j + 1]
        s = size // 2 ** (k - 1)
        assert tuple(up.shape) == (1, s, s, filters[k - 2] if k > 1 else cfg.base_filters)
        assert tuple(skip.shape) == (1, s, s, filters[k - 2] if k > 1 else 1)


# ------------------------------------------------------------------ pinned count and names
def test_tiny_generator_parameter_count():
    # tiny: base 8, cap 32, depth 3, lab output. No conv biases except out_conv; BN = 4*c.
    #   enc1 4*4*1*8  + 4*8   =   128 +  32 =   160
    #   enc2 4*4*8*16 + 4*16  =  2048 +  64 =  2112
    #   enc3 4*4*16*32 + 4*32 =  8192 + 128 =  8320
    #   dec3 4*4*32*16 + 4*16 =  8192 +  64 =  8256   (-> 16 ++ enc2 16 = 32 ch)
    #   dec2 4*4*32*8 + 4*8   =  4096 +  32 =  4128   (-> 8 ++ enc1 8 = 16 ch)
    #   dec1 4*4*16*8 + 4*8   =  2048 +  32 =  2080   (-> 8 ++ l 1 = 9 ch)
    #   out  1*1*9*3 + 3      =                   30
    #   total                                  25086
    assert expected_generator_params(8, 32, 3) == 25086
    assert generator("tiny").count_params() == 25086


def test_cifar10_generator_parameter_count():
    # cifar10: base 64, cap 512, depth 5 (32 -> 1x1), lab output.
    #   enc1 16*1*64     + 4*64  =    1024 +  256
    #   enc2 16*64*128   + 4*128 =  131072 +  512
    #   enc3 16*128*256  + 4*256 =  524288 + 1024
    #   enc4 16*256*512  + 4*512 = 2097152 + 2048
    #   enc5 16*512*512  + 4*512 = 4194304 + 2048
    #   dec5 16*512*512  + 4*512 = 4194304 + 2048   (-> 512 ++ enc4 512 = 1024 ch)
    #   dec4 16*1024*256 + 4*256 = 4194304 + 1024   (-> 256 ++ enc3 256 = 512 ch)
    #   dec3 16*512*128  + 4*128 = 1048576 +  512   (-> 128 ++ enc2 128 = 256 ch)
    #   dec2 16*256*64   + 4*64  =  262144 +  256   (-> 64 ++ enc1 64 = 128 ch)
    #   dec1 16*128*64   + 4*64  =  131072 +  256   (-> 64 ++ l 1 = 65 ch)
    #   out  65*3 + 3            =     198
    #   convs 16778240 + BN 9984 + out 198 = 16788422
    assert expected_generator_params(64, 512, 5) == 16788422
    assert generator("cifar10").count_params() == 16788422


def test_places365_generator_parameter_count_matches_formula():
    assert generator("places365").count_params() == expected_generator_params(64, 512, 8)


def test_tiny_generator_layer_names():
    assert [layer.name for layer in generator("tiny").layers] == [
        "l",
        "enc1_conv", "enc1_norm", "enc1_act",
        "enc2_conv", "enc2_norm", "enc2_act",
        "enc3_conv", "enc3_norm", "enc3_act",
        "dec3_up", "dec3_norm", "dec3_act", "dec3_concat",
        "dec2_up", "dec2_norm", "dec2_act", "dec2_concat",
        "dec1_up", "dec1_norm", "dec1_act", "dec1_concat",
        "out_conv", "lab",
    ]
    assert generator("tiny").name == "generator"
    assert discriminator("tiny").name == "discriminator"


def test_tiny_discriminator_layer_names():
    assert [layer.name for layer in discriminator("tiny").layers] == [
        "l", "color", "disc_concat",
        "disc1_conv", "disc1_norm", "disc1_act",
        "disc2_conv", "disc2_norm", "disc2_act",
        "disc3_conv", "disc3_norm", "disc3_act",
        "disc_logit", "disc_flatten", "logits",
    ]


# ----------------------------------------------------------------------------- errors
def test_unknown_preset_names_valid_ones():
    with pytest.raises(ValueError, match="unknown model preset 'nope'") as e:
        models.preset("nope")
    for valid in ("cifar10", "places365", "tiny"):
        assert valid in str(e.value)


def test_unknown_discriminator_names_valid_ones():
    with pytest.raises(ValueError, match="'nope'.*dcgan.*patch"):
        models.build_discriminator(models.preset("tiny", discriminator="nope"))


def test_unknown_upsample_names_valid_ones():
    with pytest.raises(ValueError, match="'nope'.*transpose.*resize_conv"):
        models.build_generator(models.preset("tiny", upsample="nope"))


def test_preset_overrides_do_not_mutate_presets():
    cfg = models.preset("tiny", base_filters=4)
    assert cfg.base_filters == 4
    assert models.preset("tiny").base_filters == 8
    assert isinstance(cfg, ModelConfig)


# ---------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("blocks", [0, 1, 2])
def test_dropout_on_first_decoder_blocks(blocks):
    cfg = models.preset("tiny", dropout_blocks=blocks, dropout_rate=0.3)
    g = models.build_generator(cfg)
    d = cfg.num_down
    dropouts = [l for l in g.layers if isinstance(l, keras.layers.Dropout)]
    expected = [f"dec{d - j}_dropout" for j in range(blocks)]  # from the bottleneck outwards
    assert [l.name for l in dropouts] == expected
    for layer in dropouts:
        assert layer.rate == pytest.approx(0.3)
    for k in range(d, 0, -1):
        first = f"dec{k}_dropout" if f"dec{k}_dropout" in expected else f"dec{k}_act"
        assert source_names(g.get_layer(f"dec{k}_concat"))[0] == first
        if first.endswith("_dropout"):
            assert source_names(g.get_layer(first)) == [f"dec{k}_act"]
    # Dropout changes nothing in inference, and does change training-mode outputs.
    l = np.random.default_rng(4).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(g(l, training=False)), np.asarray(g(l, training=False)))
    a, b = np.asarray(g(l, training=True)), np.asarray(g(l, training=True))
    assert (np.abs(a - b).max() > 0) == (blocks > 0)


def test_dropout_blocks_beyond_skip_connected_decoder_blocks_rejected():
    with pytest.raises(ValueError, match="dropout_blocks=3"):
        models.preset("tiny", dropout_blocks=3)


def test_bilinear_upsample_matches_keras_and_accepts_unknown_sizes():
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
    expected = keras.layers.UpSampling2D(2, interpolation="bilinear")(x).numpy()
    np.testing.assert_array_equal(models.BilinearUpsample2x()(x).numpy(), expected)
    g = models.build_generator(models.preset("tiny", upsample="resize_conv"))
    fn = tf.function(lambda l: g(l, training=False), reduce_retracing=True)
    for h, w in ((32, 48), (40, 24), (64, 64)):  # the relaxed trace has unknown H and W
        assert fn(tf.zeros((1, h, w, 1))).shape == (1, h, w, 3)
    clone = keras.Model.from_config(g.get_config())  # the custom layer round-trips its config
    assert [type(layer).__name__ for layer in clone.layers] == [type(layer).__name__ for layer in g.layers]


# ----------------------------------------------------- classification head, stride, context
# Layer names of the tiny generator up to the bottleneck (shared by every variant below).
TINY_ENCODER_NAMES = ["l", "enc1_conv", "enc1_norm", "enc1_act", "enc2_conv", "enc2_norm",
                      "enc2_act", "enc3_conv", "enc3_norm", "enc3_act"]
CTX_NAMES = ["ctx_pool", "ctx_dense", "ctx_dense_act", "ctx_local", "ctx_global", "ctx_fuse",
             "ctx_norm", "ctx_act"]
# Model-space ab decoded from a softmax over 262 bins (float32) against float64 NumPy.
DECODE_ATOL = 1e-6
# One float32 multiply (vividness) against NumPy's float32 multiply of the same values.
VIVID_RTOL = 1e-6
# A float32 global average pool against NumPy's mean of the same float32 activations.
POOL_RTOL, POOL_ATOL = 1e-5, 1e-6


def _dec_names(*blocks: int) -> list[str]:
    return [f"dec{k}_{part}" for k in blocks for part in ("up", "norm", "act", "concat")]


def test_classification_head_has_262_float32_logits_under_mixed_precision():
    from colorgan import bins, workdir as workdir_lib  # noqa: PLC0415

    cfg = models.preset("tiny", head="classification", output_space="ab")
    with workdir_lib.precision("bfloat16"):
        g = models.build_generator(cfg)
    assert g.get_layer("enc1_conv").compute_dtype == "bfloat16"
    assert g.get_layer("out_conv").filters == bins.NUM_BINS == 262
    assert g.layers[-1].name == "ab_logits"
    assert g.layers[-1].activation is keras.activations.linear  # logits: no tanh
    out = g(np.random.default_rng(5).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32),
            training=False)
    assert out.shape == (2, 32, 32, 262) and out.dtype == tf.float32
    assert [layer.name for layer in g.layers] == TINY_ENCODER_NAMES + _dec_names(3, 2, 1) + [
        "out_conv", "ab_logits"]


@pytest.mark.parametrize("stride,kept,dropped", [
    (2, (3, 2), (1,)),
    (4, (3,), (2, 1)),
])
def test_output_stride_drops_the_outermost_decoder_blocks(stride, kept, dropped):
    g = models.build_generator(models.preset("tiny", output_stride=stride))
    names = [layer.name for layer in g.layers]
    assert names == TINY_ENCODER_NAMES + _dec_names(*kept) + ["out_conv", "lab"]
    assert not [n for n in names if n.startswith(tuple(f"dec{k}_" for k in dropped))]
    out = g(np.zeros((2, 32, 48, 1), np.float32), training=False)
    assert out.shape == (2, 32 // stride, 48 // stride, 3)
    # The output conv reads the last kept block's concatenation with its mirrored encoder.
    assert source_names(g.get_layer("out_conv")) == [f"dec{kept[-1]}_concat"]
    assert source_names(g.get_layer(f"dec{kept[-1]}_concat")) == [
        f"dec{kept[-1]}_act", f"enc{kept[-1] - 1}_act"]


def test_output_stride_parameter_counts():
    # tiny (25086, see test_tiny_generator_parameter_count) without its outer decoder blocks:
    #   stride 2: no dec1 (2080); out reads dec2_concat (8 + enc1 8 = 16 ch): 16*3 + 3 = 51
    #             25086 - 2080 - 30 + 51 = 23027
    #   stride 4: no dec2 (4128) either; out reads dec3_concat (16 + 16 = 32 ch): 32*3 + 3 = 99
    #             25086 - 2080 - 4128 - 30 + 99 = 18947
    assert models.build_generator(models.preset("tiny", output_stride=2)).count_params() == 23027
    assert models.build_generator(models.preset("tiny", output_stride=4)).count_params() == 18947


def test_classification_head_parameter_counts():
    # The 1x1 output conv: 9 input channels (dec1_concat) -> 262 logits with bias:
    #   9*262 + 262 = 2620 instead of 9*3 + 3 = 30: 25086 - 30 + 2620 = 27676.
    # At stride 4 it reads 32 channels: 32*262 + 262 = 8646: 18947 - 99 + 8646 = 27494.
    cls = dict(head="classification", output_space="ab")
    assert models.build_generator(models.preset("tiny", **cls)).count_params() == 27676
    assert models.build_generator(
        models.preset("tiny", output_stride=4, **cls)).count_params() == 27494


def test_global_context_layers_and_parameter_count():
    g = models.build_generator(models.preset("tiny", global_context=16))
    names = [layer.name for layer in g.layers]
    assert names == TINY_ENCODER_NAMES + CTX_NAMES + _dec_names(3, 2, 1) + ["out_conv", "lab"]
    assert source_names(g.get_layer("dec3_up")) == ["ctx_act"]
    assert source_names(g.get_layer("ctx_fuse")) == ["ctx_local", "ctx_global"]
    # On the bottleneck (32 channels), with 16 context channels:
    #   ctx_dense  32*16 + 16 (bias) = 528
    #   ctx_global 16*32 (no bias)   = 512
    #   ctx_local  1*1*32*32         = 1024
    #   ctx_norm   4*32              = 128
    #   2192 more than tiny's 25086 = 27278
    assert g.count_params() == 25086 + 2192 == 27278
    assert models.build_generator(models.preset(
        "tiny", global_context=16, output_stride=4, head="classification",
        output_space="ab")).count_params() == 27494 + 2192


def test_global_context_is_the_image_mean_and_size_independent():
    g = models.build_generator(models.preset("tiny", global_context=16))
    probe = keras.Model(g.input, [g.get_layer("enc3_act").output, g.get_layer("ctx_pool").output,
                                  g.output])
    rng = np.random.default_rng(6)
    for shape in ((2, 32, 32, 1), (1, 64, 96, 1)):  # the same weights at two sizes
        l = rng.uniform(-1, 1, shape).astype(np.float32)
        bottleneck, pooled, out = (np.asarray(t) for t in probe(l, training=False))
        assert pooled.shape == (shape[0], 1, 1, 32)
        np.testing.assert_allclose(pooled, bottleneck.mean(axis=(1, 2), keepdims=True),
                                   rtol=POOL_RTOL, atol=POOL_ATOL)
        assert out.shape == shape[:3] + (3,)
    # The context is global: changing the 32 leftmost columns of a 256-px-wide photo moves the
    # colour of the 32 rightmost ones, far outside the plain U-Net's receptive field (under 100
    # px at depth 3), where the same weights without the ctx_ layers change nothing.
    l = rng.uniform(-1, 1, (1, 64, 256, 1)).astype(np.float32)
    changed = l.copy()
    changed[:, :, :32] = 1.0
    far = slice(224, 256)
    without = models.build_generator(models.preset("tiny"))
    without.set_weights([w for layer in g.layers if not layer.name.startswith("ctx_")
                         for w in layer.get_weights()])
    delta_ctx = np.abs(np.asarray(g(changed, training=False) - g(l, training=False)))[:, :, far]
    delta_plain = np.abs(np.asarray(without(changed, training=False)
                                    - without(l, training=False)))[:, :, far]
    assert delta_plain.max() == 0.0 and delta_ctx.max() > 0.0


def test_decode_ab_regression_drops_l_and_scales_by_vividness():
    cfg = models.preset("tiny")
    out = np.random.default_rng(7).uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(models.decode_ab(tf.constant(out), cfg).numpy(), out[..., 1:])
    got = models.decode_ab(tf.constant(out), cfg, 1.7).numpy()
    np.testing.assert_allclose(got, np.clip(out[..., 1:] * 1.7, -1, 1), rtol=VIVID_RTOL)
    assert np.mean(np.abs(got) == 1.0) > 0.1  # the clip did something


def test_predict_ab_regression_vividness_scales_and_clips():
    cfg = models.preset("tiny", output_space="ab", vividness=1.5)
    keras.utils.set_random_seed(1)
    g = models.build_generator(cfg)
    l = np.random.default_rng(8).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    # Rescale the output conv so its pre-activations have std 1: tanh then spreads ab over
    # (-1, 1), about 40% above 1 / 1.5 in size (clipped at vividness 1.5), 40% below 0.5.
    out_conv = g.get_layer("out_conv")
    kernel, bias = out_conv.get_weights()
    pre = np.asarray(keras.Model(g.input, out_conv.output)(l, training=False))
    out_conv.set_weights([kernel / pre.std(), np.zeros_like(bias)])
    raw = np.asarray(g(l, training=False))
    assert np.mean(np.abs(raw) > 1 / 1.5) > 0.2 and np.mean(np.abs(raw) < 0.5) > 0.2
    np.testing.assert_allclose(models.predict_ab(g, l, cfg).numpy(), np.clip(raw * 1.5, -1, 1),
                               rtol=VIVID_RTOL)  # vividness None: the config's
    np.testing.assert_allclose(models.predict_ab(g, l, cfg, vividness=1.0).numpy(), raw,
                               rtol=VIVID_RTOL)
    np.testing.assert_allclose(models.predict_ab(g, l, cfg, vividness=0.5).numpy(), raw * 0.5,
                               rtol=VIVID_RTOL)


def test_predict_ab_classification_is_the_upsampled_annealed_mean():
    from colorgan import bins  # noqa: PLC0415
    from test_upsampling import np_bilinear_resize  # noqa: PLC0415

    cfg = models.preset("tiny", head="classification", output_space="ab", output_stride=4)
    keras.utils.set_random_seed(2)
    g = models.build_generator(cfg)
    out_conv = g.get_layer("out_conv")
    kernel, bias = out_conv.get_weights()
    out_conv.set_weights([kernel * 50, bias])  # peaked distributions: vivid colours
    l = np.random.default_rng(9).uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32)
    logits = np.asarray(g(l, training=False), np.float64)
    assert logits.shape == (2, 8, 12, 262)
    centres = np.asarray(bins.BIN_CENTERS_LAB) / 110.0
    for vividness in (1.0, 2.5):  # temperature 1 / vividness
        p = np.exp(vividness * (logits - logits.max(-1, keepdims=True)))
        p /= p.sum(-1, keepdims=True)
        want = np_bilinear_resize(p @ centres, (32, 48))
        got = models.predict_ab(g, l, cfg, vividness=vividness).numpy()
        assert got.shape == (2, 32, 48, 2)
        assert got.min() >= -1.0 and got.max() <= 1.0
        np.testing.assert_allclose(got, want, atol=DECODE_ATOL)
