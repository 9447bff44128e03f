"""nd.odeint: accuracy, step control, dtypes, bad input and failures (docs/models.md §0, §1).

Every accuracy test compares against something independent of the C core: a closed-form
solution, SciPy's integrators, or the pure-NumPy twins in tests/reference.py.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
import reference as ref

scipy_integrate = pytest.importorskip("scipy.integrate")
scipy_linalg = pytest.importorskip("scipy.linalg")

FIXED = ("euler", "midpoint", "rk4")
METHODS = FIXED + ("dopri5",)


def decay(t, y):
    return -y


# ---------------------------------------------------------------------------------------
# Problems with known solutions
# ---------------------------------------------------------------------------------------


class Problem:
    """f, y0, output times and the exact solution at those times."""

    def __init__(self, name, f, y0, t, exact):
        self.name, self.f, self.y0, self.t, self.exact = name, f, np.asarray(y0), np.asarray(t), exact


def _decay_problem():
    k = 0.7
    y0 = np.array([1.0, -2.0, 3.0])
    return Problem("decay", lambda t, y: -k * y, y0, np.linspace(0.0, 2.0, 5),
                   lambda t: np.exp(-k * t)[:, None] * y0)


def _oscillator_problem():
    # x'' = -w^2 x as a first-order system; amplitude-preserving, so errors do not decay away.
    w = 2.0
    x0, v0 = 1.0, 0.5

    def f(t, y):
        return np.stack([y[..., 1], -w * w * y[..., 0]], axis=-1)

    def exact(t):
        return np.stack([x0 * np.cos(w * t) + v0 / w * np.sin(w * t),
                         -x0 * w * np.sin(w * t) + v0 * np.cos(w * t)], axis=-1)

    return Problem("oscillator", f, [x0, v0], np.linspace(0.0, 3.0, 7), exact)


def _nonautonomous_problem():
    # y' = cos(t) y, y = exp(sin t): wrong stage times would break the convergence order.
    return Problem("cos_t", lambda t, y: np.cos(t) * y, [1.0], np.linspace(0.0, 2.0, 3),
                   lambda t: np.exp(np.sin(t))[:, None])


def _linear_system(rng, n=4, batch=5):
    """A stable random A, a bias b and a batch of states; solution by the matrix exponential:
    y(t) = e^{At} (y0 + A^{-1} b) - A^{-1} b."""
    M = rng.normal(size=(n, n))
    A = M - M.T - 0.5 * np.eye(n) + 0.1 * rng.normal(size=(n, n))
    b = rng.normal(size=n)
    y0 = rng.normal(size=(batch, n))
    t = np.linspace(0.0, 1.5, 4)

    def exact(tt, b):
        shift = np.linalg.solve(A, b)
        return np.stack([(y0 + shift) @ scipy_linalg.expm(A * s).T - shift for s in tt])

    return A, b, y0, t, exact


PROBLEMS = {p.name: p for p in (_decay_problem(), _oscillator_problem(), _nonautonomous_problem())}

# Step (or tolerances) per method, and the error each must reach per problem: about three
# times the error the method's known error constant gives, so a wrong stage or weight fails.
SETTINGS = {
    "euler": dict(dt=2e-4, max_steps=10**6),
    "midpoint": dict(dt=1e-3),
    "rk4": dict(dt=1e-2),
    "dopri5": dict(rtol=1e-10, atol=1e-12),
}
TOL = {
    "decay": dict(euler=3e-4, midpoint=3e-7, rk4=1e-10, dopri5=1e-9),
    "oscillator": dict(euler=6e-3, midpoint=2e-5, rk4=5e-8, dopri5=1e-9),
    "cos_t": dict(euler=5e-4, midpoint=3e-7, rk4=5e-10, dopri5=1e-9),
    "linear": dict(euler=3e-3, midpoint=2e-5, rk4=1e-7, dopri5=1e-9),
}


def _kwargs(method):
    return dict(SETTINGS[method], method=method)


# ---------------------------------------------------------------------------------------
# 1. Convergence orders
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["cos_t", "oscillator"])
@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_convergence_order(method, order, problem):
    """The slope of log(error) against log(dt), fitted over five halvings, is the order."""
    p = PROBLEMS[problem]
    t = np.array([p.t[0], p.t[-1]])
    base = {"euler": 0.02, "midpoint": 0.05, "rk4": 0.2}[method]
    dts = base / 2.0 ** np.arange(5)
    errors = []
    for dt in dts:
        ys = nd.odeint(p.f, p.y0, t, method=method, dt=dt)
        errors.append(np.max(np.abs(ys[-1] - p.exact(t)[-1])))
    errors = np.array(errors)
    assert np.all(errors > 1e-13), "errors must stay above round-off for the fit to mean anything"
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.2, (slope, errors)


def test_rk4_decay_spec_anchor():
    """docs/models.md §1: dx/dt = -x on [0, 1], rk4 with dt 0.1, within 1e-6 of e^-1 (in 10 steps)."""
    ys, info = nd.odeint(decay, np.array([1.0]), [0.0, 1.0], method="rk4", dt=0.1, return_info=True)
    assert abs(ys[-1, 0] - np.exp(-1.0)) < 1e-6
    assert info["accepted"] == 10 and info["nfev"] == 40


# ---------------------------------------------------------------------------------------
# 2. dopri5 against SciPy
# ---------------------------------------------------------------------------------------

LORENZ_Y0 = np.array([1.0, 1.0, 1.0])


def lorenz_py(t, y, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    return np.array([sigma * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1], y[0] * y[1] - beta * y[2]])


@pytest.fixture(scope="module")
def lorenz_dop853():
    t = np.linspace(0.0, 2.0, 9)
    sol = scipy_integrate.solve_ivp(lorenz_py, (0.0, 2.0), LORENZ_Y0, method="DOP853", rtol=1e-12,
                                    atol=1e-12, t_eval=t)
    assert sol.success
    return t, sol.y.T


@pytest.mark.parametrize("rhs", ["callable", "field"])
def test_lorenz_matches_dop853(rhs, lorenz_dop853):
    """A chaotic problem amplifies every local error: agreement to 1e-7 over t in [0, 2] at
    tolerance 1e-10 needs a correct 5th-order step, error control and dense output."""
    t, expected = lorenz_dop853
    f = lorenz_py if rhs == "callable" else nd.fields.Lorenz()
    ys = nd.odeint(f, LORENZ_Y0, t, rtol=1e-10, atol=1e-10)
    assert_allclose(ys, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("rtol,atol", [(1e-6, 1e-9), (1e-4, 1e-7)])
@pytest.mark.parametrize("rhs", ["callable", "field"])
def test_lorenz_step_count_matches_rk45(rhs, rtol, atol):
    """Same method, same error norm and same control law as SciPy's RK45: accepted-step counts
    within 25% (sol.t holds the accepted steps plus the start when t_eval is not given)."""
    f = lorenz_py if rhs == "callable" else nd.fields.Lorenz()
    _, info = nd.odeint(f, LORENZ_Y0, [0.0, 2.0], rtol=rtol, atol=atol, return_info=True)
    sol = scipy_integrate.solve_ivp(lorenz_py, (0.0, 2.0), LORENZ_Y0, method="RK45", rtol=rtol, atol=atol)
    scipy_steps = len(sol.t) - 1
    assert abs(info["accepted"] - scipy_steps) <= 0.25 * scipy_steps, (info, scipy_steps)


# ---------------------------------------------------------------------------------------
# dopri5 against the reference twin: the step sequence itself
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["lorenz", "oscillator", "decay_batch", "backward"])
def test_dopri5_step_sequence_matches_reference(case):
    """Hairer's first step, the accept/reject factors and the error norm of docs/models.md §1 fix the
    step sequence completely; the twin (tests/reference.py) implements them from the spec.
    The same accepted/rejected counts and step sizes pin every one of those rules."""
    if case == "lorenz":
        f, y0, t, tol = lorenz_py, LORENZ_Y0, np.linspace(0, 1.5, 4), (1e-6, 1e-9)
    elif case == "oscillator":
        p = PROBLEMS["oscillator"]
        f, y0, t, tol = p.f, p.y0, p.t, (1e-5, 1e-8)
    elif case == "decay_batch":
        f, y0, t, tol = decay, np.array([[1.0, 1e-3], [5.0, -2.0]]), [0.0, 0.3, 4.0], (1e-3, 1e-6)
    else:
        p = PROBLEMS["oscillator"]
        f, y0, t, tol = p.f, p.y0, p.t[::-1], (1e-5, 1e-8)
    # The twin is the coupled solver of docs/models.md §1: one step size for the whole array.
    ys, info = nd.odeint(f, y0, t, rtol=tol[0], atol=tol[1], return_info=True, coupled=(case == "decay_batch"))
    ys_ref, info_ref = ref.odeint_dopri5(f, y0, t, rtol=tol[0], atol=tol[1])
    assert (info["accepted"], info["rejected"], info["nfev"]) == (
        info_ref["accepted"], info_ref["rejected"], info_ref["nfev"])
    # Step factors come from y5 - y4, a difference of nearly equal numbers: sizes agree to
    # ~1e-8 only, while the exact counts above already pin every rule.
    assert_allclose(info["steps"], info_ref["steps"], rtol=1e-6, atol=1e-12)
    assert_allclose(ys, ys_ref, rtol=1e-10, atol=1e-12)


def test_dopri5_rejects_and_recovers():
    """A step too large for the tolerance is rejected and retried smaller (the reference
    rejects exactly the same steps): a first step of 1 on y' = -50 y."""
    f = lambda t, y: -50.0 * y  # noqa: E731
    ys, info = nd.odeint(f, np.array([1.0]), [0.0, 1.0], dt=1.0, rtol=1e-6, atol=1e-9, return_info=True)
    _, info_ref = ref.odeint_dopri5(f, np.array([1.0]), [0.0, 1.0], dt=1.0, rtol=1e-6, atol=1e-9)
    assert info["rejected"] >= 2
    assert info["rejected"] == info_ref["rejected"] and info["accepted"] == info_ref["accepted"]
    assert abs(ys[-1, 0] - np.exp(-50.0)) < 1e-9


