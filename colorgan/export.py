"""Export a trained generator for TF Serving (SavedModel) and phones (TFLite).

    python -m colorgan.export --model=runs/quickstart --output=export/models/colorgan --version=1

Writes, atomically (temporary name, then rename):
  OUTPUT/VERSION/               a SavedModel in TF Serving's layout with two signatures:
      serving_default           image_bytes: tf.string [N] (encoded JPEG/PNG)
                                -> colorized_png_bytes: tf.string [N], at each input's full size
      colorize_l                l: float32 [N, H, W, 1] in [-1, 1] (H, W multiples of 2**depth)
                                -> ab: float32 [N, H, W, 2] in [-1, 1] (decoded at the export's
                                --vividness, upsampled from the model's output stride)
  OUTPUT/tflite/VERSION/colorgan_{fp32,fp16,int8}.tflite
                                l [1, H, W, 1] -> ab [1, H, W, 2], float32 at both ends for all
                                three (int8 quantises inside); H and W are dynamic (resize the
                                input tensor to the photo's render size, short side S, aspect
                                kept, multiples of 2**depth: what the Keras path sees); each with
                                a `.tflite.json` sidecar: the model config, render size, weights
                                identity and a parity report against the Keras model (ab error
                                in Lab units, latency, size).
  A model that takes hints (trained with --hint_inputs, or any given a --hint_reach: the shipped
  one) also gets a `colorize_l_hints` signature (l, hint_ab [N, H, W, 2], hint_mask [N, H, W, 1]
  -> ab) and colorgan_{fp32,fp16,int8}_hints.tflite with the same three inputs
  (colorgan/export_hints.py; no int8 one with --hint_reach: hint_variants); its automatic
  interfaces are as above.
  OUTPUT/generator_fp16.npz, OUTPUT/config.json   (--formats=fp16_weights, not in the default set)
                                the generator packaged as colorgan/pretrained/ ships it: float16
                                weights keyed by weight path; load_model(OUTPUT) reads it.
  OUTPUT/tfjs/VERSION/          (--formats=tfjs, not in the default set) a TF.js graph model of
                                the colorize_l signature (a hint model's: colorize_l_hints, zero
                                hints being the automatic mode; model.json + weight shards,
                                weights as --tfjs_quantization) and colorgan_web.json: config,
                                render size, provenance record and its parity, run in Node
                                (colorgan.tfjs); a hint model's says "hints": true.
This module and the ones it calls (export_saved_model, export_tfjs, export_hints) are the only
ones that write SavedModel/TFLite/TF.js, so Keras-version quirks stay there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

from absl import flags, logging
import keras
import numpy as np
import tensorflow as tf

from colorgan import (cli, config, data, export_hints, export_saved_model, export_tfjs,
                      inference, quiet, tflite_runtime)
from colorgan.export_report import ExportError, check_finite, parity_report, sidecar_json
from colorgan import workdir as workdir_lib
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
config.flag_definitions.declare_verb_flags("export")

DEFAULT_FORMATS = config.DEFAULT_EXPORT_FORMATS
FORMATS = config.EXPORT_FORMATS
TFLITE_DIR = "tflite"
HINTS_SUFFIX = "_hints"  # a hint model's hint-taking TFLite variants (colorgan.export_hints)
# Parity tolerances (mean |ab error| in Lab units vs Keras): fp32 is the same arithmetic; fp16
# weights round to 11 significant bits; int8 quantises every activation to 256 levels.
PARITY_TOLERANCE = {"tflite_fp32": 0.05, "tflite_fp16": 0.5, "tflite_int8": 4.0}
# A converted model far smaller than its weights, or producing non-finite values, is broken.
MIN_SIZE_FRACTION = {"tflite_fp32": 0.9, "tflite_fp16": 0.45, "tflite_int8": 0.2}
_BYTES_PER_WEIGHT = 4
_LATENCY_RUNS = 5


# --------------------------------------------------------------------------------- TFLite
def calibration_l(cfg: config.DataConfig, size: int, count: int) -> np.ndarray:
    """Model-space L (count, size, size, 1) of training images, for int8 calibration and parity.

    Falls back to the bundled samples when the model's training data is not on this machine.
    """
    cfg = dataclasses.replace(cfg, image_size=size, batch_size=1)
    try:
        ds = data.make_eval_dataset(cfg, cfg.split, limit=count)
    except UserError as e:
        logging.warning("calibration data %s unavailable (%s); using the bundled samples", cfg.data, e)
        # The samples are one source: the missing mixture's weights go with it.
        ds = data.make_eval_dataset(dataclasses.replace(cfg, data="samples", data_weights="",
                                                        val_fraction=0.0), "train", limit=count)
    return np.concatenate([batch["l"].numpy() for batch in ds])


def convert_tflite(colorizer: inference.Colorizer, variant: str, calibration: np.ndarray) -> bytes:
    """TFLite flatbuffer: l (1, H, W, 1) float32 -> ab (1, H, W, 2) float32, H and W dynamic."""
    # Through a SavedModel: TFLiteConverter.from_concrete_functions on a Keras 3 model silently
    # drops the variables (a 21 KB model that outputs NaN; TF 2.21).
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", lambda l: {"ab": colorizer.predict_ab(l)},
                         input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32, name="l")])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        with quiet.filtered_stderr():  # the converter prints its quantisation settings
            return _configure_converter(converter, variant, calibration).convert()


def _configure_converter(converter, variant: str, calibration: np.ndarray):
    if variant == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([l[None]] for l in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Float in and out, so app code is the same for every variant; (de)quantise inside.
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    elif variant != "tflite_fp32":
        raise ValueError(f"unknown TFLite variant {variant!r}")
    return converter


def tflite_parity(colorizer: inference.Colorizer, content: bytes, variant: str,
                  l_images: np.ndarray) -> dict:
    """Compares a TFLite model with the Keras generator on `l_images` (N, S, S, 1).

    Returns mean/max |ab difference| in Lab units, per-image latency of both, and the file size.
    Raises ExportError for a broken conversion (non-finite output, weights missing, tolerance).
    """
    lite_fn = tflite_runtime.predict_fn(content)
    keras_fn = tf.function(colorizer.predict_ab)
    keras_fn(l_images[:1])  # trace outside the timing
    lite_fn(l_images[:1])  # sizes the interpreter's input
    lite, ref, lite_s, ref_s = [], [], [], []
    for l in l_images:
        t0 = time.perf_counter()
        for _ in range(_LATENCY_RUNS):
            result = lite_fn(l[None])
        lite_s.append((time.perf_counter() - t0) / _LATENCY_RUNS)
        lite.append(result.numpy()[0])
        t0 = time.perf_counter()
        ref.append(keras_fn(l[None]).numpy()[0])
        ref_s.append(time.perf_counter() - t0)
    check_finite(variant, np.stack(lite))  # before the size check: a NaN model is small too
    weights_bytes = colorizer.generator.count_params() * _BYTES_PER_WEIGHT
    if len(content) < MIN_SIZE_FRACTION[variant] * weights_bytes / (4 if variant == "tflite_int8" else 1):
        raise ExportError(f"{variant}: {len(content)} bytes for {weights_bytes} bytes of weights: "
                          "the converter dropped weights")
    return parity_report(variant, np.stack(lite), np.stack(ref), PARITY_TOLERANCE[variant],
                         size_bytes=len(content), latency_ms=1000 * float(np.median(lite_s)),
                         keras_latency_ms=1000 * float(np.median(ref_s)))


def tflite_path(output: str, version: int, variant: str) -> str:
    """OUTPUT/tflite/VERSION/colorgan_<fp32|fp16|int8>.tflite (beside TF Serving's OUTPUT/VERSION)."""
    return os.path.join(output, TFLITE_DIR, str(version), f"colorgan_{variant.split('_')[1]}.tflite")


def hint_variants(colorizer: inference.Colorizer, variants: list[str]) -> list[str]:
    """The hint-taking TFLite variants a model gets: all, except int8 for a model that spreads
    hints (hint_reach > 0): its normalised convolution does not survive 8 bits (the shipped
    model's parity error was 17.6 Lab units against a tolerance of 4), so phones take fp16."""
    if colorizer.config.model.hint_reach and "tflite_int8" in variants:
        logging.info("no tflite_int8 hint file: hint spreading needs float (use tflite_fp16's)")
        return [v for v in variants if v != "tflite_int8"]
    return variants


def build_tflite_hints(colorizer: inference.Colorizer, variant: str, calibration: np.ndarray,
                       parity_images: np.ndarray) -> tuple[bytes, dict]:
    """A hint model's hint-taking `variant` (colorgan.export_hints) and its parity report."""
    content = export_hints.convert(colorizer, variant, calibration, _configure_converter)
    lite, ref = export_hints.parity(colorizer, content, parity_images)
    report = parity_report(f"{variant}_hints", lite, ref, PARITY_TOLERANCE[variant],
                           size_bytes=len(content), hints_per_image=export_hints.PARITY_HINTS)
    logging.info("%s_hints: %.1f KiB, mean/max ab error %.3f/%.3f Lab units", variant,
                 report["size_bytes"] / 1024, report["mean_ab_error"], report["max_ab_error"])
    return content, report


def build_tflite(colorizer: inference.Colorizer, variant: str, calibration: np.ndarray,
                 parity_images: np.ndarray) -> tuple[bytes, dict]:
    """Converts one variant and checks it; returns (flatbuffer, parity report). Writes nothing."""
    content = convert_tflite(colorizer, variant, calibration)
    report = tflite_parity(colorizer, content, variant, parity_images)
    logging.info("%s: %.1f KiB, mean/max ab error %.3f/%.3f Lab units, %.2f ms (Keras %.2f ms)",
                 variant, report["size_bytes"] / 1024, report["mean_ab_error"],
                 report["max_ab_error"], report["latency_ms"], report["keras_latency_ms"])
    return content, report


def _targets(output: str, version: int, formats: tuple[str, ...]) -> list[str]:
    """The paths an export in `formats` writes (checked for existence before anything is built)."""
    return ([os.path.join(output, str(version))] if "saved_model" in formats else []) + [
        tflite_path(output, version, v) for v in formats if v.startswith("tflite")] + (
        [os.path.join(output, workdir_lib.PRETRAINED_WEIGHTS)] if "fp16_weights" in formats
        else []) + ([export_tfjs.tfjs_dir(output, version)] if "tfjs" in formats else [])


def _held_aside(colorizer: inference.Colorizer, size: int, calibration_images: int,
                parity_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(parity L, int8 calibration L) at the render size: parity is judged on images the int8
    calibration never saw (when there are enough)."""
    l_images = calibration_l(colorizer.config.data, size, calibration_images + parity_images)
    if len(l_images) < calibration_images + parity_images:
        logging.warning("only %d images for calibration and parity (asked %d + %d)",
                        len(l_images), calibration_images, parity_images)
    calib = l_images[parity_images:] if len(l_images) > parity_images else l_images
    return l_images[:parity_images], calib


def export(colorizer: inference.Colorizer, output: str, *, version: int = 1,
           formats: tuple[str, ...] = DEFAULT_FORMATS, render_size: int = 0, calibration_images: int = 100,
           parity_images: int = 8, tfjs_quantization: str = "float16", cache_dir: str = "",
           overwrite: bool = False) -> list[str]:
    """Exports `colorizer` (a Keras model) in `formats`; returns the written paths.

    All-or-nothing: every target is checked, every TFLite variant converted and verified in
    memory and the TF.js model converted and verified in a hidden folder before the first file is
    written. `cache_dir`: where the TF.js converter's environment lives (fileio.cache_root).
    """
    if colorizer.generator is None:
        raise UserError(f"{colorizer.source} is already an exported {colorizer.kind} model; "
                        "export from a training workdir or 'default'")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise UserError(f"unknown --formats {sorted(unknown)}; valid: {', '.join(FORMATS)}")
    size = render_size or colorizer.default_render_size
    if size % colorizer.multiple:
        raise UserError(f"render size {size} is not a multiple of 2**depth = {colorizer.multiple}")
    existing = [t for t in _targets(output, version, formats) if os.path.exists(t)]
    if existing and not overwrite:
        raise UserError(f"{', '.join(existing)} exist (use --overwrite or another --version)")
    tflite = [f for f in formats if f.startswith("tflite")]
    check, calib = (_held_aside(colorizer, size, calibration_images if tflite else 0, parity_images)
                    if tflite or "tfjs" in formats else (None, None))
    built = {v: build_tflite(colorizer, v, calib, check) for v in tflite}
    if colorizer.takes_hints:  # hint-taking files beside the automatic ones
        built.update({f"{v}{HINTS_SUFFIX}": build_tflite_hints(colorizer, v, calib, check)
                      for v in hint_variants(colorizer, tflite)})
    staging = os.path.join(output, export_tfjs.TFJS_DIR, f".{version}.tmp-{os.getpid()}")
    try:
        if "tfjs" in formats:
            shutil.rmtree(staging, ignore_errors=True)
            export_tfjs.build(colorizer, staging, size, tfjs_quantization, check, cache_dir)
        written = []
        if "saved_model" in formats:
            written.append(export_saved_model.write(colorizer, output, version, size, overwrite=True))
        for variant, (content, report) in built.items():
            path = tflite_path(output, version, variant.removesuffix(HINTS_SUFFIX))
            if variant.endswith(HINTS_SUFFIX):
                path = export_hints.tflite_path(path)
            write_atomic(path, content)
            write_atomic(path + ".json", sidecar_json(colorizer, size, parity=report))
            written.append(path)
        if "fp16_weights" in formats:
            written += workdir_lib.save_weights_fp16(colorizer.generator, colorizer.config, output)
        if "tfjs" in formats:
            export_saved_model.swap_into_place(staging, export_tfjs.tfjs_dir(output, version))
            written.append(export_tfjs.tfjs_dir(output, version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(os.path.dirname(staging))
    return written


def _remove_if_empty(path: str) -> None:
    """A failed TF.js export leaves no empty tfjs/ folder behind."""
    if os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",))
    colorizer = inference.load_model(FLAGS.model, FLAGS.checkpoint_step,
                                     **cli.inference_settings(FLAGS))
    for path in export(colorizer, FLAGS.output, version=FLAGS.version,
                       formats=tuple(FLAGS.formats), render_size=FLAGS.render_size,
                       calibration_images=FLAGS.calibration_images,
                       tfjs_quantization=FLAGS.tfjs_quantization, cache_dir=FLAGS.cache_dir,
                       overwrite=FLAGS.overwrite):
        print(path)
    return 0


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
