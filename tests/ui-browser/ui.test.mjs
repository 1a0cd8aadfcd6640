// The admin UI in headless Chromium against a real `crmsync serve`: a server org `acme` with
// sample data, a client org `field` registered through the Connect page, then every CRM Sync
// screen used as an administrator would. Screenshots of each screen go to a directory printed
// at the start (UI_SCREENSHOTS to choose it). The tests run in order and share one browser page.
//
// Needs CRMSYNC_BIN (the crmsync binary) and Chromium at /usr/bin/chromium (CHROMIUM to
// override); never downloads a browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import AxeBuilder from "@axe-core/playwright";

const bin = process.env.CRMSYNC_BIN;
const acmeAdmin = { email: "admin@acme.example", password: "acme-password" };
const fieldAdmin = { email: "lead@field.example", password: "field-admin-pw" };
let dataDir, server, baseUrl, browser, page, shots;
let shotIndex = 0;

async function shot(name) {
  shotIndex += 1;
  const file = join(shots, `${String(shotIndex).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

/** Chooses `value` in a select that re-renders the editor (htmx), and waits for the new editor. */
async function choose(selector, value) {
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/filter")),
    page.selectOption(selector, value),
  ]);
  await page.waitForFunction(() => !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling"));
}

/** No serious or critical accessibility violations on the current page. */
async function accessible(what) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const details = bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(details, [], `${what}: accessibility violations`);
}

/** The page fits the viewport's width (nothing needs sideways scrolling but tables' own wrappers). */
async function fitsWidth(what) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  assert.ok(scroll <= inner, `${what}: page is ${scroll}px wide in a ${inner}px window`);
}

before(async () => {
  assert.ok(bin, "CRMSYNC_BIN must name the crmsync binary");
  dataDir = mkdtempSync(join(tmpdir(), "crmsync-ui-"));
  shots = process.env.UI_SCREENSHOTS || mkdtempSync(join(tmpdir(), "crmsync-ui-shots-"));
  mkdirSync(shots, { recursive: true });
  // Screenshots of an earlier run in the same directory would mislead: remove ours, only ours.
  for (const old of readdirSync(shots).filter((f) => /^\d\d-[a-z-]+\.png$/.test(f))) {
    rmSync(join(shots, old));
  }
  console.log(`screenshots: ${shots}`);
  execFileSync(bin, ["--data", dataDir, "org", "create", "acme", "--admin-email", acmeAdmin.email,
    "--admin-password", acmeAdmin.password, "--sample", "crm", "--records", "50"]);
  server = spawn(bin, ["--data", dataDir, "serve", "--listen", "127.0.0.1:0", "--allow-private-urls"],
    { stdio: ["ignore", "pipe", "inherit"] });
  baseUrl = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the Connect page shows bad input next to the fields", async () => {
  await page.goto(`${baseUrl}/Register.aspx?otype=connect`);
  await shot("connect-page");
  await accessible("Connect page");
  await page.getByLabel("Organization name").fill("Not Valid!");
  await page.getByLabel("Password", { exact: true }).fill("short");
  await page.getByLabel("Password again").fill("different");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.waitForSelector("#e-org");
  assert.match(await page.textContent("#e-org"), /lowercase letters/);
  assert.match(await page.textContent("#e-password"), /at least 8 characters/);
  assert.match(await page.textContent("#e-password_confirm"), /differ/);
  assert.match(await page.textContent("#e-server_url"), /address/);
  assert.equal(await page.getAttribute("#f-org", "aria-invalid"), "true");
  assert.equal(await page.inputValue("#f-org"), "Not Valid!");
  await shot("connect-page-errors");
  await accessible("Connect page with errors");
});

test("registering through the Connect page lands signed in on the new org", async () => {
  await page.goto(`${baseUrl}/register?otype=connect`);
  await page.getByLabel("Organization name").fill("field");
  await page.getByLabel("Your email").fill(fieldAdmin.email);
  await page.getByLabel("Password", { exact: true }).fill(fieldAdmin.password);
  await page.getByLabel("Password again").fill(fieldAdmin.password);
  await page.getByLabel("Backend type").selectOption("crmsync");
  await page.getByLabel("Server organization URL").fill(`${baseUrl}/acme`);
  await page.getByLabel("User name on the server").fill(acmeAdmin.email);
  await page.getByLabel("Password on the server").fill(acmeAdmin.password);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.waitForURL("**/admin/field/sync/connector?notice=registered");
  assert.match(await page.textContent(".notice"), /created and connected/);
  assert.match(await page.textContent("main"), new RegExp(`${baseUrl}/acme`.replace(/[.]/g, "\\.")));
  await shot("connector");
  await accessible("Connector");
});

test("the Connector shows a refused password next to its field", async () => {
  await page.getByLabel("Password on the server").fill("not-the-password");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.waitForSelector("#e-server_password");
  assert.match(await page.textContent("#e-server_password"), /refused/);
  await shot("connector-error");
  await accessible("Connector with an error");
});

test("entities are enabled and disabled", async () => {
  await page.getByRole("link", { name: "Entities", exact: true }).click();
  await page.waitForURL("**/admin/field/sync/entities");
  for (const name of ["lead", "task"]) {
    await page.locator(`#en-${name}`).uncheck();
  }
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/\/admin\/field\/sync\/entities\?notice=entities-saved/);
  assert.equal(await page.locator("#en-lead").isChecked(), false);
  assert.equal(await page.locator("#en-contact").isChecked(), true);
  await shot("entities");
  await accessible("Entities");
});

