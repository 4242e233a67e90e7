"""The Colab notebooks (notebooks/*.ipynb): each runs top to bottom headless with tiny parameters,
and each is stored without outputs, with one REPO_URL that the Colab badges agree with.

Parameters are injected the way CI shrinks a notebook: the cell tagged `parameters` (literal
assignments only) is rewritten with tiny values, everything written goes under pytest's tmp_path.
Kernels run in notebooks/ (as Jupyter starts them) and inherit this process's environment, so the
session's throwaway COLORGAN_CACHE (conftest.py) applies to them too.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import re

import nbclient
import nbformat
import pytest
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS_DIR = os.path.join(REPO_ROOT, "notebooks")
NOTEBOOKS = sorted(os.path.basename(p)[:-len(".ipynb")]
                   for p in glob.glob(os.path.join(NOTEBOOKS_DIR, "*.ipynb")))
SAMPLES = sorted(glob.glob(os.path.join(REPO_ROOT, "colorgan", "samples", "*.jpg")))
TESTED = ("train", "colorize", "export_and_serve", "evaluate")  # each has a test below
CELL_TIMEOUT_S = 600  # generous: the machine may be busy with a training run
KERNEL_STARTUP_S = 120
TINY_SIZE = 32  # the tiny recipe's image size
REPO_URL_RE = re.compile(r'^REPO_URL = "https://github\.com/([\w.-]+)/([\w.-]+)"$', re.MULTILINE)
COLAB_LINK_RE = re.compile(r"https://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/main/"
                           r"notebooks/(\w+)\.ipynb")


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(os.path.join(NOTEBOOKS_DIR, f"{name}.ipynb"), as_version=4)


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and cells[0].cell_type == "code", "one code cell tagged 'parameters'"
    return cells[0]


def parameters(nb: nbformat.NotebookNode) -> dict:
    """The parameters cell's values; it must hold only `NAME = literal` lines (CI rewrites it)."""
    values = {}
    for node in ast.parse(parameters_cell(nb).source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def execute(name: str, **overrides) -> nbformat.NotebookNode:
    """Runs notebook `name` top to bottom with `overrides` in its parameters cell; raises
    nbclient's CellExecutionError if any cell raises. Returns the executed notebook."""
    nb = read(name)
    values = parameters(nb)
    unknown = set(overrides) - set(values)
    assert not unknown, f"{name}.ipynb has no parameters {sorted(unknown)}"
    parameters_cell(nb).source = "\n".join(f"{k} = {v!r}" for k, v in {**values, **overrides}.items())
    before = set(os.listdir(NOTEBOOKS_DIR))
    nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=KERNEL_STARTUP_S,
                            kernel_name="python3",
                            resources={"metadata": {"path": NOTEBOOKS_DIR}}).execute()
    assert set(os.listdir(NOTEBOOKS_DIR)) == before, "the notebook wrote outside RUNS_DIR"
    return nb


