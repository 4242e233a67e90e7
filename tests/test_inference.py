"""The full-resolution pixel path, load_model and colorize_array."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, inference, models
from colorgan.errors import UserError

# uint8 output: 1/255 quantisation moves L* by at most ~0.4 units; allow for it.
L_TOLERANCE_MEAN = 0.5


def _constant_ab_colorizer(tiny_config, a: float, b: float) -> inference.Colorizer:
    """A tiny generator whose output is the constant colour (a, b) (Lab units) everywhere."""
    cfg = dataclasses.replace(tiny_config, model=dataclasses.replace(tiny_config.model,
                                                                     output_space="ab"))
    generator = models.build_generator(cfg.model)
    out = generator.get_layer("out_conv")
    kernel, _ = out.get_weights()
    bias = np.arctanh(np.array([a, b]) / color.AB_SCALE)
    out.set_weights([np.zeros_like(kernel), bias.astype(np.float32)])
    return inference.keras_colorizer(generator, cfg, "constant")


@pytest.mark.parametrize("hw,render,multiple,expected", [
    ((61, 97), 32, 8, (32, 48)),      # short side 32; 97 * 32/61 = 50.9 -> 48 (multiple of 8)
    ((480, 640), 128, 32, (128, 160)),  # 640 * 128/480 = 170.7 -> 160
    ((10, 10), 32, 8, (32, 32)),
    ((3, 1000), 32, 8, (32, 256)),    # capped at MAX_RENDER_ASPECT render sizes
])
def test_render_hw_keeps_aspect_and_multiples(hw, render, multiple, expected):
    out = tuple(inference.render_hw(tf.constant(hw), render, multiple).numpy())
    assert out == expected
    assert all(side % multiple == 0 for side in out)


def test_colorize_keeps_input_luminance_and_size(tiny_workdir):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (61, 97), dtype=np.uint8)
    out = inference.colorize_array(gray, model=tiny_workdir)
    assert out.shape == (61, 97, 3) and out.dtype == np.uint8
    l_in = color.rgb_to_lab(np.repeat(gray[..., None], 3, -1) / 255.0).numpy()[..., 0]
    l_out = color.rgb_to_lab(out / 255.0).numpy()[..., 0]
    assert np.mean(np.abs(l_in - l_out)) < L_TOLERANCE_MEAN


def test_colorize_applies_predicted_colour_at_full_resolution(tiny_config):
    model = _constant_ab_colorizer(tiny_config, a=20.0, b=-10.0)
    gray = np.full((45, 70), 128, np.uint8)  # mid gray: the colour is in gamut
    out = inference.colorize_array(gray, model=model, render_size=16)
    lab = color.rgb_to_lab(out / 255.0).numpy()
    # uint8 rounding of a mid-tone moves a*, b* by < 1 unit.
    np.testing.assert_allclose(lab[..., 1], 20.0, atol=1.0)
    np.testing.assert_allclose(lab[..., 2], -10.0, atol=1.0)


def test_colour_input_is_converted_to_gray_first(tiny_config):
    model = _constant_ab_colorizer(tiny_config, a=0.0, b=0.0)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # pure red in, gray out: a model with ab = 0 discards the input's colour
    out = inference.colorize_array(rgb, model=model)
    assert np.ptp(out.astype(int), axis=-1).max() <= 1


def test_load_model_checkpoint_step(tiny_workdir):
    latest = inference.load_model(tiny_workdir)
    early = inference.load_model(tiny_workdir, checkpoint_step=3)
    w_latest, w_early = latest.generator.get_weights(), early.generator.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(w_latest, w_early))
    with pytest.raises(UserError, match="no checkpoint for step 4"):
        inference.load_model(tiny_workdir, checkpoint_step=4)


def test_load_model_rejects_non_workdir(tmp_path):
    with pytest.raises(UserError, match="not a training workdir"):
        inference.load_model(str(tmp_path))


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.float32), np.zeros((8, 8, 2), np.uint8),
                                 np.zeros((2, 8, 8, 3), np.uint8)])
def test_colorize_array_rejects_bad_arrays(bad, tiny_workdir):
    with pytest.raises(ValueError):
        inference.colorize_array(bad, model=tiny_workdir)


def test_package_exports_the_api(tiny_workdir):
    import colorgan  # noqa: PLC0415

    model = colorgan.load_model(tiny_workdir)
    assert isinstance(model, inference.Colorizer)
    assert colorgan.colorize_array(np.zeros((16, 16), np.uint8), model=model).shape == (16, 16, 3)


# --------------------------------------------------------------- colour upsampling settings
# a*, b* of a mid-gray image read back from float32 sRGB (no uint8 rounding here): the model's
# tanh output and the Lab round trip, well under a just-noticeable difference.
AB_READBACK_ATOL = 0.5
def _edge_l(h: int = 64, w: int = 96) -> np.ndarray:
    """(1, H, W, 1) model-space L with a vertical edge at x = 45 (off the render grid)."""
    l = np.full((1, h, w, 1), -0.5, np.float32)
    l[:, :, 45:] = 0.5
    return l


def _ab_follows_l(l):
    """A stand-in model whose colour is an affine function of its input's L."""
    return tf.concat([0.6 * l + 0.1, -0.4 * l], axis=-1)


