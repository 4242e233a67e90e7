"""The browser page (`static/`: colourises photos on the user's own machine with TF.js) and the
local server behind `python -m colorgan.web`: the page and one exported TF.js model on
127.0.0.1, the model under `/model/`. Any static host serves the same files (README, "In the
browser"); this server adds only the model folder's mapping and no-cache headers.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
from urllib.parse import unquote, urlsplit

from absl import logging

from colorgan import __version__, config, fileio
from colorgan.errors import UserError

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
MODEL_URL = "/model/"
HOST = "127.0.0.1"
TFJS_DIR, WEB_SIDECAR = config.TFJS_DIR, config.WEB_SIDECAR


def is_tfjs_model(path: str) -> bool:
    """True for a folder holding an exported TF.js model (model.json and colorgan's sidecar)."""
    return all(os.path.isfile(os.path.join(path, f)) for f in ("model.json", WEB_SIDECAR))


def find_model(path: str) -> str:
    """The TF.js model folder for `path`: a version folder itself, or an export's --output root
    (the newest version in OUTPUT/tfjs/), or its tfjs/ folder. Raises UserError if none."""
    if is_tfjs_model(path):
        return path
    for base in (os.path.join(path, TFJS_DIR), path):
        versions = [d for d in os.listdir(base) if d.isdigit()
                    and is_tfjs_model(os.path.join(base, d))] if os.path.isdir(base) else []
        if versions:
            return os.path.join(base, max(versions, key=int))
    raise UserError(f"no TF.js model in {path} (export one with python -m colorgan.export "
                    f"--formats=tfjs --output={path})")


def _shipped_digest() -> str:
    """A short hash of the shipped model's files (colorgan/pretrained: weights and config)."""
    digest = hashlib.sha256()
    for name in (config.PRETRAINED_WEIGHTS, config.CONFIG_JSON):
        with open(os.path.join(config.PRETRAINED_DIR, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:12]


def default_model(quantization: str, cache_dir: str = "") -> str:
    """The shipped reference model as TF.js, exported into the cache on first use (once per
    version of the shipped files: a new model, even within one colorgan version, is re-exported)."""
    output = os.path.join(fileio.cache_root(cache_dir), "web-model",
                          f"{__version__}-{_shipped_digest()}-{quantization}")
    try:
        return find_model(output)
    except UserError:
        pass
    from colorgan import export, inference  # pylint: disable=import-outside-toplevel  (TF)
    logging.info("exporting the shipped model to TF.js once, into %s", output)
    export.export(inference.load_model("default"), output, formats=("tfjs",),
                  tfjs_quantization=quantization, cache_dir=cache_dir, overwrite=True)
    return find_model(output)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The page's files from static/, the model's from `model_dir` under /model/."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".bin": "application/octet-stream"}

    def __init__(self, *args, model_dir: str, **kwargs):
        self.model_dir = model_dir
        super().__init__(*args, directory=STATIC_DIR, **kwargs)

    def translate_path(self, path: str) -> str:
        url_path = unquote(urlsplit(path).path)
        if url_path.startswith(MODEL_URL):
            name = url_path[len(MODEL_URL):]
            # Only the model folder's own files: no subfolders, no '..' (a 404 otherwise).
            valid = "/" not in name and name not in ("", ".", "..")
            return os.path.join(self.model_dir, name if valid else ".no-such-file/x")
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")  # a re-export is picked up on reload
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # pylint: disable=redefined-builtin
        logging.debug("%s " + format, self.address_string(), *args)


def make_server(model_dir: str, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:`port` (0: a free port) for the page and `model_dir`."""
    handler = functools.partial(_Handler, model_dir=os.path.abspath(model_dir))
    try:
        return http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise UserError(f"cannot serve on {HOST}:{port}: {e.strerror} (try --port=0)") from e


def serve_in_thread(model_dir: str, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """make_server, running in a daemon thread (tests, benchmarks); returns (server, base URL).
    Stop it with server.shutdown()."""
    server = make_server(model_dir, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/"
