// Live updates: the server renders every update (the same HTML as the first snapshot) and sends it
// over Server-Sent Events; this only swaps it in. The stream's URL is relative, like every URL here.
(function () {
  "use strict";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  if (!main || !live || !window.EventSource) {
    return;
  }
  var last = Date.now();
  function show(state, text) {
    live.setAttribute("data-state", state);
    live.textContent = text;
  }
  show("connecting", "Connecting…");
  var source = new EventSource(main.getAttribute("data-stream"));
  source.addEventListener("status", function (event) {
    var update = JSON.parse(event.data);
    main.innerHTML = update.html;
    document.title = update.title;
    last = Date.now();
    show("live", "Live · " + update.time);
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      show("lost", "Disconnected: reload the page");
    } else {
      show("lost", "Connection lost: reconnecting…");
    }
  });
  window.setInterval(function () {
    var quiet = Math.round((Date.now() - last) / 1000);
    if (source.readyState === EventSource.OPEN && quiet >= 5) {
      show("stale", "No update for " + quiet + " s");
    }
  }, 1000);
})();
