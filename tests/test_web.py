"""colorgan.web and the browser page: the JS ports (sRGB <-> Lab, the render size, the antialiased
L resize, ab upsampling, the hint map) against the Python definitions, run in Node; and the page
itself in headless Chromium (selenium + chromium-driver from Debian), served by `python -m
colorgan.web` with the tiny model exported to TF.js: a photo's result against `python -m
colorgan.colorize`, EXIF orientation, bad files, the network log. Then a tiny hint model's export
and page: the hint tools (click, colour, drag, delete) against colorize_array with the same hints.
One server, browser and page per module (and one more server for the hint model)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import functools
import http.server
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan import (color, colorize, config, images, inference, models, tfjs, upsampling,
                      user_hints)
from colorgan import web
from colorgan.web import browser as browser_lib
from colorgan.web.browser import Browser
from conftest import CONVERTER_CACHE, run_main, smooth_color_image

# float32 TF.js (CPU backend) against float32 TF: pow and cube root in other libraries, on Lab
# values of order 100 (measured max 2e-5 Lab units) and on [0, 1] sRGB (measured 3e-7).
LAB_ATOL = 1e-3
RGB_ATOL = 1e-5
# Resizes and the guided filter: sums of a few float32 products of values of order 1.
UPSAMPLE_ATOL = 1e-5
# A TF.js model in Node against Keras (tests/test_tfjs.py): float16 weights, mean Lab units.
NODE_VS_KERAS_MEAN_AB = 0.05
# The page's result against the colourise CLI on the same photo and model: float16 weights in
# TF.js's WebGL/WASM kernels vs float32 Keras, and Chromium's JPEG decoder vs Pillow's. Measured:
# max 1 level, mean < 0.01 per channel (the tiny model; the shipped one on a 768x512 photo too),
# on both WASM and WebGL.
PAGE_VS_CLI_MEAN_LEVELS = 2.0
SERVER_STOP_TIMEOUT_S = 60
MODEL_DELAY_S = 2.0
EXIF_ORIENTATION, ROTATED_90_CW = 0x0112, 6


# --------------------------------------------------------------------- the JS ports, in Node
def _js(fn: str, *args, **arrays) -> np.ndarray:
    """Calls colorgan.<fn> of the page's scripts in Node; array arguments by name."""
    out, _ = tfjs.run_node({"op": "call", "fn": fn, "args": list(args)}, arrays)
    return out


def test_rgb_to_lab_and_back_match_color_py():
    rng = np.random.default_rng(0)
    edges = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.04, 0.5, 0.9]])
    rgb = np.concatenate([rng.uniform(0, 1, (58, 3)), edges]).reshape(1, 8, 8, 3).astype(np.float32)
    lab = _js("color.rgbToLab", {"array": "rgb"}, rgb=rgb)
    np.testing.assert_allclose(lab, color.rgb_to_lab(rgb).numpy(), atol=LAB_ATOL)
    # Out-of-gamut Lab too: both clip the same way.
    lab_in = np.stack([rng.uniform(0, 100, 64), rng.uniform(-128, 128, 64),
                       rng.uniform(-128, 128, 64)], -1).reshape(1, 8, 8, 3).astype(np.float32)
    back = _js("color.labToRgb", {"array": "lab"}, lab=lab_in)
    np.testing.assert_allclose(back, color.lab_to_rgb(lab_in).numpy(), atol=RGB_ATOL)


@pytest.mark.parametrize("hw", [(61, 97), (512, 768), (1, 10000), (33, 32), (4000, 3000)])
def test_render_hw_matches_inference(hw):
    got = _js("upsampling.renderHw", list(hw), 32, 8, inference.MAX_RENDER_ASPECT)
    want = inference.render_hw(tf.constant(hw), 32, 8).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("hw", [(61, 97), (16, 24), (200, 120)])
def test_render_l_matches_the_antialiased_resize(hw):
    l_full = np.random.default_rng(1).uniform(-1, 1, (1, *hw, 1)).astype(np.float32)
    small_hw = inference.render_hw(tf.constant(hw), 32, 8).numpy().tolist()
    got = _js("upsampling.renderL", {"array": "l"}, small_hw, l=l_full)
    np.testing.assert_allclose(got, inference.render_l(l_full, 32, 8).numpy(), atol=UPSAMPLE_ATOL)


