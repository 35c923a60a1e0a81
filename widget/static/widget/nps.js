/* nps_saas website widget: asks the survey's 0-10 question inside the host page.
 *
 *   <script async src="https://OUR-HOST/w/nps.js?v=VERSION" data-key="wpk_..."></script>
 *   nps("survey", {email, name, external_id, created_at, properties, locale, signature});
 *   delighted.survey({email, name, createdAt, properties});   // Delighted's call shape
 *
 * No cookies, no third-party request: it talks only to the host it was loaded from, and the
 * server decides whether to show. Styles live in a shadow root through a constructed style
 * sheet (no inline <style>, no style attributes), so a strict CSP that allows our origin for
 * scripts and connections is enough.
 */
(function () {
  "use strict";
  var w = window, d = document;
  var me = d.currentScript;
  if (!me || w.__npsWidget) return;
  w.__npsWidget = true;
  var KEY = me.getAttribute("data-key") || "";
  var API = new URL(me.src).origin;
  var AUTO = me.getAttribute("data-auto") !== "false";
  var STORE = "nps_w:" + KEY;
  var called = false, pending = null, host = null, seq = 0;

  function store(name, value) {
    try {
      if (value === undefined) return w.localStorage.getItem(STORE + name);
      w.localStorage.setItem(STORE + name, value);
    } catch (e) { /* storage blocked: the server still decides */ }
    return null;
  }

  function visitor() {
    var id = store(":visitor");
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      var bytes = new Uint8Array(18);
      w.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      store(":visitor", id);
    }
    return id;
  }

  function post(path, body, keepalive) {
    body.key = KEY;
    return w.fetch(API + path, {
      method: "POST", mode: "cors", credentials: "omit", keepalive: !!keepalive,
      headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { j.status = r.status; return j; });
    });
  }

  function survey(opts) {
    opts = opts || {};
    var person = {};
    ["email", "name", "external_id", "created_at", "locale", "signature", "properties"].forEach(function (k) {
      if (opts[k] !== undefined && opts[k] !== null) person[k] = opts[k];
    });
    var identified = !!(person.email || person.external_id);
    called = true;
    if (!identified && Number(store(":rest") || 0) > Date.now()) return;
    var mine = ++seq;
    if (pending) { w.clearTimeout(pending); pending = null; }
    if (identified && host) close(false);
    post("/w/show/", {
      visitor: visitor(), url: w.location.href,
      lang: (d.documentElement.getAttribute("lang") || "").slice(0, 20), person: person
    }).then(function (j) {
      if (mine !== seq) return;
      if (!j.show) return decided(false, j.reason || j.error || "");
      pending = w.setTimeout(function () {
        pending = null; render(j); decided(true, "");
      }, Math.max(0, j.delay || 0) * 1000);
    }).catch(function () { decided(false, "refused"); });  /* not allowed here, or offline */
  }

  // The host page may listen: window.addEventListener("nps:decision", e => e.detail.show).
  function decided(show, reason) {
    try { w.dispatchEvent(new w.CustomEvent("nps:decision", { detail: { show: show, reason: reason } })); } catch (e) { /* old browser */ }
  }

  var CSS = [
    ":host{all:initial}",
    ".bar{position:fixed;left:0;right:0;bottom:0;z-index:2147483000;box-sizing:border-box;max-width:100vw;",
    "background:#fff;color:#1f2937;border-top:3px solid var(--a);box-shadow:0 -4px 16px rgba(0,0,0,.15);",
    "font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;padding:14px 44px 14px 14px}",
    ".in{max-width:640px;margin:0 auto}",
    "p{margin:0 0 10px;font-weight:600}",
    ".x{position:absolute;top:6px;right:6px;width:36px;height:36px;border:0;background:none;font-size:22px;",
    "color:#4b5563;cursor:pointer;border-radius:6px}",
    ".s{display:flex;gap:4px}",
    ".s button{flex:1 1 0;min-width:0;height:40px;border:1px solid #d1d5db;border-radius:6px;background:#f9fafb;",
    "color:#111827;font:inherit;font-weight:600;cursor:pointer;padding:0}",
    ".s button[aria-pressed=true]{background:var(--a);border-color:var(--a);color:#fff}",
    ".e{display:flex;justify-content:space-between;font-size:12px;color:#6b7280;margin-top:4px}",
    "label{display:block;margin:12px 0 6px;font-weight:600}",
    "textarea{box-sizing:border-box;width:100%;min-height:64px;font:inherit;padding:6px;border:1px solid #d1d5db;border-radius:6px}",
    ".go{margin-top:8px;background:var(--a);color:#fff;border:0;border-radius:6px;padding:8px 18px;font:inherit;font-weight:600;cursor:pointer}",
    "button:focus-visible,textarea:focus-visible{outline:3px solid var(--a);outline-offset:2px}",
    ".st{font-size:13px;color:#b91c1c;margin:6px 0 0;font-weight:400}",
    "[hidden]{display:none!important}"
  ].join("");

  function el(tag, attrs, text) {
    var node = d.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text) node.textContent = text;
    return node;
  }

  function render(j) {
    if (host) return;
    var t = j.texts || {}, ticket = j.ticket, score = null, done = false;
    host = el("div", { "data-nps-widget": "" });
    var root = host.attachShadow({ mode: "open" });
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { /* very old browser: unstyled but usable */ }
    var bar = el("div", { "class": "bar", role: "region", "aria-labelledby": "nps-q", lang: j.language || "en" });
    if (/^#[0-9a-fA-F]{6}$/.test(j.accent || "")) bar.style.setProperty("--a", j.accent);
    else bar.style.setProperty("--a", "#4f46e5");
    var inner = el("div", { "class": "in" });
    var q = el("p", { id: "nps-q" }, t.question);
    var scale = el("div", { "class": "s", role: "group", "aria-labelledby": "nps-q" });
    var buttons = [];
    for (var i = 0; i <= 10; i++) {
      var b = el("button", { type: "button", "aria-pressed": "false", "data-score": String(i) }, String(i));
      b.addEventListener("click", pick.bind(null, i));
      buttons.push(b);
      scale.appendChild(b);
    }
    var ends = el("div", { "class": "e", "aria-hidden": "true" });
    ends.appendChild(el("span", {}, t.low));
    ends.appendChild(el("span", {}, t.high));
    var form = el("form", { hidden: "" });
    var why = el("label", { "for": "nps-c" }, t.why);
    var comment = el("textarea", { id: "nps-c", name: "comment", maxlength: "5000" });
    var send = el("button", { type: "submit", "class": "go" }, t.send);
    form.appendChild(why); form.appendChild(comment); form.appendChild(send);
    var status = el("p", { "class": "st", role: "status", "aria-live": "polite" });
    var thanks = el("p", { tabindex: "-1", hidden: "", "data-thanks": "" }, t.thanks);
    var x = el("button", { type: "button", "class": "x", "aria-label": t.close, title: t.close }, "\u00d7");
    x.addEventListener("click", function () { close(!done && score === null); });
    bar.addEventListener("keydown", function (e) { if (e.key === "Escape") close(!done && score === null); });
    scale.addEventListener("keydown", function (e) {
      var at = buttons.indexOf(root.activeElement), to = at;
      if (e.key === "ArrowRight") to = Math.min(10, at + 1);
      else if (e.key === "ArrowLeft") to = Math.max(0, at - 1);
      if (at >= 0 && to !== at) { e.preventDefault(); buttons[to].focus(); }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      answer({ score: score, comment: comment.value }).then(function (ok) {
        if (!ok) return;
        done = true;
        form.hidden = true; scale.hidden = true; ends.hidden = true; q.hidden = true;
        thanks.hidden = false; thanks.focus();
      });
    });
    function pick(n) {
      score = n;
      buttons.forEach(function (b, k) { b.setAttribute("aria-pressed", String(k === n)); });
      why.textContent = t[n >= 9 ? "why_promoter" : n >= 7 ? "why_passive" : "why_detractor"] || t.why;
      answer({ score: n }).then(function (ok) {
        if (!ok) return;
        form.hidden = false;
        comment.focus();
      });
    }
    function answer(body) {
      body.ticket = ticket;
      status.textContent = "";
      return post("/w/answer/", body).then(function (r) {
        if (r.status !== 200) throw new Error("not saved");
        store(":rest", String(Date.now() + (j.answer_days || 0) * 864e5));
        return true;
      }).catch(function () { status.textContent = t.failed; return false; });
    }
    host.npsClose = function (dismissed) {
      if (dismissed) {
        store(":rest", String(Date.now() + (j.dismiss_days || 0) * 864e5));
        post("/w/dismiss/", { ticket: ticket }, true).catch(function () {});
      }
    };
    inner.appendChild(q); inner.appendChild(scale); inner.appendChild(ends); inner.appendChild(form);
    inner.appendChild(thanks); inner.appendChild(status);
    bar.appendChild(inner); bar.appendChild(x);
    root.appendChild(bar);
    d.body.appendChild(host);
  }

  function close(dismissed) {
    if (!host) return;
    host.npsClose(dismissed);
    host.parentNode.removeChild(host);
    host = null;
  }

  function command(name, opts) {
    if (name === "survey") survey(opts);
  }

  function delightedSurvey(opts) {
    opts = opts || {};
    var props = opts.properties || {};
    command("survey", {
      email: opts.email, name: opts.name, external_id: opts.external_id || opts.externalId,
      created_at: opts.createdAt, properties: props, locale: opts.locale || props.locale,
      signature: opts.signature
    });
  }

  // Calls made before the script arrived: nps.q (our stub) and Delighted's queued array.
  var queued = (w.nps && w.nps.q) || [];
  var oldDelighted = w.delighted;
  w.nps = function () { command(arguments[0], arguments[1]); };
  w.delighted = { survey: delightedSurvey };
  for (var n = 0; n < queued.length; n++) command(queued[n][0], queued[n][1]);
  if (oldDelighted && typeof oldDelighted.length === "number") {
    for (var m = 0; m < oldDelighted.length; m++) {
      if (oldDelighted[m] && oldDelighted[m][0] === "survey") delightedSurvey(oldDelighted[m][1]);
    }
  }
  // Anonymous visitors need no call: after the page's own scripts (load), unless one called.
  function auto() { w.setTimeout(function () { if (!called) survey({}); }, 0); }
  if (AUTO) { if (d.readyState === "complete") auto(); else w.addEventListener("load", auto); }
})();
