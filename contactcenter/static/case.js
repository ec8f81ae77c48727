// The case page listens on /cases/<number>/ws; when someone changes the case it reloads, unless
// the user is typing in a form (then it says so and lets them reload).
(function () {
  "use strict";
  var script = document.currentScript;
  var number = script && script.getAttribute("data-number");
  if (!number) { return; }
  var banner = document.getElementById("case-live");
  var delay = 1000;
  function typing() {
    var fields = document.querySelectorAll("textarea, input[name=reason]");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return false;
  }
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/cases/" + encodeURIComponent(number) + "/ws");
    ws.onopen = function () { delay = 1000; };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type !== "changed") { return; }
      document.body.setAttribute("data-last-change", msg.change);
      if (typing()) {
        banner.textContent = "Case " + msg.change + " by " + msg.actor + ": reload to see it.";
        banner.hidden = false;
      } else {
        location.replace("/cases/" + encodeURIComponent(number));
      }
    };
    ws.onclose = function (ev) {
      if (ev.code === 4401) { location.href = "/login"; return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
}());
