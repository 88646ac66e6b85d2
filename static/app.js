// Progressive enhancement of the upload form: drag-and-drop, a preview, a busy button.
// Without this script the form is a plain multipart post and works the same.
(function () {
  "use strict";
  document.documentElement.classList.add("has-js");

  const input = document.querySelector("[data-upload]");
  if (!input) return;
  const zone = input.closest("[data-dropzone]");
  const figure = document.querySelector("[data-preview]");
  const image = document.querySelector("[data-preview-image]");
  const caption = document.querySelector("[data-preview-name]");
  let objectUrl = null;

  function showPreview(file) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    if (!file) {
      figure.hidden = true;
      return;
    }
    caption.textContent = file.name;
    image.hidden = !file.type.startsWith("image/");
    if (!image.hidden) {
      objectUrl = URL.createObjectURL(file);
      image.src = objectUrl;
    }
    figure.hidden = false;
  }

  // Tiny images (Fashion-MNIST is 28x28) are upscaled with crisp pixels, as on the results page.
  image.addEventListener("load", function () {
    image.classList.toggle("pixelated", Math.max(image.naturalWidth, image.naturalHeight) < 96);
  });
  input.addEventListener("change", function () { showPreview(input.files[0]); });

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) return;
    input.files = files;
    showPreview(files[0]);
  });

  const button = input.form.querySelector("[data-submit]");
  const label = button.textContent;
  input.form.addEventListener("submit", function () {
    button.disabled = true;
    button.textContent = "Searching…";
  });
  // Coming back with the Back button restores the page as it was left: make it usable again.
  window.addEventListener("pageshow", function () {
    button.disabled = false;
    button.textContent = label;
  });
})();
