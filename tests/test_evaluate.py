"""The evaluate CLI and report: every file, the gray baseline beside the model, value checks."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorgan import cli, evaluate
from conftest import run_main, write_images

REPORT_FILES = ("metrics.json", "per_image.csv", "summary.md", "curve.png", "colorfulness.png", "grid.png")
# Gray baseline ab error computed by scikit-image in float64 vs ours in float32 through TF decode.
GRAY_AB_TOL = 0.05


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-data")
    write_images(root / "train", 2, size=(40, 40), seed=1)
    paths = write_images(root / "test", 5, size=(37, 53), seed=2)
    return root, paths


def _eval(workdir, data_root, out, *extra):
    return run_main(evaluate.main, [f"--model={workdir}", f"--data={data_root}", f"--output={out}", *extra])


def test_report_has_every_file_and_the_baseline(tiny_workdir, dataset, tmp_path):
    root, paths = dataset
    out = tmp_path / "report"
    assert _eval(tiny_workdir, root, out, "--grid_images=2") == cli.EXIT_OK
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "metrics.json").read_text())
    assert report["images"] == 5 and report["data"]["split"] == "test"
    model, gray = report["means"]["model"], report["means"]["gray_baseline"]
    assert set(model) == set(gray) == {name for name, _ in evaluate.METRICS}
    # The gray baseline has no chroma at all.
    assert gray["colorfulness"] == pytest.approx(0.0, abs=0.5)
    # Its ab error is the truth's mean chroma, computed independently with scikit-image.
    expected = np.mean([np.mean(np.abs(skcolor.rgb2lab(np.asarray(Image.open(p)) / 255.0)[..., 1:]))
                        for p in paths])
    # Without --full_res images are centre-cropped to 32x32 first: compare on the same crops.
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(rows) == 5 and {r["height"] for r in rows} == {"32"}
    assert gray["ab_l1"] > 0 and abs(gray["ab_l1"] - expected) < 0.25 * expected
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (4 * evaluate.GRID_CELL, 3 * evaluate.GRID_CELL, 3)


def test_full_res_scores_each_image_at_its_size(tiny_workdir, dataset, tmp_path):
    root, paths = dataset
    out = tmp_path / "report"
    assert _eval(tiny_workdir, root, out, "--full_res", "--limit=2") == 0
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert [(int(r["height"]), int(r["width"])) for r in rows] == [(37, 53), (37, 53)]
    gray_ab = [float(r["gray_ab_l1"]) for r in rows]
    expected = [np.mean(np.abs(skcolor.rgb2lab(np.asarray(Image.open(p)) / 255.0)[..., 1:]))
                for p in paths[:2]]
    np.testing.assert_allclose(gray_ab, expected, atol=GRAY_AB_TOL)


def test_table_mode_lists_models_and_gray(tiny_workdir, dataset, tmp_path, capsys):
    root, _ = dataset
    second = tmp_path / "second_model"
    shutil.copytree(tiny_workdir, second)
    out = tmp_path / "table"
    assert _eval(f"{tiny_workdir},{second}", root, out, "--table", "--limit=2") == 0
    table = (out / "table.md").read_text()
    assert table.count("\n") == 5  # header, rule, two models, gray baseline
    assert "gray baseline" in table and "second_model" in table
    assert os.path.isfile(out / "2_second_model" / "metrics.json")  # numbered: names may repeat


def test_bad_usage_and_missing_data(tiny_workdir, tmp_path):
    assert run_main(evaluate.main, [f"--model={tiny_workdir}", "--data=samples"]) == cli.EXIT_USAGE
    assert _eval(tiny_workdir, tmp_path / "nothing", tmp_path / "o") == cli.EXIT_USER_ERROR


def test_colorfulness_ratio_is_a_ratio_of_means(tiny_workdir, dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "report"
    assert _eval(tiny_workdir, root, out, "--limit=3") == 0
    report = json.loads((out / "metrics.json").read_text())
    model = report["means"]["model"]
    assert model["colorfulness_ratio"] == pytest.approx(model["colorfulness"] / report["truth_colorfulness"])
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert report["truth_colorfulness"] == pytest.approx(np.mean([float(r["colorfulness_truth"]) for r in rows]))


# float32 TF Lab of 8-bit images against scikit-image's float64 (measured ~1e-4 Lab units), and
# the gray baseline's own ab (~1e-3 from the sRGB round trip): well under one Lab unit.
FLAT_ERROR_TOL = 0.01


def test_flat_ab_error_is_averaged_over_flat_pixels_not_images(tiny_workdir, tmp_path):
    """Gray baseline (ab = 0): its error on a flat pixel is the truth's chroma there. Three
    images with 50%, 0% and 100% flat pixels: the dataset value weighs each by its flat pixels."""
    from colorgan import config, inference  # noqa: PLC0415
    from test_metrics import np_local_std  # noqa: PLC0415

    yy, xx = np.mgrid[0:32, 0:32]
    checker = np.where(((yy + xx) % 2)[..., None], [200, 60, 60], [40, 60, 200]).astype(np.uint8)
    half = checker.copy()
    half[:, :16] = (30, 160, 90)  # a flat green half
    solid = np.broadcast_to(np.array([220, 180, 40], np.uint8), (32, 32, 3)).copy()
    write_images(tmp_path / "train", 1, size=(32, 32))
    os.makedirs(tmp_path / "test")
    for name, img in (("a_half.png", half), ("b_checker.png", checker), ("c_solid.png", solid)):
        Image.fromarray(img).save(tmp_path / "test" / name)
    cfg = config.DataConfig(data=str(tmp_path), image_size=32, val_fraction=0.0)
    result = evaluate.evaluate(inference.load_model(tiny_workdir), cfg, "test")

    errors, pixels = [], []
    for img in (half, checker, solid):
        lab = skcolor.rgb2lab(img / 255.0)
        flat = np_local_std(lab[None, ..., 0], 9)[0] < 2.0
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        pixels.append(flat.sum())
        errors.append(chroma[flat].mean() if flat.any() else 0.0)
    assert pixels == [32 * 12, 0, 32 * 32]  # the flat half less the 4 columns next to the texture
    rows = result["rows"]
    np.testing.assert_allclose([r["gray_flat_pixels"] for r in rows], pixels)
    np.testing.assert_allclose([r["gray_flat_ab_error"] for r in rows], errors,
                               atol=FLAT_ERROR_TOL)
    want = np.sum(np.multiply(errors, pixels)) / np.sum(pixels)
    np.testing.assert_allclose(result["means"]["gray"]["flat_ab_error"], want, atol=FLAT_ERROR_TOL)
    assert abs(want - np.mean(errors)) > 5  # a mean over images would be far off
    model = result["means"]["model"]["flat_ab_error"]
    assert model == pytest.approx(
        sum(r["model_flat_ab_error"] * r["model_flat_pixels"] for r in rows) / sum(pixels))


def test_a_flat_folder_is_evaluated_whole_and_split_folders_still_pick_test(tiny_workdir, dataset,
                                                                           tmp_path, caplog):
    flat = tmp_path / "flat"
    write_images(flat, 4, size=(36, 44), seed=7)
    out = tmp_path / "report"
    with caplog.at_level("INFO"):
        assert _eval(tiny_workdir, flat, out) == cli.EXIT_OK
    report = json.loads((out / "metrics.json").read_text())
    # All four photos (a hash split would put about a tenth of them in "test": none of 4 here).
    assert report["images"] == 4 and report["data"]["split"] == "all"
    assert any("evaluating all of its images" in r.getMessage() for r in caplog.records)
    # --split still picks a hash-assigned split of a flat folder (val_fraction 0.99: nearly all).
    assert _eval(tiny_workdir, flat, tmp_path / "r2", "--split=test", "--val_fraction=0.99") == 0
    assert json.loads((tmp_path / "r2" / "metrics.json").read_text())["data"]["split"] == "test"
    # A source with split folders defaults to its test folder, as before.
    root, paths = dataset
    assert _eval(tiny_workdir, root, tmp_path / "r3") == 0
    report = json.loads((tmp_path / "r3" / "metrics.json").read_text())
    assert report["data"]["split"] == "test" and report["images"] == len(paths)
