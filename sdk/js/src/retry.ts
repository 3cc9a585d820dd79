/** When and how long to wait before trying a request again.
 *
 * - **429** is retried for every method: the gateway refused the request before it
 *   reached a backend, so nothing ran.
 * - **503** is retried for GET always, and for POST only when the answer has
 *   `Retry-After`: the gateway sends it when it refused the call itself (breaker
 *   open, job queue full, backend overloaded). A POST 503 without it may have had
 *   effects and is thrown.
 * - A connection that could not be opened (`ECONNREFUSED`) is retried for every
 *   method; other network failures and timeouts only for GET.
 * - The wait is `Retry-After` (+ up to 10 % jitter) when given, else full-jitter
 *   exponential backoff `random(0, min(maxBackoffMs, backoffMs * 2^attempt))`. A
 *   `Retry-After` over `maxRetryAfterMs` is not waited: the error is thrown with it.
 */
export interface RetryPolicy {
  /** Retries after the first try (default 3; 0 turns retries off). */
  maxRetries: number;
  /** Base of the exponential backoff, ms (default 500). */
  backoffMs: number;
  /** Longest backoff, ms (default 8000). */
  maxBackoffMs: number;
  /** Longest `Retry-After` waited, ms (default 60000). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 3, backoffMs: 500, maxBackoffMs: 8000, maxRetryAfterMs: 60000 };

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** Ms to wait before try `attempt + 1`, or `undefined` not to retry. */
export function retryDelay(p: RetryPolicy, attempt: number, retryAfterS: number | undefined): number | undefined {
  if (attempt >= p.maxRetries) return undefined;
  if (retryAfterS !== undefined) {
    const ms = retryAfterS * 1000;
    if (ms > p.maxRetryAfterMs) return undefined;
    return ms + Math.random() * ms * 0.1;
  }
  return Math.random() * Math.min(p.maxBackoffMs, p.backoffMs * 2 ** attempt);
}

export function delayOnStatus(p: RetryPolicy, method: string, status: number, retryAfterS: number | undefined, attempt: number): number | undefined {
  if (status === 429 || (status === 503 && (IDEMPOTENT.has(method) || retryAfterS !== undefined))) {
    return retryDelay(p, attempt, retryAfterS);
  }
  return undefined;
}

function connectRefused(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } } | null)?.cause;
  return cause?.code === "ECONNREFUSED";
}

export function delayOnNetworkError(p: RetryPolicy, method: string, e: unknown, attempt: number, aborted: boolean): number | undefined {
  if (aborted) return undefined;
  if (IDEMPOTENT.has(method) || connectRefused(e)) return retryDelay(p, attempt, undefined);
  return undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
