"""TF.js conversion: the converter's own environment, the conversion of a SavedModel's
`colorize_l` signature (a hint model's `colorize_l_hints`), and running the converted model for
real in Node for its parity check.

`tensorflowjs` cannot be installed beside colorgan's TensorFlow (its dependency
tensorflow-decision-forests pins an older TensorFlow exactly), so the converter runs in a
virtualenv of its own, created once under the cache directory from the pinned
`tfjs-converter-constraints.txt` (BUILD.md, "TF.js"). Node runs the browser page's own code
(`colorgan/web/node_harness.js`, the vendored TF.js on its CPU backend), so no npm install is
needed at run time. colorgan.export calls these; nothing here knows about Keras.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from absl import logging
import numpy as np

from colorgan import config, fileio
from colorgan.errors import UserError

CONSTRAINTS = os.path.join(os.path.dirname(__file__), "tfjs-converter-constraints.txt")
# What the converter environment installs; the rest of its packages are pinned by CONSTRAINTS.
CONVERTER_REQUIREMENTS = ("tensorflowjs", "tensorflow-decision-forests")
NODE_HARNESS = os.path.join(os.path.dirname(__file__), "web", "node_harness.js")
# Weight quantisation of the converted model (config.TFJS_QUANTIZATIONS) -> the converter's flag.
QUANTIZATION_FLAGS = {"float32": [], "float16": ["--quantize_float16=*"],
                      "uint8": ["--quantize_uint8=*"]}
# Parity tolerance (mean |ab error| in Lab units vs Keras), as for TFLite: float32 is the same
# arithmetic in another runtime; float16 rounds weights to 11 significant bits; uint8 stores each
# weight tensor in 256 affine levels.
PARITY_TOLERANCE = {"float32": 0.05, "float16": 0.5, "uint8": 4.0}
_CONVERTER_TIMEOUT_S = 1800
# tensorflowjs_converter, run in its environment, with one fix: its normalize_bias_add pass
# (tfjs PR #7799) turns every Add whose first input is a Conv2D or MatMul into a BiasAdd, even
# when the other input is a whole feature map (a hint model's enc1_hint_add). Grappler then
# fuses it into _FusedConv2D with a rank-4 "bias", which TF.js's CPU backend broadcasts but its
# WASM and WebGL backends refuse ("FusedConv2D only supports rank-1 bias"). Here the pass sees
# only Adds of a 1-D constant, the bias it was written for; the converted automatic models are
# byte for byte the same as without the fix.
_CONVERTER_MAIN = """
import sys
from tensorflowjs.converters import converter, normalize_bias_add

def only_vector_biases(graph_def, original=normalize_bias_add.normalize_bias_add_op):
    nodes = {node.name: node for node in graph_def.node}
    def vector_const(name):
        node = nodes.get(name.split(":")[0])
        return node is not None and node.op == "Const" and len(
            node.attr["value"].tensor.tensor_shape.dim) == 1
    hidden = [node for node in graph_def.node if node.op in ("Add", "AddV2")
              and not (len(node.input) == 2 and vector_const(node.input[1]))]
    ops = [node.op for node in hidden]
    for node in hidden:
        node.op = "NotABiasAdd"
    graph_def = original(graph_def)
    for node, op in zip(hidden, ops):
        node.op = op
    return graph_def

