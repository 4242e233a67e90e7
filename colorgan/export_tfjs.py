"""The TF.js export (OUTPUT/tfjs/VERSION/): the graph model the browser page runs, converted by
colorgan.tfjs from a temporary SavedModel, checked in Node against Keras, with its sidecar
colorgan_web.json (config, render size, provenance, parity; a hint model's says "hints": true)."""

from __future__ import annotations

import dataclasses
import os
import tempfile

from absl import logging
import numpy as np
import tensorflow as tf

from colorgan import (config, export_hints, export_report, export_saved_model, images,
                      inference, models, tfjs)
from colorgan.fileio import write_atomic

TFJS_DIR = config.TFJS_DIR
WEB_SIDECAR = config.WEB_SIDECAR
HINTS_SEED = 5  # a hint model's TF.js parity hints (export_hints.hint_maps)


def tfjs_dir(output: str, version: int) -> str:
    """OUTPUT/tfjs/VERSION: model.json, its weight shards and the sidecar colorgan_web.json."""
    return os.path.join(output, TFJS_DIR, str(version))


def build(colorizer: inference.Colorizer, staging: str, render_size: int, quantization: str,
          parity_images: np.ndarray, cache_dir: str = "") -> dict:
    """Converts the model's TF.js signature (colorize_l; a hint model's colorize_l_hints, so one
    model serves both modes) into the new folder `staging`, runs it in Node on `parity_images`
    (N, S, S, 1) against Keras and writes the sidecar; returns the parity report. Raises
    export_report.ExportError (non-finite, tolerance) or UserError (converter, Node)."""
    variant = f"tfjs_{quantization}"
    hinted = colorizer.takes_hints
    with tempfile.TemporaryDirectory() as saved_model:
        archive = export_saved_model.make_export_archive(colorizer, render_size)
        archive.write_out(saved_model, verbose=False)
        tfjs.convert(saved_model, staging, quantization,
                     inference.L_HINTS_SIGNATURE if hinted else inference.L_SIGNATURE, cache_dir)
    converted, reference, info = _tfjs_outputs(colorizer, staging, parity_images)
    report = export_report.parity_report(variant, converted, reference, tfjs.PARITY_TOLERANCE[quantization],
                           size_bytes=tfjs.model_size(staging), runtime=f"Node.js, TF.js "
                           f"{info['tfjs']} {info['backend']} backend",
                           latency_ms=float(np.median(info["latency_ms"])),
                           **({"hints_per_image": export_hints.PARITY_HINTS} if hinted else {}))
    record = dataclasses.replace(colorizer, variant=variant).provenance(render_size)
    model = colorizer.config.model
    # The page offers its hint tools for `hints` models only; automatic sidecars stay as they were.
    hint_keys = {"hints": True} if hinted else {}
    write_atomic(os.path.join(staging, WEB_SIDECAR), export_report.sidecar_json(
        colorizer, render_size, parity=report, variant=variant, multiple=colorizer.multiple,
        max_aspect=inference.MAX_RENDER_ASPECT, color_upsample=model.color_upsample,
        provenance=record, provenance_text=images.provenance_text(record), **hint_keys))
    logging.info("%s: %.1f KiB, mean/max ab error %.3f/%.3f Lab units, %.1f ms (%s)", variant,
                 report["size_bytes"] / 1024, report["mean_ab_error"], report["max_ab_error"],
                 report["latency_ms"], report["runtime"])
    return report


def _tfjs_outputs(colorizer: inference.Colorizer, model_dir: str, l_images: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(TF.js ab in Node, Keras ab, Node's info) on `l_images` (N, S, S, 1); a hint model's with
    export_hints.PARITY_HINTS simulated hints per image (fixed seeds: the same every export)."""
    if not colorizer.takes_hints:
        converted, info = tfjs.predict_node(model_dir, l_images)
        keras_fn = tf.function(colorizer.predict_ab)
        return converted, np.concatenate([keras_fn(l[None]).numpy() for l in l_images]), info
    maps = export_hints.hint_maps(l_images, HINTS_SEED, count=export_hints.PARITY_HINTS)
    converted, info = tfjs.predict_node(model_dir, l_images, maps)
    generator, cfg = colorizer.generator, colorizer.config.model
    keras_fn = tf.function(lambda l, m: models.predict_ab(generator, l, cfg, hint_map=m))
    reference = [keras_fn(l[None], m[None]).numpy() for l, m in zip(l_images, maps)]
    return converted, np.concatenate(reference), info
