"""A small benchmark harness: a timer, the Case abstraction, and the machine/version record.

A *case* is one problem (same equations, same initial state, same output times, same
tolerances, float64 unless stated) solved by neurodyn and by named *peers* — the tools a
user would pick instead. Each side is built lazily by a factory so that a peer which cannot
be imported is reported as skipped instead of failing the run.

Each side gives two functions:

* ``run()`` — the timed call, doing the whole work once and nothing else;
* ``probe()`` — one untimed, instrumented run returning the outputs and the work counters
  (right-hand-side evaluations, accepted and rejected steps). Instrumentation (counting
  wrappers, step callbacks) stays out of the timed call, so it cannot distort the timing.

ratio = peer median time / neurodyn median time: above 1 means neurodyn is faster.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import gc
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

# --------------------------------------------------------------------------------------
# threads


def thread_env(n: int) -> None:
    """Pin every thread pool we know of to ``n`` threads.

    Must run before numpy/torch are imported: OpenBLAS and OpenMP read these variables once,
    when the library loads, and torch sizes its intra-op pool from OMP_NUM_THREADS.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def set_threads(n: int) -> dict:
    """Apply the thread count to neurodyn (its kernels and OpenBLAS) and torch; return what each reports."""
    got = {}
    try:
        import neurodyn as nd

        nd.set_num_threads(n)
        got["neurodyn_threads"] = nd.get_num_threads()
    except ImportError as exc:  # pragma: no cover - neurodyn is the subject; report anyway
        got["neurodyn_threads"] = f"unavailable: {exc}"
    try:
        import torch

        torch.set_num_threads(n)
        got["torch_intra_op"] = torch.get_num_threads()
        got["torch_interop"] = torch.get_num_interop_threads()
    except ImportError:
        got["torch_intra_op"] = None
    got["env"] = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return got


# --------------------------------------------------------------------------------------
# timer


@dataclass
class TimerConfig:
    warmup: int = 2          # untimed calls first: caches, lazy imports, torch's allocator
    repeats: int = 9         # timed samples; the median is reported
    min_sample: float = 0.05 # seconds: fast calls are looped inside one sample (like timeit)
    budget: float = 20.0     # seconds per side: slow sides get fewer repeats (never < 3)
    max_inner: int = 10_000
    slow: float = 1.0        # seconds: a warm-up call this long ends the warm-up
    # Round-robin sampling across the sides of a case (see measure_interleaved). Off for
    # more than one thread: each side then has its own pool (neurodyn's OpenBLAS, NumPy's
    # OpenBLAS, torch's OpenMP) whose workers keep spinning after a call and take the cores
    # from the next side (measured: neurodyn's MLP ODE followed by one NumPy matmul, both at
    # 2 threads on 2 cores, 24 ms instead of 10 ms).
    interleave: bool = True
    # Build and probe every side and check the agreement, without timing (run.py --check).
    probe_only: bool = False


@dataclass
class Timing:
    samples: list            # seconds per call, one per repeat
    inner: int               # calls per sample
    warmup: int
    # CPU seconds of this process per call (all its threads), one per repeat. On a machine
    # whose cores are shared with other work, a call that outlasts the scheduler's time slice
    # waits for the CPU while a short one often does not, so wall times favour short calls;
    # the CPU time counts the work only (at one thread, every side's work is on this process).
    cpu_samples: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    def as_dict(self, scale: float = 1.0) -> dict:
        s = [x * scale for x in self.samples]
        q1, q3 = np.percentile(s, [25, 75])
        out = {"median_s": float(np.median(s)), "min_s": float(np.min(s)), "q1_s": float(q1),
               "q3_s": float(q3), "iqr_s": float(q3 - q1), "repeats": len(s), "inner_loops": self.inner,
               "warmup": self.warmup, "samples_s": s}
        if self.cpu_samples:
            c = [x * scale for x in self.cpu_samples]
            out.update({"cpu_median_s": float(np.median(c)), "cpu_min_s": float(np.min(c)), "cpu_samples_s": c})
        return out


def _calibrate(fn: Callable[[], Any], cfg: TimerConfig):
    """Warm up, then choose the calls per sample (inner) and the number of samples."""
    for i in range(cfg.warmup):
        t0 = time.perf_counter()
        fn()
        if time.perf_counter() - t0 > cfg.slow:  # a call this long is warm after one run
            break
    t0 = time.perf_counter()
    fn()  # calibration call, also warm
    one = max(time.perf_counter() - t0, 1e-9)
    inner = int(min(cfg.max_inner, max(1, math.ceil(cfg.min_sample / one))))
    repeats = cfg.repeats
    if one * inner * repeats > cfg.budget:
        repeats = max(3, int(cfg.budget / (one * inner)))
    return inner, repeats


