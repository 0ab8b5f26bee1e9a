#!/usr/bin/env python3
"""Draws benches/ratios.svg: mqtt5c's figures as ratios to libmosquitto's.

Usage: benches/chart.py RESULTS_TXT OUT_SVG [TITLE]

RESULTS_TXT holds the "RESULT <lib> <scenario> <metric> <value>" lines of
every repetition (what benches/run.sh collects). A figure is the median over
the repetitions (the lower middle value for an even count, as in the table of
run.sh); a ratio is mqtt5c's median divided by libmosquitto's. Standard
library only: no plotting package.

Each bar starts at 1 (the same as libmosquitto) on a logarithmic axis; green
when mqtt5c is better on that row (less time, CPU, memory, ...; more messages
per second), red when worse. A black tick marks the goal of issue 10 where it
has one.
"""
import math
import sys
from xml.sax.saxutils import escape

# (label, (scenario, metric) of mqtt5c, (scenario, metric) of libmosquitto,
#  better: "lower" or "higher", goal or None)
ROWS = [
    ("QoS 0 firehose: CPU per message", ("qos0", "cpu_s_per_100k"), ("qos0", "cpu_s_per_100k"), "lower", 0.67),
    ("QoS 0 firehose: context switches per message", ("qos0", "csw_per_msg"), ("qos0", "csw_per_msg"), "lower", None),
    ("QoS 0 firehose: messages/s", ("qos0", "msgs_per_s"), ("qos0", "msgs_per_s"), "higher", None),
    ("QoS 1 publish -> PUBACK p50", ("puback", "rtt_median_us"), ("puback", "rtt_median_us"), "lower", 1.0),
    ("QoS 0 echo from the callback p50", ("echo0", "rtt_median_us"), ("echo0", "rtt_median_us"), "lower", 1.0),
    ("QoS 1 echo (latency) p50", ("latency", "rtt_median_us"), ("latency", "rtt_median_us"), "lower", None),
    ("QoS 1 pipelined: messages/s (mqtt5c async)", ("qos1async", "msgs_per_s"), ("qos1", "msgs_per_s"), "higher", 1.2),
    ("QoS 1 pipelined: CPU per message", ("qos1async", "cpu_s_per_100k"), ("qos1", "cpu_s_per_100k"), "lower", 1.0),
    ("QoS 1 pipelined: context switches per message", ("qos1async", "csw_per_msg"), ("qos1", "csw_per_msg"), "lower", None),
    ("idle clients (idle): RSS per client", ("idle", "rss_per_extra_client_kb"), ("idle", "rss_per_extra_client_kb"), "lower", None),
    ("idle clients (idle): threads", ("idle", "threads_after"), ("idle", "threads_after"), "lower", None),
    ("10,000 idle clients: clients connected", ("idle10k", "clients"), ("idle10k", "clients"), "higher", None),
    ("10,000 idle clients: RSS per client", ("idle10k", "rss_per_extra_client_kb"), ("idle10k", "rss_per_extra_client_kb"), "lower", None),
    ("10,000 idle clients: threads", ("idle10k", "threads_after"), ("idle10k", "threads_after"), "lower", None),
    ("stripped library, everything", ("size", "stripped_kib"), ("size", "stripped_kib"), "lower", None),
    ("stripped library, no TLS/WebSocket", ("size", "stripped_minimal_kib"), ("size", "stripped_kib"), "lower", None),
    ("stripped library, firmware build (make firmware)", ("size", "stripped_firmware_kib"), ("size", "stripped_kib"), "lower", None),
]


def medians(path):
    values = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 5 or p[0] != "RESULT":
                continue
            try:
                v = float(p[4])
            except ValueError:
                continue
            values.setdefault((p[1], p[2], p[3]), []).append(v)
    return {k: sorted(v)[(len(v) + 1) // 2 - 1] for k, v in values.items()}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    med = medians(sys.argv[1])
    title = sys.argv[3] if len(sys.argv) > 3 else "mqtt5c / libmosquitto"
    rows = []
    for label, ours, ref, better, goal in ROWS:
        a = med.get(("mqtt5c",) + ours)
        b = med.get(("mosquitto",) + ref)
        if a is None or b is None or b == 0 or a <= 0:
            continue
        rows.append((label, a / b, better, goal))

    lo, hi = 0.01, 100.0  # axis range; ratios beyond are clipped with an arrow
    left, width, bar_h, gap, top = 330, 420, 18, 8, 58
    height = top + len(rows) * (bar_h + gap) + 50

    def x(r):
        r = min(max(r, lo), hi)
        return left + (math.log10(r) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * width

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
        '<text x="10" y="38" fill="#555">ratio of medians, log scale; green: mqtt5c better, red: worse; '
        "| goal of issue 10</text>",
    ]
    for t in (0.01, 0.1, 1, 10, 100):
        xt = x(t)
        out.append(f'<line x1="{xt:.1f}" y1="{top - 6}" x2="{xt:.1f}" y2="{height - 40}" '
                   f'stroke="{"#000" if t == 1 else "#ddd"}" stroke-width="{1.5 if t == 1 else 1}"/>')
        out.append(f'<text x="{xt:.1f}" y="{height - 24}" text-anchor="middle" fill="#555">{t:g}</text>')
    out.append(f'<text x="{x(1):.1f}" y="{height - 8}" text-anchor="middle" fill="#555">'
               "1 = the same as libmosquitto</text>")
    for i, (label, r, better, goal) in enumerate(rows):
        y = top + i * (bar_h + gap)
        good = r <= 1 if better == "lower" else r >= 1
        x0, x1 = sorted((x(1), x(r)))
        colour = "#3a9a4a" if good else "#c8423b"
        out.append(f'<text x="{left - 8}" y="{y + bar_h - 5}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" height="{bar_h}" fill="{colour}"/>')
        clipped = "&#8594;" if r > hi else ("&#8592;" if r < lo else "")
        tx = x(r) + (6 if r >= 1 else -6)
        anchor = "start" if r >= 1 else "end"
        out.append(f'<text x="{tx:.1f}" y="{y + bar_h - 5}" text-anchor="{anchor}">{clipped}{r:.3g}</text>')
        if goal is not None:
            xg = x(goal)
            out.append(f'<line x1="{xg:.1f}" y1="{y - 2}" x2="{xg:.1f}" y2="{y + bar_h + 2}" '
                       'stroke="#000" stroke-width="2.5"/>')
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
