// Copies the pinned TF.js files (package-lock.json) from node_modules into vendor/, which is
// committed and shipped in the Python package: the page then needs no npm and no CDN.
// Rebuild: cd web && npm ci && npm run vendor
"use strict";
const fs = require("fs");
const path = require("path");

const FILES = [
  ["@tensorflow/tfjs/dist/tf.es2017.min.js", "tf.min.js"],
  ["@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.es2017.min.js", "tf-backend-wasm.min.js"],
  // The single-threaded builds: the threaded one needs cross-origin isolation headers that a
  // plain static host does not send.
  ["@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm", "tfjs-backend-wasm.wasm"],
  ["@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-simd.wasm"],
];

const out = path.join(__dirname, "static", "vendor");
fs.mkdirSync(out, { recursive: true });
for (const [from, to] of FILES) {
  fs.copyFileSync(path.join(__dirname, "node_modules", from), path.join(out, to));
}
const versions = Object.fromEntries(["@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm"].map(
  (name) => [name, require(path.join(__dirname, "node_modules", name, "package.json")).version]));
fs.writeFileSync(path.join(out, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