@pytest.mark.parametrize("mode", upsampling.UPSAMPLE_MODES)
def test_upsample_ab_matches_upsampling_py(mode):
    rng = np.random.default_rng(2)
    l_full = rng.uniform(-1, 1, (1, 61, 97, 1)).astype(np.float32)
    l_small = inference.render_l(l_full, 32, 8).numpy()
    ab = rng.uniform(-0.5, 0.5, (*l_small.shape[:3], 2)).astype(np.float32)
    got = _js("upsampling.upsampleAb", {"array": "ab"}, {"array": "small"}, {"array": "full"},
              mode, ab=ab, small=l_small, full=l_full)
    want = upsampling.upsample_ab(ab, l_small, l_full, mode).numpy()
    np.testing.assert_allclose(got, want, atol=UPSAMPLE_ATOL)


# ---------------------------------------------------------------------------- the server
def test_find_model_takes_an_export_root_or_a_version(tiny_tfjs, tmp_path):
    root = os.path.dirname(os.path.dirname(tiny_tfjs))
    assert web.find_model(tiny_tfjs) == tiny_tfjs
    assert web.find_model(root) == tiny_tfjs
    newer = os.path.join(root, web.TFJS_DIR, "10")
    shutil.copytree(tiny_tfjs, newer)
    assert web.find_model(root) == newer  # the newest version, by number
    shutil.rmtree(newer)
    with pytest.raises(web.UserError, match="no TF.js model"):
        web.find_model(str(tmp_path))


