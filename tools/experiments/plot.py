#!/usr/bin/python3
"""Draws an experiment's figure from its data.json: latency percentiles against
offered load (log y, one line per system and percentile) beside achieved
against offered load; error bars span min..max over the reps.

  tools/experiments/plot.py RUN/data.json OUT.png
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

STYLES = {  # percentile -> (line style, marker, legend name)
    "p50": ("-", "o", "p50"), "p90": ((0, (5, 2)), "D", "p90"), "p99": ("--", "s", "p99"),
    "p999": (":", "^", "p99.9"), "p9999": ("-.", "v", "p99.99"), "max": ((0, (1, 3)), "x", "max"),
    "mean": ((0, (3, 1, 1, 1)), "*", "mean"),
}


def _series(points, getter):
    """(x krps, y, yerr below, yerr above, hollow?) for points where getter gives stats."""
    xs, ys, lo, hi, hollow = [], [], [], [], []
    for p in points:
        s = getter(p)
        if not s or s["median"] <= 0:
            continue
        xs.append(p["offered_rps"] / 1000.0)
        ys.append(s["median"])
        lo.append(max(0.0, s["median"] - s["min"]))
        hi.append(max(0.0, s["max"] - s["median"]))
        hollow.append(bool(p.get("saturated")))
    return xs, ys, lo, hi, hollow


def _draw(ax, xs, ys, lo, hi, hollow, color, style, marker, label):
    """One line with min..max error bars; saturated points get hollow markers."""
    if not xs:
        return
    ax.errorbar(xs, ys, yerr=[lo, hi], color=color, linestyle=style, marker=None, capsize=2,
                linewidth=1.4, elinewidth=0.8, label=label)
    for filled in (True, False):
        sel = [i for i, h in enumerate(hollow) if h != filled]
        if sel:
            ax.plot([xs[i] for i in sel], [ys[i] for i in sel], linestyle="none", marker=marker,
                    color=color, markersize=5, markerfacecolor=color if filled else "white")


def _log_label(y, _pos):
    """Plain numbers at 1, 2 and 5 times a power of ten; no label elsewhere."""
    if y <= 0:
        return ""
    mant = y / 10 ** int(f"{y:e}".split("e")[1])
    return f"{y:g}" if any(abs(mant - m) < 1e-6 for m in (1, 2, 5)) else ""


def _footer(data, meta):
    s = data.get("settings") or {}
    bits = []
    if s:
        bits.append(f"{s.get('reps', '?')} rep(s) x {s.get('duration_s', '?')} s (+{s.get('warmup_s', '?')} s warm-up)"
                    + (", --quick" if s.get("quick") else ""))
    bits.append("median, bars min..max; hollow markers: achieved < 80% of offered")
    if meta:
        m = meta.get("machine", {})
        bits.append(f"{m.get('cpu_model', '?')}, {m.get('nproc', '?')} CPUs, Linux {m.get('kernel', '?')}")
        bits.append(f"git {str(meta.get('git_rev', '?'))[:12]}, {meta.get('date', '')[:10]}")
    lines = ["; ".join(bits)]
    if data.get("notes"):
        lines.append(data["notes"])
    return "\n".join(lines)


def plot(data, out_png, meta=None):
    """Writes the figure for data (data.json's content) to out_png."""
    points = data.get("points", [])
    systems = [s for s in data.get("systems", []) if any(p["system"] == s["name"] for p in points)]
    percentiles = (data.get("plot") or {}).get("percentiles") or ["p50", "p99", "p999"]
    colors = plt.get_cmap("tab10").colors
    fig, (lat, ach) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1.7, 1]})
    top = 1.0
    for i, s in enumerate(systems):
        pts = [p for p in points if p["system"] == s["name"]]
        color = colors[i % len(colors)]
        label = s.get("label", s["name"])
        for pct in percentiles:
            style, marker, name = STYLES.get(pct, ("-", "o", pct))
            series = _series(pts, lambda p, k=pct: p.get("latency_us", {}).get(k))
            _draw(lat, *series, color, style, marker, f"{label} {name}")
        xs, ys, lo, hi, hollow = _series(pts, lambda p: p.get("achieved_rps"))
        _draw(ach, xs, [y / 1000 for y in ys], [v / 1000 for v in lo], [v / 1000 for v in hi], hollow,
              color, "-", "o", label)
        top = max([top] + [p["offered_rps"] / 1000.0 for p in pts])
    lat.set_yscale("log")
    lat.yaxis.set_major_formatter(ticker.FuncFormatter(_log_label))
    lat.yaxis.set_minor_formatter(ticker.FuncFormatter(_log_label))
    lat.set_xlabel("offered load (krps)")
    lat.set_ylabel("latency (µs, log scale)")
    lat.set_title("latency percentiles")
    lat.grid(True, which="both", alpha=0.3)
    ach.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1, label="achieved = offered")
    ach.set_xlabel("offered load (krps)")
    ach.set_ylabel("achieved (krps)")
    ach.set_title("throughput")
    ach.grid(True, alpha=0.3)
    for ax in (lat, ach):
        ax.set_xlim(left=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    if not points:
        lat.text(0.5, 0.5, "no data", transform=lat.transAxes, ha="center", va="center")
    fig.suptitle(data.get("title") or data.get("figure", ""), fontsize=12)
    fig.text(0.01, 0.01, _footer(data, meta), fontsize=7, color="dimgrey", va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_file(data_json, out_png):
    """plot() for a data.json path; reads meta.json beside it when there is one."""
    with open(data_json) as f:
        data = json.load(f)
    meta = None
    mpath = os.path.join(os.path.dirname(os.path.abspath(data_json)), "meta.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            meta = json.load(f)
    return plot(data, out_png, meta)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print("usage: tools/experiments/plot.py RUN/data.json OUT.png", file=sys.stderr)
        return 2
    try:
        print(plot_file(argv[1], argv[2]))
    except (OSError, ValueError, KeyError) as e:
        print(f"plot.py: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
