"""Serves the browser page and an exported TF.js model on 127.0.0.1: photos are colourised in
the browser, on this machine; nothing is uploaded.

    python -m colorgan.web --model=export/models/colorgan --port=8000

--model: an export's --output root (the newest TF.js version in it), a TF.js version folder
(OUTPUT/tfjs/VERSION), or 'default' (the shipped model, exported to TF.js into the cache on first
use: the converter's environment is created then too, a few minutes once). Open the printed URL.
"""

from __future__ import annotations

import sys

from absl import flags

from colorgan import cli, config
from colorgan import web

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("web")


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv)
    model_dir = (web.default_model(FLAGS.tfjs_quantization, FLAGS.cache_dir)
                 if FLAGS.model in ("", "default") else web.find_model(FLAGS.model))
    server = web.make_server(model_dir, FLAGS.port)
    url = f"http://{web.HOST}:{server.server_address[1]}/"
    print(f"serving {url} with the model in {model_dir} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
