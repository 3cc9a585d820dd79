#!/usr/bin/env python3
"""Paired statistics of bench/wasm_cost.sh's windows (Python 3 standard library only).

  python3 bench/paired.py RUN_DIR/windows.tsv [--out REPORT.md] [--resamples N] [--seed S]
  python3 bench/paired.py --selftest

A windows.tsv has one row per wrk window: round, pos, target, requests, cpu_ns (ns on
CPU summed over the gateway's threads), user_ticks, sys_ticks, errors (+ wrk_s: wrk's own
duration, wall_s: the CPU readings' window, non2xx, socket_errors). CPU per request of a
window = cpu_ns / requests.

The three gateways' windows of one round ran within seconds of each other on the same
machine, so the round's differences (gw-wasm-noop - gw-bare, gw-wasm-headers - gw-bare)
cancel most of what the machine did meanwhile. For each difference this prints the
median over rounds, the mean, a 95% bootstrap confidence interval of the median
(rounds resampled with replacement, fixed seed), the spread (min, IQR, max), and a
verdict against issue 19's targets: "met" when the CI's upper bound is <= the target,
"not met" when its lower bound is > the target, else "undecided". A round with a failed
window (errors > 0 or no requests) is left out of the differences and counted.

Also: each target's median CPU per request (schedstat, and the user/system split from
the ticks of /proc/PID/stat), and a drift check: gw-bare's median in the first and in the
second half of the rounds, and an order check: by position in the round (1st, 2nd,
3rd), the median of a window's CPU per request minus its round's mean.

The tables go to stdout and to report.md beside windows.tsv (or --out).
--selftest builds synthetic windows.tsv files with known differences plus noise and
checks that the verdicts are what they must be; it needs no gateway.
"""

import argparse
import contextlib
import io
import os
import random
import statistics
import sys
import tempfile

BASE = "gw-bare"
# target name -> added CPU µs per request allowed over gw-bare (issue 19, c=50)
TARGETS = {"gw-wasm-noop": 3.0, "gw-wasm-headers": 6.0}
RESAMPLES = 10_000
QUIET_PCT = 10.0  # a round is quiet when other processes used under this % of a CPU
SEED = 19


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------

def read_windows(path):
    """Rows of windows.tsv as dicts (numbers converted)."""
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    if not lines:
        raise SystemExit(f"{path}: empty")
    head, rows = lines[0], []
    need = {"round", "target", "requests", "cpu_ns", "user_ticks", "sys_ticks", "errors"}
    missing = need - set(head)
    if missing:
        raise SystemExit(f"{path}: missing columns {', '.join(sorted(missing))}")
    for cells in lines[1:]:
        r = dict(zip(head, cells))
        for k in ("round", "pos", "requests", "cpu_ns", "user_ticks", "sys_ticks", "errors"):
            if k in r:
                r[k] = int(r[k])
        for k in ("wrk_s", "wall_s", "other_pct"):
            if k in r:
                r[k] = float(r[k])
        rows.append(r)
    return rows


