// dynamics-web-api, an independent Dataverse client, against a real `crmsync serve`.
// The server binary comes from CRMSYNC_BIN; the test creates its own data directory and org.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamicsWebApi } from "dynamics-web-api";

const bin = process.env.CRMSYNC_BIN;
const email = "admin@acme.example";
const password = "acme-password";
let dataDir, server, baseUrl, api;

before(async () => {
  assert.ok(bin, "CRMSYNC_BIN must name the crmsync binary");
  dataDir = mkdtempSync(join(tmpdir(), "crmsync-node-"));
  execFileSync(bin, ["--data", dataDir, "org", "create", "acme", "--admin-email", email,
    "--admin-password", password, "--sample", "crm", "--records", "50"]);
  server = spawn(bin, ["--data", dataDir, "serve", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  baseUrl = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const tokenResponse = await fetch(`${baseUrl}/acme/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", username: email, password }),
  });
  assert.equal(tokenResponse.status, 200);
  const { access_token } = await tokenResponse.json();
  api = new DynamicsWebApi({
    serverUrl: `${baseUrl}/acme/`,
    dataApi: { version: "9.2" },
    onTokenRefresh: async () => access_token,
  });
});

after(() => {
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("WhoAmI answers through callFunction", async () => {
  const me = await api.callFunction({ name: "WhoAmI" });
  assert.match(me.UserId, /^[0-9a-f-]{36}$/);
});

test("create, retrieve, update, query and delete a record", async () => {
  const id = await api.create({ collection: "accounts", data: { name: "Node Client Ltd", revenue: 1000.5, numberofemployees: 12 } });
  assert.match(id, /^[0-9a-f-]{36}$/);
  const got = await api.retrieve({ collection: "accounts", key: id, select: ["name", "revenue"] });
  assert.equal(got.name, "Node Client Ltd");
  assert.equal(got.revenue, 1000.5);
  await api.update({ collection: "accounts", key: id, data: { name: "Node Client Renamed" } });
  const found = await api.retrieveMultiple({ collection: "accounts", select: ["name"], filter: "name eq 'node client renamed'" });
  assert.equal(found.value.length, 1);
  assert.equal(found.value[0].accountid, id);
  await api.deleteRecord({ collection: "accounts", key: id });
  const gone = await api.retrieveMultiple({ collection: "accounts", select: ["name"], filter: `accountid eq ${id}` });
  assert.equal(gone.value.length, 0);
});

test("FetchXML pages are followed with paging cookies", async () => {
  const fetchXml = `<fetch count="7"><entity name="contact"><attribute name="fullname"/><order attribute="fullname"/></entity></fetch>`;
  const all = await api.fetchAll({ collection: "contacts", fetchXml });
  assert.equal(all.value.length, 100);
  assert.equal(new Set(all.value.map((c) => c.contactid)).size, 100);
});

test("change tracking returns changes and deletions since the delta link", async () => {
  const initial = await api.retrieveAll({ collection: "accounts", select: ["name"], trackChanges: true, maxPageSize: 20 });
  assert.ok(initial.value.length >= 50);
  assert.ok(initial.oDataDeltaLink, "the last page carries a delta link");
  const created = await api.create({ collection: "accounts", data: { name: "Tracked Co" } });
  const victim = initial.value[0].accountid;
  await api.deleteRecord({ collection: "accounts", key: victim });
  const delta = await api.retrieveMultiple({ collection: "accounts", select: ["name"], trackChanges: true }, initial.oDataDeltaLink);
  const ids = delta.value.map((v) => v.accountid ?? v.id);
  assert.ok(ids.includes(created), "the created record is in the delta");
  const deleted = delta.value.find((v) => v.id === victim);
  assert.ok(deleted, "the delete is in the delta");
  assert.equal(deleted.reason, "deleted");
});
