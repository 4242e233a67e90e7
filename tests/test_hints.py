"""User-guided colour's model side: simulated hints (Zhang et al. 2017's protocol), the hint
branch that starts at zero, and a fine-tune from an automatic model."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, hints, inference, models, train
from colorgan.errors import UserError
from conftest import with_changes


def test_paint_reveals_the_mean_colour_of_each_patch():
    ab = np.zeros((1, 8, 10, 2), np.float32)
    ab[0, :, :, 0] = np.arange(10)[None, :] / 10  # a* grows to the right
    ab[0, :, :, 1] = -0.5
    centre = tf.constant([[[2.0, 3.0], [6.0, 8.0]]])
    side = tf.constant([[3.0, 1.0]])
    out = hints.paint(tf.constant(ab), centre, side, tf.constant([[True, True]])).numpy()[0]
    mask = out[..., 2]
    assert mask.sum() == 9 + 1
    assert mask[1:4, 2:5].all() and mask[6, 8] == 1
    np.testing.assert_allclose(out[1:4, 2:5, 0], 0.3, atol=1e-6)  # mean of columns 2..4
    np.testing.assert_allclose(out[6, 8, :2], [0.8, -0.5], atol=1e-6)
    assert np.all(out[mask == 0] == 0)


def test_inactive_patches_leave_no_trace():
    ab = tf.random.uniform([1, 6, 6, 2], -1, 1)
    out = hints.paint(ab, tf.constant([[[3.0, 3.0]]]), tf.constant([[5.0]]),
                      tf.constant([[False]])).numpy()
    assert not out.any()


def test_simulate_follows_the_protocol():
    ab = tf.random.stateless_uniform([400, 16, 16, 2], [1, 2], -1, 1)
    out = hints.simulate(ab, tf.constant([3, 4]), free_fraction=0.5, max_patch=1).numpy()
    points = out[..., 2].reshape(400, -1).sum(1)  # 1x1 patches: pixels ~ points (overlaps merge)
    assert np.mean(points == 0) == pytest.approx(0.5 + 0.5 * hints.GEOMETRIC_P, abs=0.08)
    with_hints = points[points > 0]
    assert with_hints.mean() > 3  # geometric, mean 7 before overlaps and the cap
    assert points.max() <= hints.MAX_POINTS
    hinted = out[..., 2] == 1
    np.testing.assert_allclose(out[..., :2][hinted], ab.numpy()[hinted], atol=1e-6)
    again = hints.simulate(ab, tf.constant([3, 4]), free_fraction=0.5, max_patch=1).numpy()
    np.testing.assert_array_equal(out, again)
    assert not hints.simulate(ab, tf.constant([3, 4]), free_fraction=1.0).numpy().any()


@pytest.fixture(scope="module")
def hint_config(tiny_config):
    return with_changes(tiny_config, model={"hint_inputs": True})


def test_a_hint_model_initialised_from_an_automatic_one_is_that_model(tiny_workdir, hint_config):
    automatic = inference.load_model(tiny_workdir)
    g = models.build_generator(hint_config.model)
    train._init_generator(g, tiny_workdir, hint_config.model)  # pylint: disable=protected-access
    l = tf.random.stateless_uniform([2, 32, 32, 1], [5, 6], -1, 1)
    expected = automatic.predict_ab(l).numpy()
    cfg = dataclasses.replace(hint_config.model, vividness=automatic.config.model.vividness)
    np.testing.assert_array_equal(models.predict_ab(g, l, cfg).numpy(), expected)
    # Any hint: still exactly automatic while the hint branch is zero ...
    some = hints.simulate(tf.random.uniform([2, 32, 32, 2], -1, 1), tf.constant([1, 1]),
                          free_fraction=0.0)
    np.testing.assert_array_equal(models.predict_ab(g, l, cfg, hint_map=some).numpy(), expected)
    # ... and the branch is live: once its weights move, a hint changes the colour.
    conv = g.get_layer("enc1_hint_conv")
    conv.set_weights([np.full_like(w, 0.05) for w in conv.get_weights()])
    assert np.abs(models.predict_ab(g, l, cfg, hint_map=some).numpy() - expected).max() > 1e-3


def test_init_from_refuses_other_generators(tiny_workdir, hint_config, tmp_path):
    other = dataclasses.replace(hint_config.model, base_filters=4)
    with pytest.raises(UserError, match="different generator config"):
        train._init_generator(models.build_generator(other), tiny_workdir,  # pylint: disable=protected-access
                              other)
    # A hint model cannot start an automatic one (its hint branch would be dropped silently).
    hint_run = str(tmp_path / "hint-run")
    train.train(with_changes(hint_config, train={"steps": 1}), hint_run)
    automatic = hint_config.model.__class__(**{**dataclasses.asdict(hint_config.model),
                                                "hint_inputs": False})
    with pytest.raises(UserError, match="different generator config"):
        train._init_generator(models.build_generator(automatic), hint_run,  # pylint: disable=protected-access
                              automatic)


def test_simulate_refuses_more_points_than_it_draws():
    with pytest.raises(ValueError, match="count"):
        hints.simulate(tf.zeros([1, 8, 8, 2]), tf.constant([1, 1]), count=hints.MAX_POINTS + 1)


def test_a_hint_model_trains_its_hint_branch(tiny_workdir, hint_config, tmp_path):
    cfg = with_changes(hint_config, train={"steps": 3, "init_from": tiny_workdir,
                                           "hint_free_fraction": 0.0})
    result = train.train(cfg, str(tmp_path / "run"))
    assert all(np.isfinite(h["g_loss"]) for h in result.history)
    g = inference.load_model(str(tmp_path / "run")).generator
    assert np.abs(g.get_layer("enc1_hint_conv").get_weights()[0]).max() > 0


def test_a_regression_heads_hint_shortcut_starts_at_zero(tiny_workdir, hint_config):
    cfg = dataclasses.replace(hint_config.model, hint_shortcut=True)
    automatic = inference.load_model(tiny_workdir)
    g = models.build_generator(cfg)
    train._init_generator(g, tiny_workdir, cfg)  # pylint: disable=protected-access
    cfg = dataclasses.replace(cfg, vividness=automatic.config.model.vividness)
    l = tf.random.stateless_uniform([1, 32, 32, 1], [5, 6], -1, 1)
    hint = hints.paint_colours(tf.constant([32, 32]), tf.constant([[4.0, 4.0]]),
                               tf.constant([3.0]), tf.constant([[0.4, -0.3]]))
    np.testing.assert_array_equal(models.predict_ab(g, l, cfg, hint_map=hint).numpy(),
                                  automatic.predict_ab(l).numpy())


@pytest.mark.parametrize("stride", [1, 2])
def test_the_hint_shortcut_acts_only_on_the_output_cells_hints_cover(hint_config, stride):
    """The shortcut alone (the deep hint branch still at zero) changes exactly the output cells
    a hint covers: a per-cell path; spreading a hint is the deep branch's job."""
    cfg = dataclasses.replace(hint_config.model, hint_shortcut=True, output_stride=stride)
    g = models.build_generator(cfg)
    conv = g.get_layer("out_hint_conv")
    conv.set_weights([np.full_like(w, 0.5) for w in conv.get_weights()])
    l = tf.random.stateless_uniform([1, 32, 32, 1], [5, 6], -1, 1)
    hint = hints.paint_colours(tf.constant([32, 32]), tf.constant([[4.0, 4.0], [20.0, 27.0]]),
                               tf.constant([3.0, 1.0]), tf.constant([[0.4, -0.3], [-0.2, 0.1]]))
    out = models.decode_ab(g([l, hint], training=False), cfg).numpy()[0]
    automatic = models.decode_ab(g([l, hints.empty(l)], training=False), cfg).numpy()[0]
    covered = tf.nn.avg_pool2d(hint[..., 2:], stride, stride, "VALID").numpy()[0, ..., 0] > 0
    np.testing.assert_array_equal(np.abs(out - automatic).max(-1) > 1e-6, covered)
    assert covered.sum() >= 2


