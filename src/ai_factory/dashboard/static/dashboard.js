// AI Factory dashboard: live updates, confirmations and the worker log tail.
// Plain JavaScript, no dependencies, nothing loaded from elsewhere.
//
// The server renders every page whole. When the factory's event stream (/live/events,
// Server-Sent Events) says something changed, this script fetches the same URL again
// and swaps the page's regions marked data-live. Events are hints; the page is the truth.
(function () {
  "use strict";

  var indicator = document.getElementById("live-state");
  function setState(value) {
    if (indicator) indicator.dataset.state = value;
  }

  // Forms with data-confirm ask first (kill, cancel, delete).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
  var scope = document.body.dataset.item || null;  // an item page follows its own item only
  var timer = null;
  var running = false;
  var again = false;

  function editing(region) {
    var active = document.activeElement;
    return active && active !== document.body && region.contains(active) &&
      /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function refresh() {
    if (running) { again = true; return; }
    running = true;
    // A page rendered by a refused action (POST) names the page it shows in data-url.
    var url = document.body.dataset.url || window.location.href;
    fetch(url, { credentials: "same-origin", headers: { "X-Dashboard-Refresh": "1" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("refresh " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next && !editing(region) && next.innerHTML !== region.innerHTML) {
            region.innerHTML = next.innerHTML;
          }
        });
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () { /* the next event or tick tries again */ })
      .then(function () {
        running = false;
        if (again) { again = false; schedule(200); }
      });
  }

  function schedule(delay) {
    if (timer !== null) return;
    timer = window.setTimeout(function () { timer = null; refresh(); }, delay);
  }

  if (!document.body.dataset.url) regions = [];  // nothing to re-fetch
  if (regions.length && window.EventSource) {
    var opened = false;
    var events = new EventSource("/live/events");
    events.addEventListener("open", function () {
      setState("on");
      if (opened) schedule(0);  // the browser reconnected: we may have missed events
      opened = true;
    });
    events.addEventListener("error", function () { setState("off"); });
    events.addEventListener("factory", function (message) {
      var event = JSON.parse(message.data);
      if (!scope || !event.workItemId || event.workItemId === scope) schedule(150);
    });
    events.addEventListener("reconnected", function () { schedule(0); });
  }
  // Heartbeat ages and a worker's SPEC.md move between events too.
  if (regions.length) {
    window.setInterval(function () { if (!document.hidden) schedule(0); }, 5000);
  }

  // The worker page's log tail: whole lines over SSE, inserted as text.
  var log = document.getElementById("log");
  if (log && log.dataset.src && window.EventSource) {
    var empty = document.getElementById("log-empty");
    log.scrollTop = log.scrollHeight;
    var source = new EventSource(log.dataset.src + "?offset=" + encodeURIComponent(log.dataset.offset || "0"));
    source.addEventListener("log", function (message) {
      var data = JSON.parse(message.data);
      var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
      var lines = document.createDocumentFragment();
      data.lines.forEach(function (line) {
        var div = document.createElement("div");
        div.className = "line tag-" + line.tag;
        div.textContent = line.text;
        lines.appendChild(div);
      });
      log.appendChild(lines);
      while (log.childElementCount > 5000) log.removeChild(log.firstElementChild);
      if (empty) empty.hidden = true;
      if (atBottom) log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("reset", function () { log.textContent = ""; });
  }
})();
