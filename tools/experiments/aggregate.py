"""Aggregation of a run directory: RUN/<system>/<rate>/rep<k>/result.json
(slip-loadgen's output) into RUN/data.json and RUN/data.csv, one point per
system and offered rate, each metric as median, min and max over the reps."""

import csv
import json
import os
import re
import statistics

LAT_KEYS = ["min", "mean", "p50", "p90", "p99", "p999", "p9999", "max"]
REQ_KEYS = ["scheduled", "sent", "completed", "ok", "miss", "error", "timeouts", "dropped", "conn_errors",
            "parse_errors"]
SSE_KEYS = ["ttft_us", "itl_us", "tpot_us", "e2e_us"]
DEFAULT_PERCENTILES = ["p50", "p99", "p999"]
SATURATION_RATIO = 0.8

_REP_RE = re.compile(r"^rep(\d+)$")


def stats(values):
    """{"median", "min", "max"} of the numbers in values (None entries skipped); None if none."""
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def valid_result(res):
    """True when res looks like a slip-loadgen result with numbers to plot."""
    return (isinstance(res, dict) and isinstance(res.get("achieved_rps"), (int, float))
            and isinstance(res.get("latency_us"), dict))


def load_runs(run_dir, systems):
    """Every rep under RUN/<system>/<rate>/: dicts with system, rate, rep, ok, result, why."""
    runs = []
    for system in systems:
        sdir = os.path.join(run_dir, system)
        if not os.path.isdir(sdir):
            continue
        for rate in sorted((d for d in os.listdir(sdir) if d.isdigit()), key=int):
            rdir = os.path.join(sdir, rate)
            for rep in sorted(os.listdir(rdir)):
                m = _REP_RE.match(rep)
                if not m or not os.path.isdir(os.path.join(rdir, rep)):
                    continue
                runs.append(_load_rep(os.path.join(rdir, rep), system, int(rate), int(m.group(1))))
    return runs


def _load_rep(rep_dir, system, rate, rep):
    """One rep: ok only if its result is valid and the loadgen (when the runner saw it) exited 0."""
    res = read_json(os.path.join(rep_dir, "result.json"))
    status = read_json(os.path.join(rep_dir, "status.json")) or {}
    why = None
    if status.get("rc", 0) != 0:
        why = f"loadgen exited {status['rc']}"
    elif res is None:
        why = "no readable result.json"
    elif not valid_result(res):
        why = "result.json lacks achieved_rps or latency_us"
    return {"system": system, "rate": rate, "rep": rep, "ok": why is None,
            "result": res if why is None else None, "why": why, "dir": rep_dir}


def infer_systems(run_dir):
    """Subdirectories of run_dir shaped like RUN/<system>/<rate>/rep<k>/."""
    found = []
    for d in sorted(os.listdir(run_dir)):
        sdir = os.path.join(run_dir, d)
        if os.path.isdir(sdir) and any(r.isdigit() and os.path.isdir(os.path.join(sdir, r)) for r in os.listdir(sdir)):
            found.append(d)
    return found


def _keyed_stats(results, field, keys):
    out = {}
    for k in keys:
        s = stats((r.get(field) or {}).get(k) for r in results)
        if s is not None:
            out[k] = s
    return out


def _loss(res):
    """Fraction of sent requests that never got an answer (timeouts, drops, connection errors)."""
    req = res.get("requests") or {}
    sent, done = req.get("sent"), req.get("completed")
    if not isinstance(sent, (int, float)) or not isinstance(done, (int, float)) or sent <= 0:
        return None
    return max(0.0, 1.0 - done / sent)


def make_point(system, label, rate, runs, ratio=SATURATION_RATIO):
    """The aggregate of one system at one offered rate."""
    good = [r["result"] for r in runs if r["ok"]]
    p = {"system": system, "label": label, "offered_rps": rate,
         "n_ok": len(good), "n_failed": len(runs) - len(good),
         "reps_ok": sorted(r["rep"] for r in runs if r["ok"]),
         "failures": [f"rep{r['rep']}: {r['why']}" for r in runs if not r["ok"]]}
    p["achieved_rps"] = stats(r["achieved_rps"] for r in good)
    p["latency_us"] = _keyed_stats(good, "latency_us", LAT_KEYS)
    p["send_lag_us"] = _keyed_stats(good, "send_lag_us", LAT_KEYS)
    p["requests"] = _keyed_stats(good, "requests", REQ_KEYS)
    p["loss_frac"] = stats(_loss(r) for r in good)
    sse = [r["sse"] for r in good if isinstance(r.get("sse"), dict)]
    if sse:
        p["sse"] = {k: _keyed_stats(sse, k, LAT_KEYS) for k in SSE_KEYS}
        p["sse"]["goodput_rps"] = stats(s.get("goodput_rps") for s in sse)
    ach = p["achieved_rps"]
    p["saturated"] = ach is None or ach["median"] < ratio * rate
    return p


def aggregate(run_dir, info=None):
    """data.json's content for run_dir. info is the run's run.json (figure, systems,
    plot, settings); without it the systems are the directories found."""
    info = dict(info or {})
    systems = info.get("systems") or [{"name": s, "label": s, "status": "ok"} for s in infer_systems(run_dir)]
    ratio = info.get("settings", {}).get("saturation", {}).get("ratio", SATURATION_RATIO)
    runs = load_runs(run_dir, [s["name"] for s in systems])
    points = []
    for s in systems:
        by_rate = {}
        for r in runs:
            if r["system"] == s["name"]:
                by_rate.setdefault(r["rate"], []).append(r)
        for rate in sorted(by_rate):
            points.append(make_point(s["name"], s.get("label", s["name"]), rate, by_rate[rate], ratio))
    return {
        "schema": 1,
        "figure": info.get("figure") or os.path.basename(os.path.abspath(run_dir)),
        "title": info.get("title", ""),
        "notes": info.get("notes", ""),
        "settings": info.get("settings", {}),
        "plot": info.get("plot") or {"percentiles": DEFAULT_PERCENTILES},
        "systems": systems,
        "points": points,
    }


def csv_columns():
    cols = ["figure", "system", "label", "offered_rps", "n_ok", "n_failed", "saturated"]
    metrics = [("achieved_rps", None)] + [(f"latency_us.{k}", k) for k in LAT_KEYS] + \
              [(f"send_lag_us.{k}", k) for k in ("p50", "p99", "p999")] + \
              [(f"requests.{k}", k) for k in REQ_KEYS] + [("loss_frac", None)]
    for m, _ in metrics:
        cols += [f"{m}.median", f"{m}.min", f"{m}.max"]
    return cols


def _lookup(point, dotted):
    cur = point
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return ""
        cur = cur[part]
    return cur


def _cell(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_data(run_dir, data):
    """Writes RUN/data.json and RUN/data.csv (one row per system x rate); their paths."""
    jpath, cpath = os.path.join(run_dir, "data.json"), os.path.join(run_dir, "data.csv")
    with open(jpath, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    cols = csv_columns()
    with open(cpath, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for p in data["points"]:
            row = {**p, "figure": data["figure"]}
            w.writerow([_cell(_lookup(row, c)) for c in cols])
    return jpath, cpath
