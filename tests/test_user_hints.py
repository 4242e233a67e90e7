"""A user's colour hints: the hints file, its errors, where a hint lands in the model's view,
and the colourise CLI and API with --hints (a tiny hint model whose hint branch is made live)."""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import colorgan
from colorgan import colorize, hints, inference, user_hints
from colorgan.errors import UserError
from conftest import run_main, smooth_color_image

BLUE = "#4a7bd0"


def test_parse_reads_hex_and_ab_colours():
    points = user_hints.parse({"points": [{"x": 3, "y": 4, "color": BLUE},
                                          {"x": 0, "y": 0, "ab": [-5, -32], "radius": 2}]}, 10, 8)
    assert points[0].x == 3 and points[0].y == 4 and points[0].radius == 0
    a, b = points[0].ab
    assert b < -20 and abs(a) < 15  # a blue
    assert points[1].ab == (-5.0, -32.0) and points[1].radius == 2
    assert user_hints.hex_to_ab("#808080") == pytest.approx((0.0, 0.0), abs=0.01)


@pytest.mark.parametrize("doc,message", [
    ({"dots": []}, "points"),
    ({"points": [{"x": 10, "y": 0, "color": BLUE}]}, "outside"),
    ({"points": [{"x": 1, "y": 1, "color": "blue"}]}, "#rrggbb"),
    ({"points": [{"x": 1, "y": 1}]}, "exactly one of"),
    ({"points": [{"x": 1, "y": 1, "color": BLUE, "ab": [0, 0]}]}, "exactly one of"),
    ({"points": [{"x": 1, "y": 1, "ab": [0, 300]}]}, "within"),
    ({"points": [{"x": 1, "y": 1, "ab": [0, 0], "radius": -1}]}, "negative"),
    ({"points": [{"x": "a", "y": 1, "ab": [0, 0]}]}, "numbers"),
    ({"points": [{"x": 1, "y": 1, "ab": [0, 0], "size": 3}]}, "keys"),
])
def test_bad_hints_are_one_clear_line_naming_the_file(tmp_path, doc, message):
    path = tmp_path / "photo.hints.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=message) as err:
        user_hints.read(str(path), 10, 8)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "h.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="h.json"):
        user_hints.read(str(path), 10, 8)


@pytest.mark.parametrize("x,y,full,view,cell", [
    (95.9, 63.9, (64, 96), (32, 48), (31, 47)),  # the last half-pixel: the last cell, not lost
    (0, 0, (64, 96), (32, 48), (0, 0)),
    (10, 5, (20, 30), (64, 96), (17, 33)),  # a photo smaller than the view: (5.5, 10.5) * 3.2
    (50, 10, (40, 100), (32, 48), (8, 24)),  # unequal scales per axis
])
def test_a_hint_falls_in_the_cell_holding_its_pixel_centre(x, y, full, view, cell):
    m = user_hints.hint_map([user_hints.Hint(x, y, (0.0, 50.0))], full, view).numpy()[0]
    assert m[..., 2].sum() == 1 and m[cell[0], cell[1], 2] == 1


def test_a_hint_lands_in_its_model_cell_and_radius_scales():
    point = user_hints.Hint(x=95, y=10, ab=(20.0, -40.0))
    m = user_hints.hint_map([point], (64, 96), (32, 48)).numpy()[0]
    assert m[..., 2].sum() == 1 and m[5, 47, 2] == 1  # (95, 10) / 2 -> column 47, row 5
    np.testing.assert_allclose(m[5, 47, :2], np.array([20, -40]) / 110, atol=1e-6)
    for radius, side in ((4, 5), (3, 5), (5, 7), (1, 3), (0.9, 1)):  # radius / 2, rounded half up
        wide = user_hints.hint_map([user_hints.Hint(40, 30, (0.0, 0.0), radius=radius)],
                                   (64, 96), (32, 48)).numpy()[0]
        assert wide[..., 2].sum() == side * side, radius
    assert not user_hints.hint_map([], (64, 96), (32, 48)).numpy().any()


def _photo(tmp_path, name="p.png"):
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(smooth_color_image(48, 64, 2)).save(path)
    return path


