"""nd.solve_ltc: the liquid time-constant relaxation dx/ds = (a - x) / tau over s in [0, 1]
(docs/models.md §1): golden values, convergence to the closed form, broadcasting, dtypes, validation.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
import reference as ref
from conftest import as_layout

FIXED = ("euler", "midpoint", "rk4")


# ---------------------------------------------------------------------------------------
# Golden values from docs/models.md
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver,expected", [
    ("euler", 0.5),      # 1 + (0.5 - 1)
    ("midpoint", 0.75),  # slope at the half step: -0.25
    ("rk4", 0.6875),     # 1 - (0.5 + 2*0.25 + 2*0.375 + 0.125) / 6
])
def test_golden_one_step_dyadic(solver, expected, dtype):
    """(x=1, a=0.5, tau=1), one step: every intermediate is a dyadic rational, so the result
    is exact in both precisions."""
    x = np.array(1.0, dtype=dtype)
    out = nd.solve_ltc(x, 0.5, 1.0, solver=solver, steps=1)
    assert out.dtype == dtype
    assert float(out) == expected


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-7)])
def test_golden_exact(dtype, tol):
    out = nd.solve_ltc(np.array(1.0, dtype=dtype), 0.5, 1.0)  # solver="exact" is the default
    assert out.dtype == dtype
    assert abs(float(out) - 0.6839397206) < tol


@pytest.mark.parametrize("solver,steps,expected", [
    ("euler", 10, 0.3486784401),  # 0.9^10
    ("rk4", 5, 0.3678852381),
])
def test_golden_decay_to_zero(solver, steps, expected):
    out = nd.solve_ltc(1.0, 0.0, 1.0, solver=solver, steps=steps)
    assert abs(float(out) - expected) < 1e-10


def test_golden_rk4_within_1e6_of_e_inverse():
    """docs/models.md §1 anchor: rk4 with 10 substeps of 0.1 on dx/ds = -x lands within 1e-6 of e^-1."""
    assert abs(float(nd.solve_ltc(1.0, 0.0, 1.0, solver="rk4", steps=10)) - np.exp(-1.0)) < 1e-6


def test_dopri5_close_to_exact():
    exact = 0.5 + 0.5 * np.exp(-1.0)
    loose = float(nd.solve_ltc(1.0, 0.5, 1.0, solver="dopri5"))  # rtol 1e-2, atol 1e-4
    assert loose != exact and abs(loose - exact) < 1e-3
    tight = float(nd.solve_ltc(1.0, 0.5, 1.0, solver="dopri5", rtol=1e-10, atol=1e-12, max_steps=1000))
    assert abs(tight - exact) < 1e-9


def test_dopri5_first_step_is_a_quarter():
    """At the default tolerances the first step of 0.25 is accepted, so it shapes the whole
    step sequence: the reference DOPRI5 started at 0.25 gives the same numbers; started at
    0.5 or by Hairer's rule it gives different ones."""
    rng = np.random.default_rng(7)
    x, a = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    tau = rng.uniform(0.5, 3.0, size=(3, 4))
    out = nd.solve_ltc(x, a, tau, solver="dopri5")
    relax = lambda s, y: (a - y) / tau  # noqa: E731
    ys, info = ref.odeint_dopri5(relax, x, [0.0, 1.0], rtol=1e-2, atol=1e-4, dt=0.25)
    assert info["steps"][0, 1] == 0.25 and info["rejected"] == 0
    assert_allclose(out, ys[-1], rtol=1e-12, atol=1e-14)
    for other in (0.5, None):
        ys_other, _ = ref.odeint_dopri5(relax, x, [0.0, 1.0], rtol=1e-2, atol=1e-4, dt=other)
        assert np.max(np.abs(ys_other[-1] - out)) > 1e-6