@pytest.fixture(scope="module")
def server_url(tiny_tfjs):
    """`python -m colorgan.web` on a free port, as a user starts it."""
    proc = subprocess.Popen([sys.executable, "-m", "colorgan.web", f"--model={tiny_tfjs}",
                             "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until the server prints its URL (or exits)
    if not line.startswith("serving http://"):
        proc.kill()
        pytest.fail(f"colorgan.web did not start: {line}{proc.stderr.read()}")
    yield line.split()[1]
    proc.terminate()
    proc.wait(SERVER_STOP_TIMEOUT_S)


def test_server_serves_the_page_and_only_the_models_own_files(server_url):
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(server_url) as r:
        assert b"<input type=\"file\"" in r.read()
    with urllib.request.urlopen(server_url + "model/colorgan_web.json") as r:
        assert r.headers["Content-Type"] == "application/json"
    for path in ("model/model.json", "vendor/tfjs-backend-wasm-simd.wasm", "js/app.js"):
        with urllib.request.urlopen(server_url + path) as r:
            assert r.status == 200
    for path in ("model/../__init__.py", "model/%2e%2e/__init__.py", "../__init__.py"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server_url + path)


# ------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser, server_url):
    browser.open(server_url)
    return browser


@pytest.mark.parametrize("mode", upsampling.UPSAMPLE_MODES)
@pytest.mark.parametrize("backend", ["webgl", "wasm"])  # wasm last: the page's own choice here
def test_ports_agree_with_python_on_the_pages_backends(page, server_url, backend, mode):
    """The Node tests run TF.js's CPU backend; the page runs WebGL or WASM, whose kernels (avg
    pooling at the borders, resizes, pow) must agree with TF too."""
    if page.body_data("backend") != backend:
        page.open(f"{server_url}?backend={backend}")
    rng = np.random.default_rng(3)
    l_full = rng.uniform(-1, 1, (1, 37, 53, 1)).astype(np.float32)
    l_small = inference.render_l(l_full, 16, 8).numpy()
    ab = rng.uniform(-0.5, 0.5, (*l_small.shape[:3], 2)).astype(np.float32)
    rgb = rng.uniform(0, 1, (1, 4, 4, 3)).astype(np.float32)
    got = page.driver.execute_script(
        "const [full, ab, rgb, mode] = arguments; const u = colorgan.upsampling;"
        " const lFull = tf.tensor(full); const small = u.renderL(lFull, [ab.length, ab[0].length]);"
        " return [tf.getBackend(), small.arraySync(),"
        " u.upsampleAb(tf.tensor([ab]), small, lFull, mode).arraySync(),"
        " colorgan.color.rgbToLab(tf.tensor(rgb)).arraySync()];",
        l_full.tolist(), ab[0].tolist(), rgb.tolist(), mode)
    _, small, up, lab = got
    assert got[0] == backend
    np.testing.assert_allclose(small, l_small, atol=UPSAMPLE_ATOL)
    np.testing.assert_allclose(up, upsampling.upsample_ab(ab, l_small, l_full, mode).numpy(),
                               atol=UPSAMPLE_ATOL)
    np.testing.assert_allclose(lab, color.rgb_to_lab(rgb).numpy(), atol=LAB_ATOL)


def _rotated_jpeg(path: str, h: int = 48, w: int = 64) -> None:
    """A colour JPEG stored sideways with EXIF orientation 6: upright it is w x h... rotated."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    Image.fromarray(smooth_color_image(h, w, 11)).save(path, exif=exif, quality=95)


def test_photo_matches_the_colorize_cli(page, tiny_workdir, tmp_path):
    photo = str(tmp_path / "sideways.jpg")
    _rotated_jpeg(photo)
    card = page.upload(photo)
    assert "done" in card.get_attribute("class"), card.text
    got_png = page.download(card)
    assert run_main(colorize.main, [f"--model={tiny_workdir}", f"--output={tmp_path / 'cli'}",
                                    photo]) == 0
    cli_png = str(tmp_path / "cli" / "sideways.png")
    got = np.asarray(Image.open(io.BytesIO(got_png)).convert("RGB"), np.float32)
    want = np.asarray(Image.open(cli_png).convert("RGB"), np.float32)
    assert got.shape == want.shape == (64, 48, 3)  # EXIF orientation honoured, as the CLI does
    assert np.abs(got - want).mean(axis=(0, 1)).max() <= PAGE_VS_CLI_MEAN_LEVELS
    record = images.read_provenance(io.BytesIO(got_png))
    assert record == {**images.read_provenance(cli_png), "model_kind": "tfjs_float16"}
    assert "ms on " in card.text and card.find_element("css selector", "a.download").get_attribute(
        "download") == "sideways_colorized.png"


def _bad_files(folder) -> list[tuple[str, str]]:
    """(path, what the page must say) for a text file, a truncated JPEG, a 20000 x 20000 PNG
    header (no pixel data: the page must refuse it before decoding) and an unsupported format."""
    text = os.path.join(folder, "notes.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("not a photo\n")
    full = io.BytesIO()
    Image.fromarray(smooth_color_image(64, 64, 3)).save(full, format="JPEG")
    truncated = os.path.join(folder, "cut.jpg")
    with open(truncated, "wb") as f:
        f.write(full.getvalue()[:300])
    huge = os.path.join(folder, "huge.png")
    header = io.BytesIO()
    Image.new("L", (1, 1)).save(header, format="PNG")
    png = bytearray(header.getvalue())
    png[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width, height (CRC left stale)
    with open(huge, "wb") as f:
        f.write(png)
    tiff = os.path.join(folder, "scan.tif")
    Image.fromarray(smooth_color_image(16, 16, 4)).save(tiff)
    return [(text, "not an image"), (truncated, "not an image"), (huge, "400 MP"),
            (tiff, "not an image")]


def test_bad_files_show_a_message_and_the_page_keeps_working(page, tmp_path):
    for path, message in _bad_files(str(tmp_path)):
        card = page.upload(path)
        assert "failed" in card.get_attribute("class") and message in card.text, card.text
    good = str(tmp_path / "good.png")
    Image.fromarray(smooth_color_image(40, 56, 5)).convert("L").save(good)
    card = page.upload(good)
    assert "done" in card.get_attribute("class"), card.text
    assert Image.open(io.BytesIO(page.download(card))).size == (56, 40)


def test_a_photo_chosen_before_the_model_loads_waits_for_it(browser, server_url, tiny_tfjs,
                                                            tmp_path):
    """The file input works from the start: a photo chosen while model.json is still on its way
    is colourised once the model is ready (the model is served 2 s late here)."""
    class SlowModel(web._Handler):  # pylint: disable=protected-access
        def do_GET(self):
            if self.path.endswith("model.json"):
                time.sleep(MODEL_DELAY_S)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        (web.HOST, 0), functools.partial(SlowModel, model_dir=tiny_tfjs))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{web.HOST}:{server.server_address[1]}/"
    try:
        browser.driver.get(url)
        photo = str(tmp_path / "early.png")
        Image.fromarray(smooth_color_image(32, 40, 8)).save(photo)
        browser.driver.find_element("id", "file").send_keys(photo)
        assert "waiting for the model" in browser.driver.find_element("id", "status").text
        card = browser.upload(photo)  # a second one, and both finish
        browser_lib.wait(lambda: len(browser.driver.find_elements(
            "css selector", ".result.done")) == 2, lambda: card.text)
    finally:
        requested = browser.requested_urls()  # drained even on failure: the next test reads its own
        server.shutdown()
    # This module's requests so far went to its two servers only.
    assert all(u.startswith((url, server_url)) for u in requested if u.startswith("http"))


def test_opened_from_file_the_page_says_to_serve_it(browser):
    browser.driver.get("file://" + os.path.join(web.STATIC_DIR, "index.html"))
    status = browser.driver.find_element("id", "status")
    assert "file://" in status.text and "python -m colorgan.web" in status.text
    assert "error" in status.get_attribute("class")


def test_screenshot_shows_the_result(page, tmp_path):
    path = str(tmp_path / "web.png")
    page.driver.save_screenshot(path)
    assert Image.open(path).size[0] > 0


def test_the_page_requests_only_its_own_origin(browser, server_url, tmp_path):
    """Last: reads the network log of the page loads and uploads since the log was last read,
    then one more."""
    browser.open(server_url)
    photo = str(tmp_path / "one.png")
    Image.fromarray(smooth_color_image(32, 48, 6)).save(photo)
    assert "done" in browser.upload(photo).get_attribute("class")
    urls = browser.requested_urls()
    assert any(u.endswith("model.json") for u in urls)
    # Every request that reaches a network (http, https, ws) is to the page's own server;
    # chrome:// (the browser's own start page), blob: and data: never leave the process.
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    assert [u for u in network if not u.startswith(server_url)] == []


def test_the_default_models_cache_follows_the_shipped_files(monkeypatch, tmp_path):
    """The shipped model's TF.js copy is cached under a hash of colorgan/pretrained's files, so
    new weights (even within one colorgan version) are exported again, not served stale."""
    from colorgan import web, workdir
    assert os.path.isfile(os.path.join(workdir.PRETRAINED_DIR, workdir.CONFIG_JSON))
    assert re.fullmatch(r"[0-9a-f]{12}", web._shipped_digest())
    shipped = web._shipped_digest()
    monkeypatch.setattr(config, "PRETRAINED_DIR", str(tmp_path))  # other shipped files
    for name in (config.PRETRAINED_WEIGHTS, config.CONFIG_JSON):
        (tmp_path / name).write_bytes(b"other " + name.encode())
    assert web._shipped_digest() != shipped


# ----------------------------------------------------------- hints (a hint model, issue 18)
HINT_CASES = [  # (photo H x W, the model's view h x w, hints): corners, radii, overlaps
    ((64, 96), (32, 48), [user_hints.Hint(95, 10, (20.0, -40.0)),
                          user_hints.Hint(0, 0, (-5.0, 30.0), radius=3),  # clipped at the corner
                          user_hints.Hint(40, 30, (0.0, 0.0), radius=4),
                          user_hints.Hint(41, 31, (60.0, 60.0), radius=2),  # overlaps the last
                          user_hints.Hint(95.9, 63.9, (10.0, 10.0), radius=9)]),  # last half-px
    ((61, 97), (32, 48), [user_hints.Hint(30.5, 20.25, (1.5, -2.5), radius=1.7),
                          user_hints.Hint(96, 60, (100.0, -100.0), radius=40),
                          user_hints.Hint(3, 58, (-7.0, 7.0), radius=0.75)]),
    ((20, 30), (64, 96), [user_hints.Hint(10, 5, (3.0, 4.0), radius=1),  # the view larger
                          user_hints.Hint(29, 0, (-3.0, -4.0), radius=2.5)]),
    ((40, 100), (32, 48), [user_hints.Hint(50, 10, (0.0, 50.0), radius=5),  # unequal scales
                           user_hints.Hint(99, 39, (-50.0, 0.0), radius=1.25)]),  # a radius tie
    ((48, 64), (32, 40), []),
]
# ab / AB_SCALE in float32 both ways; overlaps average a few float32 values.
HINT_AB_ATOL = 1e-6
HINT_PHOTO_HW = (160, 240)  # big enough to click beside the ~18 px markers
# A hint model's page against colorize_array on the same photo and hints: float16 weights in
# TF.js's kernels vs float32 Keras, on a lossless PNG (no JPEG decoders involved). Measured on
# WASM: max 1 level, mean < 0.001 per channel.
HINT_PAGE_MEAN_LEVELS = 2.0
HINT_PAGE_MAX_LEVELS = 3
# The strong tiny hint model (strong_hints) moves ab by several Lab units around a hint, far
# beyond the export's parity error (0.05; test_user_hints' N(0, 3) branch: 9.6 Lab units).
HINT_EFFECT_AB = 2.0
# A hint moves the colour near it by more than this (sRGB levels), with the module's strong tiny
# hint model (strong_hints; measured: 23 levels for a hint of the result's own colour, 12 more
# for another colour).
HINT_CHANGE_LEVELS = 5
NEAR_PX = 12  # half-side of the window around a hint where its effect is checked
BLUE = "#4a7bd0"


def _js_hint(hint: user_hints.Hint) -> dict:
    return {"x": hint.x, "y": hint.y, "ab": list(hint.ab), "radius": hint.radius}


@pytest.mark.parametrize("full_hw,render_hw,points", HINT_CASES)
def test_hint_map_port_matches_user_hints(full_hw, render_hw, points):
    got = _js("hints.hintMap", [_js_hint(p) for p in points], list(full_hw), list(render_hw))
    want = user_hints.hint_map(points, full_hw, render_hw).numpy()
    assert got.shape == want.shape == (1, *render_hw, 3)
    np.testing.assert_array_equal(got[..., 2], want[..., 2])  # the same cells
    np.testing.assert_allclose(got[..., :2], want[..., :2], atol=HINT_AB_ATOL)
    assert (want[..., 2].sum() > 0) == bool(points)


@pytest.mark.parametrize("hex_colour", ["#4a7bd0", "#000000", "#ffffff", "#ff0000", "#12ab7f"])
def test_hex_to_ab_port_matches_user_hints(hex_colour):
    got = _js("hints.hexToAb", hex_colour)
    np.testing.assert_allclose(got, user_hints.hex_to_ab(hex_colour), atol=LAB_ATOL)


def _js_value(fn: str, *args):
    """colorgan.<fn> in Node for a result that is not an array (its JSON value)."""
    return tfjs.run_node({"op": "call", "fn": fn, "args": list(args)}, {})[1]["value"]


def test_the_hints_fingerprint_and_record_text_match_colorize():
    """A hinted download's provenance names its hints as colorgan.colorize's outputs do: the
    same hash of the same points (floats written as Python writes them), in the sorted text."""
    doc = [{"x": 120, "y": 80.5, "ab": [-5, -32], "radius": 4},  # as a hints file gives them
           {"x": 0, "y": 3, "ab": [23.456787109375, -1e-05]},
           {"x": 7, "y": 9, "ab": [-0.0, 3.0517578125e-05], "radius": 1.5}]
    want = user_hints.fingerprint(user_hints.parse({"points": doc}, 200, 100))
    assert _js_value("hints.fingerprint", doc) == want
    record = {"color_upsample": "bilinear", "flip_average": False, "model": "g-0", "zeta": 1.0}
    text = images.provenance_text(record)
    got = _js_value("hints.withHintsText", text, record, want)
    assert got == images.provenance_text({**record, "hints": want})
    late = {"alpha": 1, "beta": "x"}  # no key after "hints"
    assert _js_value("hints.withHintsText", images.provenance_text(late), late, want) == \
        images.provenance_text({**late, "hints": want})


@pytest.fixture(scope="module")
def strong_hints(hint_model) -> inference.Colorizer:
    """test_user_hints' tiny hint model (this module's own instance) with its hint branch ten
    times stronger, N(0, 30): the page's hints have radius 0, one 5 x 5 px render cell of the
    test photo, where N(0, 3) moves the colour by ~3 levels only (another colour: 1 level),
    too close to the page's 1-level agreement with Python to tell hints apart."""
    conv = hint_model.generator.get_layer("enc1_hint_conv")
    rng = np.random.default_rng(1)
    conv.set_weights([rng.normal(0, 30.0, w.shape).astype(np.float32) for w in conv.get_weights()])
    hint_model.model_id = ""  # new weights: a new identity (provenance)
    return hint_model


@pytest.fixture(scope="module")
def hint_tfjs(strong_hints, tmp_path_factory) -> str:
    """The strong tiny hint model exported to TF.js (float16), as tiny_tfjs is."""
    from colorgan import export  # noqa: PLC0415
    output = str(tmp_path_factory.mktemp("hint-tfjs"))
    return export.export(strong_hints, output, formats=("tfjs",), cache_dir=CONVERTER_CACHE)[0]


def test_a_hint_models_tfjs_export_takes_hints_and_zeros_are_automatic(
        hint_tfjs, strong_hints, tiny_tfjs):
    with open(os.path.join(hint_tfjs, "model.json"), encoding="utf-8") as f:
        inputs = json.load(f)["signature"]["inputs"].values()
    # (The converter keys some inputs by tensor name, "l:0", others by name: compare the names.)
    assert sorted(i["name"] for i in inputs) == ["hint_ab:0", "hint_mask:0", "l:0"]
    info = inference.read_sidecar(os.path.join(hint_tfjs, web.WEB_SIDECAR))
    assert info["hints"] is True
    parity = info["parity"]
    assert parity["hints_per_image"] == 5 and parity["images"] > 0
    assert parity["mean_ab_error"] <= tfjs.PARITY_TOLERANCE["float16"]
    automatic = inference.read_sidecar(os.path.join(tiny_tfjs, web.WEB_SIDECAR))
    assert "hints" not in automatic and "hints_per_image" not in automatic["parity"]
    # One model, both modes: zero hints are the Keras model's automatic mode, a hint moves it.
    l = np.random.default_rng(4).uniform(-1, 1, (1, 32, 40, 1)).astype(np.float32)
    one = user_hints.hint_map([user_hints.Hint(20, 16, (40.0, -40.0), radius=2)], (32, 40),
                              (32, 40)).numpy()
    both, _ = tfjs.predict_node(hint_tfjs, np.concatenate([l, l]),
                                np.concatenate([np.zeros_like(one), one]))
    automatic_ab = strong_hints.predict_ab(tf.constant(l)).numpy()[0]
    hinted_ab = models.predict_ab(strong_hints.generator, tf.constant(l), strong_hints.config.model,
                                  hint_map=one).numpy()[0]
    assert np.mean(np.abs(both[0] - automatic_ab)) * color.AB_SCALE <= NODE_VS_KERAS_MEAN_AB
    assert np.mean(np.abs(both[1] - hinted_ab)) * color.AB_SCALE <= NODE_VS_KERAS_MEAN_AB
    assert np.abs(both[1] - both[0]).max() * color.AB_SCALE > HINT_EFFECT_AB


@pytest.fixture(scope="module")
def hint_url(hint_tfjs):
    server, url = web.serve_in_thread(hint_tfjs)
    yield url
    server.shutdown()


@pytest.fixture(scope="module")
def hint_photo(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("hint-photo") / "street.png")
    Image.fromarray(smooth_color_image(*HINT_PHOTO_HW, 21)).save(path)
    return path


def _png_rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)


