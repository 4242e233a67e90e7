"""Export: the SavedModel (TF Serving layout, both signatures), the TFLite variants and their parity
guard, loading exports back, and the export CLI.

The tiny model is exported once per module (all formats) and every test reads that export.
"""

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import (cli, color, colorize, config, export, images, inference, models,
                      tflite_runtime)
from conftest import run_main, smooth_color_image

# The colourise CLI rounds (round(x * 255)) while the serving signature truncates
# (convert_image_dtype: int(x * 255.5)), and PIL and TF decode the JPEG with the same accurate
# integer IDCT: the two PNGs may differ by one level, never more (measured: max 1, mean 0.22).
SERVING_VS_CLI_MAX_LEVELS = 1
# colorize_l is the Keras generator itself, traced into a graph: float32 round-off only
# (measured: 0.0).
L_SIGNATURE_ATOL = 1e-5
# A SavedModel runs the same graph as Keras: the uint8 results differ by round-off only
# (measured: 0.0 levels mean).
SAVED_MODEL_MEAN_LEVELS = 2
# The TFLite input is dynamic (1, H, W, 1): a 61 x 97 photo is rendered at 32 x 48, aspect kept,
# as Keras renders it, so fp32 differs by float32 round-off only. Measured mean |diff| vs Keras:
# 0.0 levels for the tiny model and for the colourful perturbed model below.
TFLITE_MEAN_LEVELS = 0.5
# int8 quantises every activation to 256 levels. Measured 0.23 levels (tiny model; its colour is
# nearly flat, ab std ~0.5 Lab units), 0.20 levels (colourful model, ab std ~17 Lab units).
TFLITE_INT8_MEAN_LEVELS = 1
# Colorizer.colorize of an export against the Keras model at the same render size, float sRGB in
# [0, 1]: a SavedModel runs the same graph (measured max 0.0); fp32 TFLite runs the same
# arithmetic in other kernels (measured max 5e-7). The tiny model's own colour changes by 1.7e-3
# (max) between render sizes 32 and 64, so these tolerances can tell the render sizes apart.
SAVED_MODEL_RGB_ATOL = 1e-5
TFLITE_FP32_RGB_ATOL = 2e-5
# uint8 output quantisation and gamut clipping move L* well under one unit on average.
L_TOLERANCE_MEAN = 0.5
# Weight noise that turns the tiny model's near-constant colour (ab std ~0.5 Lab units, which
# would let almost any TFLite output pass the int8 tolerance of 4) into a colourful one (~17).
COLOURFUL_WEIGHT_NOISE = 0.1
SUBPROCESS_TIMEOUT_S = 180
SERVER_START_TIMEOUT_S = 60
CALIBRATION_IMAGES = 16
VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8")
RENDER = 32  # the tiny recipe's image_size: an export's render size unless --render_size
OTHER_RENDER = 64  # a render size the tiny model was not trained at (exported with --render_size)


# --------------------------------------------------------------------------------- helpers
def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _decode_png(content: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(content))
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"))


def _mean_levels(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int32) - b.astype(np.int32))))


