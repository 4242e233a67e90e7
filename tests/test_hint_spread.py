"""Hint spreading (colorgan/hint_spread.py): a hint's correction, exact where it lies, fading
with distance, stopped by lightness edges; nothing without hints."""

import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, config, hint_spread, hints, inference, user_hints
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
    assert 0.05 < near < 0.35  # ~2 reaches away: a fraction
    assert far < 0.01  # ~4 reaches away: nothing


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


def test_hint_reach_is_validated_where_it_is_defined():
    with pytest.raises(ValueError, match="hint_reach"):
        config.ModelConfig(hint_reach=8.0)  # no hint inputs
    with pytest.raises(ValueError, match="hint_reach"):
        config.ModelConfig(hint_inputs=True, hint_reach=-1.0)


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
    # no hint: the automatic model, whatever the reach
    np.testing.assert_array_equal(spread.colorize_hints(rgb, []).numpy(),
                                  plain.colorize(rgb).numpy())


def test_an_exported_models_reach_is_fixed(hint_model, tmp_path):
    from colorgan import export  # noqa: PLC0415

    path = export.export(hint_model.with_settings(hint_reach=8.0), str(tmp_path / "e"),
                         formats=("saved_model",))[0]
    with pytest.raises(UserError, match="hint_reach"):
        inference.load_model(path, hint_reach=4.0)


def test_export_hint_inputs_makes_an_automatic_model_take_hints(tiny_workdir, tmp_path):
    """export --hint_inputs --hint_reach (how the shipped model is packaged): the same model
    without hints, and hints that move the colour towards them."""
    from colorgan import cli, export  # noqa: PLC0415
    from conftest import run_main  # noqa: PLC0415

    out = tmp_path / "pkg"
    assert run_main(export.main, [f"--model={tiny_workdir}", "--hint_inputs", "--hint_reach=6",
                                  "--formats=fp16_weights", f"--output={out}"]) == cli.EXIT_OK
    automatic, hinted = inference.load_model(tiny_workdir), inference.load_model(str(out))
    assert hinted.takes_hints and hinted.config.model.hint_reach == 6.0
    rgb = tf.random.stateless_uniform([1, 32, 32, 3], [5, 6])
    np.testing.assert_allclose(hinted.colorize(rgb).numpy(), automatic.colorize(rgb).numpy(),
                               atol=2e-3)  # float16 weights
    hint = user_hints.parse({"points": [{"x": 8, "y": 8, "ab": [40.0, -40.0], "radius": 2}]},
                            32, 32)
    lab = color.rgb_to_lab(hinted.colorize_hints(rgb, hint)).numpy()[0]
    before = color.rgb_to_lab(hinted.colorize(rgb)).numpy()[0]
    goal = np.array([40.0, -40.0])
    assert np.linalg.norm(lab[8, 8, 1:] - goal) < 0.3 * np.linalg.norm(before[8, 8, 1:] - goal)
    # an automatic model cannot be given a reach without hint inputs
    assert run_main(export.main, [f"--model={tiny_workdir}", "--hint_reach=6",
                                  "--formats=fp16_weights", f"--output={tmp_path / 'x'}"]) != 0
