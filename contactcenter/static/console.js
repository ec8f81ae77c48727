// The operator console. Everything from the server is data: it is only ever put on the page with
// textContent (never innerHTML), because caller ID and case text are attacker-controlled. The
// socket is the shared one (ccLive.socket, static/live.js).
"use strict";

(() => {
  const root = document.getElementById("console");
  if (!root) return;
  const $ = (id) => document.getElementById(id);

  const STATE_LABELS = {
    logged_out: "Logged out", available: "Available", ringing: "Ringing", on_call: "On a call",
    wrapup: "Wrap-up", paused: "Paused", unavailable: "Phone unavailable",
  };
  // the store's one SLA definition (cases/sla.py), sent with each case of the pop
  const SLA_WORDS = { at_risk: "at risk", overdue: "overdue", paused: "waiting on citizen" };
  const CALL_LABELS = { ringing: "Ringing", connected: "Connected", wrapup: "Wrap-up", ended: "Call ended" };

  let sock = null;
  let refSeq = 0;
  let calls = {};          // call_id -> latest call message
  let currentId = null;    // the call shown
  let announced = null;    // the call whose caller the live region last announced
  let phoneControls = false;
  let state = { state: "logged_out" };
  let pauseLabels = {};
  let dispositionLabels = {};
  let formCall = null;     // the call the work forms were last prepared for

  // only a real change touches the page: an unchanged text is not re-announced, nor redrawn
  function text(el, value) {
    const v = value === null || value === undefined ? "" : String(value);
    if (el.textContent !== v) el.textContent = v;
  }

  function say(message, isError) {
    const el = $("message");
    el.textContent = message === null || message === undefined ? "" : String(message); // said again if repeated
    el.className = "message" + (isError ? " error" : "");
  }

  function send(msg) {
    refSeq += 1;
    msg.ref = String(refSeq);
    if (!sock || !sock.send(msg)) say("Not connected to the server; reconnecting…", true);
  }

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      text(td, c);
      tr.appendChild(td);
    }
    return tr;
  }

  const clear = (el) => el.replaceChildren();

  // a case number as a link to its case page (a new tab: the call stays on this one)
  function caseLink(number) {
    const a = document.createElement("a");
    a.href = "/cases/" + encodeURIComponent(number);
    a.target = "_blank";
    a.rel = "noopener";
    a.className = "case-link";
    text(a, number);
    return a;
  }

  // --- presence ---------------------------------------------------------------------------------

  function renderState() {
    const s = state.state || "logged_out";
    const badge = $("state");
    let label = STATE_LABELS[s] || s;
    if (s === "paused" && state.reason) label += " — " + (pauseLabels[state.reason] || state.reason);
    text(badge, label);
    badge.className = "badge state-" + s;
    let detail = "";
    if (state.queues && state.queues.length) {
      detail = "Queues: " + state.queues.map((q) => q.queue).join(", ");
    }
    if (s === "wrapup" && state.wrapup_until) {
      const left = Math.max(0, Math.round((new Date(state.wrapup_until) - Date.now()) / 1000));
      detail += (detail ? " · " : "") + "wrap-up ends in " + left + " s";
    }
    text($("state-detail"), detail);
    const loggedIn = s !== "logged_out";
    $("btn-login").disabled = loggedIn;
    $("btn-logout").disabled = !loggedIn || s === "on_call" || s === "ringing";
    $("btn-pause").disabled = !loggedIn;
    $("btn-ready").disabled = !(s === "paused" || s === "wrapup" || (state.queues || []).some((q) => q.paused));
  }

  // --- the call -----------------------------------------------------------------------------------

  function pickCurrent() {
    const ids = Object.keys(calls);
    if (!ids.length) return null;
    // the newest ringing or connected call first, else the newest one
    const live = ids.filter((id) => calls[id].status === "ringing" || calls[id].status === "connected");
    const pool = live.length ? live : ids;
    pool.sort((a, b) => String(calls[b].rang_at).localeCompare(String(calls[a].rang_at)));
    return pool[0];
  }

  // The caller's number and name sit in a polite live region: written (and so announced) when
  // another call is shown, never for a status or history update of the same call.
  function renderCaller(c) {
    const number = c.caller_number || "Unknown number";
    const name = c.caller_name || "";
    if (announced !== c.call_id) {
      announced = c.call_id;
      $("caller-number").textContent = number;
      $("caller-name").textContent = name;
    } else {
      text($("caller-number"), number);
      text($("caller-name"), name);
    }
  }

  function renderCall() {
    currentId = pickCurrent();
    const c = currentId ? calls[currentId] : null;
    $("no-call").hidden = !!c;
    $("call-body").hidden = !c;
    for (const id of ["btn-case", "btn-note", "btn-disposition"]) {
      $(id).disabled = !c || c.status === "ringing";
    }
    if (!c) {
      announced = null;
      return;
    }
    if (formCall !== c.call_id) prepareForms(c);
    const status = $("call-status");
    text(status, CALL_LABELS[c.status] || c.status);
    status.className = "badge status-" + c.status;
    renderCaller(c);
    text($("call-queue"), c.queue);
    text($("call-language"), c.language || "—");
    text($("call-service"), c.service || "—");
    text($("call-case"), c.case_number || "—");
    text($("call-path"), (c.ivr_path || []).join(" › ") || "—");
    $("phone-controls").hidden = !phoneControls || !(c.status === "ringing" || c.status === "connected");
    $("btn-answer").disabled = c.status !== "ringing";
    $("btn-hangup").disabled = !(c.status === "ringing" || c.status === "connected");
    text($("call-cases"), c.cases && c.cases.length ? "On this call: " + c.cases.join(", ") : "");
    if (c.disposition) $("disposition").value = c.disposition;

    const hist = c.history;
    $("history-loading").hidden = !!hist;
    const repeat = $("repeat");
    repeat.hidden = !(hist && hist.repeat);
    if (hist && hist.repeat) text(repeat, "Repeat caller: " + hist.recent_calls + " calls in 7 days");
    const casesBody = $("cases");
    const callsBody = $("calls");
    const list = $("open-case-numbers");
    clear(casesBody); clear(callsBody); clear(list);
    if (!hist) return;
    if (hist.error) {
      casesBody.appendChild(row([hist.error, "", "", "", ""]));
      return;
    }
    const cases = (hist.cases || []).slice();
    if (hist.keyed_case && !cases.some((x) => x.number === hist.keyed_case.number)) {
      cases.unshift(hist.keyed_case);
    }
    if (!cases.length) casesBody.appendChild(row(["No open cases", "", "", "", ""]));
    for (const k of cases) {
      const due = fmtTime(k.sla_due_at) + (SLA_WORDS[k.sla] ? " (" + SLA_WORDS[k.sla] + ")" : "");
      const tr = row(["", k.service, k.status, due, k.address || ""]);
      tr.firstChild.appendChild(caseLink(k.number));
      if (k.sla === "overdue" || k.sla === "at_risk") tr.classList.add("sla-" + k.sla);
      casesBody.appendChild(tr);
      const opt = document.createElement("option");
      opt.value = k.number;
      list.appendChild(opt);
    }
    if (cases.length && !$("note-case").value) $("note-case").value = cases[0].number;
    if (!(hist.calls || []).length) callsBody.appendChild(row(["No earlier calls", "", "", "", ""]));
    for (const k of hist.calls || []) {
      callsBody.appendChild(row([fmtTime(k.started_at), k.queue || "", k.outcome,
        dispositionLabels[k.disposition] || k.disposition || "", k.case_number || ""]));
    }
  }

  // A new call: empty forms, the service the caller chose in the IVR pre-selected.
  function prepareForms(c) {
    formCall = c.call_id;
    $("case-address").value = "";
    $("case-description").value = "";
    $("note-body").value = "";
    $("note-case").value = c.case_number || "";
    const select = $("case-service");
    if (c.service) {
      const i = [...select.options].findIndex((o) => o.value === c.service);
      if (i >= 0) select.selectedIndex = i;
    }
  }

  // --- messages from the server ---------------------------------------------------------------------

  function fillSelect(el, items) {
    clear(el);
    for (const it of items) {
      const opt = document.createElement("option");
      opt.value = it.code;
      text(opt, it.label);
      el.appendChild(opt);
    }
  }

  function showLink(words, down) {
    const el = $("link");
    text(el, words);
    el.className = down ? "link down" : "link muted";
  }

  const handlers = {
    hello: (m) => {
      phoneControls = !!m.phone_controls;
      const langs = (m.user && m.user.languages) || [];
      text($("languages"), langs.length ? "Languages: " + langs.join(", ") : "");
      pauseLabels = {};
      dispositionLabels = {};
      for (const r of m.pause_reasons) pauseLabels[r.code] = r.label;
      for (const r of m.dispositions) dispositionLabels[r.code] = r.label;
      fillSelect($("pause-reason"), m.pause_reasons);
      fillSelect($("disposition"), m.dispositions);
      calls = {};  // the server sends every call in progress next
      renderCall();
    },
    state: (m) => { state = m; renderState(); },
    call: (m) => { calls[m.call_id] = m; renderCall(); },
    "call.clear": (m) => {
      delete calls[m.call_id];
      renderCall();
      if (m.reason === "answered elsewhere") say("The call was answered by someone else.");
      if (m.reason === "abandoned") say("The caller hung up.");
    },
    link: (m) => {
      if (m.connected === false) showLink("Phone system disconnected", true);
      else if (m.connected === true) showLink("Phone system connected", false);
      else showLink("Connected", false);
    },
    broadcast: (m) => {
      const li = document.createElement("li");
      const who = document.createElement("strong");
      text(who, (m.sender || "Supervisor") + " (" + fmtTime(m.at) + "): ");
      li.appendChild(who);
      li.appendChild(document.createTextNode(m.text || ""));
      const ul = $("broadcast-list");
      ul.insertBefore(li, ul.firstChild);
    },
    notice: (m) => say(m.text),
    result: (m) => {
      if (m.ok) say(m.message); else say(m.error, true);
      if (m.ok && m.command === "create_case") {
        $("case-description").value = "";
        $("case-address").value = "";
        $("case-email").value = "";
      }
      if (m.ok && m.command === "add_note") $("note-body").value = "";
    },
    error: (m) => say("The server did not understand: " + m.error, true),
    pong: () => {},
  };

  // --- what the operator does ----------------------------------------------------------------------

  $("btn-login").addEventListener("click", () => send({ type: "login" }));
  $("btn-ready").addEventListener("click", () => send({ type: "ready" }));
  $("btn-logout").addEventListener("click", () => send({ type: "logout" }));
  $("btn-pause").addEventListener("click", () => send({ type: "pause", reason: $("pause-reason").value }));
  $("btn-answer").addEventListener("click", () => send({ type: "answer" }));
  $("btn-hangup").addEventListener("click", () => send({ type: "hangup" }));
  $("form-case").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!currentId) {
      say("No call to open a case for.", true);
      return;
    }
    send({ type: "create_case", call_id: currentId, service: $("case-service").value,
      address: $("case-address").value, description: $("case-description").value,
      email: $("case-email").value });
  });
  // Before a new case is opened: open cases of the same service at the same address in the
  // last 30 days, each with a button that links the caller to it instead (a note on it).
  let similarTimer = null;
  function similarItem(k, box) {
    const li = document.createElement("li");
    li.appendChild(caseLink(k.number));
    li.appendChild(document.createTextNode(" " + k.status + " · " + (k.address || "") +
      " · " + fmtTime(k.created_at) + " — " + (k.description || "")));
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary link-case";
    text(b, "Link caller to this case");
    b.addEventListener("click", () => {
      const body = $("case-description").value.trim() || "The caller reported this again.";
      const msg = { type: "add_note", case: k.number, body: "Caller reported it again: " + body };
      if (currentId) msg.call_id = currentId;
      send(msg);
      $("case-description").value = "";
      $("case-address").value = "";
      box.hidden = true;
    });
    li.appendChild(b);
    return li;
  }
  function checkSimilar() {
    const service = $("case-service").value, address = $("case-address").value.trim();
    const box = $("similar");
    if (!service || address.length < 3) {
      box.hidden = true;
      return;
    }
    fetch("/cases/similar?service=" + encodeURIComponent(service) + "&address=" +
          encodeURIComponent(address), { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { cases: [] }))
      .then((data) => {
        const found = data.cases || [];
        $("similar-list").replaceChildren(...found.map((k) => similarItem(k, box)));
        box.hidden = !found.length;
      })
      .catch(() => { box.hidden = true; });
  }
  function scheduleSimilar() {
    if (similarTimer) clearTimeout(similarTimer);
    similarTimer = setTimeout(checkSimilar, 400);
  }
  $("case-service").addEventListener("change", scheduleSimilar);
  $("case-address").addEventListener("input", scheduleSimilar);

  $("form-note").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const msg = { type: "add_note", case: $("note-case").value, body: $("note-body").value };
    if (currentId) msg.call_id = currentId;
    send(msg);
  });
  $("form-disposition").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!currentId) {
      say("No call to wrap up.", true);
      return;
    }
    send({ type: "disposition", call_id: currentId, disposition: $("disposition").value });
  });

  // an application-level ping, besides the server's heartbeat
  setInterval(() => { if (sock) sock.send({ type: "ping" }); }, 15000);
  setInterval(() => { if (state.state === "wrapup") renderState(); }, 1000);

  renderState();
  renderCall();
  sock = ccLive.socket(root.dataset.ws, {
    message: (m) => {
      const fn = handlers[m.type];
      if (fn) fn(m);
    },
    close: () => showLink("Disconnected — reconnecting…", true),
  });
})();