def _sample(fn: Callable[[], Any], inner: int):
    """(wall seconds, process CPU seconds) per call, over ``inner`` calls."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(inner):
        fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return (t1 - t0) / inner, (c1 - c0) / inner


class _GCPaused:
    """The cyclic GC is collected then disabled while timing (as timeit does), so a
    collection triggered by one side's garbage cannot land in another side's sample."""

    def __enter__(self):
        gc.collect()
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


def measure(fn: Callable[[], Any], cfg: TimerConfig) -> Timing:
    """Median-of-repeats wall time of ``fn()`` after warm-up."""
    return measure_interleaved({"fn": fn}, cfg)["fn"]


def measure_interleaved(fns: dict, cfg: TimerConfig) -> dict:
    """Time several functions with their samples taken round-robin (a, b, c, a, b, c, ...).

    On a machine shared with other work, a burst of contention then lands on every side
    instead of on whichever side happened to be running, so ratios stay honest even when
    absolute times wander.
    """
    if not cfg.interleave:
        out = {}
        for k, fn in fns.items():
            inner, rep = _calibrate(fn, cfg)
            with _GCPaused():
                got = [_sample(fn, inner) for _ in range(rep)]
                out[k] = Timing(samples=[w for w, _ in got], inner=inner, warmup=cfg.warmup + 1,
                                cpu_samples=[c for _, c in got])
        return out
    plan = {k: _calibrate(fn, cfg) for k, fn in fns.items()}
    samples = {k: [] for k in fns}
    with _GCPaused():
        for r in range(max(rep for _, rep in plan.values())):
            for k, fn in fns.items():
                inner, rep = plan[k]
                if r < rep:
                    samples[k].append(_sample(fn, inner))
    return {k: Timing(samples=[w for w, _ in samples[k]], inner=plan[k][0], warmup=cfg.warmup + 1,
                      cpu_samples=[c for _, c in samples[k]]) for k in fns}


# --------------------------------------------------------------------------------------
# cases


class Skip(Exception):
    """Raised by a side factory when the side cannot run here (a peer is not installed)."""


@dataclass
class Probe:
    """Outputs and work counters of one untimed run.

    ys: the state at every output time, shape (T, *state). For a side that ran only some
    rows of a batch (a timed subset), ``rows`` lists which rows of the batch axis (axis 1
    of the full ys) it holds.
    """
    ys: np.ndarray
    rows: Optional[np.ndarray] = None
    nfev: Optional[int] = None
    accepted: Optional[int] = None
    rejected: Optional[int] = None
    counts_note: str = ""
    # field evaluations of a second solve the side makes (the adjoint's backward solve)
    nfev_backward: Optional[int] = None


@dataclass
class Side:
    run: Callable[[], Any]
    probe: Callable[[], Probe]
    note: str = ""
    # Multiplier from the timed work to the case's full work, e.g. 10 when 100 of 1000
    # independent trajectories were timed; reported times are already multiplied.
    time_scale: float = 1.0
    # The agreement bound for this peer when it differs from the case's (``Case.agree``),
    # with the reason (e.g. a different but equally accurate interpolant).
    agree: Optional[float] = None
    agree_why: str = ""


@dataclass
class Floor:
    """Work no implementation of a case can avoid, timed round-robin with the sides: the GEMM
    floor (its matrix products at the case's shapes on neurodyn's OpenBLAS, no elementwise
    work) or the work floor (those products and the transcendental functions the model must
    evaluate, each at the best throughput in the process).

    ``run()`` does one unit of that work; ``time_scale`` units make the case's floor (e.g.
    the products of one field evaluation, times the number of evaluations)."""
    run: Callable[[], Any]
    flops: float            # of the whole floor (all units)
    what: str
    time_scale: float = 1.0
    # the work floor's elementwise parts, one dict each (``work_floor``); empty for the GEMM floor
    elementwise: list = field(default_factory=list)


@dataclass
class Target:
    peer: str
    min_ratio: float
    text: str


@dataclass
class Case:
    name: str
    description: str
    params: dict
    neurodyn: Callable[[], Side]
    peers: dict                                 # name -> factory returning a Side
    rtol: float
    atol: float
    reference: Optional[Callable[[], Probe]] = None  # a much tighter solution, for accuracy
    targets: list = field(default_factory=list)
    extras: Optional[Callable[[dict], dict]] = None  # extra numbers (e.g. GFLOP/s) from the result
    # The GEMM floor, built after the probes (it may need a side's work counters, e.g. nfev):
    # floor(sides) -> Floor, timed round-robin with the sides.
    floor: Optional[Callable[[dict], "Floor"]] = None
    # The work floor: the GEMM floor's products and the case's transcendental elementwise work
    # (``work_floor``, usually built with the GEMM floor by ``floors``), timed the same way.
    work_floor: Optional[Callable[[dict], "Floor"]] = None
    # Same work, checked: every peer's outputs (and, for a training step, loss and gradients)
    # must match neurodyn's within ``agree`` by ``agree_metric`` (see ``agreement``), on the
    # output times ``agree_window`` (a slice; None = all). A failure makes run.py exit 1.
    agree: Optional[float] = None
    agree_metric: str = "max_rel"
    agree_window: Optional[slice] = None
    agree_why: str = ""


def _products(products, dtype, rng):
    """(calls, flops) of matrix products on neurodyn's OpenBLAS (through its dense layer kernels,
    no bias, no activation): ``products`` as in ``gemm_floor``; a call is (count, fn, args)."""
    from neurodyn import _core

    calls, flops = [], 0.0
    for rows, fan_in, fan_out, train, count in products:
        x = rng.standard_normal((rows, fan_in)).astype(dtype)
        w = rng.standard_normal((fan_in, fan_out)).astype(dtype)
        calls.append((count, _core.dense_forward, (x, w)))
        flops += count * 2.0 * rows * fan_in * fan_out
        if train:
            dy = rng.standard_normal((rows, fan_out)).astype(dtype)
            calls.append((count, _core.dense_backward, (x, w, dy, False)))
            flops += count * 4.0 * rows * fan_in * fan_out
    return calls, flops


def _calls_run(calls):
    def run():
        for count, fn, args in calls:
            for _ in range(count):
                fn(*args)

    return run


def gemm_floor(products, what: str, time_scale: float = 1.0, dtype=np.float32, seed: int = 0) -> Floor:
    """A Floor of matrix products on neurodyn's OpenBLAS (through its dense layer kernels, no
    bias, no activation). ``products``: (rows, fan_in, fan_out, train, count) tuples: ``count``
    products (rows, fan_in) x (fan_in, fan_out), each with, if ``train``, its input- and
    weight-gradient products. One call of ``run`` does all of them once; ``time_scale`` calls
    make the floor."""
    calls, flops = _products(products, dtype, np.random.default_rng(seed))
    return Floor(run=_calls_run(calls), flops=flops * time_scale, what=what, time_scale=time_scale)


# Elements per call of an elementwise part: its input and output arrays stay in the L2 cache
# (256 KiB each in float64), as in a kernel that applies the function block by block.
ELEMENTWISE_BLOCK = 32768
# The functions an elementwise part may name, each by its float64 definition (every
# implementation is checked against it).
ELEMENTWISE = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 0.5 + 0.5 * np.tanh(0.5 * x),
    "exp": np.exp,
    "log1p": np.log1p,
    "softplus": lambda x: np.logaddexp(0.0, x),
}


def _elementwise_impls(name: str) -> dict:
    """Every implementation of the function ``name`` in this process: label -> make(x, y), which
    returns a call writing name(x) into y. NumPy ufuncs (SciPy's expit is one) and torch (at the
    thread count set_threads gave it) write into y; neurodyn's activation kernel returns a new
    array (its binding takes no output)."""

    def into(f, wrap=lambda a: a):
        def make(x, y):
            a, out = wrap(x), wrap(y)
            return lambda: f(a, out=out)
        return make

    impls = {}
    if name in ("tanh", "exp", "log1p"):
        impls[f"numpy.{name}"] = into(getattr(np, name))
    elif name == "softplus":
        impls["numpy.logaddexp(0, x)"] = into(lambda a, out: np.logaddexp(0.0, a, out=out))
    else:
        try:
            from scipy.special import expit

            impls["scipy.special.expit"] = into(expit)
        except ImportError:
            pass
    try:
        import torch

        label, op = {"tanh": ("torch.tanh", torch.tanh), "sigmoid": ("torch.sigmoid", torch.sigmoid),
                     "exp": ("torch.exp", torch.exp), "log1p": ("torch.log1p", torch.log1p),
                     "softplus": ("torch.ops.aten.softplus.out",
                                  lambda a, out: torch.ops.aten.softplus.out(a, 1, 20, out=out))}[name]
        impls[label] = into(op, torch.from_numpy)
    except ImportError:
        pass
    from neurodyn import _core

    if name in _core.TABLES["activations"]:
        impls[f"neurodyn._core.act_forward('{name}')"] = lambda x, y: (lambda: _core.act_forward(name, x))
    return impls


def _fastest(name: str, x: np.ndarray) -> tuple:
    """(label, make, ns per element of each implementation) for the function ``name`` on
    ``x``: each implementation checked against the float64 definition, then timed, outside the
    harness's samples (best of 5 samples of at least 2 ms)."""
    want = ELEMENTWISE[name](x.astype(np.float64))
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    ns = {}
    impls = _elementwise_impls(name)
    for label, make in impls.items():
        y = np.empty_like(x)
        call = make(x, y)
        got = call()
        got = got if isinstance(got, np.ndarray) else y  # torch returns its tensor view of y
        err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
        if not err <= tol:
            raise ValueError(f"{label} computes {name} {err:.2g} away from its definition (bound {tol:g})")
        inner, _ = _calibrate(call, TimerConfig(warmup=1, min_sample=2e-3))
        best = min(_sample(call, inner)[0] for _ in range(5))
        ns[label] = best / x.size * 1e9
    label = min(ns, key=ns.get)
    return label, impls[label], ns