def test_dopri5_nan_estimate_rejects_and_shrinks():
    """docs/models.md §1: a NaN error estimate rejects the step and shrinks it before giving up. Here
    f is NaN only where a too-long step overshoots below zero; the solver must recover."""
    f = lambda t, y: np.where(y < 0, np.nan, -10.0 * y)  # noqa: E731
    ys, info = nd.odeint(f, np.array([1.0]), [0.0, 1.0], dt=5.0, rtol=1e-8, atol=1e-10, return_info=True)
    assert info["status"] == "success" and info["rejected"] >= 1
    assert abs(ys[-1, 0] - np.exp(-10.0)) < 1e-8


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_dopri5_nfev_counts(direction):
    """FSAL: 6 evaluations per attempted step, plus f(t0, y0) and, for the automatic first
    step, one more evaluation inside Hairer's algorithm."""
    p = PROBLEMS["oscillator"]
    t = p.t * direction
    f = (lambda tt, y: direction * p.f(tt, y))
    _, info = nd.odeint(f, p.y0, t, rtol=1e-7, atol=1e-9, return_info=True)
    assert info["nfev"] == 2 + 6 * (info["accepted"] + info["rejected"])
    assert info["steps"].shape == (info["accepted"], 2)
    _, info = nd.odeint(f, p.y0, t, rtol=1e-7, atol=1e-9, dt=0.01, return_info=True)
    assert info["nfev"] == 1 + 6 * (info["accepted"] + info["rejected"])
    assert info["steps"][0, 1] == direction * 0.01