def read_meta(run_dir):
    meta = {}
    try:
        with open(os.path.join(run_dir, "meta.tsv")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                meta[k] = v
    except OSError:
        pass
    return meta


def us_per_req(r):
    return r["cpu_ns"] / 1000.0 / r["requests"]


def failed(r):
    return r["errors"] > 0 or r["requests"] <= 0


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------

def quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def bootstrap_median_ci(xs, resamples=RESAMPLES, seed=SEED, level=0.95):
    """Percentile bootstrap CI of the median: resample xs with replacement."""
    rng = random.Random(seed)
    n = len(xs)
    meds = sorted(statistics.median(rng.choices(xs, k=n)) for _ in range(resamples))
    lo_i = int((1 - level) / 2 * resamples)
    hi_i = min(resamples - 1, int((1 + level) / 2 * resamples))
    return meds[lo_i], meds[hi_i]


def verdict(lo, hi, target):
    if hi <= target:
        return "met"
    if lo > target:
        return "not met"
    return "undecided"


def paired_diffs(by_round, rounds, resamples, seed):
    """Per target: the per-round differences to gw-bare over these rounds, summarised."""
    out = {}
    for n, target in TARGETS.items():
        d = [us_per_req(by_round[k][n]) - us_per_req(by_round[k][BASE]) for k in rounds]
        if not d:
            continue
        lo, hi = bootstrap_median_ci(d, resamples, seed)
        q1, q3 = quartiles(d)
        # what an unpaired comparison of the medians would say
        unpaired = (statistics.median(us_per_req(by_round[k][n]) for k in rounds)
                    - statistics.median(us_per_req(by_round[k][BASE]) for k in rounds))
        out[n] = {"target": target, "n": len(d), "median": statistics.median(d),
                  "mean": statistics.fmean(d), "lo": lo, "hi": hi, "min": min(d),
                  "max": max(d), "q1": q1, "q3": q3, "verdict": verdict(lo, hi, target),
                  "unpaired": unpaired}
    return out


def analyse(rows, resamples=RESAMPLES, seed=SEED, clk_tck=None):
    """Everything the report shows, as a dict."""
    clk_tck = clk_tck or os.sysconf("SC_CLK_TCK")
    by_round = {}
    for r in rows:
        by_round.setdefault(r["round"], {})[r["target"]] = r
    rounds = sorted(by_round)
    names = [BASE] + list(TARGETS)
    complete = [k for k in rounds if all(n in by_round[k] for n in names)]
    bad = [k for k in complete if any(failed(by_round[k][n]) for n in names)]
    good = [k for k in complete if k not in bad]
    res = {"rounds": len(rounds), "complete": len(complete), "failed_rounds": bad,
           "used": len(good), "failed_windows": sum(1 for r in rows if failed(r)),
           "per_target": {}, "diffs": {}, "drift": None}
    for n in names:
        ws = [by_round[k][n] for k in good]
        if not ws:
            continue
        cpu = [us_per_req(w) for w in ws]
        user = [w["user_ticks"] / clk_tck * 1e6 / w["requests"] for w in ws]
        sys_ = [w["sys_ticks"] / clk_tck * 1e6 / w["requests"] for w in ws]
        rps = [w["requests"] / w["wrk_s"] for w in ws if w.get("wrk_s")]
        res["per_target"][n] = {
            "median": statistics.median(cpu), "min": min(cpu), "max": max(cpu),
            "user": statistics.median(user), "sys": statistics.median(sys_),
            "ticks_total": statistics.median([u + s for u, s in zip(user, sys_)]),
            "rps": statistics.median(rps) if rps else None, "n": len(cpu)}
    res["diffs"] = paired_diffs(by_round, good, resamples, seed)
    # others' CPU during the windows (runs from before the column have none)
    if good and all("other_pct" in by_round[k][n] for k in good for n in names):
        worst = {k: max(by_round[k][n]["other_pct"] for n in names) for k in good}
        quiet = [k for k in good if worst[k] < QUIET_PCT]
        res["other"] = {"median": statistics.median(worst.values()),
                        "max": max(worst.values()), "quiet": len(quiet)}
        if len(quiet) >= 10 and len(quiet) < len(good):
            res["quiet_diffs"] = paired_diffs(by_round, quiet, resamples, seed)
    by_pos = {}
    for k in good:
        ws = [by_round[k][n] for n in names]
        mean = statistics.fmean(us_per_req(w) for w in ws)
        for w in ws:
            if "pos" in w:
                by_pos.setdefault(w["pos"], []).append(us_per_req(w) - mean)
    res["order"] = {p: statistics.median(v) for p, v in sorted(by_pos.items())}
    if len(good) >= 4:
        half = len(good) // 2
        first = [us_per_req(by_round[k][BASE]) for k in good[:half]]
        second = [us_per_req(by_round[k][BASE]) for k in good[half:]]
        res["drift"] = (statistics.median(first), statistics.median(second), half,
                        len(good) - half)
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def _s(x):
    return f"{x:+.2f}"


def markdown(res, meta=None, source=""):
    meta = meta or {}
    out = []
    title = "Wasm filter cost, interleaved (bench/wasm_cost.sh)"
    out.append(f"### {title}")
    out.append("")
    facts = []
    if source:
        facts.append(f"data `{source}`")
    for k, label in (("date", "date"), ("commit", "commit"), ("gateway_built", "binary built"),
                     ("gateway_sha256", "binary sha256"), ("window_s", "window s"),
                     ("conns", "wrk -c"), ("seed", "order seed"), ("pinning", "pinning"),
                     ("loadavg_before", "load avg before"), ("loadavg_after", "load avg after")):
        if meta.get(k):
            facts.append(f"{label} {meta[k]}")
    facts.append(f"rounds {res['rounds']} ({res['used']} used"
                 + (f", {len(res['failed_rounds'])} with a failed window left out: "
                    f"{', '.join(map(str, res['failed_rounds']))}" if res["failed_rounds"] else "")
                 + ")")
    out.append("; ".join(facts) + ".")
    out.append("")
    out.append("CPU per request of each gateway (median over rounds; schedstat ns, all threads; "
               "user/system from /proc/PID/stat ticks):")
    out.append("")
    out.append("| target | CPU µs/req | min | max | user µs | system µs | ticks total µs | req/s |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, p in res["per_target"].items():
        rps = f"{p['rps']:,.0f}" if p["rps"] else "—"
        out.append(f"| {n} | {p['median']:.2f} | {p['min']:.2f} | {p['max']:.2f} | "
                   f"{p['user']:.2f} | {p['sys']:.2f} | {p['ticks_total']:.2f} | {rps} |")
    out.append("")
    out.append("Added CPU per request over gw-bare, paired by round (same round = same machine "
               "state), 95% bootstrap CI of the median:")
    out.append("")
    out.append("| difference | rounds | median | 95% CI of median | mean | min | IQR | max "
               "| unpaired | target | verdict |")
    out.append("|---|---|---:|---|---:|---:|---|---:|---:|---:|---|")
    sets = [("all", res["diffs"])]
    if res.get("quiet_diffs"):
        sets.append((f"quiet (others < {QUIET_PCT:g}%)", res["quiet_diffs"]))
    for label, diffs in sets:
        for n, d in diffs.items():
            out.append(f"| {n} − {BASE} | {label}: {d['n']} | **{_s(d['median'])}** | "
                       f"[{_s(d['lo'])}, {_s(d['hi'])}] | {_s(d['mean'])} | {_s(d['min'])} | "
                       f"{_s(d['q1'])} .. {_s(d['q3'])} | {_s(d['max'])} | "
                       f"{_s(d['unpaired'])} | ≤ +{d['target']:g} | **{d['verdict']}** |")
    out.append("")
    out.append("Verdict rule: met if the CI's upper bound ≤ target; not met if its lower bound "
               "> target; else undecided. \"unpaired\" is the difference of the per-target "
               "medians, for comparison.")
    if res["drift"]:
        a, b, n1, n2 = res["drift"]
        out.append("")
        out.append(f"Drift check: gw-bare's median CPU per request {a:.2f} µs in the first "
                   f"{n1} rounds, {b:.2f} µs in the last {n2} ({_s(b - a)} µs).")
    if res.get("other"):
        o = res["other"]
        out.append("")
        out.append(f"Other processes' CPU during a round (its busiest window, % of one CPU): "
                   f"median {o['median']:.1f}%, max {o['max']:.1f}%; {o['quiet']} of "
                   f"{res['used']} rounds under {QUIET_PCT:g}%"
                   + (" (their verdict is the \"quiet\" row; the \"all\" row is the run's)"
                      if res.get("quiet_diffs") else "") + ".")
    if res.get("order"):
        out.append("")
        out.append("Order check (a window's CPU per request minus its round's mean, median by "
                   "position in the round): "
                   + ", ".join(f"position {p} {_s(v)} µs" for p, v in res["order"].items()) + ".")
    warn = []
    if res["failed_windows"]:
        warn.append(f"{res['failed_windows']} window(s) had failed requests or served none "
                    f"(their rounds are left out): run flagged")
    if res["used"] < 10:
        warn.append(f"only {res['used']} usable rounds: a smoke run, not a verdict")
    if warn:
        out.append("")
        out.append("**Warnings:** " + "; ".join(warn) + ".")
    return "\n".join(out) + "\n"


def report(path, out_path=None, resamples=RESAMPLES, seed=SEED):
    run_dir = os.path.dirname(os.path.abspath(path))
    meta = read_meta(run_dir)
    clk = int(meta["clk_tck"]) if meta.get("clk_tck", "").isdigit() else None
    res = analyse(read_windows(path), resamples, seed, clk)
    if not res["diffs"]:
        raise SystemExit(f"{path}: no round has a usable window of all of "
                         f"{BASE}, {', '.join(TARGETS)}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(run_dir)))
    text = markdown(res, meta, os.path.relpath(path, root) if path.startswith(root) else path)
    sys.stdout.write(text)
    out_path = out_path or os.path.join(run_dir, "report.md")
    with open(out_path, "w") as f:
        f.write(text)
    return res


# --------------------------------------------------------------------------
# several runs pooled
# --------------------------------------------------------------------------

def round_diffs(rows):
    """Per target: the differences to gw-bare of each complete round without a failed
    window (one run's)."""
    by_round = {}
    for r in rows:
        by_round.setdefault(r["round"], {})[r["target"]] = r
    names = [BASE] + list(TARGETS)
    good = [k for k in sorted(by_round)
            if all(n in by_round[k] and not failed(by_round[k][n]) for n in names)]
    return {n: [us_per_req(by_round[k][n]) - us_per_req(by_round[k][BASE]) for k in good]
            for n in TARGETS}


def pooled(paths, resamples=RESAMPLES, seed=SEED):
    """Runs of bench/wasm_cost.sh pooled. Each run has its own gateway processes, whose
    placement (code and heap layout) shifts their CPU per request by about a
    microsecond, which the rounds of one run share: its confidence interval misses that.
    Here the runs are the clusters of a two-level bootstrap (runs resampled, then rounds
    within each), so the interval holds the spread between processes too."""
    runs = [round_diffs(read_windows(p)) for p in paths]
    rng = random.Random(seed)
    out = ["### Wasm filter cost, pooled runs (bench/paired.py --pool)", "",
           f"runs: {', '.join(paths)}", "",
           "| difference | " + " | ".join(f"run {i + 1}" for i in range(len(runs)))
           + " | pooled median | 95% CI (runs, then rounds, resampled) | target | verdict |",
           "|---|" + "---:|" * len(runs) + "---:|---|---:|---|"]
    for n, target in TARGETS.items():
        per = [r[n] for r in runs if r[n]]
        if not per:
            continue
        meds = []
        for _ in range(resamples):
            pick = rng.choices(per, k=len(per))
            meds.append(statistics.median(
                [x for d in pick for x in rng.choices(d, k=len(d))]))
        meds.sort()
        lo = meds[int(0.025 * resamples)]
        hi = meds[min(resamples - 1, int(0.975 * resamples))]
        cells = " | ".join(f"{_s(statistics.median(d))} ({len(d)})" for d in per)
        all_d = [x for d in per for x in d]
        out.append(f"| {n} − {BASE} | {cells} | **{_s(statistics.median(all_d))}** | "
                   f"[{_s(lo)}, {_s(hi)}] | ≤ +{target:g} | **{verdict(lo, hi, target)}** |")
    out += ["", "Per run: the median of its rounds' paired differences (rounds used). With "
            "few runs the interval is wide: it is the honest one.", ""]
    text = "\n".join(out)
    sys.stdout.write(text)
    return text


# --------------------------------------------------------------------------
# self-test
# --------------------------------------------------------------------------

def synthetic(path, add_noop, add_headers, rounds=40, shared_sd=8.0, own_sd=1.0, seed=1,
              fail_round=None):
    """A windows.tsv whose rounds share a large machine-state noise (shared_sd µs, like
    this VM's window-to-window swings) plus each window's own noise (own_sd)."""
    rng = random.Random(seed)
    adds = {BASE: 0.0, "gw-wasm-noop": add_noop, "gw-wasm-headers": add_headers}
    with open(path, "w") as f:
        f.write("round\tpos\ttarget\trequests\twrk_s\tcpu_ns\tuser_ticks\tsys_ticks\t"
                "non2xx\tsocket_errors\terrors\tother_pct\n")
        for k in range(1, rounds + 1):
            shared = rng.gauss(0, shared_sd)
            names = list(adds)
            rng.shuffle(names)
            for pos, n in enumerate(names, 1):
                us = 55.0 + shared + adds[n] + rng.gauss(0, own_sd)
                reqs = 20_000
                cpu_ns = int(us * 1000 * reqs)
                ticks = cpu_ns // 10_000_000
                err = 5 if (k == fail_round and n == BASE) else 0
                f.write(f"{k}\t{pos}\t{n}\t{reqs}\t2.0\t{cpu_ns}\t{ticks // 3}\t"
                        f"{ticks - ticks // 3}\t{err}\t0\t{err}\t2.0\n")


def selftest():
    cases = [
        # (noop add, headers add, own noise sd, expected noop verdict, expected headers)
        ("well under", 1.0, 2.0, 1.0, "met", "met"),
        ("well over", 8.0, 14.0, 1.0, "not met", "not met"),
        ("at the targets", 3.0, 6.0, 2.0, "undecided", "undecided"),
        ("mixed", 0.5, 12.0, 1.0, "met", "not met"),
    ]
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for i, (name, a_noop, a_hdr, own, want_noop, want_hdr) in enumerate(cases):
            p = os.path.join(d, f"{name.replace(' ', '-')}.tsv")
            synthetic(p, a_noop, a_hdr, own_sd=own, seed=100 + i)
            res = analyse(read_windows(p), resamples=2000, clk_tck=100)
            got = (res["diffs"]["gw-wasm-noop"]["verdict"], res["diffs"]["gw-wasm-headers"]["verdict"])
            good = got == (want_noop, want_hdr)
            ok &= good
            dn, dh = res["diffs"]["gw-wasm-noop"], res["diffs"]["gw-wasm-headers"]
            print(f"{'ok  ' if good else 'FAIL'} {name}: noop +{a_noop} -> {dn['median']:+.2f} "
                  f"[{dn['lo']:+.2f}, {dn['hi']:+.2f}] {got[0]}; headers +{a_hdr} -> "
                  f"{dh['median']:+.2f} [{dh['lo']:+.2f}, {dh['hi']:+.2f}] {got[1]} "
                  f"(want {want_noop} / {want_hdr})")
        # Pairing matters: with the shared noise, the unpaired per-target medians wander by
        # several µs, the paired median stays within its own noise of the truth.
        p = os.path.join(d, "pairing.tsv")
        synthetic(p, 1.0, 2.0, shared_sd=8.0, own_sd=1.0, seed=3)
        res = analyse(read_windows(p), resamples=2000, clk_tck=100)
        d_noop = res["diffs"]["gw-wasm-noop"]
        good = abs(d_noop["median"] - 1.0) < 1.0 and d_noop["hi"] - d_noop["lo"] < 2.0
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} pairing: CI width {d_noop['hi'] - d_noop['lo']:.2f} µs "
              f"with 8 µs of shared noise per round (unpaired estimate {d_noop['unpaired']:+.2f})")
        # Pooled runs: one whose processes sit 3 µs dearer widens the interval to
        # "undecided" where each run alone looks decided.
        runs = []
        for i, shift in enumerate((0.0, 3.0)):
            p = os.path.join(d, f"run{i}.tsv")
            synthetic(p, 1.0 + shift, 2.0, own_sd=0.5, seed=40 + i)
            runs.append(p)
        with contextlib.redirect_stdout(io.StringIO()):
            text = pooled(runs, resamples=500)
        row = next(l for l in text.splitlines() if l.startswith("| gw-wasm-noop"))
        good = "undecided" in row
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} pooled runs 3 µs apart: {row}")
        # A round with a failed window is left out and counted, not averaged in.
        p = os.path.join(d, "failed.tsv")
        synthetic(p, 1.0, 2.0, rounds=12, fail_round=5)
        res = analyse(read_windows(p), resamples=500, clk_tck=100)
        good = res["used"] == 11 and res["failed_rounds"] == [5] and res["failed_windows"] == 1
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} failed window: {res['used']} of 12 rounds used, "
              f"left out {res['failed_rounds']}")
        # Drift: a machine that slows down halfway shows in the check.
        p = os.path.join(d, "drift.tsv")
        synthetic(p, 1.0, 2.0, shared_sd=0.5, seed=5)
        rows = read_windows(p)
        for r in rows:
            if r["round"] > 20:
                r["cpu_ns"] += 10 * 1000 * r["requests"]
        res = analyse(rows, resamples=500, clk_tck=100)
        a, b, _, _ = res["drift"]
        good = 9.0 < b - a < 11.0 and res["diffs"]["gw-wasm-noop"]["verdict"] == "met"
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} drift: bare {a:.2f} -> {b:.2f} µs, "
              f"noop verdict still {res['diffs']['gw-wasm-noop']['verdict']}")
        # Rounds disturbed by other processes are shown apart: the quiet rounds' verdict.
        p = os.path.join(d, "noisy.tsv")
        synthetic(p, 1.0, 2.0, seed=6)
        rows = read_windows(p)
        for r in rows:
            if r["round"] % 3 == 0:  # 13 of 40 rounds: a build ran on the noop's core
                r["other_pct"] = 60.0
                if r["target"] == "gw-wasm-noop":
                    r["cpu_ns"] += 12 * 1000 * r["requests"]
        res = analyse(rows, resamples=2000, clk_tck=100)
        q = res.get("quiet_diffs", {}).get("gw-wasm-noop", {})
        good = (res["other"]["quiet"] == 27 and q.get("verdict") == "met"
                and res["diffs"]["gw-wasm-noop"]["mean"] > 4)
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} noisy rounds: {res['other']['quiet']} quiet of 40, "
              f"quiet verdict {q.get('verdict')}, all-rounds mean "
              f"{res['diffs']['gw-wasm-noop']['mean']:+.2f}")
        # The report renders.
        text = markdown(res)
        good = all(x in text for x in ("| gw-wasm-noop − gw-bare | all: 40", "quiet (others",
                                            "Drift check", "position 3", "Other processes"))
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} markdown report renders")
    print("selftest: " + ("all passed" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("windows", nargs="*", help="a windows.tsv of bench/wasm_cost.sh "
                    "(several with --pool)")
    ap.add_argument("--pool", action="store_true",
                    help="pool several runs (each its own processes): two-level bootstrap")
    ap.add_argument("--out", help="report path [report.md beside windows.tsv]")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--selftest", action="store_true", help="check the verdict logic")
    a = ap.parse_args()
    if a.selftest:
        return selftest()
    if not a.windows:
        ap.error("give a windows.tsv (or --selftest)")
    if a.pool:
        text = pooled(a.windows, a.resamples, a.seed)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        return 0
    if len(a.windows) > 1:
        ap.error("one windows.tsv, or several with --pool")
    report(a.windows[0], a.out, a.resamples, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