test("a filter is built in the editor, checked and saved", async () => {
  await page.getByRole("link", { name: "Sync Filter of Contact" }).click();
  await page.waitForURL("**/entities/contact/filter");
  await page.getByRole("button", { name: "Add condition", exact: true }).click();
  await page.waitForSelector("#a-r-0");
  // Changing the attribute re-renders the row (htmx) with that attribute's operators.
  await choose("#a-r-0", "lastname");
  assert.equal(await page.inputValue("#a-r-0"), "lastname");
  await choose("#o-r-0", "not-null");
  assert.equal(await page.locator("#v-r-0").count(), 0, "not-null takes no value");
  // Related record: the parent account must be active.
  await page.getByRole("button", { name: "Add conditions on a related record" }).click();
  await page.waitForSelector("#l-l0");
  await choose("#l-l0", "parentcustomerid:account");
  await choose("#a-l0-0", "statecode");
  // An option set's values are chosen from its options.
  await page.selectOption("#v-l0-0", "0");
  // A bad value is refused with a message on its row.
  await page.getByRole("button", { name: "Add condition", exact: true }).first().click();
  await page.waitForSelector("#a-r-1");
  await choose("#a-r-1", "createdon");
  await choose("#o-r-1", "last-x-days");
  assert.equal(await page.getAttribute("#v-r-1", "type"), "number");
  await page.getByRole("button", { name: "Save filter" }).click();
  await page.waitForSelector("#e-r-1");
  assert.match(await page.textContent("#e-r-1"), /last-x-days|value/);
  await shot("filter-error");
  await page.fill("#v-r-1", "3650");
  await page.getByRole("button", { name: "Save filter" }).click();
  await page.waitForURL("**/entities/contact/filter?notice=filter-saved");
  const xml = await page.inputValue("#f-xml");
  assert.match(xml, /<condition attribute="lastname" operator="not-null"\/>/);
  assert.match(xml, /<link-entity name="account" from="accountid" to="parentcustomerid" link-type="inner">/);
  assert.match(xml, /<condition attribute="statecode" operator="eq" value="0"\/>/);
  await shot("filter");
  await accessible("Sync Filter editor");
});

test("Update metadata shows the preview", async () => {
  await page.getByRole("link", { name: "Update metadata" }).click();
  await page.waitForURL("**/sync/metadata");
  assert.match(await page.textContent("main"), /matches the server/);
  await shot("update-metadata");
  await accessible("Update metadata");
});

/** The number of contacts of the server org that the saved filter selects. */
async function serverCount(fetchXml) {
  const auth = Buffer.from(`${acmeAdmin.email}:${acmeAdmin.password}`).toString("base64");
  const r = await fetch(`${baseUrl}/acme/api/data/v9.2/contacts?fetchXml=${encodeURIComponent(fetchXml)}`, {
    headers: { authorization: `Basic ${auth}`, prefer: "odata.maxpagesize=5000" },
  });
  assert.equal(r.status, 200);
  return (await r.json()).value.length;
}

