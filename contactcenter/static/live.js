// What the live screens share (the supervisor's wallboard and the TV wallboard): nodes built
// with textContent only (caller IDs and names are attacker-controlled), durations written one
// way, and a websocket that reconnects with backoff (1 s doubling to 15 s).
"use strict";

window.ccLive = (function () {
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : m + ":" + ss;
  }

  // path: e.g. "/wallboard/ws?group=x"; on.message(msg) gets each JSON message (others are
  // dropped); on.open() after each connect; on.close(opened) after each close, `opened` false
  // when the handshake was refused (signed out?). It reconnects by itself.
  function socket(path, on) {
    let retry = 1000;
    function connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(proto + "//" + location.host + path);
      let opened = false;
      ws.onopen = function () {
        opened = true;
        retry = 1000;
        if (on.open) on.open();
      };
      ws.onmessage = function (ev) {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        on.message(msg);
      };
      ws.onclose = function () {
        if (on.close) on.close(opened);
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      };
    }
    connect();
  }

  return { el: el, duration: duration, socket: socket };
})();
