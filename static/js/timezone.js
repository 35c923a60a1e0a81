// Pre-select the browser's time zone in selects marked data-guess-timezone, unless the person
// (or a re-rendered form with errors) already chose something other than the default.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  document.querySelectorAll("select[data-guess-timezone]").forEach(function (select) {
    if (select.value && select.value !== "UTC") return;
    // The list holds current names only; some browsers report an older one (Asia/Calcutta).
    var wanted = zone;
    try {
      wanted = JSON.parse(select.getAttribute("data-zone-aliases") || "{}")[zone] || zone;
    } catch (e) {}
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === wanted) {
        select.value = wanted;
        return;
      }
    }
  });
})();
