/** `GatewayClient`: the gateway's API on `fetch` (Node 20+ and browsers). */

import { errorFromResponse, JobFailedError, JobTimeoutError, TransportError } from "./errors.js";
import { parseRateLimit, parseRetryAfter } from "./ratelimit.js";
import { DEFAULT_RETRY, delayOnNetworkError, delayOnStatus, sleep, type RetryPolicy } from "./retry.js";
import type {
  EnrichOptions, Enrichment, Generation, GenerateOptions, Job, JobBody, JobEvent, JobStatus,
  JobSubmission, Meta, PipelineBody, PipelineResult, ProcessEvent, RequestOptions, SubmitJobOptions,
  TokenEvent, WaitOptions,
} from "./types.js";

export const VERSION = "0.1.0";

export interface ClientOptions {
  /** The gateway, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Sent as `X-API-Key`. */
  apiKey?: string;
  /** A JWT, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Per-try timeout, ms (default 30000). */
  timeoutMs?: number;
  /** Shorthand for `retry.maxRetries` (default 3). */
  maxRetries?: number;
  retry?: Partial<RetryPolicy>;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A `fetch` of your own (default `globalThis.fetch`). */
  fetch?: typeof fetch;
}

/** A job id, or the submission `submitJob` returned (its `status_url` is used). */
export type JobRef = string | { job_id: string; status_url?: string };

const PROCESS = "/api/v1/process";
const GENERATE = "/api/v2/generate";
const ENRICH = "/api/v2/enrich";
const SUBMIT = "/api/v1/async-process";

function generationBody(prompt: string, o: GenerateOptions): Record<string, unknown> {
  const b: Record<string, unknown> = { prompt };
  if (o.maxTokens !== undefined) b.max_tokens = o.maxTokens;
  if (o.seed !== undefined) b.seed = o.seed;
  if (o.priority !== undefined) b.priority = o.priority;
  return b;
}

/** The status of the answer an `event: error` of the pipeline's stream stands for (an
 * error the first step sent itself: 502). */
const STREAM_ERROR_STATUS: Record<string, number> = {
  step_rejected: 422, step_failed: 502, step_unavailable: 503, gateway_timeout: 504,
};

/** A token stream event's JSON `data`. */
function toEvent(data: string): TokenEvent {
  const d = JSON.parse(data) as Partial<TokenEvent>;
  return { ...d, text: d.text ?? "", done: d.done ?? false };
}

