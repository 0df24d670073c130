#!/usr/bin/env python3
"""Table of a bench/cluster.sh results directory (medians over runs).

For redis-2 the fan-out JSON covers node B's half of the subscribers; node
A's half comes from its shard's per-step replies (`S step count first last
sum max sparse-histogram`, receive times in microseconds). The cluster's
deliveries/s is B's rate scaled by (A's + B's deliveries) / B's — both halves
are fed by the same publishes in the same step.
"""
import glob
import json
import os
import statistics
import sys


def hval(i):
    """A histogram bucket's value, as loadgen computes it."""
    if i < 2048:
        return i
    e = (i - 2048) // 1024 + 11
    sub = (i - 2048) % 1024
    return (1 << e) | (sub << (e - 10))


def pct(buckets, p):
    n = sum(buckets.values())
    if n == 0:
        return 0
    rank = max(1, int(-(-p * n // 1)))
    acc = 0
    for i in sorted(buckets):
        acc += buckets[i]
        if acc >= rank:
            return hval(i)
    return 0


def shard_steps(path):
    """step -> (count, p99 us) from a shard's output."""
    steps = {}
    if not os.path.exists(path):
        return steps
    for line in open(path):
        parts = line.split()
        if not parts or parts[0] != "S" or len(parts) < 8:
            continue
        step, count = int(parts[1]), int(parts[2])
        buckets = {}
        if parts[7] != "-":
            for kv in parts[7].strip(",").split(","):
                i, c = kv.split(":")
                buckets[int(i)] = buckets.get(int(i), 0) + int(c)
        steps[step] = (count, pct(buckets, 0.99))
    return steps


def figures(path, shard=None):
    data = json.load(open(path))
    steps = data["steps"]
    half = shard_steps(shard) if shard else {}
    peak, peak_cluster, p99_10, p99_10_a, missing, missing_a = 0, 0, None, None, 0, 0
    for s in steps:
        dps = s["deliveries_per_s"]
        peak = max(peak, dps)
        missing += s["missing"]
        if shard:
            count_a, p99_a = half.get(s["step"], (0, 0))
            # A's half: the same messages, to as many subscribers as B's.
            missing_a += max(0, s["expected"] - count_a)
            if s["delivered"]:
                peak_cluster = max(peak_cluster, dps * (s["delivered"] + count_a) / s["delivered"])
            if s["rate_msgs_per_s"] == 10:
                p99_10_a = p99_a / 1000
        if s["rate_msgs_per_s"] == 10:
            p99_10 = s["lat_us"]["p99"] / 1000
    return {
        "connected": data["connected"],
        "requested": data["subs_requested"],
        "peak": peak if not shard else peak_cluster,
        "p99_10": p99_10,
        "p99_10_a": p99_10_a,
        "missing": missing + missing_a,
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else sorted(glob.glob("target/bench-results/cluster-*"))[-1]
    rows = []
    for setup in ["memory", "redis-1", "redis-2"]:
        runs = sorted(glob.glob(os.path.join(out, f"{setup}-[0-9]*.json")))
        controls = [
            json.load(open(c))["msgs_per_s"]
            for c in glob.glob(os.path.join(out, f"{setup}-control-[0-9]*.json"))
        ]
        if not runs:
            continue
        got = []
        for r in runs:
            n = r.rsplit("-", 1)[1].split(".")[0]
            shard = os.path.join(out, f"shard-a-{n}.out") if setup == "redis-2" else None
            got.append(figures(r, shard))
        med = lambda k: statistics.median([g[k] for g in got if g[k] is not None]) if any(g[k] is not None for g in got) else None
        control = statistics.median(controls) if controls else None
        rows.append((setup, len(got), got, med, control))
    print(f"results: {out}\n")
    print("| setup | runs | subscribers connected | peak deliveries/s | p99 @ 10 msg/s | messages missing (worst run) | pipelined ADDMESSAGE/s |")
    print("|---|---|---|---|---|---|---|")
    for setup, n, got, med, control in rows:
        connected = f"{min(g['connected'] for g in got)}/{got[0]['requested']}"
        if setup == "redis-2":
            connected = f"{connected} on B + {got[0]['requested']} held on A"
        p99 = med("p99_10")
        p99_text = f"{p99:.1f} ms" if p99 is not None else "—"
        if setup == "redis-2" and med("p99_10_a") is not None:
            p99_text = f"B {p99_text}, A {med('p99_10_a'):.1f} ms"
        control_text = f"{control / 1e3:,.0f}k" if control else "—"
        print(f"| {setup} | {n} | {connected} | {med('peak') / 1e3:,.0f}k | {p99_text} | {max(g['missing'] for g in got)} | {control_text} |")


if __name__ == "__main__":
    main()
