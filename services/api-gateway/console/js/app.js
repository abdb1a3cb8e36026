// app.js - login, the session, navigation (#/page) and the page table.
import * as api from "./api.js";
import { h, field, page, showError, stopPolling, announce } from "./ui.js";

// One row per page: the route and the module that draws it (loaded when first shown).
const pages = {
  "instances": () => import("./instances.js"),
  "keypairs": () => import("./keypairs.js"),
  "security-groups": () => import("./security_groups.js"),
  "images": () => import("./images.js"),
  "network": () => import("./network.js"),
  "storage": () => import("./storage.js"),
  "usage": () => import("./usage.js"),
  "operator": () => import("./operator.js"),
  "accounts": () => import("./accounts.js"),
  "services": () => import("./services.js"),
};

let who = null;

function showLogin(message) {
  who = null;
  stopPolling();
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("menu-toggle").hidden = true;
  document.getElementById("who").textContent = "";
  const err = h("p", { id: "login-error", class: "error-text", role: "alert" }, message || "");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to Virga"),
    field("Account id or alias", h("input", { name: "account", autocomplete: "organization", required: true })),
    field("User name", h("input", { name: "user", autocomplete: "username", required: true })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    err, h("button", { type: "submit" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      who = await api.login(f.get("account"), f.get("user"), f.get("password"));
      started();
    } catch (e) {
      err.textContent = `${e.code}: ${e.message}`;
      button.disabled = false;
      form.querySelector("input[name=password]").focus();
    }
  });
  document.getElementById("main").replaceChildren(form);
  document.title = "Log in – Virga console";
  form.querySelector("input").focus();
  performance.mark("virga-login-shown");   // tests/bench/bench_console.sh reads it
}

function started() {
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("menu-toggle").hidden = false;
  document.getElementById("who").textContent = `${who.user_name} @ ${who.account_name} (${who.account_id})`;
  for (const li of document.querySelectorAll("nav .operator")) li.hidden = !who.is_operator;
  if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/instances";
  else route();
}

async function route() {
  if (!who) return;
  stopPolling();
  const name = location.hash.replace(/^#\//, "").split("/")[0] || "instances";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#/" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const load = pages[name];
  if (!load) { page("Not found", h("p", {}, "No such page.")); return; }
  try {
    const mod = await load();
    await mod.show({ who });
    announce(document.title);
  } catch (e) {
    showError(e, "Loading the page");
  }
  if (window.matchMedia("(max-width: 700px)").matches) setMenu(false);
}

function setMenu(open) {
  document.getElementById("nav").classList.toggle("collapsed", !open);
  document.getElementById("menu-toggle").setAttribute("aria-expanded", String(open));
}

window.addEventListener("hashchange", route);
window.addEventListener("virga-session-ended", () => {
  if (who) showLogin("Your session has ended; log in again.");
});
document.getElementById("logout").addEventListener("click", async () => {
  try { await api.logout(); } catch (e) { /* ended already */ }
  showLogin("You have logged out.");
});
document.getElementById("menu-toggle").addEventListener("click", () => {
  setMenu(document.getElementById("nav").classList.contains("collapsed"));
});
if (window.matchMedia("(max-width: 700px)").matches) setMenu(false);

// Never logged in here (no virga_console flag cookie, set beside the HttpOnly session
// cookie): the login form at once, without asking the gateway about a session first.
if (!document.cookie.split("; ").includes("virga_console=1")) showLogin();
else api.session().then((w) => { who = w; started(); }, () => showLogin());
