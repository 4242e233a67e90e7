// Runs colorgan's browser code in Node on arrays, for the export's parity check and the tests
// (colorgan/tfjs.py run_node): the vendored TF.js (CPU backend: float32, the reference
// arithmetic; no npm install needed) plus static/js/*.js, loaded as a browser loads them.
//   node node_harness.js REQUEST.json   ->  one JSON line on stdout
// REQUEST: {"op": "model", "model_dir": D, "inputs": [{"l": {"file": F, "shape": S}, ...}],
//           "output": F}  (one feed per run: l, and a hint model's hint_ab and hint_mask)
//      or  {"op": "call", "fn": "upsampling.renderL", "args": [{"file": F, "shape": S} | value],
//           "output": F}
// Arrays are raw little-endian float32 files; the output is written the same way (a tensor or
// an array of numbers; any other result is the JSON line's "value").
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const STATIC = path.join(__dirname, "static");
const SCRIPTS = ["vendor/tf.min.js", "js/color.js", "js/upsampling.js", "js/hints.js",
  "js/colorize.js"];

/** Evaluates a browser script in this realm's global scope (UMD bundles then see no CommonJS
 * `exports` and attach to globalThis, as in a page). */
function loadScript(relative) {
  const file = path.join(STATIC, relative);
  const wrapped = `(function (require, __dirname, __filename) {${fs.readFileSync(file, "utf8")}\n})`;
  vm.runInThisContext(wrapped, { filename: file }).call(globalThis, require, path.dirname(file), file);
}

function readArray(spec) {
  const buf = fs.readFileSync(spec.file);
  const values = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return globalThis.tf.tensor(Float32Array.from(values), spec.shape);
}

async function writeArray(tensor, file) {
  fs.writeFileSync(file, Buffer.from((await tensor.data()).buffer));
  return tensor.shape;
}

/** A TF.js graph model from a folder (model.json + shards), read with fs instead of fetch. */
async function loadModelDir(dir) {
  const tf = globalThis.tf;
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const specs = [];
  const shards = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const weights = Buffer.concat(shards);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs, format: json.format,
    generatedBy: json.generatedBy, convertedBy: json.convertedBy, signature: json.signature,
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
  }));
}

async function runModel(request) {
  const tf = globalThis.tf;
  const model = await loadModelDir(request.model_dir);
  const outputs = [];
  const ms = [];
  for (const spec of request.inputs) {
    const feeds = Object.fromEntries(Object.entries(spec).map(([name, a]) => [name, readArray(a)]));
    const t0 = performance.now();
    const ab = model.execute(feeds);
    await ab.data();
    ms.push(performance.now() - t0);
    outputs.push(ab);
  }
  return { shape: await writeArray(tf.concat(outputs, 0), request.output), latency_ms: ms };
}

async function callFunction(request) {
  const [namespace, name] = request.fn.split(".");
  const fn = globalThis.colorgan[namespace][name];
  const args = request.args.map((a) => (a !== null && typeof a === "object" && a.file ? readArray(a) : a));
  const result = await fn(...args);
  if (result instanceof globalThis.tf.Tensor) {
    return { shape: await writeArray(result, request.output) };
  }
  if (Array.isArray(result) && result.every((v) => typeof v === "number")) {
    fs.writeFileSync(request.output, Buffer.from(Float32Array.from(result).buffer));
    return { shape: [result.length] };
  }
  fs.writeFileSync(request.output, "");  // anything else (strings, objects) comes back as JSON
  return { shape: [0], value: result };
}

(async () => {
  const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const warn = console.warn;
  console.warn = () => {};  // TF.js's "install tfjs-node" banner and platform notes
  SCRIPTS.forEach(loadScript);
  console.warn = warn;
  await globalThis.tf.setBackend("cpu");
  const result = request.op === "model" ? await runModel(request) : await callFunction(request);
  process.stdout.write(JSON.stringify({ ...result, backend: globalThis.tf.getBackend(),
    tfjs: globalThis.tf.version.tfjs }) + "\n");
})().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
