// Retries on 429/503 honouring Retry-After, rate-limit headers, credentials.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayClient, JobTimeoutError, RateLimitError, ServiceUnavailableError, TransportError } from "../dist/index.js";
import { scripted } from "./helpers.mjs";

const GEN = { text: "hello", model: "m", tokens: 1, cached: false, duration_ms: 0.1, seed: 1 };
const limited = (after) => [429, {
  "retry-after": after,
  "ratelimit": "limit=2, remaining=0, reset=1",
  "ratelimit-policy": "2;w=60",
  "x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": after,
}, { error: "rate_limited", message: "too many requests", request_id: "ignored-the-header-wins" }];
const OK = [200, { "x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "60" }, GEN];

test("429 is retried after Retry-After, then succeeds with the rate-limit headers", async () => {
  const s = await scripted([limited("1"), OK]);
  const started = Date.now();
  const r = await new GatewayClient({ baseUrl: s.url }).generate("x");
  assert.ok(Date.now() - started >= 1000, "waited what the server asked");
  assert.equal(s.requests.length, 2);
  assert.equal(r.text, "hello");
  assert.equal(r.requestId, "scripted-2");
  assert.deepEqual([r.rateLimit.limit, r.rateLimit.remaining, r.rateLimit.reset], [2, 1, 60]);
  await s.close();
});

test("retries give up with a typed error carrying retryAfter and rateLimit", async () => {
  const s = await scripted([limited("0")]);
  await assert.rejects(new GatewayClient({ baseUrl: s.url, maxRetries: 2 }).process("x"), (e) => {
    assert.ok(e instanceof RateLimitError);
    assert.equal(e.status, 429);
    assert.equal(e.error, "rate_limited");
    assert.equal(e.retryAfter, 0);
    assert.equal(e.requestId, "scripted-3");
    assert.equal(e.rateLimit.remaining, 0);
    assert.equal(e.rateLimit.policy, "2;w=60");
    return true;
  });
  assert.equal(s.requests.length, 3);
  await s.close();
});

test("a Retry-After longer than the policy allows is not waited", async () => {
  const s = await scripted([limited("120"), OK]);
  await assert.rejects(new GatewayClient({ baseUrl: s.url, retry: { maxRetryAfterMs: 5000 } }).generate("x"),
    (e) => e instanceof RateLimitError && e.retryAfter === 120);
  assert.equal(s.requests.length, 1);
  await s.close();
});

test("a POST 503 is retried only with Retry-After; a GET 503 always", async () => {
  const unavailable = { error: "breaker_open", message: "upstream unavailable" };
  const s = await scripted([[503, { "retry-after": "0" }, unavailable], OK]);
  assert.equal((await new GatewayClient({ baseUrl: s.url }).generate("x")).text, "hello");
  assert.equal(s.requests.length, 2);
  await s.close();

  const s2 = await scripted([[503, {}, unavailable], OK]);
  await assert.rejects(new GatewayClient({ baseUrl: s2.url }).generate("x"),
    (e) => e instanceof ServiceUnavailableError && e.error === "breaker_open" && e.requestId === "scripted-1");
  assert.equal(s2.requests.length, 1);
  await s2.close();

  const job = { job_id: "j1", status: "done", stages: { done: "t" } };
  const s3 = await scripted([[503, {}, { error: "job_store_unavailable", message: "x" }], [200, {}, job]]);
  const j = await new GatewayClient({ baseUrl: s3.url, retry: { backoffMs: 10 } }).getJob("j1");
  assert.equal(j.status, "done");
  assert.equal(s3.requests.length, 2);
  assert.equal(s3.requests[0].path, "/api/v1/jobs/j1");
  await s3.close();
});

test("waitForJob times out with the last state", async () => {
  const s = await scripted([[200, {}, { job_id: "j1", status: "generating", stages: { queued: "t" } }]]);
  await assert.rejects(new GatewayClient({ baseUrl: s.url }).waitForJob("j1", { timeoutMs: 300, intervalMs: 50 }),
    (e) => e instanceof JobTimeoutError && e.job.status === "generating" && e.jobId === "j1");
  assert.ok(s.requests.length >= 2);
  await s.close();
});

test("connection refused is a TransportError", async () => {
  await assert.rejects(new GatewayClient({ baseUrl: "http://127.0.0.1:9", retry: { maxRetries: 1, backoffMs: 10 } }).generate("x"),
    (e) => e instanceof TransportError);
});

test("credentials are sent", async () => {
  const s = await scripted([OK]);
  await new GatewayClient({ baseUrl: s.url, apiKey: "k-123" }).generate("x");
  await new GatewayClient({ baseUrl: s.url, token: "jwt.abc" }).generate("x");
  assert.equal(s.requests[0].headers["x-api-key"], "k-123");
  assert.equal(s.requests[0].headers.authorization, undefined);
  assert.equal(s.requests[1].headers.authorization, "Bearer jwt.abc");
  assert.equal(s.requests[1].headers["x-api-key"], undefined);
  assert.throws(() => new GatewayClient({ baseUrl: s.url, apiKey: "a", token: "b" }), TypeError);
  await s.close();
});

test("the caller's AbortSignal cancels a retry wait", async () => {
  const s = await scripted([limited("5"), OK]);
  const started = Date.now();
  await assert.rejects(new GatewayClient({ baseUrl: s.url }).generate("x", { signal: AbortSignal.timeout(200) }));
  assert.ok(Date.now() - started < 4000, "did not wait out the 5 s Retry-After");
  assert.equal(s.requests.length, 1);
  await s.close();
});