def work_floor(products, elementwise, what: str, time_scale: float = 1.0, dtype=np.float32,
               seed: int = 0) -> Floor:
    """A Floor of the products of ``gemm_floor`` and the case's transcendental elementwise work:
    ``elementwise`` is (function, elements) pairs, ``elements`` evaluations of ``function`` (a
    key of ELEMENTWISE) per unit. Each part is evaluated by the fastest implementation in the
    process for its function, dtype and block (``_fastest``, picked once, here), in blocks of
    at most ELEMENTWISE_BLOCK elements on preallocated arrays. One call of ``run`` does one
    unit; ``time_scale`` calls make the floor. The parts, the implementation picked and every
    implementation's ns per element are kept in ``Floor.elementwise``."""
    rng = np.random.default_rng(seed)
    calls, flops = _products(products, dtype, rng)
    parts, said = [], []
    for name, n in elementwise:
        if name not in ELEMENTWISE:
            raise ValueError(f"elementwise function {name!r} is not one of {sorted(ELEMENTWISE)}")
        if int(n) != n or n <= 0:
            raise ValueError(f"elements of {name} must be a positive integer, got {n!r}")
        n = int(n)
        block = min(n, ELEMENTWISE_BLOCK)
        # inputs N(0, 1); log1p's argument is exp(-|x|), in (0, 1], as in softplus and the
        # polynomial activation
        x = rng.standard_normal(block).astype(dtype)
        if name == "log1p":
            x = np.exp(-np.abs(x))
        label, make, ns = _fastest(name, x)
        full, tail = divmod(n, block)
        calls.append((full, make(x, np.empty_like(x)), ()))
        if tail:
            calls.append((1, make(x[:tail].copy(), np.empty(tail, dtype)), ()))
        parts.append({"function": name, "elements_per_unit": n, "elements": n * time_scale, "block": block,
                      "implementation": label, "ns_per_element": ns[label], "candidates_ns_per_element": ns})
        said.append(f"{name} x {n}")
    said = ("elementwise per unit: " if time_scale != 1.0 else "elementwise: ") + ", ".join(said)
    what = f"{what}; {said}" if what else said
    return Floor(run=_calls_run(calls), flops=flops * time_scale, what=what, time_scale=time_scale,
                 elementwise=parts)


