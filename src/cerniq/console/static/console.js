// Live activity feed: server-sent events from /console/events into the list marked data-sse.
(function () {
  function start() {
    var list = document.querySelector("[data-sse]");
    if (!list || list.dataset.started || !window.EventSource) return;
    list.dataset.started = "1";
    var source = new EventSource(list.dataset.sse);
    source.addEventListener("activity", function (event) {
      var item = JSON.parse(event.data);
      var li = document.createElement("li");
      li.textContent = item.at + " · " + item.channel + " · " + item.direction + " · " + item.status + " — " + item.text;
      li.setAttribute("data-testid", "activity-item");
      list.insertBefore(li, list.firstChild);
      while (list.children.length > 50) list.removeChild(list.lastChild);
    });
    document.addEventListener("htmx:beforeSwap", function () { source.close(); }, { once: true });
  }
  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSettle", start);
})();

// Review SLA countdown: elements with data-sla-due (an ISO time) show the time left in their
// [data-sla-left] child, amber under one hour, red once breached. Without JS the server text stays.
(function () {
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-sla-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.slaDue);
      if (isNaN(due)) return;
      var mins = Math.floor((due - now) / 60000);
      var breached = el.dataset.slaBreached === "true" || mins < 0;
      var left = el.querySelector("[data-sla-left]");
      if (left) left.textContent = breached ? el.dataset.breachedText : Math.floor(mins / 60) + "h " + (mins % 60) + "m";
      el.classList.toggle("red", breached);
      el.classList.toggle("amber", !breached && mins < 60);
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 30000);
})();
