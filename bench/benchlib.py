#!/usr/bin/env python3
"""Helpers for bench/run.sh (Python 3 standard library only).

Subcommands:
  freeports N              print N distinct free TCP ports on 127.0.0.1
  procstat PID             print "<cpu_ticks> <rss_kb> <npids>" summed over PID
                           and all its descendants (utime+stime from
                           /proc/P/stat, VmRSS from /proc/P/status)
  tree PID                 print PID and its descendants, one per line
  busy SECONDS             print the machine's busy CPU over SECONDS, in % of
                           one CPU (from /proc/stat): what else is running
  busyticks                print the machine's busy CPU ticks since boot
  jwt SECRET               print an HS256 JWT (sub=bench) signed with SECRET
  render TMPL OUT K=V...   fill {{K}} placeholders of TMPL into OUT, atomically
                           (write OUT.tmp, then rename: what editors and
                           Kubernetes do); fails if a placeholder is left
  wrk FILE                 print the parsed fields of a wrk --latency output
  record ...               parse one wrk run and append a row to runs.tsv
  reloads-applied B A      successful reloads between two /metrics extracts
  report RUN_DIR OUT.md    print the result tables and write them as markdown
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import statistics
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NOISY_PCT = 15  # other processes using more than this % of a CPU = noisy run


# --------------------------------------------------------------------------
# ports and processes
# --------------------------------------------------------------------------

def free_ports(n):
    """Bind n sockets to port 0 at once (so the ports are distinct), then
    release them. The window between release and use is tiny."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (which may contain
    spaces): index 0 is field 3 (state) of proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def proc_tree(root):
    """root and all its descendants (walks the ppid links in /proc)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [int(root)]
    while todo:
        pid = todo.pop()
        if not os.path.exists(f"/proc/{pid}"):
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def proc_stat(root):
    """(cpu ticks, rss kB, number of processes) summed over the tree.
    /proc/P/stat of a process already sums all of its threads."""
    ticks = rss = n = 0
    for pid in proc_tree(root):
        try:
            f = _stat_fields(pid)
            t = int(f[11]) + int(f[12])  # utime (field 14) + stime (field 15)
            r = 0
            with open(f"/proc/{pid}/status") as st:
                for line in st:
                    if line.startswith("VmRSS:"):
                        r = int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue  # the process went away while we looked
        ticks += t
        rss += r
        n += 1
    return ticks, rss, n


def machine_busy_ticks():
    """CPU ticks the whole machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(v[:8]) - v[3] - v[4]


def busy_percent(seconds):
    """CPU time used machine-wide over `seconds`, in % of one CPU."""
    a = machine_busy_ticks()
    time.sleep(seconds)
    return (machine_busy_ticks() - a) * 100.0 / CLK_TCK / seconds


# --------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------

def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(secret, sub="bench", ttl=86400):
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": sub, "iat": now, "nbf": now - 60, "exp": now + ttl,
               "scope": "bench"}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode())
                     + "." +
                     _b64url(json.dumps(payload, separators=(",", ":")).encode()))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------

def render(template, out, pairs):
    with open(template) as f:
        text = f.read()
    for pair in pairs:
        key, _, value = pair.partition("=")
        text = text.replace("{{" + key + "}}", value)
    left = sorted(set(re.findall(r"\{\{[A-Z_]+\}\}", text)))
    if left:
        raise SystemExit(f"render {template}: no value for {', '.join(left)}")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)


# --------------------------------------------------------------------------
# gateway reload metrics
# --------------------------------------------------------------------------

def successful_reloads(path):
    """Sum of the `..._reloads_total{...result="success"...}` samples in a
    saved /metrics extract, or None if there is none."""
    total = None
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r'\w*reloads?_total\{[^}]*"success"[^}]*\}\s+([\d.eE+]+)', line)
                if m:
                    total = (total or 0) + float(m.group(1))
    return total


def cmd_reloads_applied(a):
    before, after = successful_reloads(a.before), successful_reloads(a.after)
    print("?" if after is None else f"{after - (before or 0):.0f}")
    return 0


