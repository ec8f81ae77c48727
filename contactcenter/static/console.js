// The operator console. Everything from the server is data: it is only ever put on the page with
// textContent (never innerHTML), because caller ID and case text are attacker-controlled.
(function () {
  "use strict";

  var root = document.getElementById("console");
  if (!root) { return; }
  var $ = function (id) { return document.getElementById(id); };

  var STATE_LABELS = {
    logged_out: "Logged out", available: "Available", ringing: "Ringing", on_call: "On a call",
    wrapup: "Wrap-up", paused: "Paused", unavailable: "Phone unavailable"
  };
  // the store's one SLA definition (cases/sla.py), sent with each case of the pop
  var SLA_WORDS = { at_risk: "at risk", overdue: "overdue", paused: "waiting on citizen" };
  var CALL_LABELS = { ringing: "Ringing", connected: "Connected", wrapup: "Wrap-up", ended: "Call ended" };

  var ws = null;
  var backoff = 500;
  var refSeq = 0;
  var calls = {};          // call_id -> latest call message
  var currentId = null;    // the call shown
  var phoneControls = false;
  var state = { state: "logged_out" };
  var pauseLabels = {};
  var dispositionLabels = {};
  var formCall = null;     // the call the work forms were last prepared for

  function text(el, value) { el.textContent = value == null ? "" : String(value); }

  function say(message, isError) {
    var el = $("message");
    text(el, message);
    el.className = "message" + (isError ? " error" : "");
  }

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      say("Not connected to the server; reconnecting…", true);
      return;
    }
    refSeq += 1;
    msg.ref = String(refSeq);
    ws.send(JSON.stringify(msg));
  }

  function fmtTime(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso; }
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) {
      var td = document.createElement("td");
      text(td, c);
      tr.appendChild(td);
    });
    return tr;
  }

  function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }

  // a case number as a link to its case page (a new tab: the call stays on this one)
  function caseLink(number) {
    var a = document.createElement("a");
    a.href = "/cases/" + encodeURIComponent(number);
    a.target = "_blank";
    a.rel = "noopener";
    a.className = "case-link";
    text(a, number);
    return a;
  }

  // --- presence ---------------------------------------------------------------------------------

  function renderState() {
    var s = state.state || "logged_out";
    var badge = $("state");
    var label = STATE_LABELS[s] || s;
    if (s === "paused" && state.reason) { label += " — " + (pauseLabels[state.reason] || state.reason); }
    text(badge, label);
    badge.className = "badge state-" + s;
    var detail = "";
    if (state.queues && state.queues.length) {
      detail = "Queues: " + state.queues.map(function (q) { return q.queue; }).join(", ");
    }
    if (s === "wrapup" && state.wrapup_until) {
      var left = Math.max(0, Math.round((new Date(state.wrapup_until) - Date.now()) / 1000));
      detail += (detail ? " · " : "") + "wrap-up ends in " + left + " s";
    }
    text($("state-detail"), detail);
    var loggedIn = s !== "logged_out";
    $("btn-login").disabled = loggedIn;
    $("btn-logout").disabled = !loggedIn || s === "on_call" || s === "ringing";
    $("btn-pause").disabled = !loggedIn;
    $("btn-ready").disabled = !(s === "paused" || s === "wrapup" ||
      (state.queues || []).some(function (q) { return q.paused; }));
  }

  // --- the call -----------------------------------------------------------------------------------

  function pickCurrent() {
    var ids = Object.keys(calls);
    if (!ids.length) { return null; }
    // the newest ringing or connected call first, else the newest one
    var live = ids.filter(function (id) { return calls[id].status === "ringing" || calls[id].status === "connected"; });
    var pool = live.length ? live : ids;
    pool.sort(function (a, b) { return String(calls[b].rang_at).localeCompare(String(calls[a].rang_at)); });
    return pool[0];
  }

  function renderCall() {
    currentId = pickCurrent();
    var c = currentId ? calls[currentId] : null;
    $("no-call").hidden = !!c;
    $("call-body").hidden = !c;
    var workButtons = ["btn-case", "btn-note", "btn-disposition"];
    workButtons.forEach(function (id) { $(id).disabled = !c || c.status === "ringing"; });
    if (!c) { return; }
    if (formCall !== c.call_id) { prepareForms(c); }
    var status = $("call-status");
    text(status, CALL_LABELS[c.status] || c.status);
    status.className = "badge status-" + c.status;
    text($("caller-number"), c.caller_number || "Unknown number");
    text($("caller-name"), c.caller_name || "");
    text($("call-queue"), c.queue);
    text($("call-language"), c.language || "—");
    text($("call-service"), c.service || "—");
    text($("call-case"), c.case_number || "—");
    text($("call-path"), (c.ivr_path || []).join(" › ") || "—");
    $("phone-controls").hidden = !phoneControls || !(c.status === "ringing" || c.status === "connected");
    $("btn-answer").disabled = c.status !== "ringing";
    $("btn-hangup").disabled = !(c.status === "ringing" || c.status === "connected");
    text($("call-cases"), c.cases && c.cases.length ? "On this call: " + c.cases.join(", ") : "");
    if (c.disposition) {
      $("disposition").value = c.disposition;
    }

    var h = c.history;
    $("history-loading").hidden = !!h;
    var repeat = $("repeat");
    repeat.hidden = !(h && h.repeat);
    if (h && h.repeat) { text(repeat, "Repeat caller: " + h.recent_calls + " calls in 7 days"); }
    var casesBody = $("cases");
    var callsBody = $("calls");
    var list = $("open-case-numbers");
    clear(casesBody); clear(callsBody); clear(list);
    if (!h) { return; }
    if (h.error) {
      casesBody.appendChild(row([h.error, "", "", "", ""]));
      return;
    }
    var cases = (h.cases || []).slice();
    if (h.keyed_case && !cases.some(function (x) { return x.number === h.keyed_case.number; })) {
      cases.unshift(h.keyed_case);
    }
    if (!cases.length) { casesBody.appendChild(row(["No open cases", "", "", "", ""])); }
    cases.forEach(function (k) {
      var due = fmtTime(k.sla_due_at) + (SLA_WORDS[k.sla] ? " (" + SLA_WORDS[k.sla] + ")" : "");
      var tr = row(["", k.service, k.status, due, k.address || ""]);
      tr.firstChild.appendChild(caseLink(k.number));
      if (k.sla === "overdue" || k.sla === "at_risk") { tr.classList.add("sla-" + k.sla); }
      casesBody.appendChild(tr);
      var opt = document.createElement("option");
      opt.value = k.number;
      list.appendChild(opt);
    });
    if (cases.length && !$("note-case").value) { $("note-case").value = cases[0].number; }
    if (!(h.calls || []).length) { callsBody.appendChild(row(["No earlier calls", "", "", "", ""])); }
    (h.calls || []).forEach(function (k) {
      callsBody.appendChild(row([fmtTime(k.started_at), k.queue || "", k.outcome,
        dispositionLabels[k.disposition] || k.disposition || "", k.case_number || ""]));
    });
  }

  // A new call: empty forms, the service the caller chose in the IVR pre-selected.
  function prepareForms(c) {
    formCall = c.call_id;
    $("case-address").value = "";
    $("case-description").value = "";
    $("note-body").value = "";
    $("note-case").value = c.case_number || "";
    var select = $("case-service");
    if (c.service) {
      for (var i = 0; i < select.options.length; i += 1) {
        if (select.options[i].value === c.service) { select.selectedIndex = i; break; }
      }
    }
  }

  // --- messages from the server ---------------------------------------------------------------------

  function fillSelect(el, items) {
    clear(el);
    items.forEach(function (it) {
      var opt = document.createElement("option");
      opt.value = it.code;
      text(opt, it.label);
      el.appendChild(opt);
    });
  }

  var handlers = {
    hello: function (m) {
      phoneControls = !!m.phone_controls;
      var langs = (m.user && m.user.languages) || [];
      $("languages").textContent = langs.length ? "Languages: " + langs.join(", ") : "";
      pauseLabels = {}; dispositionLabels = {};
      m.pause_reasons.forEach(function (r) { pauseLabels[r.code] = r.label; });
      m.dispositions.forEach(function (r) { dispositionLabels[r.code] = r.label; });
      fillSelect($("pause-reason"), m.pause_reasons);
      fillSelect($("disposition"), m.dispositions);
      calls = {};  // the server sends every call in progress next
      renderCall();
    },
    state: function (m) { state = m; renderState(); },
    call: function (m) { calls[m.call_id] = m; renderCall(); },
    "call.clear": function (m) {
      delete calls[m.call_id];
      renderCall();
      if (m.reason === "answered elsewhere") { say("The call was answered by someone else."); }
      if (m.reason === "abandoned") { say("The caller hung up."); }
    },
    link: function (m) {
      var el = $("link");
      if (m.connected === false) { text(el, "Phone system disconnected"); el.className = "link down"; }
      else if (m.connected === true) { text(el, "Phone system connected"); el.className = "link muted"; }
      else { text(el, "Connected"); el.className = "link muted"; }
    },
    broadcast: function (m) {
      var li = document.createElement("li");
      var who = document.createElement("strong");
      text(who, (m.sender || "Supervisor") + " (" + fmtTime(m.at) + "): ");
      li.appendChild(who);
      li.appendChild(document.createTextNode(m.text || ""));
      var ul = $("broadcast-list");
      ul.insertBefore(li, ul.firstChild);
    },
    notice: function (m) { say(m.text); },
    result: function (m) {
      if (m.ok) { say(m.message); } else { say(m.error, true); }
      if (m.ok && m.command === "create_case") { $("case-description").value = ""; $("case-address").value = ""; $("case-email").value = ""; }
      if (m.ok && m.command === "add_note") { $("note-body").value = ""; }
    },
    error: function (m) { say("The server did not understand: " + m.error, true); },
    pong: function () {}
  };

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.ws;
    var opened = false;
    ws = new WebSocket(url);
    ws.onopen = function () { opened = true; backoff = 500; };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      var fn = handlers[m && m.type];
      if (fn) { fn(m); }
    };
    ws.onclose = function () {
      var el = $("link");
      text(el, "Disconnected — reconnecting…");
      el.className = "link down";
      if (!opened) {
        // refused at the handshake: signed out (or the session expired)? then sign in again
        fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (r) {
            if (r.status === 401 || (r.redirected && r.url.indexOf("/login") >= 0)) {
              location.href = "/login?next=" + encodeURIComponent(location.pathname);
            }
          }).catch(function () { /* server down: keep retrying */ });
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  // --- what the operator does ----------------------------------------------------------------------

  $("btn-login").addEventListener("click", function () { send({ type: "login" }); });
  $("btn-ready").addEventListener("click", function () { send({ type: "ready" }); });
  $("btn-logout").addEventListener("click", function () { send({ type: "logout" }); });
  $("btn-pause").addEventListener("click", function () {
    send({ type: "pause", reason: $("pause-reason").value });
  });
  $("btn-answer").addEventListener("click", function () { send({ type: "answer" }); });
  $("btn-hangup").addEventListener("click", function () { send({ type: "hangup" }); });
  $("form-case").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!currentId) { say("No call to open a case for.", true); return; }
    send({ type: "create_case", call_id: currentId, service: $("case-service").value,
      address: $("case-address").value, description: $("case-description").value,
      email: $("case-email").value });
  });
  // Before a new case is opened: open cases of the same service at the same address in the
  // last 30 days, each with a button that links the caller to it instead (a note on it).
  var similarTimer = null;
  function checkSimilar() {
    var service = $("case-service").value, address = $("case-address").value.trim();
    var box = $("similar");
    if (!service || address.length < 3) { box.hidden = true; return; }
    fetch("/cases/similar?service=" + encodeURIComponent(service) + "&address=" +
          encodeURIComponent(address), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { cases: [] }; })
      .then(function (data) {
        var list = $("similar-list");
        clear(list);
        (data.cases || []).forEach(function (k) {
          var li = document.createElement("li");
          li.appendChild(caseLink(k.number));
          li.appendChild(document.createTextNode(" " + k.status + " · " + (k.address || "") +
            " · " + fmtTime(k.created_at) + " — " + (k.description || "")));
          var b = document.createElement("button");
          b.type = "button";
          b.className = "secondary link-case";
          text(b, "Link caller to this case");
          b.addEventListener("click", function () {
            var body = $("case-description").value.trim() || "The caller reported this again.";
            var msg = { type: "add_note", case: k.number, body: "Caller reported it again: " + body };
            if (currentId) { msg.call_id = currentId; }
            send(msg);
            $("case-description").value = "";
            $("case-address").value = "";
            box.hidden = true;
          });
          li.appendChild(b);
          list.appendChild(li);
        });
        box.hidden = !(data.cases || []).length;
      }).catch(function () { box.hidden = true; });
  }
  function scheduleSimilar() {
    if (similarTimer) { clearTimeout(similarTimer); }
    similarTimer = setTimeout(checkSimilar, 400);
  }
  $("case-service").addEventListener("change", scheduleSimilar);
  $("case-address").addEventListener("input", scheduleSimilar);

  $("form-note").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var msg = { type: "add_note", case: $("note-case").value, body: $("note-body").value };
    if (currentId) { msg.call_id = currentId; }
    send(msg);
  });
  $("form-disposition").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!currentId) { say("No call to wrap up.", true); return; }
    send({ type: "disposition", call_id: currentId, disposition: $("disposition").value });
  });

  setInterval(function () {  // an application-level ping, besides the server's heartbeat
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "ping" })); }
  }, 15000);
  setInterval(function () { if (state.state === "wrapup") { renderState(); } }, 1000);

  renderState();
  renderCall();
  connect();
}());