def outputs(nb: nbformat.NotebookNode, mime: str = "text/plain") -> str:
    """Everything the notebook printed (streams) or displayed as `mime`."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if out.output_type == "stream" and mime == "text/plain"
                         else out.get("data", {}).get(mime, ""))
    return "\n".join(parts)


def image_outputs(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[nbformat.NotebookNode, str]:
    """train.ipynb on the tiny recipe, 2 steps; its workdir serves the export and evaluate runs."""
    runs = str(tmp_path_factory.mktemp("train-nb"))
    nb = execute("train", RECIPE="tiny", STEPS=2, IMAGE_SIZE=TINY_SIZE, DATA="samples", RUNS_DIR=runs)
    return nb, os.path.join(runs, "tiny")


def test_every_notebook_is_executed_here():
    assert sorted(TESTED) == NOTEBOOKS


def test_train_notebook(trained):
    nb, workdir = trained
    grid = Image.open(os.path.join(workdir, "samples", "step_0000002.png"))
    rows = grid.height // TINY_SIZE
    assert grid.size == (3 * TINY_SIZE, rows * TINY_SIZE) and rows >= 1  # gray | prediction | truth
    with open(os.path.join(workdir, "log.jsonl"), encoding="utf-8") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [1, 2]  # tiny logs every step
    assert image_outputs(nb) == 2  # the sample grid and the loss curve


def test_colorize_notebook(tmp_path):
    # "default": the shipped model, or (until one ships) the notebook's tiny-recipe fallback.
    nb = execute("colorize", MODEL="default", PHOTOS="samples", RENDER_SIZE=0, RUNS_DIR=str(tmp_path))
    for sample in SAMPLES:
        stem = os.path.splitext(os.path.basename(sample))[0]
        out = Image.open(tmp_path / "colorized" / f"{stem}.png")
        assert out.mode == "RGB" and out.size == Image.open(sample).size
        compare = Image.open(tmp_path / "colorized" / f"{stem}_compare.png")
        assert compare.size == (2 * out.width, out.height)  # before | after
    assert f"{len(SAMPLES)} colourised" in outputs(nb)
    assert image_outputs(nb) == len(SAMPLES)


def test_export_and_serve_notebook(trained, tmp_path):
    _, workdir = trained
    nb = execute("export_and_serve", MODEL=workdir, VERSION=1, CALIBRATION_IMAGES=2,
                 RUNS_DIR=str(tmp_path))
    export_dir = tmp_path / "export" / "colorgan"
    assert (export_dir / "1" / "saved_model.pb").is_file()
    for variant in ("fp32", "fp16", "int8"):
        with open(export_dir / "tflite" / "1" / f"colorgan_{variant}.tflite.json", encoding="utf-8") as f:
            assert json.load(f)["parity"]["variant"] == f"tflite_{variant}"
    printed = outputs(nb)
    assert "serving_default" in printed and "colorize_l" in printed
    served, photo = re.search(r"PNG of \((\d+, \d+), 3\) from a photo of \((\d+, \d+), 3\)", printed).groups()
    assert served == photo  # the serving signature answers at the photo's full size
    assert outputs(nb, "text/markdown").count("| tflite_") == 3  # the variants table
    assert image_outputs(nb) == 2  # the served PNG and the variants side by side


def test_evaluate_notebook(trained, tmp_path):
    _, workdir = trained
    nb = execute("evaluate", MODEL=workdir, DATA="samples", SPLIT="all", FULL_RES=False, LIMIT=0,
                 GRID_IMAGES=3, RUNS_DIR=str(tmp_path))
    with open(tmp_path / "eval" / "metrics.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["images"] == len(SAMPLES) and set(report["means"]) == {"model", "gray_baseline"}
    grid = Image.open(tmp_path / "eval" / "grid.png")
    assert grid.size[1] == 2 * grid.size[0]  # 6 rows (3 best, 3 worst) of 3 square cells
    assert "gray baseline" in outputs(nb, "text/markdown")
    assert image_outputs(nb) == 3  # curve, colourfulness, grid


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_clean(name):
    """No outputs or execution counts, and a parameters cell CI can rewrite."""
    nb = read(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, cell.source[:80]
    assert parameters(nb)
    assert "RUNS_DIR" in parameters(nb)  # where CI redirects every file the notebook writes


def test_one_repo_url_for_installs_and_badges():
    """REPO_URL is set once per notebook, in its first code cell, the same everywhere; every
    "Open in Colab" link (README and notebooks) points at that repository's notebooks."""
    owner_repos = set()
    for name in NOTEBOOKS:
        nb = read(name)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert len(REPO_URL_RE.findall(code[0])) == 1, f"{name}: REPO_URL not in the first code cell"
        assert all("REPO_URL =" not in source for source in code[1:]), f"{name}: REPO_URL set twice"
        owner_repos.add(REPO_URL_RE.search(code[0]).groups())
        links = COLAB_LINK_RE.findall("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
        assert links and {(o, r) for o, r, _ in links} <= owner_repos and {n for *_, n in links} == {name}
    assert len(owner_repos) == 1, owner_repos
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        readme_links = COLAB_LINK_RE.findall(f.read())
    assert {(o, r) for o, r, _ in readme_links} == owner_repos
    assert sorted({n for *_, n in readme_links}) == NOTEBOOKS
