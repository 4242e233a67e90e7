"""Hint spreading (colorgan/hint_spread.py): a hint's correction, exact where it lies, fading
with distance, stopped by lightness edges; nothing without hints."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, config, hint_spread, hints, inference, models, user_hints
from colorgan.errors import UserError

SIZE = 32


def _hint_map(cells, colour, size=SIZE):
    """A hint map (1, size, size, 3) revealing `colour` on the given (row, col) pixels."""
    m = np.zeros((1, size, size, 3), np.float32)
    for r, c in cells:
        m[0, r, c] = [*colour, 1.0]
    return tf.constant(m)


def _flat_l(value=0.0, size=SIZE):
    return tf.fill([1, size, size, 1], value)


def test_no_hint_leaves_the_colour_exactly():
    ab = tf.random.stateless_uniform([1, SIZE, SIZE, 2], [1, 2], -0.5, 0.5)
    out = hint_spread.spread(ab, _flat_l(), hints.empty(_flat_l()), reach=8.0, stride=1)
    np.testing.assert_array_equal(out.numpy(), ab.numpy())


def test_a_hint_sets_its_colour_and_fades_with_distance():
    ab = tf.zeros([1, SIZE, SIZE, 2])
    patch = [(r, c) for r in range(14, 18) for c in range(14, 18)]
    out = hint_spread.spread(ab, _flat_l(), _hint_map(patch, (0.4, -0.2)), reach=4.0,
                             stride=1).numpy()[0]
    np.testing.assert_allclose(out[15, 15], [0.4, -0.2], atol=0.01)  # the hint, where it lies
    near, far = np.abs(out[15, 22, 0]), np.abs(out[15, 31, 0])
    assert 0.05 < near < 0.35  # ~1.5 reaches from the patch's edge: a fraction
    assert far < 0.01  # ~3.5 reaches away: nothing


def test_a_hint_corrects_the_models_colour_not_replaces_its_pattern():
    """The correction is the hint minus the model's colour *at the hint*, added around it: the
    model's own variation nearby stays."""
    ramp = tf.tile(tf.linspace(-0.2, 0.2, SIZE)[None, None, :, None], [1, SIZE, 1, 2])
    out = hint_spread.spread(ramp, _flat_l(), _hint_map([(16, 16)], (0.3, 0.3)),
                             reach=6.0, stride=1).numpy()[0]
    model = ramp.numpy()[0, 16, :, 0]
    assert out[16, 16, 0] == pytest.approx(0.3, abs=0.05)
    # a hint's two sides shift alike: the model's gradient across it stays
    assert out[16, 17, 0] - out[16, 15, 0] == pytest.approx(model[17] - model[15], abs=1e-3)
    np.testing.assert_allclose(out[16, :3, 0], model[:3], atol=1e-3)  # far: the model's own