def floors(spec: Callable[[dict], dict], gemm: bool = True, work: bool = True) -> dict:
    """``Case`` keywords ``floor`` (the GEMM floor: the products) and ``work_floor`` (the products
    and the elementwise work) from one ``spec(sides) -> dict(products=, elementwise=, what=,
    [time_scale=, dtype=])``; ``gemm=False`` leaves out the GEMM floor (a case whose products
    are not most of its work), ``work=False`` the work floor (a case with no transcendental
    work: it would time the GEMM floor again)."""

    def gemm_of(sides):
        kw = spec(sides)
        kw.pop("elementwise")
        return gemm_floor(**kw)

    return {"floor": gemm_of if gemm else None, "work_floor": (lambda sides: work_floor(**spec(sides))) if work else None}


def select(cases: list, only: Optional[str]) -> list:
    """Cases whose name matches any comma-separated glob in ``only`` (substring if no glob)."""
    if not only:
        return cases
    pats = [p.strip() for p in only.split(",") if p.strip()]
    pats = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in pats]
    return [c for c in cases if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]


def _align(a: Probe, b: Probe):
    """The two outputs on the batch rows both hold, or None if they cannot be matched."""
    ya, yb = np.asarray(a.ys), np.asarray(b.ys)
    if a.rows is None and b.rows is None:
        return (ya, yb) if ya.shape == yb.shape else None
    if a.rows is not None and b.rows is not None:
        return (ya, yb) if np.array_equal(a.rows, b.rows) else None
    if a.rows is None:
        return (ya[:, b.rows], yb) if ya[:, b.rows].shape == yb.shape else None
    return (ya, yb[:, a.rows]) if yb[:, a.rows].shape == ya.shape else None


def compare(a: Probe, b: Probe, rtol: float, atol: float) -> Optional[dict]:
    """Max differences between two solutions, absolute and in units of the tolerance
    ``atol + rtol * |y|`` (the scale every solver here uses in its error norm)."""
    pair = _align(a, b)
    if pair is None:
        return None
    ya, yb = pair
    d = np.abs(ya - yb)
    scale = atol + rtol * np.maximum(np.abs(ya), np.abs(yb))
    return {
        "max_abs_diff_final": float(d[-1].max()),
        "max_abs_diff_all": float(d.max()),
        "max_tol_units_final": float((d[-1] / scale[-1]).max()),
        "rms_tol_units_final": float(np.sqrt(np.mean((d[-1] / scale[-1]) ** 2))),
        "max_abs_final_state": float(np.abs(ya[-1]).max()),
        "compared_rows": None if (a.rows is None and b.rows is None) else int(ya.shape[1]),
    }


def accuracy(sides: dict, rtol: float, atol: float) -> dict:
    """Is neurodyn's answer as accurate as the peers'? Each side's final-state error against
    the tight reference; ok when neurodyn's is at most twice the best peer's, or within one
    tolerance unit. (On a chaotic problem such as Lorenz over t in [0, 10] the global error
    is many tolerance units for every solver, so "agree within the tolerance" is judged
    against the reference, not pairwise.)"""
    errs = {n: s["error_vs_reference"]["max_abs_diff_final"] for n, s in sides.items()
            if s["status"] == "ok" and s.get("error_vs_reference")}
    nd_err = errs.pop("neurodyn", None)
    if nd_err is None:
        return {"ok": None}
    nd_units = sides["neurodyn"]["error_vs_reference"]["max_tol_units_final"]
    best = min(errs.values()) if errs else None
    # A peer that solves the same system with the same control (e.g. SciPy on the flattened
    # batch) and lands within one tolerance unit of neurodyn shows that any larger error is
    # the method's, not neurodyn's.
    twins = [n for n, s in sides.items() if n != "neurodyn" and s["status"] == "ok" and s.get("diff_vs_neurodyn")
             and s["diff_vs_neurodyn"]["max_tol_units_final"] <= 1.0]
    if nd_units <= 1.0:
        ok, why = True, "within one tolerance unit of the reference"
    elif best is not None and nd_err <= 2.0 * best:
        ok, why = True, "at most 2x the best peer's error"
    elif twins:
        ok, why = True, f"matches {', '.join(twins)} within one tolerance unit (same method, same answer)"
    else:
        ok, why = False, "less accurate than the peers"
    return {"neurodyn_err_final": nd_err, "neurodyn_err_tol_units": nd_units, "peer_err_final": errs,
            "best_peer_err_final": best, "ok": bool(ok), "why": why}


def _parts(p: Probe) -> dict:
    """A probe's named output tensors (outputs, loss, every gradient), or its ys as one."""
    parts = getattr(p, "parts", None)
    return dict(parts) if parts else {"output": np.asarray(p.ys)}


