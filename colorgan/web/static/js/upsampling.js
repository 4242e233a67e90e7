// The model's view of a photo and the way its predicted ab comes back to full size, in TF.js
// ops: the port of colorgan/inference.py (render_hw, render_l) and colorgan/upsampling.py
// (bilinear; guided by the full-size L), tested against them (tests/test_web.py).
(function (root) {
  "use strict";
  const tf = root.tf;
  // colorgan/upsampling.py: box radius (low-resolution pixels) and regulariser of the guided mode.
  const GUIDED_RADIUS = 2;
  const GUIDED_EPS = 1e-3;

  /** Round half to even, as tf.round does. */
  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  /** The model-input size [h, w] for a photo of [H, W] (inference.render_hw): short side about
   * renderSize, aspect kept up to maxAspect, both sides multiples of `multiple`. */
  function renderHw(hw, renderSize, multiple, maxAspect) {
    const scale = Math.fround(renderSize / Math.min(hw[0], hw[1]));
    return hw.map((side) => {
      const scaled = Math.min(Math.fround(side * scale), maxAspect * renderSize);
      return Math.max(roundHalfEven(scaled / multiple) * multiple, multiple);
    });
  }

  /** [outSize, inSize] weights of TF's antialiased bilinear resize along one axis
   * (ScaleAndTranslate, triangle kernel widened by the downscale factor, spans renormalised). */
  function resizeWeights(inSize, outSize) {
    const invScale = inSize / outSize;
    const kernelScale = Math.max(invScale, 1);
    const w = new Float32Array(outSize * inSize);
    for (let x = 0; x < outSize; x++) {
      const sample = (x + 0.5) * invScale;
      const start = Math.min(Math.max(Math.ceil(sample - kernelScale - 0.5), 0), inSize - 1);
      const end = Math.min(Math.max(Math.floor(sample + kernelScale - 0.5), 0), inSize - 1) + 1;
      let total = 0;
      for (let s = start; s < end; s++) {
        const weight = Math.max(0, 1 - Math.abs((s + 0.5 - sample) / kernelScale));
        w[x * inSize + s] = weight;
        total += weight;
      }
      if (total > 0) for (let s = start; s < end; s++) w[x * inSize + s] /= total;
    }
    return tf.tensor2d(w, [outSize, inSize]);
  }

  /** Full-size model-space l [1, H, W, 1] -> the model's view [1, h, w, 1] (inference.render_l:
   * tf.image.resize with antialias), as two small matrix products. */
  function renderL(l, hw) {
    return tf.tidy(() => {
      const [, height, width] = l.shape;
      const rows = resizeWeights(height, hw[0]);
      const cols = resizeWeights(width, hw[1]);
      const small = tf.matMul(tf.matMul(rows, l.reshape([height, width])), cols, false, true);
      return small.reshape([1, hw[0], hw[1], 1]);
    });
  }

  /** Mean over (2r+1)^2 windows; at the borders over the pixels that exist (as upsampling._box). */
  function box(x, radius) {
    return tf.avgPool(x, 2 * radius + 1, 1, "same");
  }

  /** resize to [H, W]: bilinear with half-pixel centres (TF2's tf.image.resize, no antialias). */
  function bilinear(x, hw) {
    return tf.image.resizeBilinear(x, hw, false, true);
  }

  /** The fast guided filter (upsampling.guided_upsample): ab [1, h, w, 2] at lSmall's size ->
   * [1, H, W, 2] at lFull's, colour edges following the photo's own L. */
  function guidedUpsample(ab, lSmall, lFull) {
    return tf.tidy(() => {
      const meanL = box(lSmall, GUIDED_RADIUS);
      const meanAb = box(ab, GUIDED_RADIUS);
      const cov = box(lSmall.mul(ab), GUIDED_RADIUS).sub(meanL.mul(meanAb));
      const variance = box(lSmall.square(), GUIDED_RADIUS).sub(meanL.square());
      const a = cov.div(variance.add(GUIDED_EPS));
      const b = meanAb.sub(a.mul(meanL));
      const coeffs = bilinear(tf.concat([box(a, GUIDED_RADIUS), box(b, GUIDED_RADIUS)], -1),
        lFull.shape.slice(1, 3));
      const [ca, cb] = tf.split(coeffs, 2, -1);
      return tf.clipByValue(ca.mul(lFull).add(cb), -1, 1);
    });
  }

  /** ab at lSmall's size -> ab at lFull's size by `mode` ('bilinear' or 'guided'). */
  function upsampleAb(ab, lSmall, lFull, mode) {
    if (mode === "bilinear") return bilinear(ab, lFull.shape.slice(1, 3));
    if (mode === "guided") return guidedUpsample(ab, lSmall, lFull);
    throw new Error(`unknown upsample mode ${mode}; valid: bilinear, guided`);
  }

  root.colorgan = Object.assign(root.colorgan || {}, {
    upsampling: { renderHw, renderL, upsampleAb, resizeWeights },
  });
})(globalThis);
