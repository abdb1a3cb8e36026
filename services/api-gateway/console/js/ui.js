// ui.js - small DOM helpers shared by the pages: element building, tables, dialogs,
// error alerts (the EC2 code and message), announcements and polling.

// h("button", {class: "x", onclick: f}, "text", child...) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false)
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function announce(text) { document.getElementById("status").textContent = text; }

// An alert that stays until dismissed: for an API error, its code and message.
export function showError(err, what) {
  const alerts = document.getElementById("alerts");
  const close = h("button", { type: "button", class: "secondary", "aria-label": "Dismiss" }, "×");
  const box = h("div", { class: "alert", "data-code": err.code || "" },
    what ? h("strong", {}, what + ": ") : "", err.code ? h("span", { class: "code" }, err.code) : "",
    err.code ? " " : "", err.message || String(err), close);
  close.addEventListener("click", () => box.remove());
  alerts.append(box);
  return box;
}

export function showOk(text) {
  const box = h("div", { class: "alert ok" }, text);
  document.getElementById("alerts").append(box);
  setTimeout(() => box.remove(), 4000);
  announce(text);
}

// Run fn; on an error, the alert and the same refusal in place of the page's content
// (box), so a page that cannot be shown says why where it would be.
export async function orRefusal(box, what, fn) {
  try { return await fn(); } catch (e) {
    showError(e, what);
    box.replaceChildren(h("p", { class: "error-text" }, `${e.code}: ${e.message}`));
    return undefined;
  }
}

// Run an action, report its error; returns its result or undefined.
export async function attempt(what, fn) {
  try { return await fn(); } catch (e) { showError(e, what); return undefined; }
}

// columns: [{label, get(row) -> string|Node}]; opts.select(row) adds a radio per row.
export function table(caption, columns, rows, opts = {}) {
  const name = "sel-" + Math.random().toString(36).slice(2);
  const head = h("tr", {}, opts.select ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Select")) : null,
                 columns.map((c) => h("th", { scope: "col" }, c.label)));
  const body = rows.length ? rows.map((r) => {
    const tr = h("tr", { "data-id": opts.id ? opts.id(r) : "" });
    if (opts.select) {
      const radio = h("input", { type: "radio", name, "aria-label": "Select " + (opts.id ? opts.id(r) : ""),
                                 checked: Boolean(opts.selected && opts.id && opts.selected === opts.id(r)) });
      radio.addEventListener("change", () => {
        tr.parentElement.querySelectorAll("tr").forEach((x) => x.classList.remove("selected"));
        tr.classList.add("selected");
        opts.select(r);
      });
      if (radio.checked) tr.classList.add("selected");
      tr.append(h("td", {}, radio));
    }
    for (const c of columns) tr.append(h("td", {}, c.get(r) ?? ""));
    return tr;
  }) : [h("tr", {}, h("td", { colspan: columns.length + (opts.select ? 1 : 0), class: "muted" }, opts.empty || "None."))];
  // focusable and named: at phone width the table scrolls sideways by keyboard too
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {}, h("caption", { class: "sr-only" }, caption), h("thead", {}, head), h("tbody", {}, body)));
}

export const stateBadge = (s) => h("span", { class: "state state-" + s }, s);

export function tagsText(tagSet) {
  return (Array.isArray(tagSet) ? tagSet : []).map((t) => `${t.key}=${t.value}`).join(", ");
}

export function nameTag(tagSet) {
  return (Array.isArray(tagSet) ? tagSet : []).find((t) => t.key === "Name")?.value || "";
}

// A modal form: fields built by build(form); resolves with the FormData on submit,
// null on cancel. Escape closes it (native <dialog>).
export function formDialog(title, build, submitLabel = "Create") {
  return new Promise((resolve) => {
    const id = "dlg-" + Math.random().toString(36).slice(2);
    const form = h("form", { method: "dialog" });
    const dlg = h("dialog", { "aria-labelledby": id }, h("h2", { id }, title), form);
    build(form);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    form.append(h("div", { class: "toolbar" }, h("button", { type: "submit" }, submitLabel), cancel));
    let result = null;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); result = new FormData(form); dlg.close(); });
    cancel.addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function confirmDialog(text, label = "Confirm") {
  return formDialog(text, () => {}, label).then((r) => r !== null);
}

// A labelled field: field("Key name", h("input", {name: "KeyName", required: true}))
let fieldSeq = 0;
export function field(label, input, hint) {
  const id = input.id || (input.id = "f" + ++fieldSeq);
  const out = [h("label", { for: id }, label), input];
  if (hint) {
    const hid = id + "-hint";
    input.setAttribute("aria-describedby", hid);
    out.push(h("div", { id: hid, class: "field-hint" }, hint));
  }
  return out;
}

export function select(name, options, attrs = {}) {
  return h("select", { name, ...attrs }, options.map(([v, text]) => h("option", { value: v }, text)));
}

// Poll fn every ms while the page that started it is shown; returns stop().
let pollers = [];
export function poll(fn, ms) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { /* the page shows its own errors */ }
    if (!stopped) timer = setTimeout(tick, document.hidden ? ms * 4 : ms);
  };
  timer = setTimeout(tick, ms);
  const stop = () => { stopped = true; clearTimeout(timer); };
  pollers.push(stop);
  return stop;
}

export function stopPolling() { pollers.forEach((s) => s()); pollers = []; }

export function page(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, title), ...content);
  document.title = title + " – Virga console";
  return main;
}

export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/octet-stream" }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
