// console_e2e.mjs - drives the web console in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core) for tests/e2e/test_console.py. One scenario per run:
//   node console_e2e.mjs '{"scenario": "...", "url": "http://127.0.0.1:N", ...}'
// or many, one Chromium for all of them (a launch costs seconds of CPU on a loaded machine):
//   node console_e2e.mjs --serve    one scenario's JSON config a line on stdin; after each,
//                                   a line {"done": EXIT-CODE, "out": OBSERVATIONS}
// Each scenario gets a browser context of its own (cookies, storage, pages), closed after
// it, so a scenario sees nothing of the one before.
// It acts as a person would (labels, buttons, the keyboard where it matters), throws on
// what a person would see go wrong, and prints one JSON line of observations that the
// Python side checks against the cloud with boto3.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { createInterface } from "node:readline";

// The scenario being run: its config and its observations (set by configure()).
let cfg = {};
let out = {};
let shots = "";
let BOOT_MS = 0;
function configure(c) {
  cfg = c;
  out = {};
  shots = cfg.artefacts;
  if (shots) mkdirSync(shots, { recursive: true });
  BOOT_MS = (cfg.boot_s || 240) * 1000;
}
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function check(cond, what) { if (!cond) throw new Error(what); }

async function shot(page, name) {
  if (shots) await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
}

async function login(page, account, user, password) {
  await page.goto(cfg.url + "/console/");
  await page.getByLabel("Account id or alias").fill(account);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Instances", level: 1 }).waitFor();
}

