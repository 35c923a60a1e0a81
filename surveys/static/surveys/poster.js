// The poster page's Print button (no inline scripts: the CSP allows our own files only).
(function () {
  "use strict";
  var button = document.querySelector("[data-print]");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
