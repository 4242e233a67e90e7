// sRGB <-> CIE L*a*b* (D65) and the model-space scaling, in TF.js ops: the port of
// colorgan/color.py (same constants, same clipping), tested against it (tests/test_web.py).
(function (root) {
  "use strict";
  const tf = root.tf;
  // scikit-image's sRGB -> XYZ matrix and its exact inverse (colorgan/color.py).
  const XYZ_FROM_RGB = [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227]];
  const RGB_FROM_XYZ = [[3.24048134, -1.53715152, -0.49853633], [-0.96925495, 1.87599, 0.04155593],
    [0.05564664, -0.20404134, 1.05731107]];
  const D65_WHITE = [0.95047, 1.0, 1.08883];
  const SRGB = { linearIn: 0.04045, linearOut: 0.0031308, a: 0.055, gamma: 2.4, slope: 12.92 };
  const LAB = { lMul: 116.0, lOffset: 16.0, aMul: 500.0, bMul: 200.0, epsilon: 0.008856,
    kappa: 7.787, delta: 0.2068966 };
  const L_SCALE = 50.0;
  const AB_SCALE = 110.0;

  /** Applies a 3x3 matrix to the last axis (element-wise, as color.py does). */
  function mix(channels, matrix) {
    const [c0, c1, c2] = tf.unstack(channels, -1);
    return tf.stack(matrix.map((m) => c0.mul(m[0]).add(c1.mul(m[1])).add(c2.mul(m[2]))), -1);
  }

  /** sRGB [..., 3] in [0, 1] -> Lab [..., 3]: L in [0, 100], a and b in about [-110, 110]. */
  function rgbToLab(rgb) {
    return tf.tidy(() => {
      const c = tf.clipByValue(rgb, 0, 1);
      const linear = tf.where(c.greater(SRGB.linearIn),
        tf.pow(tf.maximum(c, SRGB.linearIn).add(SRGB.a).div(1 + SRGB.a), SRGB.gamma),
        c.div(SRGB.slope));
      const xyz = mix(linear, XYZ_FROM_RGB).div(tf.tensor1d(D65_WHITE));
      const f = tf.where(xyz.greater(LAB.epsilon), tf.pow(tf.maximum(xyz, LAB.epsilon), 1 / 3),
        xyz.mul(LAB.kappa).add(LAB.lOffset / LAB.lMul));
      const [fx, fy, fz] = tf.unstack(f, -1);
      return tf.stack([fy.mul(LAB.lMul).sub(LAB.lOffset), fx.sub(fy).mul(LAB.aMul),
        fy.sub(fz).mul(LAB.bMul)], -1);
    });
  }

  /** Lab [..., 3] -> sRGB [..., 3] in [0, 1], out-of-gamut colours clipped (as color.py). */
  function labToRgb(lab) {
    return tf.tidy(() => {
      const [l, a, b] = tf.unstack(lab, -1);
      const fy = l.add(LAB.lOffset).div(LAB.lMul);
      const fx = a.div(LAB.aMul).add(fy);
      const fz = tf.maximum(fy.sub(b.div(LAB.bMul)), 0);
      const f = tf.stack([fx, fy, fz], -1);
      const xyz = tf.where(f.greater(LAB.delta), tf.pow(f, 3),
        f.sub(LAB.lOffset / LAB.lMul).div(LAB.kappa));
      const linear = mix(xyz.mul(tf.tensor1d(D65_WHITE)), RGB_FROM_XYZ);
      const rgb = tf.where(linear.greater(SRGB.linearOut),
        tf.pow(tf.maximum(linear, SRGB.linearOut), 1 / SRGB.gamma).mul(1 + SRGB.a).sub(SRGB.a),
        linear.mul(SRGB.slope));
      return tf.clipByValue(rgb, 0, 1);
    });
  }

  /** sRGB [N, H, W, 3] -> the model input: L in model space, [N, H, W, 1] = L / 50 - 1. */
  function rgbToGrayL(rgb) {
    return tf.tidy(() => rgbToLab(rgb).slice([0, 0, 0, 0], [-1, -1, -1, 1]).div(L_SCALE).sub(1));
  }

  /** Model-space l [..., 1] and ab [..., 2] -> sRGB [..., 3] in [0, 1]. */
  function modelToRgb(l, ab) {
    return tf.tidy(() => labToRgb(tf.concat([l.add(1).mul(L_SCALE), ab.mul(AB_SCALE)], -1)));
  }

  /** sRGB [N, H, W, 3] -> the same image with its colour removed (color.gray_rgb). */
  function grayRgb(rgb) {
    return tf.tidy(() => {
      const l = rgbToGrayL(rgb);
      return modelToRgb(l, tf.zerosLike(l).tile([1, 1, 1, 2]));
    });
  }

  /** sRGB in [0, 1] -> integer levels 0..255, rounded to nearest (color.to_uint8). */
  function toUint8(rgb) {
    return tf.tidy(() => tf.round(tf.clipByValue(rgb, 0, 1).mul(255)).toInt());
  }

  root.colorgan = Object.assign(root.colorgan || {}, {
    color: { rgbToLab, labToRgb, rgbToGrayL, grayRgb, modelToRgb, toUint8, L_SCALE, AB_SCALE },
  });
})(globalThis);
