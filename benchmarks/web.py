"""TF.js in the browser: the model's TF.js export per weight quantisation (size, conversion time,
parity against Keras), and the page in headless Chromium per backend (first load, ms per
768x512 photo) beside the Python path on the same photo; also writes the README's screenshot.
With hints (issue 18): a hint model's page, the time from a hint change to the re-coloured photo.

    python benchmarks/web.py --model=default

Exports: colorgan.export --formats=tfjs with each --tfjs_quantization (the converter's
environment must exist or is created first, not timed); size = model.json + shards; errors are
the export's own parity report (Node, TF.js CPU backend, held-aside images at the render size).
Page: `colorgan.web` serving the float16 export, opened fresh per backend (?backend=NAME; the
page falls back and the table says which ran). First load: navigation until the model is loaded
and has run once (the page's own figure: fetch + warm-up). Photo: a bundled photo resized to
768x512 (JPEG), uploaded --repeats times after one untimed upload (WebGL compiles its shaders
then); ms = the page's own timing (decode, colourise, PNG encode), median. Python: the same
photo through images.read_photo, Colorizer.colorize and images.encode_image, in-process, with
common.measure.
Hints: --hint_model (default: --model, given the shipped model's hint_reach if it takes no hints:
the same graph and arithmetic as the shipped model's hints, so the same time) exported to
TF.js float16 and served; per backend the same photo is uploaded, one untimed hint placed, then
--repeats hints placed by clicks and --repeats moves by the arrow key, each waited for. Update
= the page's own time from the model run to the drawn canvas; change -> shown adds the debounce
(hint_editor.js DEBOUNCE_MS) and event handling; median over the 2 x --repeats changes. Python:
Colorizer.colorize_hints on the photo with one hint, common.measure.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from absl import app, flags
from PIL import Image

import common
from colorgan import (cli, color, data, export, export_tfjs, images, inference, sources,
                      user_hints, web, workdir)
from colorgan.web.browser import Browser

FLAGS = flags.FLAGS
NAME = "web"
BACKENDS = ("webgl", "wasm")
PHOTO_HW = (512, 768)
SAMPLE = "chelsea.jpg"  # 451 x 300: the same 3:2 aspect as 768 x 512
SCREENSHOT = os.path.join(common.REPO_ROOT, "docs", "images", "web.png")
SCREENSHOT_WINDOW = (1000, 1100)

flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("cache_dir")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")
flags.DEFINE_string("screenshot", SCREENSHOT, "Where to write the page's screenshot (the README's "
                    "image); empty: none.")
flags.DEFINE_bool("measure", True, "Measure; --nomeasure only exports float16 and writes the "
                  "screenshot.")
flags.DEFINE_string("hint_model", "", "A model that takes hints for the hint update rows; "
                    "empty: --model itself if it takes hints, else --model with the shipped "
                    "model's --hint_reach (same graph, same time); 'none': no hint rows.")


def export_variants(colorizer: inference.Colorizer, directory: str) -> list[dict]:
    """One TF.js export per quantisation; rows with size, parity and conversion seconds."""
    rows = []
    for quantization in ("float16", "float32", "uint8") if FLAGS.measure else ("float16",):
        start = time.perf_counter()
        (path,) = export.export(colorizer, os.path.join(directory, quantization), formats=("tfjs",),
                                tfjs_quantization=quantization, cache_dir=FLAGS.cache_dir)
        parity = inference.read_sidecar(os.path.join(path, export_tfjs.WEB_SIDECAR))["parity"]
        rows.append({"case": f"TF.js {quantization}", "path": path,
                     "size_mb": parity["size_bytes"] / 1e6, "export_s": time.perf_counter() - start,
                     "mean_ab_error": parity["mean_ab_error"], "max_ab_error": parity["max_ab_error"],
                     "parity": parity})
    return rows


def page_rows(model_dir: str, photo: str, repeats: int) -> list[dict]:
    """First load and ms per photo in headless Chromium, one fresh browser per backend."""
    server, url = web.serve_in_thread(model_dir)
    rows = []
    try:
        for backend in BACKENDS if FLAGS.measure else ():
            with Browser() as browser:
                open_s = browser.open(f"{url}?backend={backend}")
                browser.upload(photo)  # untimed: shader compilation, first allocations
                ms = [float(browser.upload(photo).get_attribute("data-ms")) for _ in range(repeats)]
                rows.append({"case": f"page, {browser.body_data('backend')} (asked {backend})",
                             "first_load_s": float(browser.body_data("load-ms")) / 1000,
                             "open_s": open_s, "ms_per_photo": statistics.median(ms), "ms": ms})
        if FLAGS.screenshot:
            with Browser() as browser:
                browser.driver.set_window_size(*SCREENSHOT_WINDOW)  # the whole first result
                browser.open(url)
                browser.upload(photo)
                browser.driver.save_screenshot(FLAGS.screenshot)
    finally:
        server.shutdown()
    return rows


def hint_page_rows(model_dir: str, photo: str, repeats: int) -> list[dict]:
    """Per backend: ms from a hint change to the re-coloured 768x512 photo on a hint model's page."""
    from selenium.webdriver import ActionChains, Keys  # pylint: disable=import-outside-toplevel

    server, url = web.serve_in_thread(model_dir)
    rows = []
    try:
        for backend in BACKENDS:
            with Browser() as browser:
                browser.open(f"{url}?backend={backend}")
                card = browser.upload(photo)
                browser.driver.execute_script("arguments[0].scrollIntoView()", card)
                layer = card.find_element("css selector", ".hint-layer")

                def click(i, layer=layer, browser=browser):  # a new hint, spread over the photo
                    x, y = [(i * step) % side - side // 2 for step, side in
                            zip((97, 61), (PHOTO_HW[1] - 80, PHOTO_HW[0] - 80))]  # not the slider
                    ActionChains(browser.driver).move_to_element_with_offset(
                        layer, x, y).click().perform()
                browser.change_hints(card, lambda: click(0))  # untimed: new shapes, shaders
                figures = [browser.change_hints(card, lambda i=i: click(i)) for i in
                           range(1, repeats + 1)]
                handle = card.find_elements("css selector", ".hint-handle")[-1]
                figures += [browser.change_hints(card, lambda: handle.send_keys(Keys.ARROW_RIGHT))
                            for _ in range(repeats)]
                rows.append({"case": f"page with hints, {browser.body_data('backend')} "
                                     f"(asked {backend})",
                             "hint_update_ms": statistics.median(f["update_ms"] for f in figures),
                             "hint_latency_ms": statistics.median(f["latency_ms"] for f in figures),
                             "hint_changes": figures})
    finally:
        server.shutdown()
    return rows