def test_a_hint_model_may_start_one_with_the_shortcut_not_the_reverse(hint_config, tmp_path):
    with pytest.raises(ValueError, match="needs hint_inputs"):
        dataclasses.replace(hint_config.model, hint_inputs=False, hint_shortcut=True)
    hint_run = str(tmp_path / "hint-run")
    train.train(with_changes(hint_config, train={"steps": 1}), hint_run)
    shortcut_cfg = dataclasses.replace(hint_config.model, hint_shortcut=True)
    g = models.build_generator(shortcut_cfg)
    train._init_generator(g, hint_run, shortcut_cfg)  # pylint: disable=protected-access
    source = inference.load_model(hint_run).generator
    np.testing.assert_array_equal(g.get_layer("enc1_hint_conv").get_weights()[0],
                                  source.get_layer("enc1_hint_conv").get_weights()[0])
    shortcut_run = str(tmp_path / "shortcut-run")
    train.train(with_changes(hint_config, model={"hint_shortcut": True}, train={"steps": 1}),
                shortcut_run)
    with pytest.raises(UserError, match="different generator config"):
        train._init_generator(models.build_generator(hint_config.model), shortcut_run,  # pylint: disable=protected-access
                              hint_config.model)


def test_a_classification_heads_shortcut_starts_as_the_hints_own_colour(hint_config):
    """Classification heads start the shortcut at the Gaussian over the bins around a hint: a
    cell a hint covers decodes to the hint's colour from step 0 (within the bins' 10 units)."""
    cfg = dataclasses.replace(hint_config.model, hint_shortcut=True, head="classification",
                              output_space="ab", output_stride=2)
    g = models.build_generator(cfg)
    l = tf.random.stateless_uniform([1, 32, 32, 1], [5, 6], -1, 1)
    colours = np.array([[0.3, -0.25], [-0.2, 0.4]], np.float32)  # model space: (33, -27.5), ...
    hint = hints.paint_colours(tf.constant([32, 32]), tf.constant([[8.0, 8.0], [23.0, 23.0]]),
                               tf.constant([9.0, 9.0]), tf.constant(colours))
    out = models.decode_ab(g([l, hint], training=False), cfg).numpy()[0] * color.AB_SCALE
    automatic = models.decode_ab(g([l, hints.empty(l)], training=False), cfg).numpy()[0]
    for (row, col), want in zip([(4, 4), (11, 11)], colours * color.AB_SCALE):
        np.testing.assert_allclose(out[row, col], want, atol=2.0)  # Lab units
        assert np.abs(automatic[row, col] * color.AB_SCALE - want).max() > 10  # not by chance