def test_dopri5_first_step_is_hairers():
    """The automatic first step is Hairer's (Solving ODEs I, II.4), as in the reference."""
    f = lambda t, y: np.array([y[1], -4.0 * y[0] + np.sin(t)])  # noqa: E731
    y0 = np.array([0.3, -1.2])
    for rtol, atol in [(1e-3, 1e-6), (1e-8, 1e-10)]:
        _, info = nd.odeint(f, y0, [0.0, 10.0], rtol=rtol, atol=atol, return_info=True)
        h = ref.initial_step(f, 0.0, y0, f(0.0, y0), 1.0, 10.0, rtol, atol)
        assert info["steps"][0, 0] == 0.0
        assert info["steps"][0, 1] == pytest.approx(h, rel=1e-12)


def test_dopri5_step_growth_is_clamped_to_10():
    """err = 0 (a constant state) gives the maximal factor 10 per accepted step."""
    _, info = nd.odeint(lambda t, y: 0.0 * y, np.array([1.0, 2.0]), [0.0, 1.0], dt=1e-4,
                        return_info=True)
    h = info["steps"][:, 1]
    assert_allclose(h[1:-1] / h[:-2], 10.0, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# 3. Closed-form solutions, every method, float32 against float64
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", ["decay", "oscillator", "cos_t"])
def test_exact_solutions(method, problem):
    p = PROBLEMS[problem]
    ys = nd.odeint(p.f, p.y0, p.t, **_kwargs(method))
    assert ys.shape == (len(p.t),) + p.y0.shape and ys.dtype == np.float64
    assert_allclose(ys, p.exact(p.t), rtol=0, atol=TOL[problem][method])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_b", [False, True], ids=["Ay", "Ay+b"])
def test_linear_system_batch_against_expm(method, with_b, rng):
    """A batch of initial states through nd.fields.Linear, and the same as a Python callable,
    against y(t) = e^{At}(y0 + A^{-1}b) - A^{-1}b from scipy.linalg.expm."""
    A, b, y0, t, exact = _linear_system(rng)
    if not with_b:
        b = np.zeros_like(b)
    field = nd.fields.Linear(A, b if with_b else None)
    expected = exact(t, b)
    tol = TOL["linear"][method]
    for f in (field, ref.linear(A, b)):
        ys = nd.odeint(f, y0, t, **_kwargs(method))
        assert ys.shape == (len(t),) + y0.shape
        assert_allclose(ys, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", ["decay", "oscillator"])
def test_float32_follows_float64(method, problem):
    """float32 in, float32 out, and within float32 round-off of the float64 run (steps
    coarse enough that round-off does not pile up over thousands of them)."""
    p = PROBLEMS[problem]
    kw = {"euler": dict(dt=1e-2), "midpoint": dict(dt=1e-2), "rk4": dict(dt=0.05),
          "dopri5": dict(rtol=1e-4, atol=1e-6)}[method]
    y64 = nd.odeint(p.f, p.y0, p.t, method=method, **kw)
    y32 = nd.odeint(p.f, p.y0.astype(np.float32), p.t, method=method, **kw)
    assert y32.dtype == np.float32
    scale = np.max(np.abs(y64))
    tol = 2e-5 if method != "dopri5" else 5e-4  # dopri5: the step sequence itself may differ
    assert_allclose(y32, y64, rtol=0, atol=tol * scale)
    if method == "dopri5":
        assert_allclose(y32, p.exact(p.t), rtol=0, atol=5e-3 * scale)


# ---------------------------------------------------------------------------------------
# 5. Fixed-step methods against the reference twin
# ---------------------------------------------------------------------------------------


def forced(t, y, k, c):
    """A non-autonomous, nonlinear f with extra args: catches stage times and args."""
    return -k * y + c * np.sin(3.0 * t) * np.tanh(y[..., ::-1])


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("t,dt", [
    (np.linspace(0.0, 2.0, 5), 0.07),
    (np.array([0.0, 0.05, 0.31, 1.7]), 0.1),
    (np.array([1.0, 0.6, -0.25]), 0.03),
    (np.array([0.0, 0.4, 1.0]), None),
], ids=["uniform", "uneven", "backward", "dt_none"])
def test_fixed_step_matches_reference(method, t, dt):
    """Same step count, same stage times, same weights: agreement to about 1e-13."""
    y0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    args = (0.8, 1.3)
    ys, info = nd.odeint(forced, y0, t, method=method, dt=dt, args=args, return_info=True)
    ys_ref, steps_ref = ref.odeint_fixed(forced, y0, t, method, dt=dt, args=args)
    assert_allclose(ys, ys_ref, rtol=1e-13, atol=1e-13)
    assert info["accepted"] == len(steps_ref) and info["rejected"] == 0
    assert info["nfev"] == ref.EVALS_PER_STEP[method] * len(steps_ref)
    assert_allclose(info["steps"], steps_ref, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("span,dt,n", [
    (0.625, 0.25, 3),   # 2.5 rounds away from zero, not to even (2)
    (0.375, 0.25, 2),   # 1.5 -> 2
    (0.875, 0.25, 4),   # 3.5 -> 4 (to even would also give 4; half-away must agree)
    (0.125, 0.25, 1),   # 0.5 -> 1
    (0.0625, 0.25, 1),  # 0.25 -> 0 -> at least one step
    (1.0, 0.3, 3),      # 3.33 -> 3
    (1.0, 0.29, 3),     # 3.45 -> 3
    (1.0, 5.0, 1),      # dt larger than the span
])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fixed_step_count_rule(span, dt, n, sign):
    """n = max(1, round-half-away(|t1 - t0| / dt)) equal steps, hitting t1 exactly."""
    t = np.array([2.0, 2.0 + sign * span])
    ys, info = nd.odeint(decay, np.array([1.0]), t, method="euler", dt=dt, return_info=True)
    assert info["accepted"] == n == ref.substeps(sign * span, dt)
    assert_allclose(info["steps"][:, 1], sign * span / n, rtol=1e-15)
    assert ys[-1, 0] == pytest.approx((1.0 - sign * span / n) ** n, rel=1e-14)


def test_fixed_step_dt_none_is_one_step_per_interval():
    t = np.array([0.0, 0.1, 0.3, 0.7, 1.5])
    ys, info = nd.odeint(decay, np.array([2.0]), t, method="rk4", return_info=True)
    assert info["accepted"] == len(t) - 1
    assert_allclose(info["steps"], np.stack([t[:-1], np.diff(t)], axis=1), rtol=1e-15)
    ys_ref, _ = ref.odeint_fixed(decay, np.array([2.0]), t, "rk4")
    assert_allclose(ys, ys_ref, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# 8. Dense output
# ---------------------------------------------------------------------------------------


def test_dense_output_does_not_force_steps():
    """Output times are filled by interpolation: asking for 2, 11 or 1001 outputs (or for
    irregular ones) leaves the accepted steps exactly as they were."""
    p = PROBLEMS["oscillator"]
    y0 = p.y0
    t_end = 6.0
    kw = dict(rtol=1e-6, atol=1e-9, return_info=True)
    _, info2 = nd.odeint(p.f, y0, [0.0, t_end], **kw)
    irregular = np.concatenate([[0.0], np.sort(np.random.default_rng(5).uniform(0, t_end, 57)), [t_end]])
    for t in (np.linspace(0, t_end, 11), np.linspace(0, t_end, 1001), irregular):
        ys, info = nd.odeint(p.f, y0, t, **kw)
        assert info["accepted"] == info2["accepted"] and info["rejected"] == info2["rejected"]
        assert_array_equal(info["steps"], info2["steps"])
        # Accurate to about the tolerance everywhere inside the steps.
        err = np.max(np.abs(ys - p.exact(t)))
        assert err < 20 * (1e-9 + 1e-6 * np.max(np.abs(ys))), err
    assert info2["accepted"] < 200  # and far fewer steps than the 1000 output times


def test_dense_output_matches_hairer_interpolant():
    """The library interpolates with Shampine's polynomial matrix; the twin uses Hairer's
    nested CONTD5 form. They are the same 4th-order interpolant, so inside every step the
    values agree to round-off."""
    p = PROBLEMS["oscillator"]
    t = np.linspace(0.0, 3.0, 301)
    ys, _ = nd.odeint(p.f, p.y0, t, rtol=1e-5, atol=1e-8, return_info=True)
    ys_ref, _ = ref.odeint_dopri5(p.f, p.y0, t, rtol=1e-5, atol=1e-8)
    assert_allclose(ys, ys_ref, rtol=1e-11, atol=1e-12)


# Times for which the last step's start plus the remaining span rounds below t_end in
# float64 (found by search; the rounding happens at the last step's start, not at t0).
_T0_ROUNDING, _T_END_ROUNDING = 0.19503727596993087, 2.936732032205723


@pytest.mark.parametrize("forward", [True, False])
def test_dopri5_last_step_rounding(forward):
    """The final step is clamped to h = |t_end - t|, but t + h need not equal t_end in
    floating point. The last output must still be the solution there."""
    t = np.array([_T0_ROUNDING, _T_END_ROUNDING])
    if not forward:
        t = t[::-1]
    ys, info = nd.odeint(lambda s, y: -y / 1000.0, np.array([1.0]), t, return_info=True)
    assert np.all(np.isfinite(ys))
    assert abs(ys[-1, 0] - np.exp(-(t[-1] - t[0]) / 1000.0)) < 1e-9
    assert np.all(info["steps"][:, 1] != 0.0), "no zero-length steps"


def test_dopri5_span_shorter_than_ten_ulps():
    """The minimum step guards against steps that cannot move t; a last step clamped to land
    exactly on t[-1] always moves it, however short it is."""
    t = np.array([1e10, 1e10 + 1e-5])  # the span is 1.9e-5, ten ulps of 1e10 are 1.9e-5
    assert nd.odeint(decay, np.array([1.0]), t, method="rk4")[-1, 0] == pytest.approx(np.exp(-(t[1] - t[0])))
    ys = nd.odeint(decay, np.array([1.0]), t)
    assert ys[-1, 0] == pytest.approx(np.exp(-(t[1] - t[0])), rel=1e-12)


# ---------------------------------------------------------------------------------------
# 9. Direction, dtypes, callbacks
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_time_runs_backwards(method):
    """Decreasing t: y' = -y from y(2) = e^-2 back to t = 0 gives e^-t; steps are negative."""
    t = np.linspace(2.0, 0.0, 6)
    ys, info = nd.odeint(decay, np.array([np.exp(-2.0)]), t, return_info=True, **_kwargs(method))
    # Backwards the solution grows by e^2, and so do the errors: compare relatively.
    assert_allclose(ys[:, 0], np.exp(-t), rtol=5 * TOL["decay"][method])
    assert np.all(info["steps"][:, 1] < 0)
    assert np.all(np.diff(info["steps"][:, 0]) < 0)


def test_single_time_returns_y0():
    y0 = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    calls = []
    ys, info = nd.odeint(lambda t, y: calls.append(t) or -y, y0, [0.5], return_info=True)
    assert ys.shape == (1, 2, 2) and ys.dtype == np.float32
    assert_array_equal(ys[0], y0)
    assert np.all(info["nfev"] == 0) and np.all(info["accepted"] == 0) and calls == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_row_is_y0_bit_for_bit(method, dtype):
    y0 = np.array([0.1, 1 / 3, -2e-7, 12345.678], dtype=dtype)
    ys = nd.odeint(decay, y0, [0.0, 0.5], method=method)
    assert ys.dtype == dtype
    assert_array_equal(ys[0], y0)


@pytest.mark.parametrize("y0,dtype", [
    (np.array([1, 2, 3]), np.float64),
    ([1, 2, 3], np.float64),
    (np.array([1, 0], dtype=np.uint8), np.float64),
    (np.array([True, False]), np.float64),
    (np.array([1.0, 2.0], dtype=np.float16), np.float32),
    (np.array([1.0, 2.0], dtype=np.float32), np.float32),
    (np.array([1.0, 2.0], dtype=">f8"), np.float64),
    (np.float32(1.5), np.float32),
    (2.0, np.float64),
])
def test_result_dtype(y0, dtype):
    seen = []

    def f(t, y):
        seen.append(y.dtype)
        return -y

    ys = nd.odeint(f, y0, [0.0, 1.0], method="rk4", dt=0.05)
    assert ys.dtype == dtype and ys.shape == (2,) + np.shape(y0)
    assert set(seen) == {np.dtype(dtype)}, "f sees the computing dtype"
    assert_allclose(ys[-1], np.asarray(y0, dtype=np.float64) * np.exp(-1.0), rtol=1e-5)


@pytest.mark.parametrize("y0", [np.array([1 + 2j]), np.array([1.0], dtype=object),
                                np.array(["a"]), np.array([1.0], dtype=np.longdouble)],
                         ids=["complex", "object", "str", "longdouble"])
def test_refused_dtypes(y0):
    if y0.dtype == np.longdouble and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match="y0"):
        nd.odeint(decay, y0, [0.0, 1.0])


def test_extra_args_are_passed_through():
    seen = []

    def f(t, y, k, label, *, _seen=seen):
        _seen.append(label)
        return -k * y + 0.5

    ys = nd.odeint(f, np.array([1.0]), [0.0, 1.0], args=(2.0, "tag"), rtol=1e-10, atol=1e-12)
    assert abs(ys[-1, 0] - (0.25 + 0.75 * np.exp(-2.0))) < 1e-9
    assert seen and set(seen) == {"tag"}


class _Boom(Exception):
    pass


def _exploding_rhs(t, y):
    if t > 0.3:
        raise _Boom(f"boom at t={t}")
    return -y


@pytest.mark.parametrize("method", METHODS)
def test_exception_from_f_propagates(method):
    """The user's own exception, unchanged, with f's frame in the traceback."""
    with pytest.raises(_Boom, match="boom at t=") as excinfo:
        nd.odeint(_exploding_rhs, np.array([1.0]), [0.0, 1.0], method=method, dt=0.1)
    frames = [entry.name for entry in excinfo.traceback]
    assert "_exploding_rhs" in frames
    text = "".join(traceback.format_exception(excinfo.value))
    assert "raise _Boom" in text


def test_f_gets_a_fresh_array_it_may_scribble_on():
    """Writing into the y it was given must not corrupt the solver's state."""

    def f(t, y):
        assert y.flags.c_contiguous and y.shape == (2, 3)
        dy = -y.copy()
        y[...] = 1e6
        return dy

    ys = nd.odeint(f, np.ones((2, 3)), [0.0, 1.0], method="rk4", dt=0.1)
    assert_allclose(ys[-1], np.exp(-1.0), rtol=1e-6)


def test_f_may_return_lists_and_other_float_types():
    """f's value is converted to the state's dtype (a list, float32 for a float64 state)."""
    ys = nd.odeint(lambda t, y: [-y[0], -2 * y[1]], np.array([1.0, 1.0]), [0.0, 1.0], method="rk4", dt=0.01)
    assert_allclose(ys[-1], np.exp([-1.0, -2.0]), rtol=1e-8)
    ys = nd.odeint(lambda t, y: (-y).astype(np.float64), np.float32([1.0]), [0.0, 1.0], method="rk4", dt=0.01)
    assert ys.dtype == np.float32


def test_inputs_are_not_modified():
    y0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.array([0.0, 0.5, 1.0])
    y0_copy, t_copy = y0.copy(), t.copy()
    for method in METHODS:
        nd.odeint(decay, y0, t, method=method, dt=0.1)
    nd.odeint(nd.fields.Linear(-np.eye(2)), y0, t)
    assert_array_equal(y0, y0_copy)
    assert_array_equal(t, t_copy)


@pytest.mark.parametrize("layout", ["F", "strided", "readonly", "byteswapped"])
def test_layouts_of_y0_and_t(layout):
    from conftest import as_layout

    y0 = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -0.1]])
    t = np.array([0.0, 0.3, 1.1])
    expected = nd.odeint(forced, y0, t, method="midpoint", dt=0.05, args=(1.0, 0.5))
    got = nd.odeint(forced, as_layout(y0, layout), as_layout(t, layout if layout != "F" else "C"),
                    method="midpoint", dt=0.05, args=(1.0, 0.5))
    assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", ["lorenz", "mlp"])