def python_hint_row(colorizer: inference.Colorizer, photo: str) -> dict:
    """The same photo with one hint through the Python path (Keras), in-process."""
    rgb = images.read_photo(photo, data.DataConfig().max_pixels).rgb[None]
    points = [user_hints.Hint(PHOTO_HW[1] / 2, PHOTO_HW[0] / 2, (20.0, -40.0))]
    timing = common.measure({"hints": lambda: colorizer.colorize_hints(rgb, points).numpy()},
                            calls=1, repeats=FLAGS.repeats, warmup=FLAGS.warmup)
    return {"case": "Python with one hint (colorize --hints' path, Keras)",
            "hint_update_ms": 1000 * timing["hints"].per_call_s,
            "timing": timing["hints"].to_dict()}


def hint_rows(colorizer: inference.Colorizer, directory: str, photo: str) -> list[dict]:
    """The hint model's TF.js export, its page rows and the Python row."""
    if FLAGS.hint_model == "none" or not FLAGS.measure:
        return []
    hinted = inference.load_model(FLAGS.hint_model) if FLAGS.hint_model else colorizer
    if not hinted.takes_hints:  # the shipped model's reach (its config.json), not a copy of it
        reach = workdir.read_config(workdir.PRETRAINED_DIR).model.hint_reach
        hinted = hinted.with_settings(hint_reach=reach)
    (path,) = export.export(hinted, os.path.join(directory, "hints"), formats=("tfjs",),
                            cache_dir=FLAGS.cache_dir)
    parity = inference.read_sidecar(os.path.join(path, export_tfjs.WEB_SIDECAR))["parity"]
    return [{"case": f"TF.js float16, hint model ({hinted.source})",
             "size_mb": parity["size_bytes"] / 1e6, "mean_ab_error": parity["mean_ab_error"],
             "max_ab_error": parity["max_ab_error"], "parity": parity},
            *hint_page_rows(path, photo, FLAGS.repeats), python_hint_row(hinted, photo)]


