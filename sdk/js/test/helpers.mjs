// Test helpers: the gateway under test, and a local scripted HTTP server playing the
// gateway's 429/503 answers (the default routes have no rate_limit plugin).
import http from "node:http";

export const GATEWAY_URL = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";

/** Answers each request with the next [status, headers, body] (JSON, or a string sent
 * as it is); the last repeats. */
export async function scripted(answers) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const [status, headers, body] = answers[Math.min(requests.length, answers.length) - 1];
      res.writeHead(status, { "content-type": "application/json", "x-request-id": `scripted-${requests.length}`, ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body)); // a string as it is
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  server.unref(); // a failed test must not keep the process alive
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, requests, close: () => new Promise((r) => server.close(r)) };
}
