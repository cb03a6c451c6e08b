// Live updates: the server sends `changed` whenever the audit trail grows (an item arrived or
// was decided, by anyone, anywhere); parts of the page that listen for `ak:changed` reload
// themselves through htmx. Without JavaScript every page still works; it just does not refresh.
(function () {
  document.querySelectorAll(".chat").forEach(function (c) { c.scrollTop = c.scrollHeight; });
  var src = document.body && document.body.dataset.events;
  if (!src || !window.EventSource) return;
  var events = new EventSource(src);
  events.addEventListener("changed", function () {
    document.body.dispatchEvent(new CustomEvent("ak:changed"));
  });
  document.body.dataset.live = "on";
})();