test("Sync All shows live progress until done, and the log tells what came over", async () => {
  await page.goto(`${baseUrl}/admin/field/sync/entities/contact/filter`);
  const filter = await page.inputValue("#f-xml");
  const expected = await serverCount(filter);
  assert.ok(expected > 0 && expected < 100, `the filter selects some contacts (${expected})`);
  await page.getByRole("link", { name: "Sync All" }).click();
  await page.waitForURL("**/sync/run");
  await shot("sync-all");
  await accessible("Sync All");
  await page.getByRole("button", { name: "Sync All" }).click();
  await page.waitForURL(/\/sync\/run\/[0-9a-f-]{36}$/);
  await shot("sync-progress");
  await page.waitForSelector("text=Sync finished", { timeout: 60_000 });
  assert.equal(await page.getAttribute("[data-status]", "data-status"), "Succeeded");
  await shot("sync-finished");
  await accessible("Sync progress");
  await page.getByRole("link", { name: "Open the log of this run" }).click();
  await page.waitForURL(/\/sync\/logs\/[0-9a-f-]{36}$/);
  const contactRow = page.locator("tbody tr", { has: page.locator("th code", { hasText: /^contact$/ }) });
  const created = Number(await contactRow.locator("td").first().textContent());
  assert.equal(created, expected, "contacts created on the client = contacts the filter selects on the server");
  await shot("run-log");
  await accessible("Run log");
});

test("the logs list filters runs by status", async () => {
  await page.getByRole("link", { name: "Logs" }).click();
  await page.waitForURL("**/sync/logs");
  assert.equal(await page.locator("tbody tr").count(), 1);
  assert.match(await page.textContent("tbody"), /Succeeded/);
  await shot("logs");
  await accessible("Logs");
  await page.getByRole("link", { name: "Failed" }).click();
  await page.waitForURL("**/sync/logs?status=failed");
  assert.match(await page.textContent("tbody"), /No sync run with this status/);
});

/** Calls an org's Web API as its admin; returns the response. */
async function webApi(org, who, method, path, body) {
  const auth = Buffer.from(`${who.email}:${who.password}`).toString("base64");
  const headers = { authorization: `Basic ${auth}`, accept: "application/json" };
  if (body) headers["content-type"] = "application/json";
  return fetch(`${baseUrl}/${org}/api/data/v9.2/${path}`, { method, headers, body: body && JSON.stringify(body) });
}

/** Runs Sync All from its screen and waits for the run to end. */
async function syncAll() {
  await page.goto(`${baseUrl}/admin/field/sync/run`);
  await page.getByRole("button", { name: "Sync All" }).click();
  await page.waitForURL(/\/sync\/run\/[0-9a-f-]{36}$/);
  await page.waitForSelector("text=Sync finished", { timeout: 60_000 });
}

/** The row of the Offline transactions tab for a record, and the count on a status tab. */
const txRow = (recordId) => page.locator(`tbody tr[data-record="${recordId}"]`);
async function tabCount(label) {
  return Number(await page.locator(".tabs a", { hasText: new RegExp(`^${label} `) }).locator(".count").textContent());
}

let accounts;