def test_concurrent_calls_give_identical_results(kind):
    """Kernels run without the GIL (the MLP through OpenBLAS GEMM); calls from several
    threads must not share state and must give bit-identical results."""
    rng = np.random.default_rng(3)
    if kind == "lorenz":
        field, y0 = nd.fields.Lorenz(), rng.normal(size=(64, 3)) + [0.0, 0.0, 25.0]
    else:
        ws = [rng.normal(size=(8, 48)) / 3, rng.normal(size=(48, 48)) / 7, rng.normal(size=(48, 8)) / 7]
        field, y0 = nd.fields.MLP(ws, activation="tanh"), rng.normal(size=(128, 8))
    t = np.linspace(0.0, 1.0, 5)
    expected = nd.odeint(field, y0, t, rtol=1e-7, atol=1e-9)
    results = [None] * 4

    def work(i):
        results[i] = nd.odeint(field, y0, t, rtol=1e-7, atol=1e-9)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in results:
        assert_array_equal(r, expected)


def test_ctrl_c_stops_a_long_field_integration():
    """A built-in field never enters Python, so the solver polls for signals itself: SIGINT
    must surface as KeyboardInterrupt within a fraction of a second. The budget bounds the
    run to a few seconds should polling ever break."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGINT"):
        pytest.skip("signals are delivered to the main thread only")
    y0 = np.random.default_rng(0).normal(size=(1000, 3)) + [0.0, 0.0, 25.0]
    sent = []

    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    # The latency is measured from the moment the signal is sent: on a loaded machine the timer
    # thread itself can start late, which says nothing about the solver.
    timer = threading.Timer(0.1, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            nd.odeint(nd.fields.Lorenz(), y0, [0.0, 1e6], rtol=1e-12, atol=1e-12, max_steps=10_000_000)
    finally:
        timer.cancel()
    assert sent and time.perf_counter() - sent[0] < 1.0


# ---------------------------------------------------------------------------------------
# 4. Bad input: a clear exception that names the argument
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(y0=np.array([1.0, np.nan])), ValueError, r"y0.*NaN"),
    (dict(y0=np.array([np.inf, 1.0])), ValueError, r"y0.*(NaN|inf)"),
    (dict(t=[0.0, 1.0, 1.0]), ValueError, r"\bt\b.*strictly"),
    (dict(t=[0.0, 1.0, 0.5]), ValueError, r"\bt\b.*strictly"),
    (dict(t=[1.0, 0.0, 0.5]), ValueError, r"\bt\b.*strictly"),
    (dict(t=[0.0, np.nan]), ValueError, r"\bt\b.*NaN"),
    (dict(t=[0.0, np.inf]), ValueError, r"\bt\b.*inf"),
    (dict(t=[]), ValueError, r"\bt\b"),
    (dict(t=np.zeros((2, 2))), ValueError, r"\bt\b.*1-D"),
    (dict(method="rk45"), ValueError, r"method.*rk45"),
    (dict(method="RK4"), ValueError, r"method.*RK4"),
    (dict(rtol=-1e-3), ValueError, r"rtol.*-0\.001"),
    (dict(atol=-1.0), ValueError, r"atol.*-1"),
    (dict(rtol=float("nan")), ValueError, r"rtol"),
    (dict(rtol=0.0, atol=0.0), ValueError, r"rtol.*atol"),
    (dict(dt=0.0), ValueError, r"\bdt\b"),
    (dict(dt=-0.1, method="rk4"), ValueError, r"\bdt\b.*-0\.1"),
    (dict(max_steps=0), ValueError, r"max_steps.*0"),
    (dict(max_steps=2.5), TypeError, r"max_steps"),
    (dict(max_steps="10"), TypeError, r"max_steps"),
    (dict(args=[1.0]), TypeError, r"args"),
    (dict(f=3.0), TypeError, r"\bf\b"),
    (dict(f=lambda t, y: np.zeros(3)), ValueError, r"f\(t, y\).*\(3,\).*\(2,\)"),
    (dict(f=lambda t, y: y[None]), ValueError, r"f\(t, y\).*shape"),
    (dict(f=lambda t, y: None), TypeError, r"returned by f"),
    (dict(f=lambda t, y: y.astype(complex)), TypeError, r"returned by f"),
])
def test_bad_input(kwargs, exc, match):
    call = dict(f=decay, y0=np.array([1.0, 2.0]), t=[0.0, 1.0])
    call.update(kwargs)
    f, y0, t = call.pop("f"), call.pop("y0"), call.pop("t")
    with pytest.raises(exc, match=match):
        nd.odeint(f, y0, t, **call)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_shape_from_f_for_every_method(method):
    with pytest.raises(ValueError, match=r"f\(t, y\) returned an array of shape \(2, 1\)"):
        nd.odeint(lambda t, y: y[:, None], np.array([1.0, 2.0]), [0.0, 1.0], method=method)


# ---------------------------------------------------------------------------------------
# Failures: nd.IntegrationError
# ---------------------------------------------------------------------------------------


def test_integration_error_is_a_runtime_error():
    assert issubclass(nd.IntegrationError, RuntimeError)


@pytest.mark.parametrize("method", FIXED)
def test_max_steps_fixed(method):
    """25 steps per output interval, budget 60: outputs at 0, 0.25 and 0.5 are filled, the
    state stops at t = 0.6, and everything filled equals the unconstrained run."""
    t = np.linspace(0.0, 1.0, 5)
    y0 = np.array([1.0, -0.5])
    full = nd.odeint(decay, y0, t, method=method, dt=0.01)
    with pytest.raises(nd.IntegrationError, match=r"max_steps=60") as excinfo:
        nd.odeint(decay, y0, t, method=method, dt=0.01, max_steps=60)
    e = excinfo.value
    assert e.status == "max_steps" and e.info["status"] == "max_steps"
    assert e.t == pytest.approx(0.6, abs=1e-12)
    assert_array_equal(e.ts, t[:3])
    assert e.ys.shape == (3, 2)
    assert_array_equal(e.ys, full[:3])
    ref_y, _ = ref.odeint_fixed(decay, y0, [0.0, 0.25, 0.5, 0.6], method, dt=0.01)
    assert_allclose(e.y, ref_y[-1], rtol=1e-13)
    assert e.info["accepted"] == 60 and e.info["rejected"] == 0


@pytest.mark.parametrize("method", METHODS)
def test_max_steps_is_an_exact_budget(method):
    """max_steps counts attempted steps: exactly the number needed succeeds, one fewer fails."""
    p = PROBLEMS["oscillator"]
    kw = dict(method=method, dt=0.1 if method != "dopri5" else None, rtol=1e-6, atol=1e-9)
    _, info = nd.odeint(p.f, p.y0, p.t, return_info=True, **kw)
    needed = info["accepted"] + info["rejected"]
    nd.odeint(p.f, p.y0, p.t, max_steps=needed, **kw)
    with pytest.raises(nd.IntegrationError) as excinfo:
        nd.odeint(p.f, p.y0, p.t, max_steps=needed - 1, **kw)
    e = excinfo.value
    assert e.status == "max_steps"
    assert e.info["accepted"] + e.info["rejected"] == needed - 1
    assert e.t < p.t[-1]


def test_max_steps_dopri5_partial_outputs():
    t = np.linspace(0.0, 10.0, 11)
    y0 = np.array([1.0, 2.0])
    full = nd.odeint(decay, y0, t, rtol=1e-8, atol=1e-10)
    with pytest.raises(nd.IntegrationError, match="max_steps") as excinfo:
        nd.odeint(decay, y0, t, rtol=1e-8, atol=1e-10, max_steps=40)
    e = excinfo.value
    n = len(e.ts)
    assert 1 <= n < len(t) and e.ys.shape == (n, 2)
    assert_array_equal(e.ts, t[:n])
    assert_array_equal(e.ys, full[:n])
    assert t[n - 1] <= e.t < t[n]
    assert_allclose(e.y, y0 * np.exp(-e.t), rtol=1e-7)
    assert e.info["nfev"] == 2 + 6 * 40


@pytest.mark.parametrize("method", METHODS)
def test_nonfinite_f_raises(method):
    """f turns NaN past t = 0.5: a non-finite state is never returned as a result."""

    def f(t, y):
        return -y if t < 0.5 else y * np.nan

    with pytest.raises(nd.IntegrationError) as excinfo:
        nd.odeint(f, np.array([1.0, 2.0]), [0.0, 0.25, 1.0], method=method, dt=0.1)
    e = excinfo.value
    assert e.status in ("nonfinite", "step_underflow")
    assert e.t < 0.5 + 0.1  # at most one step past the last finite evaluation
    assert np.all(np.isfinite(e.y)) and np.all(np.isfinite(e.ys))
    assert_array_equal(e.ts, [0.0, 0.25])


def test_blow_up_raises():
    """y' = y^2 from y(0) = 1 blows up at t = 1: the solver must stop, not return garbage."""
    with pytest.raises(nd.IntegrationError) as excinfo:
        nd.odeint(lambda t, y: y * y, np.array([1.0]), [0.0, 2.0])
    e = excinfo.value
    assert e.status in ("nonfinite", "step_underflow", "max_steps")
    assert 0.99 < e.t < 1.0 + 1e-3
    assert_array_equal(e.ts, [0.0])


