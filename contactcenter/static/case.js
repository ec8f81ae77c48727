// The case page listens on /cases/<number>/ws (the shared socket, static/live.js); when someone
// changes the case it reloads, unless the user is typing in a form (then it says so and lets
// them reload).
"use strict";

(() => {
  const script = document.currentScript;
  const number = script && script.getAttribute("data-number");
  if (!number) return;
  const banner = document.getElementById("case-live");
  const typing = () => [...document.querySelectorAll("textarea, input[name=reason]")].some((f) => f.value);
  ccLive.socket("/cases/" + encodeURIComponent(number) + "/ws", {
    message: (msg) => {
      if (msg.type !== "changed") return;
      document.body.setAttribute("data-last-change", msg.change);
      if (typing()) {
        banner.textContent = "Case " + msg.change + " by " + msg.actor + ": reload to see it.";
        banner.hidden = false;
      } else {
        location.replace("/cases/" + encodeURIComponent(number));
      }
    },
  });
})();