test("with Write offline on, a change made in the client org is Pending until Sync All processes it", async () => {
  await page.getByRole("link", { name: "Connector" }).click();
  await page.waitForURL("**/sync/connector");
  await page.getByLabel("Write offline").check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.waitForURL("**/sync/connector?notice=settings-saved");
  assert.equal(await page.getByLabel("Write offline").isChecked(), true);
  const list = await webApi("field", fieldAdmin, "GET", "accounts?$select=accountid,name&$top=2");
  assert.equal(list.status, 200);
  accounts = (await list.json()).value.map((a) => a.accountid);
  assert.equal(accounts.length, 2, "the client org has accounts after the first sync");
  const r = await webApi("field", fieldAdmin, "PATCH", `accounts(${accounts[0]})`, { name: "Renamed offline" });
  assert.equal(r.status, 204);

  await page.getByRole("link", { name: "Offline transactions" }).click();
  await page.waitForURL("**/sync/transactions");
  assert.equal(await txRow(accounts[0]).getAttribute("data-status"), "Pending");
  assert.match(await txRow(accounts[0]).textContent(), /Update[\s\S]*account[\s\S]*name = "Renamed offline"/);
  assert.equal(await tabCount("Pending"), 1);
  // The header box checks every row of the page, and unchecks them again.
  const rowBox = txRow(accounts[0]).locator("input[type=checkbox]");
  await page.getByLabel("Select all on this page").check();
  assert.equal(await rowBox.isChecked(), true);
  await page.getByLabel("Select all on this page").uncheck();
  assert.equal(await rowBox.isChecked(), false);
  await shot("transactions-pending");
  await accessible("Offline transactions");

  await syncAll();
  await page.getByRole("link", { name: "Offline transactions" }).click();
  await page.waitForURL("**/sync/transactions");
  assert.equal(await txRow(accounts[0]).getAttribute("data-status"), "Processed");
  assert.equal(await txRow(accounts[0]).locator("input[type=checkbox]").count(), 0, "Processed is final");
  assert.equal(await tabCount("Processed"), 1);
  assert.equal(await tabCount("Pending"), 0);
  await shot("transactions-processed");
  const server = await webApi("acme", acmeAdmin, "GET", `accounts(${accounts[0]})?$select=name`);
  assert.equal((await server.json()).name, "Renamed offline");
});

test("a change to a record deleted on the server goes to Error, and Set to Pending resolves it once restored", async () => {
  const id = accounts[1];
  const original = await (await webApi("acme", acmeAdmin, "GET", `accounts(${id})?$select=name`)).json();
  let r = await webApi("field", fieldAdmin, "PATCH", `accounts(${id})`, { name: "Edited while away" });
  assert.equal(r.status, 204);
  r = await webApi("acme", acmeAdmin, "DELETE", `accounts(${id})`);
  assert.equal(r.status, 204);
  await syncAll();

  await page.getByRole("link", { name: "Offline transactions" }).click();
  await page.getByRole("link", { name: /^Error / }).click();
  await page.waitForURL("**/sync/transactions?status=error");
  assert.equal(await txRow(id).getAttribute("data-status"), "Error");
  assert.equal((await txRow(id).locator(".error-text").textContent()).trim(), "deleted on the server");
  assert.equal(await tabCount("Error"), 1);
  await shot("transactions-error");
  await accessible("Offline transactions with an error");

  // Nothing selected: refused in place, nothing changes.
  await page.getByRole("button", { name: "Set to Pending", exact: true }).click();
  await page.waitForSelector("#tx-error");
  assert.match(await page.textContent("#tx-error"), /Nothing was changed: select the transactions/);
  assert.equal(await txRow(id).getAttribute("data-status"), "Error");
  await shot("transactions-refused");

  // Restore the record on the server with the same id, then send the change again.
  r = await webApi("acme", acmeAdmin, "PATCH", `accounts(${id})`, { name: original.name });
  assert.ok(r.status === 204 || r.status === 201, `restored: ${r.status}`);
  await txRow(id).locator("input[type=checkbox]").check();
  await page.getByRole("button", { name: "Set to Pending", exact: true }).click();
  await page.waitForURL("**/sync/transactions?status=error&notice=set-pending");
  assert.match(await page.textContent(".notice"), /set to Pending/);
  assert.equal(await tabCount("Error"), 0);
  assert.equal(await tabCount("Pending"), 1);

  await syncAll();
  await page.getByRole("link", { name: "Offline transactions" }).click();
  await page.waitForURL("**/sync/transactions");
  assert.equal(await txRow(id).getAttribute("data-status"), "Processed");
  assert.equal(await tabCount("Error"), 0);
  assert.equal(await tabCount("Processed"), 2);
  await shot("transactions-resolved");
  const server = await webApi("acme", acmeAdmin, "GET", `accounts(${id})?$select=name`);
  assert.equal((await server.json()).name, "Edited while away");
});

let jobPath;