def part_agreement(a, b, rtol: float, atol: float) -> Optional[dict]:
    """How far b is from a (neurodyn's), as max |b - a|; that over max |a| (max_rel); the
    relative L2 difference; and the largest difference in tolerance units atol + rtol |a|."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return None
    if a.size == 0:
        return {"max_abs": 0.0, "max_rel": 0.0, "rel_l2": 0.0, "tol_units": 0.0}
    d = np.abs(a - b)
    if not np.all(np.isfinite(d)):
        return {"max_abs": float("inf"), "max_rel": float("inf"), "rel_l2": float("inf"), "tol_units": float("inf")}
    scale_max = float(np.abs(a).max())
    na = float(np.linalg.norm(a))
    return {"max_abs": float(d.max()), "max_rel": float(d.max()) / (scale_max if scale_max > 0 else 1.0),
            "rel_l2": float(np.linalg.norm(a - b)) / (na if na > 0 else 1.0),
            "tol_units": float((d / (atol + rtol * np.maximum(np.abs(a), np.abs(b)))).max())}


def check_agreement(case: Case, nd: Probe, peer: Probe, side: Side) -> dict:
    """Does the peer compute the same thing as neurodyn? Every named part (outputs, loss, each
    gradient) is compared; ``case.agree_metric`` of the worst part must be at most the bound
    (the side's own ``agree`` if set, else the case's)."""
    bound = side.agree if side.agree is not None else case.agree
    why = side.agree_why or case.agree_why
    pa, pb = _parts(nd), _parts(peer)
    if set(pa) == {"output"} and set(pb) == {"output"} and (nd.rows is not None or peer.rows is not None):
        pair = _align(nd, peer)
        pa, pb = ({"output": pair[0]}, {"output": pair[1]}) if pair else (pa, pb)
    per = {}
    for k, a in pa.items():
        if k not in pb:
            continue
        b = pb[k]
        if k == "output" and case.agree_window is not None and np.ndim(a) > 1:
            a, b = np.asarray(a)[case.agree_window], np.asarray(b)[case.agree_window]
        per[k] = part_agreement(a, b, case.rtol, case.atol)
    metric = case.agree_metric
    vals = {k: v[metric] for k, v in per.items() if v is not None}
    missing = sorted(k for k, v in per.items() if v is None) + sorted(set(pa) - set(pb))
    worst_part = max(vals, key=vals.get) if vals else None
    worst = vals[worst_part] if vals else float("nan")
    ok = bound is not None and bool(vals) and not missing and worst <= bound
    return {"metric": metric, "bound": bound, "worst": worst, "worst_part": worst_part, "ok": bool(ok),
            "why_bound": why, "missing_or_mismatched": missing,
            "window": None if case.agree_window is None else str(case.agree_window), "per_part": per}


def _counts(p: Probe) -> dict:
    c = {"nfev": p.nfev, "accepted": p.accepted, "rejected": p.rejected, "note": p.counts_note}
    if p.nfev_backward is not None:
        c["nfev_backward"] = p.nfev_backward
    return c


def _build_and_probe(factory: Callable[[], Side]):
    """(side, probe, result-dict). Missing peers give status 'skipped'; any other exception
    gives status 'error' with the message, and the run goes on."""
    try:
        side = factory()
        probe = side.probe()
    except (Skip, ImportError) as exc:
        return None, None, {"status": "skipped", "message": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # a failing side is a finding to report, not a crash
        return None, None, {"status": "error", "message": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=4)}
    return side, probe, {"status": "ok", "note": side.note, "time_scale": side.time_scale,
                         "counts": _counts(probe), "_probe": probe}


def run_case(case: Case, cfg: TimerConfig, log=print) -> dict:
    """Probe, time (round-robin), compare and check targets for one case."""
    log(f"[{case.name}] {case.description}")
    out = {"name": case.name, "description": case.description, "params": case.params,
           "rtol": case.rtol, "atol": case.atol, "started": now_iso(), "loadavg_start": _loadavg()}
    with OtherLoad() as other:
        _run_case(case, cfg, log, out)
    out["finished"] = now_iso()
    out["loadavg_end"] = _loadavg()
    out["other_cpu_load"] = other.cpus
    if other.cpus is not None and other.cpus > 0.25:
        log(f"  warning: other processes kept {other.cpus:.2f} CPUs busy during this case (of "
            f"{os.cpu_count()}): times may be inflated and scattered")
    return out


FLOOR = "GEMM floor"  # the key of a case's floor among its timings
WORK_FLOOR = "work floor"
# timing key -> the Case field that builds it, the record's key and the suffix of the sides'
# time_over_* fields
FLOORS = {FLOOR: "floor", WORK_FLOOR: "work_floor"}


def _run_case(case: Case, cfg: TimerConfig, log, out: dict) -> None:
    sides, runnable = {}, {}
    for name, factory in [("neurodyn", case.neurodyn)] + list(case.peers.items()):
        side, _, sides[name] = _build_and_probe(factory)
        if side is not None:
            runnable[name] = side
    built = {}
    for key, attr in FLOORS.items():
        make = getattr(case, attr)
        if make is None or sides["neurodyn"]["status"] != "ok":
            continue
        try:
            built[key] = make(sides)
        except (Skip, ImportError) as exc:
            out[attr] = {"status": "skipped", "message": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            out[attr] = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    fns = {k: s.run for k, s in runnable.items()}
    # the floors are sampled in the same rounds as the sides, so the same load lands on them
    fns.update({k: fl.run for k, fl in built.items()})
    if cfg.probe_only:
        timings = {}
    else:
        try:
            timings = measure_interleaved(fns, cfg)
        except Exception as exc:  # a side that fails when timed: time the others alone
            log(f"  interleaved timing failed ({type(exc).__name__}: {exc}); timing sides one by one")
            timings = {}
            for k, fn in fns.items():
                try:
                    timings[k] = measure(fn, cfg)
                except Exception as exc2:
                    if k in FLOORS:
                        out[FLOORS[k]] = {"status": "error", "message": f"{type(exc2).__name__}: {exc2}"}
                        continue
                    sides[k] = {"status": "error", "message": f"{type(exc2).__name__}: {exc2}",
                                "traceback": traceback.format_exc(limit=4)}
    for k, tm in timings.items():
        if k not in FLOORS:
            sides[k]["time"] = tm.as_dict(runnable[k].time_scale)
    for name, s in sides.items():
        log(f"  {name}: {_brief(s)}")
    for key, fl in built.items():
        if key not in timings:
            continue
        attr = FLOORS[key]
        t = timings[key].as_dict(fl.time_scale)
        out[attr] = {"status": "ok", "what": fl.what, "time": t, "gflop": fl.flops / 1e9,
                     "gflops": fl.flops / t["median_s"] / 1e9, "interleaved": cfg.interleave}
        if fl.elementwise:
            out[attr]["elementwise"] = fl.elementwise
        for s in sides.values():
            if s["status"] == "ok" and "time" in s:
                s[f"time_over_{attr}"] = s["time"]["median_s"] / t["median_s"]
                if s["time"].get("cpu_median_s") and t.get("cpu_median_s"):
                    s[f"cpu_time_over_{attr}"] = s["time"]["cpu_median_s"] / t["cpu_median_s"]
        log(f"  {key}: {fmt_time(t['median_s'])}; neurodyn / {key} = "
            f"{sides['neurodyn'].get(f'time_over_{attr}', float('nan')):.3g}")

    ref = None
    if case.reference is not None:
        try:
            ref = case.reference()
        except (Skip, ImportError) as exc:
            out["reference"] = {"status": "skipped", "message": str(exc)}
        except Exception as exc:
            out["reference"] = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}

    nd = sides["neurodyn"]
    for name, s in sides.items():
        if s["status"] != "ok":
            continue
        if ref is not None:
            s["error_vs_reference"] = compare(ref, s["_probe"], case.rtol, case.atol)
        if name != "neurodyn" and nd["status"] == "ok":
            s["diff_vs_neurodyn"] = compare(nd["_probe"], s["_probe"], case.rtol, case.atol)
            if "time" in s and "time" in nd:
                s["ratio"] = s["time"]["median_s"] / nd["time"]["median_s"]
                if s["time"].get("cpu_median_s") and nd["time"].get("cpu_median_s"):
                    s["ratio_cpu"] = s["time"]["cpu_median_s"] / nd["time"]["cpu_median_s"]
    if ref is not None:
        out["reference"] = {"status": "ok", "rows": None if ref.rows is None else len(ref.rows),
                            "note": ref.counts_note}
        out["accuracy"] = accuracy(sides, case.rtol, case.atol)
    if nd["status"] == "ok":
        for name, s in sides.items():
            if name != "neurodyn" and s["status"] == "ok":
                s["agreement"] = check_agreement(case, nd["_probe"], s["_probe"], runnable[name])
                a = s["agreement"]
                log(f"  agreement {name}: {a['metric']} {a['worst']:.3g} (worst part: {a['worst_part']}) "
                    f"<= {a['bound']:g} -> {'ok' if a['ok'] else 'FAILED'}"
                    + (f"; missing {a['missing_or_mismatched']}" if a["missing_or_mismatched"] else ""))
    out["agreement_ok"] = all(s.get("agreement", {}).get("ok", True) for s in sides.values())

    out["targets"] = []
    for tg in case.targets:
        peer = sides.get(tg.peer, {})
        ratio = peer.get("ratio")
        out["targets"].append({"peer": tg.peer, "min_ratio": tg.min_ratio, "text": tg.text, "ratio": ratio,
                               "met": None if ratio is None else bool(ratio >= tg.min_ratio)})
    if case.extras is not None and nd["status"] == "ok" and not cfg.probe_only:
        try:
            out["extras"] = case.extras(sides)
        except Exception as exc:
            out["extras"] = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    for s in sides.values():
        s.pop("_probe", None)
    out["sides"] = sides


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


class OtherLoad:
    """CPUs kept busy by *other* processes while a case ran: the machine's busy time
    (/proc/stat) minus this process's own CPU time (/proc/self/stat), over the wall time.
    The load average cannot tell the two apart (it counts this benchmark too)."""

    def __enter__(self):
        self.t0, self.sys0, self.me0 = time.perf_counter(), self._system_busy(), self._self_cpu()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        sys1, me1 = self._system_busy(), self._self_cpu()
        if None in (self.sys0, sys1, self.me0, me1) or wall <= 0:
            self.cpus = None
        else:
            self.cpus = max(0.0, ((sys1 - self.sys0) - (me1 - self.me0)) / wall)

    @staticmethod
    def _tick():
        return os.sysconf("SC_CLK_TCK")

    def _system_busy(self):
        try:
            with open("/proc/stat") as fh:
                f = [int(x) for x in fh.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
            return (sum(f[:8]) - f[3] - f[4]) / self._tick()
        except (OSError, ValueError, IndexError):
            return None

    def _self_cpu(self):
        try:
            with open("/proc/self/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / self._tick()  # utime, stime: all threads
        except (OSError, ValueError, IndexError):
            return None


def _brief(s: dict) -> str:
    if s["status"] != "ok":
        return f"{s['status']} ({s['message']})"
    if "time" not in s:
        return "probed (not timed)"
    c = s["counts"]
    return (f"{fmt_time(s['time']['median_s'])} (x{s['time']['repeats']}), nfev={c['nfev']} "
            f"accepted={c['accepted']} rejected={c['rejected']}")


# --------------------------------------------------------------------------------------
# reporting


def fmt_time(s: Optional[float]) -> str:
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_counts(c: dict) -> str:
    if c is None or c.get("nfev") is None:
        return "-"
    acc = "?" if c["accepted"] is None else c["accepted"]
    rej = "?" if c["rejected"] is None else c["rejected"]
    return f"{c['nfev']}/{acc}/{rej}"


def _agree_cells(s: dict):
    """(max abs, max rel, verdict) of a peer's worst part against neurodyn."""
    a = s.get("agreement")
    if not a:
        return "", "", ""
    parts = [v for v in a["per_part"].values() if v]
    mabs = max((v["max_abs"] for v in parts), default=float("nan"))
    mrel = max((v["max_rel"] for v in parts), default=float("nan"))
    verdict = f"{a['metric']} {a['worst']:.2g} <= {a['bound']:g}" if a["ok"] else \
        f"FAILED: {a['metric']} {a['worst']:.2g} > {a['bound']:g}"
    return f"{mabs:.2g}", f"{mrel:.2g}", verdict


