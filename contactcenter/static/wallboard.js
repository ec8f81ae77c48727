// The wallboard: renders the server's snapshots (websocket, at most one a second) and ticks the
// clocks in between. Every piece of data goes in with textContent, never innerHTML: caller IDs
// and names are attacker-controlled.
"use strict";

(function () {
  const root = document.getElementById("wb-queues");
  if (!root) return;
  const group = root.dataset.group || "";
  const staleBadge = document.getElementById("stale-badge");
  const connBadge = document.getElementById("conn-badge");
  const clock = document.getElementById("wb-clock");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STATE_LABEL = {
    available: "Available", ringing: "Ringing", on_call: "On a call", wrap_up: "Wrap-up",
    paused: "Paused", logged_out: "Logged out",
  };
  let offset = 0; // local clock minus server clock, ms
  let socketUp = false;
  let lastStale = false;
  const el = ccLive.el, duration = ccLive.duration;
  let lastReason = "";  // "rebuilding": events were dropped, recounting from the store

  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function secs(v) { return v === null || v === undefined ? "—" : Math.round(v) + " s"; }
  function serverNow() { return Date.now() - offset; }
  function since(iso) { return iso ? (serverNow() - Date.parse(iso)) / 1000 : null; }

  function tile(label, value, level, id) {
    const t = el("div", "tile" + (level ? " " + level : ""));
    t.appendChild(el("div", "tile-value", value));
    t.appendChild(el("div", "tile-label", label));
    if (id) t.dataset.figure = id;
    return t;
  }

  function waitLevel(seconds, target) {
    if (seconds > target) return "bad";
    if (seconds > target / 2) return "warn";
    return "ok";
  }
  function slLevel(v, target) {
    if (v === null || v === undefined) return "";
    return v < target ? "bad" : "ok";
  }

  function renderQueue(q) {
    const card = el("section", "wb-queue");
    card.dataset.queue = q.name;
    card.appendChild(el("h2", null, q.display_name));
    const now = q.now, today = q.today, hour = q.hour, tg = q.targets;
    const tiles = el("div", "tiles");
    tiles.appendChild(tile("Waiting", now.waiting, now.waiting ? "warn" : "", "waiting"));
    const lw = tile("Longest wait now", duration(now.longest_wait_seconds),
      waitLevel(now.longest_wait_seconds, tg.max_wait_target_seconds), "longest_wait");
    lw.dataset.oldest = now.callers.length ? now.callers[0].joined_at : "";
    lw.dataset.target = tg.max_wait_target_seconds;
    tiles.appendChild(lw);
    tiles.appendChild(tile("Service level today (target " + Math.round(tg.service_level_target * 100) +
      "% in " + tg.service_level_seconds + " s)", pct(today.service_level),
      slLevel(today.service_level, tg.service_level_target), "service_level"));
    tiles.appendChild(tile("Offered today", today.offered, "", "offered"));
    tiles.appendChild(tile("Answered", today.answered, "", "answered"));
    tiles.appendChild(tile("Abandoned (short)", today.abandoned + " (" + today.short_abandoned + ")", "", "abandoned"));
    // the queue gave up on the caller (its timeout): not in the abandon rate
    tiles.appendChild(tile("Timed out", today.timed_out, today.timed_out ? "warn" : "", "timed_out"));
    tiles.appendChild(tile("ASA", secs(today.asa_seconds), "", "asa"));
    tiles.appendChild(tile("AHT", secs(today.aht_seconds), "", "aht"));
    tiles.appendChild(tile("Abandon rate", pct(today.abandon_rate), "", "abandon_rate"));
    card.appendChild(tiles);

    const hr = el("p", "wb-hour");
    hr.textContent = "Last hour: offered " + hour.offered + ", answered " + hour.answered +
      ", abandoned " + hour.abandoned + " (+" + hour.short_abandoned + " short), timed out " +
      hour.timed_out + ", service level " +
      pct(hour.service_level) + ", ASA " + secs(hour.asa_seconds) + ", longest wait " +
      duration(hour.longest_wait_seconds) + ". Today's longest wait " + duration(today.longest_wait_seconds) + ".";
    hr.dataset.figure = "hour";
    card.appendChild(hr);

    const counts = el("ul", "agent-counts");
    for (const state of Object.keys(STATE_LABEL)) {
      const li = el("li", "state-" + state);
      li.appendChild(el("strong", null, now.agents[state]));
      li.appendChild(document.createTextNode(" " + STATE_LABEL[state]));
      li.dataset.state = state;
      counts.appendChild(li);
    }
    const reasons = Object.entries(now.paused_by_reason || {});
    if (reasons.length) {
      counts.appendChild(el("li", "reasons", "Paused: " + reasons.map(([r, n]) => r + " " + n).join(", ")));
    }
    card.appendChild(counts);

    if (now.callers.length) {
      const list = el("ol", "callers");
      list.setAttribute("aria-label", "Callers waiting");
      for (const c of now.callers) {
        const li = el("li", "caller");
        li.appendChild(el("span", "caller-id", c.caller));
        const w = el("span", "ticker", duration(c.wait_seconds));
        w.dataset.since = c.joined_at;
        li.appendChild(w);
        list.appendChild(li);
      }
      card.appendChild(list);
    }

    const table = el("table", "operators");
    const head = el("tr");
    for (const h of ["Operator", "Languages", "State", "Time in state", "Reason", ""]) head.appendChild(el("th", null, h));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const op of now.operators) {
      const tr = el("tr", "op state-" + op.state);
      tr.dataset.interface = op.interface;
      tr.appendChild(el("td", "op-name", op.name));
      tr.appendChild(el("td", "op-langs", (op.languages || []).join(", ")));
      tr.appendChild(el("td", "op-state", STATE_LABEL[op.state] || op.state));
      const t = el("td", "ticker", duration(op.seconds_in_state));
      if (op.since) t.dataset.since = op.since;
      tr.appendChild(t);
      tr.appendChild(el("td", "op-reason", op.reason));
      const actions = el("td", "op-actions");
      if (op.state !== "logged_out") {
        const paused = op.state === "paused";
        const b1 = el("button", "small", paused ? "Unpause" : "Pause");
        b1.type = "button";
        b1.dataset.action = paused ? "unpause" : "pause";
        b1.dataset.interface = op.interface;
        const b2 = el("button", "small secondary", "Log out");
        b2.type = "button";
        b2.dataset.action = "logout";
        b2.dataset.interface = op.interface;
        b2.dataset.name = op.name;
        actions.appendChild(b1);
        actions.appendChild(b2);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
    table.appendChild(body);
    card.appendChild(table);
    return card;
  }

  function render(snap) {
    offset = Date.now() - Date.parse(snap.at);
    lastStale = !!snap.stale;
    lastReason = snap.stale_reason || "";
    const frag = document.createDocumentFragment();
    for (const q of snap.queues) frag.appendChild(renderQueue(q));
    if (!snap.queues.length) frag.appendChild(el("p", "muted", "No queues in this group yet."));
    root.replaceChildren(frag);
    root.dataset.updated = snap.at;
    updateBadges();
  }

  function updateBadges() {
    staleBadge.hidden = !(lastStale || !socketUp);
    staleBadge.textContent = lastStale ? (lastReason === "rebuilding" ? "STALE — rebuilding" : "STALE — Asterisk link down") : "STALE — no live updates";
    connBadge.textContent = socketUp ? "live" : "reconnecting…";
    connBadge.classList.toggle("up", socketUp);
  }

  function tick() {
    for (const node of root.querySelectorAll(".ticker[data-since]")) {
      node.textContent = duration(since(node.dataset.since));
    }
    for (const node of root.querySelectorAll('[data-figure="longest_wait"]')) {
      if (!node.dataset.oldest) continue;
      const s = since(node.dataset.oldest);
      node.querySelector(".tile-value").textContent = duration(s);
      node.classList.remove("ok", "warn", "bad");
      node.classList.add(waitLevel(s, Number(node.dataset.target)));
    }
    clock.textContent = new Date(serverNow()).toLocaleTimeString();
  }

  function connect() {
    ccLive.socket("/wallboard/ws?group=" + encodeURIComponent(group), {
      open: function () { socketUp = true; updateBadges(); },
      message: function (msg) { if (msg.type === "snapshot") render(msg); },
      close: function (opened) {
        socketUp = false;
        updateBadges();
        if (!opened) {
          // refused at the handshake: signed out (or the session expired)? then sign in again
          fetch(location.pathname + location.search, { credentials: "same-origin", headers: { Accept: "text/html" } })
            .then(function (r) {
              if (r.status === 401 || (r.redirected && r.url.indexOf("/login") >= 0)) {
                location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
              }
            }).catch(function () { /* server down: keep retrying */ });
        }
      },
    });
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

  root.addEventListener("click", async function (ev) {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const status = document.getElementById("action-status");
    const action = btn.dataset.action;
    if (action === "logout" && !window.confirm("Log " + btn.dataset.name + " out of all queues?")) return;
    btn.disabled = true;
    try {
      await post("/wallboard/agents/" + action, {
        interface: btn.dataset.interface,
        reason: document.getElementById("pause-reason").value,
      });
      status.textContent = action + " sent for " + btn.dataset.interface;
    } catch (e) {
      status.textContent = "Not done: " + e.message;
    } finally {
      btn.disabled = false;
    }
  });

  document.getElementById("broadcast-form").addEventListener("submit", async function (ev) {
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
    try { render(JSON.parse(initial.textContent)); } catch (e) { /* the socket will bring one */ }
  }
  socketUp = false;
  updateBadges();
  staleBadge.hidden = !lastStale; // the first paint: only the server's word counts
  connect();
  setInterval(tick, 1000);
  tick();

  // "cases at risk N, overdue M": the case store's count, refreshed every minute
  const caseCounts = document.getElementById("case-sla-counts");
  async function refreshCases() {
    let counts = null;
    try {
      const resp = await fetch("/wallboard/cases", { credentials: "same-origin" });
      if (resp.ok) counts = await resp.json();
    } catch (e) { /* shown as unavailable */ }
    caseCounts.replaceChildren();
    if (!counts) {
      caseCounts.appendChild(el("span", "muted", "Case SLA counts unavailable."));
      return;
    }
    caseCounts.appendChild(document.createTextNode("Open cases now: "));
    const risk = el("span", counts.at_risk ? "warn" : "", "cases at risk ");
    risk.appendChild(el("b", "", counts.at_risk));
    const late = el("span", counts.overdue ? "bad" : "", "overdue ");
    late.appendChild(el("b", "", counts.overdue));
    caseCounts.append(risk, document.createTextNode(", "), late);
  }
  if (caseCounts) setInterval(refreshCases, 60000);
})();