def test_dopri5_is_one_system():
    """dopri5 integrates the whole array as one system (one shared step size), with its
    rejections: it equals the reference on the flattened relaxation, and differs from
    solving each element on its own."""
    rng = np.random.default_rng(7)
    x, a = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    tau = rng.uniform(0.05, 3.0, size=(3, 4))
    out = nd.solve_ltc(x, a, tau, solver="dopri5", rtol=1e-6, atol=1e-8, max_steps=1000)
    relax = lambda s, y: (a - y) / tau  # noqa: E731
    ys, info = ref.odeint_dopri5(relax, x, [0.0, 1.0], rtol=1e-6, atol=1e-8, dt=0.25)
    assert info["rejected"] > 0  # 0.25 is too long for tau = 0.05: the control law acts
    assert_allclose(out, ys[-1], rtol=1e-11, atol=1e-13)
    alone = np.array([float(nd.solve_ltc(xi, ai, ti, solver="dopri5", rtol=1e-6, atol=1e-8, max_steps=1000))
                      for xi, ai, ti in zip(x.ravel(), a.ravel(), tau.ravel())]).reshape(3, 4)
    assert not np.array_equal(alone, out)
    assert_allclose(alone, ref.solve_ltc(x, a, tau), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Convergence and agreement with the reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_solvers_converge_to_exact(solver, order):
    """Errors shrink monotonically as steps grow, at the method's order."""
    x, a, tau = np.array([1.0, -2.0, 0.3]), np.array([0.5, 1.0, -0.7]), np.array([1.0, 0.7, 2.5])
    exact = nd.solve_ltc(x, a, tau)
    steps = np.array([2, 4, 8, 16, 32])
    errors = np.array([np.max(np.abs(nd.solve_ltc(x, a, tau, solver=solver, steps=int(k)) - exact))
                       for k in steps])
    assert np.all(np.diff(errors) < 0), errors
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.2, (slope, errors)
    big = nd.solve_ltc(x, a, tau, solver=solver, steps=4000)
    assert_allclose(big, exact, rtol=0, atol={1: 2e-4, 2: 1e-7, 4: 1e-13}[order])


def test_dopri5_converges_as_tolerance_shrinks():
    x, a, tau = np.array([1.0, -2.0, 0.3]), np.array([0.5, 1.0, -0.7]), np.array([1.0, 0.2, 2.5])
    exact = nd.solve_ltc(x, a, tau)
    errors = [np.max(np.abs(nd.solve_ltc(x, a, tau, solver="dopri5", rtol=r, atol=r * 1e-2, max_steps=5000)
                            - exact)) for r in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10)]
    assert errors[-1] < 1e-9
    assert all(e2 < e1 for e1, e2 in zip(errors, errors[1:]) if e1 > 1e-13), errors


@pytest.mark.parametrize("solver", ("exact",) + FIXED)
@pytest.mark.parametrize("steps", [1, 3, 7])
def test_matches_reference(solver, steps):
    rng = np.random.default_rng(11)
    x, a = rng.normal(size=(4, 5)) * 3, rng.normal(size=(4, 5))
    tau = rng.uniform(0.1, 5.0, size=(4, 5))
    out = nd.solve_ltc(x, a, tau, solver=solver, steps=steps)
    assert_allclose(out, ref.solve_ltc(x, a, tau, solver, steps), rtol=1e-14, atol=1e-14)


def test_fixed_steps_are_not_capped_by_max_steps():
    """max_steps bounds the adaptive solver; an explicit step count is the caller's choice."""
    out = nd.solve_ltc(1.0, 0.0, 1.0, solver="euler", steps=500, max_steps=100)
    assert abs(float(out) - (1 - 1 / 500) ** 500) < 1e-12


def test_dopri5_max_steps_raises_integration_error():
    """A stiff relaxation (tau = 1e-4) needs many explicit steps: the budget runs out."""
    with pytest.raises(nd.IntegrationError, match="solve_ltc") as excinfo:
        nd.solve_ltc(np.ones(3), 0.0, 1e-4, solver="dopri5", max_steps=20)
    e = excinfo.value
    assert e.status == "max_steps" and 0.0 < e.t < 1.0
    assert e.info["accepted"] + e.info["rejected"] == 20