def test_overflowing_state_is_nonfinite():
    with pytest.raises(nd.IntegrationError, match="non-finite") as excinfo, np.errstate(over="ignore"):
        nd.odeint(lambda t, y: 1e300 * y, np.array([1e10]), [0.0, 1.0], method="euler", dt=0.5)
    assert excinfo.value.status == "nonfinite"
    assert excinfo.value.t == 0.0


# ---------------------------------------------------------------------------------------
# 10. Field and callable agree (property test)
# ---------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")


@hypothesis.given(
    method=st.sampled_from(METHODS),
    dtype=st.sampled_from([np.float32, np.float64]),
    batch=st.lists(st.integers(0, 3), min_size=0, max_size=2),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    backward=st.booleans(),
)
def test_field_equals_equivalent_callable(method, dtype, batch, n, seed, backward):
    """nd.fields.Linear and the same dy = A y + b as a Python function integrate the same
    way: same steps, same results up to the rounding of the matrix product."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) - 1.5 * np.eye(n)
    b = rng.normal(size=n)
    y0 = rng.normal(size=tuple(batch) + (n,)).astype(dtype)
    t = np.array([0.0, 0.4, 1.0])
    if backward:
        t = -t
    kw = dict(method=method, dt=0.05 if method != "dopri5" else None, rtol=1e-6, atol=1e-8)
    A_t, b_t = A.astype(dtype), b.astype(dtype)

    def py(tt, y):
        return (y @ A_t.T + b_t).astype(dtype)

    ys_f, info_f = nd.odeint(nd.fields.Linear(A_t, b_t), y0, t, return_info=True, **kw)
    ys_p, info_p = nd.odeint(py, y0, t, return_info=True, **kw)
    assert ys_f.dtype == ys_p.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-5
    scale = max(1.0, float(np.max(np.abs(ys_p)))) if ys_p.size else 1.0
    assert_allclose(ys_f, ys_p, rtol=0, atol=tol * scale)
    if method != "dopri5" or dtype == np.float64:
        assert_array_equal(info_f["accepted"], info_p["accepted"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
