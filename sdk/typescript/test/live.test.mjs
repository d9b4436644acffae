// The SDK as a user meets it, against a live `paved up` (PAVED_ENDPOINT and
// a token with every scope in PAVED_TOKEN; integration-tests/tests/it/sdk.rs
// starts it): the README's example, a rollout followed to promotion and to
// rollback, errors with their details, tokens, secrets and the audit log.

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { Client, Code, PavedError } from "../dist/index.js";

const endpoint = process.env.PAVED_ENDPOINT;
const root = process.env.PAVED_TOKEN;

before(() => {
  // Without a platform every test fails, loudly.
  assert.ok(endpoint && root, "no live platform: set PAVED_ENDPOINT and PAVED_TOKEN (cargo xtask test does)");
});

const client = () => new Client({ endpoint, token: root });

const spec = (version, errorRate = "0") =>
  "name: web-ts\nteam: demo\ncommand: [hello]\nhealth:\n  period: 200ms\n  timeout: 200ms\n" +
  "rollout:\n  steps: [50, 100]\n  interval: 2s\n  max_error_rate: 0.05\n" +
  `env:\n  HELLO_VERSION: ${version}\n  HELLO_ERROR_RATE: "${errorRate}"\n`;

/** Clients calling the workload all the time: the analyzer judges traffic. */
function load(target, clients = 4) {
  let stopped = false;
  const agent = new http.Agent({ keepAlive: true });
  const loop = async () => {
    while (!stopped) {
      await new Promise((resolve) => {
        const req = http.get(`http://${target}/`, { agent, timeout: 2000 }, (res) => res.resume().on("end", resolve));
        req.on("error", () => setTimeout(resolve, 10));
        req.on("timeout", () => req.destroy());
      });
    }
  };
  const running = Array.from({ length: clients }, loop);
  return async () => {
    stopped = true;
    await Promise.all(running);
    agent.destroy();
  };
}

const rejection = async (promise) => {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail("the call should have been refused");
};

test("the README example runs as written", () => {
  const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
  const example = readme.match(/```js\n([\s\S]*?)```/)[1];
  // Inside the package, so that "@paved/sdk" resolves to it.
  const file = fileURLToPath(new URL("./.readme-example.mjs", import.meta.url));
  writeFileSync(file, example);
  try {
    const out = execFileSync(process.execPath, [file], { env: { ...process.env, PAVED_ENDPOINT: endpoint, PAVED_TOKEN: root }, encoding: "utf8" });
    assert.match(out, /greeter-ts: promoted/);
    assert.match(out, /serving at 127\.0\.0\.1:\d+/);
  } finally {
    rmSync(file, { force: true });
  }
});

test("a rollout followed to promotion and to rollback", async () => {
  const paved = client();
  const first = await paved.deploy(spec("v1"), "dev");
  assert.equal(first.state, "promoted");
  const { workload } = await paved.provisioner.getWorkload({ environment: "dev", name: "web-ts" });
  const stop = load(workload.endpoint);
  try {
    const weights = [];
    const second = await paved.deploy(spec("v2"), "dev", { onChange: (r) => weights.push(r.weight) });
    assert.equal(second.state, "promoted");
    assert.ok(weights.includes(50) && weights.at(-1) === 100, `${weights}`);
    // Half its answers are 500s: rolled back at its first step.
    const third = await paved.deploy(spec("v3", "0.5"), "dev");
    assert.equal(third.promoted, false);
    assert.equal(third.state, "rolled_back");
    assert.match(third.rollout.message, /errors/);
  } finally {
    await stop();
  }
  assert.equal((await paved.deploy(spec("v2"), "dev")).state, "unchanged");
});

