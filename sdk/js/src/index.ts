/** TypeScript client for the api-gateway: the pipeline, generation, enrichment,
 * async jobs and their webhooks. `fetch` and Web Crypto: Node 20+ and browsers. */

export { GatewayClient, VERSION, type ClientOptions, type JobRef } from "./client.js";
export * from "./errors.js";
export { parseRateLimit, parseRetryAfter, type RateLimit } from "./ratelimit.js";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
export { SIGNATURE_HEADER, signWebhook, verifyWebhookSignature } from "./webhook.js";
