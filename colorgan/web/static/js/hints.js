// Colour hints for a hint model (issue 18), in the browser: the port of colorgan/user_hints.py
// (hint_map: where a hint in photo pixels lands in the model's view; hex_to_ab; fingerprint)
// and of colorgan/hints.py's paint_colours, tested against them (tests/test_web.py).
(function (root) {
  "use strict";
  const tf = root.tf;
  const CHANNELS = 3;  // a*, b*, mask (hints.HINT_CHANNELS)
  const FINGERPRINT_HEX = 16;  // hex digits of the hints' hash in a provenance record

  /** '#rrggbb' sRGB -> its [a*, b*] in Lab units (user_hints.hex_to_ab). */
  function hexToAb(hex) {
    const match = /^#([0-9a-fA-F]{6})$/.exec(hex);
    if (!match) throw new Error(`colour ${hex} is not #rrggbb`);
    const value = parseInt(match[1], 16);
    const rgb = [value >> 16, value >> 8, value].map((c) => (c & 255) / 255);
    const lab = tf.tidy(() => root.colorgan.color.rgbToLab(tf.tensor([[[rgb]]])).dataSync());
    return [lab[1], lab[2]];
  }

  /** The model's hint map [1, h, w, 3] at renderHw [h, w] for `points` on a photo of fullHw
   * [H, W] (user_hints.hint_map): each point {x, y (photo pixels), ab: [a, b] (Lab units),
   * radius (photo pixels, default 0)} paints a square of its colour centred on the render cell
   * holding its pixel's centre, 2 * round(radius * scale) + 1 cells wide (halves up);
   * overlaps average; the mask is 1 on any square. No points: all zeros. */
  function hintMap(points, fullHw, renderHw) {
    const { AB_SCALE } = root.colorgan.color;
    const [h, w] = renderHw;
    const scale = [h / fullHw[0], w / fullHw[1]];  // float64, as user_hints
    const cover = new Float32Array(h * w);
    const sums = new Float32Array(h * w * 2);
    for (const p of points) {
      // Photo pixel (x, y) covers [x, x + 1): the cell holding its centre, clipped.
      const [row, col] = [p.y, p.x].map((v, i) =>
        Math.min(Math.max(Math.floor((v + 0.5) * scale[i]), 0), renderHw[i] - 1));
      const half = Math.floor((p.radius || 0) * Math.min(...scale) + 0.5);
      const colour = p.ab.map((v) => Math.fround(Math.fround(v) / AB_SCALE));
      for (let i = Math.max(row - half, 0); i <= Math.min(row + half, h - 1); i++) {
        for (let j = Math.max(col - half, 0); j <= Math.min(col + half, w - 1); j++) {
          const k = i * w + j;
          cover[k] += 1;
          sums[2 * k] = Math.fround(sums[2 * k] + colour[0]);
          sums[2 * k + 1] = Math.fround(sums[2 * k + 1] + colour[1]);
        }
      }
    }
    const map = new Float32Array(h * w * CHANNELS);
    cover.forEach((n, k) => {
      if (n > 0) map.set([sums[2 * k] / n, sums[2 * k + 1] / n, 1], k * CHANNELS);
    });
    return tf.tensor4d(map, [1, h, w, CHANNELS]);
  }

  /** A number as Python's json.dumps writes a float (repr): 120 -> "120.0", 1e-05, 1e+16. */
  function pythonFloat(v) {
    if (Object.is(v, -0)) return "-0.0";
    const abs = Math.abs(v);
    if (Number.isInteger(v) && abs < 1e16) return v.toFixed(1);
    if (abs >= 1e-4 && abs < 1e16) return String(v);  // positional in both languages
    const [mantissa, exponent] = v.toExponential().split("e");
    const e = Number(exponent);
    return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }

  /** What a hinted output's provenance record says of its hints (user_hints.fingerprint):
   * {points: n, sha256: the first 16 hex digits of the hash of the points as Python's json
   * of [[x, y, [a, b], radius], ...]}. A promise (WebCrypto, which browsers offer on https and
   * localhost pages); without WebCrypto, the count only. */
  async function fingerprint(points) {
    const f = pythonFloat;
    const text = `[${points.map((p) => `[${f(p.x)}, ${f(p.y)}, [${f(p.ab[0])}, ${f(p.ab[1])}], ` +
      `${f(p.radius || 0)}]`).join(", ")}]`;
    const subtle = root.crypto && root.crypto.subtle;
    if (!subtle) return { points: points.length };
    const digest = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(text)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return { points: points.length, sha256: hex.slice(0, FINGERPRINT_HEX) };
  }

  /** The provenance text (the sidecar's: Python's json.dumps(record, sort_keys=True)) with
   * `"hints": value` added in its sorted place, as colorgan.colorize writes a hinted output's. */
  function withHintsText(recordText, record, value) {
    const entry = `"hints": {"points": ${value.points}` +
      (value.sha256 ? `, "sha256": "${value.sha256}"` : "") + "}";
    const next = Object.keys(record).sort().find((key) => key > "hints");
    if (next === undefined) return `${recordText.slice(0, -1)}, ${entry}}`;
    const at = recordText.indexOf(`"${next}": `);  // a key: quotes inside values are escaped
    return `${recordText.slice(0, at)}${entry}, ${recordText.slice(at)}`;
  }

  root.colorgan = Object.assign(root.colorgan || {}, {
    hints: { hexToAb, hintMap, fingerprint, withHintsText },
  });
})(globalThis);
