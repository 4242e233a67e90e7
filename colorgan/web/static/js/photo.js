// Photos in and out of the page: decode upright (EXIF orientation) within a pixel budget, and
// encode the result as PNG carrying the provenance text every colorgan writer adds
// (colorgan/images.py: tEXt chunks `Software` and `colorgan`).
(function (root) {
  "use strict";
  // Photos above MAX_PIXELS are scaled down to it before colourising (a 768x512 photo needs
  // ~50 MB of tensors; 8 MP ~ 500 MB); above REFUSE_PIXELS the browser would have to decode
  // gigabytes before it could scale, so the page refuses them (the Python CLI takes them).
  const MAX_PIXELS = 8e6;
  const REFUSE_PIXELS = 100e6;
  const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

  class PhotoError extends Error {}

  /** [width, height] from a PNG or JPEG header (null for other formats or a short file). */
  function headerSize(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length >= 24 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
      return [view.getUint32(16), view.getUint32(20)];
    }
    if (bytes.length > 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
      for (let i = 2; i + 9 < bytes.length;) {
        if (bytes[i] !== 0xff) return null;
        const marker = bytes[i + 1];
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          return [view.getUint16(i + 7), view.getUint16(i + 5)];  // SOFn: height, then width
        }
        i += 2 + view.getUint16(i + 2);
      }
    }
    return null;
  }

  /** A File -> {bitmap (upright, at most MAX_PIXELS), width, height, note}. Throws PhotoError
   * with a message for the page when the file is not an image this browser decodes, or too big. */
  async function decodePhoto(file) {
    const head = new Uint8Array(await file.slice(0, 1 << 16).arrayBuffer());
    const claimed = headerSize(head);
    if (claimed && claimed[0] * claimed[1] > REFUSE_PIXELS) {
      throw new PhotoError(`${claimed[0]}×${claimed[1]} is ${Math.round(claimed[0] * claimed[1] / 1e6)} MP, ` +
        `more than this page takes (${REFUSE_PIXELS / 1e6} MP); use python -m colorgan.colorize`);
    }
    const options = { imageOrientation: "from-image" };
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, options);
    } catch (e) {
      throw new PhotoError(`not an image this browser can read (unsupported format, or a ` +
        `truncated or damaged file: ${e.name})`);
    }
    const { width, height } = bitmap;
    if (width * height <= MAX_PIXELS) return { bitmap, width, height, note: "" };
    const scale = Math.sqrt(MAX_PIXELS / (width * height));
    const size = { resizeWidth: Math.max(1, Math.floor(width * scale)),
      resizeHeight: Math.max(1, Math.floor(height * scale)), resizeQuality: "high" };
    bitmap.close();
    const small = await createImageBitmap(file, { ...options, ...size });
    return { bitmap: small, width: size.resizeWidth, height: size.resizeHeight,
      note: `scaled down from ${width}×${height} (over ${MAX_PIXELS / 1e6} MP)` };
  }

  let crcTable = null;
  function crc32(bytes) {
    if (!crcTable) {
      crcTable = new Uint32Array(256);
      for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        crcTable[n] = c >>> 0;
      }
    }
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  /** A PNG tEXt chunk (keyword NUL text, Latin-1; our text is ASCII JSON). */
  function textChunk(keyword, text) {
    const body = new TextEncoder().encode(`tEXt${keyword}\0${text}`);
    const chunk = new Uint8Array(body.length + 8);
    const view = new DataView(chunk.buffer);
    view.setUint32(0, body.length - 4);
    chunk.set(body, 4);
    view.setUint32(body.length + 4, crc32(body));
    return chunk;
  }

  /** PNG bytes -> the same PNG with the provenance record's tEXt chunks after IHDR. */
  function withProvenance(png, record, recordText) {
    const ihdrEnd = 8 + 8 + 13 + 4;
    return new Blob([png.slice(0, ihdrEnd), textChunk("Software", record.software),
      textChunk("colorgan", recordText), png.slice(ihdrEnd)], { type: "image/png" });
  }

  /** A canvas holding `source` (an ImageBitmap or int32 [H, W, 3] tensor). */
  async function toCanvas(source, width, height) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    if (source instanceof root.tf.Tensor) await root.tf.browser.toPixels(source, canvas);
    else canvas.getContext("2d").drawImage(source, 0, 0);
    return canvas;
  }

  function canvasPng(canvas) {
    return new Promise((resolve, reject) => canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("PNG encoding failed"))), "image/png"));
  }

  root.colorgan = Object.assign(root.colorgan || {}, {
    photo: { MAX_PIXELS, REFUSE_PIXELS, PhotoError, headerSize, decodePhoto, withProvenance,
      toCanvas, canvasPng },
  });
})(globalThis);
