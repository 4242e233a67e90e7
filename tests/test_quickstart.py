"""The quickstart verb: trains the recipe (shortened here) and writes the comparison panel."""

import numpy as np
from PIL import Image

from colorgan import cli, quickstart
from conftest import run_main


def test_quickstart_writes_a_panel_of_gray_models_and_truth(tmp_path):
    workdir = tmp_path / "qs"
    # The recipe, shrunk: flags after it win (run() puts --recipe=quickstart first).
    argv = ["--recipe=quickstart", f"--workdir={workdir}", "--steps=2", "--image_size=32",
            "--depth=3", "--base_filters=8", "--max_filters=16", "--batch_size=2"]
    assert run_main(quickstart.main, argv) == cli.EXIT_OK
    panel = np.asarray(Image.open(workdir / quickstart.PANEL))
    truth = np.asarray(Image.open(quickstart.SAMPLE).convert("RGB"))
    h, w, _ = truth.shape
    columns = panel.shape[1] // w
    assert panel.shape[0] == h and panel.shape[1] % w == 0 and columns in (3, 4)
    np.testing.assert_array_equal(panel[:, -w:], truth)  # last column: the photo itself
    gray = panel[:, :w].astype(int)
    assert np.ptp(gray, axis=-1).max() <= 1  # first column: no colour at all
    assert (workdir / "ckpt").is_dir()