def test_a_lightness_edge_stops_a_hint():
    l = np.full((1, SIZE, SIZE, 1), -0.6, np.float32)  # L* 20 on the left
    l[:, :, SIZE // 2:] = 0.6  # L* 80 on the right
    out = hint_spread.spread(tf.zeros([1, SIZE, SIZE, 2]), tf.constant(l),
                             _hint_map([(16, 12), (16, 13)], (0.5, 0.0)), reach=8.0,
                             stride=1).numpy()[0]
    same_side, across = out[16, 9, 0], out[16, 16, 0]  # 3-4 px from the hint either way
    assert same_side > 0.3
    assert across < 0.1 * same_side


@pytest.mark.parametrize("stride", [2, 4])
def test_output_cells_take_the_hints_they_cover(stride):
    cells = SIZE // stride
    patch = [(r, c) for r in range(8, 8 + stride) for c in range(8, 8 + stride)]
    out = hint_spread.spread(tf.zeros([1, cells, cells, 2]), _flat_l(),
                             _hint_map(patch, (-0.3, 0.1)), reach=8.0, stride=stride).numpy()[0]
    np.testing.assert_allclose(out[8 // stride, 8 // stride], [-0.3, 0.1], atol=0.01)
    assert out.shape == (cells, cells, 2)


def test_hint_reach_is_validated_and_makes_any_model_take_hints():
    with pytest.raises(ValueError, match="hint_reach"):
        config.ModelConfig(hint_reach=-1.0)
    assert not config.ModelConfig().takes_hints
    assert config.ModelConfig(hint_reach=8.0).takes_hints  # through the spreading alone
    assert config.ModelConfig(hint_inputs=True).takes_hints


def test_a_hint_model_spreads_its_hints_only_with_a_reach(hint_model):
    rgb = tf.random.stateless_uniform([1, 32, 32, 3], [3, 4])
    hint = user_hints.parse({"points": [{"x": 16, "y": 16, "color": "#2050e0", "radius": 2}]},
                            32, 32)
    plain = hint_model.with_settings(hint_reach=0.0)
    spread = hint_model.with_settings(hint_reach=8.0)
    goal = np.asarray(hint[0].ab)

    def error_at_hint(model):
        out = color.rgb_to_lab(model.colorize_hints(rgb, hint)).numpy()[0]
        return np.linalg.norm(out[16, 16, 1:] - goal)
    assert error_at_hint(spread) < 0.5 * error_at_hint(plain)
    # an all-zero hint map through G and the spreading: G's own colour, exactly
    l = tf.random.stateless_uniform([2, 32, 32, 1], [7, 8], -1, 1)
    cfg = spread.config.model
    with_reach = models.predict_ab(spread.generator, l, cfg, hint_map=hints.empty(l))
    without = models.predict_ab(spread.generator, l, dataclasses.replace(cfg, hint_reach=0.0),
                                hint_map=hints.empty(l))
    np.testing.assert_array_equal(with_reach.numpy(), without.numpy())


@pytest.mark.parametrize("stride", [1, 4])
def test_each_image_of_a_batch_takes_only_its_own_hints(stride):
    cells = SIZE // stride
    ab = tf.random.stateless_uniform([2, cells, cells, 2], [3, 3], -0.3, 0.3)
    l = tf.random.stateless_uniform([2, SIZE, SIZE, 1], [4, 4], -1, 1)
    one = _hint_map([(r, c) for r in range(12, 16) for c in range(12, 16)], (0.5, -0.5))
    batch = tf.concat([one, hints.empty(l[:1])], 0)
    out = hint_spread.spread(ab, l, batch, reach=8.0, stride=stride).numpy()
    alone = hint_spread.spread(ab[:1], l[:1], one, reach=8.0, stride=stride).numpy()
    np.testing.assert_allclose(out[:1], alone, atol=1e-6)
    np.testing.assert_array_equal(out[1], ab.numpy()[1])  # no hints: untouched
    assert np.abs(out[0] - ab.numpy()[0]).max() > 0.1


def test_mirrored_hints_give_the_mirrored_colour():
    """flip_average runs G on the photo and its mirror; the spreading sees the photo's own hints
    once, after the average: mirroring photo and hints mirrors the result."""
    ab = tf.random.stateless_uniform([1, SIZE, SIZE, 2], [5, 5], -0.3, 0.3)
    l = tf.random.stateless_uniform([1, SIZE, SIZE, 1], [6, 6], -1, 1)
    hint_map = _hint_map([(10, 5), (20, 25)], (0.2, 0.4))
    mirror = lambda t: tf.reverse(t, axis=[2])  # noqa: E731
    out = hint_spread.spread(ab, l, hint_map, reach=6.0, stride=1)
    flipped = hint_spread.spread(mirror(ab), mirror(l), mirror(hint_map), reach=6.0, stride=1)
    np.testing.assert_allclose(mirror(flipped).numpy(), out.numpy(), atol=1e-5)


def test_g_s_own_hint_branch_acts_without_a_reach(hint_model):
    """A --hint_inputs model at hint_reach 0: the colour moves by G's hint branch alone (the
    spreading off), so the branch is wired through whatever the reach."""
    rgb = tf.random.stateless_uniform([1, 32, 32, 3], [3, 4])
    hint = user_hints.parse({"points": [{"x": 16, "y": 16, "color": "#2050e0", "radius": 2}]},
                            32, 32)
    plain = hint_model.with_settings(hint_reach=0.0)
    assert plain.takes_hints
    moved = plain.colorize_hints(rgb, hint).numpy() - plain.colorize(rgb).numpy()
    assert np.abs(moved).max() > 0.05


def test_an_exported_models_reach_is_fixed(hint_model, tmp_path):
    from colorgan import export  # noqa: PLC0415

    path = export.export(hint_model.with_settings(hint_reach=8.0), str(tmp_path / "e"),
                         formats=("saved_model",))[0]
    with pytest.raises(UserError, match="hint_reach"):
        inference.load_model(path, hint_reach=4.0)


def test_an_automatic_model_with_a_reach_takes_hints_and_exports_them(tiny_workdir, tmp_path):
    """export --hint_reach on an automatic model (how the shipped model takes hints): the same
    model without hints, hints that set the colour where they lie, in Keras and in TFLite."""
    from colorgan import cli, export, export_hints  # noqa: PLC0415
    from conftest import run_main  # noqa: PLC0415

    out = tmp_path / "pkg"
    assert run_main(export.main, [f"--model={tiny_workdir}", "--hint_reach=6",
                                  "--formats=fp16_weights", f"--output={out}"]) == cli.EXIT_OK
    automatic, hinted = inference.load_model(tiny_workdir), inference.load_model(str(out))
    assert not automatic.takes_hints and hinted.takes_hints
    rgb = tf.random.stateless_uniform([1, 32, 32, 3], [5, 6])
    np.testing.assert_allclose(hinted.colorize(rgb).numpy(), automatic.colorize(rgb).numpy(),
                               atol=2e-3)  # float16 weights
    hint = user_hints.parse({"points": [{"x": 8, "y": 8, "ab": [40.0, -40.0], "radius": 2}]},
                            32, 32)
    lab = color.rgb_to_lab(hinted.colorize_hints(rgb, hint)).numpy()[0]
    before = color.rgb_to_lab(hinted.colorize(rgb)).numpy()[0]
    goal = np.array([40.0, -40.0])
    assert np.linalg.norm(lab[8, 8, 1:] - goal) < 0.3 * np.linalg.norm(before[8, 8, 1:] - goal)
    # its hint-taking TFLite file spreads hints as the Keras model does
    written = export.export(hinted, str(tmp_path / "lite"), formats=("tflite_fp32", "tflite_int8"),
                            calibration_images=4, parity_images=2)
    lite = [p for p in written if p.endswith("_hints.tflite")]
    assert [p.rsplit("/", 1)[1] for p in lite] == ["colorgan_fp32_hints.tflite"]  # int8: none
    l = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    with open(lite[0], "rb") as f:
        ours, ref = export_hints.parity(hinted, f.read(), l)
    np.testing.assert_allclose(ours, ref, atol=1e-3)
