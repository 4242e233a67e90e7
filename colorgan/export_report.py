"""What every export writes beside its model and how it is checked: the sidecar (config, render
size, weights identity) and the parity report of a converted model against the Keras one."""

from __future__ import annotations

import json

import numpy as np

from colorgan import color, config, inference
from colorgan.errors import UserError


class ExportError(UserError):
    """A conversion produced a broken model (non-finite output, missing weights, bad parity)."""


def sidecar_json(colorizer: inference.Colorizer, render_size: int, **extra) -> str:
    """The sidecar every export carries: what inference.load_model needs to use it as the
    Keras model is used (config, render size) and the identity of the weights."""
    return json.dumps({"config": config.to_dict(colorizer.config), "render_size": render_size,
                       "model_id": colorizer.identity, "source": colorizer.source, **extra},
                      indent=2, sort_keys=True) + "\n"


def check_finite(variant: str, outputs: np.ndarray) -> None:
    if not np.all(np.isfinite(outputs)):
        raise ExportError(f"{variant}: the converted model outputs non-finite values")


def parity_report(variant: str, converted: np.ndarray, reference: np.ndarray, tolerance: float,
                  **extra) -> dict:
    """Mean/max |ab difference| (Lab units) of a converted model's outputs against the Keras
    model's (both model-space ab (N, h, w, 2)), plus `extra`. Raises ExportError for non-finite
    outputs or a mean error over `tolerance`."""
    check_finite(variant, converted)
    err = np.abs(converted - reference) * color.AB_SCALE
    report = {"variant": variant, "images": len(converted), "mean_ab_error": float(np.mean(err)),
              "max_ab_error": float(np.max(err)), "tolerance_mean_ab_error": tolerance, **extra}
    if report["mean_ab_error"] > tolerance:
        raise ExportError(f"{variant}: mean ab error {report['mean_ab_error']:.3f} exceeds "
                          f"{tolerance} Lab units")
    return report