/** The Server-Sent Events of a body: each event's name (`event:`) and `data` lines
 * joined; comments and events without data are skipped. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let event: string | undefined;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line === "") {
        if (data.length) yield { event, data: data.join("\n") };
        data = [];
        event = undefined;
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      }
    }
  }
  if (data.length) yield { event, data: data.join("\n") };
}

function jobPath(job: JobRef): string {
  if (typeof job !== "string" && job.status_url) return job.status_url;
  const id = typeof job === "string" ? job : job.job_id;
  return `/api/v1/jobs/${encodeURIComponent(id)}`;
}

export class GatewayClient {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    if (options.apiKey && options.token) throw new TypeError("give apiKey or token, not both");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.retry = { ...DEFAULT_RETRY, ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}), ...options.retry };
    this.#headers = { accept: "application/json", ...options.headers };
    if (options.apiKey) this.#headers["x-api-key"] = options.apiKey;
    if (options.token) this.#headers["authorization"] = `Bearer ${options.token}`;
    this.#timeoutMs = options.timeoutMs ?? 30000;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Sends with retries; resolves to the JSON body with its meta, or throws a `GatewayError`. */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T & Meta> {
    method = method.toUpperCase();
    const headers: Record<string, string> = { ...this.#headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.requestId) headers["x-request-id"] = options.requestId;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      // AbortSignal.any: Node 20.3+, current browsers; without it the caller's signal wins
      const signal = !options.signal ? timeout
        : typeof AbortSignal.any === "function" ? AbortSignal.any([options.signal, timeout]) : options.signal;
      let resp: Response;
      let wait: number | undefined;
      try {
        resp = await this.#fetch(this.baseUrl + path, { method, headers, body: payload ?? null, signal });
      } catch (e) {
        wait = delayOnNetworkError(this.retry, method, e, attempt, options.signal?.aborted ?? false);
        if (wait === undefined) throw new TransportError(`${method} ${path}: ${(e as Error)?.message ?? e}`, { cause: e });
        await sleep(wait, options.signal);
        continue;
      }
      const text = await resp.text();
      let json: unknown = undefined;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      if (resp.ok) {
        const meta: Meta = {
          requestId: resp.headers.get("x-request-id") ?? undefined,
          httpStatus: resp.status,
          rateLimit: parseRateLimit(resp.headers),
        };
        return Object.assign(json !== null && typeof json === "object" ? json : {}, meta) as T & Meta;
      }
      wait = delayOnStatus(this.retry, method, resp.status, parseRetryAfter(resp.headers.get("retry-after")), attempt);
      if (wait === undefined) throw errorFromResponse(resp.status, resp.headers, json, text);
      await sleep(wait, options.signal);
    }
  }

  /** `POST /api/v1/process`: generation, then enrichment of the generated text. */
  process(prompt: string, options: GenerateOptions = {}): Promise<PipelineResult> {
    return this.request(...post(PROCESS, generationBody(prompt, options), options));
  }

  /** `POST /api/v2/generate`. */
  generate(prompt: string, options: GenerateOptions = {}): Promise<Generation> {
    return this.request(...post(GENERATE, generationBody(prompt, options), options));
  }

  /** `POST /api/v2/generate` with `"stream": true`: an async iterator of the pieces of
   * the text as they are made, then one event with `done` and the usage. Breaking out of
   * the loop (or `options.signal`) closes the connection, which stops the generation. An
   * error before the stream starts throws the typed `GatewayError`; nothing is retried. */
  async *generateStream(prompt: string, options: GenerateOptions = {}): AsyncGenerator<TokenEvent> {
    for await (const e of this.#stream("POST", GENERATE, { ...generationBody(prompt, options), stream: true }, options)) {
      if ("json" in e) yield { ...(e.json as object), text: "", done: true } as TokenEvent;
      else yield toEvent(e.data);
    }
  }

  /** `POST /api/v1/process` with `"stream": true`: an async iterator of the generation's
   * pieces as they are made, its usage (`done`), then one last event whose `result` is
   * the pipeline's whole answer (what `process` returns). Breaking out of the loop (or
   * `options.signal`) closes the connection, which stops the generation. An error before
   * the stream throws the typed `GatewayError`; an `event: error` in it (e.g. the
   * enrichment step failed) throws its typed error; nothing is retried. */
  async *processStream(prompt: string, options: GenerateOptions = {}): AsyncGenerator<ProcessEvent> {
    for await (const e of this.#stream("POST", PROCESS, { ...generationBody(prompt, options), stream: true }, options)) {
      if ("json" in e) {
        yield { text: "", done: false, result: e.json as PipelineBody };
        return;
      }
      if (e.event === "error") {
        const d = JSON.parse(e.data) as Record<string, unknown>;
        const status = STREAM_ERROR_STATUS[String(d.error)] ?? 502;
        throw errorFromResponse(status, new Headers(), d, e.data);
      }
      if (e.event === "result") {
        yield { text: "", done: false, result: JSON.parse(e.data) as PipelineBody };
        return;
      }
      yield toEvent(e.data);
    }
  }

  /** Sends `method path` (a POST with `body` as JSON) asking for an event stream: the
   * answer's events as they come, or a 2xx answer that is not a stream as its JSON (and
   * text and headers), once. Ending the iteration (or `options.signal`) closes the
   * connection; an error status throws the typed error. */
  async *#stream(
    method: "GET" | "POST", path: string, body: Record<string, unknown> | undefined, options: RequestOptions,
  ): AsyncGenerator<{ event?: string; data: string } | { json: unknown; text: string; headers: Headers }> {
    const headers: Record<string, string> = { ...this.#headers, accept: "text/event-stream" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.requestId) headers["x-request-id"] = options.requestId;
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    options.signal?.addEventListener("abort", onAbort);
    let resp: Response;
    try {
      resp = await this.#fetch(this.baseUrl + path, {
        method, headers, signal: abort.signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      options.signal?.removeEventListener("abort", onAbort);
      throw new TransportError(`${method} ${path}: ${(e as Error)?.message ?? e}`, { cause: e });
    }
    try {
      const type = resp.headers.get("content-type") ?? "";
      if (!resp.ok || !type.startsWith("text/event-stream") || !resp.body) {
        const text = await resp.text();
        let json: unknown = undefined;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        if (!resp.ok) throw errorFromResponse(resp.status, resp.headers, json, text);
        yield { json, text, headers: resp.headers };
        return;
      }
      yield* sseEvents(resp.body);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      abort.abort();
    }
  }

  /** `POST /api/v2/enrich`. */
  enrich(text: string, options: EnrichOptions = {}): Promise<Enrichment> {
    const b: Record<string, unknown> = { text };
    if (options.id !== undefined) b.id = options.id;
    if (options.title !== undefined) b.title = options.title;
    if (options.metadata !== undefined) b.metadata = options.metadata;
    return this.request(...post(ENRICH, b, options));
  }

  /** `POST /api/v1/async-process` → 202 with the job id. */
  submitJob(prompt: string, options: SubmitJobOptions = {}): Promise<JobSubmission> {
    const b = generationBody(prompt, options);
    if (options.callbackUrl) b.callback_url = options.callbackUrl;
    return this.request(...post(SUBMIT, b, options));
  }

  /** `GET /api/v1/jobs/{job_id}/events`: each state the job enters, as it happens (those
   * it already passed first), ending with the final one, whose `job` has the result or
   * error. Breaking out of the loop, or `signal`, closes the connection. An unknown id
   * throws `NotFoundError` before the first event; an `event: error` mid-stream throws
   * its typed error. */
  async *watchJob(job: JobRef, options: RequestOptions = {}): AsyncGenerator<JobEvent> {
    for await (const e of this.#stream("GET", `${jobPath(job)}/events`, undefined, options)) {
      // a 2xx answer that is not an event stream
      if ("json" in e) throw errorFromResponse(502, e.headers, e.json, e.text);
      const d = JSON.parse(e.data) as Record<string, unknown>;
      if (e.event === "error") {
        throw errorFromResponse(d.error === "not_found" ? 404 : 503, new Headers(), d, e.data);
      }
      const status = (d.status ?? e.event) as JobStatus;
      const final = status === "done" || status === "failed";
      const body = d as unknown as JobBody;
      yield {
        job_id: String(d.job_id ?? ""),
        status,
        at: (d.at as string | undefined) ?? (final ? body.stages?.[status] : undefined),
        ...(final ? { job: body } : {}),
      };
      if (final) return;
    }
  }

  /** `GET /api/v1/jobs/{job_id}`; `NotFoundError` for an unknown id. */
  getJob(job: JobRef, options: RequestOptions = {}): Promise<Job> {
    return this.request<Job>("GET", jobPath(job), undefined, options);
  }

  /** Polls until the job is `done` (resolved) or `failed` (`JobFailedError`, or
   * resolved with `throwOnFailure: false`); `JobTimeoutError` after `timeoutMs`. */
  async waitForJob(job: JobRef, options: WaitOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? 60000;
    const interval = options.intervalMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await this.getJob(job, options.signal ? { signal: options.signal } : {});
      if (current.status === "done" || current.status === "failed") {
        if (current.status === "failed" && (options.throwOnFailure ?? true)) throw new JobFailedError(current);
        return current;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new JobTimeoutError(current.job_id, timeoutMs, current);
      await sleep(Math.min(interval, left), options.signal);
    }
  }
}

function post(path: string, body: unknown, o: RequestOptions): ["POST", string, unknown, RequestOptions] {
  const r: RequestOptions = {};
  if (o.requestId !== undefined) r.requestId = o.requestId;
  if (o.signal !== undefined) r.signal = o.signal;
  return ["POST", path, body, r];
}
