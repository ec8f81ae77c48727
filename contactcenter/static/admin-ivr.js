// The IVR editor and preview: small progressive enhancements; every page works without them.
"use strict";

(() => {
  // Option forms: show only the fields the chosen action uses.
  function syncOptionForm(form) {
    const select = form.querySelector("select.action-select");
    if (!select) return;
    form.querySelectorAll(".for-action").forEach((box) => {
      const wanted = (box.dataset.actions || "").split(" ");
      box.hidden = wanted.indexOf(select.value) === -1;
    });
  }
  document.querySelectorAll("form.option-form").forEach((form) => {
    syncOptionForm(form);
    const select = form.querySelector("select.action-select");
    if (select) select.addEventListener("change", () => syncOptionForm(form));
  });

  // Recordings: sent as the file itself (the CSRF token in a header), so a recording larger
  // than a form may carry (2 MB) still arrives; the server converts it or says why not.
  const csrf = document.querySelector('meta[name="csrf-token"]');
  document.querySelectorAll("form.recording-form").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      const input = form.querySelector('input[type="file"]');
      const file = input && input.files && input.files[0];
      if (!file || !csrf || !window.fetch) return;  // the plain form post
      ev.preventDefault();
      const status = form.querySelector(".upload-status");
      if (status) status.textContent = "Uploading and converting…";
      fetch(form.action, {
        method: "POST", body: file, credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf.content,
                  "Content-Type": file.type || "application/octet-stream",
                  "X-Filename": encodeURIComponent(file.name)},
      }).then((resp) => {
        if (resp.ok && resp.redirected) { window.location.assign(resp.url); return null; }
        return resp.text().then((html) => {
          const page = new DOMParser().parseFromString(html, "text/html");
          const err = page.getElementById("page-error");
          if (status) status.textContent = err ? err.textContent : "Upload failed (" + resp.status + ").";
        });
      }).catch(() => {
        if (status) status.textContent = "Upload failed: the server could not be reached.";
      });
    });
  });

  // Destructive buttons ask first.
  document.querySelectorAll("form.confirm").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm || "Are you sure?")) ev.preventDefault();
    });
  });

  // Preview: the computer keyboard is the phone's keypad.
  const keypad = document.getElementById("keypad-form");
  if (keypad) {
    document.addEventListener("keydown", (ev) => {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const target = ev.target;
      if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
      let key = ev.key;
      if (key === "Enter" && target && (target.tagName === "BUTTON" || target.tagName === "A")) return;
      if (key === "Enter") key = "t";
      if (!/^([0-9*#tr]|Backspace)$/.test(key)) return;
      const el = document.querySelector('[data-key="' + key + '"]');
      if (!el || el.disabled) return;
      ev.preventDefault();
      el.click();
    });
  }
})();
