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
