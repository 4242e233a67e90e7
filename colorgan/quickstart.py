"""The quickstart: train a small model on the bundled photos, then colourise one of them.

    python -m colorgan.quickstart --workdir=runs/quickstart

Runs the `quickstart` recipe (flags after it override it, e.g. --steps=200), colourises the bundled
chelsea.jpg (as gray) with the freshly trained model and, when the package ships one, with the
reference model, and writes WORKDIR/quickstart.png: gray | fresh model | shipped model | truth.
Re-running resumes or reuses the finished training run.
"""

from __future__ import annotations

import os

from absl import flags, logging
import numpy as np

from colorgan import cli, color, config, images, inference, train
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("quickstart")

SAMPLE = os.path.join(os.path.dirname(__file__), "samples", "chelsea.jpg")
PANEL = "quickstart.png"


def comparison_panel(photo: str, models: list[inference.Colorizer]) -> np.ndarray:
    """uint8 (H, (2 + len(models)) * W, 3): the photo as gray | each model's colours | the photo."""
    rgb, _ = images.read_image(photo, config.DataConfig.max_pixels)
    columns = [color.gray_rgb(rgb), *(m.colorize(rgb[None])[0] for m in models), rgb]
    return np.concatenate([color.to_uint8(c).numpy() for c in columns], axis=1)


def quickstart(cfg: config.Config, workdir: str, photo: str = SAMPLE) -> str | None:
    """Trains (or resumes) the quickstart run and writes the comparison panel; returns its path,
    or None if a signal stopped the training (the checkpoint is saved; re-run to finish)."""
    if train.train(cfg, workdir).interrupted_by:
        return None
    models = [inference.load_model(workdir)]
    try:
        models.append(inference.load_model("default"))
    except UserError as e:
        logging.warning("no shipped model to compare with (%s)", e)
    path = os.path.join(workdir, PANEL)
    record = {**models[0].provenance(), "note": "comparison panel: gray | colorgan models | original"}
    write_atomic(path, images.encode_image(comparison_panel(photo, models), None, "png", record))
    return path


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("workdir",))
    panel = quickstart(cli.config_from_flags(FLAGS), FLAGS.workdir)
    if panel is None:
        return cli.EXIT_INTERRUPTED
    print(panel)
    return 0


def run() -> None:
    cli.run(main, default_argv=["--recipe=quickstart"])


if __name__ == "__main__":
    run()
