// Times in the viewer's time zone: every <time datetime="..."> the server wrote in UTC
// ("2026-07-01 10:00:03 UTC") is shown in the browser's zone, with the UTC time kept as its
// title (shown on hover). Without script the UTC text stays, so the page reads the same.
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  var zone = "";
  try {
    var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date());
    parts.forEach(function (p) { if (p.type === "timeZoneName") zone = p.value; });
  } catch (e) { zone = ""; }

  function local(el) {
    if (el.dataset.local) return;
    var iso = el.getAttribute("datetime");
    if (!iso) return;
    var when = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
    if (isNaN(when.getTime())) return;
    var utc = el.textContent.trim();
    el.title = utc.indexOf("UTC") >= 0 ? utc : utc + " UTC";
    el.textContent = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
      " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds()) +
      (zone ? " " + zone : "");
    el.dataset.local = "1";
  }

  function within(root) {
    if (root.nodeType !== 1) return;
    if (root.tagName === "TIME") local(root);
    root.querySelectorAll("time[datetime]").forEach(local);
  }

  within(document.body);
  // rows the live updates add
  new MutationObserver(function (changes) {
    changes.forEach(function (c) { c.addedNodes.forEach(within); });
  }).observe(document.body, { childList: true, subtree: true });
})();
