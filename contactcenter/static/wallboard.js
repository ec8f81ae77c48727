// The wallboard: draws the server's snapshots (websocket, at most one a second) and redraws
// every second in between so the clocks tick. Each draw patches the page in place (ccLive.patch):
// a button the supervisor focused keeps the focus, the page keeps its scroll. Every piece of
// data goes in as text, never markup: caller IDs and names are attacker-controlled.
"use strict";

(() => {
  const root = document.getElementById("wb-queues");
  if (!root) return;
  const { h, patch, fmt, el } = ccLive;
  const group = root.dataset.group || "";
  const staleBadge = document.getElementById("stale-badge");
  const connBadge = document.getElementById("conn-badge");
  const clock = document.getElementById("wb-clock");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STATE_LABEL = {
    available: "Available", ringing: "Ringing", on_call: "On a call", wrap_up: "Wrap-up",
    paused: "Paused", logged_out: "Logged out",
  };
  // what a colour means, in words beside it (colour alone tells nothing to a colour-blind eye)
  const CUES = {
    wait: { bad: ["▲", "over target"], warn: ["◆", "near target"], ok: ["✓", "within target"] },
    sl: { bad: ["▼", "below target"], ok: ["✓", "target met"] },
  };
  let offset = 0; // local clock minus server clock, ms
  let link = "connecting"; // then "up" or "down"
  let snap = null;
  // "action interface" posts under way: their buttons say so (aria-disabled, not disabled: a
  // disabled button would drop the keyboard focus) and ignore a second press
  const pending = new Set();

  const serverNow = () => Date.now() - offset;
  const since = (iso) => (iso ? (serverNow() - Date.parse(iso)) / 1000 : null);

  function waitLevel(seconds, target) {
    if (seconds > target) return "bad";
    if (seconds > target / 2) return "warn";
    return "ok";
  }
  const slLevel = (v, target) => (v === null || v === undefined ? "" : v < target ? "bad" : "ok");

  function cue(kind, level) {
    const c = CUES[kind][level];
    if (!c) return null;
    return h("div", { class: "cue cue-" + level },
      h("span", { class: "cue-icon", "aria-hidden": "true" }, c[0]), " " + c[1]);
  }

  function tile(id, label, value, level, extra) {
    return h("div", { class: "tile" + (level ? " " + level : ""), "data-figure": id, key: id },
      h("div", { class: "tile-value" }, value),
      h("div", { class: "tile-label" }, label),
      extra || null);
  }

  function queueCard(q) {
    const now = q.now, today = q.today, hour = q.hour, tg = q.targets;
    // the oldest caller's wait, counted here between two snapshots
    const oldest = now.callers.length ? now.callers[0].joined_at : null;
    const longest = oldest ? since(oldest) : now.longest_wait_seconds;
    const lwLevel = waitLevel(longest, tg.max_wait_target_seconds);
    const slLvl = slLevel(today.service_level, tg.service_level_target);
    const tiles = h("div", { class: "tiles" },
      tile("waiting", "Waiting", fmt.count(now.waiting), now.waiting ? "warn" : ""),
      tile("longest_wait", "Longest wait now (target " + fmt.duration(tg.max_wait_target_seconds) + ")",
        fmt.duration(longest), lwLevel, cue("wait", lwLevel)),
      tile("service_level", "Service level today (target " + fmt.percent(tg.service_level_target) +
        " in " + tg.service_level_seconds + " s)", fmt.percent(today.service_level), slLvl, cue("sl", slLvl)),
      tile("offered", "Offered today", fmt.count(today.offered)),
      tile("answered", "Answered", fmt.count(today.answered)),
      tile("abandoned", "Abandoned (short)", fmt.count(today.abandoned) + " (" + fmt.count(today.short_abandoned) + ")"),
      // the queue gave up on the caller (its timeout): not in the abandon rate
      tile("timed_out", "Timed out", fmt.count(today.timed_out), today.timed_out ? "warn" : ""),
      tile("asa", "ASA", fmt.seconds(today.asa_seconds)),
      tile("aht", "AHT", fmt.seconds(today.aht_seconds)),
      tile("abandon_rate", "Abandon rate", fmt.percent(today.abandon_rate)));

    const hourText = "Last hour: offered " + fmt.count(hour.offered) + ", answered " + fmt.count(hour.answered) +
      ", abandoned " + fmt.count(hour.abandoned) + " (+" + fmt.count(hour.short_abandoned) + " short), timed out " +
      fmt.count(hour.timed_out) + ", service level " + fmt.percent(hour.service_level) + ", ASA " +
      fmt.seconds(hour.asa_seconds) + ", longest wait " + fmt.duration(hour.longest_wait_seconds) +
      ". Today's longest wait " + fmt.duration(today.longest_wait_seconds) + ".";

    const reasons = Object.entries(now.paused_by_reason || {});
    const counts = h("ul", { class: "agent-counts" },
      Object.keys(STATE_LABEL).map((state) => h("li", { class: "state-" + state, "data-state": state, key: state },
        h("strong", null, fmt.count(now.agents[state])), " " + STATE_LABEL[state])),
      reasons.length ? h("li", { class: "reasons", key: "reasons" },
        "Paused: " + reasons.map(([r, n]) => r + " " + n).join(", ")) : null);

    const callers = now.callers.length ? h("ol", { class: "callers", "aria-label": "Callers waiting", key: "callers" },
      now.callers.map((c) => h("li", { class: "caller" },
        h("span", { class: "caller-id" }, c.caller),
        h("span", { class: "ticker", "data-since": c.joined_at },
          fmt.duration(c.joined_at ? since(c.joined_at) : c.wait_seconds))))) : null;

    const rows = now.operators.map((op) => {
      let actions = [];
      if (op.state !== "logged_out") {
        const paused = op.state === "paused";
        const act = paused ? "unpause" : "pause";
        actions = [
          h("button", { type: "button", class: "small", "data-action": act, "data-interface": op.interface,
            "aria-disabled": pending.has(act + " " + op.interface) ? "true" : null, key: "pause" }, paused ? "Unpause" : "Pause"),
          h("button", { type: "button", class: "small secondary", "data-action": "logout",
            "data-interface": op.interface, "data-name": op.name,
            "aria-disabled": pending.has("logout " + op.interface) ? "true" : null, key: "logout" }, "Log out"),
        ];
      }
      return h("tr", { class: "op state-" + op.state, "data-interface": op.interface, key: op.interface },
        h("td", { class: "op-name" }, op.name),
        h("td", { class: "op-langs" }, (op.languages || []).join(", ")),
        h("td", { class: "op-state" }, STATE_LABEL[op.state] || op.state),
        h("td", { class: "ticker", "data-since": op.since || null },
          fmt.duration(op.since ? since(op.since) : op.seconds_in_state)),
        h("td", { class: "op-reason" }, op.reason),
        h("td", { class: "op-actions" }, actions));
    });
    const table = h("table", { class: "operators", key: "operators" },
      h("thead", null, h("tr", null, ["Operator", "Languages", "State", "Time in state", "Reason", ""]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows));

    return h("section", { class: "wb-queue", "data-queue": q.name, key: "q:" + q.name },
      h("h2", { key: "title" }, q.display_name),
      tiles,
      h("p", { class: "wb-hour", "data-figure": "hour", key: "hour" }, hourText),
      counts,
      callers,
      table);
  }

  function draw() {
    if (snap) {
      patch(root, snap.queues.length ? snap.queues.map(queueCard)
        : [h("p", { class: "muted", key: "empty" }, "No queues in this group yet.")]);
      root.dataset.updated = snap.at;
    }
    const stale = !!(snap && snap.stale);
    staleBadge.hidden = !(stale || link === "down");
    const text = stale ? (snap.stale_reason === "rebuilding" ? "STALE — rebuilding" : "STALE — Asterisk link down")
      : "STALE — no live updates";
    if (staleBadge.textContent !== text) staleBadge.textContent = text;
    const conn = { connecting: "connecting…", up: "live", down: "reconnecting…" }[link];
    if (connBadge.textContent !== conn) connBadge.textContent = conn;
    connBadge.classList.toggle("up", link === "up");
    clock.textContent = new Date(serverNow()).toLocaleTimeString();
  }

  function take(msg) {
    snap = msg;
    offset = Date.now() - Date.parse(msg.at);
    draw();
  }

  async function post(url, data) {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(data),
    });
    let body = {};
    try { body = await resp.json(); } catch (e) { body = { error: "HTTP " + resp.status }; }
    if (!resp.ok) throw new Error(body.error || "HTTP " + resp.status);
    return body;
  }

  root.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const status = document.getElementById("action-status");
    const { action, interface: iface } = btn.dataset;
    if (action === "logout" && !window.confirm("Log " + btn.dataset.name + " out of all queues?")) return;
    const job = action + " " + iface;
    if (pending.has(job)) return;
    pending.add(job);
    draw();
    try {
      await post("/wallboard/agents/" + action, {
        interface: iface,
        reason: document.getElementById("pause-reason").value,
      });
      status.textContent = action + " sent for " + iface;
    } catch (e) {
      status.textContent = "Not done: " + e.message;
    } finally {
      pending.delete(job);
      draw();
    }
  });

  document.getElementById("broadcast-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = document.getElementById("broadcast-text");
    const status = document.getElementById("broadcast-status");
    try {
      await post("/wallboard/broadcast", { text: input.value });
      status.textContent = "Sent.";
      input.value = "";
    } catch (e) {
      status.textContent = "Not sent: " + e.message;
    }
  });

  const initial = document.getElementById("initial-snapshot");
  if (initial) {
    try { take(JSON.parse(initial.textContent)); } catch (e) { /* the socket will bring one */ }
  }
  ccLive.socket("/wallboard/ws?group=" + encodeURIComponent(group), {
    open: () => { link = "up"; draw(); },
    message: (msg) => { if (msg.type === "snapshot") take(msg); },
    close: () => { link = "down"; draw(); },
  });
  setInterval(draw, 1000);

  // "cases at risk N, overdue M": the case store's count, refreshed every minute
  const caseCounts = document.getElementById("case-sla-counts");
  async function refreshCases() {
    let counts = null;
    try {
      const resp = await fetch("/wallboard/cases", { credentials: "same-origin" });
      if (resp.ok) counts = await resp.json();
    } catch (e) { /* shown as unavailable */ }
    if (!counts) {
      caseCounts.replaceChildren(el("span", "muted", "Case SLA counts unavailable."));
      return;
    }
    patch(caseCounts, [
      "Open cases now: ",
      h("span", { class: counts.at_risk ? "warn" : "" }, "cases at risk ", h("b", null, fmt.count(counts.at_risk))),
      ", ",
      h("span", { class: counts.overdue ? "bad" : "" }, "overdue ", h("b", null, fmt.count(counts.overdue))),
    ]);
  }
  if (caseCounts) setInterval(refreshCases, 60000);
})();
