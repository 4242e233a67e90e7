// The full-resolution colourisation path in the browser, as colorgan/inference.py runs it: the
// photo's own L at full size, ab predicted at the render size, upsampled with the model's
// method, Lab -> sRGB. Also loads an exported TF.js model and its sidecar (colorgan.export).
(function (root) {
  "use strict";
  const tf = root.tf;
  const SIDECAR = "colorgan_web.json";

  /** The exported model at `baseUrl` (a folder URL ending in '/'): {model, info} where info is
   * the export's sidecar (render size, multiple, upsampling, provenance text, parity). */
  async function loadModel(baseUrl) {
    const response = await fetch(baseUrl + SIDECAR);
    if (!response.ok) throw new Error(`no model at ${baseUrl} (HTTP ${response.status})`);
    const info = await response.json();
    const model = await tf.loadGraphModel(baseUrl + "model.json");
    return { model, info };
  }

  /** sRGB [1, H, W, 3] float in [0, 1] -> colourised sRGB [1, H, W, 3] in [0, 1]. */
  function colorizeRgb(model, info, rgb) {
    const { color, upsampling } = root.colorgan;
    return tf.tidy(() => {
      const l = color.rgbToGrayL(rgb);
      const hw = upsampling.renderHw(l.shape.slice(1, 3), info.render_size, info.multiple,
        info.max_aspect);
      const small = upsampling.renderL(l, hw);
      const ab = model.execute({ l: small });
      return color.modelToRgb(l, upsampling.upsampleAb(ab, small, l, info.color_upsample));
    });
  }

  root.colorgan = Object.assign(root.colorgan || {}, { colorize: { loadModel, colorizeRgb } });
})(globalThis);