# --------------------------------------------------------------------------
# wrk output
# --------------------------------------------------------------------------

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_wrk(text):
    """Fields of a `wrk --latency` report. `failed` is non-2xx/3xx responses
    plus socket errors (connect, read, write, timeout)."""
    out = {"requests": None, "seconds": None, "rps": None, "p50_us": None,
           "p99_us": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if m:
        out["requests"] = int(m.group(1))
        out["seconds"] = _to_us(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+(?:us|ms|s|m|h))\s*$", text, re.M)
        if m:
            out[key] = _to_us(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    out["failed"] = out["non2xx"] + out["socket_errors"]
    return out


RUN_COLUMNS = ["target", "conns", "rep", "requests", "seconds", "rps", "p50_us",
               "p99_us", "failed", "cpu_us_per_req", "upstream_cpu_us_per_req",
               "other_cpu_pct"]


def cmd_record(a):
    with open(a.wrk_out) as f:
        w = parse_wrk(f.read())
    if not w["requests"] or w["rps"] is None or w["p50_us"] is None:
        print(f"  ! could not parse wrk output {a.wrk_out}", file=sys.stderr)
        return 1
    us = 1e6 / CLK_TCK
    proxy_ticks = a.ticks_after - a.ticks_before
    up_ticks = 0 if a.direct else a.up_after - a.up_before
    cpu = proxy_ticks * us / w["requests"]
    up = (a.up_after - a.up_before) * us / w["requests"]
    # CPU the rest of the machine used meanwhile: busy time minus the proxy,
    # the upstream and wrk. Near 0 on a quiet machine; more means other
    # processes competed with the benchmark and its numbers are suspect.
    other = (a.busy_after - a.busy_before - proxy_ticks - up_ticks
             - a.wrk_cpu_ms * CLK_TCK / 1000)
    window = a.window[1] - a.window[0]  # wall time between the two samples
    other_pct = max(0.0, other * 100.0 / CLK_TCK / window)
    row = {"target": a.target, "conns": a.conns, "rep": a.rep,
           "requests": w["requests"], "seconds": f"{w['seconds']:.2f}",
           "rps": f"{w['rps']:.1f}", "p50_us": f"{w['p50_us']:.1f}",
           "p99_us": f"{w['p99_us']:.1f}", "failed": w["failed"],
           "cpu_us_per_req": f"{cpu:.2f}", "upstream_cpu_us_per_req": f"{up:.2f}",
           "other_cpu_pct": f"{other_pct:.0f}"}
    new = not os.path.exists(a.tsv)
    with open(a.tsv, "a") as f:
        if new:
            f.write("\t".join(RUN_COLUMNS) + "\n")
        f.write("\t".join(str(row[c]) for c in RUN_COLUMNS) + "\n")
    warn = f"  !! {w['failed']} failed" if w["failed"] else ""
    if other_pct > NOISY_PCT:
        warn += "  !! noisy"
    print(f"  {a.target:<14} c={a.conns:<3} rep {a.rep}: {w['rps']:>10.0f} req/s  "
          f"p50 {w['p50_us']:>7.0f} us  p99 {w['p99_us']:>7.0f} us  "
          f"cpu {cpu:6.2f} us/req  other cpu {other_pct:3.0f}%{warn}")
    return 0


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def _read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if not lines:
        return []
    head = lines[0].split("\t")
    return [dict(zip(head, l.split("\t"))) for l in lines[1:]]


def _read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    out[k] = v
    return out


def _fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def _fmt(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def _table(head, rows, align):
    """A markdown table, padded so that it also reads well in a terminal."""
    cells = [head] + rows
    width = [max(len(r[i]) for r in cells) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(
            (c.rjust(w) if al == "r" else c.ljust(w)) for c, w, al in zip(r, width, align)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if al == "r" else ("-" * (w + 2))
                         for w, al in zip(width, align)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def build_report(run_dir):
    meta = _read_kv(os.path.join(run_dir, "meta.tsv"))
    runs = _read_tsv(os.path.join(run_dir, "runs.tsv"))
    rss = _read_tsv(os.path.join(run_dir, "rss.tsv"))
    reloads = _read_tsv(os.path.join(run_dir, "reload.tsv"))
    skipped = _read_tsv(os.path.join(run_dir, "skipped.tsv"))
    order = meta.get("targets", "").split()

    # medians per (target, conns), each metric on its own
    groups = {}
    for r in runs:
        groups.setdefault((r["target"], int(r["conns"])), []).append(r)
    med = {}
    for key, rs in groups.items():
        m = {k: statistics.median(float(r[k]) for r in rs)
             for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req",
                       "upstream_cpu_us_per_req")}
        m["other_max"] = max(float(r.get("other_cpu_pct") or 0) for r in rs)
        m["failed"] = sum(int(r["failed"]) for r in rs)
        m["n"] = len(rs)
        med[key] = m

    out = []
    out.append(f"Run `{meta.get('run_id', '?')}` on {meta.get('date', '?')}: "
               f"{meta.get('nproc', '?')} × {meta.get('cpu_model', '?')}, "
               f"kernel {meta.get('kernel', '?')}; {meta.get('versions', '')}.")
    out.append(f"wrk -t1, {meta.get('duration', '?')} per run, median of "
               f"{meta.get('repeats', '?')} interleaved runs; pinning: {meta.get('pinning', '?')}.")
    if "background_before" in meta:
        out.append(f"Background CPU load with all targets idle (other processes on the "
                   f"machine): {meta['background_before']}% of one CPU before the runs, "
                   f"{meta.get('background_after', '?')}% after; during each run: "
                   f"the `other CPU %` column.")
    out.append("")

    conns_list = sorted({c for (_, c) in med}, reverse=True)
    head = ["target", "conns", "req/s", "× direct", "× nginx", "p50 µs", "p99 µs",
            "p50 − direct µs", "CPU µs/req", "failed", "other CPU %"]
    align = ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
    noisy = False
    rows = []
    for c in conns_list:
        direct = med.get(("direct", c))
        nginx = med.get(("nginx", c))
        for t in order:
            m = med.get((t, c))
            if not m:
                continue
            rows.append([
                t, str(c), _fmt_int(m["rps"]),
                _fmt(m["rps"] / direct["rps"]) if direct else "—",
                _fmt(m["rps"] / nginx["rps"]) if nginx else "—",
                _fmt(m["p50_us"], 0), _fmt(m["p99_us"], 0),
                _fmt(m["p50_us"] - direct["p50_us"], 0) if direct else "—",
                _fmt(m["cpu_us_per_req"]) + (" ¹" if t == "direct" else ""),
                str(m["failed"]) + (" !!" if m["failed"] else ""),
                f"{m['other_max']:.0f}" + (" !!" if m["other_max"] > NOISY_PCT else ""),
            ])
            noisy = noisy or m["other_max"] > NOISY_PCT
    if rows:
        out.append("### Throughput, latency, CPU per request")
        out.append("")
        out.append(_table(head, rows, align))
        out.append("")
        out.append("¹ for `direct` there is no proxy: the CPU column is the upstream "
                   "nginx's own cost per request. For the other rows it is the "
                   "proxy's (all its processes and threads), upstream excluded. "
                   "`failed` = non-2xx/3xx + socket errors, summed over the runs. "
                   "`other CPU %` = the most CPU (in % of one CPU) that processes other "
                   "than wrk, the proxy and the upstream used during any of the runs.")
        if noisy:
            out.append("")
            out.append(f"**Noisy:** other processes used more than {NOISY_PCT}% of a CPU "
                       "during some runs (rows marked !!); re-run on a quiet machine "
                       "before drawing conclusions from those rows.")
        out.append("")

    if rss:
        out.append(f"### Resident memory with idle keep-alive connections")
        out.append("")
        rrows = []
        for r in rss:
            idle_kb, loaded_kb = float(r["rss_idle_kb"]), float(r["rss_loaded_kb"])
            opened = int(r["opened"])
            per = (loaded_kb - idle_kb) / opened if opened else None
            rrows.append([r["target"], _fmt(idle_kb / 1024, 1), str(r["conns"]),
                          str(opened), _fmt(loaded_kb / 1024, 1),
                          _fmt(per, 2) if per is not None else "—",
                          r["failed"], r["closed_by_peer"]])
        out.append(_table(["target", "RSS idle MB", "conns asked", "conns open",
                           "RSS with conns MB", "KB/conn", "failed", "closed by peer"],
                          rrows, ["l", "r", "r", "r", "r", "r", "r", "r"]))
        out.append("")
        out.append("RSS = sum of VmRSS over the proxy's processes (nginx: master + "
                   "worker); for `direct`, the upstream nginx itself.")
        out.append("")

    if reloads:
        out.append("### Failed requests during reloads under load (wrk -c50)")
        out.append("")
        lrows = [[r["target"], r["trigger"], r["reloads"], r["applied"],
                  _fmt_int(float(r["requests"])), r["non2xx"], r["socket_errors"],
                  r["failed"] + (" !!" if r["failed"] != "0" else "")]
                 for r in reloads]
        out.append(_table(["target", "trigger", "reloads", "applied", "requests",
                           "non-2xx/3xx", "socket errors", "failed"], lrows,
                          ["l", "l", "r", "r", "r", "r", "r", "r"]))
        out.append("")
        out.append("`applied` = the gateway's `reloads_total{result=\"success\"}` "
                   "increase over the test (from /metrics).")
        out.append("")

    checks = goal_checks(med, rss, reloads, meta, runs)
    if checks:
        out.append("### Goals from the issue")
        out.append("")
        out.append(_table(["goal", "measured", "verdict"], checks, ["l", "l", "l"]))
        out.append("")

    if skipped:
        out.append("### Skipped")
        out.append("")
        for s in skipped:
            out.append(f"- `{s['target']}`: {s['reason']}")
        out.append("")
    return "\n".join(out)


def goal_checks(med, rss, reloads, meta, runs=()):
    """The issue's goals for the gateway, checked on whatever was measured."""
    bare = meta.get("goal_bare", "gw-bare")
    jwt = meta.get("goal_jwt", "gw-jwt-rl")
    rows = []

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    def paired(target, c):
        """CPU/req of `target` less `bare`'s in each repeat (the two ran back to back,
        so the machine's drift between repeats cancels out)."""
        by = {}
        for r in runs:
            if int(r["conns"]) == c and r["target"] in (target, bare):
                by.setdefault(r["rep"], {})[r["target"]] = float(r["cpu_us_per_req"])
        return [v[target] - v[bare] for v in by.values() if target in v and bare in v]

    # issue 19: what a proxy-wasm filter adds at c=50
    for target, limit in (("gw-wasm-noop", 3.0), ("gw-wasm-headers", 6.0)):
        d = paired(target, 50)
        if d:
            m = statistics.median(d)
            rows.append([f"{target} CPU/req ≤ {bare} + {limit:g} µs (c=50, issue 19)",
                         f"{m:+.2f} µs (median of {len(d)} paired repeats, "
                         f"{min(d):+.1f} to {max(d):+.1f})", verdict(m <= limit)])

    for c in sorted({c for (_, c) in med}, reverse=True):
        g, n, d = med.get((bare, c)), med.get(("nginx", c)), med.get(("direct", c))
        if g and n:
            rows.append([f"{bare} CPU/req ≤ nginx (c={c})",
                         f"{g['cpu_us_per_req']:.2f} vs {n['cpu_us_per_req']:.2f} µs",
                         verdict(g["cpu_us_per_req"] <= n["cpu_us_per_req"])])
            rows.append([f"{bare} req/s ≥ nginx (c={c})",
                         f"{g['rps']:,.0f} vs {n['rps']:,.0f}", verdict(g["rps"] >= n["rps"])])
            # the engine milestone (issue 11): ≤ 1.5× nginx's CPU, ≥ 0.7× its req/s
            cpu_x = g["cpu_us_per_req"] / n["cpu_us_per_req"]
            rps_x = g["rps"] / n["rps"]
            rows.append([f"{bare} CPU/req ≤ 1.5× nginx (c={c}, engine milestone)",
                         f"{cpu_x:.2f}×", verdict(cpu_x <= 1.5)])
            rows.append([f"{bare} req/s ≥ 0.7× nginx (c={c}, engine milestone)",
                         f"{rps_x:.2f}×", verdict(rps_x >= 0.7)])
        if c == 1 and g and n and d:
            ga, na = g["p50_us"] - d["p50_us"], n["p50_us"] - d["p50_us"]
            rows.append([f"{bare} added p50 latency ≤ nginx's (c=1)",
                         f"{ga:.0f} vs {na:.0f} µs", verdict(ga <= na)])
        j, b = med.get((jwt, c)), med.get((bare, c))
        if j and b:
            extra = j["cpu_us_per_req"] - b["cpu_us_per_req"]
            rows.append([f"{jwt} CPU/req ≤ {bare} + 3 µs (c={c})", f"{extra:+.2f} µs",
                         verdict(extra <= 3.0)])
    for r in rss:
        if r["target"].startswith("gw-"):
            mb = float(r["rss_loaded_kb"]) / 1024
            ok = mb < 64 and int(r["opened"]) == int(r["conns"])
            rows.append([f"{r['target']} RSS with {r['conns']} idle conns < 64 MB",
                         f"{mb:.1f} MB ({r['opened']} open)",
                         verdict(ok) if int(r["conns"]) >= 10000 else "— (goal is at 10,000)"])
            kb = (float(r["rss_loaded_kb"]) - float(r["rss_idle_kb"])) / int(r["conns"])
            rows.append([f"{r['target']} < 10 KB per idle keep-alive connection (engine milestone)",
                         f"{kb:.2f} KB", verdict(kb < 10 and int(r["opened"]) == int(r["conns"]))])
    for r in reloads:
        if r["target"].startswith("gw-"):
            rows.append([f"{r['target']} zero failed requests in {r['reloads']} reloads",
                         f"{r['failed']} failed, {r['applied']} applied",
                         verdict(r["failed"] == "0" and not (
                             r["applied"].isdigit() and int(r["applied"]) < int(r["reloads"])))])
    return rows


def cmd_report(a):
    text = build_report(a.run_dir)
    print(text)
    with open(a.out, "w") as f:
        f.write(text + "\n")
    return 0


# --------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("freeports"); s.add_argument("n", type=int)
    s = sub.add_parser("procstat"); s.add_argument("pid", type=int)
    s = sub.add_parser("tree"); s.add_argument("pid", type=int)
    s = sub.add_parser("busy"); s.add_argument("seconds", type=float)
    sub.add_parser("busyticks")
    s = sub.add_parser("jwt"); s.add_argument("secret")
    s = sub.add_parser("wrk"); s.add_argument("file")
    s = sub.add_parser("render"); s.add_argument("template"); s.add_argument("out")
    s.add_argument("pairs", nargs="*")
    s = sub.add_parser("record")
    s.add_argument("--tsv", required=True)
    s.add_argument("--target", required=True)
    s.add_argument("--conns", type=int, required=True)
    s.add_argument("--rep", type=int, required=True)
    s.add_argument("--wrk-out", required=True)
    s.add_argument("--ticks-before", type=int, required=True)
    s.add_argument("--ticks-after", type=int, required=True)
    s.add_argument("--up-before", type=int, required=True)
    s.add_argument("--up-after", type=int, required=True)
    s.add_argument("--busy-before", type=int, required=True)
    s.add_argument("--busy-after", type=int, required=True)
    s.add_argument("--wrk-cpu-ms", type=int, required=True)
    s.add_argument("--window", type=float, nargs=2, required=True,
                   metavar=("START", "END"), help="epoch seconds of the busy samples")
    s.add_argument("--direct", action="store_true",
                   help="the target is the upstream itself")
    s = sub.add_parser("reloads-applied"); s.add_argument("before"); s.add_argument("after")
    s = sub.add_parser("report"); s.add_argument("run_dir"); s.add_argument("out")
    a = p.parse_args()

    if a.cmd == "freeports":
        print(" ".join(str(x) for x in free_ports(a.n)))
    elif a.cmd == "procstat":
        print(*proc_stat(a.pid))
    elif a.cmd == "tree":
        print("\n".join(str(x) for x in proc_tree(a.pid)))
    elif a.cmd == "busyticks":
        print(machine_busy_ticks())
    elif a.cmd == "busy":
        print(f"{busy_percent(a.seconds):.0f}")
    elif a.cmd == "jwt":
        print(make_jwt(a.secret))
    elif a.cmd == "render":
        render(a.template, a.out, a.pairs)
    elif a.cmd == "wrk":
        with open(a.file) as f:
            w = parse_wrk(f.read())
        print(" ".join(f"{k}={v}" for k, v in w.items()))
    elif a.cmd == "record":
        return cmd_record(a)
    elif a.cmd == "reloads-applied":
        return cmd_reloads_applied(a)
    elif a.cmd == "report":
        return cmd_report(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
