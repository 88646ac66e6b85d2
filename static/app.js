// Shared progressive enhancements: marks that scripts run, and the results page's share button.
// Every page works without this script.
(function () {
  "use strict";
  document.documentElement.classList.add("has-js");

  const share = document.querySelector("[data-share]");
  if (!share) return;
  const note = document.querySelector("[data-share-note]");
  const url = share.dataset.url;
  if (!navigator.share && !(navigator.clipboard && window.isSecureContext)) return;  // nothing better than the address bar
  share.hidden = false;
  if (!navigator.share) share.textContent = "Copy link to these results";
  share.addEventListener("click", function () {
    if (navigator.share) {
      navigator.share({title: document.title, url: url}).catch(function () {});
      return;
    }
    navigator.clipboard.writeText(url).then(function () {
      note.textContent = "Link copied.";
    }, function () {
      note.textContent = "Could not copy: use the address bar.";
    });
  });
})();
