// Phone-first upload for the search form: the photo is shrunk in the browser (long side at most
// 1,600 px, EXIF orientation kept) before it is sent, with upload progress; a camera button on
// phones; a photo may be dropped anywhere on the page or pasted. Without this script the form is
// a plain multipart post of the original file, and works the same.
(function () {
  "use strict";
  const form = document.querySelector("[data-search-form]");
  if (!form) return;
  const input = form.querySelector("[data-upload]");
  const camera = form.querySelector("[data-camera]");
  const figure = form.querySelector("[data-preview]");
  const preview = form.querySelector("[data-preview-image]");
  const status = form.querySelector("[data-status]");
  const progress = form.querySelector("[data-progress]");
  const statusText = form.querySelector("[data-status-text]");
  const submit = form.querySelector("[data-submit]");
  const errorBox = document.querySelector("[data-error]");
  const MAX_SIDE = 1600;          // long side sent: plenty for the model (192 px) and the crop box
  const SEND_AS_IS = 600 * 1024;  // a small enough original is sent untouched (no second JPEG loss)
  const TYPES = /^image\/(jpeg|png|webp|gif)$/;
  const label = submit.textContent;
  let prepared = null;            // Promise of {blob, name} for the chosen photo
  let previewUrl = null;

  function sentence(text) {
    text = String(text || "").trim();
    if (!text) return text;
    return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
  }
  function kB(bytes) { return Math.max(1, Math.round(bytes / 1024)).toLocaleString() + " kB"; }

  function showError(message) {
    errorBox.textContent = sentence(message);
    errorBox.hidden = false;
    errorBox.focus();
  }

  function busy(on) {
    submit.disabled = on;
    submit.textContent = on ? "Searching…" : label;
    if (!on) status.hidden = true;
  }

  // Decode upright (EXIF orientation applied), as the server does.
  function decode(file) {
    if (!window.createImageBitmap) return Promise.reject(new Error("no createImageBitmap"));
    return createImageBitmap(file, {imageOrientation: "from-image"}).catch(function () {
      return createImageBitmap(file);
    });
  }

  function encode(canvas, quality) {
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) { blob ? resolve(blob) : reject(new Error("toBlob")); }, "image/jpeg", quality);
    });
  }

  // The photo as it will be sent: the original when small, else a JPEG at most MAX_SIDE a side.
  function prepare(file) {
    return decode(file).then(function (bitmap) {
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      if (scale === 1 && file.size <= SEND_AS_IS && TYPES.test(file.type)) {
        if (bitmap.close) bitmap.close();
        return {blob: file, name: file.name || "photo"};
      }
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff";  // transparent parts on white, as the server composites them
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      if (bitmap.close) bitmap.close();
      return encode(canvas, 0.85).then(function (blob) {
        return blob.size > SEND_AS_IS ? encode(canvas, 0.7) : blob;
      }).then(function (blob) {
        return {blob: blob, name: (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg"};
      });
    }, function () {
      return {blob: file, name: file.name || "photo"};  // the browser cannot read it: the server says why
    });
  }

  function choose(file) {
    errorBox.hidden = true;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    if (!file) {
      prepared = null;
      figure.hidden = true;
      return;
    }
    prepared = prepare(file);
    prepared.then(function (p) {
      previewUrl = URL.createObjectURL(p.blob);
      preview.src = previewUrl;
    });
  }

  // A file from the camera, a drop or a paste also becomes the form's file (so the form stays valid).
  function adopt(file) {
    try {
      const transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
    } catch (e) { /* older browsers: the prepared photo is still what is sent */ }
    choose(file);
  }

  preview.addEventListener("load", function () {
    preview.classList.toggle("pixelated", Math.max(preview.naturalWidth, preview.naturalHeight) < 96);
    figure.hidden = false;
    document.dispatchEvent(new CustomEvent("fashion16:preview"));
  });
  preview.addEventListener("error", function () { figure.hidden = true; });
  input.addEventListener("change", function () { choose(input.files[0]); });

  if (camera && window.matchMedia && window.matchMedia("(pointer: coarse)").matches) {
    camera.hidden = false;
    camera.addEventListener("click", function () {
      const shot = document.createElement("input");
      shot.type = "file";
      shot.accept = "image/*";
      shot.setAttribute("capture", "environment");
      shot.addEventListener("change", function () { if (shot.files[0]) adopt(shot.files[0]); });
      shot.click();
    });
  }

  // Drop anywhere on the page (a missed drop must not navigate away from the app).
  let depth = 0;
  function hasFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0;
  }
  document.addEventListener("dragenter", function (event) {
    if (!hasFiles(event)) return;
    depth += 1;
    document.body.classList.add("dropping");
  });
  document.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dropping");
  });
  document.addEventListener("dragover", function (event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", function (event) {
    depth = 0;
    document.body.classList.remove("dropping");
    if (!hasFiles(event)) return;
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) adopt(file);
  });

  document.addEventListener("paste", function (event) {
    const items = event.clipboardData ? Array.prototype.slice.call(event.clipboardData.items) : [];
    const item = items.filter(function (i) { return i.kind === "file" && /^image\//.test(i.type); })[0];
    if (!item) return;
    event.preventDefault();
    const file = item.getAsFile();
    adopt(new File([file], file.name || "pasted.png", {type: file.type}));
  });

  form.addEventListener("submit", function (event) {
    if (!prepared) return;  // no photo yet: the browser asks for one
    event.preventDefault();
    errorBox.hidden = true;
    busy(true);
    prepared.then(function (photo) {
      if (!form.hasAttribute("data-saving")) {  // results are not kept: the form post shows them
        adopt(new File([photo.blob], photo.name, {type: photo.blob.type}));
        form.submit();
        return;
      }
      send(photo);
    });
  });

  function send(photo) {
    const data = new FormData(form);
    data.set("image", photo.blob, photo.name);
    data.set("save", "1");  // the API keeps a search only when asked: this page goes to its results address
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.api);
    request.responseType = "json";
    status.hidden = false;
    progress.value = 0;
    statusText.textContent = "Sending your photo (" + kB(photo.blob.size) + ")…";
    request.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      progress.value = Math.round(100 * event.loaded / event.total);
    });
    request.upload.addEventListener("load", function () {
      progress.removeAttribute("value");  // indeterminate while the server searches
      statusText.textContent = "Searching…";
    });
    request.addEventListener("load", function () {
      const body = request.response || {};
      if (request.status === 200 && body.results_url) {
        window.location.assign(body.results_url);
        return;
      }
      busy(false);
      showError(body.error || "something went wrong (status " + request.status + "); please try again");
    });
    request.addEventListener("error", function () {
      busy(false);
      showError("the photo could not be sent: check your connection and try again");
    });
    request.send(data);
  }

  // Coming back with the Back button restores the page as it was left: make it usable again.
  window.addEventListener("pageshow", function () { busy(false); });
})();
