// The full-resolution colourisation path in the browser, as colorgan/inference.py runs it: the
// photo's own L at full size, ab predicted at the render size, upsampled with the model's
// method, Lab -> sRGB. A hint model (sidecar "hints": true) takes the hints as two more inputs,
// zeros being its automatic mode. Also loads an exported TF.js model and its sidecar.
(function (root) {
  "use strict";
  const tf = root.tf;
  const SIDECAR = "colorgan_web.json";

  /** The exported model at `baseUrl` (a folder URL ending in '/'): {model, info} where info is
   * the export's sidecar (render size, multiple, upsampling, provenance text, parity, hints). */
  async function loadModel(baseUrl) {
    const response = await fetch(baseUrl + SIDECAR);
    if (!response.ok) throw new Error(`no model at ${baseUrl} (HTTP ${response.status})`);
    const info = await response.json();
    const model = await tf.loadGraphModel(baseUrl + "model.json");
    return { model, info };
  }

  /** sRGB [1, H, W, 3] in [0, 1] -> the photo as the model sees it (inference.View): {l: full-size
   * model-space L [1, H, W, 1], small: the model's view of it [1, h, w, 1]}. The caller keeps or
   * disposes the two tensors (a page re-colouring one photo keeps them). */
  function prepare(info, rgb) {
    const { color, upsampling } = root.colorgan;
    return tf.tidy(() => {
      const l = color.rgbToGrayL(rgb);
      const hw = upsampling.renderHw(l.shape.slice(1, 3), info.render_size, info.multiple,
        info.max_aspect);
      return { l, small: upsampling.renderL(l, hw) };
    });
  }

  /** A prepared view -> colourised sRGB [1, H, W, 3] in [0, 1]. `hints`: [{x, y, ab, radius}]
   * in the photo's pixels (colorgan.hints.hintMap) for a hint model; others ignore them. */
  function finish(model, info, view, hints) {
    const { color, upsampling } = root.colorgan;
    return tf.tidy(() => {
      const { l, small } = view;
      let ab;
      if (info.hints) {
        const map = root.colorgan.hints.hintMap(hints || [], l.shape.slice(1, 3),
          small.shape.slice(1, 3));
        const [hintAb, hintMask] = tf.split(map, [2, 1], -1);
        ab = model.execute({ l: small, hint_ab: hintAb, hint_mask: hintMask });
      } else {
        ab = model.execute({ l: small });
      }
      return color.modelToRgb(l, upsampling.upsampleAb(ab, small, l, info.color_upsample));
    });
  }

  /** sRGB [1, H, W, 3] float in [0, 1] -> colourised sRGB [1, H, W, 3] in [0, 1], guided by
   * `hints` (optional, as in `finish`). */
  function colorizeRgb(model, info, rgb, hints) {
    return tf.tidy(() => finish(model, info, prepare(info, rgb), hints));
  }

  root.colorgan = Object.assign(root.colorgan || {}, {
    colorize: { loadModel, prepare, finish, colorizeRgb },
  });
})(globalThis);
