"""Run the neurodyn benchmarks against their peers and write bench/results/*.json.

    python bench/run.py [--quick] [--threads N] [--only NAME[,NAME...]] [--out PATH]

--quick   tiny sizes and few repeats: a smoke test that finishes in seconds (for CI).
--threads thread count for neurodyn's OpenBLAS and torch (and NumPy's BLAS), default 1.
--only    run only the cases whose name contains NAME (or matches it as a glob).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="threads for neurodyn, torch and NumPy (default 1)")
    p.add_argument("--only", default=None, help="comma-separated case names (substring or glob)")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/ode[-quick][-threadsN].json)")
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def default_out(args) -> str:
    name = "ode"
    if args.quick:
        name += "-quick"
    if args.threads != 1:
        name += f"-threads{args.threads}"
    if args.only:
        # A partial run must not overwrite the full results.
        name += "-only-" + "".join(ch if ch.isalnum() else "_" for ch in args.only)
    return os.path.join(HERE, "results", name + ".json")


def main(argv=None) -> int:
    args = parse_args(argv)
    # Thread pools are sized when the libraries load, so the environment is set before
    # numpy, neurodyn or torch is imported (harness imports numpy).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, HERE)
    import harness
    import ode_cases

    cfg = (harness.TimerConfig(warmup=1, repeats=3, min_sample=0.002, budget=0.3) if args.quick
           else harness.TimerConfig())
    cases = harness.select(ode_cases.build(args.quick, cfg), args.only)
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    if not cases:
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 2

    threads = harness.set_threads(args.threads)
    record = {
        "suite": "ode",
        "started": harness.now_iso(),
        "quick": args.quick,
        "threads": args.threads,
        "threads_applied": threads,
        "timer": vars(cfg),
        "machine": harness.machine(),
        "versions": harness.versions(),
        "ratio": "peer median time / neurodyn median time (> 1: neurodyn faster)",
        "cases": [],
    }
    m = record["machine"]
    print(f"machine: {m.get('cpu_model')}, {m.get('physical_cores')} cores / {m.get('logical_cpus')} cpus; "
          f"threads={args.threads}; {record['versions'].get('neurodyn_config', {}).get('config')}")
    t0 = time.perf_counter()
    for case in cases:
        record["cases"].append(harness.run_case(case, cfg))
    record["finished"] = harness.now_iso()
    record["elapsed_s"] = time.perf_counter() - t0

    print()
    print(harness.table(record["cases"]))
    out = args.out or default_out(args)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1, default=_jsonable)
        fh.write("\n")
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as fh:
        fh.write(harness.markdown(record))
    print(f"\nwrote {os.path.relpath(out)} and {os.path.relpath(md)} ({record['elapsed_s']:.1f} s)")
    return 0


def _jsonable(obj):
    """NumPy scalars and arrays that slip into the record."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


if __name__ == "__main__":
    sys.exit(main())
