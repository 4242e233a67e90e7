// The hint tools on a hint model's result (issue 18): click the photo to place a colour hint
// (the picker starts at the model's current colour there), drag a marker or use the arrow keys
// to move it, its × or the Delete key removes it. Every change re-colours the photo: changes
// within DEBOUNCE_MS are taken together, one re-colouring runs at a time, and the newest hints
// are always the last drawn. Knows nothing of TF.js: the page passes `recolour`.
(function (root) {
  "use strict";
  const DEBOUNCE_MS = 60;  // a drag sends ~60 moves/s; a re-colouring takes far longer
  const ARROW_STEP = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1],
    ArrowDown: [0, 1] };
  const SHIFT_STEP = 10;  // photo pixels per arrow press with Shift

  const hex2 = (v) => v.toString(16).padStart(2, "0");

  /** Adds the tools to a result card. `canvas`: the result (width x height photo pixels, inside
   * the card's .compare); `recolour(points)`: redraws it for [{x, y, ab, radius}] (a promise);
   * `settled(points)`: called once the drawn result is the newest (the page refreshes its
   * download); `hexToAb`: '#rrggbb' -> [a, b]. Returns the tools' state. The card's data-*
   * attributes hint-version (changes made) and rendered-version (changes drawn) tell tests and
   * benchmarks when a change is shown; hint-latency-ms how long that took. */
  function attach({ node, canvas, width, height, hexToAb, recolour, settled }) {
    const $ = (selector) => node.querySelector(selector);
    const tools = document.getElementById("hint-tools-template").content.firstElementChild
      .cloneNode(true);
    const layer = document.createElement("div");
    layer.className = "hint-layer";
    $(".compare").insertBefore(layer, $(".slider"));
    $(".compare").after(tools);
    const picker = tools.querySelector(".hint-colour");
    const status = tools.querySelector(".hint-status");
    const state = { hints: [], selected: null, version: 0, rendered: 0, running: false,
      changedAt: 0, timer: 0 };

    /** The photo pixel under a pointer event, clamped to the photo. */
    function pixelAt(event) {
      const rect = layer.getBoundingClientRect();
      const clamp = (v, size) => Math.min(Math.max(Math.floor(v * size), 0), size - 1);
      return [clamp((event.clientX - rect.left) / rect.width, width),
        clamp((event.clientY - rect.top) / rect.height, height)];
    }

    /** The result's current colour at photo pixel (x, y), as '#rrggbb'. */
    function colourAt(x, y) {
      const [r, g, b] = canvas.getContext("2d").getImageData(x, y, 1, 1).data;
      return `#${hex2(r)}${hex2(g)}${hex2(b)}`;
    }

    function describe(hint) {
      const where = `hint at ${hint.x}, ${hint.y} (${hint.hex})`;
      hint.handle.setAttribute("aria-label", `${where}: drag or use the arrow keys to move, ` +
        "Delete to remove");
      hint.deleteButton.setAttribute("aria-label", `delete the ${where}`);
      hint.handle.style.background = hint.hex;
      Object.assign(hint.marker.dataset, { x: String(hint.x), y: String(hint.y), hex: hint.hex });
      hint.marker.style.left = `${(100 * (hint.x + 0.5)) / width}%`;
      hint.marker.style.top = `${(100 * (hint.y + 0.5)) / height}%`;
    }

    const points = () => state.hints.map(({ x, y, ab, radius }) => ({ x, y, ab, radius }));
    const count = () => `${state.hints.length} hint${state.hints.length === 1 ? "" : "s"}`;

    function changed() {
      if (state.rendered === state.version) state.changedAt = performance.now();
      state.version += 1;
      node.dataset.hintVersion = String(state.version);
      status.textContent = `${count()}; re-colouring…`;
      tools.querySelector(".hint-clear").disabled = state.hints.length === 0;
      if (!state.timer) {
        state.timer = setTimeout(() => { state.timer = 0; run(); }, DEBOUNCE_MS);
      }
    }

    /** Re-colours until the drawn result is the newest hints' (one run at a time). */
    async function run() {
      if (state.running) return;  // the loop below takes the newest hints when it is done
      state.running = true;
      let failed = false;
      try {
        status.classList.remove("error");
        while (state.rendered !== state.version) {
          const version = state.version;
          await recolour(points());
          state.rendered = version;
        }
        const ms = performance.now() - state.changedAt;
        node.dataset.hintLatencyMs = String(ms);
        status.textContent = `${count()}; re-coloured in ${Math.round(ms)} ms.`;
        await settled(points());
      } catch (e) {
        failed = true;
        status.textContent = `Could not re-colour: ${e.message || e}`;
        status.classList.add("error");
      } finally {
        state.running = false;
        node.dataset.renderedVersion = String(state.rendered);
      }
      if (!failed && state.rendered !== state.version) run();  // changed during settled()
    }

    function select(hint) {
      state.selected = hint;
      for (const h of state.hints) h.marker.classList.toggle("selected", h === hint);
      picker.disabled = !hint;
      if (hint) picker.value = hint.hex;
    }

    function add(x, y) {
      const marker = document.getElementById("hint-marker-template").content.firstElementChild
        .cloneNode(true);
      const hint = { x, y, hex: colourAt(x, y), radius: 0, marker,
        handle: marker.querySelector(".hint-handle"),
        deleteButton: marker.querySelector(".hint-delete") };
      hint.ab = hexToAb(hint.hex);
      wireMarker(hint);
      describe(hint);
      layer.append(marker);
      state.hints.push(hint);
      select(hint);
      hint.handle.focus();
      changed();
    }

    function move(hint, x, y) {
      x = Math.min(Math.max(x, 0), width - 1);
      y = Math.min(Math.max(y, 0), height - 1);
      if (x === hint.x && y === hint.y) return;
      Object.assign(hint, { x, y });
      describe(hint);
      changed();
    }

    function remove(hint) {
      hint.marker.remove();
      state.hints = state.hints.filter((h) => h !== hint);
      if (state.selected === hint) select(state.hints[state.hints.length - 1] || null);
      if (state.selected) state.selected.handle.focus();
      changed();
    }

    function wireMarker(hint) {
      const { handle } = hint;
      handle.addEventListener("pointerdown", (e) => {
        e.preventDefault();  // no text selection or image drag; focus follows below
        handle.setPointerCapture(e.pointerId);
        select(hint);
        handle.focus();
      });
      handle.addEventListener("pointermove", (e) => {
        if (handle.hasPointerCapture(e.pointerId)) move(hint, ...pixelAt(e));
      });
      handle.addEventListener("click", () => select(hint));
      handle.addEventListener("keydown", (e) => {
        if (e.key === "Delete" || e.key === "Backspace") {
          e.preventDefault();
          remove(hint);
        } else if (ARROW_STEP[e.key]) {
          e.preventDefault();
          const step = e.shiftKey ? SHIFT_STEP : 1;
          move(hint, hint.x + step * ARROW_STEP[e.key][0], hint.y + step * ARROW_STEP[e.key][1]);
        }
      });
      hint.deleteButton.addEventListener("click", () => remove(hint));
    }

    layer.addEventListener("click", (e) => {
      if (e.target === layer) add(...pixelAt(e));
    });
    picker.addEventListener("input", () => {
      const hint = state.selected;
      if (!hint || hint.hex === picker.value) return;
      hint.hex = picker.value;
      hint.ab = hexToAb(hint.hex);
      describe(hint);
      changed();
    });
    tools.querySelector(".hint-add").addEventListener("click", () => {
      add(Math.floor(width / 2), Math.floor(height / 2));
    });
    tools.querySelector(".hint-clear").addEventListener("click", () => {
      for (const hint of [...state.hints]) hint.marker.remove();
      state.hints = [];
      select(null);
      changed();
    });
    node.dataset.hintVersion = node.dataset.renderedVersion = "0";
    return state;
  }

  root.colorgan = Object.assign(root.colorgan || {}, { hintEditor: { attach, DEBOUNCE_MS } });
})(globalThis);
