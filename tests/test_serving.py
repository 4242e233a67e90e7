"""Client helpers: REST JSON and gRPC messages round-trip through a real exported signature."""

import base64
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import export, inference, serving
from conftest import smooth_color_image


@pytest.fixture(scope="module")
def signature(tiny_workdir, tmp_path_factory):
    out = tmp_path_factory.mktemp("serving-export")
    export.export(inference.load_model(tiny_workdir), str(out), formats=("saved_model",))
    loaded = tf.saved_model.load(str(out / "1"))
    return loaded, loaded.signatures[serving.SIGNATURE]


def _png(h, w, seed=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(smooth_color_image(h, w, seed)).save(buf, format="PNG")
    return buf.getvalue()


def test_rest_body_round_trips_through_the_signature(signature):
    _, sig = signature
    images = [_png(37, 51), _png(20, 24, seed=1)]
    body = json.loads(serving.rest_request_body(images))
    assert body["signature_name"] == "serving_default"
    # What TF Serving does with the row format: decode b64, batch the named input.
    batch = [base64.b64decode(inst[serving.INPUT_KEY]["b64"]) for inst in body["instances"]]
    assert batch == images
    pngs = sig(image_bytes=tf.constant(batch))[serving.OUTPUT_KEY].numpy()
    response = json.dumps({"predictions": [{serving.OUTPUT_KEY: {"b64": base64.b64encode(p).decode()}}
                                           for p in pngs]})
    sizes = [Image.open(io.BytesIO(p)).size for p in serving.rest_response_pngs(response)]
    assert sizes == [(51, 37), (24, 20)]


def test_grpc_request_round_trips_through_the_signature(signature):
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415

    _, sig = signature
    image = _png(33, 45)
    request = predict_pb2.PredictRequest.FromString(
        serving.grpc_predict_request([image], "colorgan").SerializeToString())
    assert request.model_spec.signature_name == "serving_default"
    inputs = tf.make_ndarray(request.inputs[serving.INPUT_KEY])
    outputs = sig(image_bytes=tf.constant(inputs))
    response = predict_pb2.PredictResponse()
    response.outputs[serving.OUTPUT_KEY].CopyFrom(tf.make_tensor_proto(outputs[serving.OUTPUT_KEY]))
    (png,) = serving.grpc_response_pngs(predict_pb2.PredictResponse.FromString(response.SerializeToString()))
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert decoded.shape == (33, 45, 3)


def test_write_results_names_outputs_beside_inputs(tmp_path):
    inputs = [str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "b.png")]
    written = serving.write_results(inputs, [b"one", b"two"])
    assert written == [str(tmp_path / "a_colorized.png"), str(tmp_path / "sub" / "b_colorized.png")]
    assert [open(p, "rb").read() for p in written] == [b"one", b"two"]
