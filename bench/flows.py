#!/usr/bin/env python3
"""Measures the two flows on a running stack (stdlib only).

  bench/flows.py jobs --url http://127.0.0.1:8080 --jobs 5000 --concurrency 64
      submits N async jobs from C keep-alive connections, waits until every job is
      final, and prints jobs/s end to end (first `queued` to last `done`, from the
      jobs' own stage timestamps) and the p50/p99 of each job's queued -> done time.

The pipeline's requests/s is measured with wrk (see bench/flows.sh).
"""
import argparse
import datetime as dt
import http.client
import json
import sys
import threading
import time
import urllib.parse


def ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def worker(host, port, items, out, fn):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for it in items:
        out.append(fn(conn, it))
    conn.close()


def submit(conn, i):
    body = json.dumps({"prompt": f"bench job {i} about the fox", "max_tokens": 24})
    conn.request("POST", "/api/v1/async-process", body, {"content-type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 202:
        raise SystemExit(f"submit answered {r.status}: {data[:200]!r}")
    return json.loads(data)["job_id"]


def poll(conn, job_id):
    while True:
        conn.request("GET", f"/api/v1/jobs/{job_id}")
        r = conn.getresponse()
        j = json.loads(r.read())
        if j.get("status") in ("done", "failed"):
            return j
        time.sleep(0.05)


def split(xs, n):
    return [xs[i::n] for i in range(n)]


def run_parallel(host, port, items, c, fn):
    outs = [[] for _ in range(c)]
    threads = [threading.Thread(target=worker, args=(host, port, part, outs[k], fn))
               for k, part in enumerate(split(items, c))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for o in outs for x in o]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["jobs"])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=64)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    t0 = time.time()
    ids = run_parallel(u.hostname, u.port or 80, list(range(a.jobs)), a.concurrency, submit)
    t1 = time.time()
    jobs = run_parallel(u.hostname, u.port or 80, ids, a.concurrency, poll)
    failed = [j for j in jobs if j["status"] != "done"]
    queued = [ts(j["stages"]["queued"]) for j in jobs]
    done = [ts(j["stages"].get("done") or j["stages"].get("failed")) for j in jobs]
    span = max(done) - min(queued)
    lat = [d - q for q, d in zip(queued, done)]
    results = {j["job_id"] for j in jobs if "result" in j}
    print(f"jobs: {len(jobs)} submitted in {t1 - t0:.2f}s ({len(jobs) / (t1 - t0):.0f}/s accepted), "
          f"failed: {len(failed)}, distinct results: {len(results)}")
    print(f"end to end: {len(jobs) / span:.0f} jobs/s (first queued -> last done {span:.2f}s); "
          f"queued->done p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
