"""Property-based tests of bad and edge input for every public entry point.

Every function of ``nd.__all__`` and its submodules, and every model's constructor and
methods, is described once below as an :class:`Entry`: how to build a valid call from a few
drawn sizes, which of its arguments are arrays, and (where tests/reference*.py has one) a
pure-NumPy twin. Generic checks then try, for each array argument:

- layouts (Fortran order, strided with NaN in the skipped elements, negative strides,
  read-only, byte-swapped, unaligned, nested lists): the numbers of the clean C-contiguous
  call, bit for bit;
- dtypes: float16, integers and bools are promoted as the README says (the numbers of the
  same values handed over as float32/float64); complex, object and string arrays are
  refused with TypeError;
- NaN and +-inf: ValueError;
- shapes: zero-size batches, features and time axes, a wrong number of axes, a wrong last
  axis; and absurd sizes built without memory (zero strides), whose byte count is beyond any
  machine or overflows once promoted: ValueError, MemoryError or OverflowError, quickly;

and for the call itself: missing and extra positional arguments, unknown keywords, unknown
option strings and out-of-range numbers. No input may ever be modified, nor the model, field
or energy a method belongs to (values and flags are compared after every call, including the
calls that raise).

The absurd sizes run in a child process (see "giant sizes" below). Known bugs are kept as
strict xfails (``KNOWN_BUGS``), so that a fix shows up as an XPASS. Each distinct
(entry point, case) pair tried is counted in ``CASES``; the last test asserts the total.
"""
from __future__ import annotations

import copy
import faulthandler
import functools
import inspect
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import neurodyn as nd  # noqa: E402

import reference as ref_ode  # noqa: E402
import reference_liquid_cells as ref_cells  # noqa: E402
import reference_chaos as ref_chaos  # noqa: E402
import reference_ebm as ref_ebm  # noqa: E402
import reference_hopfield as ref_hop  # noqa: E402
import reference_hybrid as ref_hyb  # noqa: E402
import reference_liquid as ref_liquid  # noqa: E402
import reference_memories as ref_mem  # noqa: E402
import reference_nn as ref_nn  # noqa: E402
import reference_reconstruction as ref_rec  # noqa: E402
import reference_sde as ref_sde  # noqa: E402
import reference_snn as ref_snn  # noqa: E402

F64 = np.float64

# ---- the registry of distinct bad-input cases --------------------------------------------------

CASES: set[tuple[str, str]] = set()
_RAN: set[str] = set()


def note(entry: str, kind: str) -> None:
    CASES.add((entry, kind))


# The number reached when this file was written; the last test keeps it from shrinking.
MIN_CASES = 9210

# ---- calling, comparing, and watching inputs ---------------------------------------------------

BAD_INPUT = (ValueError, TypeError, MemoryError, OverflowError)
HUGE_ERRORS = (ValueError, MemoryError, OverflowError)


