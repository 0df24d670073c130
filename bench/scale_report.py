#!/usr/bin/env python3
"""Table and plot of bench/scale.sh's results: scale_report.py DIR.

Writes DIR/scale.md and DIR/scale.png (the plot needs matplotlib:
`pip install matplotlib`)."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
rows = [json.loads(line) for line in (out / "scale.jsonl").read_text().splitlines() if line.strip()]
fanout = {(r["target"], r["subs"]): r for r in rows if r["workload"] == "fanout"}
channels = [r for r in rows if r["workload"] == "channels"]
counts = sorted({subs for _, subs in fanout})

lines = ["| subscribers (1 channel) | meteord deliveries/s | baseline deliveries/s | ratio "
         "| meteord RSS | KiB per subscriber | missing |", "|---|---|---|---|---|---|---|"]
for subs in counts:
    m, b = fanout.get(("meteord", subs)), fanout.get(("baseline", subs))
    if not m or not b:
        continue
    lines.append(f"| {subs:,} | {m['deliveries_per_s'] / 1e6:.2f}M | {b['deliveries_per_s'] / 1e6:.2f}M "
                 f"| {m['deliveries_per_s'] / b['deliveries_per_s']:.2f}x | {m['rss_kib'] / 1024:.0f} MiB "
                 f"| {m['kib_per_subscriber']:.2f} | {m['missing']} |")
lines += ["", "| 10,000 subscribers over | publishes | deliveries/s | messages/s "
          "| RSS | KiB per subscriber | KiB per channel |", "|---|---|---|---|---|---|---|"]
for r in channels:
    lines.append(f"| {r['channels']:,} channels | {r['publishes']:,} | {r['deliveries_per_s'] / 1e6:.2f}M "
                 f"| {r['messages_per_s'] / 1e3:.0f}k | {r['rss_kib'] / 1024:.0f} MiB "
                 f"| {r['kib_per_subscriber']:.2f} | {r['kib_per_channel']:.2f} |")
(out / "scale.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("scale_report.py: no matplotlib; table only", file=sys.stderr)
    sys.exit(0)

fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 4))
for target, style in (("meteord", "o-"), ("baseline", "s--")):
    xs = [s for s in counts if (target, s) in fanout]
    left.plot(xs, [fanout[(target, s)]["deliveries_per_s"] / 1e6 for s in xs], style, label=target)
    middle.plot(xs, [fanout[(target, s)]["rss_kib"] / 1024 for s in xs], style, label=target)
left.set(title="Peak deliveries/s, one channel", xlabel="subscribers", ylabel="millions/s")
middle.set(title="Server memory (RSS)", xlabel="subscribers", ylabel="MiB")
xs = [r["channels"] for r in channels]
right.plot(xs, [r["deliveries_per_s"] / 1e6 for r in channels], "o-", label="deliveries/s")
right.set(xscale="log", title="10,000 subscribers over N channels", xlabel="channels",
          ylabel="millions/s")
for ax in (left, middle, right):
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
left.legend()
middle.legend()
fig.tight_layout()
fig.savefig(out / "scale.png", dpi=90)
print(f"wrote {out / 'scale.png'}")
