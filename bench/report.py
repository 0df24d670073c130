#!/usr/bin/env python3
"""Summarise loadgen results (bench/run.sh) as a markdown table.

usage: bench/report.py [RESULTS_DIR]

RESULTS_DIR holds <target>-fanout-<run>.json and <target>-control-<run>.json as written
by `loadgen fanout|control --out`; default: the newest directory under
target/bench-results/.  Every figure is the median over runs, except "missing", which
is the worst run.  Standard library only.
"""

import glob
import json
import os
import re
import statistics
import sys

REF = "baseline"
OURS = "meteord"

# targets from bench/README.md
PEAK_MIN_RATIO = 0.8
P99_MAX_RATIO = 1.1
RSS_MAX_BYTES = 4096
PIPE_MIN_RATIO = 0.5


def newest_results_dir():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench-results")
    dirs = [d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d)]
    if not dirs:
        sys.exit(f"report.py: no results under {os.path.normpath(root)}; run bench/run.sh first")
    return max(dirs, key=os.path.getmtime)


def load(path):
    with open(path) as f:
        return json.load(f)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rate_key(rate):
    return "max" if rate == "max" else float(rate)


def fmt_rate(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt_ms(us):
    if us is None:
        return "n/a"
    ms = us / 1000.0
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.2f} ms"