def python_row(colorizer: inference.Colorizer, photo: str) -> dict:
    """The same photo through the Python path (read, colourise, PNG) in-process."""
    record = colorizer.provenance()

    def once():
        rgb = images.read_photo(photo, data.DataConfig().max_pixels).rgb
        out = color.to_uint8(colorizer.colorize(rgb[None])[0]).numpy()
        return images.encode_image(out, None, "png", record)

    timing = common.measure({"python": once}, calls=1, repeats=FLAGS.repeats, warmup=FLAGS.warmup)
    return {"case": "Python (colorgan.colorize's path, Keras, TF's threads)",
            "ms_per_photo": 1000 * timing["python"].per_call_s,
            "timing": timing["python"].to_dict()}


COLUMNS = (common.Column("case", "case"), common.Column("size_mb", "MB", "{:.1f}"),
           common.Column("mean_ab_error", "mean |dab|", "{:.3f}"),
           common.Column("max_ab_error", "max |dab|", "{:.2f}"),
           common.Column("export_s", "export s", "{:.0f}"),
           common.Column("first_load_s", "first load s", "{:.2f}"),
           common.Column("ms_per_photo", "ms / 768x512 photo", "{:.0f}"),
           common.Column("hint_update_ms", "ms / hint update", "{:.0f}"),
           common.Column("hint_latency_ms", "change -> shown ms", "{:.0f}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    colorizer = inference.load_model(FLAGS.model)
    machine = common.machine_info()
    common.warn_if_busy(machine)
    with tempfile.TemporaryDirectory() as tmp:
        photo = os.path.join(tmp, "cat.jpg")
        Image.open(os.path.join(sources.SAMPLES_DIR, SAMPLE)).convert("RGB").resize(
            PHOTO_HW[::-1], Image.LANCZOS).save(photo, quality=95)
        exports = export_variants(colorizer, tmp)
        rows = exports + page_rows(exports[0]["path"], photo, FLAGS.repeats)
        if FLAGS.measure:
            rows.append(python_row(colorizer, photo))
        rows += hint_rows(colorizer, tmp, photo)
    notes = [f"model {FLAGS.model}; render size {colorizer.default_render_size}; errors in Lab "
             "units against Keras (the export's parity report, in Node)",
             f"photo: {SAMPLE} resized to {PHOTO_HW[1]}x{PHOTO_HW[0]}; page figures are the page's "
             f"own timing, median of {FLAGS.repeats} after one untimed upload",
             f"1-minute load average at start: {machine['load_average_1min_at_start']:.1f} on "
             f"{machine.get('cpu_count', '?')} cores (when a training run shares the CPU, every "
             "figure is an upper bound)"]
    for row in rows:
        row.pop("path", None)
    common.print_report("TF.js in the browser", rows, COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings=common.flag_settings(["model", "hint_model", "repeats",
                                                        "warmup"]))
    return 0


if __name__ == "__main__":
    app.run(main)