def _floor_over(s: dict, attr: str = "floor", cpu: bool = False) -> str:
    """A side's time over the floor ``attr`` ("floor", "work_floor"): wall, and with ``cpu``
    " / " CPU when measured."""
    v, c = s.get(f"time_over_{attr}"), s.get(f"cpu_time_over_{attr}")
    return ("" if v is None else f"{v:.3g}") + (f" / {c:.3g}" if cpu and c else "")


def _picks(fl: dict) -> str:
    """Per elementwise part of a timed floor, the implementation picked and its ns per element."""
    parts = [f"{p['function']} by {p['implementation']} at {p['ns_per_element']:.3g} ns/element"
             for p in fl.get("elementwise", [])]
    return f"; {', '.join(parts)}" if parts else ""


def _rows(r: dict):
    """The rows of one case: every side (the floors are rows of their own, added by the callers)."""
    rows = []
    for name, s in r["sides"].items():
        if s["status"] != "ok" or "time" not in s:
            rows.append((name, s, None))
        else:
            rows.append((name, s, s["time"]))
    return rows


def table(results: list) -> str:
    """One row per side: median time (and IQR), work counters, ratio, time over the GEMM floor and
    over the work floor, agreement with neurodyn; each floor as a row of its own."""
    head = ("case", "side", "median", "IQR", "nfev/acc/rej", "ratio", "/floor", "/work", "max|diff|", "max rel",
            "agreement")
    rows = [head]
    notes = []
    for r in results:
        for name, s, t in _rows(r):
            if t is None:
                rows.append((r["name"], name, s["status"] if s["status"] != "ok" else "probed", "", "", "", "", "",
                             *_agree_cells(s)))
                if s["status"] != "ok":
                    notes.append(f"{r['name']} / {name}: {s['message']}")
                continue
            ratio = s.get("ratio")
            rows.append((r["name"], name + ("*" if s.get("time_scale", 1.0) != 1.0 else ""), fmt_time(t["median_s"]),
                         fmt_time(t["iqr_s"]), _fmt_counts(s["counts"]), "" if ratio is None else f"{ratio:.3g}x",
                         _floor_over(s), _floor_over(s, "work_floor"), *_agree_cells(s)))
            if s.get("note"):
                notes.append(f"{r['name']} / {name}: {s['note']}")
        for key, attr in FLOORS.items():
            fl = r.get(attr) or {}
            if fl.get("status") == "ok":
                rows.append((r["name"], key, fmt_time(fl["time"]["median_s"]), fmt_time(fl["time"]["iqr_s"]), "", "",
                             *(("1", "") if attr == "floor" else ("", "1")), "", "", ""))
                rate = f" ({fl['gflop']:.3g} GFLOP, {fl['gflops']:.0f} GFLOP/s)" if fl["gflop"] else ""
                notes.append(f"{r['name']} / {key}: {fl['what']}{rate}{_picks(fl)}")
            elif fl:
                notes.append(f"{r['name']} / {key}: {fl['status']} ({fl.get('message')})")
        acc = r.get("accuracy")
        if acc and acc.get("ok") is not None:
            best = acc["best_peer_err_final"]
            notes.append(f"{r['name']}: accuracy vs reference: neurodyn {acc['neurodyn_err_final']:.2g} "
                         f"({acc['neurodyn_err_tol_units']:.2g} tol units), best peer "
                         f"{'-' if best is None else format(best, '.2g')} -> {'ok' if acc['ok'] else 'WORSE'} "
                         f"({acc['why']})")
        for tg in r.get("targets", []):
            met = {True: "MET", False: "NOT MET", None: "n/a"}[tg["met"]]
            ratio = "-" if tg["ratio"] is None else f"{tg['ratio']:.3g}x"
            notes.append(f"{r['name']}: target {tg['text']}: {ratio} -> {met}")
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def _max_other(record: dict) -> float:
    vals = [c.get("other_cpu_load") for c in record["cases"]]
    return max([v for v in vals if v is not None], default=float("nan"))


