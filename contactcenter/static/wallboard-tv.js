// The wallboard on a TV: the same snapshots as the supervisor's view, from which the server has
// already taken every person out (callers' numbers and names, operators' names). Figures only,
// as text: nothing here is clickable. Drawn in place by ccLive.patch, once a second.
"use strict";

(() => {
  const root = document.getElementById("tv-queues");
  if (!root) return;
  const { h, patch, fmt } = ccLive;
  const group = root.dataset.group || "";
  const staleBadge = document.getElementById("tv-stale");
  const clock = document.getElementById("tv-clock");
  // the colour's meaning in words, readable across the room without telling red from green
  const CUES = {
    wait: { bad: ["▲", "over target"], warn: ["◆", "near target"], ok: ["✓", "within target"] },
    sl: { bad: ["▼", "below target"], ok: ["✓", "target met"] },
  };
  let offset = 0;
  let link = "connecting"; // then "up" or "down"
  let snap = null;

  const serverNow = () => Date.now() - offset;
  const waitLevel = (s, target) => (s > target ? "bad" : s > target / 2 ? "warn" : "ok");

  function fig(id, label, value, level, kind) {
    const c = kind && CUES[kind][level];
    return h("div", { class: "tv-fig" + (level ? " " + level : ""), "data-figure": id, key: id },
      // five characters and more ("12:34", "1:02:03") get a smaller size to stay whole
      h("div", { class: value.length > 4 ? "v long" : "v" }, value),
      h("div", { class: "l" }, label),
      c ? h("div", { class: "cue" }, h("span", { "aria-hidden": "true" }, c[0]), " " + c[1]) : null);
  }

  function queueCard(q) {
    const now = q.now, today = q.today, tg = q.targets;
    const oldest = now.callers.length ? now.callers[0].joined_at : null;
    const longest = oldest ? (serverNow() - Date.parse(oldest)) / 1000 : now.longest_wait_seconds;
    const lwLevel = waitLevel(longest, tg.max_wait_target_seconds);
    const sl = today.service_level;
    const slLevel = sl === null || sl === undefined ? "" : sl < tg.service_level_target ? "bad" : "ok";
    // whole percents and seconds: a figure must fit a third of a card from across the room
    const figs = h("div", { class: "tv-figs", key: "figs" },
      fig("waiting", "Waiting", fmt.count(now.waiting), now.waiting ? "warn" : ""),
      fig("longest_wait", "Longest wait", fmt.duration(longest), lwLevel, "wait"),
      fig("service_level", "Service level", fmt.percent(sl, 0), slLevel, "sl"),
      fig("answered", "Answered", fmt.count(today.answered), ""),
      fig("abandoned", "Abandoned", fmt.count(today.abandoned), ""),
      fig("asa", "Avg. answer", fmt.seconds(today.asa_seconds, 0), ""));
    const agents = h("p", { class: "tv-agents", key: "agents" },
      [["available", "ready"], ["on_call", "on calls"], ["wrap_up", "wrap-up"], ["paused", "paused"]]
        .map(([state, label]) => h("span", { class: state, key: state },
          h("strong", null, fmt.count(now.agents[state])), " " + label)));
    return h("section", { class: "tv-queue" + (lwLevel === "bad" ? " alert" : ""), "data-queue": q.name, key: q.name },
      h("h2", { key: "title" }, q.display_name), figs, agents);
  }

  function layout(n) {
    // columns and rows for n cards on a 16:9 screen: 1-2 in one row, 3-6 in 3x2, 7-9 in 3x3...
    const cols = n <= 1 ? 1 : n === 2 || n === 4 ? 2 : n <= 9 ? 3 : 4;
    const rows = Math.max(1, Math.min(4, Math.ceil(n / cols)));
    return "tv-queues cols-" + cols + " rows-" + rows;
  }

  function draw() {
    if (snap) {
      const cls = layout(snap.queues.length);
      if (root.className !== cls) root.className = cls;
      patch(root, snap.queues.length ? snap.queues.map(queueCard)
        : [h("p", { class: "tv-empty", key: "empty" }, "No queues in this group yet.")]);
      root.dataset.updated = snap.at;
    }
    const stale = !!(snap && snap.stale);
    staleBadge.hidden = !(stale || link === "down");
    const text = stale ? (snap.stale_reason === "rebuilding" ? "STALE — rebuilding" : "STALE — Asterisk link down")
      : "STALE — no live updates";
    if (staleBadge.textContent !== text) staleBadge.textContent = text;
    clock.textContent = new Date(serverNow()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function take(msg) {
    snap = msg;
    offset = Date.now() - Date.parse(msg.at);
    draw();
  }

  const initial = document.getElementById("initial-snapshot");
  if (initial) {
    try { take(JSON.parse(initial.textContent)); } catch (e) { /* the socket brings one */ }
  }
  ccLive.socket("/wallboard/ws?tv=1&group=" + encodeURIComponent(group), {
    open: () => { link = "up"; draw(); },
    message: (msg) => { if (msg.type === "snapshot") take(msg); },
    close: () => { link = "down"; draw(); },
  });
  setInterval(draw, 1000);
})();