def _call(fn):
    """(True, result) or (False, exception); warnings are not the point here."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return True, fn()
        except Exception as err:  # judged by the caller
            return False, err


def _arrays_in(obj, path="args"):
    if isinstance(obj, np.ndarray):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _arrays_in(v, f"{path}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _arrays_in(v, f"{path}[{i}]")


def _data_of(a: np.ndarray):
    if a.size > 4096 and 0 in a.strides:
        # a zero-stride giant: every element aliases the first one
        return a[(0,) * a.ndim].tobytes()
    if a.dtype == object:
        return [repr(v) for v in a.ravel().tolist()]
    return a.tobytes()


def _snapshot(obj, skip=()):
    return [(p, a, (a.shape, a.strides, a.dtype, a.flags.writeable, a.flags.aligned,
                    a.flags.c_contiguous, a.flags.f_contiguous), _data_of(a))
            for p, a in _arrays_in(obj) if not any(p.startswith(s) for s in skip)]


def _assert_untouched(snap, where):
    for path, a, meta, data in snap:
        now = (a.shape, a.strides, a.dtype, a.flags.writeable, a.flags.aligned, a.flags.c_contiguous,
               a.flags.f_contiguous)
        assert now == meta, f"{where}: the flags of input {path} changed: {meta} -> {now}"
        assert _data_of(a) == data, f"{where}: input {path} was modified"


def assert_same(got, want, *, exact=True, rtol=1e-9, atol=1e-12, path="result"):
    """Equal structure and numbers: bit for bit (dtype included) when exact, else close."""
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        g, w = np.asarray(got), np.asarray(want)
        assert g.shape == w.shape, f"{path}: shape {g.shape} != {w.shape}"
        if exact:
            assert g.dtype == w.dtype, f"{path}: dtype {g.dtype} != {w.dtype}"
            np.testing.assert_array_equal(g, w, err_msg=path, strict=True)
        else:
            assert g.dtype.kind in "biuf", f"{path}: dtype {g.dtype} is not real"
            np.testing.assert_allclose(g.astype(F64), w.astype(F64), rtol=rtol, atol=atol, err_msg=path)
    elif isinstance(want, dict):
        keys = set(want) - {"time"}
        assert isinstance(got, dict) and set(got) - {"time"} == keys, f"{path}: keys differ"
        for k in keys:
            assert_same(got[k], want[k], exact=exact, rtol=rtol, atol=atol, path=f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{path}: length differs"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, exact=exact, rtol=rtol, atol=atol, path=f"{path}[{i}]")
    elif isinstance(want, (float, np.floating)) and not isinstance(want, bool):
        g, w = float(got), float(want)
        if exact:
            assert g == w or (math.isnan(g) and math.isnan(w)), f"{path}: {g!r} != {w!r}"
        else:
            assert math.isclose(g, w, rel_tol=rtol, abs_tol=atol) or (math.isnan(g) and math.isnan(w)), \
                f"{path}: {g!r} != {w!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


# ---- values and layouts ------------------------------------------------------------------------

class Gen:
    """How to draw an argument: real values, and integer values that are valid too (for the
    integer and bool dtypes)."""

    def __init__(self, real, ints, *, kind="f"):
        self.real, self.ints, self.kind = real, ints, kind


def _spd(rng, shape, ints=False):
    d = shape[-1]
    lead = shape[:-2]
    out = np.empty(shape)
    for idx in np.ndindex(*lead):
        if ints:
            out[idx] = np.eye(d) * rng.integers(1, 3)
        else:
            m = rng.normal(size=(d, d))
            out[idx] = m @ m.T / max(d, 1) + np.eye(d)
    return out


G = {
    "normal": Gen(lambda r, s: r.normal(size=s), lambda r, s: r.integers(-2, 3, s)),
    "pos": Gen(lambda r, s: r.uniform(0.5, 2.0, s), lambda r, s: r.integers(1, 4, s)),
    "unit": Gen(lambda r, s: r.uniform(0.0, 1.0, s), lambda r, s: r.integers(0, 2, s)),
    # multiples of 1/8: LIF arithmetic with beta = 0.5 is exact, so spikes match the twin
    "dyadic": Gen(lambda r, s: r.integers(-8, 17, s) / 8.0, lambda r, s: r.integers(-1, 3, s)),
    "spikes": Gen(lambda r, s: r.integers(0, 2, s).astype(F64), lambda r, s: r.integers(0, 2, s)),
    "pm1": Gen(lambda r, s: r.choice([-1.0, 1.0], s), lambda r, s: r.choice([-1, 1], s)),
    "times": Gen(lambda r, s: np.cumsum(r.uniform(0.05, 0.2, s)), lambda r, s: np.arange(1, s[0] + 1)),
    "spd": Gen(lambda r, s: _spd(r, s), lambda r, s: _spd(r, s, ints=True).astype(np.int64)),
    # integer values with a negative one always among them (uint8 then holds 254)
    "grad": Gen(lambda r, s: r.normal(size=s), lambda r, s: _with_negative(r.integers(-2, 3, s))),
    "labels2": Gen(lambda r, s: r.integers(0, 2, s), lambda r, s: r.integers(0, 2, s), kind="labels"),
    # 0/1 memories with an active and an inactive unit in each (activity strictly inside (0, 1))
    "memory01": Gen(lambda r, s: _memory01(r, s), lambda r, s: _memory01(r, s).astype(np.int64)),
}


def _memory01(r, s):
    a = r.integers(0, 2, s).astype(F64)
    if a.size and a.shape[-1] >= 2:
        a[..., 0], a[..., -1] = 1.0, 0.0
    return a


def _with_negative(a):
    if a.size:
        a.flat[0] = -2
    return a


def _fill_for(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan  # a skipped element that is read would poison the result
    if dtype.kind in "iu":
        return 99  # an out-of-range label or value
    return True


def layouts(a):
    """(name, array holding a's values in another memory layout) for the layouts that differ
    from a C-contiguous array of this shape."""
    out = []
    if a.ndim >= 2:
        out.append(("F", np.asfortranarray(a.copy())))
    if a.ndim >= 1 and a.size:
        big = np.full(a.shape[:-1] + (2 * a.shape[-1],), _fill_for(a.dtype), dtype=a.dtype)
        big[..., ::2] = a
        out.append(("strided", big[..., ::2]))
        rev = np.ascontiguousarray(a[..., ::-1])
        out.append(("reversed", rev[..., ::-1]))
    ro = a.copy()
    ro.setflags(write=False)
    out.append(("readonly", ro))
    if a.dtype.itemsize > 1:
        out.append(("byteswapped", a.astype(a.dtype.newbyteorder())))
        buf = np.empty(a.size * a.itemsize + 1, dtype=np.uint8)
        un = np.ndarray(a.shape, dtype=a.dtype, buffer=buf, offset=1)
        un[...] = a
        out.append(("unaligned", un))
    if a.ndim >= 1:
        out.append(("list", a.tolist()))
    return out


PROMOTED = {"float16": np.float32, "int32": F64, "int64": F64, "uint8": F64, "bool": F64}
REFUSED = ("complex64", "complex128", "object", "str")


# ---- entries -----------------------------------------------------------------------------------

class Arr:
    """An array argument: its name, the names of its axes (sizes drawn per call), and how its
    values are drawn."""

    def __init__(self, name, axes, gen="normal", *, free=False, mutable=False, no_list=False, finite=True):
        self.name, self.axes, self.gen = name, tuple(axes), G[gen]
        self.free = free  # any shape is fine (the call broadcasts or takes any shape)
        self.mutable = mutable  # documented to be updated in place
        self.no_list = no_list  # documented to be an ndarray
        self.finite = finite  # True: NaN/inf raise; "propagate": NaN flows through like the twin

    @property
    def labels(self):
        return self.gen.kind == "labels"


class Entry:
    """One public entry point.

    target: the public callable (for the arity and keyword checks).
    arrays: its array arguments (Arr).
    call(A, **opts): the call with the arrays A (a dict); returns what is compared. Defaults
        to target(*pos(A), **kw(A), **opts).
    ref(A): the pure-NumPy twin's answer for ``pick(result)``.
    dims: {axis name: (lo, hi)} drawn by hypothesis; fixed: axis sizes that never vary.
    zero: {axis name: "ok" or "raise"}: what an axis of size 0 gives.
    options: {name: valid value}: string options (unknown strings must give ValueError).
    numbers: {name: spec} (see _number_values).
    extra: [(kind, fn(A), expected exception type or tuple)]: cases of their own.
    """

    def __init__(self, name, target, arrays=(), *, pos=None, kw=None, call=None, ref=None, pick=None, dims=None,
                 fixed=None, zero=None, options=None, numbers=None, extra=(), tol=(1e-9, 1e-12), allow=(),
                 exact=True, zero_ref=True, f16_rtol=None, isolate_huge=None):
        self.name, self.target, self.arrays = name, target, list(arrays)
        self.pos = pos or (lambda A: [])
        self.kw = kw or (lambda A: {})
        self._call = call
        self.ref, self.pick = ref, pick or (lambda r: r)
        self.dims = dims or {}
        self.fixed = fixed or {}
        self.zero = zero or {}
        self.options = options or {}
        self.numbers = numbers or {}
        self.extra = list(extra)
        self.rtol, self.atol = tol
        self.allow = set(allow)  # kinds that may succeed where a failure is the default
        self.exact = exact
        self.zero_ref = zero_ref  # False: an empty batch's mean may differ from the twin's NaN
        self.f16_rtol = f16_rtol  # pure-NumPy code keeps float16 intermediates: compare loosely
        self.isolate_huge = isolate_huge  # {kind: code}: huge cases that must run in a subprocess

    def call(self, A, **opts):
        if self._call is not None:
            return self._call(A, **opts)
        return self.target(*self.pos(A), **{**self.kw(A), **opts})

    def build(self, rng, d):
        sizes = {**d, **self.fixed}
        A = {}
        for arr in self.arrays:
            shape = tuple(sizes[a] for a in arr.axes)
            A[arr.name] = np.asarray(arr.gen.real(rng, shape))
        return A

    def default_dims(self):
        # the largest drawn sizes (at most 3): every axis differs from 1 where it can
        return {k: max(lo, min(hi, 3)) for k, (lo, hi) in self.dims.items()}


ENTRIES: dict[str, Entry] = {}


def entry(*args, **kwargs) -> Entry:
    e = Entry(*args, **kwargs)
    assert e.name not in ENTRIES, e.name
    ENTRIES[e.name] = e
    return e


# ---- shared objects (tiny, float64, fixed seeds) -----------------------------------------------

_rng0 = np.random.default_rng(12345)
LIN_A = np.array([[-0.5, 1.0, 0.0], [-1.0, -0.5, 0.2], [0.0, 0.3, -0.2]])
LINEAR = nd.fields.Linear(LIN_A)
LORENZ = nd.fields.Lorenz()
MLP_W = [_rng0.normal(scale=0.5, size=(2, 5)), _rng0.normal(scale=0.5, size=(5, 2))]
MLP_B = [_rng0.normal(scale=0.1, size=5), _rng0.normal(scale=0.1, size=2)]
MLP_FIELD = nd.fields.MLP(MLP_W, MLP_B, activation="tanh")
DWELL = nd.energies.DoubleWell(barrier=1.0, tilt=0.3, dim=2)
QUAD = nd.energies.Quadratic([0.5, -0.5], [[2.0, 0.3], [0.3, 1.0]])
GMM = nd.energies.GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [np.eye(2), 0.5 * np.eye(2)], [0.3, 0.7])
PROBE2 = np.array([[0.3, -0.2], [1.0, 0.5]])
PROBE3 = np.array([[0.3, -0.2, 0.7], [1.0, 0.5, -1.5]])

NODE = nd.NeuralODE(3, hidden_size=4, num_steps=3, step_size=0.1, output_size=2, solver="rk4", seed=1, dtype=F64)
LIQ = nd.Liquid(3, hidden_size=4, num_layers=2, ffn=True, output_size=2, seed=2, dtype=F64)
LTC = nd.LTCCell(3, 4, output_size=2, seed=3, dtype=F64)
CFC = nd.CfC(3, 4, backbone_units=5, output_size=2, seed=4, dtype=F64)
SNN = nd.SNN(3, 2, hidden_sizes=(4, 3), num_timesteps=4, seed=5, dtype=F64)
SNN_POISSON = nd.SNN(3, 2, hidden_sizes=(4,), num_timesteps=4, encoding="poisson", seed=5, dtype=F64)
ANN = nd.ANN(3, hidden_sizes=(4, 4), output_size=2, seed=6, dtype=F64)
CONV = nd.ann2snn(ANN, _rng0.uniform(0, 1, size=(8, 3)), num_timesteps=8)
EBM = nd.EBM(3, hidden_sizes=(4,), activation="relu", seed=7, dtype=F64)
HOP = nd.Hopfield(3, num_patterns=4, pattern_dim=4, beta=1.5, seed=8, dtype=F64)
AM = nd.AssociativeMemory(3, num_patterns=4, pattern_dim=4, hidden_size=4, num_heads=2, num_layers=1,
                          output_size=2, seed=9, dtype=F64)
CH = nd.ClassicalHopfield(5)
CH.store(np.array([[1, -1, 1, -1, 1], [1, 1, -1, -1, 1]]))


def fresh(model):
    """A private copy: fit and store change their model."""
    return copy.deepcopy(model)


def _params(model):
    return {k: v.copy() for k, v in model.params.items()}


FIT = dict(epochs=1, batch_size=2, lr=1e-2, seed=0, verbose=False)
OPTIMIZER = {"optimizer": "adam"}
FIT_NUMBERS = {"epochs": "int>=1", "batch_size": "int>=1", "lr": "real>0"}


def _fit(model, *args, **kw):
    m = fresh(model)
    hist = m.fit(*args, **kw).history_
    return {"params": _params(m), "loss": hist["loss"]}


# ---- ODE integration ---------------------------------------------------------------------------

entry("odeint[Linear,rk4]", nd.odeint, [Arr("y0", "Bn"), Arr("t", "T", "times")],
      pos=lambda A: [LINEAR, A["y0"], A["t"]], kw=lambda A: {"method": "rk4", "dt": 0.05},
      ref=lambda A: ref_ode.odeint_fixed(ref_ode.linear(LIN_A), A["y0"], A["t"], "rk4", dt=0.05)[0],
      dims={"B": (1, 3), "T": (1, 3)}, fixed={"n": 3}, zero={"B": "ok", "T": "raise"},
      allow={"y0:ndim+1", "y0:ndim-1"}, options={"method": "rk4"},
      numbers={"rtol": "real>=0", "atol": "real>=0", "dt": "real>0|None", "max_steps": "int>=1"},
      extra=[("t:not-monotonic", lambda A: nd.odeint(LINEAR, A["y0"], [0.0, 0.2, 0.1]), ValueError),
             ("t:repeated", lambda A: nd.odeint(LINEAR, A["y0"], [0.0, 0.1, 0.1]), ValueError),
             ("t:2-d", lambda A: nd.odeint(LINEAR, A["y0"], [[0.0, 0.1]]), ValueError),
             ("f:not-callable", lambda A: nd.odeint(3, A["y0"], A["t"]), TypeError),
             ("args:not-a-tuple", lambda A: nd.odeint(lambda t, y: -y, A["y0"], A["t"], args=[1]), TypeError),
             ("args:to-a-field", lambda A: nd.odeint(LINEAR, A["y0"], A["t"], args=(1,)), TypeError),
             ("rtol=atol=0:dopri5", lambda A: nd.odeint(LINEAR, A["y0"], A["t"], rtol=0, atol=0), ValueError),
             ("max_steps:exhausted", lambda A: nd.odeint(LORENZ, PROBE3, [0.0, 5.0], max_steps=2),
              nd.IntegrationError)])

entry("odeint[Lorenz,euler]", nd.odeint, [Arr("y0", "Bn")],
      pos=lambda A: [LORENZ, A["y0"], [0.0, 0.05, 0.1]], kw=lambda A: {"method": "euler", "dt": 0.01},
      ref=lambda A: ref_ode.odeint_fixed(ref_ode.lorenz(), A["y0"], [0.0, 0.05, 0.1], "euler", dt=0.01)[0],
      dims={"B": (1, 3)}, fixed={"n": 3}, zero={"B": "ok"}, tol=(1e-9, 1e-9), allow={"y0:ndim+1", "y0:ndim-1"})

entry("odeint[MLP,dopri5]", nd.odeint, [Arr("y0", "Bn")],
      pos=lambda A: [MLP_FIELD, A["y0"], [0.0, 0.3, 0.5]], kw=lambda A: {"rtol": 1e-6, "atol": 1e-9},
      ref=lambda A: _per_sample(lambda y: ref_ode.odeint_dopri5(ref_ode.mlp(MLP_W, MLP_B), y, [0.0, 0.3, 0.5],
                                                               1e-6, 1e-9)[0], A["y0"]),
      dims={"B": (1, 3)}, fixed={"n": 2}, zero={"B": "ok"}, tol=(1e-7, 1e-9), allow={"y0:ndim+1", "y0:ndim-1"})


def _per_sample(solve, y0):
    """The twin of per-sample integration (docs/models.md §8): each row of y0 solved alone."""
    y0 = np.asarray(y0)
    if y0.ndim <= 1:
        return solve(y0)
    rows = y0.reshape(-1, y0.shape[-1])
    out = np.stack([solve(r) for r in rows], axis=1) if len(rows) else np.zeros((3,) + rows.shape)
    return out.reshape((out.shape[0],) + y0.shape)


def _decay(t, y, k=0.5):
    return -k * y + 0.1 * t


def _f_case(f):
    return lambda A: nd.odeint(f, A["y0"], [0.0, 0.1], method="rk4")


entry("odeint[callable,midpoint]", nd.odeint, [Arr("y0", "Bn", free=True)],
      pos=lambda A: [_decay, A["y0"], [0.0, 0.2, 0.3]], kw=lambda A: {"method": "midpoint", "dt": 0.05},
      ref=lambda A: ref_ode.odeint_fixed(_decay, A["y0"], [0.0, 0.2, 0.3], "midpoint", dt=0.05)[0],
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"},
      extra=[("f:wrong-shape", _f_case(lambda t, y: y[..., :0]), ValueError),
             ("f:scalar", _f_case(lambda t, y: 1.0), ValueError),
             ("f:complex", _f_case(lambda t, y: y + 0.5j), TypeError),
             ("f:object", _f_case(lambda t, y: (-y).astype(object)), TypeError),
             ("f:str", _f_case(lambda t, y: np.full(y.shape, "a")), TypeError),
             ("f:None", _f_case(lambda t, y: None), TypeError),
             ("f:nan", _f_case(lambda t, y: y * np.nan), nd.IntegrationError),
             ("f:raises", _f_case(lambda t, y: 1 / 0), ZeroDivisionError),
             ("f:huge", _f_case(lambda t, y: np.broadcast_to(0.0, (2**49,) + y.shape[1:])), HUGE_ERRORS),
             ("f:extra-args", lambda A: nd.odeint(_decay, A["y0"], [0.0, 0.1], args=(1, 2)), TypeError)])

# ---- stochastic differential equations: on a fixed Brownian path, so the twin sees it too

SDE_T = [0.0, 0.1, 0.25]  # with dt 0.05: 2 + 3 steps
SDE_STEPS = 5
SDE_SCALE = np.array([0.3, 0.2, 0.4])
SDE_G = nd.sde.Linear(SDE_SCALE)
SDE_SIGMA = np.array([[0.3, -0.2, 0.1], [0.0, 0.4, -0.3]])


def _sde_path(y0, m=None, lane=0):
    """Increments (steps,) + batch + (m,) for y0's shape: one random path, the same for every
    sample (a zero-stride view, so an absurd batch costs nothing here)."""
    shape = np.shape(y0) or (1,)  # a scalar y0 is refused by the call, not here
    m = shape[-1] if m is None else m
    base = np.random.default_rng(7 + lane).normal(scale=math.sqrt(0.05), size=(SDE_STEPS, m))
    return np.broadcast_to(base.reshape((SDE_STEPS,) + (1,) * (len(shape) - 1) + (m,)),
                           (SDE_STEPS,) + shape[:-1] + (m,))


def _sde_pair(y0):
    return _sde_path(y0), _sde_path(y0, lane=1) * 0.05


def _sde_case(**kw):
    args = dict(f=LINEAR, g=SDE_G, t=SDE_T, dt=0.05)
    args.update(kw)
    return lambda A: nd.sdeint(args.pop("f"), args.pop("g"), A["y0"], args.pop("t"), **args)


def _additive(t, y):
    return np.full_like(y, 0.3)


entry("sdeint[Linear,Linear,milstein]", nd.sdeint, [Arr("y0", "Bn")],
      pos=lambda A: [LINEAR, SDE_G, A["y0"], SDE_T],
      kw=lambda A: {"dt": 0.05, "method": "milstein", "brownian": _sde_path(A["y0"])},
      ref=lambda A: ref_sde.sdeint(ref_ode.linear(LIN_A), lambda t, y: SDE_SCALE * y, A["y0"], SDE_T, 0.05,
                                   _sde_path(A["y0"]), method="milstein",
                                   dg=lambda t, y: np.broadcast_to(SDE_SCALE, y.shape)),
      dims={"B": (1, 3)}, fixed={"n": 3}, zero={"B": "ok"}, allow={"y0:ndim+1", "y0:ndim-1"},
      options={"method": "milstein", "noise": "diagonal"}, numbers={"dt": "real>0", "seed": "seed"},
      extra=[("t:not-increasing", _sde_case(t=[0.0, 0.2, 0.1]), ValueError),
             ("t:decreasing", _sde_case(t=[0.2, 0.1]), ValueError),
             ("t:nan", _sde_case(t=[0.0, math.nan]), ValueError),
             ("method:sra-diagonal", _sde_case(method="sra"), ValueError),
             ("noise:additive-state-dependent", _sde_case(noise="additive"), ValueError),
             ("noise:general-milstein", _sde_case(method="milstein", noise="general", g=nd.sde.Constant(SDE_SIGMA.T)),
              ValueError),
             ("f:not-callable", _sde_case(f=3), TypeError),
             ("g:not-a-diffusion", _sde_case(g="sigma"), TypeError),
             ("g:sigma-length", _sde_case(g=nd.sde.Constant([0.1, 0.2])), ValueError),
             ("brownian:steps", _sde_case(brownian=np.zeros((4, 2, 3))), ValueError),
             ("brownian:nan", _sde_case(brownian=np.full((SDE_STEPS, 2, 3), math.nan)), ValueError),
             ("brownian:not-a-pair-for-sra", _sde_case(noise="additive", method="sra", g=nd.sde.Constant(0.2),
                                                       brownian=np.zeros((SDE_STEPS, 2, 3))), TypeError),
             ("sample_ids:negative", _sde_case(sample_ids=[-1, 0]), ValueError),
             ("sample_ids:shape", _sde_case(sample_ids=[0, 1, 2, 3, 4]), ValueError),
             ("args:not-a-tuple", _sde_case(f=_decay, args=[1]), TypeError),
             ("args:to-built-ins", _sde_case(args=(1,)), TypeError),
             ("nonfinite:blow-up", _sde_case(f=lambda t, y: np.exp(np.minimum(y, 700.0)) * 1e300, g=_additive,
                                             noise="additive"), nd.IntegrationError)])

entry("sdeint[callable,sra]", nd.sdeint, [Arr("y0", "Bn", free=True)],
      pos=lambda A: [_decay, _additive, A["y0"], SDE_T],
      kw=lambda A: {"dt": 0.05, "method": "sra", "noise": "additive", "brownian": _sde_pair(A["y0"])},
      ref=lambda A: ref_sde.sdeint(_decay, _additive, A["y0"], SDE_T, 0.05, *_sde_pair(A["y0"]), method="sra",
                                   noise="additive"),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "raise"}, options={"method": "sra", "noise": "additive"},
      extra=[("g:wrong-shape", _sde_case(f=_decay, g=lambda t, y: y[..., :1], t=[0.0, 0.1]), ValueError),
             ("g:complex", _sde_case(f=_decay, g=lambda t, y: y + 0.5j, t=[0.0, 0.1]), TypeError),
             ("g:None", _sde_case(f=_decay, g=lambda t, y: None, t=[0.0, 0.1]), TypeError),
             ("g:raises", _sde_case(f=_decay, g=lambda t, y: 1 / 0, t=[0.0, 0.1]), ZeroDivisionError),
             ("f:nan", _sde_case(f=lambda t, y: y * np.nan, g=_additive, t=[0.0, 0.1]), nd.IntegrationError),
             ("dg:not-callable", _sde_case(f=_decay, g=_additive, method="milstein", dg=3), TypeError)])

entry("sdeint[MLP,Constant,general]", nd.sdeint, [Arr("y0", "Bn")],
      pos=lambda A: [MLP_FIELD, nd.sde.Constant(SDE_SIGMA), A["y0"], SDE_T],
      kw=lambda A: {"dt": 0.05, "noise": "general", "brownian": _sde_path(A["y0"], m=3)},
      ref=lambda A: ref_sde.sdeint(ref_ode.mlp(MLP_W, MLP_B), lambda t, y: np.broadcast_to(SDE_SIGMA, y.shape + (3,)),
                                   A["y0"], SDE_T, 0.05, _sde_path(A["y0"], m=3), noise="general"),
      dims={"B": (1, 3)}, fixed={"n": 2}, zero={"B": "ok"}, allow={"y0:ndim+1", "y0:ndim-1"},
      numbers={"m": "int>=1|None"},
      extra=[("m:mismatch", _sde_case(f=MLP_FIELD, g=nd.sde.Constant(SDE_SIGMA), noise="general", m=2), ValueError),
             ("g:vector-for-general", _sde_case(f=MLP_FIELD, g=nd.sde.Constant([0.1, 0.2]), noise="general"),
              ValueError)])


def _probe_diffusion(g):
    return g(0.0, np.linspace(-1.0, 1.0, 6).reshape(2, 3))


entry("sde.Constant()", nd.sde.Constant, [Arr("sigma", "n")], pos=lambda A: [A["sigma"]],
      call=lambda A, **o: _probe_diffusion(nd.sde.Constant(A["sigma"], **o)),
      ref=lambda A: np.broadcast_to(A["sigma"], (2, 3)), fixed={"n": 3},
      allow={"sigma:ndim-1", "sigma:ndim+1"},  # a scalar, and a (d, m) matrix of general noise
      extra=[("sigma:3-d", lambda A: nd.sde.Constant(np.ones((2, 2, 2))), ValueError)])

entry("sde.Linear()", nd.sde.Linear, [Arr("scale", "n"), Arr("offset", "n")], pos=lambda A: [A["scale"], A["offset"]],
      call=lambda A, **o: _probe_diffusion(nd.sde.Linear(A["scale"], A["offset"], **o)),
      ref=lambda A: A["scale"] * np.linspace(-1.0, 1.0, 6).reshape(2, 3) + A["offset"], fixed={"n": 3},
      allow={"scale:ndim-1", "offset:ndim-1"},  # scalars
      extra=[("scale:2-d", lambda A: nd.sde.Linear(np.ones((2, 3))), ValueError)])

entry("sde.sdeint_vjp[Linear,Linear]", nd.sde.sdeint_vjp, [Arr("y0", "Bn"), Arr("ybar", "TBn")],
      pos=lambda A: [LINEAR, SDE_G, A["y0"], SDE_T, A["ybar"]],
      kw=lambda A: {"dt": 0.05, "brownian": _sde_path(A["y0"])}, pick=lambda r: r[0],
      dims={"B": (1, 3)}, fixed={"n": 3, "T": 3}, zero={"B": "ok"}, allow={"y0:ndim+1", "y0:ndim-1"},
      numbers={"dt": "real>0"},
      extra=[("method:sra", lambda A: nd.sde.sdeint_vjp(LINEAR, SDE_G, A["y0"], SDE_T, A["ybar"], dt=0.05,
                                                        brownian=_sde_path(A["y0"]), method="sra"), NotImplementedError),
             ("f:callable", lambda A: nd.sde.sdeint_vjp(_decay, SDE_G, A["y0"], SDE_T, A["ybar"], dt=0.05,
                                                        brownian=_sde_path(A["y0"])), NotImplementedError)])

entry("solve_ltc", nd.solve_ltc, [Arr("x", "Bn", free=True), Arr("a", "Bn", free=True),
                                  Arr("tau", "Bn", "pos", free=True)],
      pos=lambda A: [A["x"], A["a"], A["tau"]], kw=lambda A: {"solver": "rk4", "steps": 2},
      ref=lambda A: ref_ode.solve_ltc(A["x"], A["a"], A["tau"], "rk4", 2),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, options={"solver": "rk4"},
      numbers={"steps": "int>=1", "rtol": "real>=0", "atol": "real>=0", "max_steps": "int>=1"},
      extra=[("tau:zero", lambda A: nd.solve_ltc(A["x"], A["a"], np.zeros_like(A["tau"])), ValueError),
             ("tau:negative", lambda A: nd.solve_ltc(A["x"], A["a"], -A["tau"]), ValueError),
             ("shapes:no-broadcast", lambda A: nd.solve_ltc(np.zeros(2), np.zeros(3), 1.0), ValueError),
             ("rtol=atol=0:dopri5", lambda A: nd.solve_ltc(1.0, 0.5, 1.0, solver="dopri5", rtol=0, atol=0),
              ValueError)])

entry("ltc_scan", nd.ltc_scan, [Arr("a", "BTH"), Arr("tau", "BTH", "pos"), Arr("h0", "BH")],
      pos=lambda A: [A["a"], A["tau"], A["h0"]], kw=lambda A: {"solver": "exact"},
      ref=lambda A: ref_liquid.ltc_scan(A["a"], A["tau"], A["h0"]),
      dims={"B": (1, 3), "T": (1, 3), "H": (1, 3)}, zero={"B": "ok", "T": "ok", "H": "ok"},
      options={"solver": "exact"}, numbers={"steps": "int>=1", "rtol": "real>=0", "atol": "real>=0",
                                            "max_steps": "int>=1"},
      extra=[("tau:zero", lambda A: nd.ltc_scan(A["a"], np.zeros_like(A["tau"])), ValueError),
             ("tau:shape", lambda A: nd.ltc_scan(A["a"], A["tau"][:, :, :1]), ValueError),
             ("tau:unstable-rk4", lambda A: nd.ltc_scan(A["a"], np.full_like(A["tau"], 0.1), solver="rk4"),
              nd.IntegrationError)])


# ---- Hopfield ------------------------------------------------------------------------------------

entry("hopfield_retrieve", nd.hopfield_retrieve,
      [Arr("queries", "Bd"), Arr("patterns", "Nd"), Arr("values", "Ne")],
      pos=lambda A: [A["queries"], A["patterns"]], kw=lambda A: {"beta": 2.0, "values": A["values"]},
      ref=lambda A: ref_hop.retrieve(A["queries"], A["patterns"], 2.0, A["values"])[0],
      dims={"B": (1, 3), "d": (1, 3), "N": (1, 3), "e": (1, 3)},
      zero={"B": "ok", "d": "ok", "e": "ok", "N": "raise"}, allow={"queries:ndim-1", "values:lastdim+1"},
      numbers={"beta": "real>0", "steps": "int>=1", "tol": "real>=0|None"},
      extra=[("values:with-steps",
              lambda A: nd.hopfield_retrieve(A["queries"], A["patterns"], values=A["values"], steps=2), ValueError)])

entry("hopfield_retrieve[iterate]", nd.hopfield_retrieve, [Arr("queries", "Bd"), Arr("patterns", "Nd")],
      pos=lambda A: [A["queries"], A["patterns"]], kw=lambda A: {"beta": 3.0, "steps": 4, "tol": 1e-9},
      ref=lambda A: ref_hop.retrieve_iterated(A["queries"], A["patterns"], 3.0, 4, 1e-9),
      dims={"B": (1, 3), "d": (1, 3), "N": (1, 3)}, zero={"B": "ok", "N": "raise"},
      allow={"queries:ndim-1"})

for _full in (False, True):
    entry(f"hopfield_energy[full={_full}]", nd.hopfield_energy, [Arr("queries", "Bd"), Arr("patterns", "Nd")],
          pos=lambda A: [A["queries"], A["patterns"]], kw=lambda A, f=_full: {"beta": 0.7, "full": f},
          ref=(lambda A: ref_hop.energy_full(A["queries"], A["patterns"], 0.7)) if _full else
          (lambda A: ref_hop.energy_edifice(A["queries"], A["patterns"], 0.7)),
          dims={"B": (1, 3), "d": (1, 3), "N": (1, 3)}, zero={"B": "ok", "d": "ok", "N": "raise"},
          allow={"queries:ndim-1"}, numbers={"beta": "real>0"})

entry("hopfield_separation", nd.hopfield_separation, [Arr("patterns", "Nd")],
      pos=lambda A: [A["patterns"]], ref=lambda A: ref_hop.separation_delta(A["patterns"]),
      pick=lambda r: r["delta"], dims={"N": (2, 4), "d": (1, 3)}, zero={"d": "ok", "N": "raise"},
      allow={"patterns:lastdim+1"},
      extra=[("patterns:one", lambda A: nd.hopfield_separation(A["patterns"][:1]), ValueError)])


def _classical_store(A, rule="hebbian"):
    net = nd.ClassicalHopfield(5)
    net.store(A["patterns"], rule=rule)
    return net.W


entry("ClassicalHopfield()", nd.ClassicalHopfield, pos=lambda A: [5], call=lambda A, **o: nd.ClassicalHopfield(
      **{"n": 5, **o}).W, numbers={"n": "int>=1"})

entry("ClassicalHopfield.store[hebbian]", CH.store, [Arr("patterns", "Pn", "pm1")],
      pos=lambda A: [A["patterns"]], call=lambda A, **o: _classical_store(A, **o),
      ref=lambda A: ref_hop.hebbian_weights(A["patterns"]), dims={"P": (1, 3)}, fixed={"n": 5},
      zero={"P": "ok"}, options={"rule": "hebbian"}, allow={"patterns:ndim-1"},
      extra=[("patterns:not-pm1", lambda A: _classical_store({"patterns": A["patterns"] * 0.5}), ValueError),
             ("patterns:zeros", lambda A: _classical_store({"patterns": A["patterns"] * 0}), ValueError)])

entry("ClassicalHopfield.store[pseudoinverse]", CH.store, [Arr("patterns", "Pn", "pm1")],
      pos=lambda A: [A["patterns"]], call=lambda A, **o: _classical_store(A, **{"rule": "pseudoinverse", **o}),
      ref=lambda A: ref_hop.pseudoinverse_weights(A["patterns"]), dims={"P": (1, 3)}, fixed={"n": 5},
      exact=False, allow={"patterns:ndim-1"})

entry("ClassicalHopfield.energy", CH.energy, [Arr("x", "Bn", "pm1")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_hop.classical_energy(CH.W, A["x"]), dims={"B": (1, 3)}, fixed={"n": 5},
      zero={"B": "ok"}, allow={"x:ndim-1"})


def _sync_recall(x, steps=3):
    X = np.asarray(x, dtype=F64)
    for _ in range(steps):
        new = ref_hop.sync_step(CH.W, X)
        if np.array_equal(new, X):
            break
        X = new
    return X


entry("ClassicalHopfield.recall[sync]", CH.recall, [Arr("x", "Bn", "pm1")], pos=lambda A: [A["x"]],
      kw=lambda A: {"mode": "sync", "steps": 3}, ref=lambda A: _sync_recall(A["x"]), dims={"B": (1, 3)},
      fixed={"n": 5}, zero={"B": "ok"}, allow={"x:ndim-1"}, options={"mode": "sync"},
      numbers={"steps": "int>=1"})

entry("ClassicalHopfield.recall[async]", CH.recall, [Arr("x", "Bn", "pm1")], pos=lambda A: [A["x"]],
      kw=lambda A: {"seed": 3}, dims={"B": (1, 3)}, fixed={"n": 5}, zero={"B": "ok"}, allow={"x:ndim-1"},
      numbers={"seed": "seed"})


# ---- associative memories ------------------------------------------------------------------------

_FRM_KW = dict(a=-0.3, b=0.95, gain=2.0, threshold=0.2, dtype="float64")
FRM = nd.FiringRateMemory(_memory01(np.random.default_rng(3), (2, 6)), **_FRM_KW)
IDP = nd.IDPHopfield(np.array([[1, -1, 1, -1, 1, 1], [1, 1, -1, -1, 1, -1]]), gain=1.5, dtype=F64)
SEQ = nd.SequentialHopfield(IDP.params["patterns"], sequence=[0, 1], kappa=5.0, eps=0.1, activation="tanh",
                            gain=1.5, dtype=F64)
PROBE6 = np.linspace(-0.9, 0.8, 6)


def _frm_ref(A):
    X = A["patterns"]
    q = X.mean()
    return ref_mem.rate_weights(X, *ref_mem.design(-0.3, 0.95, q, q, "sigmoid", 2.0, 0.2))


entry("FiringRateMemory()", nd.FiringRateMemory, [Arr("patterns", "Pn", "memory01")], pos=lambda A: [A["patterns"]],
      kw=lambda A: dict(_FRM_KW), call=lambda A, **o: nd.FiringRateMemory(A["patterns"], **{**_FRM_KW, **o})
      .dense_weights(), ref=_frm_ref, dims={"P": (1, 3)}, fixed={"n": 6}, zero={"P": "raise"},
      allow={"patterns:lastdim+1"}, options={"activation": "sigmoid", "dtype": "float64"},
      numbers={"a": "real", "b": "real", "gain": "real>0", "threshold": "real", "tau": "real>0",
               "overlap": "prob|None"},
      extra=[("patterns:not-01", lambda A: nd.FiringRateMemory(A["patterns"] * 0.5, **_FRM_KW), ValueError),
             ("patterns:P>=N", lambda A: nd.FiringRateMemory(np.eye(6), **_FRM_KW), ValueError),
             ("a:not-below-b", lambda A: nd.FiringRateMemory(A["patterns"], **{**_FRM_KW, "a": 1.0}), ValueError)])

entry("FiringRateMemory.__call__", FRM.__call__, [Arr("r", "Bn", "unit")], pos=lambda A: [A["r"]],
      ref=lambda A: ref_mem.rate_rhs(FRM.dense_weights(), "sigmoid", 2.0, 0.2, A["r"]),
      dims={"B": (1, 3)}, fixed={"n": 6}, zero={"B": "ok"}, allow={"r:ndim-1", "r:ndim+1"}, options={"form": "rate"})

entry("FiringRateMemory.energy", FRM.energy, [Arr("r", "Bn", "unit")], pos=lambda A: [A["r"]],
      dims={"B": (1, 3)}, fixed={"n": 6}, zero={"B": "ok"}, allow={"r:ndim-1", "r:ndim+1"})

entry("FiringRateMemory.recall", FRM.recall, [Arr("cues", "Bn", "spikes")], pos=lambda A: [A["cues"], 1.0],
      call=lambda A, **o: FRM.recall(A["cues"], **{"t_max": 1.0, "n_times": 3, "verbose": False, **o}).final,
      dims={"B": (1, 3)}, fixed={"n": 6}, zero={"B": "ok"}, allow={"cues:ndim-1"}, options={"form": "rate"},
      numbers={"t_max": "real>0", "tol": "real>=0", "noise": "real>=0", "n_times": "int>=2"},
      extra=[("cues:not-01", lambda A: FRM.recall(A["cues"] + 0.5, 1.0, verbose=False), ValueError),
             ("input:size", lambda A: FRM.recall(A["cues"], 1.0, input=np.zeros(5), verbose=False), ValueError)])

entry("IDPHopfield()", nd.IDPHopfield, [Arr("patterns", "Pn", "pm1")], pos=lambda A: [A["patterns"]],
      call=lambda A, **o: nd.IDPHopfield(A["patterns"], **{"dtype": "float64", **o})(PROBE6[None], PROBE6),
      ref=lambda A: ref_mem.hopfield_rhs(ref_mem.idp_weights(A["patterns"], A["patterns"] @ PROBE6 / 6), "tanh",
                                         10.0, PROBE6[None]),
      dims={"P": (1, 3)}, fixed={"n": 6}, zero={"P": "raise"},
      options={"activation": "tanh", "dtype": "float64"}, numbers={"gain": "real>0", "tau": "real>0"},
      extra=[("patterns:not-pm1", lambda A: nd.IDPHopfield(A["patterns"] * 0.5), ValueError)])

entry("IDPHopfield.recall", IDP.recall, [Arr("x0", "Bn")], pos=lambda A: [A["x0"], 1.0],
      call=lambda A, **o: IDP.recall(A["x0"], **{"t_max": 1.0, "input": PROBE6, "n_times": 3, "verbose": False,
                                                 **o}).final,
      dims={"B": (1, 3)}, fixed={"n": 6}, zero={"B": "ok"}, allow={"x0:ndim-1"},
      numbers={"t_max": "real>0", "noise": "real>=0", "threshold": "real>=0", "n_times": "int>=2"})

entry("IDPHopfield.energy", IDP.energy, [Arr("x", "Bn"), Arr("u", "Bn")], pos=lambda A: [A["x"], A["u"]],
      ref=lambda A: [ref_mem.hopfield_energy(ref_mem.idp_weights(IDP.params["patterns"],
                                                                 IDP.params["patterns"] @ A["u"][b] / 6),
                                             "tanh", 1.5, A["x"][b:b + 1])[0] for b in range(len(A["x"]))],
      dims={"B": (1, 3)}, fixed={"n": 6}, zero={"B": "ok"}, allow={"x:ndim-1", "u:ndim-1"})

entry("SequentialHopfield()", nd.SequentialHopfield, [Arr("patterns", "Pn", "pm1")], pos=lambda A: [A["patterns"]],
      call=lambda A, **o: nd.SequentialHopfield(A["patterns"], **{"sequence": [0, 1], "kappa": 5.0,
                                                                  "dtype": "float64", **o}).field()(
          0.0, np.r_[PROBE6, np.ones(len(A["patterns"]))]),
      dims={"P": (2, 3)}, fixed={"n": 6}, zero={"P": "raise"}, allow={"patterns:lastdim+1"},
      options={"activation": "hardtanh", "dtype": "float64"},
      numbers={"kappa": "real>=0", "eps": "real>0", "leak": "real>=0", "gain": "real>0"})

entry("SequentialHopfield.run", SEQ.run, [Arr("alpha0", "Bp", "pos")], pos=lambda A: [A["alpha0"], 1.0],
      call=lambda A, **o: SEQ.run(A["alpha0"], **{"t_max": 1.0, "dt": 0.1, "seed": 0, "n_times": 3,
                                                  "verbose": False, **o}).saliencies[-1],
      dims={"B": (1, 3)}, fixed={"p": 2}, zero={"B": "ok"}, allow={"alpha0:ndim-1"},
      numbers={"t_max": "real>0", "dt": "real>0", "noise": "real>=0", "n_times": "int>=2", "seed": "seed"})


# ---- spiking -------------------------------------------------------------------------------------

def _lif_ref(A):
    s, m, _ = ref_snn.lif_forward(A["currents"], beta=0.5, v0=A["v0"])
    return s, m


entry("lif_run", nd.lif_run, [Arr("currents", "TBn", "dyadic"), Arr("v0", "Bn", "dyadic")],
      pos=lambda A: [A["currents"]], kw=lambda A: {"beta": 0.5, "v0": A["v0"]}, ref=_lif_ref,
      dims={"T": (1, 3), "B": (1, 3), "n": (1, 3)}, zero={"T": "ok", "B": "ok", "n": "ok"},
      options={"reset": "subtract"}, numbers={"beta": "beta|None", "threshold": "real>0"},
      extra=[("tau+beta", lambda A: nd.lif_run(A["currents"], tau=2.0, beta=0.5), ValueError),
             ("tau:zero", lambda A: nd.lif_run(A["currents"], tau=0.0), ValueError),
             ("tau:nan", lambda A: nd.lif_run(A["currents"], tau=math.nan), ValueError),
             ("tau:bool", lambda A: nd.lif_run(A["currents"], tau=True), TypeError)])

entry("lif_rate", nd.lif_rate, [Arr("currents", "TBn", "dyadic"), Arr("v0", "Bn", "dyadic")],
      pos=lambda A: [A["currents"]], kw=lambda A: {"beta": 0.5, "v0": A["v0"]},
      ref=lambda A: _lif_ref(A)[0].mean(axis=0),
      dims={"T": (1, 3), "B": (1, 3), "n": (1, 3)}, zero={"T": "raise", "B": "ok", "n": "ok"},
      options={"reset": "subtract"}, numbers={"beta": "beta|None", "threshold": "real>0"})

entry("lif_step", nd.lif_step, [Arr("current", "Bn", "dyadic"), Arr("v", "Bn", "dyadic")],
      pos=lambda A: [A["current"], A["v"]], kw=lambda A: {"beta": 0.5},
      ref=lambda A: tuple(x[0] for x in ref_snn.lif_forward(A["current"][None], beta=0.5, v0=A["v"])[:2]),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, options={"reset": "subtract"},
      numbers={"beta": "beta|None", "threshold": "real>0"})

entry("lif_backward", nd.lif_backward, [Arr("currents", "TBn", "dyadic"), Arr("dspikes", "TBn"),
                                        Arr("dmembrane", "TBn"), Arr("v0", "Bn", "dyadic")],
      pos=lambda A: [A["currents"], A["dspikes"], A["dmembrane"]], kw=lambda A: {"beta": 0.5, "v0": A["v0"]},
      ref=lambda A: ref_snn.lif_backward(A["currents"], A["dspikes"], A["dmembrane"], beta=0.5, v0=A["v0"]),
      dims={"T": (1, 3), "B": (1, 3), "n": (1, 3)}, zero={"T": "ok", "B": "ok", "n": "ok"}, exact=True,
      options={"reset": "subtract", "surrogate": "sigmoid"},
      numbers={"beta": "beta|None", "threshold": "real>0", "slope": "real>0"}, tol=(1e-9, 1e-12),
      allow={"dspikes:ndim-1"})  # a (B, n) dspikes is the documented shared-per-step form


def _if_ref(A, T=8):
    cur = np.asarray(A["current"], F64)
    v0 = np.asarray(A["v0"], F64).reshape(cur.shape)
    counts = np.vectorize(lambda c, v: ref_snn.if_count(c, T, 1.0, v), otypes=[F64])(cur, v0)
    return counts / T


entry("if_neuron", nd.if_neuron, [Arr("current", "Bn", "dyadic", free=True), Arr("v0", "Bn", "dyadic", free=True)],
      pos=lambda A: [A["current"]], kw=lambda A: {"num_timesteps": 8, "v0": A["v0"]}, ref=_if_ref,
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, exact=False,
      numbers={"num_timesteps": "int>=1", "threshold": "real>0"})

entry("rate_decode", nd.rate_decode, [Arr("spikes", "TBn", "spikes", free=True)], pos=lambda A: [A["spikes"]],
      ref=lambda A: np.asarray(A["spikes"], F64).mean(axis=0), dims={"T": (1, 3), "B": (1, 3), "n": (1, 3)},
      zero={"B": "ok", "n": "ok"}, exact=False,
      extra=[("axis:out-of-range", lambda A: nd.rate_decode(A["spikes"], axis=5), ValueError),
             ("spikes:0-d", lambda A: nd.rate_decode(1.0), ValueError)],
      isolate_huge={
          "spikes:huge": "nd.rate_decode(np.broadcast_to(0.0, (2**49, 2, 2)))",
          "spikes:huge-bool": "nd.rate_decode(np.broadcast_to(True, (2**61, 2)))"})

entry("encode.poisson", nd.encode.poisson, [Arr("x", "Bn", "unit", free=True)], pos=lambda A: [A["x"]],
      kw=lambda A: {"num_timesteps": 5, "seed": 3}, dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"},
      numbers={"num_timesteps": "int>=1", "seed": "seed"})


def _latency_ref(A, T=5):
    x = np.asarray(A["x"], F64)
    out = np.zeros((T,) + x.shape)
    for idx in np.ndindex(*x.shape):
        k = ref_snn.latency_step(x[idx], T)
        if k is not None:
            out[(k,) + idx] = 1.0
    return out


entry("encode.latency", nd.encode.latency, [Arr("x", "Bn", "unit", free=True)], pos=lambda A: [A["x"]],
      kw=lambda A: {"num_timesteps": 5},
      ref=_latency_ref, dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"},
      numbers={"num_timesteps": "int>=1"})

entry("encode.constant", nd.encode.constant, [Arr("x", "Bn", free=True)], pos=lambda A: [A["x"]],
      kw=lambda A: {"num_timesteps": 3},
      ref=lambda A: np.broadcast_to(np.asarray(A["x"], F64), (3,) + np.shape(A["x"])), exact=False,
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, numbers={"num_timesteps": "int>=1"})


# ---- energy-based --------------------------------------------------------------------------------

entry("contrastive_divergence_loss", nd.contrastive_divergence_loss,
      [Arr("e_real", "B", free=True), Arr("e_neg", "M", free=True)], pos=lambda A: [A["e_real"], A["e_neg"]],
      ref=lambda A: ref_ebm.cd_loss(A["e_real"], A["e_neg"], 0.01), dims={"B": (1, 3), "M": (1, 3)},
      zero={"B": "raise", "M": "raise"}, exact=False, numbers={"reg_alpha": "real>=0"},
      isolate_huge={
          "e_real:huge": "nd.contrastive_divergence_loss(np.broadcast_to(0.0, (2**49,)), [1.0])",
          "e_real:huge-bool": "nd.contrastive_divergence_loss(np.broadcast_to(True, (2**61,)), [1.0])"})

LANGEVIN = dict(steps=3, step_size=0.05, noise_scale=0.5, seed=4)
LANGEVIN_NUMBERS = {"steps": "int>=0", "step_size": "real>0", "noise_scale": "real>=0", "grad_clip": "real>0|None",
                    "seed": "seed"}


def _half_square(x):
    return 0.5 * np.sum(x * x, axis=1), np.array(x, dtype=F64)


def _lv_case(energy, **kw):
    return lambda A: nd.langevin_sample(energy, A["x0"], **{**LANGEVIN, **kw})


def _lv_callable(f, **kw):
    return lambda A: nd.langevin_sample(f, A["x0"], **{**LANGEVIN, **kw})


entry("langevin_sample[DoubleWell]", nd.langevin_sample, [Arr("x0", "Bd")], pos=lambda A: [DWELL, A["x0"]],
      kw=lambda A: dict(LANGEVIN), dims={"B": (1, 3)}, fixed={"d": 2}, zero={"B": "ok"},
      ref=lambda A: ref_ebm.langevin(lambda x: ref_ebm.double_well(x, 1.0, 0.3), A["x0"], 3, 0.05, 0.5, 4),
      exact=True, numbers=LANGEVIN_NUMBERS, tol=(1e-10, 1e-12),
      extra=[("clamp:length-1", _lv_case(DWELL, clamp=(1.0,)), ValueError),
             ("clamp:reversed", _lv_case(DWELL, clamp=(1.0, -1.0)), ValueError),
             ("clamp:equal", _lv_case(DWELL, clamp=(1.0, 1.0)), ValueError),
             ("clamp:nan", _lv_case(DWELL, clamp=(math.nan, 1.0)), ValueError),
             ("clamp:not-a-pair", _lv_case(DWELL, clamp=5.0), TypeError),
             ("clamp:strings", _lv_case(DWELL, clamp=("a", "b")), TypeError),
             ("mala:no-noise", _lv_case(DWELL, mala=True, noise_scale=0.0), ValueError),
             ("energy:not-callable", lambda A: nd.langevin_sample(3, A["x0"]), TypeError),
             ("x0:count-zero", lambda A: nd.langevin_sample(DWELL, 0, steps=1), ValueError),
             ("x0:count-negative", lambda A: nd.langevin_sample(DWELL, -2, steps=1), ValueError),
             ("x0:count-huge", lambda A: nd.langevin_sample(DWELL, 2**63, steps=1), ValueError),
             ("x0:count-absurd", lambda A: nd.langevin_sample(DWELL, 2**50, steps=1), HUGE_ERRORS),
             ("x0:bool", lambda A: nd.langevin_sample(DWELL, True, steps=1), ValueError),
             ("x0:count-callable", lambda A: nd.langevin_sample(_half_square, 3, steps=1), ValueError),
             ("x0:dim-mismatch", lambda A: nd.langevin_sample(DWELL, np.zeros((2, 3)), steps=1), ValueError),
             ("dtype:complex", _lv_case(DWELL, dtype=np.complex128), TypeError)])

entry("langevin_sample[Quadratic,mala]", nd.langevin_sample, [Arr("x0", "Bd")],
      pos=lambda A: [QUAD, A["x0"]], kw=lambda A: {**LANGEVIN, "mala": True, "return_info": True},
      pick=lambda r: (r[0], r[1]["acceptance"] * 3),
      ref=lambda A: ref_ebm.mala(lambda x: ref_ebm.quadratic(x, QUAD.mean, QUAD.precision), A["x0"], 3, 0.05,
                                 0.5, 4),
      dims={"B": (1, 3)}, fixed={"d": 2}, zero={"B": "ok"}, exact=True, tol=(1e-10, 1e-12))

entry("langevin_sample[GaussianMixture]", nd.langevin_sample, [Arr("x0", "Bd")], pos=lambda A: [GMM, A["x0"]],
      kw=lambda A: dict(LANGEVIN, grad_clip=0.5, clamp=(-1.0, 1.5)),
      ref=lambda A: ref_ebm.langevin(lambda x: ref_ebm.gmm(x, GMM.means, GMM.covs, GMM.weights), A["x0"], 3,
                                     0.05, 0.5, 4, clamp=(-1.0, 1.5), grad_clip=0.5),
      dims={"B": (1, 3)}, fixed={"d": 2}, zero={"B": "ok"}, tol=(1e-9, 1e-11))

entry("langevin_sample[EBM]", nd.langevin_sample, [Arr("x0", "Bd")], pos=lambda A: [EBM, A["x0"]],
      kw=lambda A: dict(LANGEVIN),
      ref=lambda A: ref_ebm.langevin(lambda x: ref_ebm.mlp_energy(EBM.params, x, 1, "relu"), A["x0"], 3, 0.05,
                                     0.5, 4),
      dims={"B": (1, 3)}, fixed={"d": 3}, zero={"B": "ok"}, tol=(1e-9, 1e-11))

entry("langevin_sample[callable]", nd.langevin_sample, [Arr("x0", "Bd")], pos=lambda A: [_half_square, A["x0"]],
      kw=lambda A: dict(LANGEVIN), ref=lambda A: ref_ebm.langevin(_half_square, A["x0"], 3, 0.05, 0.5, 4),
      dims={"B": (1, 3), "d": (1, 3)}, zero={"B": "ok", "d": "raise"}, tol=(1e-10, 1e-12), allow={"x0:lastdim+1"},
      extra=[("energy:E-shape", _lv_callable(lambda x: (x.sum(1)[:1], x.copy())), ValueError),
             ("energy:grad-shape", _lv_callable(lambda x: (x.sum(1), x[:, :0])), ValueError),
             ("energy:grad-complex", _lv_callable(lambda x: (x.sum(1), x + 0.5j)), TypeError),
             ("energy:grad-object", _lv_callable(lambda x: (x.sum(1), x.astype(object))), TypeError),
             ("energy:grad-nan", _lv_callable(lambda x: (x.sum(1), x * np.nan)), nd.IntegrationError),
             ("energy:None", _lv_callable(lambda x: None), TypeError),
             ("energy:not-a-pair", _lv_callable(lambda x: (1, 2, 3)), TypeError),
             ("energy:raises", _lv_callable(lambda x: 1 / 0), ZeroDivisionError),
             ("energy:grad-huge", _lv_callable(lambda x: (x.sum(1), np.broadcast_to(0.0, (2**49, x.shape[1])))),
              HUGE_ERRORS)])


for _fname, _field, _fref, _n in (("Linear", LINEAR, ref_ode.linear(LIN_A), 3), ("Lorenz", LORENZ, ref_ode.lorenz(), 3),
                                  ("MLP", MLP_FIELD, ref_ode.mlp(MLP_W, MLP_B), 2)):
    entry(f"Field.__call__[{_fname}]", _field, [Arr("y", "Bn")], kw=lambda A: {"t": 0.25, "y": A["y"]},
          ref=lambda A, f=_fref: f(0.25, np.asarray(A["y"], F64)), dims={"B": (1, 3)}, fixed={"n": _n},
          zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"}, numbers={"t": "real|any"},
          extra=[("y:wrong-dim", lambda A, f=_field: f(0.0, np.zeros((2, 7))), ValueError)])


def _probe_field(field):
    # evaluated on a fixed state of the field's own size: the probe never depends on the input
    return field(0.0, np.linspace(-1.0, 1.0, 2 * field.dim).reshape(2, field.dim))


entry("fields.Linear()", nd.fields.Linear, [Arr("A", "nn"), Arr("b", "n")], pos=lambda A: [A["A"], A["b"]],
      call=lambda A, **o: _probe_field(nd.fields.Linear(A["A"], A["b"], **o)),
      ref=lambda A: ref_ode.linear(A["A"], A["b"])(0.0, np.linspace(-1.0, 1.0, 2 * len(A["b"])).reshape(2, -1)),
      dims={"n": (1, 3)}, zero={"n": "ok"},
      extra=[("A:not-square", lambda A: nd.fields.Linear(np.zeros((2, 3))), ValueError),
             ("b:wrong-length", lambda A: nd.fields.Linear(np.eye(2), np.zeros(3)), ValueError)])

entry("fields.Lorenz()", nd.fields.Lorenz, call=lambda A, **o: nd.fields.Lorenz(**o)(0.0, PROBE3),
      numbers={"sigma": "real", "rho": "real", "beta": "real"})

entry("fields.LinearEvent()", nd.fields.LinearEvent,
      call=lambda A, **o: nd.fields.LinearEvent([1.0, 2.0, 3.0], **o)(0.0, PROBE3), numbers={"d": "real"})

entry("fields.MLP()", nd.fields.MLP, [Arr("w1", "nh"), Arr("b1", "h"), Arr("w2", "hn"), Arr("b2", "n")],
      pos=lambda A: [[A["w1"], A["w2"]], [A["b1"], A["b2"]]],
      call=lambda A, **o: _probe_field(nd.fields.MLP([A["w1"], A["w2"]], [A["b1"], A["b2"]], **o)),
      ref=lambda A: ref_ode.mlp([A["w1"], A["w2"]], [A["b1"], A["b2"]])(0.0, np.linspace(-1.0, 1.0, 4).reshape(2, 2)),
      dims={"h": (1, 3)}, fixed={"n": 2}, zero={"h": "raise"},
      options={"activation": "tanh", "final_activation": "identity"},
      extra=[("weights:none", lambda A: nd.fields.MLP([]), ValueError),
             ("weights:17-layers", lambda A: nd.fields.MLP([np.eye(2)] * 17), ValueError),
             ("weights:chain-mismatch", lambda A: nd.fields.MLP([np.zeros((2, 3)), np.zeros((4, 2))]), ValueError),
             ("weights:not-a-field", lambda A: nd.fields.MLP([np.zeros((2, 3))]), ValueError),
             ("biases:count", lambda A: nd.fields.MLP([np.eye(2)], [np.zeros(2), np.zeros(2)]), ValueError),
             ("biases:shape", lambda A: nd.fields.MLP([np.eye(2)], [np.zeros(3)]), ValueError),
             ("weights:1-d", lambda A: nd.fields.MLP([np.zeros(2)]), ValueError)])


# Polynomial fields: K terms over 3 values, target k % 3 and powers from a fixed pattern.
def _poly_parts(K):
    return np.arange(K) % 3, (np.arange(3 * K).reshape(K, 3) % 3)


def _poly_ref(coef, y):
    target, powers = _poly_parts(len(coef))
    dy = np.zeros_like(np.asarray(y, F64))
    for c, r, pw in zip(np.asarray(coef, F64), target, powers):
        dy[..., r] += c * np.prod(np.asarray(y, F64) ** pw, axis=-1)
    return dy


POLY_FIELD = nd.fields.Polynomial([0.5, -1.0, 2.0, 0.25], *_poly_parts(4))

entry("fields.Polynomial()", nd.fields.Polynomial, [Arr("coef", "K")],
      pos=lambda A: [A["coef"], *_poly_parts(4)],
      call=lambda A, **o: _probe_field(nd.fields.Polynomial(A["coef"], *_poly_parts(4), **o)),
      ref=lambda A: _poly_ref(A["coef"], np.linspace(-1.0, 1.0, 6).reshape(2, 3)),
      fixed={"K": 4},
      extra=[("target:out-of-range", lambda A: _probe_field(nd.fields.Polynomial([1.0], [3], [[1, 0, 0]])), ValueError),
             ("target:negative", lambda A: _probe_field(nd.fields.Polynomial([1.0], [-1], [[1, 0, 0]])), ValueError),
             ("powers:negative", lambda A: _probe_field(nd.fields.Polynomial([1.0], [0], [[-1, 0, 0]])), ValueError),
             ("powers:above-64", lambda A: _probe_field(nd.fields.Polynomial([1.0], [0], [[65, 0, 0]])), ValueError),
             ("powers:float", lambda A: nd.fields.Polynomial([1.0], [0], [[0.5, 0, 0]]), TypeError),
             ("powers:1-d", lambda A: nd.fields.Polynomial([1.0], [0], [1, 0, 0]), ValueError),
             ("target:count", lambda A: _probe_field(nd.fields.Polynomial([1.0, 2.0], [0], [[1, 0, 0]] * 2)), ValueError),
             ("coef:nan", lambda A: nd.fields.Polynomial([np.nan], [0], [[1, 0, 0]]), ValueError),
             ("terms:component", lambda A: nd.fields.Polynomial.from_terms(3, [(0, 1.0, {5: 1})]), ValueError)])


def _lorenz_jac(y, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    y = np.asarray(y, F64)
    J = np.zeros(y.shape + (3,))
    J[..., 0, 0], J[..., 0, 1] = -sigma, sigma
    J[..., 1, 0], J[..., 1, 1], J[..., 1, 2] = rho - y[..., 2], -1.0, -y[..., 0]
    J[..., 2, 0], J[..., 2, 1], J[..., 2, 2] = y[..., 1], y[..., 0], -beta
    return J


for _fname, _field, _jref, _n in (
        ("Linear", LINEAR, lambda y: np.broadcast_to(LIN_A, np.shape(y) + (3,)), 3),
        ("Lorenz", LORENZ, _lorenz_jac, 3), ("MLP", MLP_FIELD, None, 2),
        ("Polynomial", POLY_FIELD, None, 3)):
    entry(f"Field.jacobian[{_fname}]", _field.jacobian, [Arr("y", "Bn")], kw=lambda A: {"t": 0.25, "y": A["y"]},
          ref=None if _jref is None else (lambda A, f=_jref: f(A["y"])), dims={"B": (1, 3)}, fixed={"n": _n},
          zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"}, numbers={"t": "real|any"},
          extra=[("y:wrong-dim", lambda A, f=_field: f.jacobian(0.0, np.zeros((2, 7))), ValueError)])


# ---- chaos: Lyapunov spectra, maps, the catalogue of flows ----------------------------------------

_LYAP = {"t_transient": 0.05, "t_total": 0.2, "dt": 0.01}


def _lyap_twin(y0):
    y = np.atleast_2d(np.asarray(y0, F64))
    lam, _ = ref_chaos.qr_spectrum(ref_chaos.lorenz, ref_chaos.lorenz_jac, y, 0.01, 5, 20)
    return -np.sort(-lam, axis=1).reshape(np.shape(y0)[:-1] + (3,))


entry("lyapunov_spectrum[Lorenz]", nd.lyapunov_spectrum, [Arr("y0", "Bn")],
      pos=lambda A: [LORENZ, A["y0"]], kw=lambda A: dict(_LYAP), ref=lambda A: _lyap_twin(A["y0"]),
      dims={"B": (1, 3)}, fixed={"n": 3}, zero={"B": "ok"}, tol=(1e-8, 1e-10), allow={"y0:ndim-1"},
      options={"qr": "auto"},
      numbers={"dt": "real>0", "t_total": "real>0", "t_transient": "real>=0", "tol": "real>=0", "t0": "real",
               "orth_every": "int>=1", "check_every": "int>=0", "n_exponents": "int>=1|None"},
      extra=[("n_exponents:above-n", lambda A: nd.lyapunov_spectrum(LORENZ, A["y0"], n_exponents=4), ValueError),
             ("f:not-a-field", lambda A: nd.lyapunov_spectrum(3, A["y0"]), TypeError),
             ("f:callable-without-jac", lambda A: nd.lyapunov_spectrum(ref_chaos.lorenz, A["y0"]), TypeError),
             ("jac:for-a-field", lambda A: nd.lyapunov_spectrum(LORENZ, A["y0"], jac=ref_chaos.lorenz_jac),
              TypeError),
             ("f:a-map", lambda A: nd.lyapunov_spectrum(nd.chaos.Henon(), A["y0"]), TypeError),
             ("y0:3-d", lambda A: nd.lyapunov_spectrum(LORENZ, np.ones((1, 2, 3))), ValueError),
             ("escapes", lambda A: nd.lyapunov_spectrum(nd.fields.Linear([[60.0]]), [1.0], t_total=50.0, dt=0.1),
              nd.IntegrationError)])

entry("lyapunov_spectrum[callable]", nd.lyapunov_spectrum, [Arr("y0", "Bn", free=True)],
      pos=lambda A: [ref_chaos.lorenz, A["y0"]], kw=lambda A: {"jac": ref_chaos.lorenz_jac, **_LYAP},
      ref=lambda A: _lyap_twin(A["y0"]), dims={"B": (1, 3)}, fixed={"n": 3}, zero={"B": "ok"}, tol=(1e-8, 1e-10),
      allow={"y0:ndim-1"},
      extra=[("jac:wrong-shape", lambda A: nd.lyapunov_spectrum(ref_chaos.lorenz, A["y0"], jac=lambda t, y: y,
                                                                 t_total=0.1), ValueError),
             ("jac:not-callable", lambda A: nd.lyapunov_spectrum(ref_chaos.lorenz, A["y0"], jac=3), TypeError)])

# a few iterations: from points of the unit square some orbits escape (finitely, this soon)
entry("lyapunov_spectrum_map[Henon]", nd.lyapunov_spectrum_map, [Arr("x0", "Bn", "unit")],
      pos=lambda A: [nd.chaos.Henon(), A["x0"]], kw=lambda A: {"n_transient": 2, "n_iter": 4},
      ref=lambda A: ref_chaos.qr_spectrum_map(ref_chaos.henon, ref_chaos.henon_jac, np.atleast_2d(A["x0"]),
                                              2, 4).reshape(np.shape(A["x0"])),
      dims={"B": (1, 3)}, fixed={"n": 2}, zero={"B": "ok"}, tol=(1e-8, 1e-10), allow={"x0:ndim-1"},
      options={"qr": "auto"},
      numbers={"n_transient": "int>=0", "n_iter": "int>=1", "tol": "real>=0", "orth_every": "int>=1",
               "check_every": "int>=0", "n_exponents": "int>=1|None"},
      extra=[("g:callable-without-jac", lambda A: nd.lyapunov_spectrum_map(ref_chaos.henon, A["x0"]), TypeError),
             ("g:not-a-map", lambda A: nd.lyapunov_spectrum_map(3, A["x0"]), TypeError)])

entry("kaplan_yorke_dimension", nd.kaplan_yorke_dimension, [Arr("exponents", "Bk", free=True)],
      pos=lambda A: [A["exponents"]],
      ref=lambda A: np.array([ref_chaos.kaplan_yorke(r) for r in np.reshape(A["exponents"], (-1, np.shape(
          A["exponents"])[-1]))]).reshape(np.shape(A["exponents"])[:-1]),
      dims={"B": (1, 3), "k": (1, 3)}, zero={"B": "ok", "k": "raise"}, allow={"exponents:ndim-1", "exponents:ndim+1"})

for _mname, _map, _mn in (("Henon", nd.chaos.Henon(), 2), ("Logistic", nd.chaos.Logistic(), 1)):
    entry(f"chaos.{_mname}()", type(_map), call=lambda A, map_=type(_map), n_=_mn, **o: map_(**o)(np.full(n_, 0.3)),
          numbers={k: "real" for k in (("a", "b") if _mname == "Henon" else ("r",))})
    entry(f"chaos.{_mname}.jacobian", _map.jacobian, [Arr("x", "Bn")], pos=lambda A: [A["x"]],
          ref=(lambda A: ref_chaos.henon_jac(A["x"])) if _mname == "Henon" else None,
          dims={"B": (1, 3)}, fixed={"n": _mn}, zero={"B": "ok"}, allow={"x:ndim-1", "x:ndim+1"})

for _cname in ("Rossler", "Chen", "Chua", "Thomas", "SprottB", "Lorenz96", "HenonHeiles", "DoublePendulum",
               "Duffing"):
    _cls = getattr(nd.fields, _cname)
    _fn, _n = ref_chaos.FLOWS[_cls.system]
    _n = 5 if _cname == "Lorenz96" else _n
    _flow = _cls(N=5) if _cname == "Lorenz96" else _cls()
    entry(f"fields.{_cname}()", _cls,
          call=lambda A, cls_=_cls, flow_=_flow, **o: cls_(**({"N": 5} if cls_ is nd.fields.Lorenz96 else {}), **o)(
              0.5, np.full(flow_.dim, 0.3)),
          numbers={p: "real" for p in _cls.param_names})
    entry(f"Field.__call__[{_cname}]", _flow, [Arr("y", "Bn")], pos=lambda A: [0.5, A["y"]],
          ref=lambda A, fn=_fn: fn(0.5, np.asarray(A["y"], F64)),
          dims={"B": (1, 3)}, fixed={"n": _n}, zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"})
    entry(f"Field.jacobian[{_cname}]", _flow.jacobian, [Arr("y", "Bn")], kw=lambda A: {"t": 0.25, "y": A["y"]},
          dims={"B": (1, 3)}, fixed={"n": _n}, zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"},
          numbers={"t": "real|any"})


# The implicit methods on the linear field, against its matrix exponential per sample.
def _expm_ref(y0, t):
    from scipy.linalg import expm
    return np.stack([np.asarray(y0, F64) @ expm(LIN_A * (ti - t[0])).T for ti in t])


def _stiff_case(method, **kw):
    return lambda A: nd.odeint(lambda t, y: -y, A["y0"], [0.0, 0.1], method=method, verbose=False, **kw)


for _m in ("radau", "bdf"):
    entry(f"odeint[Linear,{_m}]", nd.odeint, [Arr("y0", "Bn"), Arr("t", "T", "times")],
          pos=lambda A: [LINEAR, A["y0"], A["t"]], kw=lambda A, m=_m: {"method": m, "rtol": 1e-10, "atol": 1e-12},
          ref=lambda A: _expm_ref(A["y0"], A["t"]),
          dims={"B": (1, 3), "T": (1, 3)}, fixed={"n": 3}, zero={"B": "ok", "T": "raise"}, tol=(1e-6, 1e-8),
          allow={"y0:ndim+1", "y0:ndim-1"}, options={"method": _m},
          numbers={"rtol": "real>=0", "atol": "real>=0", "dt": "real>0|None", "max_steps": "int>=1"},
          extra=[("jac:wrong-shape", _stiff_case(_m, jac=lambda t, y: y), ValueError),
                 ("jac:complex", _stiff_case(_m, jac=lambda t, y: -np.eye(y.shape[-1]) + 0.5j), TypeError),
                 ("jac:None", _stiff_case(_m, jac=lambda t, y: None), TypeError),
                 ("jac:raises", _stiff_case(_m, jac=lambda t, y: 1 / 0), ZeroDivisionError),
                 ("jac:nan", _stiff_case(_m, jac=lambda t, y: np.full(y.shape + y.shape[-1:], np.nan)),
                  nd.IntegrationError),
                 ("jac:not-callable", _stiff_case(_m, jac=3), TypeError),
                 ("jac:for-a-field", lambda A, m=_m: nd.odeint(LINEAR, A["y0"], [0.0, 0.1], method=m,
                                                               jac=lambda t, y: None), TypeError),
                 ("f:wrong-shape", lambda A, m=_m: nd.odeint(lambda t, y: y[..., :1], A["y0"], [0.0, 0.1], method=m,
                                                             verbose=False), ValueError),
                 ("f:nan", lambda A, m=_m: nd.odeint(lambda t, y: y * np.nan, A["y0"], [0.0, 0.1], method=m,
                                                     verbose=False), nd.IntegrationError),
                 ("rtol=atol=0", lambda A, m=_m: nd.odeint(LINEAR, A["y0"], [0.0, 0.1], method=m, rtol=0, atol=0),
                  ValueError),
                 ("t:not-monotonic", lambda A, m=_m: nd.odeint(LINEAR, A["y0"], [0.0, 0.2, 0.1], method=m), ValueError),
                 ("events:given", lambda A, m=_m: nd.odeint(LINEAR, A["y0"], [0.0, 0.1], method=m,
                                                            events=nd.fields.LinearEvent([1.0, 0, 0])), ValueError),
                 ("max_steps:exhausted", lambda A, m=_m: nd.odeint(LORENZ, PROBE3, [0.0, 5.0], method=m, max_steps=2),
                  nd.IntegrationError)])

entry("energies.Quadratic()", nd.energies.Quadratic, [Arr("mean", "d"), Arr("precision", "dd", "spd")],
      pos=lambda A: [A["mean"], A["precision"]],
      call=lambda A, **o: nd.energies.Quadratic(A["mean"], A["precision"], **o)(PROBE2),
      ref=lambda A: ref_ebm.quadratic(PROBE2, A["mean"], A["precision"]), fixed={"d": 2},
      extra=[("precision:not-symmetric", lambda A: nd.energies.Quadratic([0, 0], [[1, 0.5], [0, 1]]), ValueError),
             ("precision:not-definite", lambda A: nd.energies.Quadratic([0, 0], [[1, 0], [0, -1]]), ValueError),
             ("precision:shape", lambda A: nd.energies.Quadratic([0, 0], np.eye(3)), ValueError)])

entry("energies.GaussianMixture()", nd.energies.GaussianMixture,
      [Arr("means", "Kd"), Arr("covs", "Kdd", "spd"), Arr("weights", "K", "pos")],
      pos=lambda A: [A["means"], A["covs"], A["weights"]],
      call=lambda A, **o: nd.energies.GaussianMixture(A["means"], A["covs"], A["weights"], **o)(PROBE2),
      ref=lambda A: ref_ebm.gmm(PROBE2, A["means"], A["covs"], A["weights"]), dims={"K": (1, 3)},
      fixed={"d": 2}, zero={"K": "raise"}, exact=False,
      extra=[("weights:zero", lambda A: nd.energies.GaussianMixture(A["means"], A["covs"], A["weights"] * 0),
              ValueError),
             ("covs:shape", lambda A: nd.energies.GaussianMixture(A["means"], A["covs"][:, :1]), ValueError)])


def _probe_energy(energy):
    return energy(np.linspace(-1.0, 1.0, 2 * energy.dim).reshape(2, energy.dim))


entry("energies.DoubleWell()", nd.energies.DoubleWell,
      call=lambda A, **o: _probe_energy(nd.energies.DoubleWell(**{"dim": 2, **o})),
      numbers={"barrier": "real>0", "tilt": "real", "dim": "int>=1"})

for _ename, _energy, _eref in (("Quadratic", QUAD, lambda x: ref_ebm.quadratic(x, QUAD.mean, QUAD.precision)),
                               ("GaussianMixture", GMM, lambda x: ref_ebm.gmm(x, GMM.means, GMM.covs, GMM.weights)),
                               ("DoubleWell", DWELL, lambda x: ref_ebm.double_well(x, 1.0, 0.3))):
    entry(f"Energy.__call__[{_ename}]", _energy, [Arr("x", "Bd")], pos=lambda A: [A["x"]],
          ref=lambda A, f=_eref: f(np.asarray(A["x"], F64)), dims={"B": (1, 3)}, fixed={"d": 2},
          zero={"B": "ok"}, allow={"x:ndim-1"}, exact=True, tol=(1e-9, 1e-12))


# ---- nn building blocks and optimisers ---------------------------------------------------------

def _dense_params(A):
    return {"l.kernel": A["kernel"], "l.bias": A["bias"]}


entry("nn.dense", nd.nn.dense, [Arr("x", "Bi", finite="propagate"), Arr("kernel", "io", finite="propagate"),
                                Arr("bias", "o", finite="propagate")],
      pos=lambda A: [_dense_params(A), "l", A["x"]], ref=lambda A: ref_nn.dense(A["x"], A["kernel"], A["bias"]),
      dims={"B": (1, 3), "i": (1, 3), "o": (1, 3)}, zero={"B": "ok", "i": "ok", "o": "ok"}, exact=True,
      extra=[("params:missing", lambda A: nd.nn.dense({}, "l", A["x"]), KeyError)])


def _grad_params(A):
    # the backward pass never reads the bias, only whether there is one
    return {"l.kernel": A["kernel"], "l.bias": np.zeros(np.shape(A["kernel"])[-1:] or (1,))}


def _dense_grad(A):
    grads = {}
    dx = nd.nn.dense_grad(_grad_params(A), "l", A["x"], A["dy"], grads)
    return dx, grads


def _dense_grad_ref(A):
    x, W, dy = (np.asarray(A[k], F64) for k in ("x", "kernel", "dy"))
    return dy @ W.T, {"l.kernel": x.T @ dy, "l.bias": dy.sum(axis=0)}


entry("nn.dense_grad", nd.nn.dense_grad, [Arr("x", "Bi", finite="propagate"), Arr("kernel", "io", finite="propagate"),
                                          Arr("dy", "Bo", finite="propagate")],
      pos=lambda A: [_grad_params(A), "l", A["x"], A["dy"], {}], call=lambda A: _dense_grad(A),
      ref=_dense_grad_ref, dims={"B": (1, 3), "i": (1, 3), "o": (1, 3)}, zero={"B": "ok", "i": "ok", "o": "ok"},
      exact=False)


def _ln_params(A):
    return {"n.gamma": A["gamma"], "n.beta": A["beta"]}


def _layernorm(A):
    # the cache echoes x itself: compare what is computed (y, mean, rstd)
    y, (_, mean, rstd) = nd.nn.layernorm(_ln_params(A), "n", A["x"])
    return y, mean, rstd


entry("nn.layernorm", nd.nn.layernorm, [Arr("x", "Bn", finite="propagate"), Arr("gamma", "n", finite="propagate"),
                                        Arr("beta", "n", finite="propagate")],
      pos=lambda A: [_ln_params(A), "n", A["x"]], call=lambda A: _layernorm(A), pick=lambda r: r[0],
      ref=lambda A: ref_nn.layernorm(A["x"], A["gamma"], A["beta"]), dims={"B": (1, 3), "n": (1, 3)},
      zero={"B": "ok", "n": "raise"})


def _ln_grad(A):
    p = _ln_params(A)
    _, cache = nd.nn.layernorm(p, "n", A["x"])
    grads = {}
    return nd.nn.layernorm_grad(p, "n", cache, A["dy"], grads), grads


entry("nn.layernorm_grad", nd.nn.layernorm_grad,
      [Arr("x", "Bn", finite="propagate"), Arr("gamma", "n", finite="propagate"), Arr("beta", "n", finite="propagate"),
       Arr("dy", "Bn", finite="propagate")],
      pos=lambda A: [_ln_params(A), "n", (A["x"], A["x"][:, 0], A["x"][:, 0]), A["dy"], {}],
      call=lambda A: _ln_grad(A), dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "raise"})

entry("nn.activation", nd.nn.activation, [Arr("x", "Bn", free=True, finite="propagate")],
      pos=lambda A: ["silu", A["x"]], ref=lambda A: ref_nn.activation("silu", A["x"]),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, exact=True, tol=(1e-12, 1e-15),
      extra=[("name:unknown", lambda A: nd.nn.activation("gelu", A["x"]), ValueError),
             ("name:None", lambda A: nd.nn.activation(None, A["x"]), ValueError)])

entry("nn.activation_grad", nd.nn.activation_grad,
      [Arr("x", "Bn", finite="propagate"), Arr("y", "Bn", finite="propagate"), Arr("dy", "Bn", finite="propagate")],
      pos=lambda A: ["tanh", A["x"], A["y"], A["dy"]], dims={"B": (1, 3), "n": (1, 3)},
      ref=lambda A: (1.0 - np.asarray(A["y"], F64) ** 2) * A["dy"], zero={"B": "ok", "n": "ok"}, exact=True,
      extra=[("name:unknown", lambda A: nd.nn.activation_grad("gelu", A["x"], A["y"], A["dy"]), ValueError)])

entry("nn.mse_loss", nd.nn.mse_loss, [Arr("pred", "Bn", finite="propagate", no_list=True),
                                      Arr("target", "Bn", finite="propagate")],
      pos=lambda A: [A["pred"], A["target"]], pick=lambda r: r[0], ref=lambda A: ref_nn.mse(A["pred"], A["target"]),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, exact=True, zero_ref=False)

entry("nn.cross_entropy_loss", nd.nn.cross_entropy_loss,
      [Arr("logits", "BC", finite="propagate"), Arr("labels", "B", "labels2")],
      pos=lambda A: [A["logits"], A["labels"]],
      ref=lambda A: (ref_nn.cross_entropy(A["logits"], A["labels"]),
                     ref_nn.cross_entropy_grad(A["logits"], A["labels"])),
      dims={"B": (1, 3)}, fixed={"C": 2}, zero={"B": "ok"}, exact=True, zero_ref=False, allow={"logits:lastdim+1"},
      extra=[("labels:out-of-range", lambda A: nd.nn.cross_entropy_loss(A["logits"], A["labels"] + 2), ValueError),
             ("labels:negative", lambda A: nd.nn.cross_entropy_loss(A["logits"], A["labels"] - 1), ValueError)])

entry("nn.inverse_softplus", nd.nn.inverse_softplus, [Arr("y", "Bn", "pos", free=True, finite="propagate")],
      pos=lambda A: [A["y"]], ref=lambda A: np.log(np.expm1(np.asarray(A["y"], F64))),
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"}, exact=False)

entry("nn.glorot_uniform", nd.nn.glorot_uniform,
      pos=lambda A: [np.random.default_rng(0), 2, 3, F64],
      call=lambda A, **o: nd.nn.glorot_uniform(np.random.default_rng(0),
                                               **{"fan_in": 2, "fan_out": 3, "dtype": F64, **o}),
      numbers={"fan_in": "int>=1|lenient", "fan_out": "int>=1|lenient"})

entry("nn.loss_and_grad", nd.nn.loss_and_grad,
      [Arr("pred", "Bn", finite="propagate", no_list=True), Arr("target", "Bn", finite="propagate")],
      kw=lambda A: {"kind": "mse", "pred": A["pred"], "target": A["target"]}, pick=lambda r: r[0],
      ref=lambda A: ref_nn.mse(A["pred"], A["target"]), dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok"},
      zero_ref=False, options={"kind": "mse"},
      extra=[("kind:unknown-with-labels",
              lambda A: nd.nn.loss_and_grad("no-such-loss", A["pred"], np.zeros(len(A["pred"]), np.int64)),
              ValueError)])

entry("nn.check_targets[mse]", nd.nn.check_targets, [Arr("y", "Bn")],
      pos=lambda A: ["mse", A["y"], 2, (2, 3), F64], ref=lambda A: np.asarray(A["y"], F64), fixed={"B": 2, "n": 3})

entry("nn.check_targets[cross_entropy]", nd.nn.check_targets, [Arr("y", "B", "labels2")],
      pos=lambda A: ["cross_entropy", A["y"], 2, (2, 2), F64], fixed={"B": 2},
      extra=[("y:out-of-range", lambda A: nd.nn.check_targets("cross_entropy", [0, 2], 2, (2, 2), F64), ValueError),
             ("y:float", lambda A: nd.nn.check_targets("cross_entropy", [0.0, 1.0], 2, (2, 2), F64), ValueError)])

entry("nn.as_generator", nd.nn.as_generator, pos=lambda A: [0],
      call=lambda A, **o: nd.nn.as_generator(**{"seed": 0, **o}).integers(0, 100, 3), numbers={"seed": "seed"})

entry("nn.model_dtype", nd.nn.model_dtype, pos=lambda A: ["float64"],
      call=lambda A, **o: nd.nn.model_dtype(**{"dtype": "float64", **o}), options={"dtype": "float64"})


def _initialise(spec):
    return lambda A: nd.nn.initialise([spec], np.random.default_rng(0), F64)


entry("nn.initialise", nd.nn.initialise, pos=lambda A: [[("w", (2, 3), "glorot")], np.random.default_rng(0), F64],
      extra=[("specs:unknown-initialiser", _initialise(("w", (2,), "he")), ValueError),
             ("specs:negative-size", _initialise(("w", (-1,), "zeros")), ValueError),
             ("specs:absurd-size", _initialise(("w", (2**50, 4), "glorot")), HUGE_ERRORS)])

entry("encode.seed_key", nd.encode.seed_key, pos=lambda A: [0],
      call=lambda A, **o: nd.encode.seed_key(**{"seed": 0, **o}), numbers={"seed": "seed"},
      extra=[("seed:huge", lambda A: nd.encode.seed_key(2**63), ValueError)])

entry("optim.make", nd.optim.make, pos=lambda A: ["adam", 0.1],
      call=lambda A, **o: repr(nd.optim.make(**{"optimizer": "adam", "lr": 0.1, **o})),
      options={"optimizer": "adam"}, numbers={"lr": "real>0"})


def _optim_run(make_opt, A, **o):
    # steps update the parameters in place (documented), whatever their layout; the values
    # are put back afterwards so that every case starts from the same parameters
    saved = {k: np.array(A[k]) for k in ("p", "q") if isinstance(A[k], np.ndarray)}
    p = {"w": A["p"], "v": A["q"]}
    opt = make_opt(**o)
    try:
        for _ in range(2):
            opt.step(p, {"w": A["g"], "v": A["h"]})
        return {k: np.array(v) for k, v in p.items()}
    finally:
        for k, v in saved.items():
            if A[k].flags.writeable:
                A[k][...] = v


def _optim_ref(RefCls, args, A):
    p = {"w": np.array(A["p"], F64), "v": np.array(A["q"], F64)}
    r = RefCls(*args)
    for _ in range(2):
        r.step(p, {"w": A["g"], "v": A["h"]})
    return p


# A NaN or inf anywhere makes the update non-finite, which the optimisers refuse (a ValueError)
# before changing anything.
_ADAM_ARRAYS = [Arr("p", "n", mutable=True, no_list=True),
                Arr("q", "Bn", mutable=True, no_list=True),
                Arr("g", "n", "grad", no_list=True),
                Arr("h", "Bn", "grad", no_list=True)]

entry("optim.Adam.step", nd.optim.Adam().step, _ADAM_ARRAYS,
      pos=lambda A: [{"w": A["p"], "v": A["q"]}, {"w": A["g"], "v": A["h"]}],
      call=lambda A: _optim_run(lambda: nd.optim.Adam(lr=0.1, weight_decay=0.01), A),
      ref=lambda A: _optim_ref(ref_nn.AdamRef, (0.1, 0.9, 0.999, 1e-8, 0.01), A), exact=False, f16_rtol=1e-2,
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"},
      extra=[("grads:unknown-name", lambda A: nd.optim.Adam().step({"w": A["p"].copy()}, {"x": A["g"]}), KeyError)])

entry("optim.SGD.step", nd.optim.SGD().step, _ADAM_ARRAYS,
      pos=lambda A: [{"w": A["p"], "v": A["q"]}, {"w": A["g"], "v": A["h"]}],
      call=lambda A: _optim_run(lambda: nd.optim.SGD(lr=0.1, momentum=0.5), A),
      ref=lambda A: _optim_ref(ref_nn.SGDRef, (0.1, 0.5), A), exact=False, f16_rtol=1e-2,
      dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "ok", "n": "ok"})

entry("optim.Adam()", nd.optim.Adam, call=lambda A, **o: repr(nd.optim.Adam(**o)),
      numbers={"lr": "real>0", "beta1": "prob", "beta2": "prob", "eps": "real>0", "weight_decay": "real>=0"})

entry("optim.SGD()", nd.optim.SGD, call=lambda A, **o: repr(nd.optim.SGD(**o)),
      numbers={"lr": "real>0", "momentum": "prob"})


# ---- files and threads ---------------------------------------------------------------------------

_PKG_FILE = nd.__file__
_PKG_DIR = os.path.dirname(nd.__file__)

entry("load", nd.load, pos=lambda A: [os.path.join(_PKG_DIR, "no-such-model.npz")], call=lambda A: None,
      extra=[("path:missing", lambda A: nd.load(os.path.join(_PKG_DIR, "no-such-model.npz")), FileNotFoundError),
             ("path:directory", lambda A: nd.load(_PKG_DIR), IsADirectoryError),
             ("path:not-npz", lambda A: nd.load(_PKG_FILE), ValueError),
             ("path:bytes", lambda A: nd.load(os.fsencode(os.path.join(_PKG_DIR, "nope.npz"))), FileNotFoundError),
             ("path:None", lambda A: nd.load(None), TypeError),
             ("path:int", lambda A: nd.load(3), TypeError),
             ("path:array", lambda A: nd.load(np.zeros(3)), TypeError)])


def _threads_case(value):
    def run(A):
        before = nd.get_num_threads()
        try:
            nd.set_num_threads(value)
        finally:
            nd.set_num_threads(before)
    return run


entry("set_num_threads", nd.set_num_threads, pos=lambda A: [nd.get_num_threads()],
      call=lambda A: _threads_case(nd.get_num_threads())(A),
      extra=[("n:zero", _threads_case(0), ValueError), ("n:negative", _threads_case(-1), ValueError),
             ("n:too-many", _threads_case(5000), ValueError), ("n:huge", _threads_case(2**63), ValueError),
             ("n:bool", _threads_case(True), TypeError), ("n:float", _threads_case(1.5), TypeError),
             ("n:str", _threads_case("2"), TypeError), ("n:None", _threads_case(None), TypeError)])
entry("get_num_threads", nd.get_num_threads, call=lambda A: nd.get_num_threads())
entry("show_config", nd.show_config, call=lambda A: sorted(nd.show_config()))


# ---- models --------------------------------------------------------------------------------------

def _ctor(cls, base_kw, probe):
    """Build with the base keywords (required ones included, so that a case can replace any of
    them) and evaluate the model on a probe."""
    def call(A, **o):
        return probe(cls(**{**base_kw, **o}))
    return call


entry("NeuralODE()", nd.NeuralODE, pos=lambda A: [3],
      call=_ctor(nd.NeuralODE, dict(input_size=3, hidden_size=4, num_steps=2, output_size=2, seed=0, dtype=F64),
                 lambda m: m(PROBE3)),
      options={"solver": "euler", "gradient": "backprop", "dtype": "float64"},
      numbers={"input_size": "int>=1|size", "hidden_size": "int>=1|size", "num_steps": "int>=1",
               "step_size": "real>0", "output_size": "int>=1|None", "rtol": "real>=0", "atol": "real>=0",
               "seed": "seed"},
      extra=[("rtol=atol=0:dopri5", lambda A: nd.NeuralODE(3, solver="dopri5", rtol=0, atol=0), ValueError)])

entry("NeuralODE.__call__", NODE, [Arr("x", "Bi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_nn.node_forward(NODE.params, A["x"], "rk4", 3, 0.1), dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "ok"}, tol=(1e-9, 1e-12))


def _node_traj_ref(A, head):
    f = ref_nn.node_field(NODE.params)
    h0 = ref_nn.node_project(NODE.params, A["x"])
    t = np.concatenate([[0.0], np.asarray(A["t"], F64)])
    ys = ref_ode.odeint_fixed(lambda s, h: f(h), h0, t, "rk4", dt=0.1)[0][1:]
    return ref_nn.node_head(NODE.params, ys) if head else ys


entry("NeuralODE.trajectory", NODE.trajectory, [Arr("x", "Bi"), Arr("t", "T", "times")],
      pos=lambda A: [A["x"], A["t"]], ref=lambda A: _node_traj_ref(A, False), dims={"B": (1, 3), "T": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok", "T": "raise"},
      extra=[("t:negative", lambda A: NODE.trajectory(A["x"], [-0.1, 0.2]), ValueError),
             ("t:decreasing", lambda A: NODE.trajectory(A["x"], [0.3, 0.2]), ValueError)])

entry("NeuralODE.predict_trajectory", NODE.predict_trajectory, [Arr("x", "Bi"), Arr("t", "T", "times")],
      pos=lambda A: [A["x"], A["t"]], ref=lambda A: _node_traj_ref(A, True), dims={"B": (1, 3), "T": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok", "T": "raise"})

entry("NeuralODE.loss_and_grad", NODE.loss_and_grad, [Arr("x", "Bi"), Arr("y", "Bo")],
      pos=lambda A: [A["x"], A["y"]], dims={"B": (1, 3)}, fixed={"i": 3, "o": 2}, zero={"B": "ok"},
      options={"loss": "mse"},
      extra=[("t:with-cross-entropy", lambda A: NODE.loss_and_grad(A["x"], A["y"], loss="cross_entropy", t=[0.1]),
              ValueError),
             ("y:float-labels", lambda A: NODE.loss_and_grad(A["x"], A["y"][:, 0], loss="cross_entropy"),
              ValueError)])

entry("NeuralODE.fit", NODE.fit, [Arr("x", "Bi"), Arr("y", "Bo")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(NODE, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3)},
      fixed={"i": 3, "o": 2}, zero={"B": "raise"}, options=dict(OPTIMIZER, loss="mse"), numbers=FIT_NUMBERS,
      extra=[("y:rows-mismatch", lambda A: _fit(NODE, A["x"], np.zeros((7, 2)), **FIT), ValueError),
             ("y:2-d-with-t", lambda A: _fit(NODE, A["x"], A["y"], t=[0.1], **FIT), ValueError)])

NODE_ID = nd.NeuralODE(2, hidden_size=3, num_steps=2, step_size=0.1, output_size=2, readout="identity",
                       solver="rk4", seed=1, dtype=F64)
FORCED = dict(teacher_forcing="generalized", alpha=0.5)
FORCE_T = [0.1, 0.2, 0.3]

entry("NeuralODE.loss_and_grad[forced]", NODE_ID.loss_and_grad, [Arr("x", "Bi"), Arr("y", "TBo")],
      pos=lambda A: [A["x"], A["y"]], kw=lambda A: dict(FORCED, t=FORCE_T), dims={"B": (1, 3)},
      fixed={"i": 2, "o": 2, "T": 3}, zero={"B": "ok"}, options={"teacher_forcing": "generalized"},
      numbers={"forcing_interval": "int>=1|None", "alpha": "prob1|None"},  # alpha None: ValueError (required)
      extra=[("teacher_forcing:head-readout", lambda A: NODE.loss_and_grad(
                  np.zeros((2, 3)), np.zeros((3, 2, 2)), t=FORCE_T, **FORCED), ValueError),
             ("alpha:adaptive-outside-fit", lambda A: NODE_ID.loss_and_grad(
                  A["x"], A["y"], t=FORCE_T, teacher_forcing="generalized", alpha="adaptive"), TypeError),
             ("forcing_interval:sparse-missing", lambda A: NODE_ID.loss_and_grad(
                  A["x"], A["y"], t=FORCE_T, teacher_forcing="sparse"), ValueError)])

entry("NeuralODE.fit[forced]", NODE_ID.fit, [Arr("x", "Bi"), Arr("y", "TBo")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(NODE_ID, A["x"], A["y"], **{**FIT, "t": FORCE_T, "teacher_forcing": "sparse",
                                                          "forcing_interval": 1, **o}),
      dims={"B": (1, 3)}, fixed={"i": 2, "o": 2, "T": 3}, zero={"B": "raise"},
      options={"teacher_forcing": "sparse"}, numbers={"forcing_interval": "int>=1|None"},  # None: ValueError (required)
      extra=[("alpha:with-sparse", lambda A: _fit(NODE_ID, A["x"], A["y"], t=FORCE_T, teacher_forcing="sparse",
                                                 forcing_interval=1, alpha=0.5, **FIT), ValueError),
             ("alpha:unknown-string", lambda A: _fit(NODE_ID, A["x"], A["y"], t=FORCE_T,
                                                    teacher_forcing="generalized", alpha="auto", **FIT), ValueError),
             ("alpha:without-forcing", lambda A: _fit(NODE_ID, A["x"], A["y"], t=FORCE_T, alpha=0.5, **FIT),
              ValueError)])

LIQ_FC = nd.Liquid(2, hidden_size=3, num_layers=1, dropout=0.0, output_size=2, seed=2, dtype=F64)

entry("Liquid.fit[forced]", LIQ_FC.fit, [Arr("x", "BTe"), Arr("y", "BTe")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(LIQ_FC, A["x"], A["y"], **{**FIT, "teacher_forcing": "generalized", "alpha": 0.5,
                                                         **o}),
      dims={"B": (1, 3), "T": (1, 3)}, fixed={"e": 2}, zero={"B": "raise", "T": "raise"},
      options={"teacher_forcing": "generalized"}, numbers={"forcing_interval": "int>=1|None", "alpha": "prob1|None"},
      extra=[("output_size:not-embed_dim", lambda A: _fit(LIQ, np.zeros((2, 3, 3)), np.zeros((2, 3, 3)),
                                                          teacher_forcing="sparse", forcing_interval=1, **FIT),
              ValueError)])

entry("valid_prediction_time", nd.valid_prediction_time, [Arr("y_true", "BTd"), Arr("y_pred", "BTd")],
      pos=lambda A: [A["y_true"], A["y_pred"]], kw=lambda A: {"dt": 0.1},
      ref=lambda A: ref_rec.valid_prediction_time(A["y_true"], A["y_pred"], dt=0.1),
      dims={"B": (1, 3), "T": (1, 4), "d": (1, 3)}, zero={"B": "ok", "T": "raise", "d": "raise"},
      numbers={"dt": "real>0", "threshold": "real>0"},
      extra=[("y_pred:other-length", lambda A: nd.valid_prediction_time(A["y_true"], A["y_true"][:, :1]),
              ValueError)])

entry("state_space_divergence", nd.state_space_divergence, [Arr("y_true", "BTd"), Arr("y_pred", "BTd")],
      pos=lambda A: [A["y_true"], A["y_pred"]], kw=lambda A: {"bins": 4},
      ref=lambda A: ref_rec.binned_kl(A["y_true"], A["y_pred"], bins=4),
      dims={"B": (1, 3), "T": (1, 4), "d": (1, 3)}, zero={"B": "ok", "T": "raise", "d": "raise"},
      options={"method": "binned"},
      numbers={"bins": "int>=1", "smoothing": "real>=0", "bandwidth": "real>0", "n_samples": "int>=1",
               "seed": "seed"},
      extra=[("bins:too-many-cells", lambda A: nd.state_space_divergence(np.zeros((3, 9)), np.zeros((3, 9)),
                                                                         method="binned"), ValueError)])

entry("power_spectrum_distance", nd.power_spectrum_distance, [Arr("y_true", "BTd"), Arr("y_pred", "BTd")],
      pos=lambda A: [A["y_true"], A["y_pred"]],
      ref=lambda A: ref_rec.power_spectrum_distance(A["y_true"], A["y_pred"], smoothing=2.0),
      dims={"B": (1, 3), "T": (3, 6), "d": (1, 3)}, zero={"B": "ok", "T": "raise", "d": "raise"},
      numbers={"smoothing": "real>=0", "n_freq": "int>=1|None"}, exact=False)

entry("reconstruction.adaptive_alpha", nd.reconstruction.adaptive_alpha, [Arr("jacobians", "Bnn")],
      pos=lambda A: [A["jacobians"]], dims={"B": (1, 3), "n": (1, 3)}, zero={"B": "raise", "n": "raise"})

entry("Liquid()", nd.Liquid, pos=lambda A: [3],
      call=_ctor(nd.Liquid, dict(embed_dim=3, hidden_size=4, num_layers=1, seed=0, dtype=F64),
                 lambda m: m(PROBE3[:, None, :])),
      options={"solver": "exact", "dtype": "float64"},
      numbers={"embed_dim": "int>=1|size", "hidden_size": "int>=1|size", "num_layers": "int>=1",
               "dropout": "prob", "integration_steps": "int>=1", "output_size": "int>=1|None", "rtol": "real>=0",
               "atol": "real>=0", "max_steps": "int>=1", "seed": "seed"},
      extra=[("ffn:not-bool", lambda A: nd.Liquid(3, hidden_size=4, ffn=1), TypeError)])

entry("Liquid.__call__", LIQ, [Arr("x", "BTi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_liquid.liquid_output(LIQ.params, LIQ.config, A["x"]), dims={"B": (1, 3), "T": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok", "T": "raise"})

entry("Liquid.forward_sequence", LIQ.forward_sequence, [Arr("x", "BTi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_liquid.liquid_sequence(LIQ.params, LIQ.config, A["x"]), dims={"B": (1, 3), "T": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok", "T": "raise"})

entry("Liquid.init_cache", LIQ.init_cache, pos=lambda A: [2],
      call=lambda A, **o: LIQ.init_cache(**{"batch_size": 2, **o}), numbers={"batch_size": "int>=1|size"})


def _cache(A, **over):
    return {"h": [A["h1"], A["h2"]], "step": 0, **over}


entry("Liquid.step", LIQ.step, [Arr("x_t", "Bi"), Arr("h1", "BH", no_list=True), Arr("h2", "BH", no_list=True)],
      pos=lambda A: [A["x_t"], _cache(A)], dims={"B": (1, 3)}, fixed={"i": 3, "H": 4}, zero={"B": "ok"},
      extra=[("cache:not-a-dict", lambda A: LIQ.step(A["x_t"], [A["h1"], A["h2"]]), ValueError),
             ("cache:layers", lambda A: LIQ.step(A["x_t"], {"h": [A["h1"]], "step": 0}), ValueError),
             ("cache:no-step", lambda A: LIQ.step(A["x_t"], {"h": [A["h1"], A["h2"]]}), ValueError),
             ("cache:float-step", lambda A: LIQ.step(A["x_t"], _cache(A, step=0.5)), ValueError),
             ("cache:batch-mismatch", lambda A: LIQ.step(A["x_t"], LIQ.init_cache(7)), ValueError),
             ("x_t:sequence", lambda A: LIQ.step(A["x_t"][:, None], _cache(A)), ValueError)])

entry("Liquid.loss_and_grad", LIQ.loss_and_grad, [Arr("x", "BTi"), Arr("y", "Bo")],
      pos=lambda A: [A["x"], A["y"]], kw=lambda A: {"training": True, "seed": 1}, dims={"B": (1, 3), "T": (1, 3)},
      fixed={"i": 3, "o": 2}, zero={"B": "ok", "T": "raise"}, options={"loss": "mse"}, numbers={"seed": "seed"})

entry("Liquid.fit", LIQ.fit, [Arr("x", "BTi"), Arr("y", "Bo")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(LIQ, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3), "T": (1, 2)},
      fixed={"i": 3, "o": 2}, zero={"B": "raise", "T": "raise"}, options=dict(OPTIMIZER, loss="mse"),
      numbers=FIT_NUMBERS)

_CELL_X = [Arr("x", "BTi"), Arr("timespans", "BT", "pos"), Arr("h0", "BH")]


def _cell_entries(label, model, ref_states, ref_forward):
    H = model.state_size
    common = dict(dims={"B": (1, 3), "T": (1, 3)}, fixed={"i": 3, "H": H, "o": 2},
                  zero={"B": "ok", "T": "raise"})
    entry(f"{label}.__call__", model, _CELL_X, pos=lambda A: [A["x"], A["timespans"], A["h0"]],
          ref=lambda A: ref_forward(A)[:, -1], **common)
    entry(f"{label}.forward_sequence", model.forward_sequence, _CELL_X,
          pos=lambda A: [A["x"], A["timespans"], A["h0"]], ref=ref_forward, **common)
    entry(f"{label}.states", model.states, _CELL_X, pos=lambda A: [A["x"], A["timespans"], A["h0"]],
          ref=ref_states, **common)
    entry(f"{label}.loss_and_grad", model.loss_and_grad,
          [Arr("x", "BTi"), Arr("y", "BTo"), Arr("timespans", "BT", "pos")],
          pos=lambda A: [A["x"], A["y"]], kw=lambda A: {"timespans": A["timespans"]}, options={"loss": "mse"},
          allow={"y:ndim-1"}, **common)
    entry(f"{label}.fit", model.fit, [Arr("x", "BTi"), Arr("y", "Bo"), Arr("timespans", "BT", "pos")],
          pos=lambda A: [A["x"], A["y"]], call=lambda A, **o: _fit(model, A["x"], A["y"], **{
              "timespans": A["timespans"], **FIT, **o}), options=dict(OPTIMIZER, loss="mse"), numbers=FIT_NUMBERS,
          allow={"y:ndim+1"}, **{**common, "zero": {"B": "raise", "T": "raise"}})


_LTC_KW = dict(ode_unfolds=6, epsilon=1e-8)
_cell_entries("LTCCell", LTC, lambda A: ref_cells.ltc_states(LTC.params, A["x"], A["timespans"], A["h0"], **_LTC_KW),
              lambda A: ref_cells.ltc_forward(LTC.params, A["x"], A["timespans"], A["h0"], **_LTC_KW))
_CFC_KW = dict(hidden_size=4, backbone_layers=1, activation="lecun_tanh", mode="default")
_cell_entries("CfC", CFC, lambda A: ref_cells.cfc_states(CFC.params, A["x"], A["timespans"], A["h0"], **_CFC_KW),
              lambda A: ref_cells.cfc_forward(CFC.params, A["x"], A["timespans"], A["h0"], **_CFC_KW))

entry("LTCCell()", nd.LTCCell, pos=lambda A: [3, 4],
      call=_ctor(nd.LTCCell, dict(input_size=3, units=4, seed=0, dtype=F64), lambda m: m(PROBE3[:, None, :])),
      options={"dtype": "float64"},
      numbers={"input_size": "int>=0|size", "units": "int>=1|size", "output_size": "int>=1|None",
               "ode_unfolds": "int>=1",
               "epsilon": "real>=0", "seed": "seed"},
      extra=[("output_size:above-units", lambda A: nd.LTCCell(3, 4, output_size=5), ValueError),
             ("ode_unfolds:too-many", lambda A: nd.LTCCell(3, 4, ode_unfolds=100_001), ValueError),
             ("input_size:negative", lambda A: nd.LTCCell(-1, 4), ValueError)])

entry("CfC()", nd.CfC, pos=lambda A: [3, 4],
      call=_ctor(nd.CfC, dict(input_size=3, hidden_size=4, backbone_units=5, seed=0, dtype=F64),
                 lambda m: m(PROBE3[:, None, :])),
      options={"backbone_activation": "lecun_tanh", "mode": "default", "dtype": "float64"},
      numbers={"input_size": "int>=0|size", "hidden_size": "int>=1|size", "backbone_units": "int>=1|size",
               "backbone_layers": "int>=0",
               "output_size": "int>=1|None", "seed": "seed"},
      extra=[("backbone_layers:too-many", lambda A: nd.CfC(3, 4, backbone_layers=9), ValueError)])

entry("SNN()", nd.SNN, pos=lambda A: [3, 2],
      call=_ctor(nd.SNN, dict(input_size=3, output_size=2, hidden_sizes=(4,), num_timesteps=3, seed=0, dtype=F64),
                 lambda m: m(PROBE3)),
      options={"surrogate": "sigmoid", "encoding": "constant", "reset": "subtract", "dtype": "float64"},
      numbers={"input_size": "int>=1|size", "output_size": "int>=1|size", "num_timesteps": "int>=1", "tau": "real>0|None",
               "threshold": "real>0", "slope": "real>0", "seed": "seed"},
      extra=[("hidden_sizes:empty", lambda A: nd.SNN(3, 2, hidden_sizes=()), ValueError),
             ("hidden_sizes:zero", lambda A: nd.SNN(3, 2, hidden_sizes=(0,)), ValueError),
             ("hidden_sizes:float", lambda A: nd.SNN(3, 2, hidden_sizes=(2.5,)), TypeError)])

entry("SNN.__call__", SNN, [Arr("x", "Bi", "unit")], pos=lambda A: [A["x"]], dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "ok"})
entry("SNN.__call__[poisson]", SNN_POISSON, [Arr("x", "Bi", "unit")], pos=lambda A: [A["x"]],
      kw=lambda A: {"seed": 1}, dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"}, numbers={"seed": "seed"})
entry("SNN.spikes", SNN.spikes, [Arr("x", "Bi", "unit")], pos=lambda A: [A["x"]], dims={"B": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok"})
entry("SNN.loss_and_grad", SNN.loss_and_grad, [Arr("x", "Bi", "unit"), Arr("y", "B", "labels2")],
      pos=lambda A: [A["x"], A["y"]], dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"},
      options={"loss": "cross_entropy"},
      extra=[("y:out-of-range", lambda A: SNN.loss_and_grad(A["x"], A["y"] + 5), ValueError),
             ("y:float-labels", lambda A: SNN.loss_and_grad(A["x"], A["y"] + 0.5), ValueError)])
entry("SNN.fit", SNN.fit, [Arr("x", "Bi", "unit"), Arr("y", "B", "labels2")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(SNN, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "raise"}, options=dict(OPTIMIZER, loss="cross_entropy"), numbers=FIT_NUMBERS)

entry("ANN()", nd.ANN, pos=lambda A: [3],
      call=_ctor(nd.ANN, dict(input_size=3, hidden_sizes=(4,), output_size=2, seed=0, dtype=F64), lambda m: m(PROBE3)),
      options={"norm": None, "dtype": "float64"},
      numbers={"input_size": "int>=1|size", "output_size": "int>=1|None", "seed": "seed"},
      extra=[("hidden_sizes:empty", lambda A: nd.ANN(3, hidden_sizes=()), ValueError),
             ("hidden_sizes:negative", lambda A: nd.ANN(3, hidden_sizes=(-1,)), ValueError)])
entry("ANN.__call__", ANN, [Arr("x", "Bi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_nn.dense(ref_snn.ann_activations(ANN.params, A["x"], 2)[-1], ANN.params["output.kernel"],
                                 ANN.params["output.bias"]), dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"})
entry("ANN.activations", ANN.activations, [Arr("x", "Bi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_snn.ann_activations(ANN.params, A["x"], 2), dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "ok"})
entry("ANN.loss_and_grad", ANN.loss_and_grad, [Arr("x", "Bi"), Arr("y", "B", "labels2")],
      pos=lambda A: [A["x"], A["y"]], dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"},
      options={"loss": "cross_entropy"})
entry("ANN.fit", ANN.fit, [Arr("x", "Bi"), Arr("y", "B", "labels2")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(ANN, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "raise"}, options=dict(OPTIMIZER, loss="cross_entropy"), numbers=FIT_NUMBERS)

entry("ann2snn", nd.ann2snn, [Arr("calibration_x", "Bi", "unit")], pos=lambda A: [ANN, A["calibration_x"]],
      call=lambda A, **o: nd.ann2snn(ANN, A["calibration_x"], **{"num_timesteps": 8, **o})(PROBE3),
      dims={"B": (1, 4)}, fixed={"i": 3}, zero={"B": "raise"}, options={"normalization": "percentile"},
      numbers={"num_timesteps": "int>=1", "threshold": "real>0", "percentile": "percent"},
      extra=[("ann:not-an-ANN", lambda A: nd.ann2snn(SNN, A["calibration_x"]), TypeError),
             ("ann:layer-norm",
              lambda A: nd.ann2snn(nd.ANN(3, hidden_sizes=(4,), norm="layer", seed=0), A["calibration_x"]),
              ValueError)])

entry("ConvertedSNN.__call__", CONV, [Arr("x", "Bi", "unit")], pos=lambda A: [A["x"]], dims={"B": (1, 3)},
      fixed={"i": 3}, zero={"B": "ok"}, numbers={"num_timesteps": "int>=1|None"})

entry("EBM()", nd.EBM, pos=lambda A: [3],
      call=_ctor(nd.EBM, dict(input_size=3, hidden_sizes=(4,), seed=0, dtype=F64), lambda m: m(PROBE3)),
      options={"activation": "silu", "dtype": "float64"},
      numbers={"input_size": "int>=1|size", "seed": "seed"},
      extra=[("dropout:nonzero", lambda A: nd.EBM(3, dropout=0.1), ValueError),
             ("hidden_sizes:zero", lambda A: nd.EBM(3, hidden_sizes=(0,)), ValueError)])


def _ebm_ref(A, which):
    E, g = ref_ebm.mlp_energy(EBM.params, A["x"], 1, "relu")
    return E if which == 0 else g


for _meth, _which in (("energy", 0), ("energy_grad", 1), ("__call__", 0)):
    entry(f"EBM.{_meth}", EBM if _meth == "__call__" else getattr(EBM, _meth), [Arr("x", "Bi")],
          pos=lambda A: [A["x"]], ref=lambda A, w=_which: _ebm_ref(A, w), dims={"B": (1, 3)}, fixed={"i": 3},
          zero={"B": "ok"})

entry("EBM.cd_loss_and_grad", EBM.cd_loss_and_grad, [Arr("x_real", "Bi"), Arr("x_neg", "Mi")],
      pos=lambda A: [A["x_real"], A["x_neg"]], dims={"B": (1, 3), "M": (1, 3)}, fixed={"i": 3},
      zero={"B": "raise", "M": "raise"}, numbers={"reg_alpha": "real>=0"})

entry("EBM.sample", EBM.sample, [Arr("x0", "Bi")], pos=lambda A: [3],
      kw=lambda A: {"x0": A["x0"], **LANGEVIN},
      ref=lambda A: ref_ebm.langevin(lambda x: ref_ebm.mlp_energy(EBM.params, x, 1, "relu"), A["x0"], 3, 0.05,
                                     0.5, 4),
      dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"}, tol=(1e-9, 1e-11),
      numbers=dict(LANGEVIN_NUMBERS))

entry("EBM.sample[n]", EBM.sample, pos=lambda A: [3], call=lambda A, **o: EBM.sample(**{"n": 3, **LANGEVIN, **o}),
      numbers={"n": "int>=1|loose"})

_EBM_FIT = dict(epochs=1, batch_size=2, lr=1e-2, seed=0, verbose=False, replay_buffer=4,
                langevin={"steps": 2, "step_size": 0.01, "noise_scale": 0.01})


def _ebm_fit(A, **o):
    m = fresh(EBM)
    hist = m.fit(A["x"], **{**_EBM_FIT, **o}).history_
    return {"params": _params(m), "loss": hist["loss"]}


entry("EBM.fit", EBM.fit, [Arr("x", "Bi")], pos=lambda A: [A["x"]], call=lambda A, **o: _ebm_fit(A, **o),
      dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "raise"}, options=OPTIMIZER,
      numbers={**FIT_NUMBERS, "reg_alpha": "real>=0", "replay_buffer": "int>=1", "reinit_prob": "prob1"},
      extra=[("langevin:unknown-key", lambda A: _ebm_fit(A, langevin={"stepz": 2}), TypeError),
             ("langevin:bad-steps", lambda A: _ebm_fit(A, langevin={"steps": -1}), ValueError)])

entry("Hopfield()", nd.Hopfield, pos=lambda A: [3],
      call=_ctor(nd.Hopfield, dict(input_dim=3, num_patterns=4, pattern_dim=4, seed=0, dtype=F64), lambda m: m(PROBE3)),
      options={"dtype": "float64"},
      numbers={"input_dim": "int>=1|size", "num_patterns": "int>=1|size", "pattern_dim": "int>=1|size",
               "beta": "real>0", "seed": "seed"})
entry("Hopfield.__call__", HOP, [Arr("x", "Bi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_hop.hopfield_model(A["x"], HOP.params, 1.5), dims={"B": (1, 3)}, fixed={"i": 3},
      zero={"B": "ok"})
entry("Hopfield.loss_and_grad", HOP.loss_and_grad, [Arr("x", "Bi"), Arr("y", "Bo")], pos=lambda A: [A["x"], A["y"]],
      dims={"B": (1, 3)}, fixed={"i": 3, "o": 4}, zero={"B": "ok"}, options={"loss": "mse"})
entry("Hopfield.fit", HOP.fit, [Arr("x", "Bi"), Arr("y", "Bo")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(HOP, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3)}, fixed={"i": 3, "o": 4},
      zero={"B": "raise"}, options=dict(OPTIMIZER, loss="mse"), numbers=FIT_NUMBERS)

entry("AssociativeMemory()", nd.AssociativeMemory, pos=lambda A: [3],
      call=_ctor(nd.AssociativeMemory,
                 dict(input_dim=3, num_patterns=4, pattern_dim=4, hidden_size=4, num_layers=1, seed=0, dtype=F64),
                 lambda m: m(PROBE3)),
      options={"dtype": "float64"},
      numbers={"input_dim": "int>=1|size", "num_patterns": "int>=1|size", "beta": "real>0", "num_heads": "int>=1",
               "num_layers": "int>=1", "dropout": "prob", "output_size": "int>=1|None", "seed": "seed"},
      extra=[("num_heads:not-dividing",
              lambda A: nd.AssociativeMemory(3, hidden_size=4, pattern_dim=4, num_heads=3), ValueError)])
entry("AssociativeMemory.__call__", AM, [Arr("x", "Bi")], pos=lambda A: [A["x"]],
      ref=lambda A: ref_hop.associative_memory(A["x"], AM.params, beta=1.0, num_heads=2, num_layers=1),
      dims={"B": (1, 3)}, fixed={"i": 3}, zero={"B": "ok"})
entry("AssociativeMemory.loss_and_grad", AM.loss_and_grad, [Arr("x", "Bi"), Arr("y", "Bo")],
      pos=lambda A: [A["x"], A["y"]], kw=lambda A: {"training": True, "seed": 1}, dims={"B": (1, 3)},
      fixed={"i": 3, "o": 2}, zero={"B": "ok"}, options={"loss": "mse"}, numbers={"seed": "seed"})
entry("AssociativeMemory.fit", AM.fit, [Arr("x", "Bi"), Arr("y", "Bo")], pos=lambda A: [A["x"], A["y"]],
      call=lambda A, **o: _fit(AM, A["x"], A["y"], **{**FIT, **o}), dims={"B": (1, 3)}, fixed={"i": 3, "o": 2},
      zero={"B": "raise"}, options=dict(OPTIMIZER, loss="mse"), numbers=FIT_NUMBERS)

# ---- hybrid energy models (docs/models.md §11) -----------------------------------------------------

HYB = nd.HybridEBM(2, hidden_sizes=(4, 3), activations=("tanh", "polynomial"), seed=10, dtype=F64)
HYB_PH = nd.HybridEBM(2, hidden_sizes=(4,), activations=("sigmoid",), form="port_hamiltonian", inputs=1, seed=11,
                      dtype=F64)
for _k, _v in HYB_PH.params.items():  # every parameter non-zero, so each path of the field is exercised
    _v[...] = np.random.default_rng(12).uniform(-0.6, 0.6, size=_v.shape)
for _k, _v in HYB.params.items():
    _v[...] += np.random.default_rng(13).uniform(-0.2, 0.2, size=_v.shape)
HYB_T = [0.0, 0.1, 0.25]
HYB_FIT = dict(window=2, epochs=1, batch_size=2, lr=1e-2, seed=0, verbose=False)
MULTIWELL = nd.hybrid.MultiWell()
RING = nd.hybrid.Ring(dim=3, radius=1.2, rotation=0.7)
DUFFING = nd.hybrid.Duffing()


def _hyb_field(model):
    return lambda t, z: ref_hyb.field(model.params, model.config, z)


def _hyb_times(a):
    """Evenly spaced sample times for trajectories a (n, T, d) (T from a's shape, at least 1)."""
    n = np.shape(a)[1] if np.ndim(a) >= 2 else 1
    return np.linspace(0.0, 0.1 * max(n - 1, 0), max(n, 1))


def _hyb_fit(A, **o):
    m = fresh(HYB)
    hist = m.fit(A["trajectories"], _hyb_times(A["trajectories"]), **{**HYB_FIT, **o}).history_
    return {"params": _params(m), "loss": hist["loss"]}


entry("HybridEBM()", nd.HybridEBM, pos=lambda A: [2],
      call=_ctor(nd.HybridEBM, dict(d=2, hidden_sizes=(4,), activations=("tanh",), seed=0, dtype=F64),
                 lambda m: m.energy(PROBE2)),
      options={"form": "gradient", "dtype": "float64"},
      numbers={"d": "int>=1|size", "inputs": "int>=0", "beta": "real>0", "power": "real", "seed": "seed"},
      extra=[("hidden_sizes:empty", lambda A: nd.HybridEBM(2, hidden_sizes=(), activations=()), ValueError),
             ("hidden_sizes:zero", lambda A: nd.HybridEBM(2, hidden_sizes=(0,), activations="tanh"), ValueError),
             ("hidden_sizes:float", lambda A: nd.HybridEBM(2, hidden_sizes=(2.5,), activations="tanh"), TypeError),
             ("hidden_sizes:not-a-sequence", lambda A: nd.HybridEBM(2, hidden_sizes=4), TypeError),
             ("hidden_sizes:9-layers", lambda A: nd.HybridEBM(2, hidden_sizes=(2,) * 9, activations="tanh"),
              ValueError),
             ("hidden_sizes:absurd", lambda A: nd.HybridEBM(2, hidden_sizes=(2**40, 2**40), activations="tanh"),
              HUGE_ERRORS),
             ("activations:count", lambda A: nd.HybridEBM(2, hidden_sizes=(4, 3), activations=("tanh",)), ValueError),
             ("activations:unknown", lambda A: nd.HybridEBM(2, hidden_sizes=(4,), activations=("swish",)),
              ValueError),
             ("activations:int", lambda A: nd.HybridEBM(2, hidden_sizes=(4,), activations=3), TypeError),
             ("activations:unbounded-guarantee",
              lambda A: nd.HybridEBM(2, hidden_sizes=(4,), activations=("relu",), guarantee=True), ValueError),
             ("guarantee:not-bool", lambda A: nd.HybridEBM(2, guarantee=1), TypeError),
             ("power:below-2", lambda A: nd.HybridEBM(2, power=1.5), ValueError),
             ("power:above-16", lambda A: nd.HybridEBM(2, power=17.0), ValueError),
             ("inputs:gradient-form", lambda A: nd.HybridEBM(2, inputs=1), ValueError)])

for _meth, _ref in (("__call__", lambda A: ref_hyb.field(HYB.params, HYB.config, A["z"])),
                    ("energy", lambda A: ref_hyb.energy(HYB.params, HYB.config, A["z"])),
                    ("energy_grad", lambda A: ref_hyb.energy_grad(HYB.params, HYB.config, A["z"])),
                    ("hessian", None)):
    entry(f"HybridEBM.{_meth}", HYB if _meth == "__call__" else getattr(HYB, _meth), [Arr("z", "Bd")],
          pos=lambda A: [A["z"]], ref=_ref, dims={"B": (1, 3)}, fixed={"d": 2}, zero={"B": "ok"},
          allow={"z:ndim-1"})

entry("HybridEBM.__call__[port]", HYB_PH, [Arr("z", "Bd")], pos=lambda A: [A["z"]],
      ref=lambda A: ref_hyb.field(HYB_PH.params, HYB_PH.config, A["z"]), dims={"B": (1, 3)}, fixed={"d": 2},
      zero={"B": "ok"}, allow={"z:ndim-1"})

entry("HybridEBM.hvp", HYB.hvp, [Arr("z", "Bd"), Arr("v", "Bd")], pos=lambda A: [A["z"], A["v"]],
      ref=lambda A: np.einsum("bij,bj->bi", HYB.hessian(A["z"]), np.asarray(A["v"], F64)), dims={"B": (1, 3)},
      fixed={"d": 2}, zero={"B": "ok"}, allow={"z:ndim-1", "v:ndim-1"},
      extra=[("v:rows-mismatch", lambda A: HYB.hvp(A["z"], np.zeros((7, 2))), ValueError)])

entry("HybridEBM.output", HYB_PH.output, [Arr("z", "Bd")], pos=lambda A: [A["z"]],
      ref=lambda A: ref_hyb.energy_grad(HYB_PH.params, HYB_PH.config, A["z"]) @ HYB_PH.params["port.G"],
      dims={"B": (1, 3)}, fixed={"d": 2}, zero={"B": "ok"}, allow={"z:ndim-1"},
      extra=[("form:gradient", lambda A: HYB.output(A["z"]), ValueError)])

entry("HybridEBM.port_matrices", HYB_PH.port_matrices, call=lambda A, **o: HYB_PH.port_matrices(**o),
      ref=lambda A: ref_hyb.port_matrices(HYB_PH.params, 2),
      extra=[("form:gradient", lambda A: HYB.port_matrices(), ValueError)])

entry("HybridEBM.field", HYB_PH.field, [Arr("u", "Tm"), Arr("t_u", "T", "times")], pos=lambda A: [A["u"], A["t_u"]],
      call=lambda A, **o: _probe_field(HYB_PH.field(A["u"], A["t_u"], **o)), dims={"T": (1, 3)}, fixed={"m": 1},
      zero={"T": "raise"}, allow={"u:ndim+1"},
      extra=[("t_u:without-u", lambda A: HYB_PH.field(None, A["t_u"]), ValueError),
             ("u:gradient-form", lambda A: HYB.field(A["u"], A["t_u"]), ValueError),
             ("t_u:not-increasing", lambda A: HYB_PH.field(np.zeros((2, 1)), [0.2, 0.1]), ValueError),
             ("u:rows-of-a-batch", lambda A: nd.odeint(HYB_PH.field(np.zeros((2, 4, 1)), [0.0, 1.0]),
                                                       np.zeros((3, 2)), [0.0, 0.1], method="rk4", coupled=True),
              ValueError)])

entry("hybrid.HybridField.__call__", HYB.field(), [Arr("y", "Bn")], kw=lambda A: {"t": 0.25, "y": A["y"]},
      ref=lambda A: ref_hyb.field(HYB.params, HYB.config, A["y"]), dims={"B": (1, 3)}, fixed={"n": 2},
      zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"}, numbers={"t": "real|any"})

entry("hybrid.HybridField.jacobian", HYB_PH.field().jacobian, [Arr("y", "Bn")], kw=lambda A: {"t": 0.25, "y": A["y"]},
      ref=lambda A: np.einsum("ij,bjk->bik", np.subtract(*HYB_PH.port_matrices()), HYB_PH.hessian(A["y"])),
      dims={"B": (1, 3)}, fixed={"n": 2}, zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"},
      numbers={"t": "real|any"})

entry("HybridEBM.simulate", HYB.simulate, [Arr("z0", "Bd"), Arr("t", "T", "times")], pos=lambda A: [A["z0"], A["t"]],
      kw=lambda A: {"method": "rk4", "dt": 0.05},
      ref=lambda A: ref_ode.odeint_fixed(_hyb_field(HYB), np.asarray(A["z0"], F64), A["t"], "rk4", dt=0.05)[0],
      dims={"B": (1, 3), "T": (1, 3)}, fixed={"d": 2}, zero={"B": "ok", "T": "raise"}, allow={"z0:ndim-1"},
      options={"method": "rk4"},
      numbers={"rtol": "real>=0", "atol": "real>=0", "dt": "real>0|None", "max_steps": "int>=1"},
      extra=[("u:gradient-form", lambda A: HYB.simulate(A["z0"], A["t"], u=np.zeros((2, 1)), t_u=[0, 1]),
              ValueError),
             ("u:shape", lambda A: HYB_PH.simulate(A["z0"], A["t"], u=np.zeros((2, 3)), t_u=[0, 1]), ValueError)])

entry("HybridEBM.certificate", HYB.certificate, call=lambda A, **o: HYB.certificate(**o))

entry("HybridEBM.equilibria", HYB.equilibria, call=lambda A, **o: HYB.equilibria(**{"n_starts": 3, "seed": 0,
                                                                                     "t_end": 5.0, **o}),
      numbers={"n_starts": "int>=1", "radius": "real>0|None", "seed": "seed"})

entry("HybridEBM.window_loss_and_grad", HYB.window_loss_and_grad,
      [Arr("z0", "Bd"), Arr("target", "TBd"), Arr("times", "T", "times")],
      pos=lambda A: [A["z0"], A["target"], A["times"]], kw=lambda A: {"dt": 0.05},
      dims={"B": (1, 3), "T": (1, 3)}, fixed={"d": 2}, zero={"B": "ok", "T": "raise"},
      allow={"z0:ndim-1"}, options={"loss": "mse", "method": "rk4", "gradient": "backprop"},
      numbers={"delta": "real>0", "dt": "real>0|None", "rtol": "real>=0", "atol": "real>=0"},
      extra=[("target:times-mismatch", lambda A: HYB.window_loss_and_grad(A["z0"], np.zeros((9, 1, 2)), A["times"]),
              ValueError),
             ("u:gradient-form", lambda A: HYB.window_loss_and_grad(A["z0"], A["target"], A["times"],
                                                                    u=np.zeros((len(A["times"]), 1, 1))),
              ValueError)])

entry("HybridEBM.window_loss", HYB.window_loss, [Arr("z0", "Bd"), Arr("target", "TBd"), Arr("times", "T", "times")],
      pos=lambda A: [A["z0"], A["target"], A["times"]], kw=lambda A: {"dt": 0.05},
      dims={"B": (1, 3), "T": (1, 3)}, fixed={"d": 2}, zero={"B": "ok", "T": "raise"}, allow={"z0:ndim-1"},
      options={"loss": "huber", "method": "rk4"}, numbers={"delta": "real>0", "dt": "real>0|None"})

entry("HybridEBM.fit", HYB.fit, [Arr("trajectories", "NTd")],
      pos=lambda A: [A["trajectories"], _hyb_times(A["trajectories"])], call=lambda A, **o: _hyb_fit(A, **o),
      dims={"N": (1, 3), "T": (2, 3)}, fixed={"d": 2}, zero={"N": "raise", "T": "raise"},
      options=dict(OPTIMIZER, loss="mse", method="rk4", gradient="backprop"),
      numbers={**FIT_NUMBERS, "window": "int>=2", "substeps": "int>=1", "delta": "real>0"},
      extra=[("window:longer-than-trajectories", lambda A: _hyb_fit(A, window=9), ValueError),
             ("t:uneven", lambda A: HYB.fit(A["trajectories"], np.cumsum(np.arange(1, np.shape(A["trajectories"])[1]
                                                                                     + 1.0)), **HYB_FIT), ValueError),
             ("t:length", lambda A: HYB.fit(A["trajectories"], [0.0, 0.1, 0.2, 0.3, 0.4], **HYB_FIT), ValueError),
             ("u:gradient-form", lambda A: _hyb_fit(A, u=np.zeros(np.shape(A["trajectories"])[:2] + (1,))),
              ValueError),
             ("u:missing", lambda A: fresh(HYB_PH).fit(A["trajectories"], _hyb_times(A["trajectories"]), **HYB_FIT),
              ValueError),
             ("validation_data:arity", lambda A: _hyb_fit(A, validation_data=(A["trajectories"],)), ValueError)])

entry("hybrid.MultiWell()", nd.hybrid.MultiWell, [Arr("centres", "Kd"), Arr("depths", "K")],
      pos=lambda A: [A["centres"], A["depths"]],
      call=lambda A, **o: _probe_field(nd.hybrid.MultiWell(A["centres"], A["depths"], **o)),
      ref=lambda A: ref_hyb.multiwell(np.linspace(-1.0, 1.0, 4).reshape(2, 2), np.asarray(A["centres"], F64),
                                      np.asarray(A["depths"], F64), 0.6, 0.8, 1.2),
      dims={"K": (1, 3)}, fixed={"d": 2}, zero={"K": "ok"}, allow={"centres:lastdim+1"},
      numbers={"width": "real>0", "gamma": "real>=0", "omega": "real"})

entry("hybrid.Ring()", nd.hybrid.Ring, call=lambda A, **o: _probe_field(nd.hybrid.Ring(**o)),
      numbers={"dim": "int>=2", "radius": "real>0", "rotation": "real"},
      extra=[("dim:65", lambda A: nd.hybrid.Ring(dim=65), ValueError)])

entry("hybrid.Duffing()", nd.hybrid.Duffing, call=lambda A, **o: _probe_field(nd.hybrid.Duffing(**o)),
      numbers={"alpha": "real", "cubic": "real>=0", "delta": "real>=0"})

for _sname, _sys, _sref, _n in (
        ("MultiWell", MULTIWELL, lambda z: ref_hyb.multiwell(z, MULTIWELL.centres, MULTIWELL.depths, 0.6, 0.8, 1.2), 2),
        ("Ring", RING, lambda z: ref_hyb.ring(z, 1.2, 0.7), 3),
        ("Duffing", DUFFING, lambda z: ref_hyb.duffing(z, -1.0, 1.0, 0.3), 2)):
    entry(f"hybrid.{_sname}.__call__", _sys, [Arr("y", "Bn")], kw=lambda A: {"t": 0.5, "y": A["y"]},
          ref=lambda A, f=_sref: f(np.atleast_2d(np.asarray(A["y"], F64))).reshape(np.shape(A["y"])),
          dims={"B": (1, 3)}, fixed={"n": _n}, zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"},
          numbers={"t": "real|any"})
    entry(f"hybrid.{_sname}.jacobian", _sys.jacobian, [Arr("y", "Bn")], kw=lambda A: {"t": 0.5, "y": A["y"]},
          dims={"B": (1, 3)}, fixed={"n": _n}, zero={"B": "ok"}, allow={"y:ndim-1", "y:ndim+1"},
          numbers={"t": "real|any"})
    entry(f"hybrid.{_sname}.potential", _sys.potential, [Arr("z", "Bn", free=True)], pos=lambda A: [A["z"]],
          dims={"B": (1, 3)}, fixed={"n": _n}, zero={"B": "ok"})
    entry(f"hybrid.{_sname}.initial_states", _sys.initial_states, pos=lambda A: [3],
          call=lambda A, s=_sys, **o: s.initial_states(**{"n": 3, "seed": 0, **o}),
          numbers={"n": "int>=0", "scale": "real>0", "seed": "seed"})
    entry(f"hybrid.{_sname}.trajectories", _sys.trajectories, [Arr("t", "T", "times")], pos=lambda A: [2, A["t"]],
          call=lambda A, s=_sys, **o: s.trajectories(**{"n": 2, "t": A["t"], "seed": 0, **o}),
          dims={"T": (1, 3)}, zero={"T": "raise"},
          numbers={"n": "int>=1", "scale": "real>0", "seed": "seed", "rtol": "real>=0", "atol": "real>=0"})

# Public names that are not called themselves: modules (their functions are entries above)
# and the exception class (raised by the IntegrationError cases).
NOT_CALLABLE = {"chaos", "encode", "energies", "fields", "hybrid", "memories", "nn", "optim", "reconstruction", "sde",
                "training", "IntegrationError"}
# Public functions that take no arrays: from_nir reads a NIR graph (tests/test_interop.py holds
# its refusals).
NOT_ARRAYS = {"from_nir"}
# Submodule names without an entry of their own: abstract bases, and the parameter-spec helpers
# that every model constructor calls (covered through the constructors' size cases).
NOT_ENTRIES = {"nn.Model", "fields.Field", "energies.Energy", "nn.dense_specs", "nn.layernorm_specs",
               "nn.init_dense", "nn.init_layernorm", "optim.Optimizer", "optim.NonFiniteError", "sde.Diffusion",
               "hybrid.TargetSystem", "hybrid.HybridEBM"}  # the last one: nd.HybridEBM
NOT_ENTRIES |= {"chaos.Map", "chaos.Field", "chaos.lyapunov_spectrum", "chaos.lyapunov_spectrum_map",
                "chaos.kaplan_yorke_dimension"}  # the base class, its import, and nd.* names


# ---- known bugs (strict xfails) ------------------------------------------------------------------

# A bug found by this suite is listed here, as (entry pattern, case pattern) -> "bug: ...", while
# it is open: its cases then run as strict xfails, so the fix shows up as an XPASS and the line
# must go. Every bug the suite found so far has been fixed (complex/object/str input accepted,
# NaN not refused, reductions over absurd views, empty batches, target casts, optimiser checks).
KNOWN_BUGS: dict = {}


@functools.lru_cache(maxsize=None)
def _glob_re(pattern: str):
    # only "*" is a wildcard: entry names hold brackets ("odeint[Linear,rk4]")
    return re.compile(".*".join(map(re.escape, pattern.split("*"))))


def _glob(pattern: str, text: str) -> bool:
    return _glob_re(pattern).fullmatch(text) is not None


def known_bug(name: str, kind: str):
    for (e, k), reason in KNOWN_BUGS.items():
        if _glob(e, name) and _glob(k, kind):
            return reason
    return None


# ---- the checks ----------------------------------------------------------------------------------

def _owner_state(e: Entry):
    """The attributes of the model, field or energy a method belongs to: inference must not
    change them either (fit runs on a private copy)."""
    obj = getattr(e.target, "__self__", e.target)
    if isinstance(obj, type) or not type(obj).__module__.startswith("neurodyn."):
        return {}
    return {"model": vars(obj)}


def _run(e: Entry, A, where, **opts):
    """Run the entry on A, checking that no input changed; (ok, result or exception)."""
    skip = tuple(f"args[{a.name!r}]" for a in e.arrays if a.mutable)
    snap = _snapshot(A, skip) + _snapshot(_owner_state(e))
    ok, res = _call(lambda: e.call(A, **opts))
    _assert_untouched(snap, f"{e.name} / {where}")
    return ok, res


def _check_ref(e: Entry, A, res, where):
    if e.ref is None:
        return
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = e.ref(A)
    assert_same(e.pick(res), want, exact=False, rtol=e.rtol, atol=e.atol, path=f"{e.name} / {where} vs the twin")


def _same_outcome(e, kind, clean, variant, *, exact, rtol=1e-6):
    ok_c, res_c = clean
    ok_v, res_v = variant
    if ok_c:
        assert ok_v, f"{e.name} / {kind}: raised {type(res_v).__name__}: {res_v} where the clean call succeeded"
        assert_same(res_v, res_c, exact=exact, rtol=rtol, atol=1e-12, path=f"{e.name} / {kind}")
    else:
        assert isinstance(res_c, BAD_INPUT + (nd.IntegrationError,)), \
            f"{e.name} / {kind}: the clean call raised {type(res_c).__name__}: {res_c}"
        assert not ok_v and type(res_v) is type(res_c), \
            f"{e.name} / {kind}: {'succeeded' if ok_v else repr(res_v)} where the clean call raised {res_c!r}"


def _expect_raise(e, kind, outcome, expected):
    ok, res = outcome
    want = expected if isinstance(expected, tuple) else (expected,)
    assert not ok, f"{e.name} / {kind}: no exception; expected {' or '.join(w.__name__ for w in want)}"
    assert isinstance(res, want), (f"{e.name} / {kind}: raised {type(res).__name__}: {res}; expected "
                                   f"{' or '.join(w.__name__ for w in want)}")


def _with(A, name, value):
    B = dict(A)
    B[name] = value
    return B


def _layout_cases(e, A, clean):
    cases = []
    for arr in e.arrays:
        a = A[arr.name]
        for lay, v in layouts(a):
            if lay == "list" and arr.no_list:
                continue
            kind = f"{arr.name}:layout:{lay}"

            def check(kind=kind, arr=arr, lay=lay, v=v):
                out = _run(e, _with(A, arr.name, v), kind)
                if arr.mutable and lay == "readonly":
                    # documented to update in place: a read-only array cannot be
                    _expect_raise(e, kind, out, (ValueError, TypeError))
                    return
                # a list arrives as float64 (or int64): the same values as the clean array
                _same_outcome(e, kind, clean, out, exact=e.exact)
            cases.append((kind, check))
    return cases


def _int_values(arr, rng, shape):
    return np.asarray(arr.gen.ints(rng, shape))


def _dtype_cases(e, A, rng):
    cases = []
    for arr in e.arrays:
        a = A[arr.name]
        ints = _int_values(arr, rng, a.shape)
        for dt in list(PROMOTED) + list(REFUSED) + ["longdouble"]:
            kind = f"{arr.name}:dtype:{dt}"

            def check(kind=kind, arr=arr, dt=dt, a=a, ints=ints):
                if arr.labels:
                    # class labels: integers of any width are the same labels (bools may be read as
                    # 0 and 1, or refused); anything else is refused
                    if dt in ("int32", "int64", "uint8", "bool"):
                        v = ints.astype(dt)
                        clean = _run(e, _with(A, arr.name, v.astype(np.int64)), kind + " (clean)")
                        out = _run(e, _with(A, arr.name, v), kind)
                        if dt == "bool" and not out[0]:
                            _expect_raise(e, kind, out, (TypeError, ValueError))
                        else:
                            _same_outcome(e, kind, clean, out, exact=True)
                    else:
                        v = ints.astype(str) if dt == "str" else ints.astype(dt)
                        _expect_raise(e, kind, _run(e, _with(A, arr.name, v), kind), (TypeError, ValueError))
                    return
                if dt == "float16":
                    v = a.astype(np.float16)
                    clean = _run(e, _with(A, arr.name, v.astype(np.float32)), kind + " (clean)")
                    _same_outcome(e, kind, clean, _run(e, _with(A, arr.name, v), kind),
                                  exact=e.exact and e.f16_rtol is None, rtol=e.f16_rtol or 1e-6)
                elif dt in PROMOTED:
                    v = ints.astype(dt)
                    clean = _run(e, _with(A, arr.name, v.astype(PROMOTED[dt])), kind + " (clean)")
                    _same_outcome(e, kind, clean, _run(e, _with(A, arr.name, v), kind), exact=e.exact)
                elif dt == "longdouble":
                    # refused, or computed as float64 (the only lossless reading there is)
                    v = a.astype(np.longdouble)
                    out = _run(e, _with(A, arr.name, v), kind)
                    if not out[0]:
                        _expect_raise(e, kind, out, TypeError)
                    else:
                        clean = _run(e, _with(A, arr.name, a), kind + " (clean)")
                        _same_outcome(e, kind, clean, out, exact=False)
                else:
                    if dt == "str":
                        v = a.astype(str)
                    elif dt == "object":
                        v = a.astype(object)
                    else:
                        v = (a + 0.5j).astype(dt)  # an imaginary part that a silent cast would drop
                    want = (TypeError, ValueError) if dt == "str" else TypeError
                    _expect_raise(e, kind, _run(e, _with(A, arr.name, v), kind), want)
            if arr.mutable:
                continue  # updated in place with NumPy arithmetic: the parameter's dtype is the caller's
            cases.append((kind, check))
    return cases


def _nonfinite_cases(e, A, rng):
    cases = []
    for arr in e.arrays:
        a = A[arr.name]
        if arr.labels or a.size == 0:
            continue
        idx = tuple(int(rng.integers(0, s)) for s in a.shape)
        for label, bad, dtype in (("nan", np.nan, F64), ("inf", np.inf, F64), ("-inf", -np.inf, F64),
                                  ("nan-f32", np.nan, np.float32)):
            kind = f"{arr.name}:{label}"

            def check(kind=kind, arr=arr, bad=bad, dtype=dtype, a=a, idx=idx):
                v = a.astype(dtype)
                v[idx] = bad
                out = _run(e, _with(A, arr.name, v), kind)
                if arr.finite == "propagate":
                    # a layer primitive: NaN flows through as in the twin (or is refused)
                    if out[0] and e.ref is not None and dtype == F64:
                        _check_ref(e, _with(A, arr.name, v), out[1], kind)
                    elif not out[0]:
                        _expect_raise(e, kind, out, ValueError)
                    return
                _expect_raise(e, kind, out, ValueError)
            cases.append((kind, check))
    return cases


def _shape_cases(e, A):
    cases = []
    for arr in e.arrays:
        a = A[arr.name]
        variants = [("ndim+1", a[None])]
        if a.ndim >= 1:
            variants.append(("ndim-1", a[0]))
            variants.append(("lastdim+1", np.concatenate([a, a[..., :1]], axis=-1)))
        if a.ndim >= 2:
            variants.append(("scalar", np.asarray(a.flat[0])))
        for label, v in variants:
            kind = f"{arr.name}:{label}"

            def check(kind=kind, arr=arr, v=v):
                out = _run(e, _with(A, arr.name, v), kind)
                if arr.free or kind in e.allow:
                    if out[0]:
                        if e.ref is not None and arr.free:
                            _check_ref(e, _with(A, arr.name, v), out[1], kind)
                    else:
                        _expect_raise(e, kind, out, BAD_INPUT)
                    return
                if arr.mutable:
                    # in-place updates broadcast like NumPy; only a crash or a wrong type is wrong
                    if not out[0]:
                        _expect_raise(e, kind, out, BAD_INPUT)
                    return
                _expect_raise(e, kind, out, (ValueError, TypeError))
            cases.append((kind, check))
    return cases


def _zero_cases(e, d, rng):
    cases = []
    for dim, want in e.zero.items():
        kind = f"zero:{dim}"

        def check(kind=kind, dim=dim, want=want):
            dz = dict(d)
            dz[dim] = 0
            A = e.build(rng, dz)
            out = _run(e, A, kind)
            if want == "raise":
                _expect_raise(e, kind, out, ValueError)
                return
            assert out[0], f"{e.name} / {kind}: raised {type(out[1]).__name__}: {out[1]}"
            if e.zero_ref:
                _check_ref(e, A, out[1], kind)
        cases.append((kind, check))
    return cases


HUGE = 2**49  # elements: beyond any machine's memory, even at one byte each


def _huge_view(a, first, dtype=None, value=None):
    dtype = np.dtype(dtype or a.dtype)
    v = a.flat[0] if value is None and a.size else (value if value is not None else 0)
    return np.broadcast_to(np.asarray(v, dtype=dtype), (first,) + a.shape[1:])


def _huge_cases(e, A, d):
    if e.isolate_huge is not None:
        return [(kind, lambda kind=kind, code=code: _isolated(e, kind, code)) for kind, code in e.isolate_huge.items()]
    cases = []
    for arr in e.arrays:
        a = A[arr.name]
        rest = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
        if a.ndim == 0 or rest == 0:
            continue
        specs = [("huge", lambda a=a: _huge_view(a, HUGE)),
                 # bools whose promotion to float overflows the byte count itself
                 ("huge-bool", lambda a=a, rest=rest: _huge_view(a, 2**61 // rest, np.bool_, True))]
        for label, make in specs:
            kind = f"{arr.name}:{label}"

            def check(kind=kind, arr=arr, make=make):
                out = _run(e, _with(A, arr.name, make()), kind)
                _expect_raise(e, kind, out, HUGE_ERRORS + (TypeError,) if arr.labels else HUGE_ERRORS)
            cases.append((kind, check))
    # one axis huge in every array that has it, so that shapes agree and the size is the issue
    for dim in sorted({ax for arr in e.arrays for ax in arr.axes}):
        if dim in e.fixed or any(arr.axes.count(dim) > 1 for arr in e.arrays):
            continue
        kind = f"huge:{dim}"

        def check(kind=kind, dim=dim):
            B = dict(A)
            for arr in e.arrays:
                a = A[arr.name]
                if dim in arr.axes and a.size:
                    shape = tuple(HUGE if ax == dim else a.shape[i] for i, ax in enumerate(arr.axes))
                    B[arr.name] = np.broadcast_to(a.flat[0], shape)
            _expect_raise(e, kind, _run(e, B, kind), HUGE_ERRORS)
        cases.append((kind, check))
    return cases + _zero_beside_huge_cases(e, A)


BESIDE = 2**40  # a huge axis beside an empty one: hours of loops over nothing if anything loops


def _zero_beside_huge_cases(e, A):
    """An axis of size 0 beside a huge one: there is no work, so the call answers (or raises a
    size error) at once instead of looping over the huge axis's empty rows."""
    axes = sorted({ax for arr in e.arrays for ax in arr.axes})
    cases = []
    for zdim, want in e.zero.items():
        for dim in axes:
            if dim == zdim or dim in e.fixed or any(arr.axes.count(dim) > 1 for arr in e.arrays):
                continue
            kind = f"huge:{dim}+zero:{zdim}"

            def check(kind=kind, dim=dim, zdim=zdim, want=want):
                B = dict(A)
                for arr in e.arrays:
                    a = A[arr.name]
                    if dim in arr.axes or zdim in arr.axes:
                        shape = tuple(0 if ax == zdim else BESIDE if ax == dim else a.shape[i]
                                      for i, ax in enumerate(arr.axes))
                        B[arr.name] = np.broadcast_to(np.asarray(a.flat[0] if a.size else 0, a.dtype), shape)
                out = _run(e, B, kind)
                if want == "raise" or not out[0]:
                    _expect_raise(e, kind, out, HUGE_ERRORS + (TypeError,) if any(a.labels for a in e.arrays)
                                  else HUGE_ERRORS)
            cases.append((kind, check))
    return cases


_ISOLATED = """
import sys, numpy as np, neurodyn as nd
print("ready", flush=True)
try:
    {code}
    print("returned", flush=True)
except Exception as err:
    print("raised", type(err).__name__, flush=True)
"""


def _isolated(e, kind, code, budget=2.0):
    """Runs a call that may spin for ever in a child process: it must raise a size error
    within ``budget`` seconds of the child's imports."""
    note(e.name, kind)
    proc = subprocess.Popen([sys.executable, "-c", _ISOLATED.format(code=code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0, env=_sanitizer_env(os.environ))
    try:
        # imports are not part of the budget; read byte by byte so that nothing after the
        # first line is left in a buffer that communicate() would not see
        first = b""
        while not first.endswith(b"\n"):
            ch = os.read(proc.stdout.fileno(), 1)
            if not ch:
                break
            first += ch
        assert first.strip() == b"ready", f"{e.name} / {kind}: the child did not start: {proc.stderr.read()!r}"
        try:
            out, err = proc.communicate(timeout=budget)
            out, err = out.decode(), err.decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"{e.name} / {kind}: still running after {budget} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    problems = _unexpected_sanitizer_lines(err)
    assert not problems, f"{e.name} / {kind}: sanitizer reports:\n" + "\n".join(problems)
    words = out.split()
    assert words[:1] == ["raised"] and words[1] in ("ValueError", "MemoryError", "OverflowError"), \
        f"{e.name} / {kind}: {out.strip() or 'crashed'} (return code {proc.returncode})"


NUMBER_CASES = {
    # spec -> [(label, value, expected)]
    "int": [("float", 1.5, TypeError), ("bool", True, TypeError), ("str", "1", TypeError),
            ("nan", math.nan, TypeError), ("huge", 2**63, ValueError), ("array", np.ones(2), TypeError)],
    "real": [("nan", math.nan, ValueError), ("inf", math.inf, ValueError), ("bool", True, TypeError),
             ("str", "1", TypeError), ("complex", 1j, TypeError), ("array", np.ones(2), TypeError)],
}


def _number_values(spec):
    base, *mods = spec.split("|")
    out = []
    if base.startswith("int"):
        lo = int(base[5:])
        out += NUMBER_CASES["int"] + [("below", lo - 1, ValueError), ("negative", -5, ValueError)]
        if "size" in mods:
            # a size no machine can hold: refused before or at the first allocation
            out.append(("absurd", 2**50, HUGE_ERRORS))
    elif base == "seed":
        out += [("negative", -1, ValueError), ("float", 1.5, TypeError), ("str", "0", TypeError),
                ("bool", True, TypeError)]
    elif base == "beta":
        out += NUMBER_CASES["real"] + [("above-1", 1.5, ValueError), ("negative", -0.1, ValueError)]
    elif base in ("prob", "prob1"):
        out += NUMBER_CASES["real"] + [("negative", -0.1, ValueError), ("above", 1.5, ValueError)]
        if base == "prob":
            out.append(("one", 1.0, ValueError))
    elif base == "percent":
        out += NUMBER_CASES["real"] + [("negative", -1.0, ValueError), ("above", 101.0, ValueError)]
    else:
        out += NUMBER_CASES["real"]
        if base in ("real>0", "real>=0"):
            out.append(("negative", -1.0, ValueError))
        if base == "real>0":
            out.append(("zero", 0.0, ValueError))
    if "None" not in mods and base != "seed":
        out.append(("None", None, TypeError))
    if "loose" in mods:
        # an argument that may also be an array: a mistyped number is a bad array (ValueError)
        out = [(label, v, (TypeError, ValueError) if w is TypeError else w) for label, v, w in out]
    return out, "lenient" in mods or "any" in mods


def _api_cases(e, A):
    cases = []
    target = e.target
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        params = list(sig.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        has_var = any(p.kind == p.VAR_POSITIONAL for p in params)
        has_varkw = any(p.kind == p.VAR_KEYWORD for p in params)
        full = list(e.pos(A)) + [e.kw(A)[p.name] for p in positional[len(e.pos(A)):] if p.name in e.kw(A)]
        if required:
            def missing():
                _expect_raise(e, "arity:missing", _call(lambda: target(*full[:len(required) - 1])), TypeError)
            cases.append(("arity:missing", missing))
        if not has_var:
            def extra():
                args = full[:len(positional)] + [None] * (len(positional) - len(full[:len(positional)]) + 1)
                _expect_raise(e, "arity:extra", _call(lambda: target(*args)), TypeError)
            cases.append(("arity:extra", extra))
        if not has_varkw:
            def unknown():
                _expect_raise(e, "kwarg:unknown", _call(lambda: target(*e.pos(A), **e.kw(A), no_such_option=1)),
                              TypeError)
            cases.append(("kwarg:unknown", unknown))
    for name, good in e.options.items():
        bad = [("unknown", "no-such-option", ValueError), ("empty", "", ValueError), ("int", 3, ValueError),
               ("list", [good], ValueError)]
        if isinstance(good, str) and good.upper() != good:
            bad.append(("case", good.upper(), ValueError))
        if good is not None and name not in ("norm", "normalization"):  # None is valid there
            bad.append(("None", None, ValueError))
        if name == "dtype":
            bad = [("float16", np.float16, ValueError), ("int32", "int32", ValueError),
                   ("complex64", np.complex64, ValueError), ("nonsense", "no-such-dtype", TypeError)]
        for label, value, want in bad:
            kind = f"option:{name}:{label}"

            def check(kind=kind, name=name, value=value, want=want):
                out = _run(e, A, kind, **{name: value})
                _expect_raise(e, kind, out, (ValueError, TypeError) if name == "dtype" else want)
            cases.append((kind, check))
    for name, spec in e.numbers.items():
        values, lenient = _number_values(spec)
        for label, value, want in values:
            kind = f"number:{name}:{label}"

            def check(kind=kind, name=name, value=value, want=want, lenient=lenient):
                out = _run(e, A, kind, **{name: value})
                if lenient:
                    if not out[0]:
                        _expect_raise(e, kind, out, BAD_INPUT)
                    return
                _expect_raise(e, kind, out, want)
            cases.append((kind, check))
    for kind, fn, want in e.extra:
        def check(kind=kind, fn=fn, want=want):
            snap = _snapshot(A) + _snapshot(_owner_state(e))
            res = _call(lambda: fn(A))
            _assert_untouched(snap, f"{e.name} / {kind}")
            _expect_raise(e, kind, res, want)
        cases.append((kind, check))
    return cases


GROUPS = ("layout", "dtype", "nonfinite", "shape", "huge", "api")


def cases_of(e: Entry, group: str, A, d, rng, clean=None):
    if group == "layout":
        return _layout_cases(e, A, clean if clean is not None else _run(e, A, "clean"))
    if group == "dtype":
        return _dtype_cases(e, A, rng)
    if group == "nonfinite":
        return _nonfinite_cases(e, A, rng)
    if group == "shape":
        return _shape_cases(e, A) + _zero_cases(e, d, rng)
    if group == "huge":
        return _huge_cases(e, A, d)
    return _api_cases(e, A)


def giant(kind: str) -> bool:
    """A case that hands over an absurd size: the library may try (and fail) to allocate it.
    These run in a child process (see _giant_results)."""
    return "huge" in kind or "absurd" in kind


def run_group(e: Entry, group: str, A, d, rng, clean=None, giants=False):
    """Runs the group's cases but the known bugs (strict xfails in test_known_bug), and either
    the giant-size cases only or none of them."""
    tried = 0
    for kind, check in cases_of(e, group, A, d, rng, clean):
        if known_bug(e.name, kind) or giant(kind) != giants:
            continue
        note(e.name, kind)
        check()
        tried += 1
    return tried


# ---- giant sizes, in a child process ---------------------------------------------------------------
#
# A zero-stride view of 2**49 elements costs nothing to make, but a library that copies it
# asks the allocator for petabytes. That fails at once (MemoryError), yet under
# AddressSanitizer every such failure also prints "WARNING: AddressSanitizer failed to
# allocate", and CI fails on any sanitizer log. So these cases run in one child process whose
# sanitizer output comes back on its stderr: the expected warnings are dropped and anything
# else fails the test. The child also bounds a hang with a watchdog.

def _giant_cases(e: Entry):
    """The deterministic inputs of test_calls_options_and_numbers and of the huge group."""
    d = e.default_dims()
    rng = np.random.default_rng(1)
    A = e.build(rng, d)
    return [(kind, check) for group in ("api", "huge") for kind, check in cases_of(e, group, A, d, rng)
            if giant(kind) and not known_bug(e.name, kind)]


def _giant_child_main():
    import json

    for name in NAMES:
        for kind, check in _giant_cases(ENTRIES[name]):
            # a case that hangs (a loop over a huge axis) ends the child, naming itself
            print(json.dumps({"entry": name, "kind": kind, "start": True}), flush=True)
            faulthandler.dump_traceback_later(60, exit=True)
            try:
                check()
                error = None
            except AssertionError as err:
                error = str(err)
            faulthandler.cancel_dump_traceback_later()
            print(json.dumps({"entry": name, "kind": kind, "error": error}), flush=True)
    print(json.dumps({"done": True}), flush=True)


def _sanitizer_env(env):
    """The environment with sanitizer reports sent to the child's stderr (no log files)."""
    env = dict(env)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if var in env:
            opts = [o for o in env[var].split(":") if o and not o.startswith("log_path=")]
            env[var] = ":".join(opts + ["log_path=stderr"])
    return env


def _unexpected_sanitizer_lines(stderr: str):
    return [line for line in stderr.splitlines()
            if (re.match(r"==\d+==", line) and "failed to allocate" not in line) or "runtime error" in line]


@functools.lru_cache(maxsize=None)
def _giant_results():
    import json

    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            "import test_properties as t; t._giant_child_main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=_sanitizer_env(os.environ))
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    problems = _unexpected_sanitizer_lines(proc.stderr)
    if proc.returncode != 0 or not rows or not rows[-1].get("done") or problems:
        last = f" in {rows[-1]['entry']} / {rows[-1]['kind']}" if rows and rows[-1].get("start") else ""
        raise AssertionError(f"the giant-size child failed{last} (return code {proc.returncode}):\n"
                             + "\n".join(problems or proc.stderr.splitlines()[-40:]))
    results = {}
    for row in rows[:-1]:
        if row.get("start"):
            continue
        results.setdefault(row["entry"], []).append((row["kind"], row["error"]))
    return results


# ---- the tests -----------------------------------------------------------------------------------

NAMES = sorted(ENTRIES)
ARRAY_NAMES = [n for n in NAMES if ENTRIES[n].arrays]


@pytest.fixture(autouse=True)
def _record_ran(request):
    yield
    _RAN.add(request.node.nodeid)


def _draw(e: Entry, data):
    d = {k: data.draw(st.integers(lo, hi), label=k) for k, (lo, hi) in e.dims.items()}
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    return d, np.random.default_rng(seed)


@pytest.mark.parametrize("name", ARRAY_NAMES)
@settings(max_examples=3)
@given(data=st.data())
def test_layouts_give_the_clean_numbers(name, data):
    """Every layout of every array argument gives the C-contiguous call's numbers, which match
    the pure-NumPy twin where there is one; nothing is written into any input."""
    e = ENTRIES[name]
    d, rng = _draw(e, data)
    A = e.build(rng, d)
    clean = _run(e, A, "clean")
    assert clean[0], f"{name}: the clean call raised {type(clean[1]).__name__}: {clean[1]}"
    _check_ref(e, A, clean[1], "clean")
    run_group(e, "layout", A, d, rng, clean)


@pytest.mark.parametrize("name", ARRAY_NAMES)
@settings(max_examples=2)
@given(data=st.data())
def test_dtypes_are_promoted_or_refused(name, data):
    e = ENTRIES[name]
    d, rng = _draw(e, data)
    run_group(e, "dtype", e.build(rng, d), d, rng)


@pytest.mark.parametrize("name", ARRAY_NAMES)
@settings(max_examples=2)
@given(data=st.data())
def test_nan_and_inf_are_refused(name, data):
    e = ENTRIES[name]
    d, rng = _draw(e, data)
    run_group(e, "nonfinite", e.build(rng, d), d, rng)


@pytest.mark.parametrize("name", ARRAY_NAMES)
@settings(max_examples=2)
@given(data=st.data())
def test_shapes_zero_sizes_and_wrong_axes(name, data):
    e = ENTRIES[name]
    d, rng = _draw(e, data)
    run_group(e, "shape", e.build(rng, d), d, rng)


GIANT_NAMES = [n for n in NAMES if _giant_cases(ENTRIES[n])]


@pytest.mark.parametrize("name", GIANT_NAMES)
def test_absurd_sizes_raise_quickly(name):
    """Zero-stride views whose byte count no machine has (or that overflows once promoted),
    and absurd sizes and counts: a size error, at once (run in a child process, see above)."""
    results = _giant_results().get(name, [])
    assert results, f"{name}: the child ran no giant-size case"
    failures = []
    for kind, error in results:
        note(name, kind)
        if error is not None:
            failures.append(error)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", NAMES)
def test_calls_options_and_numbers(name):
    """Missing and extra positional arguments and unknown keywords (TypeError), unknown option
    strings (ValueError), out-of-range and mistyped numbers, and each entry's own cases."""
    e = ENTRIES[name]
    d = e.default_dims()
    rng = np.random.default_rng(1)
    A = e.build(rng, d)
    run_group(e, "api", A, d, rng)


def _known_bug_params():
    out = []
    for name in NAMES:
        e = ENTRIES[name]
        if not any(_glob(en, name) for en, _ in KNOWN_BUGS):
            continue
        d = e.default_dims()
        rng = np.random.default_rng(2)
        A = e.build(rng, d)
        for group in GROUPS:
            for kind, _ in cases_of(e, group, A, d, rng, clean=(True, None)):
                reason = known_bug(name, kind)
                if reason:
                    out.append(pytest.param(name, group, kind, id=f"{name}-{kind}",
                                            marks=pytest.mark.xfail(strict=True, reason=reason)))
    return out


# pytest annotates a failure's traceback with the source of each frame, parsing this (long)
# file again for every frame: a tenth of a second per xfail. The expected failure is raised
# from a one-line function without a source file instead, outside any except block.
_ns: dict = {}
exec(compile("def _raise_xfail(msg):\n    raise XFailed(msg)\n", "<known bug>", "exec"),
     {"XFailed": pytest.xfail.Exception}, _ns)
_raise_xfail = _ns["_raise_xfail"]


def _check_known_bug(name, group, kind):
    __tracebackhide__ = True
    e = ENTRIES[name]
    d = e.default_dims()
    rng = np.random.default_rng(2)
    A = e.build(rng, d)
    note(name, kind)
    clean = _run(e, A, "clean") if group == "layout" else None
    for k, check in cases_of(e, group, A, d, rng, clean):
        if k == kind:
            failure = None
            try:
                check()
            except AssertionError as err:
                failure = str(err).splitlines()[0]
            if failure is not None:
                _raise_xfail(f"{known_bug(name, kind)}: {failure}")
            return
    pytest.fail(f"no case {kind!r} for {name}")


if KNOWN_BUGS:  # no empty parametrisation (a skipped item would make the case count look partial)
    @pytest.mark.parametrize("name, group, kind", _known_bug_params())
    def test_known_bug(name, group, kind):
        __tracebackhide__ = True
        _check_known_bug(name, group, kind)


def test_every_public_name_is_covered():
    covered = {n.split("[")[0].split(".")[0].rstrip("()") for n in NAMES}
    covered |= {n.split(".")[0] for n in NAMES}
    missing = [n for n in nd.__all__ if n not in covered and n not in NOT_CALLABLE | NOT_ARRAYS]
    assert not missing, f"public names without an entry here: {missing}"
    for module in (nd.nn, nd.optim, nd.fields, nd.energies, nd.encode, nd.sde, nd.hybrid, nd.chaos):
        short = module.__name__.split(".")[-1]
        for n, obj in vars(module).items():
            if n.startswith("_") or not callable(obj) or getattr(obj, "__module__", "") != module.__name__:
                continue
            if f"{short}.{n}" in NOT_ENTRIES:
                continue
            assert any(k.startswith(f"{short}.{n}") for k in NAMES), f"nd.{short}.{n} has no entry"


def _whole_module_ran(request) -> bool:
    cfg = request.config
    if any(cfg.getoption(opt, None) for opt in ("keyword", "markexpr", "deselect", "lf", "stepwise", "numprocesses")):
        return False
    if any("::" in str(a) for a in cfg.args):
        return False
    mine = [i for i in request.session.items
            if getattr(i, "module", None) is sys.modules[__name__] and i is not request.node]
    return bool(mine) and all(i.nodeid in _RAN for i in mine)


def test_zz_count_of_distinct_bad_input_cases(request):
    """The suite tried at least MIN_CASES distinct (entry point, case) pairs."""
    if not _whole_module_ran(request):
        pytest.skip("only part of this module ran: the count would be partial")
    print(f"\ndistinct bad-input cases tried: {len(CASES)} over {len({e for e, _ in CASES})} entry points")
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} distinct cases were tried; expected >= {MIN_CASES}"
