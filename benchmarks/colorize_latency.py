"""End-to-end latency and peak memory of colourising one photo through the CLI's path, against the
sum of the parts that path cannot avoid.

    python benchmarks/colorize_latency.py --model=default --photo_sizes=768x512,6000x4000

For each --photo_sizes entry (WIDTHxHEIGHT) a smooth synthetic photo is saved as a JPEG (quality
95) in a temporary directory; two fresh subprocesses of this script then measure it, so neither
inherits the other's memory or traced functions:
  e2e    what `python -m colorgan.colorize` does per file: colorize.colorize_file (read_image ->
         Colorizer.colorize -> to_uint8 -> encode_image PNG -> write_atomic, into the temporary
         directory). cold = its first call (traces the pixel path for this size); warm = median of
         --repeats calls after --warmup more. Memory: the child's peak RSS (VmHWM), and its growth
         over the peak after loading the model, also in float32 copies of the image (H*W*3*4 B).
  floor  each unavoidable part alone (warm median): decoding the JPEG (Pillow, to uint8), the full
         image through color.rgb_to_lab and color.lab_to_rgb, the bare model forward at the render
         size (inference.render_hw of --render_size), PNG-encoding the colourised full image
         (images.encode_image).
Ratio: e2e warm / floor (target <= 1.2); every part is also shown as its share of the floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags
import numpy as np
from PIL import Image
import tensorflow as tf

import common
from colorgan import cli, color, colorize, images, inference

FLAGS = flags.FLAGS
NAME = "colorize_latency"
TARGET_E2E_RATIO = 1.2
JPEG_QUALITY = 95
FLOOR_PARTS = ("decode_jpeg", "rgb_to_lab", "lab_to_rgb", "model_forward", "encode_png")
_MIB = 2 ** 20

flags.DEFINE_list("photo_sizes", ["768x512", "6000x4000"], "Photos to colourise, WIDTHxHEIGHT "
                  "pixels (6000x4000 = 24 megapixels).")
flags.DEFINE_integer("case_timeout_s", 3600, "Give up on a measuring subprocess after this many "
                     "seconds.", lower_bound=1)
flags.DEFINE_enum("child", "", ["", "e2e", "floor"], "Internal: run one measurement on --photo "
                  "and print it as JSON (the parent starts these).")
flags.DEFINE_string("photo", "", "Internal: the photo a --child measures.")
flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("render_size")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")


# ------------------------------------------------------------------- the child processes
def peak_rss_bytes() -> int:
    """This process's RSS high-water mark (VmHWM in /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def decode_jpeg(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def measure_e2e(model: inference.Colorizer, photo: str, *, render_size: int, repeats: int,
                warmup: int) -> dict:
    rss_loaded = peak_rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        dst = os.path.join(tmp, "out.png")

        def run():
            colorize.colorize_file(model, photo, dst, render_size=render_size)

        start = time.perf_counter()
        run()
        cold_s = time.perf_counter() - start
        timing = common.measure({"e2e": run}, calls=1, repeats=repeats, warmup=warmup)
    return {"cold_s": cold_s, "warm": timing["e2e"].to_dict(),
            "peak_rss_after_load_bytes": rss_loaded, "peak_rss_bytes": peak_rss_bytes()}


def measure_floor(model: inference.Colorizer, photo: str, *, render_size: int, repeats: int,
                  warmup: int) -> dict:
    rgb_u8 = decode_jpeg(photo)
    rgb = tf.image.convert_image_dtype(rgb_u8, tf.float32)[tf.newaxis]
    render_hw = inference.render_hw(tf.shape(rgb)[1:3], render_size or model.train_size,
                                    model.multiple)
    l_small = tf.image.resize(color.rgb_to_gray_l(rgb), render_hw, antialias=True)
    forward, to_lab, to_rgb = (tf.function(f) for f in (model.predict_ab, color.rgb_to_lab,
                                                        color.lab_to_rgb))
    lab = to_lab(rgb)
    out_u8 = color.to_uint8(model.colorize(rgb, render_size)[0]).numpy()
    cases = dict(zip(FLOOR_PARTS, (
        lambda: decode_jpeg(photo), lambda: to_lab(rgb), lambda: to_rgb(lab),
        lambda: forward(l_small), lambda: images.encode_image(out_u8, None, "png"))))
    timings = common.measure(cases, calls=1, repeats=repeats, warmup=max(warmup, 1))
    return {"render_hw": [int(v) for v in render_hw],
            "parts": {name: t.to_dict() for name, t in timings.items()}}


