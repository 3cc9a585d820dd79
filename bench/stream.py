#!/usr/bin/env python3
"""Token streams under load: CLIENTS concurrent `POST ... "stream": true` requests of
TOKENS tokens each, all opened at once, on raw asyncio sockets (HTTP/1.1, one
connection per stream). Reports time to first token (first `data:` byte, from the
request's send) p50/p99, whole-stream time (read to the connection's close: the
request says `Connection: close`), events received, and, for a watched
process (`--pid`), its CPU seconds over the run and its peak RSS while the streams are
open; with `--others PID,...` (the stack's processes), the CPU the rest of the machine
used during the run (`other_cpu_pct`, % of one CPU: process time from /proc/stat less
those processes and this client), interrupts (`irq_pct`, mostly this run's own loopback
packets) and the time the hypervisor took (`steal_pct`). Prints one JSON line.

Usage: stream.py --url http://127.0.0.1:19080/api/v1/generate --clients 500 --tokens 200 [--pid N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_user_system(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_user_system(pid))


def machine_cpu_seconds() -> tuple[float, float, float]:
    """(busy, irq, steal): CPU time of all CPUs spent in processes (user, nice,
    system), in interrupts (irq, softirq: on loopback mostly this run's own packets,
    attributed to no process), and stolen by the hypervisor (/proc/stat)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system) / TICK, (irq + softirq) / TICK, steal / TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


async def one(host: str, port: int, path: str, body: bytes, out: list, started: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    req = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    await started.wait()
    t0 = time.perf_counter()
    writer.write(req)
    await writer.drain()
    first = None
    events = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        now = time.perf_counter()
        n = chunk.count(b"data:")
        if n and first is None:
            first = now - t0
        events += n
    total = time.perf_counter() - t0
    writer.close()
    out.append((first, total, events))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--label", default="")
    ap.add_argument("--expect", type=int, help="events in a whole stream (default tokens + 1)")
    ap.add_argument("--others", default="", help="PID,...: the stack's processes (for other_cpu_pct)")
    a = ap.parse_args()
    u = urlsplit(a.url)
    body = json.dumps({"prompt": "The fox and the", "max_tokens": a.tokens, "stream": True}).encode()
    out: list = []
    started = asyncio.Event()
    rss0 = rss_bytes(a.pid) if a.pid else 0
    user0, sys0 = cpu_user_system(a.pid) if a.pid else (0.0, 0.0)
    cpu0 = user0 + sys0
    tasks = [
        asyncio.create_task(one(u.hostname or "127.0.0.1", u.port or 80, u.path, body, out, started))
        for _ in range(a.clients)
    ]
    await asyncio.sleep(0.5)  # connections opened
    peak = rss0
    stack = [int(p) for p in a.others.split(",") if p]
    (busy0, irq0, steal0), own0 = machine_cpu_seconds(), time.process_time()
    stack0 = sum(cpu_seconds(p) for p in stack)
    t0 = time.perf_counter()
    started.set()
    while not all(t.done() for t in tasks):
        if a.pid:
            peak = max(peak, rss_bytes(a.pid))
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - t0
    busy1, irq1, steal1 = machine_cpu_seconds()
    busy, irq, steal = busy1 - busy0, irq1 - irq0, steal1 - steal0
    ours = sum(cpu_seconds(p) for p in stack) - stack0 + time.process_time() - own0
    for t in tasks:
        t.result()
    firsts = [f for f, _, _ in out if f is not None]
    events = sum(e for _, _, e in out)
    res = {
        "label": a.label,
        "clients": a.clients,
        "tokens": a.tokens,
        "streams_ok": sum(1 for _, _, e in out if e == (a.expect or a.tokens + 1)),
        "events": events,
        "wall_s": round(wall, 3),
        "ttft_p50_ms": round(pct(firsts, 50) * 1000, 2),
        "ttft_p99_ms": round(pct(firsts, 99) * 1000, 2),
        "stream_p50_ms": round(pct([t for _, t, _ in out], 50) * 1000, 1),
    }
    if stack:
        res["client_cpu_s"] = round(time.process_time() - own0, 2)
        res["other_cpu_pct"] = round(max(busy - ours, 0.0) / wall * 100, 1)
        res["irq_pct"] = round(irq / wall * 100, 1)
        res["steal_pct"] = round(steal / wall * 100, 1)
    if a.pid:
        cpu = cpu_seconds(a.pid) - cpu0
        res["cpu_s"] = round(cpu, 3)
        res["cpu_us_per_event"] = round(cpu / max(events, 1) * 1e6, 2)
        user1, sys1 = cpu_user_system(a.pid)
        res["user_us_per_event"] = round((user1 - user0) / max(events, 1) * 1e6, 2)
        res["sys_us_per_event"] = round((sys1 - sys0) / max(events, 1) * 1e6, 2)
        res["rss_idle_mb"] = round(rss0 / 2**20, 1)
        res["rss_peak_mb"] = round(peak / 2**20, 1)
        res["rss_per_stream_kb"] = round((peak - rss0) / max(a.clients, 1) / 1024, 1)
    print(json.dumps(res))


asyncio.run(main())
