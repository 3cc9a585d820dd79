// The webhook verifier, and (when the gateway allows callbacks to 127.0.0.1) a real
// signed webhook from the gateway.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { GatewayClient, signWebhook, verifyWebhookSignature } from "../dist/index.js";
import { GATEWAY_URL } from "./helpers.mjs";

test("verifyWebhookSignature: valid, tampered, wrong secret, malformed", async () => {
  const body = '{"job_id":"j","status":"done"}';
  const header = await signWebhook(body, "s3cret");
  assert.match(header, /^sha256=[0-9a-f]{64}$/);
  assert.equal(await verifyWebhookSignature(body, header, "s3cret"), true);
  assert.equal(await verifyWebhookSignature(new TextEncoder().encode(body), header.toUpperCase().replace("SHA256=", "sha256="), "s3cret"), true);
  assert.equal(await verifyWebhookSignature(body.replace("done", "dona"), header, "s3cret"), false);
  assert.equal(await verifyWebhookSignature(body, header, "other"), false);
  assert.equal(await verifyWebhookSignature(body, null, "s3cret"), false);
  assert.equal(await verifyWebhookSignature(body, "sha256=zz", "s3cret"), false);
  assert.equal(await verifyWebhookSignature(body, header.slice(7), "s3cret"), false);
});

test("a webhook from the gateway verifies", { skip: process.env.SDK_TEST_WEBHOOKS !== "1" && "needs a gateway whose async route allows callbacks to 127.0.0.1 (tests/sdk.rs starts one)" }, async () => {
  const secret = process.env.WEBHOOK_SECRET;
  let resolveHook;
  const hook = new Promise((r) => (resolveHook = r));
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(204).end();
      resolveHook({ body: Buffer.concat(chunks), sig: req.headers["x-signature"], job: req.headers["x-job-id"] });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  try {
    const gw = new GatewayClient({ baseUrl: GATEWAY_URL });
    const sub = await gw.submitJob("Once upon a time", { maxTokens: 10, callbackUrl: `http://127.0.0.1:${server.address().port}/hook` });
    await gw.waitForJob(sub, { timeoutMs: 20000, intervalMs: 100 });
    const got = await Promise.race([hook, new Promise((_, rej) => setTimeout(() => rej(new Error("no webhook received")), 20000).unref())]);
    assert.equal(got.job, sub.job_id);
    assert.equal(await verifyWebhookSignature(got.body, got.sig, secret), true);
    assert.equal(JSON.parse(got.body.toString()).status, "done");
    assert.equal(await verifyWebhookSignature(Buffer.concat([got.body, Buffer.from(" ")]), got.sig, secret), false);
    assert.equal(await verifyWebhookSignature(got.body, got.sig, secret + "x"), false);
  } finally {
    server.close();
  }
});