async function axe(page, name) {
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  out.axe = out.axe || {};
  out.axe[name] = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join("; ")}`);
}

// The row of an instance and its state cell's text.
const stateOf = (page, iid) => page.locator(`tr[data-id="${iid}"] .state`).textContent({ timeout: 5000 }).catch(() => "");

async function waitState(page, iid, want, ms = BOOT_MS) {
  const until = Date.now() + ms;
  let s = "";
  while (Date.now() < until) {
    s = await stateOf(page, iid);
    if (s === want) return;
    await page.waitForTimeout(500);
  }
  throw new Error(`${iid} did not show ${want} in the list (last: ${s})`);
}

async function alertCode(page) {
  const a = page.locator(".alert[data-code]").last();
  await a.waitFor({ timeout: 15000 });
  return { code: await a.getAttribute("data-code"), text: await a.textContent() };
}

// Log in, open the launch wizard, choose the image and type.
async function launchWizard(page) {
  await login(page, cfg.account, cfg.user, cfg.password);
  await page.getByRole("button", { name: "Launch instance" }).click();
  const dlg = page.getByRole("dialog", { name: "Launch an instance" });
  await dlg.getByLabel("Image").selectOption(cfg.image);
  await dlg.getByLabel("Instance type").selectOption(cfg.instance_type || "t3.nano");
  return dlg;
}

// Log in and open a page by its link in the menu.
async function openPage(page, link, title = link) {
  await login(page, cfg.account, cfg.user, cfg.password);
  await page.getByRole("link", { name: link }).click();
  await page.getByRole("heading", { name: title, level: 1 }).waitFor();
}

// The rows of the table named region, once its column col has drawn; and their cells' text.
async function tableRows(page, region, col = 1) {
  const rows = page.getByRole("region", { name: region }).locator("tbody tr");
  await rows.first().locator("td").nth(col).waitFor();
  return rows;
}
const cellsOf = (rows, from = 0) => rows.evaluateAll((trs, f) => trs.map((tr) => Array.from(tr.cells).slice(f).map((c) => c.textContent)), from);

const scenarios = {
  // Every page, its screenshot (wide and phone width) and an axe-core check.
  async pages(page) {
    await page.goto(cfg.url + "/console/");
    await page.getByLabel("Account id or alias").waitFor();
    await shot(page, "login");
    await axe(page, "login");
    await login(page, cfg.account, cfg.user, cfg.password);
    for (const [hash, title] of [["instances", "Instances"], ["keypairs", "Key pairs"], ["security-groups", "Security groups"],
                                 ["images", "Images"], ["network", "VPCs, subnets and addresses"], ["storage", "Object store"],
                                 ["usage", "Usage and cost"]]) {
      await page.getByRole("link", { name: new RegExp("^" + title.split(",")[0]) }).click();
      await page.getByRole("heading", { name: title, level: 1 }).waitFor();
      // a hash change is no load: networkidle was reached long before, so wait for the
      // page's own content (its "Loading…" replaced) before looking for error alerts
      await page.waitForFunction(() => !document.querySelector("main")?.innerText.includes("Loading…"), null,
                                 { timeout: 30000 });
      check(await page.locator(".alert[data-code]").count() === 0, `${title}: ${await page.locator(".alert").allTextContents()}`);
      if (hash === "usage")   // the test cloud loads no price list: said as a note, not an error
        check(await page.locator("[data-state=no-price-list]").count() === 1, "usage: no note that no price list is loaded");
      await shot(page, hash);
      await axe(page, hash);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(cfg.url + "/console/#/instances");
    await page.getByRole("heading", { name: "Instances", level: 1 }).waitFor();
    await shot(page, "instances-phone");
    await axe(page, "instances-phone");
    // the menu opens from the keyboard at phone width
    await page.getByRole("button", { name: "Menu" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: "Key pairs" }).waitFor();
    out.pages = "ok";
  },

  // Launch from the wizard, watch it reach running, read its console, stop, terminate.
  async instance(page) {
    const dlg = await launchWizard(page);
    const name = cfg.name || "console-e2e-" + Date.now().toString(36);   // this launch's row, not an earlier one's
    out.name = name;
    await dlg.getByLabel("Name tag").fill(name);
    if (cfg.user_data) await dlg.getByLabel("User data").fill(cfg.user_data);
    await shot(page, "launch-wizard");
    const t0 = Date.now();
    await dlg.getByRole("button", { name: "Launch" }).click();
    const row = page.locator("tr[data-id^='i-']", { hasText: name }).first();
    await row.waitFor({ timeout: 30000 });
    const iid = await row.getAttribute("data-id");
    out.instance_id = iid;
    await waitState(page, iid, "running");
    out.launch_to_running_ms = Date.now() - t0;
    await shot(page, "instance-running");
    // the console output refreshes by itself: wait for the expected text without reloading
    const con = page.getByLabel("Console output");
    const until = Date.now() + BOOT_MS;
    while (!((await con.textContent()) || "").includes(cfg.console_needle)) {
      check(Date.now() < until, `console never showed ${cfg.console_needle}: ${await con.textContent()}`);
      await page.waitForTimeout(1000);
    }
    out.console_tail = ((await con.textContent()) || "").slice(-400);
    await shot(page, "instance-console");
    await page.getByRole("button", { name: "Stop", exact: true }).click();
    await waitState(page, iid, "stopped");
    out.stopped = true;
    await page.getByRole("button", { name: "Terminate" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Terminate" }).click();
    await waitState(page, iid, "terminated");
    out.terminated = true;
  },

  // Add an inbound rule to a group in the rules editor, then remove it.
  async sg_rule(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    await page.getByRole("link", { name: "Security groups" }).click();
    await page.getByRole("radio", { name: "Select " + cfg.group_id }).check();
    await page.getByRole("button", { name: "Add inbound rule" }).click();
    const dlg = page.getByRole("dialog");
    await dlg.getByLabel("Protocol").selectOption("tcp");
    await dlg.getByLabel("From port").fill("8080");
    await dlg.getByLabel("To port").fill("8081");
    await dlg.getByLabel("Source CIDR").fill("10.9.0.0/16");
    await dlg.getByRole("button", { name: "Add rule" }).click();
    const remove = page.getByRole("button", { name: "Remove inbound rule tcp 8080-8081 10.9.0.0/16" });
    await remove.waitFor();
    await shot(page, "security-group-rules");
    out.added = true;
    if (cfg.pause_file) {   // the Python side checks the cloud between the two halves
      console.log(JSON.stringify({ ...out, paused: true }));
      while (readFileSafe(cfg.pause_file) !== "go") await page.waitForTimeout(200);
    }
    await remove.click();
    await remove.waitFor({ state: "detached" });
    out.removed = true;
  },

  // The operator's Hosts page: every host of the registry with its capacity and health.
  async operator(page) {
    await openPage(page, "Operator");
    out.hosts = await cellsOf(await tableRows(page, "Hosts"));
    await shot(page, "operator");
    await axe(page, "operator");
  },

  // The operator's accounts page: every account listed; one account's quota changed in
  // the quota editor (then the tenant's launch past it is refused: launch_refused).
  async operator_quota(page) {
    await openPage(page, "Accounts and quotas");
    out.accounts = await cellsOf(await tableRows(page, "Accounts"), 1);
    await page.getByRole("radio", { name: "Select " + cfg.tenant_account }).check();
    const quotas = page.getByRole("region", { name: "Quotas of " + cfg.tenant_account });
    await quotas.waitFor();
    const cell = quotas.locator(`tr[data-id="${cfg.quota_resource}"] td`).nth(1);
    out.quota_before = await cell.textContent();
    await page.getByRole("button", { name: `Change ${cfg.quota_label} quota` }).click();
    const dlg = page.getByRole("dialog", { name: `Change the ${cfg.quota_label} quota of ${cfg.tenant_account}` });
    await shot(page, "quota-editor");
    await dlg.getByLabel("Limit").fill(String(cfg.quota_value));
    await dlg.getByRole("button", { name: "Save" }).click();
    await page.getByText(`${cfg.quota_label} quota of ${cfg.tenant_account} is now ${cfg.quota_value}`).first().waitFor();
    out.quota_after = await cell.textContent();
    await shot(page, "accounts");
    await axe(page, "accounts");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "accounts-phone");
    await axe(page, "accounts-phone");
  },

  // A tenant launches from the wizard past its quota: the refusal's EC2 code is shown.
  async launch_refused(page) {
    const dlg = await launchWizard(page);
    await dlg.getByRole("button", { name: "Launch" }).click();
    Object.assign(out, await alertCode(page));
    await shot(page, "launch-over-quota");
  },

  // The operator's service health: every service up; then (the Python side stops one
  // between the halves) that one shown down, by the page's own refresh.
  async services(page) {
    await openPage(page, "Service health");
    const rows = await tableRows(page, "Services", 2);
    const read = () => cellsOf(rows);
    out.before = await read();
    await shot(page, "services");
    await axe(page, "services");
    await page.setViewportSize({ width: 390, height: 844 });
    await axe(page, "services-phone");
    await shot(page, "services-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
    if (!cfg.pause_file) return;
    console.log(JSON.stringify({ ...out, paused: true }));
    while (readFileSafe(cfg.pause_file) !== "go") await page.waitForTimeout(200);
    const state = page.getByRole("region", { name: "Services" }).locator(`tr[data-id="${cfg.down_service}"] td`).nth(2);
    const until = Date.now() + 90000;
    while ((await state.textContent({ timeout: 15000 }).catch(() => "")) !== "down") {
      check(Date.now() < until, `${cfg.down_service} never shown down: ${JSON.stringify(await read())}`);
      await page.getByRole("button", { name: "Check now" }).click();
      await page.waitForTimeout(2000);
    }
    out.after = await read();
    await shot(page, "services-down");
  },

  // A tenant opens the operator's pages by their address: the gateway's refusal shows.
  async operator_refused(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    out.operator_links = await page.locator("nav .operator:not([hidden])").count();
    for (const [hash, title] of [["accounts", "Accounts and quotas"], ["services", "Service health"]]) {
      await page.goto(`${cfg.url}/console/#/${hash}`);
      await page.getByRole("heading", { name: title, level: 1 }).waitFor();
      out[hash] = await alertCode(page);
      out[hash].page_text = await page.locator("main .error-text").textContent();
      await shot(page, hash + "-refused");
      await page.locator(".alert[data-code]").getByRole("button", { name: "Dismiss" }).click();
    }
  },

  // A user whose policy allows only Describe*: creating a key pair shows the refusal.
  async refused(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    await page.getByRole("link", { name: "Key pairs" }).click();
    await page.getByRole("button", { name: "Create key pair" }).click();
    await page.getByRole("dialog").getByLabel("Name").fill(cfg.key_name);
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    Object.assign(out, await alertCode(page));
    await shot(page, "refused");
  },

  // A page on another origin posts a form at the console API, and a same-origin script
  // without the CSRF token tries too: both refused.
  async csrf(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    const evil = createServer((req, res) => {
      res.setHeader("Content-Type", "text/html");
      res.end(`<form id=f method=POST action="${cfg.url}/console/api/ec2">
        <input name=Action value=CreateKeyPair><input name=KeyName value="${cfg.key_name}">
        <input name=Version value=2016-11-15></form><script>document.getElementById("f").submit()</script>`);
    });
    await new Promise((r) => evil.listen(0, "127.0.0.1", r));
    const forged = await page.context().newPage();
    const resp = await forged.goto(`http://127.0.0.1:${evil.address().port}/`);
    await forged.waitForURL(/console\/api\/ec2/, { timeout: 10000 });
    out.forged_body = await forged.content();
    evil.close();
    // same origin, session cookie, no token
    out.no_token = await page.evaluate(async () => {
      const r = await fetch("/console/api/ec2", { method: "POST", body: new URLSearchParams(
        { Action: "CreateKeyPair", KeyName: "no-token-key", Version: "2016-11-15" }) });
      return { status: r.status, body: await r.text() };
    });
    check(resp !== undefined, "the forged page did not load");
  },

  // Revoked (virgadm) or expired: the console goes back to the login page and says so.
  async session_end(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    console.log(JSON.stringify({ logged_in: true }));
    const msg = page.getByText("Your session has ended; log in again.");
    await msg.waitFor({ timeout: (cfg.wait_s || 60) * 1000 });
    await shot(page, "session-ended-" + (cfg.tag || "x"));
    out.back_at_login = await page.getByLabel("Password").isVisible();
    // and the cookie it had opens nothing any more
    out.session_status = await page.evaluate(async () => (await fetch("/console/api/session")).status);
  },

  // Upload a file with the browser, download it back, delete it.
  async storage(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    await page.goto(`${cfg.url}/console/#/storage/${cfg.bucket}`);
    await page.getByRole("heading", { name: `Bucket ${cfg.bucket}` }).waitFor();
    await page.getByLabel("Upload files").setInputFiles(cfg.file);   // named cfg.key
    await page.getByText("Uploaded " + cfg.key).waitFor({ timeout: (cfg.upload_s || 30) * 1000 });
    await page.getByRole("link", { name: "Download " + cfg.key }).waitFor();
    await shot(page, "storage");
    await axe(page, "storage-bucket");
    const [dl] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download " + cfg.key }).click()]);
    const chunks = [];
    for await (const c of await dl.createReadStream()) chunks.push(c);
    const got = Buffer.concat(chunks);
    out.downloaded_sha256 = createHash("sha256").update(got).digest("hex");
    out.downloaded_bytes = got.length;
    if (cfg.pause_file) {
      console.log(JSON.stringify({ ...out, paused: true }));
      while (readFileSafe(cfg.pause_file) !== "go") await page.waitForTimeout(200);
    }
    await page.getByRole("button", { name: "Delete " + cfg.key }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete " + cfg.key }).waitFor({ state: "detached" });
    out.deleted = true;
  },

  // An upload in parts cancelled midway: the console says so (the Python side checks
  // that the object store kept neither the object nor the upload's parts).
  async upload_cancel(page) {
    await login(page, cfg.account, cfg.user, cfg.password);
    await page.goto(`${cfg.url}/console/#/storage/${cfg.bucket}`);
    await page.getByRole("heading", { name: `Bucket ${cfg.bucket}` }).waitFor();
    await page.getByLabel("Upload files").setInputFiles(cfg.file);
    const bar = page.getByRole("progressbar", { name: "Uploading " + cfg.key });
    const until = Date.now() + 120000;
    // past the first part: the upload exists in the store, with a part in it
    while (Number(await bar.getAttribute("value").catch(() => "0")) < 0.2) {
      check(Date.now() < until, "the upload never got past its first part");
      await page.waitForTimeout(100);
    }
    await shot(page, "upload-progress");
    await page.getByRole("button", { name: "Cancel uploading " + cfg.key }).click();
    await page.getByText("Cancelled " + cfg.key).waitFor({ timeout: 60000 });
    out.cancelled = true;
  },

  // First page load: wall time to the login form and bytes on the wire (tests/bench).
  async first_load(page, cdp) {
    await page.goto("about:blank");   // the renderer is up: its start is not the console's
    let bytes = 0;
    cdp.on("Network.loadingFinished", (ev) => { bytes += ev.encodedDataLength; });
    const t0 = Date.now();
    await page.goto(cfg.url + "/console/");
    await page.getByLabel("Account id or alias").waitFor();
    out.first_load_ms = Date.now() - t0;
    await page.waitForLoadState("networkidle");
    out.first_load_bytes = bytes;
    const nav = await page.evaluate(() => JSON.stringify(performance.getEntriesByType("navigation")[0]));
    out.dom_content_loaded_ms = JSON.parse(nav).domContentLoadedEventEnd;
    // from the navigation's start to the login form in the page, by the page's own clock
    out.login_shown_ms = await page.evaluate(() => performance.getEntriesByName("virga-login-shown")[0]?.startTime);
  },
};

