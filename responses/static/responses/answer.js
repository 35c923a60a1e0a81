// The answer page: record the score clicked in the email as soon as the page opens (the
// server never records on GET, because mail scanners open links), and word the follow-up
// question for the chosen score. Without this script the form still works with its button.
(function () {
  "use strict";
  var form = document.querySelector("[data-answer-form]");
  if (!form) return;
  var status = form.querySelector("[data-status]");

  function category(score) {
    if (score >= 9) return "promoter";
    if (score >= 7) return "passive";
    return "detractor";
  }

  function showWhy(score) {
    var want = score === null ? "" : category(score);
    form.querySelectorAll("[data-why]").forEach(function (el) {
      el.hidden = el.getAttribute("data-why") !== want;
    });
  }

  function checkedScore() {
    var checked = form.querySelector("input[name=score]:checked");
    return checked ? parseInt(checked.value, 10) : null;
  }

  function record() {
    var score = checkedScore();
    if (score === null) return;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("score", String(score));
    data.append("auto", "1");
    fetch(form.action || window.location.href, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        status.textContent = status.getAttribute("data-saved-text");
      })
      .catch(function () {
        status.textContent = status.getAttribute("data-failed-text");
      });
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "score") showWhy(checkedScore());
  });
  showWhy(checkedScore());
  if (form.hasAttribute("data-auto-record")) record();

  // Kiosk mode: a question left half answered (a score picked, nothing sent) is cleared for
  // the next person after a while without input.
  var reset = form.getAttribute("data-kiosk-reset");
  var idle = parseInt(form.getAttribute("data-kiosk-idle") || "0", 10);
  if (reset && idle > 0) {
    var timer = null;
    var restart = function () {
      if (timer !== null) window.clearTimeout(timer);
      timer = window.setTimeout(function () { window.location.replace(reset); }, idle * 1000);
    };
    ["change", "input", "keydown", "pointerdown"].forEach(function (name) {
      form.addEventListener(name, restart);
    });
  }
})();