# ---------------------------------------------------------------------------------------
# Broadcasting, dtypes, layouts
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ("exact",) + FIXED + ("dopri5",))
def test_broadcasting(solver):
    x = np.array([[1.0], [2.0], [-1.0]])          # (3, 1)
    a = np.array([0.0, 0.5, 1.0, -2.0])           # (4,)
    tau = 0.8                                     # scalar
    out = nd.solve_ltc(x, a, tau, solver=solver, steps=4)
    assert out.shape == (3, 4)
    full = np.broadcast_arrays(x, a, np.asarray(tau))
    expected = nd.solve_ltc(*(np.ascontiguousarray(v) for v in full), solver=solver, steps=4)
    assert_array_equal(out, expected)
    if solver != "dopri5":  # elementwise solvers: each entry is its own scalar problem
        for i in range(3):
            for j in range(4):
                assert out[i, j] == float(nd.solve_ltc(x[i, 0], a[j], tau, solver=solver, steps=4))


def test_scalar_inputs_give_0d_array():
    out = nd.solve_ltc(1.0, 0.5, 1.0, solver="rk4")
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64


@pytest.mark.parametrize("solver", ("exact",) + FIXED + ("dopri5",))
def test_float32_follows_float64(solver):
    rng = np.random.default_rng(3)
    x, a = rng.normal(size=50), rng.normal(size=50)
    tau = rng.uniform(0.2, 4.0, size=50)
    o64 = nd.solve_ltc(x, a, tau, solver=solver, steps=5)
    o32 = nd.solve_ltc(x.astype(np.float32), a.astype(np.float32), tau.astype(np.float32), solver=solver,
                       steps=5)
    assert o32.dtype == np.float32
    assert_allclose(o32, o64, rtol=0, atol=2e-6 if solver != "dopri5" else 1e-3)


@pytest.mark.parametrize("x,a,tau,dtype", [
    (np.float32([1.0]), 0.5, 1.0, np.float32),             # Python scalars do not widen
    (np.float32([1.0]), np.float64([0.5]), 1.0, np.float64),
    (np.float16([1.0]), 0.5, np.float32(1.0), np.float32),
    ([1, 2], [0, 0], [1, 1], np.float64),
    (np.array([True]), 0.5, 1.0, np.float64),
])
def test_dtypes(x, a, tau, dtype):
    out = nd.solve_ltc(x, a, tau)
    assert out.dtype == dtype
    assert_allclose(out, ref.solve_ltc(x, a, tau), rtol=1e-6)


@pytest.mark.parametrize("layout", ["F", "strided", "readonly", "byteswapped"])
@pytest.mark.parametrize("solver", ["exact", "rk4", "dopri5"])
def test_layouts_and_inputs_untouched(layout, solver):
    rng = np.random.default_rng(5)
    x, a = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    tau = rng.uniform(0.5, 2.0, size=(4, 6))
    expected = nd.solve_ltc(x, a, tau, solver=solver, steps=3)
    args = [as_layout(v, layout) for v in (x, a, tau)]
    before = [np.array(v, copy=True) for v in args]
    assert_array_equal(nd.solve_ltc(*args, solver=solver, steps=3), expected)
    for v, b in zip(args, before):
        assert_array_equal(v, b)


@pytest.mark.parametrize("solver", ("exact",) + FIXED + ("dopri5",))
def test_empty_arrays(solver):
    out = nd.solve_ltc(np.zeros((0, 3)), 0.0, 1.0, solver=solver)
    assert out.shape == (0, 3)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((1.0, 0.0, 0.0), {}, ValueError, r"tau.*positive"),
    ((1.0, 0.0, [1.0, -2.0]), {}, ValueError, r"tau.*-2"),
    ((1.0, 0.0, np.nan), {}, ValueError, r"tau.*(NaN|nan)"),
    ((np.inf, 0.0, 1.0), {}, ValueError, r"\bx\b.*(NaN|inf)"),
    ((1.0, np.nan, 1.0), {}, ValueError, r"\ba\b.*NaN"),
    ((1.0, 0.0, 1.0), {"solver": "rk45"}, ValueError, r"solver.*rk45"),
    ((1.0, 0.0, 1.0), {"solver": "Exact"}, ValueError, r"solver.*Exact"),
    ((1.0, 0.0, 1.0), {"steps": 0}, ValueError, r"steps.*0"),
    ((1.0, 0.0, 1.0), {"steps": 1.5}, TypeError, r"steps"),
    ((1.0, 0.0, 1.0), {"rtol": -1.0}, ValueError, r"rtol"),
    ((1.0, 0.0, 1.0), {"atol": -1.0}, ValueError, r"atol"),
    ((1.0, 0.0, 1.0), {"solver": "dopri5", "rtol": 0.0, "atol": 0.0}, ValueError, r"rtol.*atol"),
    ((1.0, 0.0, 1.0), {"max_steps": 0}, ValueError, r"max_steps"),
    ((1 + 1j, 0.0, 1.0), {}, TypeError, r"\bx\b"),
])
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.solve_ltc(*args, **kwargs)