def run_child(part: str, photo: str, model_spec: str, **protocol) -> None:
    """One measurement in this fresh process; the result is the last line of stdout.
    `protocol`: render_size, repeats and warmup."""
    start = time.perf_counter()
    model = inference.load_model(model_spec)
    load_s = time.perf_counter() - start
    measure = measure_e2e if part == "e2e" else measure_floor
    print(json.dumps({"load_s": load_s, **measure(model, photo, **protocol)}))


# ------------------------------------------------------------------------------ the parent
def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise app.UsageError(f"--photo_sizes: {text!r} is not WIDTHxHEIGHT") from e
    return width, height


def run_case(part: str, photo: str) -> dict:
    """Runs this script as a --child=`part` subprocess and returns its JSON result."""
    argv = [sys.executable, os.path.abspath(__file__), f"--child={part}", f"--photo={photo}",
            f"--model={FLAGS.model}", f"--render_size={FLAGS.render_size}",
            f"--repeats={FLAGS.repeats}", f"--warmup={FLAGS.warmup}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=FLAGS.case_timeout_s,
                          check=False)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"--child={part} on {photo} exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def case_rows(label: str, e2e: dict, floor: dict) -> tuple[list[dict], dict]:
    """Latency rows (parts, floor, e2e warm and cold) and the memory row of one photo."""
    parts = {name: floor["parts"][name]["per_call_s"] for name in FLOOR_PARTS}
    floor_s = sum(parts.values())
    hw = floor["render_hw"]
    rows = [{"photo": label, "part": name + (f" @ {hw[1]}x{hw[0]}" if name == "model_forward" else ""),
             "ms": 1000 * s, "x_floor": s / floor_s} for name, s in parts.items()]
    warm_s = e2e["warm"]["per_call_s"]
    rows += [{"photo": label, "part": "floor (sum)", "ms": 1000 * floor_s, "x_floor": 1.0},
             {"photo": label, "part": "e2e warm", "ms": 1000 * warm_s, "x_floor": warm_s / floor_s,
              "target": f"<= {TARGET_E2E_RATIO:g}",
              "met": "yes" if warm_s / floor_s <= TARGET_E2E_RATIO else "no"},
             {"photo": label, "part": "e2e cold (first call)", "ms": 1000 * e2e["cold_s"],
              "x_floor": e2e["cold_s"] / floor_s}]
    width, height = parse_size(label)
    growth = e2e["peak_rss_bytes"] - e2e["peak_rss_after_load_bytes"]
    memory = {"photo": label, "rss_after_load_mib": e2e["peak_rss_after_load_bytes"] / _MIB,
              "peak_rss_mib": e2e["peak_rss_bytes"] / _MIB, "growth_mib": growth / _MIB,
              "growth_in_image_copies": growth / (width * height * 3 * 4),
              "model_load_s": e2e["load_s"]}
    return rows, memory


LATENCY_COLUMNS = (common.Column("photo", "photo"), common.Column("part", "part"),
                   common.Column("ms", "ms", "{:.1f}"), common.Column("x_floor", "x floor", "{:.2f}"),
                   common.Column("target", "target"), common.Column("met", "met"))
MEMORY_COLUMNS = (common.Column("photo", "photo"),
                  common.Column("rss_after_load_mib", "peak RSS after load MiB", "{:.0f}"),
                  common.Column("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
                  common.Column("growth_mib", "growth MiB", "{:.0f}"),
                  common.Column("growth_in_image_copies", "growth / f32 image", "{:.1f}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    if FLAGS.child:
        run_child(FLAGS.child, FLAGS.photo, FLAGS.model, render_size=FLAGS.render_size,
                  repeats=FLAGS.repeats, warmup=FLAGS.warmup)
        return 0
    sizes = [parse_size(text) for text in FLAGS.photo_sizes]
    machine = common.machine_info()
    common.warn_if_busy(machine)
    rows, memory, raw = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            label = f"{width}x{height}"
            photo = os.path.join(tmp, f"photo_{label}.jpg")
            Image.fromarray(common.smooth_rgb_u8(height, width)).save(photo, quality=JPEG_QUALITY)
            raw[label] = {part: run_case(part, photo) for part in ("e2e", "floor")}
            case, mem = case_rows(label, **raw[label])
            rows += case
            memory.append(mem)
    notes = [f"model {FLAGS.model}, render size {FLAGS.render_size or 'the model training size'}",
             "each case in a fresh subprocess; the output PNG is written to a temporary directory"]
    common.print_report("Colourise one photo: end to end vs the floor (ms per photo)", rows,
                        LATENCY_COLUMNS, [])
    common.print_report("Peak memory of the e2e subprocess", memory, MEMORY_COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings=common.flag_settings(["model", "render_size", "photo_sizes",
                                                        "repeats", "warmup"]),
                         extra={"memory": memory, "raw": raw})
    return 0


if __name__ == "__main__":
    app.run(main)
