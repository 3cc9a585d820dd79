/** Rate-limit headers of a gateway answer (`RateLimit`, `RateLimit-Policy`,
 * `X-RateLimit-Limit/Remaining/Reset`). */

/** What the gateway said about the caller's rate limit on this answer. */
export interface RateLimit {
  /** Requests allowed in the window (`X-RateLimit-Limit`, or `RateLimit`'s `limit=`). */
  limit?: number;
  /** Requests left (`X-RateLimit-Remaining`, or `remaining=` / `r=`). */
  remaining?: number;
  /** Seconds until the window resets (`X-RateLimit-Reset`, or `reset=` / `t=`). */
  reset?: number;
  /** The raw `RateLimit-Policy` value. */
  policy?: string;
  /** The raw `RateLimit` value. */
  header?: string;
}

function int(v: string | null): number | undefined {
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v.trim());
  return Number.isInteger(n) ? n : undefined;
}

/** `undefined` when the answer carries none of the rate-limit headers. */
export function parseRateLimit(headers: Headers): RateLimit | undefined {
  const header = headers.get("ratelimit") ?? undefined;
  const policy = headers.get("ratelimit-policy") ?? undefined;
  let limit = int(headers.get("x-ratelimit-limit"));
  let remaining = int(headers.get("x-ratelimit-remaining"));
  let reset = int(headers.get("x-ratelimit-reset"));
  if (header === undefined && policy === undefined && limit === undefined && remaining === undefined && reset === undefined) {
    return undefined;
  }
  const params: Record<string, number> = {};
  const alias: Record<string, string> = { r: "remaining", t: "reset", l: "limit" };
  for (const m of (header ?? "").matchAll(/(?:^|[;,\s])(limit|remaining|reset|r|t|l)\s*=\s*"?(\d+)/g)) {
    const key = alias[m[1]!] ?? m[1]!;
    if (!(key in params)) params[key] = Number(m[2]);
  }
  if (limit === undefined) {
    limit = params.limit;
    if (limit === undefined && policy) {
      const m = /^\s*(?:"[^"]*";\s*q=)?(\d+)/.exec(policy);
      if (m) limit = Number(m[1]);
    }
  }
  remaining ??= params.remaining;
  reset ??= params.reset;
  const out: RateLimit = {};
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) out.reset = reset;
  if (policy !== undefined) out.policy = policy;
  if (header !== undefined) out.header = header;
  return out;
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const when = Date.parse(v);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, (when - Date.now()) / 1000);
}
