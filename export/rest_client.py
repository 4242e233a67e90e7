"""Colourise photos through TF Serving's REST API (standard library + colorgan only).

    python export/rest_client.py --server=http://localhost:8501 photo.jpg [more.jpg ...]

Writes <stem>_colorized.png next to each input. Send upright images (EXIF is not applied).
"""

import argparse
import urllib.request

from colorgan import serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--server", default="http://localhost:8501")
    parser.add_argument("--model", default="colorgan")
    args = parser.parse_args()
    blobs = [open(p, "rb").read() for p in args.images]
    request = urllib.request.Request(
        f"{args.server}/v1/models/{args.model}:predict",
        data=serving.rest_request_body(blobs).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        pngs = serving.rest_response_pngs(response.read())
    for out in serving.write_results(args.images, pngs):
        print(out)


if __name__ == "__main__":
    main()
