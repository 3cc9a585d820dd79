// The client against the running stack (GATEWAY_URL).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  GatewayClient, GatewayError, JobFailedError, NotFoundError, ServiceUnavailableError, ValidationError,
} from "../dist/index.js";
import { GATEWAY_URL, scripted } from "./helpers.mjs";

const gw = new GatewayClient({ baseUrl: GATEWAY_URL });
const FOX = "The quick brown fox jumps over the lazy dog. It was not amused.";

test("process runs generation then enrichment", async () => {
  const r = await gw.process("The fox and the", { maxTokens: 20, seed: 7 });
  assert.equal(r.httpStatus, 200);
  assert.ok(r.requestId);
  assert.ok(r.generation.text);
  assert.equal(r.generation.seed, 7);
  assert.deepEqual(r.steps.map((s) => s.name), ["generation", "enrichment"]);
  assert.ok(r.result.word_count > 0);
  assert.ok(r.generation.text.includes(r.result.text.split(" ")[0]));
});

test("generate is deterministic for a seed and keeps the caller's request id", async () => {
  const a = await gw.generate("Once upon a time", { maxTokens: 12, seed: 99, requestId: "sdk-js.generate-1" });
  const b = await gw.generate("Once upon a time", { maxTokens: 12, seed: 99 });
  assert.ok(a.text);
  assert.equal(a.text, b.text);
  assert.equal(b.cached, true);
  assert.equal(a.requestId, "sdk-js.generate-1");
  assert.ok(b.requestId && b.requestId !== a.requestId);
});

test("enrich", async () => {
  const r = await gw.enrich(FOX, { id: "doc-1", metadata: { source: "sdk" } });
  assert.equal(r.language, "en");
  assert.equal(r.word_count, 13);
  assert.equal(r.sentence_count, 2);
  assert.equal(r.id, "doc-1");
  assert.deepEqual(r.metadata, { source: "sdk" });
  assert.ok(r.keywords.some((k) => k.word === "fox"));
  assert.ok(r.requestId);
});

test("a job submitted and waited to done", async () => {
  const sub = await gw.submitJob("Once upon a time", { maxTokens: 20, seed: 3 });
  assert.equal(sub.httpStatus, 202);
  assert.ok(sub.requestId);
  assert.equal(sub.status_url, `/api/v1/jobs/${sub.job_id}`);
  const job = await gw.waitForJob(sub, { timeoutMs: 20000, intervalMs: 100 });
  assert.equal(job.status, "done");
  for (const s of ["queued", "generating", "enriching", "done"]) assert.ok(job.stages[s], s);
  assert.ok(job.result.generation.text);
  assert.ok(job.result.result.word_count > 0);
  const again = await gw.getJob(sub.job_id);
  assert.equal(again.status, "done");
  assert.ok(again.requestId && again.requestId !== job.requestId);
});

test("an unknown job is a typed NotFoundError carrying the request id", async () => {
  await assert.rejects(gw.getJob(randomUUID(), { requestId: "sdk-js.unknown-job" }), (e) => {
    assert.ok(e instanceof NotFoundError && e instanceof GatewayError);
    assert.equal(e.status, 404);
    assert.equal(e.error, "not_found");
    assert.equal(e.requestId, "sdk-js.unknown-job");
    assert.equal(e.body.request_id, "sdk-js.unknown-job");
    return true;
  });
});

test("backend and gateway errors are typed and carry the request id", async () => {
  await assert.rejects(gw.generate("   "), (e) => {
    assert.ok(e instanceof ValidationError);
    assert.equal(e.status, 422);
    assert.equal(e.error, "validation_error");
    assert.ok(e.requestId); // from X-Request-ID: the backend's body has none
    return true;
  });
  await assert.rejects(gw.request("GET", "/api/v3/anything"), (e) => {
    assert.ok(e instanceof NotFoundError);
    assert.ok(e.requestId);
    assert.equal(e.requestId, e.body.request_id);
    return true;
  });
});

