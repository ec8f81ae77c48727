// What the live pages share (wallboard, TV wallboard, console, case page): the figure formats
// (the same rules as contactcenter/web/formats.py, the Jinja filters), a renderer that updates
// the page in place, and a websocket that reconnects with backoff (1 s doubling to 15 s).
// Nodes are built with textContent only: caller IDs and names are attacker-controlled.
"use strict";

window.ccLive = (() => {
  const NONE = "—";
  const SIGNED_OUT = 4401; // web/auth.py: the server closed the socket, the session is gone

  // --- figure formats: keep in step with contactcenter/web/formats.py --------------------------
  // Rounding is half up on a scaled value (floor(x * 10^d + 0.5)), the same double arithmetic
  // in Python and here, so both sides print the same digits for the same number.
  const missing = (v) => v === null || v === undefined || typeof v !== "number" || !isFinite(v);

  function fixed(v, digits) {
    const scale = 10 ** digits;
    const n = Math.floor(v * scale + 0.5);
    const sign = n < 0 ? "-" : "";
    const a = Math.abs(n);
    const whole = String(Math.floor(a / scale));
    if (!digits) return sign + whole;
    return sign + whole + "." + String(a % scale).padStart(digits, "0");
  }

  const fmt = {
    // a count of calls, callers, operators: a whole number
    count: (v) => (missing(v) ? NONE : fixed(v, 0)),
    // a ratio (0.5) as a percentage: "50.0%"; digits 0 where space is short (the TV)
    percent: (v, digits = 1) => (missing(v) ? NONE : fixed(v * 100, digits) + "%"),
    // an average in seconds (ASA, AHT): "14.5 s"
    seconds: (v, digits = 1) => (missing(v) ? NONE : fixed(v, digits) + " s"),
    // an elapsed time, whole seconds cut (a clock does not round up): "4:05", "1:02:03"
    duration: (v) => {
      if (missing(v)) return NONE;
      const s = Math.max(0, Math.floor(v));
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
      const ss = String(r).padStart(2, "0");
      return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
    },
  };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- the renderer ------------------------------------------------------------------------------
  // h() describes an element; patch() makes a parent's children match a list of descriptions by
  // changing the nodes already there (an attribute, a text) instead of building new ones, so a
  // focused button, a text selection and the scroll position survive each push. Siblings with a
  // `key` are matched by it (a queue card, an operator's row); others by position and tag. It
  // compares with the live DOM, not with the last description, so a node changed in between is
  // put right too. Text goes in as text nodes: never markup.
  function h(tag, props, ...children) {
    const kids = [];
    const add = (c) => {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) c.forEach(add);
      else kids.push(typeof c === "object" ? c : String(c));
    };
    add(children);
    return { tag: tag.toUpperCase(), props: props || {}, kids };
  }

  const absent = (value) => value === null || value === undefined || value === false;

  function setAttrs(node, props) {
    let count = 0;
    for (const name in props) {
      if (name === "key") continue;
      const value = props[name];
      if (absent(value)) {
        if (node.hasAttribute(name)) node.removeAttribute(name);
        continue;
      }
      count += 1;
      const v = value === true ? "" : String(value);
      if (node.getAttribute(name) !== v) node.setAttribute(name, v);
    }
    // more attributes than described: one was set before and is gone from the description
    const attrs = node.attributes;
    for (let i = attrs.length - 1; attrs.length > count && i >= 0; i -= 1) {
      if (absent(props[attrs[i].name])) node.removeAttribute(attrs[i].name);
    }
  }

  function create(v) {
    if (typeof v === "string") return document.createTextNode(v);
    const node = document.createElement(v.tag);
    if (v.props.key !== undefined) node.ccKey = String(v.props.key);
    setAttrs(node, v.props);
    patch(node, v.kids);
    return node;
  }

  function patch(parent, vkids) {
    const wanted = new Set();
    const keyed = new Map();
    for (const v of vkids) if (typeof v !== "string" && v.props.key !== undefined) wanted.add(String(v.props.key));
    if (wanted.size) for (const child of parent.childNodes) if (child.ccKey !== undefined) keyed.set(child.ccKey, child);
    let cursor = parent.firstChild;
    const skipGone = () => {
      // a keyed node that is no longer wanted goes now, so the next ones need not move
      while (cursor && cursor.ccKey !== undefined && !wanted.has(cursor.ccKey)) {
        const next = cursor.nextSibling;
        parent.removeChild(cursor);
        cursor = next;
      }
    };
    for (const v of vkids) {
      skipGone();
      let node = null;
      if (typeof v === "string") {
        if (cursor && cursor.nodeType === Node.TEXT_NODE) {
          node = cursor;
          if (node.data !== v) node.data = v;
        }
      } else {
        const key = v.props.key === undefined ? undefined : String(v.props.key);
        const found = key === undefined ? cursor : keyed.get(key);
        if (found && found.nodeName === v.tag && found.ccKey === key) {
          node = found;
          if (key !== undefined) keyed.delete(key);
          setAttrs(node, v.props);
          patch(node, v.kids);
        }
      }
      if (!node) node = create(v);
      if (node === cursor) cursor = cursor.nextSibling;
      else parent.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      parent.removeChild(cursor);
      cursor = next;
    }
  }

  // --- the socket ----------------------------------------------------------------------------------
  // Refused at the handshake, or closed because the session ended: if the page itself now sends
  // to the log-in form, go there (and come back here after).
  function recheckSignIn(signedOut) {
    const next = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    if (signedOut) {
      location.href = next;
      return;
    }
    fetch(location.pathname + location.search, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((r) => {
        if (r.status === 401 || (r.redirected && r.url.indexOf("/login") >= 0)) location.href = next;
      })
      .catch(() => { /* server down: keep retrying */ });
  }

  // path: e.g. "/wallboard/ws?group=x"; on.message(msg) gets each JSON message (others are
  // dropped); on.open() after each connect; on.close(opened) after each close, `opened` false
  // when the handshake was refused. It reconnects by itself and sends a signed-out page to the
  // log-in form. The handle's send(obj) says whether the message went out.
  function socket(path, on) {
    let retry = 1000;
    let ws = null;
    function connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(proto + "//" + location.host + path);
      let opened = false;
      ws.onopen = () => {
        opened = true;
        retry = 1000;
        if (on.open) on.open();
      };
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg && typeof msg === "object") on.message(msg);
      };
      ws.onclose = (ev) => {
        if (on.close) on.close(opened);
        if (!opened || ev.code === SIGNED_OUT) recheckSignIn(ev.code === SIGNED_OUT);
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      };
    }
    connect();
    return {
      send: (obj) => {
        if (!ws || ws.readyState !== WebSocket.OPEN) return false;
        ws.send(JSON.stringify(obj));
        return true;
      },
    };
  }

  return { el, h, patch, fmt, duration: fmt.duration, socket };
})();
