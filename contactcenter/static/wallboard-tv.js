// The wallboard on a TV: the same snapshots as the supervisor's view, from which the server has
// already taken every person out (callers' numbers and names, operators' names). Figures only,
// as text (textContent): nothing here is clickable.
"use strict";

(function () {
  const root = document.getElementById("tv-queues");
  if (!root) return;
  const group = root.dataset.group || "";
  const staleBadge = document.getElementById("tv-stale");
  const clock = document.getElementById("tv-clock");
  const el = ccLive.el, duration = ccLive.duration;
  let offset = 0;
  let socketUp = false;
  let lastStale = false;
  let lastReason = "";  // "rebuilding": events were dropped, recounting from the store

  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  function secs(v) { return v === null || v === undefined ? "—" : Math.round(v) + "s"; }
  function serverNow() { return Date.now() - offset; }
  function waitLevel(s, target) { return s > target ? "bad" : s > target / 2 ? "warn" : "ok"; }

  function fig(label, value, level, id) {
    const f = el("div", "tv-fig" + (level ? " " + level : ""));
    f.appendChild(el("div", "v", value));
    f.appendChild(el("div", "l", label));
    f.dataset.figure = id;
    return f;
  }

  function renderQueue(q) {
    const card = el("section", "tv-queue");
    card.dataset.queue = q.name;
    card.appendChild(el("h2", null, q.display_name));
    const now = q.now, today = q.today, tg = q.targets;
    const figs = el("div", "tv-figs");
    figs.appendChild(fig("Waiting", now.waiting, now.waiting ? "warn" : "", "waiting"));
    const lw = fig("Longest wait", duration(now.longest_wait_seconds),
      waitLevel(now.longest_wait_seconds, tg.max_wait_target_seconds), "longest_wait");
    lw.dataset.oldest = now.callers.length ? now.callers[0].joined_at : "";
    lw.dataset.target = tg.max_wait_target_seconds;
    figs.appendChild(lw);
    const sl = today.service_level;
    // the target is in the colour (green: met, red: missed): a label must fit a quarter card
    figs.appendChild(fig("Service level", pct(sl), sl === null || sl === undefined ? "" : (sl < tg.service_level_target ? "bad" : "ok"),
      "service_level"));
    figs.appendChild(fig("Answered", today.answered, "", "answered"));
    figs.appendChild(fig("Abandoned", today.abandoned, "", "abandoned"));
    figs.appendChild(fig("Avg. answer", secs(today.asa_seconds), "", "asa"));
    card.appendChild(figs);
    const agents = el("p", "tv-agents");
    for (const [state, label] of [["available", "ready"], ["on_call", "on calls"],
      ["wrap_up", "wrap-up"], ["paused", "paused"]]) {
      const span = el("span", state);
      span.appendChild(el("strong", null, now.agents[state]));
      span.appendChild(document.createTextNode(" " + label));
      agents.appendChild(span);
    }
    card.appendChild(agents);
    if (lw.classList.contains("bad")) card.classList.add("alert");
    return card;
  }

  function layout(n) {
    // columns and rows for n cards on a 16:9 screen: 1-2 in one row, 3-6 in 3x2, 7-9 in 3x3...
    const cols = n <= 1 ? 1 : n === 2 || n === 4 ? 2 : n <= 9 ? 3 : 4;
    const rows = Math.max(1, Math.min(4, Math.ceil(n / cols)));
    root.className = "tv-queues cols-" + cols + " rows-" + rows;
  }

  function render(snap) {
    offset = Date.now() - Date.parse(snap.at);
    lastStale = !!snap.stale;
    lastReason = snap.stale_reason || "";
    const frag = document.createDocumentFragment();
    for (const q of snap.queues) frag.appendChild(renderQueue(q));
    if (!snap.queues.length) frag.appendChild(el("p", "tv-empty", "No queues in this group yet."));
    layout(snap.queues.length);
    root.replaceChildren(frag);
    root.dataset.updated = snap.at;
    staleBadge.hidden = !(lastStale || !socketUp);
    staleBadge.textContent = lastStale ? (lastReason === "rebuilding" ? "STALE — rebuilding" : "STALE — Asterisk link down") : "STALE — no live updates";
  }

  function tick() {
    for (const node of root.querySelectorAll('[data-figure="longest_wait"]')) {
      if (!node.dataset.oldest) continue;
      const s = (serverNow() - Date.parse(node.dataset.oldest)) / 1000;
      node.querySelector(".v").textContent = duration(s);
      node.classList.remove("ok", "warn", "bad");
      node.classList.add(waitLevel(s, Number(node.dataset.target)));
    }
    clock.textContent = new Date(serverNow()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function connect() {
    ccLive.socket("/wallboard/ws?tv=1&group=" + encodeURIComponent(group), {
      open: function () { socketUp = true; staleBadge.hidden = !lastStale; },
      message: function (msg) { if (msg.type === "snapshot") render(msg); },
      close: function () {
        socketUp = false;
        staleBadge.hidden = false;
        staleBadge.textContent = lastStale ? (lastReason === "rebuilding" ? "STALE — rebuilding" : "STALE — Asterisk link down") : "STALE — no live updates";
      },
    });
  }

  const initial = document.getElementById("initial-snapshot");
  if (initial) {
    try { render(JSON.parse(initial.textContent)); } catch (e) { /* the socket brings one */ }
  }
  staleBadge.hidden = !lastStale;
  connect();
  setInterval(tick, 1000);
  tick();
})();