test("a failed job throws JobFailedError, or is returned", async () => {
  // the gateway accepts any JSON object; api-generation then refuses the blank prompt
  const sub = await gw.submitJob("   ");
  await assert.rejects(gw.waitForJob(sub, { timeoutMs: 20000, intervalMs: 100 }), (e) => {
    assert.ok(e instanceof JobFailedError);
    assert.equal(e.job.status, "failed");
    assert.match(e.job.error, /422/);
    assert.ok(e.requestId);
    return true;
  });
  const job = await gw.waitForJob(sub.job_id, { timeoutMs: 20000, throwOnFailure: false });
  assert.equal(job.status, "failed");
  assert.equal(job.result, undefined);
  assert.ok(job.stages.failed);
});

test("generateStream yields the pieces, then the usage; breaking out closes it", async () => {
  const plain = await gw.generate("Once upon a time", { maxTokens: 12, seed: 5 });
  const events = [];
  for await (const e of gw.generateStream("Once upon a time", { maxTokens: 12, seed: 5 })) events.push(e);
  assert.equal(events.length, 13);
  assert.equal(events.slice(0, -1).map((e) => e.text).join(""), plain.text);
  const last = events.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.tokens, 12);
  assert.equal(last.seed, 5);
  for await (const e of gw.generateStream("The wolf", { maxTokens: 50, seed: 1 })) {
    assert.ok(e.text && !e.done);
    break;
  }
  await assert.rejects(
    async () => { for await (const _ of gw.generateStream(" ", { maxTokens: 3 })) { /* nothing */ } },
    ValidationError,
  );
});

test("processStream yields the pieces, the usage, then the pipeline's answer; breaking out closes it", async () => {
  const plain = await gw.process("The fox and the", { maxTokens: 12, seed: 9 });
  const events = [];
  for await (const e of gw.processStream("The fox and the", { maxTokens: 12, seed: 9 })) events.push(e);
  assert.equal(events.length, 14);
  const pieces = events.slice(0, 12);
  assert.ok(pieces.every((e) => !e.done && e.result === undefined));
  assert.equal(pieces.map((e) => e.text).join(""), plain.generation.text);
  assert.equal(events[12].done, true);
  assert.equal(events[12].tokens, 12);
  const last = events[13].result;
  assert.equal(last.generation.text, plain.generation.text);
  assert.deepEqual(last.steps.map((s) => s.name), ["generation", "enrichment"]);
  assert.deepEqual(last.result.keywords, plain.result.keywords);
  for await (const e of gw.processStream("The wolf", { maxTokens: 200, seed: 1 })) {
    assert.ok(e.text && !e.done);
    break;
  }
  await assert.rejects(
    async () => { for await (const _ of gw.processStream(" ", { maxTokens: 3 })) { /* nothing */ } },
    ValidationError,
  );
});

test("processStream throws an error event typed", async () => {
  // a step failing after the stream started (scripted: the real stack's enrichment does
  // not fail on demand)
  const body = 'data: {"text":"The"}\n\nevent: error\ndata: {"error":"step_unavailable","message":"no target","request_id":"r-1"}\n\n';
  const s = await scripted([[200, { "content-type": "text/event-stream" }, body]]);
  const c = new GatewayClient({ baseUrl: s.url });
  const seen = [];
  await assert.rejects(
    async () => { for await (const e of c.processStream("The fox")) seen.push(e.text); },
    (e) => e instanceof ServiceUnavailableError && e.error === "step_unavailable" && e.requestId === "r-1",
  );
  assert.deepEqual(seen, ["The"]);
  await s.close();
});

test("watchJob follows each state to the result; breaking out closes it; unknown ids throw", async () => {
  const sub = await gw.submitJob("Once upon a time", { maxTokens: 10, seed: 4 });
  const events = [];
  for await (const e of gw.watchJob(sub)) events.push(e);
  assert.deepEqual(events.map((e) => e.status), ["queued", "generating", "enriching", "done"]);
  assert.ok(events.every((e) => e.job_id === sub.job_id && e.at));
  const last = events.at(-1);
  assert.equal(last.job.status, "done");
  assert.equal(last.job.result.generation.tokens, 10);
  for await (const e of gw.watchJob(sub.job_id)) {
    assert.equal(e.status, "queued");
    break;
  }
  await assert.rejects(
    async () => { for await (const _ of gw.watchJob(randomUUID())) { /* nothing */ } },
    NotFoundError,
  );
});