function readFileSafe(p) { try { return readFileSync(p, "utf8").trim(); } catch { return ""; } }

const launch = () => chromium.launch({ executablePath: cfg.chromium || "/usr/bin/chromium", args: ["--no-sandbox"] });

// The scenario of cfg in a new context of browser, closed after it: the exit code (0: it
// went as a person expects; else out.error says what went wrong).
async function runScenario(browser) {
  let rc = 0;
  let context = null;
  try {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    // axe-core in every page before its own scripts (an init script is not subject to the
    // console's Content-Security-Policy, which refuses inline scripts)
    await context.addInitScript({ content: axeSource });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    try {
      await scenarios[cfg.scenario](page, cdp);
    } catch (e) {
      out.error = String(e.stack || e);
      out.alerts = await page.locator(".alert").allTextContents().catch(() => []);
      await shot(page, "failed-" + cfg.scenario).catch(() => {});
      rc = 1;
    }
  } catch (e) {
    out.error = String(e.stack || e);
    rc = 1;
  } finally {
    if (context) await context.close().catch(() => {});
  }
  return rc;
}

if (process.argv[2] === "--serve") {
  let browser = null;
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    configure(JSON.parse(line));
    if (!browser || !browser.isConnected()) browser = await launch();
    const rc = await runScenario(browser);
    console.log(JSON.stringify({ done: rc, out }));
  }
  if (browser) await browser.close();
} else {
  configure(JSON.parse(process.argv[2]));
  const browser = await launch();
  let rc = 1;
  try {
    rc = await runScenario(browser);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exitCode = rc;   // not process.exit(): that can cut stdout short on a pipe
}
