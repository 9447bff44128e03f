"""One table over every suite's results: per case, neurodyn's time, every peer's time and ratio,
time over the case's GEMM floor and over its work floor, and the agreement check of each peer
with neurodyn.

    python bench/summary.py [RESULTS_DIR] [--suites ode,neural_ode,...]   # Markdown on stdout

It reads ``<suite>.json`` files written by ``run.py`` (full runs, 1 thread) and nothing else: the
machine lines come from the first file's own record (CPU model from /proc/cpuinfo, the OpenBLAS
core type each library reports, library versions, the load average).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ("ode", "neural_ode", "liquid", "snn", "interop", "hopfield", "ebm", "hybrid", "memories", "sde", "ode_stiff")


def _t(s):
    sys.path.insert(0, HERE)
    from harness import fmt_time

    return fmt_time(s)


def _agree(side: dict) -> str:
    a = side.get("agreement")
    if not a:
        return ""
    mark = "ok" if a["ok"] else "**FAILED**"
    return f"{a['metric']} {a['worst']:.1g} ({a['worst_part']}) {mark}"


def _cpu(t: dict) -> str:
    return _t(t["cpu_median_s"]) if t.get("cpu_median_s") else "-"


def _f(x, fmt=".2f", suffix=""):
    if x is None:
        return ""
    return (f"{x:,.0f}" if fmt == ".3g" and x >= 1000 else f"{x:{fmt}}") + suffix


def _over(side: dict, attr: str) -> str:
    """A side's time over the floor ``attr`` ("floor", "work_floor"), wall / CPU, or a dash."""
    if not side.get(f"time_over_{attr}"):
        return "—"
    return f"{_f(side.get(f'time_over_{attr}'))} / {_f(side.get(f'cpu_time_over_{attr}'))}"


def rows(record: dict):
    """Per peer: (case, neurodyn wall / CPU, neurodyn over GEMM floor wall / CPU, neurodyn over
    work floor wall / CPU, peer, peer wall / CPU, ratio of wall medians (of best samples), ratio
    of CPU medians, peer over GEMM floor (CPU), peer over work floor (CPU), agreement). Medians
    and best-of wall times: on a shared machine a burst of other work inflates single samples;
    the CPU time counts the work alone (module docstring)."""
    out = []
    for c in record["cases"]:
        nd = c["sides"].get("neurodyn", {})
        ok_nd = nd.get("status") == "ok" and "time" in nd
        nd_t = f"{_t(nd['time']['median_s'])} / {_cpu(nd['time'])}" if ok_nd else nd.get("status", "-")
        nd_f = (_over(nd, "floor"), _over(nd, "work_floor"))
        peers = [(k, v) for k, v in c["sides"].items() if k != "neurodyn"]
        if not peers:
            out.append((c["name"], nd_t, *nd_f, "—", "", "", "", "", "", ""))
        for name, s in peers:
            if s["status"] != "ok" or "time" not in s:
                out.append((c["name"], nd_t, *nd_f, name, s["status"], "", "", "", "", ""))
                continue
            best = s["time"]["min_s"] / nd["time"]["min_s"] if ok_nd else None
            ratio = _f(s.get("ratio"), ".3g", "x") + (f" ({_f(best, '.3g', 'x')})" if best else "")
            out.append((c["name"], nd_t, *nd_f, name, f"{_t(s['time']['median_s'])} / {_cpu(s['time'])}", ratio,
                        _f(s.get("ratio_cpu"), ".3g", "x"), _f(s.get("cpu_time_over_floor")),
                        _f(s.get("cpu_time_over_work_floor")), _agree(s)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="?", default=os.path.join(HERE, "results"))
    p.add_argument("--suites", default=",".join(ORDER))
    a = p.parse_args(argv)
    records = []
    for suite in a.suites.split(","):
        path = os.path.join(a.results, f"{suite}.json")
        if os.path.exists(path):
            with open(path) as fh:
                records.append(json.load(fh))
    if not records:
        print("no results found", file=sys.stderr)
        return 1
    sys.path.insert(0, HERE)
    import harness

    first = records[0]
    lines = harness.describe(first)[:3]
    starts = [r["started"] for r in records]
    loads = [(r.get("loadavg_start"), r.get("loadavg_end")) for r in records]
    lines.append(f"Runs {min(starts)} to {max(r.get('finished', r['started']) for r in records)}, one process per "
                 f"suite; load average (1 min) per suite at start/end: "
                 + ", ".join(f"{r['suite']} {la[0][0]:.1f}/{la[1][0]:.1f}" for r, la in zip(records, loads)
                             if la[0] and la[1]) + ".")
    lines += ["", "Times: median wall time / median CPU time of the process per call. Ratios = peer / neurodyn: "
                  "of the wall medians (of the best wall samples), and of the CPU medians. Time / GEMM floor "
                  "and time / work floor (the GEMM floor's products and the case's transcendental elementwise "
                  "work, bench/README.md): wall / CPU.", "",
              "| case | neurodyn | neurodyn / GEMM floor | neurodyn / work floor | peer | peer time "
                  "| ratio, wall (best) | ratio, CPU | peer / floor, CPU | peer / work floor, CPU "
                  "| agreement with neurodyn (worst part) |",
              "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in records:
        for row in rows(r):
            lines.append("| " + " | ".join(row) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
