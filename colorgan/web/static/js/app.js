// The page: pick a TF.js backend (WebGL on a GPU, else WASM, else CPU), load the model from ./model/,
// colourise each chosen or dropped photo in turn, show it with a before/after slider, a
// download link (once ready) and the time taken. Bad files get a message; the page goes on.
// A hint model's results also get the hint tools (js/hint_editor.js).
(function (root) {
  "use strict";
  const tf = root.tf;
  const { colorize, photo } = root.colorgan;
  const MODEL_URL = "model/";
  const BACKENDS = ["webgl", "wasm", "cpu"];
  const $ = (id) => document.getElementById(id);
  const state = { model: null, info: null, queue: [], busy: false, done: 0 };

  /** True when WebGL would run on the CPU (no GPU: Chromium's SwiftShader, Mesa's llvmpipe),
   * where WASM is several times faster (BENCHMARKS.md). */
  function softwareWebgl() {
    const gl = document.createElement("canvas").getContext("webgl");
    const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    return !gl || /swiftshader|llvmpipe|software/i.test(renderer);
  }

  /** The first backend that initialises (WebGL on a GPU, else WASM, else CPU); ?backend=NAME
   * puts NAME first (tests, benchmarks). */
  async function pickBackend() {
    tf.wasm.setWasmPaths(new URL("vendor/", document.baseURI).href);
    const wanted = new URLSearchParams(location.search).get("backend");
    const order = softwareWebgl() ? BACKENDS.filter((b) => b !== "webgl") : BACKENDS;
    for (const name of wanted ? [wanted, ...order] : order) {
      try {
        if (await tf.setBackend(name)) return name;
      } catch (e) { /* not available here: try the next */ }
    }
    throw new Error("no TF.js backend could start");
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
  }

  function card(name) {
    const node = $("result-template").content.firstElementChild.cloneNode(true);
    node.querySelector(".name").textContent = name;
    $("results").prepend(node);
    return node;
  }

  async function colourise(file, node) {
    const { color } = root.colorgan;
    const meta = node.querySelector(".meta");
    const t0 = performance.now();
    const { bitmap, width, height, note } = await photo.decodePhoto(file);
    const before = await photo.toCanvas(bitmap, width, height);
    bitmap.close();
    const rgb = tf.tidy(() => tf.browser.fromPixels(before).toFloat().div(255).expandDims(0));
    const view = colorize.prepare(state.info, rgb);
    const [rgbU8, grayU8] = tf.tidy(() => [
      color.toUint8(colorize.finish(state.model, state.info, view, [])).squeeze([0]),
      color.toUint8(color.grayRgb(rgb)).squeeze([0])]);
    rgb.dispose();
    const after = await photo.toCanvas(rgbU8, width, height);
    const gray = await photo.toCanvas(grayU8, width, height);  // "before": what the model sees
    tf.dispose([rgbU8, grayU8]);
    const link = document.createElement("a");
    link.className = "download";
    link.download = file.name.replace(/\.[^.]*$/, "") + "_colorized.png";
    link.textContent = "Download PNG";
    link.href = await resultUrl(after);
    const ms = performance.now() - t0;
    node.querySelector(".after").src = link.href;
    node.querySelector(".before").src = URL.createObjectURL(await photo.canvasPng(gray));
    node.querySelector(".compare").hidden = false;
    const slider = node.querySelector(".slider");
    const clip = () => {
      node.querySelector(".before").style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
    };
    slider.addEventListener("input", clip);
    if (state.info.hints) {
      showHintTools(node, after, view, link);
      slider.value = "0";  // the result in full view while placing hints
      clip();
    } else {
      tf.dispose([view.l, view.small]);
    }
    meta.textContent = `${width}×${height}, colourised in ${Math.round(ms)} ms on ${tf.getBackend()}` +
      (note ? `; ${note}` : "") + ". ";
    meta.append(link);
    node.dataset.ms = String(ms);
  }

  /** A blob: URL of the canvas as PNG with the provenance chunks; a hinted result's record
   * names its hints, as colorgan.colorize's does (`points`: the hints drawn, if any). */
  async function resultUrl(canvas, points) {
    const { provenance, provenance_text: text } = state.info;
    const { hints } = root.colorgan;
    const recordText = points && points.length ? hints.withHintsText(text, provenance,
      await hints.fingerprint(points)) : text;
    const png = new Uint8Array(await (await photo.canvasPng(canvas)).arrayBuffer());
    return URL.createObjectURL(photo.withProvenance(png, provenance, recordText));
  }

  /** A hint model's result: the canvas `after` replaces the card's image and is redrawn for
   * each change of the hints (the photo's `view` is kept for it); the download follows. */
  function showHintTools(node, after, view, link) {
    const { color, hints, hintEditor } = root.colorgan;
    after.className = "after";
    after.setAttribute("role", "img");
    after.setAttribute("aria-label", "colourised");
    node.querySelector("img.after").replaceWith(after);
    hintEditor.attach({
      node, canvas: after, width: after.width, height: after.height,
      hexToAb: hints.hexToAb,
      async recolour(points) {
        const t0 = performance.now();
        const rgbU8 = tf.tidy(() => color.toUint8(
          colorize.finish(state.model, state.info, view, points)).squeeze([0]));
        await tf.browser.toPixels(rgbU8, after);
        rgbU8.dispose();
        node.dataset.updateMs = String(performance.now() - t0);
      },
      async settled(points) {
        const old = link.href;
        link.href = await resultUrl(after, points);
        URL.revokeObjectURL(old);
      },
    });
  }

  async function drain() {
    if (state.busy || !state.model) return;
    state.busy = true;
    while (state.queue.length) {
      const file = state.queue.shift();
      const node = card(file.name);
      setStatus(`Colourising ${file.name}…`);
      try {
        await colourise(file, node);
        node.classList.add("done");
      } catch (e) {
        const message = e instanceof photo.PhotoError ? e.message : `could not colourise it (${e.message || e})`;
        node.querySelector(".meta").textContent = `${file.name}: ${message}`;
        node.querySelector(".meta").classList.add("error");
        node.classList.add("failed");
      }
      state.done += 1;
    }
    state.busy = false;
    setStatus(`Ready: ${state.done} photo${state.done === 1 ? "" : "s"} done. Choose or drop more.`);
  }

  function add(files) {
    state.queue.push(...files);
    if (!state.model) setStatus(`${state.queue.length} photo(s) waiting for the model to load…`);
    drain();
  }

  function wireInputs() {
    $("file").addEventListener("change", (e) => { add([...e.target.files]); e.target.value = ""; });
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      add([...e.dataTransfer.files]);
    });
  }

  async function start() {
    wireInputs();
    $("limits").textContent = `Photos over ${photo.MAX_PIXELS / 1e6} megapixels are scaled down ` +
      `to ${photo.MAX_PIXELS / 1e6} MP first (the browser's memory); over ` +
      `${photo.REFUSE_PIXELS / 1e6} MP they are refused.`;
    if (location.protocol === "file:") {
      setStatus("Browsers refuse to load a model from file://. Serve this folder instead: " +
        "python -m colorgan.web (or python -m http.server here), then open the http:// address.", true);
      return;
    }
    try {
      const backend = await pickBackend();
      const t0 = performance.now();
      const { model, info } = await colorize.loadModel(MODEL_URL);
      tf.tidy(() => colorize.colorizeRgb(model, info, tf.zeros([1, info.render_size, info.render_size, 3])));
      const ms = performance.now() - t0;
      Object.assign(state, { model, info });
      $("backend").textContent = `TF.js ${tf.version.tfjs} on ${backend}; model ${info.model_id} ` +
        `(${info.variant}, ${(info.parity.size_bytes / 1e6).toFixed(1)} MB) loaded in ${Math.round(ms)} ms.`;
      document.body.dataset.backend = backend;
      document.body.dataset.loadMs = String(ms);
      setStatus("Ready: choose or drop photos.");
      document.body.classList.add("ready");
      drain();
    } catch (e) {
      setStatus(`The model could not be loaded: ${e.message || e}`, true);
    }
  }

  start();
})(globalThis);