def _saved_model_cli() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    path = path if os.path.isfile(path) else shutil.which("saved_model_cli")
    if not path:
        pytest.skip("saved_model_cli is not installed")
    return path


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _l_images(count: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Model-space L (count, h, w, 1) of smooth colour images (realistic, unlike noise)."""
    rgb = np.stack([smooth_color_image(h, w, seed + i) for i in range(count)]) / 255.0
    return color.rgb_to_gray_l(rgb.astype(np.float32)).numpy()


def _colourful(tiny_workdir) -> inference.Colorizer:
    """The tiny model with noisy weights: the same architecture, strongly varying colour."""
    colorizer = inference.load_model(tiny_workdir)
    rng = np.random.default_rng(0)
    colorizer.generator.set_weights([w + rng.normal(0, COLOURFUL_WEIGHT_NOISE, w.shape).astype(w.dtype)
                                     for w in colorizer.generator.get_weights()])
    return colorizer


def _tflite_bytes(keras_model: keras.Model, tmp_path) -> bytes:
    """A float TFLite flatbuffer of `keras_model` at l (1, 32, 32, 1), converted as export does."""
    archive = keras.export.ExportArchive()
    archive.track(keras_model)
    archive.add_endpoint("serving_default", lambda l: {"ab": keras_model(l, training=False)},
                         input_signature=[tf.TensorSpec([1, RENDER, RENDER, 1], tf.float32, name="l")])
    path = str(tmp_path / "unrelated")
    archive.write_out(path, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(path).convert()


# -------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def keras_model(tiny_workdir) -> inference.Colorizer:
    return inference.load_model(tiny_workdir)


@pytest.fixture(scope="module")
def exported(tiny_workdir, keras_model, tmp_path_factory) -> str:
    """The tiny model exported once, all formats; returns the TF Serving base directory."""
    out = str(tmp_path_factory.mktemp("export") / "colorgan")
    written = export.export(inference.load_model(tiny_workdir), out, version=1,
                            calibration_images=CALIBRATION_IMAGES)
    assert written == [os.path.join(out, "1")] + [
        export.tflite_path(out, 1, v) for v in VARIANTS]
    return out


@pytest.fixture(scope="module")
def exported_other_size(tiny_workdir, tmp_path_factory) -> str:
    """The tiny model exported by the CLI at --render_size=OTHER_RENDER (SavedModel and fp32
    TFLite only: the cheap formats); returns the TF Serving base directory."""
    out = str(tmp_path_factory.mktemp("export-other-size") / "colorgan")
    assert run_main(export.main, [f"--model={tiny_workdir}", f"--output={out}",
                                  f"--render_size={OTHER_RENDER}", "--formats=saved_model,tflite_fp32",
                                  "--calibration_images=4"]) == cli.EXIT_OK
    return out


@pytest.fixture(scope="module")
def serving(exported):
    """Version 1 loaded back with TF's own loader (no colorgan code), as TF Serving would."""
    return tf.saved_model.load(os.path.join(exported, "1"))


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """A 61 x 97 JPEG and a 70 x 45 PNG (no EXIF), as files and bytes."""
    folder = tmp_path_factory.mktemp("odd")
    found = {}
    for name, (h, w), fmt, seed in [("wide.jpg", (61, 97), "JPEG", 11), ("tall.png", (70, 45), "PNG", 12)]:
        content = _encode(smooth_color_image(h, w, seed), fmt)
        (folder / name).write_bytes(content)
        found[name] = (str(folder / name), content, (h, w))
    return found


# ---------------------------------------------------------------------------------- layout
def test_layout_and_sidecars(exported, keras_model):
    assert sorted(os.listdir(exported)) == ["1", "tflite"]  # no temporary directory left behind
    version = os.path.join(exported, "1")
    assert os.path.isfile(os.path.join(version, "saved_model.pb"))
    assert os.listdir(os.path.join(version, "variables"))  # the weights are in the SavedModel
    with open(os.path.join(version, inference.SAVED_MODEL_CONFIG), encoding="utf-8") as f:
        saved_config = json.load(f)
    assert saved_config["render_size"] == RENDER
    assert saved_config["config"]["model"]["image_size"] == RENDER
    assert saved_config["model_id"] == keras_model.identity  # the weights it was made from
    assert sorted(os.listdir(os.path.join(exported, "tflite", "1"))) == sorted(
        f"colorgan_{k}.tflite{ext}" for k in ("fp32", "fp16", "int8") for ext in ("", ".json"))
    for variant in VARIANTS:
        path = export.tflite_path(exported, 1, variant)
        with open(path + ".json", encoding="utf-8") as f:
            sidecar = json.load(f)
        parity = sidecar["parity"]
        assert parity["variant"] == variant
        assert parity["size_bytes"] == os.path.getsize(path)
        assert 0 <= parity["mean_ab_error"] <= export.PARITY_TOLERANCE[variant]
        assert parity["max_ab_error"] >= parity["mean_ab_error"]
        assert parity["latency_ms"] > 0
        assert sidecar["config"] == saved_config["config"]
        assert sidecar["render_size"] == RENDER
        assert sidecar["model_id"] == keras_model.identity


# ------------------------------------------------------------------------------ SavedModel
def test_serving_default_matches_the_cli_at_full_size(serving, odd_images, tiny_workdir, tmp_path):
    serve = serving.signatures["serving_default"]
    out_dir = tmp_path / "cli"
    files = [path for path, _, _ in odd_images.values()]
    assert run_main(colorize.main, [f"--model={tiny_workdir}", f"--output={out_dir}", *files]) == 0
    singles = {}
    for name, (_, content, (h, w)) in odd_images.items():
        pngs = serve(image_bytes=tf.constant([content]))["colorized_png_bytes"].numpy()
        assert pngs.shape == (1,)
        served = _decode_png(pngs[0])
        assert served.shape == (h, w, 3)
        cli_png = np.asarray(Image.open(out_dir / (os.path.splitext(name)[0] + ".png")).convert("RGB"))
        diff = np.abs(served.astype(np.int32) - cli_png.astype(np.int32))
        assert diff.max() <= SERVING_VS_CLI_MAX_LEVELS, (name, diff.max())
        singles[name] = served
    # One batch of two different-size images: two PNGs, the same as one at a time.
    batch = serve(image_bytes=tf.constant([c for _, c, _ in odd_images.values()]))
    pngs = batch["colorized_png_bytes"].numpy()
    assert pngs.shape == (2,)
    for png, name in zip(pngs, odd_images):
        np.testing.assert_array_equal(_decode_png(png), singles[name])


def test_colorize_l_equals_the_keras_generator(serving, keras_model):
    l = _l_images(2, 32, 48, seed=3)
    ab = serving.signatures["colorize_l"](l=tf.constant(l))["ab"].numpy()
    assert ab.shape == (2, 32, 48, 2) and ab.dtype == np.float32
    assert np.all(np.abs(ab) <= 1.0)
    ref = keras_model.generator(l, training=False)[..., -2:].numpy()
    np.testing.assert_allclose(ab, ref, atol=L_SIGNATURE_ATOL)
    assert np.std(ab) > 0  # a real prediction, not a constant


def test_invalid_bytes_are_an_invalid_argument_error(serving, odd_images):
    serve = serving.signatures["serving_default"]
    for bad in (b"this is not an image", b"\xff\xd8\xff\xe0truncated jpeg", b""):
        with pytest.raises(tf.errors.InvalidArgumentError):
            serve(image_bytes=tf.constant([bad]))
    _, content, (h, w) = odd_images["tall.png"]  # still serving afterwards
    assert _decode_png(serve(image_bytes=tf.constant([content]))["colorized_png_bytes"][0].numpy()).shape == (h, w, 3)


def test_saved_model_cli_show_and_run(exported, serving, tmp_path):
    binary = _saved_model_cli()
    version = os.path.join(exported, "1")
    show = subprocess.run([binary, "show", "--dir", version, "--all"], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S, env=_env())
    assert show.returncode == 0, show.stderr[-2000:]
    assert "signature_def['serving_default']" in show.stdout
    assert "signature_def['colorize_l']" in show.stdout
    assert "image_bytes" in show.stdout and "colorized_png_bytes" in show.stdout

    l = _l_images(1, 32, 48, seed=4)
    np.save(tmp_path / "l.npy", l)
    out = tmp_path / "out"
    run = subprocess.run([binary, "run", "--dir", version, "--tag_set", "serve", "--signature_def",
                          "colorize_l", "--inputs", f"l={tmp_path / 'l.npy'}", "--outdir", str(out)],
                         capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, env=_env())
    assert run.returncode == 0, run.stderr[-2000:]
    ab = np.load(out / "ab.npy")
    assert ab.shape == (1, 32, 48, 2)
    expected = serving.signatures["colorize_l"](l=tf.constant(l))["ab"].numpy()
    np.testing.assert_allclose(ab, expected, atol=L_SIGNATURE_ATOL)


def test_predict_request_round_trip(serving, odd_images):
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415

    _, content, (h, w) = odd_images["tall.png"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "colorgan"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([content]))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire

    signature = serving.signatures[request.model_spec.signature_name]
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())

    assert list(response.outputs) == ["colorized_png_bytes"]
    pngs = tf.make_ndarray(response.outputs["colorized_png_bytes"])
    assert pngs.shape == (1,)
    served = _decode_png(pngs[0])
    assert served.shape == (h, w, 3)
    direct = _decode_png(signature(image_bytes=tf.constant([content]))["colorized_png_bytes"][0].numpy())
    np.testing.assert_array_equal(served, direct)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensorflow_model_server_rest_predict(exported, odd_images, serving):
    binary = shutil.which("tensorflow_model_server")
    if not binary:
        pytest.skip("tensorflow_model_server is not installed on this machine")
    grpc_port, rest_port = _free_port(), _free_port()
    proc = subprocess.Popen([binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                             "--rest_api_timeout_in_ms=60000", "--model_name=colorgan",
                             f"--model_base_path={exported}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{rest_port}/v1/models/colorgan"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(base, timeout=5) as r:
                    status = json.load(r)
                if any(v["state"] == "AVAILABLE" for v in status["model_version_status"]):
                    break
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass
            assert proc.poll() is None, "tensorflow_model_server exited"
            assert time.monotonic() < deadline, "tensorflow_model_server did not load the model"
            time.sleep(0.5)
        _, content, (h, w) = odd_images["wide.jpg"]
        body = json.dumps({"inputs": {"image_bytes": [{"b64": base64.b64encode(content).decode()}]}})
        req = urllib.request.Request(base + ":predict", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            result = json.load(r)
        outputs = result["outputs"]
        first = (outputs["colorized_png_bytes"] if isinstance(outputs, dict) else outputs)[0]
        served = _decode_png(base64.b64decode(first["b64"]))
        assert served.shape == (h, w, 3)
        direct = _decode_png(serving.signatures["serving_default"](
            image_bytes=tf.constant([content]))["colorized_png_bytes"][0].numpy())
        np.testing.assert_array_equal(served, direct)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------- TFLite
@pytest.mark.parametrize("variant", VARIANTS)
def test_tflite_variant_parity_and_float_interface(exported, keras_model, variant):
    path = export.tflite_path(exported, 1, variant)
    with open(path, "rb") as f:
        interpreter = tflite_runtime.make_interpreter(f.read())
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32  # float at both ends
    assert tuple(inp["shape_signature"]) == (1, -1, -1, 1)  # any size: resized per photo
    assert tuple(out["shape_signature"]) == (1, -1, -1, 2)
    interpreter.resize_tensor_input(inp["index"], [1, RENDER, RENDER, 1])
    interpreter.allocate_tensors()
    l_images = export.calibration_l(keras_model.config.data, RENDER, 4)  # the data it was checked on
    errors = []
    for l in l_images:
        interpreter.set_tensor(inp["index"], l[None])
        interpreter.invoke()
        ab = interpreter.get_tensor(out["index"])
        assert ab.shape == (1, RENDER, RENDER, 2)
        assert np.all(np.isfinite(ab))
        ref = keras_model.generator(l[None], training=False)[..., -2:].numpy()
        errors.append(np.abs(ab - ref) * color.AB_SCALE)
    assert np.mean(errors) <= export.PARITY_TOLERANCE[variant]


def test_tflite_fp32_takes_any_size_like_keras(exported, keras_model):
    """Non-square inputs of changing sizes, each resized into the interpreter, match the Keras
    generator on the same input (no squash to a square)."""
    with open(export.tflite_path(exported, 1, "tflite_fp32"), "rb") as f:
        predict = tflite_runtime.predict_fn(f.read())
    for h, w in ((32, 48), (64, 32), (32, 48)):
        l = _l_images(1, h, w, seed=h + w)
        ab = predict(l).numpy()
        assert ab.shape == (1, h, w, 2)
        ref = keras_model.predict_ab(tf.constant(l)).numpy()
        assert np.mean(np.abs(ab - ref)) * color.AB_SCALE <= export.PARITY_TOLERANCE["tflite_fp32"]
        assert np.std(ref) > 0  # a real prediction, not a constant


def test_tflite_sizes(exported, keras_model):
    sizes = {k: os.path.getsize(export.tflite_path(exported, 1, f"tflite_{k}"))
             for k in ("fp32", "fp16", "int8")}
    weights_bytes = keras_model.generator.count_params() * 4
    assert sizes["fp32"] >= weights_bytes  # every float32 weight is in the file
    assert sizes["int8"] < sizes["fp32"]
    assert sizes["fp16"] < sizes["fp32"]


def test_colourful_model_exports_within_parity(tiny_workdir, tmp_path):
    """Parity on a model whose colour varies, so the tolerances actually constrain the output."""
    colourful = _colourful(tiny_workdir)
    l = _l_images(2, RENDER, RENDER, seed=5)
    assert np.std(colourful.generator(l, training=False)[..., -2:]) * color.AB_SCALE > 5
    out = str(tmp_path / "colourful")
    written = export.export(colourful, out, formats=("tflite_fp32", "tflite_int8"),
                            calibration_images=CALIBRATION_IMAGES)
    assert written == [export.tflite_path(out, 1, f"tflite_{k}") for k in ("fp32", "int8")]
    for path, variant in zip(written, ("tflite_fp32", "tflite_int8")):
        with open(path + ".json", encoding="utf-8") as f:
            assert json.load(f)["parity"]["mean_ab_error"] <= export.PARITY_TOLERANCE[variant]
    rgb = smooth_color_image(61, 97, seed=21)
    ref = inference.colorize_array(rgb, model=colourful)
    plain = inference.colorize_array(rgb, model=inference.load_model(tiny_workdir))
    assert _mean_levels(ref, plain) > 2 * TFLITE_MEAN_LEVELS  # the tolerance below can tell them apart
    for path, tolerance in zip(written, (TFLITE_MEAN_LEVELS, TFLITE_INT8_MEAN_LEVELS)):
        assert _mean_levels(inference.colorize_array(rgb, model=path), ref) <= tolerance, path


# ------------------------------------------------------------------------- loading exports
def test_load_exports_colorize_like_keras(exported, keras_model, tmp_path):
    rgb = smooth_color_image(61, 97, seed=21)
    ref = inference.colorize_array(rgb, model=keras_model)

    base = str(tmp_path / "served")
    shutil.copytree(os.path.join(exported, "1"), os.path.join(base, "1"))
    assert export.export(keras_model, base, version=2, formats=("saved_model",)) == [os.path.join(base, "2")]
    saved = inference.load_model(base)
    assert saved.kind == "saved_model" and saved.source.endswith(os.sep + "2")
    out = inference.colorize_array(rgb, model=saved)
    assert out.shape == (61, 97, 3)
    assert _mean_levels(out, ref) <= SAVED_MODEL_MEAN_LEVELS

    lite = inference.load_model(export.tflite_path(exported, 1, "tflite_fp32"))
    assert lite.kind == "tflite" and lite.config == keras_model.config
    out = inference.colorize_array(rgb, model=lite)
    assert out.shape == (61, 97, 3)
    assert _mean_levels(out, ref) <= TFLITE_MEAN_LEVELS


def test_loaded_exports_keep_the_identity_and_render_size(exported, exported_other_size,
                                                       keras_model):
    sources = [(os.path.join(exported, "1"), RENDER, "saved_model"),
               (export.tflite_path(exported, 1, "tflite_int8"), RENDER, "tflite_int8"),
               (os.path.join(exported_other_size, "1"), OTHER_RENDER, "saved_model"),
               (export.tflite_path(exported_other_size, 1, "tflite_fp32"), OTHER_RENDER, "tflite_fp32")]
    for path, render_size, kind in sources:
        loaded = inference.load_model(path)
        assert loaded.identity == keras_model.identity, path
        assert loaded.default_render_size == render_size, path
        record = loaded.provenance()
        assert (record["model"], record["model_kind"], record["render_size"]) == (
            keras_model.identity, kind, render_size)
    with open(export.tflite_path(exported_other_size, 1, "tflite_fp32") + ".json",
              encoding="utf-8") as f:
        sidecar = json.load(f)
    assert sidecar["render_size"] == OTHER_RENDER and sidecar["model_id"] == keras_model.identity
    with open(os.path.join(exported_other_size, "1", inference.SAVED_MODEL_CONFIG),
              encoding="utf-8") as f:
        sidecar = json.load(f)
    assert sidecar["render_size"] == OTHER_RENDER and sidecar["model_id"] == keras_model.identity


def test_export_at_another_render_size_colorizes_like_keras_at_that_size(exported_other_size,
                                                                         keras_model):
    rgb = (smooth_color_image(61, 97, seed=22)[None] / 255.0).astype(np.float32)
    ref = keras_model.colorize(rgb, OTHER_RENDER).numpy()
    # The tolerances below can tell the two render sizes apart.
    assert np.abs(ref - keras_model.colorize(rgb, RENDER).numpy()).max() > 10 * TFLITE_FP32_RGB_ATOL
    saved = inference.load_model(os.path.join(exported_other_size, "1"))
    np.testing.assert_allclose(saved.colorize(rgb).numpy(), ref, atol=SAVED_MODEL_RGB_ATOL)
    lite = inference.load_model(export.tflite_path(exported_other_size, 1, "tflite_fp32"))
    np.testing.assert_allclose(lite.colorize(rgb).numpy(), ref, atol=TFLITE_FP32_RGB_ATOL)


def test_colorize_cli_accepts_exports(exported, odd_images, tiny_workdir, tmp_path):
    path, _, (h, w) = odd_images["wide.jpg"]
    assert run_main(colorize.main, [f"--model={tiny_workdir}", f"--output={tmp_path / 'keras'}", path]) == 0
    ref = np.asarray(Image.open(tmp_path / "keras" / "wide.png"))
    l_in = color.rgb_to_lab(images.read_image(path, config.DataConfig.max_pixels)[0]).numpy()[..., 0]
    for name, model, tolerance in [
            ("saved", os.path.join(exported, "1"), SAVED_MODEL_MEAN_LEVELS),
            ("int8", export.tflite_path(exported, 1, "tflite_int8"), TFLITE_INT8_MEAN_LEVELS)]:
        out_dir = tmp_path / name
        assert run_main(colorize.main, [f"--model={model}", f"--output={out_dir}", path]) == cli.EXIT_OK
        out = np.asarray(Image.open(out_dir / "wide.png"))
        assert out.shape == (h, w, 3)
        assert _mean_levels(out, ref) <= tolerance, name
        l_out = color.rgb_to_lab(out / 255.0).numpy()[..., 0]
        assert np.mean(np.abs(l_in - l_out)) < L_TOLERANCE_MEAN  # the input's own luminance


# ------------------------------------------------------------------------------ export CLI
def test_export_cli_exit_codes(tiny_workdir, exported, tmp_path):
    out = tmp_path / "cli"
    args = [f"--model={tiny_workdir}", f"--output={out}", "--formats=saved_model"]
    assert run_main(export.main, args) == cli.EXIT_OK
    assert sorted(os.listdir(out)) == ["1"]
    assert os.path.isfile(out / "1" / "saved_model.pb")
    assert os.path.isfile(out / "1" / inference.SAVED_MODEL_CONFIG)
    assert run_main(export.main, args) == cli.EXIT_USER_ERROR  # 1 exists
    assert run_main(export.main, [*args, "--overwrite"]) == cli.EXIT_OK
    assert sorted(os.listdir(out)) == ["1"]  # replaced, no temporary left
    assert run_main(export.main, [f"--model={tiny_workdir}", f"--output={tmp_path / 'b'}",
                                  "--formats=bogus"]) == cli.EXIT_USER_ERROR
    assert not os.path.exists(tmp_path / "b" / "1")
    assert run_main(export.main, [f"--model={tiny_workdir}"]) == cli.EXIT_USAGE  # no --output
    assert run_main(export.main, [f"--model={os.path.join(exported, '1')}", f"--output={tmp_path / 'c'}",
                                  "--formats=saved_model"]) == cli.EXIT_USER_ERROR  # not a Keras model
    assert not os.path.exists(tmp_path / "c" / "1")


def test_new_version_over_a_full_export_succeeds(exported, keras_model, tmp_path):
    base = str(tmp_path / "served")
    shutil.copytree(exported, base)
    written = export.export(keras_model, base, version=2, calibration_images=CALIBRATION_IMAGES)
    assert written[0] == os.path.join(base, "2")
    assert written[1:] == [export.tflite_path(base, 2, v) for v in VARIANTS]


def test_failed_conversion_writes_nothing(keras_model, tmp_path, monkeypatch):
    """All-or-nothing: a variant failing its checks leaves no SavedModel or earlier variant behind."""
    real_parity = export.tflite_parity

    def broken(colorizer, content, variant, l_images):
        if variant == "tflite_int8":
            raise export.ExportError("int8: injected parity failure")
        return real_parity(colorizer, content, variant, l_images)
    monkeypatch.setattr(export, "tflite_parity", broken)
    base = tmp_path / "out"
    with pytest.raises(export.ExportError, match="injected"):
        export.export(keras_model, str(base), calibration_images=CALIBRATION_IMAGES)
    assert not base.exists() or os.listdir(base) == []


# ----------------------------------------------------------------------- conversion guard
def test_parity_guard_rejects_a_model_that_differs(exported, tiny_workdir):
    with open(export.tflite_path(exported, 1, "tflite_fp32"), "rb") as f:
        content = f.read()
    reference = inference.load_model(tiny_workdir)
    l_images = export.calibration_l(reference.config.data, RENDER, 2)
    report = export.tflite_parity(reference, content, "tflite_fp32", l_images)
    assert report["mean_ab_error"] <= export.PARITY_TOLERANCE["tflite_fp32"]

    perturbed = _colourful(tiny_workdir)  # measured: mean ab error 13 Lab units vs the export
    with pytest.raises(export.ExportError, match="mean ab error"):
        export.tflite_parity(perturbed, content, "tflite_fp32", l_images)


def test_size_guard_rejects_dropped_weights(keras_model, tmp_path):
    unrelated = keras.Sequential([keras.Input((RENDER, RENDER, 1)), keras.layers.Conv2D(2, 1)])
    content = _tflite_bytes(unrelated, tmp_path)
    l_images = _l_images(2, RENDER, RENDER)
    with pytest.raises(export.ExportError, match="dropped weights"):
        export.tflite_parity(keras_model, content, "tflite_fp32", l_images)


def test_non_finite_guard(keras_model, tmp_path):
    nan_model = keras.Sequential([keras.Input((RENDER, RENDER, 1)), keras.layers.Conv2D(2, 1)])
    kernel, bias = nan_model.layers[0].get_weights()
    nan_model.layers[0].set_weights([kernel, np.full_like(bias, np.nan)])
    content = _tflite_bytes(nan_model, tmp_path)
    with pytest.raises(export.ExportError, match="non-finite"):
        export.tflite_parity(keras_model, content, "tflite_fp32", _l_images(1, RENDER, RENDER))


def test_saved_model_stores_each_weight_once(exported, keras_model):
    """ExportArchive.track() would save every weight twice; the export must hold one copy."""
    stored = tf.train.list_variables(os.path.join(exported, "1", "variables", "variables"))
    values = sum(int(np.prod(shape)) for name, shape in stored if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert values == keras_model.generator.count_params()


def test_fp16_weights_package_round_trips(tiny_workdir, keras_model, tmp_path):
    out = tmp_path / "package"
    written = export.export(keras_model, str(out), formats=("fp16_weights",))
    assert sorted(os.path.basename(p) for p in written) == ["config.json", "generator_fp16.npz"]
    packaged = inference.load_model(str(out))
    assert packaged.config == keras_model.config
    for a, b in zip(packaged.generator.get_weights(), keras_model.generator.get_weights()):
        assert a.dtype == np.float32
        # float16 keeps 11 significant bits: relative error <= 2**-11 (plus subnormal slack).
        np.testing.assert_allclose(a, b, rtol=2 ** -11, atol=1e-7)
    l = tf.random.stateless_uniform((1, 32, 48, 1), seed=[5, 6], minval=-1, maxval=1)
    ab_error = np.abs(packaged.predict_ab(l).numpy() - keras_model.predict_ab(l).numpy()) * 110
    assert ab_error.max() < 0.1  # Lab units: invisible


def test_resize_conv_model_exports_and_serves_any_size(tmp_path):
    cfg = config.Config(model=models.preset("tiny", upsample="resize_conv", output_space="ab"),
                        data=config.DataConfig(image_size=32, val_fraction=0.0))
    generator = models.build_generator(cfg.model)
    colorizer = inference.keras_colorizer(generator, cfg, "resize_conv")
    out = export.export(colorizer, str(tmp_path), formats=("saved_model", "tflite_fp32"),
                        calibration_images=4, parity_images=2)
    signature = tf.saved_model.load(out[0]).signatures["colorize_l"]
    for h, w in ((32, 48), (56, 16)):
        l = tf.random.stateless_uniform((1, h, w, 1), seed=[h, w], minval=-1, maxval=1)
        np.testing.assert_allclose(signature(l=l)["ab"].numpy(),
                                   generator(l, training=False).numpy(), atol=1e-5)


def test_calibration_falls_back_to_the_samples_for_a_missing_mixture(tmp_path):
    # The shipped model's config names three weighted sources that a user's machine lacks.
    cfg = config.DataConfig(data=f"{tmp_path}/a.tar.gz,{tmp_path}/b", data_weights="0.5,0.5")
    l_images = export.calibration_l(cfg, 32, 3)
    assert l_images.shape == (3, 32, 32, 1)
    samples = export.calibration_l(config.DataConfig(data="samples", val_fraction=0.0,
                                                     split="train"), 32, 3)
    np.testing.assert_array_equal(l_images, samples)
