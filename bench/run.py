"""Run the neurodyn benchmarks against their peers and write bench/results/*.json.

    python bench/run.py [--suite SUITE] [--quick] [--threads N] [--only NAME[,NAME...]] [--out PATH]

--suite   ode (default), neural_ode, liquid, snn, hopfield, ebm, sde, ode_stiff, interop, memories, chaos, or all (each
          suite writes its own file).

--quick   tiny sizes and few repeats: a smoke test that finishes in seconds (for CI).
--threads thread count for neurodyn's OpenBLAS and torch (and NumPy's BLAS), default 1.
--only    run only the cases whose name contains NAME (or matches it as a glob).
--check   build and probe every side and check that each peer computes what neurodyn does (outputs, loss,
          gradients), without timing.

Exit status 1 when a peer's outputs or gradients disagree with neurodyn's beyond the case's bound, or a
side raises (CI runs --quick and relies on this); a peer that is not installed is skipped, not a failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# suite -> module with build(quick, timer_cfg) -> [harness.Case]. A module may also define
# record_extras() -> dict (merged into the record) and summarize(record) -> dict and
# markdown_extras(record) -> str (appended to the Markdown table).
SUITES = {"ode": "ode_cases", "neural_ode": "neural_ode_cases", "liquid": "liquid_cases", "snn": "snn_cases",
          "hopfield": "hopfield_cases", "ebm": "ebm_cases", "sde": "sde_cases", "ode_stiff": "ode_stiff_cases",
          "interop": "interop_cases", "memories": "memories_cases", "hybrid": "hybrid_cases"}
SUITES["chaos"] = "chaos_cases"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", choices=tuple(SUITES) + ("all",), default="ode", help="which cases (default ode)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="threads for neurodyn, torch and NumPy (default 1)")
    p.add_argument("--only", default=None, help="comma-separated case names (substring or glob)")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/<suite>[-quick][-threadsN].json)")
    p.add_argument("--interleave", choices=("auto", "yes", "no"), default="auto",
                   help="sample the sides of a case round-robin (auto: only with --threads 1)")
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    p.add_argument("--check", action="store_true", help="probe and check agreement only, no timing")
    p.add_argument("--render", metavar="JSON", help="rewrite the Markdown table of an existing results file and exit")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.suite == "all" and args.out:
        p.error("--out needs a single --suite")
    return args


def default_out(args, suite="ode") -> str:
    name = suite
    if args.quick:
        name += "-quick"
    if args.check:
        name += "-check"
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
    if args.threads == 1:
        # XLA (jax, diffrax) runs its CPU work on an Eigen thread pool sized to the machine;
        # these flags keep it to the calling thread, as every other side is kept.
        flags = os.environ.get("XLA_FLAGS", "")
        for f in ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"):
            if f.split("=")[0] not in flags:
                flags = (flags + " " + f).strip()
        os.environ["XLA_FLAGS"] = flags
    sys.path.insert(0, HERE)
    import importlib

    import harness

    if args.render:
        with open(args.render) as fh:
            record = json.load(fh)
        md = os.path.splitext(args.render)[0] + ".md"
        mod = importlib.import_module(SUITES.get(record.get("suite", "ode"), "ode_cases"))
        with open(md, "w") as fh:
            fh.write(harness.markdown(record))
            if hasattr(mod, "markdown_extras"):
                fh.write(mod.markdown_extras(record))
        print(f"wrote {md}")
        return 0

    status = 0
    for suite in (tuple(SUITES) if args.suite == "all" else (args.suite,)):
        status = max(status, run_suite(args, suite, importlib.import_module(SUITES[suite]), harness))
    return status


def run_suite(args, suite, cases_mod, harness) -> int:
    """Build, run and write one suite's cases."""
    cfg = (harness.TimerConfig(warmup=1, repeats=3, min_sample=0.002, budget=0.3) if args.quick
           else harness.TimerConfig())
    cfg.interleave = args.threads == 1 if args.interleave == "auto" else args.interleave == "yes"
    cfg.probe_only = args.check
    cases = harness.select(cases_mod.build(args.quick, cfg), args.only)
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    if not cases:
        print(f"[{suite}] no case matches --only {args.only!r}", file=sys.stderr)
        return 0 if args.suite == "all" else 2

    threads = harness.set_threads(args.threads)
    record = {
        "suite": suite,
        "started": harness.now_iso(),
        "loadavg_start": harness._loadavg(),
        "shared_machine": "other work may run at the same time: see loadavg_* and each case's other_cpu_load",
        "quick": args.quick,
        "threads": args.threads,
        "threads_applied": threads,
        "timer": vars(cfg),
        "machine": harness.machine(),
        "versions": harness.versions(),
        "environment": {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                       "MKL_NUM_THREADS", "XLA_FLAGS")},
        "ratio": "peer median time / neurodyn median time (> 1: neurodyn faster)",
        "cases": [],
    }
    if hasattr(cases_mod, "record_extras"):
        for key, val in cases_mod.record_extras().items():
            record.setdefault(key, {}).update(val)
    m = record["machine"]
    print(f"machine: {m.get('cpu_model')}, {m.get('physical_cores')} cores / {m.get('logical_cpus')} cpus; "
          f"threads={args.threads}; OpenBLAS core {m.get('openblas', {}).get('neurodyn_corename')}; "
          f"loadavg {record['loadavg_start']}")
    t0 = time.perf_counter()
    for case in cases:
        record["cases"].append(harness.run_case(case, cfg))
    record["finished"] = harness.now_iso()
    record["loadavg_end"] = harness._loadavg()
    record["elapsed_s"] = time.perf_counter() - t0
    if hasattr(cases_mod, "summarize"):
        record["summary"] = cases_mod.summarize(record)

    print()
    print(harness.table(record["cases"]))
    out = args.out or default_out(args, suite)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1, default=_jsonable)
        fh.write("\n")
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as fh:
        fh.write(harness.markdown(record))
        if hasattr(cases_mod, "markdown_extras"):
            fh.write(cases_mod.markdown_extras(record))
    print(f"\nwrote {os.path.relpath(out)} and {os.path.relpath(md)} ({record['elapsed_s']:.1f} s)")
    return failures(record)


def failures(record) -> int:
    """1 (and a list on stderr) if a peer disagrees with neurodyn or a side raised, else 0."""
    bad = []
    for c in record["cases"]:
        for name, s in c["sides"].items():
            if s["status"] == "error":
                bad.append(f"{c['name']} / {name}: error: {s['message']}")
            a = s.get("agreement")
            if a and not a["ok"]:
                bad.append(f"{c['name']} / {name}: disagrees with neurodyn: {a['metric']} {a['worst']:.3g} "
                           f"(worst part {a['worst_part']}) > bound {a['bound']}"
                           + (f"; missing {a['missing_or_mismatched']}" if a["missing_or_mismatched"] else ""))
    for line in bad:
        print(f"[{record['suite']}] FAIL {line}", file=sys.stderr)
    return 1 if bad else 0


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
