"""Driving the page in headless Chromium (selenium + Debian's chromium-driver), for the tests
and benchmarks/web.py: start the browser, open the page, upload a photo, read the result back.
selenium is a test-only dependency; nothing else in colorgan imports this module.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable

# Chromium must not phone home: on a closed network its background connections are refused and
# slow it down; a fresh profile per run keeps runs independent.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1000,900")
TIMEOUT_S = 120


class Browser:
    """A headless Chromium with its performance (network) log on; use as a context manager."""

    def __init__(self):
        from selenium import webdriver  # pylint: disable=import-outside-toplevel
        from selenium.webdriver.chrome.service import Service  # pylint: disable=import-outside-toplevel

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        self.profile = tempfile.mkdtemp(prefix="colorgan-chromium-")
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")),
                                       options=options)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, url: str) -> float:
        """Loads the page and waits until its model is ready; returns the seconds that took."""
        t0 = time.perf_counter()
        self.driver.get(url)
        wait(lambda: "ready" in self.driver.find_element("tag name", "body").get_attribute("class"),
             lambda: f"the page to load its model ({self.driver.find_element('id', 'status').text})")
        return time.perf_counter() - t0

    def body_data(self, name: str) -> str:
        """A data-* attribute the page sets on <body> (backend, load-ms)."""
        return self.driver.find_element("tag name", "body").get_attribute(f"data-{name}")

    def upload(self, path: str):
        """Chooses `path` in the file input; returns the new (first) result card once it is
        done or failed."""
        cards = lambda: self.driver.find_elements("css selector", ".result")  # noqa: E731
        before = len(cards())
        self.driver.find_element("id", "file").send_keys(os.path.abspath(path))

        def finished():
            found = cards()
            if len(found) > before and {"done", "failed"} & set(found[0].get_attribute("class").split()):
                return found[0]
            return None
        return wait(finished, lambda: f"the result of {path}")

    def download(self, card) -> bytes:
        """The bytes behind the card's <a download> (a blob: URL), read inside the page."""
        href = card.find_element("css selector", "a.download").get_attribute("href")
        if not href.startswith("blob:"):
            raise AssertionError(f"download link is {href}, not a blob: URL")
        b64 = self.driver.execute_async_script(
            "const done = arguments[1]; fetch(arguments[0]).then((r) => r.arrayBuffer())"
            ".then((b) => { let s = ''; const u = new Uint8Array(b);"
            " for (let i = 0; i < u.length; i += 32768)"
            " s += String.fromCharCode(...u.subarray(i, i + 32768)); done(btoa(s)); });", href)
        return base64.b64decode(b64)

    def canvas_png(self, card) -> bytes:
        """A hint model's card: its result canvas as PNG bytes (the pixels shown, lossless)."""
        url = self.driver.execute_script(
            "return arguments[0].querySelector('canvas.after').toDataURL('image/png');", card)
        return base64.b64decode(url.split(",", 1)[1])

    def change_hints(self, card, action: Callable[[], Any]) -> dict:
        """Runs `action` (a click, drag, key or colour on a hint model's card) and waits until
        the card shows the result for the newest hints. Returns the page's own figures of the
        last re-colouring: update_ms (model run to canvas drawn) and latency_ms (from the first
        change it includes to the canvas drawn: the debounce delay and any run queued before)."""
        version = lambda: int(card.get_attribute("data-hint-version"))  # noqa: E731
        before = version()
        action()
        wait(lambda: version() > before and card.get_attribute("data-rendered-version") == str(
            version()), lambda: f"the re-colouring after a hint change "
                                f"({card.find_element('css selector', '.hint-status').text})")
        return {"update_ms": float(card.get_attribute("data-update-ms")),
                "latency_ms": float(card.get_attribute("data-hint-latency-ms"))}

    def requested_urls(self) -> list[str]:
        """Every URL the browser requested since the last call (its performance log)."""
        return [json.loads(entry["message"])["message"]["params"]["request"]["url"]
                for entry in self.driver.get_log("performance")
                if '"Network.requestWillBeSent"' in entry["message"]]


def wait(predicate: Callable[[], Any], what: Callable[[], str], timeout: float = TIMEOUT_S) -> Any:
    """Polls `predicate` until it returns something true; TimeoutError naming `what()` else."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what()}")
