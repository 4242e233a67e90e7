"""Client-side helpers for a TF Serving deployment of an exported colorgan SavedModel.

The export's `serving_default` signature takes `image_bytes` (encoded JPEG/PNG, a batch) and
returns `colorized_png_bytes`. These helpers build and read both protocols' messages, so the
example clients in `export/` (and your own) stay thin. Send upright images: TF's decoders
ignore EXIF orientation (the colourise CLI applies it; a server cannot).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Sequence

from colorgan.fileio import write_atomic

INPUT_KEY = "image_bytes"
OUTPUT_KEY = "colorized_png_bytes"
SIGNATURE = "serving_default"


def rest_request_body(images: Sequence[bytes]) -> str:
    """JSON for POST /v1/models/<name>:predict (TF Serving's base64 convention: {"b64": ...})."""
    return json.dumps({"signature_name": SIGNATURE,
                       "instances": [{INPUT_KEY: {"b64": base64.b64encode(b).decode("ascii")}}
                                     for b in images]})


def rest_response_pngs(body: str | bytes) -> list[bytes]:
    """The PNG bytes in a REST :predict response (row format)."""
    predictions = json.loads(body)["predictions"]
    return [base64.b64decode(p[OUTPUT_KEY]["b64"] if isinstance(p, dict) and OUTPUT_KEY in p
                             else p["b64"]) for p in predictions]


def grpc_predict_request(images: Sequence[bytes], model_name: str = "colorgan"):
    """A tensorflow_serving PredictRequest for the bytes signature (needs the `serving` extra)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SIGNATURE
    request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    return request


def grpc_response_pngs(response) -> list[bytes]:
    """The PNG bytes in a PredictResponse."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return [bytes(b) for b in tf.make_ndarray(response.outputs[OUTPUT_KEY]).ravel()]


def write_results(inputs: Sequence[str], pngs: Sequence[bytes]) -> list[str]:
    """Writes each result as `<input stem>_colorized.png` beside its input (atomically)."""
    return [write_atomic(os.path.splitext(path)[0] + "_colorized.png", png)
            for path, png in zip(inputs, pngs)]
