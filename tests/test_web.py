"""colorgan.web and the browser page: the JS ports (sRGB <-> Lab, the render size, the antialiased
L resize, ab upsampling) against the Python definitions, run in Node; and the page itself in
headless Chromium (selenium + chromium-driver from Debian), served by `python -m colorgan.web`
with the tiny model exported to TF.js: a photo's result against `python -m colorgan.colorize`,
EXIF orientation, bad files, the network log. One server, browser and page per module."""

from __future__ import annotations

import io
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

from colorgan import color, colorize, config, images, inference, tfjs, upsampling
from colorgan import web
from colorgan.web.browser import Browser
from conftest import run_main, smooth_color_image

# float32 TF.js (CPU backend) against float32 TF: pow and cube root in other libraries, on Lab
# values of order 100 (measured max 2e-5 Lab units) and on [0, 1] sRGB (measured 3e-7).
LAB_ATOL = 1e-3
RGB_ATOL = 1e-5
# Resizes and the guided filter: sums of a few float32 products of values of order 1.
UPSAMPLE_ATOL = 1e-5
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
        assert len(browser.driver.find_elements("css selector", ".result.done")) == 2, card.text
        # This module's requests so far went to its two servers only (the log is drained here).
        assert all(u.startswith((url, server_url)) for u in browser.requested_urls()
                   if u.startswith("http"))
    finally:
        server.shutdown()


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