normalize_bias_add.normalize_bias_add_op = only_vector_biases
sys.argv[0] = "tensorflowjs_converter"
converter.pip_main()
"""


def requirement_pins(path: str) -> dict[str, str]:
    """A constraints file's `name==version` lines keyed by the name normalised as pip compares
    names (PEP 503: lower case, runs of -_. as one -), so `tensorflow_decision_forests==1.12.0`
    is found as tensorflow-decision-forests."""
    with open(path, encoding="utf-8") as f:
        return {re.sub(r"[-_.]+", "-", line.split("==")[0].strip()).lower(): line.strip()
                for line in f if "==" in line and not line.startswith("#")}


def converter_python(cache_dir: str = "") -> str:
    """The Python of the converter environment, created on first use (pip, ~3 min and ~900 MB of
    downloads; BUILD.md) under CACHE/tfjs-converter/<hash of the constraints file>."""
    with open(CONSTRAINTS, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:12]
    final = os.path.join(fileio.cache_root(cache_dir), "tfjs-converter", key)
    python = os.path.join(final, "bin", "python")
    if os.path.isfile(python):
        return python
    tmp = f"{final}.tmp-{os.getpid()}"
    logging.info("creating the TF.js converter environment once in %s (a few minutes)", final)
    t0 = time.monotonic()
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        _run([sys.executable, "-m", "venv", tmp], "creating the converter virtualenv")
        pins = requirement_pins(CONSTRAINTS)
        _run([os.path.join(tmp, "bin", "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", "-c", CONSTRAINTS,
              *(pins[name] for name in CONVERTER_REQUIREMENTS)], "installing tensorflowjs")
        # A venv's bin/python finds its pyvenv.cfg beside itself, so the folder can be renamed
        # (we never call its shebang scripts, which hold the temporary path).
        os.replace(tmp, final)
    except OSError as e:
        if not os.path.isfile(python):
            raise UserError(f"cannot create the converter environment in {final}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logging.info("TF.js converter environment ready in %.0f s", time.monotonic() - t0)
    return python


def _run(argv: list[str], what: str, timeout: float = _CONVERTER_TIMEOUT_S) -> str:
    """Runs a helper process; its stdout, or UserError with the tail of its output."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"{what} failed: {e}") from e
    if proc.returncode:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def convert(saved_model: str, out_dir: str, quantization: str, signature: str,
            cache_dir: str = "") -> None:
    """Converts `signature` of the SavedModel at `saved_model` into a TF.js graph model
    (out_dir/model.json + weight shards), weights stored as `quantization`."""
    if quantization not in config.TFJS_QUANTIZATIONS:
        raise UserError(f"unknown TF.js quantization {quantization!r}; valid: "
                        f"{', '.join(config.TFJS_QUANTIZATIONS)}")
    _run([converter_python(cache_dir), "-c", _CONVERTER_MAIN,
          "--input_format=tf_saved_model", f"--signature_name={signature}",
          "--saved_model_tags=serve", *QUANTIZATION_FLAGS[quantization], saved_model, out_dir],
         "tensorflowjs_converter")


def run_node(request: dict, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Runs node_harness.js on `request`, with `arrays` (name -> float32 array) passed as files:
    in the request, {"array": NAME} stands for that array. Returns (output array, info)."""
    node = shutil.which("node")
    if node is None:
        raise UserError("the TF.js export runs its model in Node.js for the parity check: "
                        "install Node.js 18 or newer (`node` on PATH)")
    with tempfile.TemporaryDirectory() as tmp:
        def spec(value):
            if isinstance(value, dict) and "array" in value:
                path = os.path.join(tmp, f"{value['array']}.bin")
                array = np.ascontiguousarray(arrays[value["array"]], np.float32)
                array.tofile(path)
                return {"file": path, "shape": list(array.shape)}
            if isinstance(value, list):
                return [spec(v) for v in value]
            if isinstance(value, dict):
                return {k: spec(v) for k, v in value.items()}
            return value
        request = {k: spec(v) for k, v in request.items()}
        request["output"] = os.path.join(tmp, "output.bin")
        with open(os.path.join(tmp, "request.json"), "w", encoding="utf-8") as f:
            json.dump(request, f)
        stdout = _run([node, NODE_HARNESS, os.path.join(tmp, "request.json")], "Node.js (TF.js)")
        info = json.loads(stdout.strip().splitlines()[-1])
        output = np.fromfile(request["output"], np.float32).reshape(info["shape"])
    return output, info


def predict_node(model_dir: str, l_images: np.ndarray, hint_maps: np.ndarray | None = None
                 ) -> tuple[np.ndarray, dict]:
    """The TF.js model in model_dir on l_images (N, h, w, 1), one at a time, in Node:
    (ab (N, h, w, 2), info with the backend and per-image latency). `hint_maps` (N, h, w, 3)
    (colorgan/hints.py) for a hint model's three inputs: l, hint_ab (its a*b*), hint_mask."""
    arrays, inputs = {}, []
    for i, l in enumerate(l_images):
        arrays[f"l{i}"] = l[None]
        feeds = {"l": {"array": f"l{i}"}}
        if hint_maps is not None:
            arrays[f"hint_ab{i}"] = hint_maps[i, None, ..., :2]
            arrays[f"hint_mask{i}"] = hint_maps[i, None, ..., 2:]
            feeds.update(hint_ab={"array": f"hint_ab{i}"}, hint_mask={"array": f"hint_mask{i}"})
        inputs.append(feeds)
    return run_node({"op": "model", "model_dir": model_dir, "inputs": inputs}, arrays)


def model_size(model_dir: str) -> int:
    """Bytes of a TF.js model folder (model.json and its weight shards)."""
    return sum(os.path.getsize(os.path.join(model_dir, f)) for f in os.listdir(model_dir)
               if f == "model.json" or f.endswith(".bin"))