def _colours(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_no_points_is_exactly_automatic_and_a_point_changes_the_colour(hint_model, tmp_path):
    src = _photo(tmp_path)
    (tmp_path / "none.json").write_text('{"points": []}')
    (tmp_path / "one.json").write_text(json.dumps(
        {"points": [{"x": 30, "y": 20, "color": BLUE, "radius": 6}]}))
    outs = {}
    for name, spec in (("auto", ""), ("none", str(tmp_path / "none.json")),
                       ("one", str(tmp_path / "one.json"))):
        out = tmp_path / name
        outcome = colorize.colorize_paths(hint_model, [str(src)], str(out), hints=spec)
        assert outcome.written and not outcome.failed
        outs[name] = _colours(out / "p.png")
    np.testing.assert_array_equal(outs["none"], outs["auto"])
    assert np.abs(outs["one"] - outs["auto"]).max() > 3


def test_auto_hints_use_the_file_beside_each_input(hint_model, tmp_path):
    src = _photo(tmp_path)
    src.with_name("p.hints.json").write_text(json.dumps(
        {"points": [{"x": 30, "y": 20, "ab": [60, 60], "radius": 6}]}))
    plain = colorize.colorize_paths(hint_model, [str(src)], str(tmp_path / "a"))
    auto = colorize.colorize_paths(hint_model, [str(src)], str(tmp_path / "b"), hints="auto")
    assert plain.written and auto.written
    assert np.abs(_colours(tmp_path / "b" / "p.png") - _colours(tmp_path / "a" / "p.png")).max() > 3


def test_the_api_takes_hints(hint_model):
    gray = smooth_color_image(48, 64, 3)[..., 0]
    plain = colorgan.colorize_array(gray, hint_model)
    hinted = colorgan.colorize_array(gray, hint_model, hints=[{"x": 10, "y": 10, "color": BLUE,
                                                               "radius": 5}])
    assert plain.shape == hinted.shape == (48, 64, 3)
    assert np.abs(hinted.astype(int) - plain).max() > 3
    np.testing.assert_array_equal(colorgan.colorize_array(gray, hint_model, hints=[]), plain)
    with pytest.raises(ValueError, match="outside"):
        colorgan.colorize_array(gray, hint_model, hints=[{"x": 99, "y": 1, "color": BLUE}])


def test_hints_for_an_automatic_model_or_a_missing_file_fail_in_one_line(tiny_workdir, tmp_path,
                                                                          caplog):
    src = _photo(tmp_path)
    (tmp_path / "h.json").write_text('{"points": []}')
    args = [f"--model={tiny_workdir}", f"--output={tmp_path / 'out'}", str(src)]
    assert run_main(colorize.main, [f"--hints={tmp_path / 'h.json'}", *args]) == 2
    assert run_main(colorize.main, [f"--hints={tmp_path / 'missing.json'}", *args]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("takes no hints" in e for e in errors)
    assert any("missing.json" in e and "no such file" in e for e in errors)
    assert not (tmp_path / "out").exists()


def test_a_bad_hints_file_skips_the_photo_with_one_line(hint_model, tmp_path, caplog):
    src = _photo(tmp_path)
    (tmp_path / "bad.json").write_text('{"points": [{"x": 500, "y": 1, "color": "#000000"}]}')
    outcome = colorize.colorize_paths(hint_model, [str(src)], str(tmp_path / "out"),
                                      hints=str(tmp_path / "bad.json"))
    assert outcome.failed == [str(src)] and not outcome.written
    assert any("bad.json" in r.getMessage() and "outside" in r.getMessage()
               for r in caplog.records)


def test_evaluate_hint_points_reports_psnr_per_hint_count(hint_model, tmp_path, monkeypatch):
    from colorgan import evaluate  # noqa: PLC0415
    monkeypatch.setattr(inference, "load_model", lambda *a, **k: hint_model)
    images = tmp_path / "photos"
    images.mkdir()
    for i in range(3):
        Image.fromarray(smooth_color_image(40, 48, 10 + i)).save(images / f"{i}.png")
    out = tmp_path / "report"
    assert run_main(evaluate.main, [f"--data={images}", "--split=all", "--hint_points=0,2,20",
                                    f"--output={out}"]) == 0
    report = json.loads((out / "hint_metrics.json").read_text())
    assert report["counts"] == [0, 2, 20] and report["images"] == 3
    psnr = {int(k): v for k, v in report["psnr"].items()}
    # 0 hints is the automatic mode: plain evaluate's PSNR of the model on the same crops.
    plain = evaluate.evaluate(hint_model, evaluate.config.DataConfig(data=str(images)), "all")
    assert psnr[0] == pytest.approx(plain["means"]["model"]["psnr"], abs=1e-3)
    assert report["gray"]["psnr"] == pytest.approx(plain["means"]["gray"]["psnr"], abs=1e-3)
    assert psnr[20] != pytest.approx(psnr[0], abs=1e-3)  # the (random) hint branch is live
    assert set(report["worse"]) == {"2", "20"} and all(0 <= n <= 3 for n in report["worse"].values())
    assert (out / "hint_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "gray" in (out / "hint_summary.md").read_text()
    assert run_main(evaluate.main, [f"--data={images}", "--hint_points=0,x",
                                    f"--output={out}"]) == 1


def test_worse_than_automatic_counts_the_images_hints_hurt():
    from colorgan import hint_eval  # noqa: PLC0415
    psnr = {0: [20.0, 25.0, 30.0], 5: [21.0, 24.0, 29.0], 10: [20.0, 26.0, 31.0]}
    assert hint_eval.worse_than_automatic(psnr) == {5: 2, 10: 0}  # equal is not worse
    assert hint_eval.worse_than_automatic({5: [1.0]}) == {}
    text = hint_eval.summary_markdown({"counts": [0, 5, 10], "images": 3, "worse": {5: 2, 10: 0},
                                       "psnr": {0: 25.0, 5: 24.7, 10: 25.7},
                                       "auc": {0: 0.9, 5: 0.9, 10: 0.91},
                                       "gray": {"psnr": 22.0, "auc": 0.88}})
    assert "| 5 | 24.70 | 0.9000 | 2 of 3 |" in text and "| 10 | 25.70 | 0.9100 | 0 of 3 |" in text


def test_true_hints_reveal_the_truths_mean_colour_at_any_view_size():
    from colorgan import hint_eval  # noqa: PLC0415
    ab_true = tf.random.stateless_uniform([1, 40, 60, 2], [1, 2], -0.5, 0.5)
    for hw in [(40, 60), (20, 30)]:
        hint_map = hint_eval.true_hints(ab_true, 5, (0, 3))(hw).numpy()
        assert hint_map.shape == (1, *hw, 3)
        mask = hint_map[0, ..., 2] > 0
        view_ab = tf.image.resize(ab_true, hw, antialias=True).numpy()[0]
        assert 1 <= mask.sum() <= 5 * hints.MAX_PATCH ** 2
        # Simulated at the view's own size (as in training), not resized from another.
        np.testing.assert_array_equal(hint_map, hints.simulate(
            tf.constant(view_ab[None]), tf.constant((0, 3)), count=5).numpy())
    flat = hint_eval.true_hints(tf.fill([1, 40, 60, 2], 0.3), 5, (0, 3))((20, 30)).numpy()[0]
    np.testing.assert_allclose(flat[flat[..., 2] > 0][:, :2], 0.3, atol=1e-5)  # exactly the truth
    same = hint_eval.true_hints(ab_true, 5, (0, 3))((40, 60))
    assert np.array_equal(same, hint_eval.true_hints(ab_true, 5, (0, 3))((40, 60)))  # seeded
    assert not np.array_equal(same, hint_eval.true_hints(ab_true, 5, (0, 4))((40, 60)))
    assert not np.any(hint_eval.true_hints(ab_true, 0, (0, 3))((40, 60)))  # 0: automatic


def test_a_hint_models_saved_model_adds_a_hints_signature(hint_model, tmp_path):
    from colorgan import export_saved_model, models  # noqa: PLC0415
    path = export_saved_model.write(hint_model, str(tmp_path / "sm"), 1, 32)
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "colorize_l", "colorize_l_hints"} <= set(loaded.signatures)
    l = tf.random.stateless_uniform([1, 32, 32, 1], [7, 7], -1, 1)
    hint_map = hints.simulate(tf.random.uniform([1, 32, 32, 2], -1, 1), tf.constant([2, 2]),
                              count=6)
    with_hints = loaded.signatures["colorize_l_hints"](
        l=l, hint_ab=hint_map[..., :2], hint_mask=hint_map[..., 2:])["ab"].numpy()
    cfg = hint_model.config.model
    expected = models.predict_ab(hint_model.generator, l, cfg, hint_map=hint_map).numpy()
    np.testing.assert_allclose(with_hints, expected, atol=1e-5)
    zero = loaded.signatures["colorize_l_hints"](
        l=l, hint_ab=tf.zeros([1, 32, 32, 2]), hint_mask=tf.zeros([1, 32, 32, 1]))["ab"].numpy()
    automatic = loaded.signatures["colorize_l"](l=l)["ab"].numpy()
    np.testing.assert_allclose(zero, automatic, atol=1e-6)
    assert np.abs(with_hints - automatic).max() > 1e-3


def test_a_hint_models_tflite_files_take_hints_beside_the_automatic_ones(hint_model, tmp_path):
    from colorgan import export, export_hints  # noqa: PLC0415
    hint_model = hint_model.with_settings(hint_reach=0.0)  # G's hints: int8 files too
    written = export.export(hint_model, str(tmp_path / "out"), formats=("tflite_fp32",
                                                                         "tflite_int8"),
                            calibration_images=4, parity_images=2)
    paths = sorted(p for p in written if p.endswith(".tflite"))
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "colorgan_fp32.tflite", "colorgan_fp32_hints.tflite", "colorgan_int8.tflite",
        "colorgan_int8_hints.tflite"]
    for path in paths:
        report = json.loads(open(path + ".json").read())["parity"]
        assert report["mean_ab_error"] <= report["tolerance_mean_ab_error"]
    # The automatic file is the automatic model: loadable as ever, equal to Keras without hints.
    lite = inference.load_model(paths[0])
    l = tf.random.stateless_uniform([1, 32, 32, 1], [9, 9], -1, 1)
    np.testing.assert_allclose(lite.predict_ab(l).numpy(), hint_model.predict_ab(l).numpy(),
                               atol=1e-4)
    assert json.loads(open(paths[1] + ".json").read())["parity"]["variant"] == "tflite_fp32_hints"
    assert export_hints.tflite_path(paths[0]) == paths[1]