def test_broadcast_mismatch_names_the_arguments():
    with pytest.raises(ValueError) as excinfo:
        nd.solve_ltc(np.ones(2), np.ones(3), 1.0)
    message = str(excinfo.value)
    assert "x" in message.replace("exact", "") and " a " in f" {message} ".replace(",", " ")


# ---------------------------------------------------------------------------------------
# One rule, one message: the kernels' rules reach every entry point that takes the argument
# ---------------------------------------------------------------------------------------


LTC_ENTRIES = {
    "solve_ltc": lambda **kw: nd.solve_ltc(np.ones((2, 3)), 0.0, np.ones((2, 3)), **kw),
    "ltc_scan": lambda **kw: nd.ltc_scan(np.zeros((2, 3, 4)), np.ones((2, 3, 4)), **kw),
    "Liquid": lambda **kw: nd.Liquid(3, hidden_size=4, num_layers=1,
                                     **{"integration_steps" if k == "steps" else k: v for k, v in kw.items()}),
}


@pytest.mark.parametrize("kwargs, message", [
    (dict(solver="dopri5", rtol=0.0, atol=0.0), "rtol and atol cannot both be 0"),
    (dict(rtol=-1.0), "rtol must be >= 0 and finite, got -1"),
    (dict(atol=float("nan")), "atol must be >= 0 and finite, got nan"),
    (dict(max_steps=0), "max_steps must be >= 1, got 0"),
    (dict(steps=0), "steps must be >= 1, got 0"),
    (dict(solver="rk45"), "solver='rk45' is not one of 'exact', 'euler', 'midpoint', 'rk4', 'dopri5'"),
])
def test_every_entry_gives_the_kernels_message(kwargs, message):
    for name, call in LTC_ENTRIES.items():
        with pytest.raises(ValueError) as excinfo:
            call(**kwargs)
        # the model calls the kernel's substeps integration_steps, and says so
        expected = "integration_" + message if name == "Liquid" and "steps" in kwargs else message
        assert str(excinfo.value) == expected, name
    if "steps" not in kwargs and kwargs.get("solver") != "rk45":  # odeint's options obey the same rules
        ode_kwargs = {("method" if k == "solver" else k): v for k, v in kwargs.items()}
        with pytest.raises(ValueError) as excinfo:
            nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0], **ode_kwargs)
        assert str(excinfo.value) == message


def test_tau_rule_is_one_message():
    tau = np.ones((1, 2, 3))
    tau[0, 1, 2] = -0.5
    for call in (lambda: nd.solve_ltc(0.0, 0.0, tau), lambda: nd.ltc_scan(np.zeros_like(tau), tau)):
        with pytest.raises(ValueError) as excinfo:
            call()
        assert str(excinfo.value) == "tau must be positive and finite, got -0.5"


def test_solver_names_and_defaults_come_from_the_kernels():
    from neurodyn import _core, liquid
    assert nd.solve_ltc is liquid.solve_ltc
    assert liquid.LTC_SOLVERS == _core.TABLES["ltc_solvers"] == ("exact", "euler", "midpoint", "rk4", "dopri5")
    defaults = _core.DEFAULTS["solve_ltc"]
    assert defaults == _core.DEFAULTS["ltc_scan"] == _core.DEFAULTS["ltc_check_options"]
    assert defaults == {"solver": "exact", "steps": 1, "rtol": 1e-2, "atol": 1e-4, "max_steps": 100}
    for fn in (nd.solve_ltc, nd.ltc_scan):
        sig = inspect.signature(fn)
        assert {k: sig.parameters[k].default for k in defaults} == defaults