test("errors carry their code, reason and fields", async () => {
  const bad = await rejection(client().deploy("name: Bad\ncommand: [hello]\n", "dev"));
  assert.ok(bad instanceof PavedError);
  assert.deepEqual([bad.code, bad.codeName, bad.reason, bad.fields, bad.domain], [
    Code.InvalidArgument,
    "INVALID_ARGUMENT",
    "INVALID_SPEC",
    ["spec_yaml.name"],
    "paved.dev",
  ]);
  assert.match(bad.fieldViolations[0].description, /paved\.yaml:1:7/);

  const stranger = await rejection(new Client({ endpoint, token: "pvt1.not-a-token" }).provisioner.listWorkloads({}));
  assert.equal(stranger.code, Code.Unauthenticated);
  assert.ok(stranger.reason);

  const viewer = await client().issueToken("sdk-ts-viewer", ["read:provisioner"], { ttlSeconds: 300 });
  const reader = new Client({ endpoint, token: viewer.token });
  await reader.provisioner.listWorkloads({});
  const denied = await rejection(reader.deploy(spec("v9"), "dev"));
  assert.deepEqual([denied.code, denied.reason, denied.info.scope], [Code.PermissionDenied, "MISSING_SCOPE", "write:provisioner"]);
});

test("a spec built in code deploys, and is refused at its field", async () => {
  const paved = client();
  const coded = { name: "coded-ts", command: ["hello"], env: { HELLO_VERSION: "coded" }, replicas: 2 };
  const done = await paved.deploy(coded, "dev");
  assert.ok(done.promoted, done.state);
  assert.match(done.applied.revision.specYaml, /replicas: 2/);
  assert.equal((await paved.deploy("name: coded-ts\ncommand: [hello]\nreplicas: 2\nenv: {HELLO_VERSION: coded}\n", "dev")).state, "unchanged");
  const health = { period: { seconds: 1n }, timeout: { seconds: 2n } };
  const bad = await rejection(paved.deploy({ ...coded, health }, "dev"));
  assert.deepEqual([bad.code, bad.reason, bad.fields], [Code.InvalidArgument, "INVALID_SPEC", ["spec.health.timeout"]]);
});

test("tokens are issued and revoked", async () => {
  const paved = client();
  const issued = await paved.issueToken("sdk-ts-revoked", ["read:provisioner"], { ttlSeconds: 300 });
  const holder = new Client({ endpoint, token: issued.token });
  await holder.provisioner.listWorkloads({});
  await paved.revokeToken(issued.info.tokenId);
  const deadline = Date.now() + 5000;
  for (;;) {
    const refused = await holder.provisioner.listWorkloads({}).then(() => undefined, (e) => e);
    if (refused !== undefined) {
      assert.equal(refused.code, Code.Unauthenticated);
      assert.match(refused.rawMessage, /revoked/);
      break;
    }
    assert.ok(Date.now() < deadline, "a revoked token is refused within seconds");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

test("secrets are read and watched", async () => {
  const paved = client();
  const put = (value) => paved.secretsBroker.putSecret({ path: "dev/web-ts/api-key", value: new TextEncoder().encode(value) });
  await put("one");
  assert.equal(new TextDecoder().decode((await paved.getSecret("dev/web-ts/api-key")).value), "one");
  const abort = new AbortController();
  const changes = paved.watchSecret("dev/web-ts/api-key", abort.signal);
  assert.equal(new TextDecoder().decode((await changes.next()).value.value), "one");
  await put("two");
  assert.equal(new TextDecoder().decode((await changes.next()).value.value), "two");
  abort.abort();
  await changes.return(undefined).catch(() => {});
  const missing = await rejection(paved.getSecret("dev/web-ts/nothing-here"));
  assert.equal(missing.code, Code.NotFound);
});

test("the audit log holds what was done", async () => {
  const paved = client();
  await paved.deploy(spec("v1").replace("name: web-ts", "name: audited-ts"), "dev");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const types = (await paved.queryAudit({ workload: "audited-ts", environment: "dev" })).map((e) => e.type);
    if (types.some((t) => t.endsWith("rollout.transitioned"))) {
      assert.match(types[0], /workload\.registered$/);
      break;
    }
    assert.ok(Date.now() < deadline, `${types}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
});

test("a PavedError is a ConnectError, and a plain ConnectError is not a PavedError", async () => {
  const { ConnectError } = await import("@connectrpc/connect");
  const plain = new ConnectError("no", Code.Internal);
  assert.equal(plain instanceof PavedError, false);
  const paved = new PavedError(plain);
  assert.ok(paved instanceof PavedError && paved instanceof ConnectError);
});
