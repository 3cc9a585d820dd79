/** Verifying the gateway's job webhooks: `X-Signature: sha256=<hex HMAC-SHA256 of
 * the exact body, keyed by WEBHOOK_SECRET>`. Web Crypto: Node 20+ and browsers. */

export const SIGNATURE_HEADER = "X-Signature";

type Bytes = string | Uint8Array | ArrayBuffer;

function bytes(v: Bytes): Uint8Array<ArrayBuffer> {
  if (typeof v === "string") return new TextEncoder().encode(v);
  return v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array(v);
}

function subtle(): SubtleCrypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c?.subtle) throw new Error("Web Crypto (globalThis.crypto.subtle) is not available");
  return c.subtle;
}

async function key(secret: Bytes, usage: "sign" | "verify"): Promise<CryptoKey> {
  return subtle().importKey("raw", bytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** The `X-Signature` value the gateway sends for `body`. */
export async function signWebhook(body: Bytes, secret: Bytes): Promise<string> {
  const mac = new Uint8Array(await subtle().sign("HMAC", await key(secret, "sign"), bytes(body)));
  return "sha256=" + Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when `header` (the `X-Signature` value) signs `body` (the raw request body,
 * before any JSON parsing) with `secret`. The MAC is checked by Web Crypto's
 * `verify`, in constant time. */
export async function verifyWebhookSignature(body: Bytes, header: string | null | undefined, secret: Bytes): Promise<boolean> {
  if (!header || bytes(secret).length === 0) return false;
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!m) return false;
  const hex = m[1]!;
  const sig = new Uint8Array(32);
  for (let i = 0; i < 32; i++) sig[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return subtle().verify("HMAC", await key(secret, "verify"), sig, bytes(body));
}
