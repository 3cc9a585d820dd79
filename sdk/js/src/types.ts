/** The resources of the gateway's API. Bodies keep the gateway's field names
 * (snake_case); every result also carries `requestId`, `httpStatus` and `rateLimit`. */

import type { RateLimit } from "./ratelimit.js";

/** What every result carries besides its body. */
export interface Meta {
  /** The answer's `X-Request-ID`. */
  requestId: string | undefined;
  /** The HTTP status (200, 202, ...). */
  httpStatus: number;
  /** The rate-limit headers; `undefined` when the route has no limit. */
  rateLimit: RateLimit | undefined;
}

export type Priority = "low" | "normal" | "high";
export type JobStatus = "queued" | "generating" | "enriching" | "done" | "failed";

/** Body of `POST /api/v2/generate` (api-generation). */
export interface GenerationBody {
  text: string;
  model: string;
  tokens: number;
  cached: boolean;
  duration_ms: number;
  seed: number;
}

export interface Keyword { word: string; count: number }

/** Body of `POST /api/v2/enrich` (api-enrichment). */
export interface EnrichmentBody {
  id?: string;
  title?: string;
  text: string;
  metadata: Record<string, unknown>;
  language: string;
  language_confidence: number;
  word_count: number;
  sentence_count: number;
  character_count: number;
  readability: Record<string, unknown> | null;
  keywords: Keyword[];
  cleaning: Record<string, unknown>;
  external: unknown;
  sources: { name: string; status: string; detail?: string; duration_ms: number }[];
  warnings: string[];
  degraded: boolean;
  duration_ms: number;
}

export interface Step { name: string; upstream: string; status: number; duration_ms: number }

/** Body of `POST /api/v1/process` (and a done job's `result`). */
export interface PipelineBody {
  result: EnrichmentBody;
  generation: GenerationBody;
  steps: Step[];
  [step: string]: unknown;
}

/** Body (202) of `POST /api/v1/async-process`. */
export interface JobSubmissionBody { job_id: string; status_url: string }

export interface JobCallback { url: string; status: "delivered" | "failed" | "refused" | string; attempts: number; last_error?: string }

/** Body of `GET /api/v1/jobs/{job_id}` (also the body of a job webhook). */
export interface JobBody {
  job_id: string;
  status: JobStatus;
  /** Each stage reached, with its RFC 3339 timestamp. */
  stages: Partial<Record<JobStatus, string>>;
  result?: PipelineBody;
  error?: string;
  callback?: JobCallback;
}

export type Generation = GenerationBody & Meta;
export type Enrichment = EnrichmentBody & Meta;
export type PipelineResult = PipelineBody & Meta;
export type JobSubmission = JobSubmissionBody & Meta;
export type Job = JobBody & Meta;

/** One event of `generateStream`: a piece of the text, or (`done`) the usage. The
 * pieces joined are the `text` of `generate` for the same seed. */
export interface TokenEvent {
  text: string;
  done: boolean;
  tokens?: number;
  model?: string;
  seed?: number;
  duration_ms?: number;
  cached?: boolean;
}

/** One event of `processStream`: a piece of the generated text (`text`), the
 * generation's usage (`done`), then, last, the pipeline's whole answer (`result`: what
 * `process` answers, the enrichment of the joined text included). */
export interface ProcessEvent extends TokenEvent {
  result?: PipelineBody;
}

/** One event of `watchJob`: a state the job entered, and when (`at`). The last one
 * (`done` or `failed`) carries the whole `job` (its `result` or `error`). */
export interface JobEvent {
  job_id: string;
  status: JobStatus;
  at?: string;
  job?: JobBody;
}

/** Parameters of a generation (also of `process` and `submitJob`). */
export interface GenerateOptions {
  maxTokens?: number;
  seed?: number;
  priority?: Priority;
  /** Sent as `X-Request-ID` (kept by the gateway when 1–200 chars of `[A-Za-z0-9._:-]`). */
  requestId?: string;
  signal?: AbortSignal;
}

export interface SubmitJobOptions extends GenerateOptions {
  /** Receives the final job, signed (`X-Signature`); the route must allow its host. */
  callbackUrl?: string;
}

export interface EnrichOptions {
  id?: string;
  title?: string;
  metadata?: Record<string, unknown>;
  requestId?: string;
  signal?: AbortSignal;
}

export interface RequestOptions {
  requestId?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this many ms (default 60000): `JobTimeoutError`. */
  timeoutMs?: number;
  /** Between polls, ms (default 250). */
  intervalMs?: number;
  /** `failed` throws `JobFailedError` (default true) or is returned. */
  throwOnFailure?: boolean;
  signal?: AbortSignal;
}