test("a Sync Job is created, published, activated and run now; its history links the run's log", async () => {
  await page.getByRole("link", { name: "Sync Jobs" }).click();
  await page.waitForURL("**/sync/jobs");
  await page.getByRole("link", { name: "New Sync Job" }).click();
  await page.waitForURL("**/sync/jobs/new");
  await page.getByLabel("Name", { exact: true }).fill("Accounts every 5 minutes");
  // A bad frequency is refused next to its field, with what was typed kept.
  await page.getByLabel("Cron expression (UTC)").check();
  await page.getByLabel("Cron expression", { exact: true }).fill("61 * * * *");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForSelector("#e-cron");
  assert.match(await page.textContent("#e-cron"), /'61 \* \* \* \*' is not a valid frequency/);
  assert.equal(await page.getAttribute("#f-cron", "aria-invalid"), "true");
  assert.equal(await page.inputValue("#f-name"), "Accounts every 5 minutes");
  await shot("sync-job-error");
  await accessible("New Sync Job with an error");
  await page.getByLabel("Every", { exact: true }).check();
  await page.fill("#f-every", "5");
  await page.selectOption("#f-unit", "minutes");
  await page.getByLabel("Only these entities:").check();
  await page.locator("#f-entity-account").check();
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/sync\/jobs\/[0-9a-f-]{36}\?notice=job-created$/);
  jobPath = new URL(page.url()).pathname.replace("/admin/field/sync/", "");
  assert.match(await page.textContent("#job-state"), /Draft, deactivated/);
  await page.getByRole("button", { name: "Publish" }).click();
  await page.waitForURL(/notice=job-published$/);
  await page.getByRole("button", { name: "Activate" }).click();
  await page.waitForURL(/notice=job-activated$/);
  assert.match(await page.textContent("#job-state"), /Published, activated/);
  assert.match(await page.textContent("#job-next"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await page.getByRole("button", { name: "Run now" }).click();
  await page.waitForURL(/notice=job-run-queued$/);
  // The status panel reloads itself until the run is in the history.
  const logLink = page.getByRole("link", { name: /^Log of the run started/ });
  await logLink.waitFor({ timeout: 60_000 });
  assert.match(await page.textContent("#job-status tbody"), /Succeeded/);
  await shot("sync-job");
  await accessible("Sync Job");
  await page.getByRole("link", { name: "All Sync Jobs" }).click();
  await page.waitForURL("**/sync/jobs");
  const row = page.locator("tbody tr", { hasText: "Accounts every 5 minutes" });
  assert.match(await row.textContent(), /Every 5 minutes[\s\S]*Published[\s\S]*Yes[\s\S]*UTC[\s\S]*Succeeded/);
  await shot("sync-jobs");
  await accessible("Sync Jobs");
  await page.goto(`${baseUrl}/admin/field/sync/${jobPath}`);
  await page.getByRole("link", { name: /^Log of the run started/ }).click();
  await page.waitForURL(/\/sync\/logs\/[0-9a-f-]{36}$/);
  assert.match(await page.textContent(".facts"), /Trigger\s*Sync Job/);
  const entities = await page.locator("tbody th code").allTextContents();
  assert.deepEqual(entities, ["account"], "the job syncs only the entities it names");
});

test("the screens fit a phone-width screen", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [path, name] of [["connector", "phone-connector"], ["entities/contact/filter", "phone-filter"], ["logs", "phone-logs"],
    ["transactions", "phone-transactions"], ["jobs", "phone-jobs"], [jobPath, "phone-sync-job"]]) {
    await page.goto(`${baseUrl}/admin/field/sync/${path}`);
    await fitsWidth(name);
    await shot(name);
  }
  await page.setViewportSize({ width: 1366, height: 768 });
});

test("sign out, then sign in again", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL("**/admin/signin");
  await page.goto(`${baseUrl}/admin/field/sync/logs`);
  await page.waitForURL(/\/admin\/signin\?org=field/);
  await page.getByLabel("Password").fill("wrong-password");
  await page.getByLabel("Email").fill(fieldAdmin.email);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector("#e-password");
  await shot("sign-in-error");
  await accessible("Sign-in");
  await page.getByLabel("Password").fill(fieldAdmin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**/admin/field/sync/logs");
});