def test_colorize_l_guided_follows_the_full_resolution_edge():
    l = _edge_l()
    ideal = _ab_follows_l(l).numpy()  # the colour the full-resolution L calls for
    guided = inference.colorize_l(_ab_follows_l, tf.constant(l), 16, 8, "guided").numpy()
    bilinear = inference.colorize_l(_ab_follows_l, tf.constant(l), 16, 8).numpy()  # default
    assert guided.shape == bilinear.shape == (1, 64, 96, 2)
    # Rendered at 16 px (1/4), bilinear smears the edge over ~8 full-resolution pixels: score
    # the band of +-8 px around it.
    band = (slice(None), slice(None), slice(45 - 8, 45 + 8))
    err_guided = np.abs(guided - ideal)[band].mean()
    err_bilinear = np.abs(bilinear - ideal)[band].mean()
    assert err_bilinear > 0.02 and err_guided < err_bilinear / 5
    with pytest.raises(ValueError, match="unknown upsample mode 'nearest'"):
        inference.colorize_l(_ab_follows_l, tf.constant(l), 16, 8, "nearest")


def test_with_settings_returns_a_new_colorizer_or_itself(tiny_config):
    model = _constant_ab_colorizer(tiny_config, a=20.0, b=-10.0)
    assert model.with_settings() is model
    assert model.with_settings(vividness=model.config.model.vividness) is model  # no change
    guided = model.with_settings(color_upsample="guided", vividness=1.5)
    assert guided is not model and guided.generator is model.generator
    assert guided.config.model.color_upsample == "guided" and guided.config.model.vividness == 1.5
    assert model.config.model.color_upsample == "bilinear"  # the original is unchanged
    # Vividness scales a regression model's constant colour: 1.5 x (20, -10).
    rgb = np.full((1, 32, 48, 3), 0.5, np.float32)
    lab = color.rgb_to_lab(guided.colorize(rgb)).numpy()
    np.testing.assert_allclose(lab[..., 1:].reshape(-1, 2).mean(0), [30.0, -15.0],
                               atol=AB_READBACK_ATOL)


def test_an_exported_models_vividness_cannot_change(tiny_config):
    exported = inference.Colorizer(predict_ab=lambda l: tf.zeros_like(l)[..., :1] * [[0, 0]],
                                   config=tiny_config, source="exported", kind="saved_model")
    assert exported.with_settings(color_upsample="guided").config.model.color_upsample == "guided"
    with pytest.raises(UserError, match="exported.*vividness.*fixed at export"):
        exported.with_settings(vividness=2.0)