def _hex_rgb(hex_colour: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_colour[1:]), np.uint8).astype(np.int16)


def _python(model, photo: str, points: list[dict]) -> np.ndarray:
    rgb_u8 = np.asarray(Image.open(photo).convert("RGB"))
    return inference.colorize_array(rgb_u8, model, hints=points).astype(np.int16)


def _assert_matches_python(got: np.ndarray, want: np.ndarray) -> None:
    diff = np.abs(got - want)
    assert diff.mean(axis=(0, 1)).max() <= HINT_PAGE_MEAN_LEVELS and diff.max() <= \
        HINT_PAGE_MAX_LEVELS, (diff.mean(axis=(0, 1)), diff.max())


def _near(image: np.ndarray, x: int, y: int) -> np.ndarray:
    return image[max(y - NEAR_PX, 0):y + NEAR_PX + 1, max(x - NEAR_PX, 0):x + NEAR_PX + 1]


def _marker(card, index: int = -1):
    return card.find_elements("css selector", ".hint")[index]


def _click_photo(browser, card, x: int, y: int) -> None:
    """A real click on photo pixel (x, y) of the card's result (shown at 1:1)."""
    from selenium.webdriver import ActionChains  # noqa: PLC0415
    layer = card.find_element("css selector", ".hint-layer")
    size = layer.size
    ActionChains(browser.driver).move_to_element_with_offset(
        layer, x - size["width"] // 2, y - size["height"] // 2).click().perform()


def test_the_hint_tools_appear_for_a_hint_model_only(browser, server_url, hint_url, hint_photo):
    browser.open(server_url)
    card = browser.upload(hint_photo)
    assert "done" in card.get_attribute("class")
    for selector in (".hint-tools", ".hint-layer", "canvas", "input[type=color]"):
        assert not browser.driver.find_elements("css selector", selector), selector
    assert card.find_element("css selector", "img.after").get_attribute("src").startswith("blob:")
    browser.open(hint_url)
    card = browser.upload(hint_photo)
    assert "done" in card.get_attribute("class"), card.text
    picker = card.find_element("css selector", "input[type=color].hint-colour")
    assert picker.accessible_name == "Hint colour" and not picker.is_enabled()
    assert card.find_element("css selector", "canvas.after").size["width"] == HINT_PHOTO_HW[1]
    assert not card.find_elements("css selector", "img.after") and not _hints(card)


def _hints(card) -> list[dict]:
    return [{"x": int(m.get_attribute("data-x")), "y": int(m.get_attribute("data-y")),
             "color": m.get_attribute("data-hex")}
            for m in card.find_elements("css selector", ".hint")]


def test_placing_changing_moving_and_deleting_hints_recolour_the_photo(
        browser, hint_url, hint_photo, strong_hints, hint_tfjs):
    from selenium.webdriver import ActionChains, Keys  # noqa: PLC0415
    browser.open(hint_url)
    card = browser.upload(hint_photo)
    automatic = _png_rgb(browser.canvas_png(card))
    automatic_record = images.read_provenance(io.BytesIO(browser.download(card)))
    assert automatic_record == inference.read_sidecar(os.path.join(
        hint_tfjs, web.WEB_SIDECAR))["provenance"]
    _assert_matches_python(automatic, _python(strong_hints, hint_photo, []))
    # A click: a marker there, the picker at the model's own colour there, the colour near it moves.
    browser.change_hints(card, lambda: _click_photo(browser, card, 60, 50))
    (placed,) = _hints(card)
    assert abs(placed["x"] - 60) <= 1 and abs(placed["y"] - 50) <= 1
    picker = card.find_element("css selector", ".hint-colour")
    start = _hex_rgb(picker.get_attribute("value"))
    python_auto = _python(strong_hints, hint_photo, [])
    assert np.abs(start - python_auto[placed["y"], placed["x"]]).max() <= 2
    np.testing.assert_array_equal(start, automatic[placed["y"], placed["x"]])
    clicked = _png_rgb(browser.canvas_png(card))
    assert np.abs(_near(clicked - automatic, placed["x"], placed["y"])).max() > HINT_CHANGE_LEVELS
    _assert_matches_python(clicked, _python(strong_hints, hint_photo, [placed]))
    # A new colour from the picker.
    browser.change_hints(card, lambda: browser.driver.execute_script(
        "arguments[0].value = arguments[1];"
        " arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", picker, BLUE))
    assert _hints(card) == [{**placed, "color": BLUE}]
    blue = _png_rgb(browser.canvas_png(card))
    _assert_matches_python(blue, _python(strong_hints, hint_photo, _hints(card)))
    assert np.abs(_near(blue - clicked, placed["x"], placed["y"])).max() > HINT_CHANGE_LEVELS
    # Dragged 100 px right: the colour follows, the download too.
    handle = _marker(card).find_element("css selector", ".hint-handle")
    figures = browser.change_hints(card, lambda: ActionChains(browser.driver).click_and_hold(
        handle).move_by_offset(100, 40).release().perform())
    (moved,) = _hints(card)
    assert abs(moved["x"] - placed["x"] - 100) <= 1 and abs(moved["y"] - placed["y"] - 40) <= 1
    dragged = _png_rgb(browser.canvas_png(card))
    _assert_matches_python(dragged, _python(strong_hints, hint_photo, [moved]))
    download = browser.download(card)
    np.testing.assert_array_equal(_png_rgb(download), dragged)
    record = images.read_provenance(io.BytesIO(download))  # names its hints, as colorize does
    assert record.pop("hints")["points"] == 1 and record == automatic_record
    assert figures["update_ms"] > 0 and figures["latency_ms"] >= figures["update_ms"]
    # A second hint; the Delete key removes the selected one, the × the other.
    browser.change_hints(card, lambda: _click_photo(browser, card, 40, 120))
    assert len(_hints(card)) == 2
    browser.change_hints(card, lambda: _marker(card).find_element(
        "css selector", ".hint-handle").send_keys(Keys.DELETE))
    assert _hints(card) == [moved]
    np.testing.assert_array_equal(_png_rgb(browser.canvas_png(card)), dragged)
    remove = _marker(card).find_element("css selector", ".hint-delete")
    assert "delete the hint at" in remove.accessible_name
    browser.change_hints(card, remove.click)
    assert not _hints(card)
    np.testing.assert_array_equal(_png_rgb(browser.canvas_png(card)), automatic)
    assert images.read_provenance(io.BytesIO(browser.download(card))) == automatic_record


@pytest.mark.parametrize("backend", ["webgl", "wasm"])
def test_colorize_rgb_takes_hints_on_a_hint_model_only(browser, server_url, hint_url,
                                                       strong_hints, backend):
    """colorize.colorizeRgb in the page, on each backend: a hint model's result with hints
    (in photo pixels, Lab a*b*, a radius) is colorize_array's with the same hints; without hints
    ([] or none) both models give their automatic result; the automatic model ignores hints."""
    script = (
        "const [rgbU8, hints, done] = arguments; const {colorize, color} = colorgan;"
        " colorize.loadModel('model/').then(({model, info}) => {"
        "   const rgb = tf.tensor([rgbU8]).div(255);"
        "   const run = (h) => color.toUint8(colorize.colorizeRgb(model, info, rgb, h))"
        "     .arraySync()[0];"
        "   done([tf.getBackend(), run(), run([]), run(hints)]); });")
    rgb_u8 = smooth_color_image(40, 56, 9)
    points = [{"x": 20, "y": 10, "ab": [60.0, -60.0], "radius": 3},
              {"x": 55, "y": 39, "ab": [-30.0, 20.0]}]
    for url, hinted in ((server_url, False), (hint_url, True)):
        browser.open(f"{url}?backend={backend}")
        ran, plain, empty, with_hints = browser.driver.execute_async_script(
            script, rgb_u8.tolist(), points)
        plain, empty, with_hints = (np.array(a, np.int16) for a in (plain, empty, with_hints))
        assert ran == backend
        np.testing.assert_array_equal(plain, empty)
        if hinted:
            _assert_matches_python(plain, inference.colorize_array(rgb_u8, strong_hints))
            _assert_matches_python(with_hints, inference.colorize_array(rgb_u8, strong_hints,
                                                                        hints=points))
            assert np.abs(with_hints - plain).max() > HINT_CHANGE_LEVELS
        else:
            np.testing.assert_array_equal(with_hints, plain)


def test_the_hint_page_requests_only_its_own_files(browser, server_url, hint_url):
    """Every request since the network log was last read (the hint tests') went to this
    module's servers."""
    urls = browser.requested_urls()
    assert any(u.startswith(hint_url) for u in urls)
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    assert [u for u in network if not u.startswith((hint_url, server_url))] == []
