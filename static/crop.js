// A crop box on the upload preview: search one garment of a photo that shows several.
// Pointer: drag the box to move it, a corner to resize. Keyboard (the box is focusable): arrow keys
// move it, Shift + arrow keys resize it. The box goes to the server as "x,y,w,h" in fractions of the
// picture (the hidden "box" field), and the server crops after decoding; empty means the whole photo.
(function () {
  "use strict";
  const frame = document.querySelector("[data-crop-frame]");
  if (!frame) return;
  const box = frame.querySelector("[data-crop-box]");
  const field = document.querySelector("[data-box]");
  const state = document.querySelector("[data-crop-state]");
  const reset = document.querySelector("[data-crop-reset]");
  const MIN = 0.1;   // the smallest box, as a fraction of each side (the server takes 0.05)
  const STEP = 0.02; // one arrow key press
  let rect = {x: 0, y: 0, w: 1, h: 1};

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function pct(v) { return Math.round(v * 100) + "%"; }
  function whole() { return rect.x < 0.001 && rect.y < 0.001 && rect.w > 0.999 && rect.h > 0.999; }

  function draw(announce) {
    box.style.left = rect.x * 100 + "%";
    box.style.top = rect.y * 100 + "%";
    box.style.width = rect.w * 100 + "%";
    box.style.height = rect.h * 100 + "%";
    field.value = whole() ? "" : [rect.x, rect.y, rect.w, rect.h].map(function (v) { return v.toFixed(4); }).join(",");
    reset.hidden = whole();
    frame.classList.toggle("cropped", !whole());
    if (announce) {
      state.textContent = whole() ? "The whole photo is searched." :
        "Searching a part " + pct(rect.w) + " wide and " + pct(rect.h) + " tall, " + pct(rect.x) +
        " from the left and " + pct(rect.y) + " from the top.";
    }
  }

  function set(next, announce) {
    const w = clamp(next.w, MIN, 1), h = clamp(next.h, MIN, 1);
    rect = {x: clamp(next.x, 0, 1 - w), y: clamp(next.y, 0, 1 - h), w: w, h: h};
    draw(announce);
  }

  // A new photo: the box covers all of it again.
  document.addEventListener("fashion16:preview", function () { set({x: 0, y: 0, w: 1, h: 1}, false); });
  reset.addEventListener("click", function () { set({x: 0, y: 0, w: 1, h: 1}, true); box.focus(); });

  box.addEventListener("keydown", function (event) {
    const moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    const d = moves[event.key];
    if (!d) return;
    event.preventDefault();
    if (event.shiftKey) {  // resize from the bottom-right corner
      set({x: rect.x, y: rect.y, w: rect.w + d[0] * STEP, h: rect.h + d[1] * STEP}, true);
    } else {
      set({x: rect.x + d[0] * STEP, y: rect.y + d[1] * STEP, w: rect.w, h: rect.h}, true);
    }
  });

  let drag = null;
  box.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    event.preventDefault();
    box.setPointerCapture(event.pointerId);
    const bounds = frame.getBoundingClientRect();
    drag = {handle: event.target.dataset.handle || "move", start: rect, px: event.clientX, py: event.clientY,
            width: bounds.width, height: bounds.height};
  });
  box.addEventListener("pointermove", function (event) {
    if (!drag) return;
    const dx = (event.clientX - drag.px) / drag.width, dy = (event.clientY - drag.py) / drag.height;
    const s = drag.start;
    if (drag.handle === "move") {
      set({x: s.x + dx, y: s.y + dy, w: s.w, h: s.h}, false);
      return;
    }
    // A corner moves; the opposite one stays where it was.
    let left = s.x, top = s.y, right = s.x + s.w, bottom = s.y + s.h;
    if (drag.handle.indexOf("w") >= 0) left = clamp(left + dx, 0, right - MIN);
    if (drag.handle.indexOf("e") >= 0) right = clamp(right + dx, left + MIN, 1);
    if (drag.handle.indexOf("n") >= 0) top = clamp(top + dy, 0, bottom - MIN);
    if (drag.handle.indexOf("s") >= 0) bottom = clamp(bottom + dy, top + MIN, 1);
    set({x: left, y: top, w: right - left, h: bottom - top}, false);
  });
  function end() {
    if (!drag) return;
    drag = null;
    draw(true);
  }
  box.addEventListener("pointerup", end);
  box.addEventListener("pointercancel", end);
  draw(false);
})();
