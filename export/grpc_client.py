"""Colourise photos through TF Serving's gRPC API (needs `pip install -e ".[serving]"`).

    python export/grpc_client.py --server=localhost:8500 photo.jpg [more.jpg ...]

Writes <stem>_colorized.png next to each input. Send upright images (EXIF is not applied).
"""

import argparse

import grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from colorgan import serving

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # full-resolution PNGs are large


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", default="colorgan")
    args = parser.parse_args()
    blobs = [open(p, "rb").read() for p in args.images]
    options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    with grpc.insecure_channel(args.server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(serving.grpc_predict_request(blobs, args.model), timeout=300)
    for out in serving.write_results(args.images, serving.grpc_response_pngs(response)):
        print(out)


if __name__ == "__main__":
    main()