def fmt_bytes(b):
    if b is None:
        return "n/a"
    return f"{b / 1024:.2f} KiB"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def fanout_metrics(j):
    steps = j.get("steps", [])
    p99_10 = None
    for s in steps:
        if s.get("rate_msgs_per_s") != "max" and float(s["rate_msgs_per_s"]) == 10.0:
            p99_10 = s["lat_us"]["p99"]
    expected = sum(s.get("expected", 0) for s in steps)
    delivered = sum(s.get("delivered", 0) for s in steps)
    return {
        "peak": max((s.get("deliveries_per_s", 0.0) for s in steps), default=None),
        "p99_10": p99_10,
        "rss_per_sub": j.get("rss_per_sub_bytes"),
        "connected": j.get("connected", 0),
        "requested": j.get("subs_requested", 0),
        "connect_failures": j.get("connect_failures", 0),
        "disconnects": j.get("disconnects_during_run", 0),
        "missing": sum(s.get("missing", 0) for s in steps),
        # loadgen's "missing" is expected - delivered clamped at 0 per step, so
        # duplicate deliveries would hide losses; report the surplus separately
        "surplus": sum(max(0, s.get("delivered", 0) - s.get("expected", 0)) for s in steps),
        "expected": expected,
        "delivered": delivered,
        "pub_errors": sum(s.get("pub_errors", 0) for s in steps),
        "unacked": sum(max(0, s.get("msgs_sent", 0) - s.get("pub_acks", 0) - s.get("pub_errors", 0)) for s in steps),
        "errors": j.get("errors", {}),
        "steps": {rate_key(s["rate_msgs_per_s"]): s for s in steps},
    }


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else newest_results_dir()
    if not os.path.isdir(d):
        sys.exit(f"report.py: {d} is not a directory")
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        meta = load(os.path.join(d, "meta.json"))

    fan, ctl = {}, {}
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        m = re.match(r"(.+)-(fanout|control)-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        j = load(path)
        target = j.get("label") or m.group(1)
        if m.group(2) == "fanout":
            fan.setdefault(target, []).append(fanout_metrics(j))
        else:
            ctl.setdefault(target, []).append(j)
    targets = [t for t in (REF, OURS) if t in fan or t in ctl]
    targets += sorted(t for t in set(fan) | set(ctl) if t not in targets)
    if not targets:
        sys.exit(f"report.py: no loadgen results in {d}")

    summary = {}
    for t in targets:
        runs = fan.get(t, [])
        c = ctl.get(t, [])
        summary[t] = {
            "runs": max(len(runs), len(c)),
            "peak": med([r["peak"] for r in runs]),
            "p99_10": med([r["p99_10"] for r in runs]),
            "rss_per_sub": med([r["rss_per_sub"] for r in runs]),
            "pipe": med([x.get("msgs_per_s") for x in c]),
            "connected": med([r["connected"] for r in runs]),
            "requested": max([r["requested"] for r in runs], default=0),
            "missing": max([r["missing"] for r in runs], default=None),
            "surplus": max([r["surplus"] for r in runs], default=0),
            "connect_failures": max([r["connect_failures"] for r in runs], default=0),
            "disconnects": max([r["disconnects"] for r in runs], default=0),
            "pub_errors": max([r["pub_errors"] for r in runs], default=0),
            "unacked": max([r["unacked"] for r in runs], default=0),
            "ctl_errors": max([x.get("errors", 0) for x in c], default=0),
            "ctl_unacked": max([x.get("sent", 0) - x.get("acked", 0) - x.get("errors", 0) for x in c], default=0),
            "ctl_short": max([x.get("count", 0) - x.get("sent", 0) for x in c], default=0),
            "errors": {},
        }
        for r in runs:
            for k, v in r["errors"].items():
                summary[t]["errors"][k] = summary[t]["errors"].get(k, 0) + v

    out = []
    nruns = max(s["runs"] for s in summary.values())
    subs = meta.get("subs", summary[targets[0]]["requested"])
    desc = f"{subs} subscribers, {nruns} run(s), medians"
    if meta:
        desc += f"; rates {meta.get('rates')} msg/s, --msgs {meta.get('msgs')}, control --count {meta.get('control_count')}, {meta.get('nproc')} CPUs"
        if meta.get("quick"):
            desc += "; QUICK smoke run"
    out.append(f"## Fan-out benchmark ({desc})")
    out.append("")
    out.append(f"Results: `{os.path.abspath(d)}`")
    out.append("")
    out.append("| target | connected | peak deliveries/s | p99 @ 10 msg/s | RSS per idle sub | pipelined ADDMESSAGE/s | messages missing |")
    out.append("|---|---|---|---|---|---|---|")
    for t in targets:
        s = summary[t]
        conn = "n/a" if s["connected"] is None else f"{s['connected']:.0f}/{s['requested']}"
        miss = "n/a" if s["missing"] is None else str(s["missing"])
        out.append(
            f"| {t} | {conn} | {fmt_rate(s['peak'])} | {fmt_ms(s['p99_10'])} | {fmt_bytes(s['rss_per_sub'])} "
            f"| {fmt_rate(s['pipe'])} | {miss} |"
        )
    have_both = REF in summary and OURS in summary
    if have_both:
        a, b = summary[OURS], summary[REF]
        r_peak = ratio(a["peak"], b["peak"])
        r_p99 = ratio(a["p99_10"], b["p99_10"])
        r_rss = ratio(a["rss_per_sub"], b["rss_per_sub"])
        r_pipe = ratio(a["pipe"], b["pipe"])
        out.append(
            f"| **{OURS} / {REF}** | | **{fmt_ratio(r_peak)}** | **{fmt_ratio(r_p99)}** | {fmt_ratio(r_rss)} "
            f"| **{fmt_ratio(r_pipe)}** | |"
        )
        out.append("")
        out.append("### Targets")
        out.append("")
        out.append("| figure | target | measured | verdict |")
        out.append("|---|---|---|---|")

        def verdict(ok):
            return "n/a" if ok is None else ("PASS" if ok else "**FAIL**")

        rss = a["rss_per_sub"]
        miss = a["missing"]
        rows = [
            ("peak deliveries/s", f">= {PEAK_MIN_RATIO}x {REF}", fmt_ratio(r_peak),
             None if r_peak is None else r_peak >= PEAK_MIN_RATIO),
            ("p99 @ 10 msg/s", f"<= {P99_MAX_RATIO}x {REF}", fmt_ratio(r_p99),
             None if r_p99 is None else r_p99 <= P99_MAX_RATIO),
            ("RSS per idle subscriber", f"<= {RSS_MAX_BYTES / 1024:.0f} KiB", fmt_bytes(rss),
             None if rss is None else rss <= RSS_MAX_BYTES),
            ("pipelined ADDMESSAGE/s", f">= {PIPE_MIN_RATIO}x {REF}", fmt_ratio(r_pipe),
             None if r_pipe is None else r_pipe >= PIPE_MIN_RATIO),
            ("messages missing (worst run)", "0", "n/a" if miss is None else str(miss),
             None if miss is None else (miss == 0 and a["connected"] == a["requested"])),
        ]
        for name, goal, got, ok in rows:
            out.append(f"| {name} | {goal} | {got} | {verdict(ok)} |")

    # per rate step
    rates = []
    for t in targets:
        for r in fan.get(t, []):
            for k in r["steps"]:
                if k not in rates:
                    rates.append(k)
    rates.sort(key=lambda k: (k == "max", 0 if k == "max" else k))
    if rates:
        out.append("")
        out.append("### Per rate step (medians; missing = worst run)")
        out.append("")
        head = "| rate msg/s |"
        sep = "|---|"
        for t in targets:
            head += f" {t} deliveries/s | {t} p50 | {t} p99 | {t} srv CPU | {t} missing |"
            sep += "---|---|---|---|---|"
        out.append(head)
        out.append(sep)
        for k in rates:
            row = f"| {'max' if k == 'max' else f'{k:g}'} |"
            for t in targets:
                st = [r["steps"][k] for r in fan.get(t, []) if k in r["steps"]]
                if not st:
                    row += " skipped | | | | |"
                    continue
                row += (
                    f" {fmt_rate(med([s['deliveries_per_s'] for s in st]))}"
                    f" | {fmt_ms(med([s['lat_us']['p50'] for s in st]))}"
                    f" | {fmt_ms(med([s['lat_us']['p99'] for s in st]))}"
                    f" | {med([s['server_cpu_pct'] for s in st]):.0f}%"
                    f" | {max(s['missing'] for s in st)} |"
                )
            out.append(row)

    # anything odd
    notes = []
    for t in targets:
        s = summary[t]
        if s["connect_failures"]:
            notes.append(f"{t}: {s['connect_failures']} subscribers failed to connect (worst run)")
        if s["disconnects"]:
            notes.append(f"{t}: {s['disconnects']} subscribers were disconnected during the run (worst run)")
        if s["surplus"]:
            notes.append(f"{t}: {s['surplus']} deliveries beyond the expected count (duplicates?) - these can mask missing ones")
        if s["pub_errors"] or s["unacked"]:
            notes.append(f"{t}: fan-out publisher: {s['pub_errors']} errors, {s['unacked']} unacknowledged (worst run)")
        if s["ctl_errors"] or s["ctl_unacked"] or s["ctl_short"]:
            notes.append(
                f"{t}: control: {s['ctl_errors']} errors, {s['ctl_unacked']} unacknowledged, "
                f"{s['ctl_short']} not sent before the timeout (worst run)"
            )
        errs = {k: v for k, v in s["errors"].items()}
        if errs:
            notes.append(f"{t}: subscriber errors (all runs): " + ", ".join(f"{k}={v}" for k, v in sorted(errs.items())))
        for r in fan.get(t, []):
            skipped = [x for x in (meta.get("rates") or "").split(",") if x and rate_key(x) not in r["steps"]]
            if skipped:
                notes.append(f"{t}: saturated early, skipped rate step(s) {','.join(skipped)} in a run")
                break
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"- {n}" for n in notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