def describe(record: dict) -> list:
    """The machine and library lines of a results file, from what the run read itself."""
    m, v = record["machine"], record["versions"]
    ob = m.get("openblas") or {}
    env = record.get("environment") or {}
    libs = ", ".join(f"{k} {v[k]}" for k in VERSIONED if v.get(k))
    cores = ob.get("neurodyn_corename") or "?"
    npcore = ob.get("numpy_corename")
    la0, la1 = record.get("loadavg_start"), record.get("loadavg_end")
    load = ""
    if la0 and la1:
        load = (f" Load average (1, 5, 15 min) {' '.join(f'{x:.2f}' for x in la0)} at the start, "
                f"{' '.join(f'{x:.2f}' for x in la1)} at the end: a shared machine.")
    return [
        f"Machine: {m.get('cpu_model')}, {m.get('physical_cores', '?')} cores / {m.get('logical_cpus')} CPUs, "
        f"SIMD {'/'.join(m.get('simd', []))}, {m.get('mem_gib', '?')} GiB; threads = {record['threads']}; CPUs kept "
        f"busy by other processes during the cases: up to {_max_other(record):.2f}.{load}",
        f"BLAS: neurodyn's OpenBLAS {ob.get('neurodyn_version', '?')} running its {cores} kernels"
        + (f", NumPy's OpenBLAS its {npcore} kernels" if npcore else "")
        + f"; OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE')!r}"
        + (f"; torch: {v.get('torch_blas')}, CPU capability {v.get('torch_cpu_capability')}"
           if v.get("torch_cpu_capability") else "") + ".",
        f"Versions: Python {v.get('python')}, {libs}.",
        f"Run {record['started']}{' (--quick)' if record.get('quick') else ''}.",
    ]


