// Live updates of the run history page: new runs and status changes arrive as server-sent
// events (GET /ui/events) and are put in the page without a reload. No library, no build.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var body = document.body;
  var page = body.dataset.page;
  if (page === "login" || page === "problem") return;
  var dot = document.getElementById("live");
  var tbody = document.getElementById("runs");
  var note = document.getElementById("live-note");
  var missed = 0;
  // A form sent from this page (retry, replay, resolve) is answered by a redirect to where it
  // leads; a reload for the change it causes would cancel that navigation.
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });

  var watch = [];
  document.querySelectorAll("[data-run-id]").forEach(function (el) {
    if (watch.length < 50 && watch.indexOf(el.dataset.runId) < 0) watch.push(el.dataset.runId);
  });
  var url = "/ui/events" + (watch.length ? "?" + watch.map(function (w) {
    return "watch=" + encodeURIComponent(w);
  }).join("&") : "");

  function rowFrom(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function matches(run) {
    var want = tbody.dataset;
    if (want.recipe && want.recipe !== run.recipe) return false;
    if (want.status && want.status !== run.status) return false;
    if (want.trigger) {
      var trig = want.trigger.trim();
      var full = run.trigger_app + " " + run.trigger_event;
      if (trig !== run.trigger_event && trig !== full) return false;
    }
    return true;
  }

  function bump(status, by) {
    ["all", status].forEach(function (key) {
      var el = document.querySelector('[data-count="' + key + '"]');
      if (el) el.textContent = String(Math.max(0, (parseInt(el.textContent, 10) || 0) + by));
    });
  }

  function tell(text) {
    if (!note) return;
    note.hidden = false;
    note.textContent = "";
    var a = document.createElement("a");
    a.href = location.href;
    a.textContent = text + " (reload)";
    note.appendChild(a);
  }

  function onRun(run) {
    if (page === "run") {
      if (leaving) return;
      if (run.id === body.dataset.runId && run.status !== body.dataset.status) location.reload();
      else if (run.parent === body.dataset.runId) location.reload();
      return;
    }
    if (!tbody) return;
    var old = tbody.querySelector('tr[data-run-id="' + run.id + '"]');
    if (page === "queue") {
      if (old || run.status === "failed" || run.status === "waiting") {
        missed += 1;
        tell(missed + " change" + (missed > 1 ? "s" : "") + " to the queue");
      }
      return;
    }
    if (old) {
      var was = old.dataset.status;
      if (was === run.status) return;
      var fresh = rowFrom(run.row);
      old.replaceWith(fresh);
      bump(was, -1);
      bump(run.status, +1);
      return;
    }
    if (tbody.dataset.live === "1" && matches(run)) {
      var row = rowFrom(run.row);
      row.classList.add("new");
      tbody.insertBefore(row, tbody.firstChild);
      bump(run.status, +1);
      var empty = document.querySelector(".empty");
      if (empty) empty.remove();
    } else {
      missed += 1;
      tell(missed + " new run" + (missed > 1 ? "s" : ""));
    }
  }

  var source = new EventSource(url);
  source.onopen = function () { if (dot) dot.classList.add("on"); };
  source.onerror = function () { if (dot) dot.classList.remove("on"); };
  source.addEventListener("run", function (event) {
    try { onRun(JSON.parse(event.data)); } catch (e) { /* a malformed event: ignore it */ }
  });
})();
