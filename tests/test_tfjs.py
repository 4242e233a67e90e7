"""colorgan.tfjs and export --formats=tfjs: the converter environment, the converted model run for
real in Node (TF.js CPU backend) against the Keras model, the sidecar the page reads, and the
all-or-nothing rule. The tiny model is converted once per module."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from colorgan import color, export, export_tfjs, images, inference, tfjs
from conftest import CONVERTER_CACHE, run_main

# float16 weights against float32 Keras on the tiny model (measured mean 1e-4 Lab units); on an
# arbitrary-size input the same holds (conv arithmetic in another runtime, same graph).
NODE_VS_KERAS_MEAN_AB = 0.05
# A 48 x 64 model input (multiples of the tiny model's 2**3): the graph's H and W are dynamic.
ODD_HW = (48, 64)

@pytest.fixture(scope="module")
def keras_model(tiny_workdir):
    return inference.load_model(tiny_workdir)


@pytest.fixture(scope="module")
def tfjs_export(tiny_tfjs) -> str:
    assert tiny_tfjs.endswith(os.path.join(export_tfjs.TFJS_DIR, "1"))
    return tiny_tfjs


def test_the_converter_requirements_are_pinned_in_the_constraints_file(tmp_path):
    pins = tfjs.requirement_pins(tfjs.CONSTRAINTS)
    for name in tfjs.CONVERTER_REQUIREMENTS:  # pip writes some names with _ (PEP 503 equal)
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^=\s]*", pins[name])
    (tmp_path / "c.txt").write_text("# a==1\nTensorFlow_Decision.Forests == 1.2\nfoo>=3\n")
    assert tfjs.requirement_pins(str(tmp_path / "c.txt")) == {
        "tensorflow-decision-forests": "TensorFlow_Decision.Forests == 1.2"}


def test_layout_sidecar_and_parity(tfjs_export, keras_model):
    assert sorted(os.listdir(tfjs_export))[:2] == [export_tfjs.WEB_SIDECAR, "group1-shard1of1.bin"]
    with open(os.path.join(tfjs_export, "model.json"), encoding="utf-8") as f:
        model_json = json.load(f)
    assert list(model_json["signature"]["inputs"]) == ["l"]
    stored = [w.get("quantization", {}).get("dtype") for w in model_json["weightsManifest"][0]["weights"]]
    assert stored.count("float16") >= len(keras_model.generator.weights) // 2  # kernels, biases
    info = inference.read_sidecar(os.path.join(tfjs_export, export_tfjs.WEB_SIDECAR))
    parity = info["parity"]
    assert parity["variant"] == "tfjs_float16" and "Node.js" in parity["runtime"]
    assert parity["mean_ab_error"] <= tfjs.PARITY_TOLERANCE["float16"]
    assert parity["images"] > 0 and parity["size_bytes"] == tfjs.model_size(tfjs_export)
    assert info["model_id"] == keras_model.identity
    assert info["multiple"] == keras_model.multiple and info["render_size"] == 32
    record = keras_model.provenance()
    assert info["provenance"] == {**record, "model_kind": "tfjs_float16"}
    assert info["provenance_text"] == images.provenance_text(info["provenance"])


def test_node_runs_any_size_like_keras(tfjs_export, keras_model):
    rng = np.random.default_rng(0)
    l = rng.uniform(-1, 1, (2, *ODD_HW, 1)).astype(np.float32)
    ab, info = tfjs.predict_node(tfjs_export, l)
    assert info["backend"] == "cpu" and ab.shape == (2, *ODD_HW, 2)
    reference = keras_model.predict_ab(tf.constant(l)).numpy()
    assert np.mean(np.abs(ab - reference)) * color.AB_SCALE <= NODE_VS_KERAS_MEAN_AB


def test_a_failed_parity_writes_nothing(keras_model, tmp_path, monkeypatch):
    def wrong(model_dir, l_images):
        ab, info = real(model_dir, l_images)
        return ab + 0.5, info  # 55 Lab units off
    real = tfjs.predict_node
    monkeypatch.setattr(tfjs, "predict_node", wrong)
    with pytest.raises(export.ExportError, match="mean ab error"):
        export.export(keras_model, str(tmp_path), formats=("tfjs",), cache_dir=CONVERTER_CACHE)
    assert os.listdir(tmp_path) == []


def test_cli_formats_tfjs_alone_and_float32(tiny_workdir, tfjs_export, tmp_path):
    out = str(tmp_path / "models")
    argv = [f"--model={tiny_workdir}", f"--output={out}", "--formats=tfjs",
            "--tfjs_quantization=float32", f"--cache_dir={CONVERTER_CACHE}"]
    assert run_main(export.main, argv) == 0
    assert sorted(os.listdir(out)) == [export_tfjs.TFJS_DIR]  # no SavedModel left behind
    float32 = export_tfjs.tfjs_dir(out, 1)
    info = inference.read_sidecar(os.path.join(float32, export_tfjs.WEB_SIDECAR))
    assert info["parity"]["mean_ab_error"] <= tfjs.PARITY_TOLERANCE["float32"]
    weights = [f for f in os.listdir(float32) if f.endswith(".bin")]
    half = [f for f in os.listdir(tfjs_export) if f.endswith(".bin")]
    size = sum(os.path.getsize(os.path.join(float32, f)) for f in weights)
    assert size == pytest.approx(2 * sum(os.path.getsize(os.path.join(tfjs_export, f))
                                         for f in half), rel=0.01)
    assert run_main(export.main, argv) == 2  # exists: --overwrite or another --version