def markdown(record: dict) -> str:
    """The results as a Markdown table (for bench/README.md), with the machine described."""
    lines = describe(record) + [
        "",
        "| case | side | median (wall) | IQR | median CPU time | nfev / accepted / rejected | ratio (peer / neurodyn), "
        "wall / CPU | time / GEMM floor, wall / CPU | time / work floor, wall / CPU | max abs diff vs neurodyn "
        "| max rel diff | agreement check | max abs error vs reference |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in record["cases"]:
        for name, s, t in _rows(r):
            if t is None:
                lines.append(f"| {r['name']} | {name} | {s['status'] if s['status'] != 'ok' else 'probed'} | | | | | | | "
                             + " | ".join(_agree_cells(s)) + " | |")
                continue
            e = s.get("error_vs_reference")
            ratio = "" if s.get("ratio") is None else f"{s['ratio']:.3g}x"
            if s.get("ratio_cpu"):
                ratio += f" / {s['ratio_cpu']:.3g}x"
            over = f"{_floor_over(s, cpu=True)} | {_floor_over(s, 'work_floor', cpu=True)}"
            cpu = fmt_time(t.get("cpu_median_s")) if t.get("cpu_median_s") else ""
            err = "" if not e else f"{e['max_abs_diff_final']:.2g}"
            star = " (scaled)" if s.get("time_scale", 1.0) != 1.0 else ""
            counts = _fmt_counts(s["counts"]).replace("/", " / ")
            lines.append(f"| {r['name']} | {name}{star} | {fmt_time(t['median_s'])} | {fmt_time(t['iqr_s'])} | {cpu} "
                         f"| {counts} | {ratio} | {over} | " + " | ".join(_agree_cells(s)) + f" | {err} |")
        for key, attr in FLOORS.items():
            fl = r.get(attr) or {}
            if fl.get("status") == "ok":
                lines.append(f"| {r['name']} | {key}: {fl['what']}{_picks(fl)} | {fmt_time(fl['time']['median_s'])} | "
                             f"{fmt_time(fl['time']['iqr_s'])} | {fmt_time(fl['time'].get('cpu_median_s'))} | | | "
                             + ("1 | " if attr == "floor" else " | 1") + " | | | | |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# machine and versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "logical_cpus": os.cpu_count()}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
        models, cores, flags = set(), set(), ""
        phys = core = None
        for line in text.splitlines():
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "model name":
                models.add(val)
            elif key == "physical id":
                phys = val
            elif key == "core id":
                core = val
                cores.add((phys, core))
            elif key == "flags" and not flags:
                flags = val
        info["cpu_model"] = sorted(models)[0] if len(models) == 1 else sorted(models)
        if cores:
            info["physical_cores"] = len(cores)
        simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags.split()]
        info["simd"] = simd
    except OSError:
        pass
    try:  # other work on the machine shows up here; it inflates and scatters the times
        info["loadavg"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        info["mem_gib"] = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    info["openblas"] = openblas_info()
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return info


# The libraries whose versions a results file records (installed distributions; None = absent).
VERSIONED = ("neurodyn", "numpy", "scipy", "torch", "torchdiffeq", "torchode", "torchsde", "jax", "jaxlib",
             "diffrax", "equinox", "snntorch", "spikingjelly", "norse", "ncps")


def versions() -> dict:
    """Versions of Python and every library in VERSIONED, read from the installed distributions
    (no import: importing jax or torch here would start their thread pools early)."""
    from importlib.metadata import PackageNotFoundError, version

    v = {"python": sys.version.split()[0]}
    for dist in VERSIONED:
        try:
            v[dist] = version(dist)
        except PackageNotFoundError:
            v[dist] = None
    try:
        import neurodyn as nd

        v["neurodyn_config"] = nd.show_config()
        v["neurodyn_build"] = _neurodyn_build(nd)
    except ImportError as exc:
        v["neurodyn"] = f"unavailable: {exc}"
    if "torch" in sys.modules:  # set_threads imported it; its backend as torch reports it
        torch = sys.modules["torch"]
        try:
            v["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
            cfg = torch.__config__.show()
            v["torch_blas"] = "MKL" if "BLAS_INFO=mkl" in cfg else ("OpenBLAS" if "openblas" in cfg.lower() else "?")
        except Exception:
            pass
    try:  # numpy's own BLAS is what the NumPy right-hand sides and the GEMM reference use
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        v["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception:
        pass
    return v


def openblas_info() -> dict:
    """Every OpenBLAS loaded in this process, asked directly: its core type (the kernels
    DYNAMIC_ARCH chose at load time, or that OPENBLAS_CORETYPE forced) from
    ``openblas_get_corename`` and its build from ``openblas_get_config``. Symbol names carry
    the wheel's prefix/suffix (scipy-openblas: ``scipy_openblas_...``; 64-bit ints: ``64_``)."""
    import ctypes

    libs = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and ".so" in path and path not in libs:
                    libs.append(path)
    except OSError:
        return {"error": "/proc/self/maps unreadable"}
    out = {"libraries": []}
    for path in libs:
        rec = {"path": path}
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            rec["error"] = str(exc)
            out["libraries"].append(rec)
            continue
        for what in ("corename", "config"):
            for pre in ("", "scipy_"):
                for suf in ("", "64_"):
                    fn = getattr(lib, f"{pre}openblas_get_{what}{suf}", None)
                    if fn is not None:
                        fn.restype = ctypes.c_char_p
                        rec[what] = fn().decode()
                        break
                if what in rec:
                    break
        out["libraries"].append(rec)
        low = path.lower()
        if "scipy_openblas32" in low:
            out["neurodyn_corename"] = rec.get("corename")
            out["neurodyn_version"] = (rec.get("config") or "").split(" ")[1] if rec.get("config") else None
        elif "numpy" in low:
            out["numpy_corename"] = rec.get("corename")
    return out


def _neurodyn_build(nd) -> dict:
    """Which build was measured: the installed extension's path and time, and the source
    tree's git state now (read-only; the installed build may predate later edits)."""
    import subprocess

    core = nd._core.__file__
    out = {"extension": core,
           "extension_mtime": _dt.datetime.fromtimestamp(os.path.getmtime(core), _dt.timezone.utc)
           .isoformat(timespec="seconds")}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            out["source_head"] = head.stdout.strip()
            out["source_modified_files"] = [ln[3:] for ln in dirty.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    return out
