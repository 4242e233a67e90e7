"""TFLite fp32/fp16/int8 exports of a model: file size, latency per image and colour error against
the Keras model, all measured in one run.

    python benchmarks/tflite.py --model=default

Each variant is converted by colorgan.export.convert_tflite (the export verb's converter; int8 is
calibrated on export.calibration_l of the model's training data, or of the bundled samples when
that is absent, --calibration_images images) and written to a temporary directory (the size is
the file's). Every variant and the Keras generator (a tf.function of Colorizer.predict_ab: the
reference for the errors) then colour the same inputs: the bundled photos (colorgan/samples),
centre-cropped at the render size, with the LiteRT interpreter colorgan itself uses
(tflite_runtime.make_interpreter, at the runtime's default thread count).
Latency: per image, the median of --repeats passes over all photos, after --warmup passes,
interleaved across variants. Error: mean and max |ab - ab_keras| over all pixels, in Lab units.
Ratios: size and speed against tflite_fp32 (targets: int8 >= 1.5x faster than fp32; mean error
<= 1 Lab unit).
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags
import numpy as np
import tensorflow as tf

import common
from colorgan import cli, color, export, inference, sources, tflite_runtime
from colorgan.config import DataConfig
from colorgan.errors import UserError

FLAGS = flags.FLAGS
NAME = "tflite"
VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8")
TARGET_INT8_SPEEDUP = 1.5
TARGET_MEAN_AB_ERROR = 1.0  # Lab units
_KIB = 1024

flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("render_size")
common.reuse_flag("calibration_images")
common.reuse_flag("formats", f"TFLite variants to measure: {', '.join(VARIANTS)}.",
                  default=list(VARIANTS))
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


def sample_photos(size: int) -> np.ndarray:
    """Model-space L (N, size, size, 1) of every bundled photo, centre-cropped."""
    samples = DataConfig(data="samples", split="train", val_fraction=0.0)
    return export.calibration_l(samples, size, len(sources.list_images(sources.SAMPLES_DIR)))


def tflite_runner(content: bytes):
    """images (N, S, S, 1) -> ab (N, S, S, 2), one interpreter invocation per image."""
    interpreter = tflite_runtime.make_interpreter(content)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(images: np.ndarray) -> np.ndarray:
        results = []
        for image in images:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            results.append(interpreter.get_tensor(out["index"])[0])
        return np.stack(results)

    return run


def keras_runner(colorizer: inference.Colorizer):
    forward = tf.function(colorizer.predict_ab)
    return lambda images: np.stack([forward(image[None])[0].numpy() for image in images])


def convert_all(colorizer: inference.Colorizer, variants: list[str], size: int,
                calibration: np.ndarray, directory: str) -> dict[str, dict]:
    """{variant: {runner, size_bytes, convert_s}}; the flatbuffers are written to `directory`."""
    out = {}
    for variant in variants:
        start = time.perf_counter()
        content = export.convert_tflite(colorizer, variant, size, calibration)
        convert_s = time.perf_counter() - start
        path = os.path.join(directory, f"colorgan_{variant}.tflite")
        with open(path, "wb") as f:
            f.write(content)
        out[variant] = {"runner": tflite_runner(content), "size_bytes": os.path.getsize(path),
                        "convert_s": convert_s}
    return out


def measure_variants(colorizer: inference.Colorizer, variants: list[str], size: int,
                     calibration: np.ndarray, *, repeats: int, warmup: int) -> list[dict]:
    """Converts `variants`, then times them and the Keras model on the bundled photos."""
    photos = sample_photos(size)
    with tempfile.TemporaryDirectory() as tmp:
        converted = convert_all(colorizer, variants, size, calibration, tmp)
    runners = {"keras": keras_runner(colorizer),
               **{name: info.pop("runner") for name, info in converted.items()}}
    reference = runners["keras"](photos)
    errors = {}
    for name, run in runners.items():
        diff = np.abs(run(photos) - reference) * color.AB_SCALE
        errors[name] = {"mean": float(diff.mean()), "max": float(diff.max())}
    timings = common.measure({name: (lambda run=run: run(photos)) for name, run in runners.items()},
                             calls=1, repeats=repeats, warmup=warmup, units=len(photos))
    return result_rows(converted, timings, errors, len(photos))


def result_rows(converted: dict, timings: dict, errors: dict, n_images: int) -> list[dict]:
    latency = {name: 1.0 / t.units_per_s for name, t in timings.items()}
    base = converted.get("tflite_fp32", {})
    rows = []
    for name in ["keras", *converted]:
        info, err = converted.get(name, {}), errors[name]
        speedup = common.ratio(latency.get("tflite_fp32"), latency[name])
        met = err["mean"] <= TARGET_MEAN_AB_ERROR and (
            name != "tflite_int8" or (speedup or 0) >= TARGET_INT8_SPEEDUP)
        rows.append({
            "variant": name, "size_kib": info["size_bytes"] / _KIB if info else None,
            "size_vs_fp32": common.ratio(info.get("size_bytes"), base.get("size_bytes")),
            "ms_per_image": 1000 * latency[name], "speed_vs_fp32": speedup,
            "mean_ab_error": err["mean"], "max_ab_error": err["max"],
            "convert_s": info.get("convert_s"),
            "target": (f"mean err <= {TARGET_MEAN_AB_ERROR:g}" + (
                f", >= {TARGET_INT8_SPEEDUP:g}x fp32" if name == "tflite_int8" else ""))
            if name != "keras" else None,
            "met": ("yes" if met else "no") if name != "keras" else None,
            "spread": timings[name].spread, "timing": timings[name].to_dict(), "images": n_images})
    return rows


COLUMNS = (common.Column("variant", "variant"), common.Column("size_kib", "KiB", "{:.0f}"),
           common.Column("size_vs_fp32", "size x fp32", "{:.2f}"),
           common.Column("ms_per_image", "ms/img", "{:.2f}"),
           common.Column("speed_vs_fp32", "speed x fp32", "{:.2f}"),
           common.Column("mean_ab_error", "mean |dab|", "{:.3f}"),
           common.Column("max_ab_error", "max |dab|", "{:.2f}"),
           common.Column("target", "target"), common.Column("met", "met"),
           common.Column("spread", "spread", "{:.0%}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    variants = list(dict.fromkeys(FLAGS.formats))
    if set(variants) - set(VARIANTS):
        raise app.UsageError(f"--formats takes {', '.join(VARIANTS)}; got {FLAGS.formats}")
    colorizer = inference.load_model(FLAGS.model)
    if colorizer.generator is None:
        raise UserError(f"{FLAGS.model} is an exported {colorizer.kind} model; pass a training "
                        "workdir or 'default'")
    size = FLAGS.render_size or colorizer.train_size
    if size % colorizer.multiple:
        raise app.UsageError(f"--render_size={size} is not a multiple of {colorizer.multiple}")
    machine = common.machine_info()
    common.warn_if_busy(machine)
    calibration = export.calibration_l(colorizer.config.data, size, FLAGS.calibration_images)
    rows = measure_variants(colorizer, variants, size, calibration, repeats=FLAGS.repeats,
                            warmup=FLAGS.warmup)
    notes = [f"model {FLAGS.model} at {size} px; {rows[0]['images']} bundled photos; int8 "
             f"calibrated on {len(calibration)} images of {colorizer.config.data.data} (the "
             "bundled photos if that is absent)",
             "LiteRT interpreter at its default thread count; Keras: tf.function, TF's threads"]
    common.print_report("TFLite variants vs fp32 (and the Keras model the errors are against)",
                        rows, COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings={**common.flag_settings(["model", "render_size", "formats",
                                                           "calibration_images", "repeats",
                                                           "warmup"]), "size": size})
    return 0


if __name__ == "__main__":
    app.run(main)
