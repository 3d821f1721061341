// The orchestrator dashboard's auto-refresh: reload the page every data-refresh-ms milliseconds
// (30 s by default) while the tab is visible; a hidden tab waits and reloads once it is shown again.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var every = parseInt(root.getAttribute("data-refresh-ms"), 10) || 30000;
  var due = Date.now() + every;
  function tick() {
    if (document.visibilityState === "visible" && Date.now() >= due) {
      window.location.reload();
      return;
    }
    window.setTimeout(tick, Math.min(every, 1000));
  }
  window.setTimeout(tick, Math.min(every, 1000));
})();
