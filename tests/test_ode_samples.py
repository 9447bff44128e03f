"""Independent-sample integration (docs/models.md §8): every sample its own step control,
events, tsit5 and dop853, dense output, per-sample failures."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd

scipy_integrate = pytest.importorskip("scipy.integrate")

ADAPTIVE = ["dopri5", "tsit5", "dop853"]


def lorenz_rows(t, y):
    """Lorenz for rows (m, 3) or a single (3,) state; t broadcasts and is unused."""
    x0, x1, x2 = y[..., 0], y[..., 1], y[..., 2]
    return np.stack([10.0 * (x1 - x0), x0 * (28.0 - x2) - x1, x0 * x1 - (8.0 / 3.0) * x2], axis=-1)


def lorenz_starts(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * [8.0, 8.0, 8.0] + [0.0, 0.0, 25.0]


@pytest.fixture(autouse=True)
def _one_thread():
    yield
    nd.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# A sample's bits do not depend on its batch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("rhs", ["field", "python"])
def test_alone_equals_shuffled_batch_of_1000(method, rhs):
    f = nd.fields.Lorenz() if rhs == "field" else lorenz_rows
    y0 = lorenz_starts(1000)
    t = np.linspace(0.0, 1.0, 5)
    perm = np.random.default_rng(1).permutation(1000)
    kw = dict(method=method, rtol=1e-6, atol=1e-9)
    for threads in (1, 2):
        nd.set_num_threads(threads)
        ys, info = nd.odeint(f, y0[perm], t, return_info=True, **kw)
        for i in (0, 17, 500, 999):
            row = int(np.flatnonzero(perm == i)[0])
            alone, info1 = nd.odeint(f, y0[i], t, return_info=True, **kw)
            assert_array_equal(ys[:, row], alone)
            assert info["nfev"][row] == info1["nfev"] and info["accepted"][row] == info1["accepted"]
    assert info["total"]["nfev"] == int(np.sum(info["nfev"]))


def test_python_rhs_gets_live_rows_and_their_times():
    """y0 (2, 3, 2): f sees (m, 2) rows and t of shape (m, 1); finished rows leave."""
    seen = []

    def f(t, y):
        seen.append((t.shape, y.shape))
        assert t.shape == (y.shape[0], 1)
        return -y * (1.0 + t)  # non-autonomous: each row at its own time

    y0 = np.arange(12.0).reshape(2, 3, 2) + 1.0
    t = [0.0, 1.0]
    ys = nd.odeint(f, y0, t, rtol=1e-9, atol=1e-12)
    assert ys.shape == (2, 2, 3, 2)
    assert_allclose(ys[-1], y0 * np.exp(-1.5), rtol=1e-7)
    assert seen[0] == ((6, 1), (6, 2))
    # lambda t, y: -y still works, for rows and for a single state
    assert_allclose(nd.odeint(lambda t, y: -y, y0, t, rtol=1e-9, atol=1e-12)[-1], y0 * np.exp(-1), rtol=1e-7)
    assert_allclose(nd.odeint(lambda t, y: -y, y0[0, 0], t, rtol=1e-9, atol=1e-12)[-1], y0[0, 0] * np.exp(-1),
                    rtol=1e-7)


def test_stiff_mix_costs_each_row_its_own_work():
    """Linear(diag(-1, -1000)) with one row exciting the fast mode: the batch costs the sum of
    its rows solved alone (exactly: each row's evaluations are its own)."""
    field = nd.fields.Linear(np.diag([-1.0, -1000.0]))
    y0 = np.tile([1.0, 0.0], (50, 1))
    y0[7] = [1.0, 1.0]
    t = [0.0, 2.0]
    _, info = nd.odeint(field, y0, t, rtol=1e-6, atol=1e-9, return_info=True)
    alone = [nd.odeint(field, y0[i], t, rtol=1e-6, atol=1e-9, return_info=True)[1]["nfev"] for i in range(50)]
    assert abs(info["total"]["nfev"] - sum(alone)) <= 0.05 * sum(alone)
    assert info["nfev"][7] > 10 * info["nfev"][0]
    _, coupled = nd.odeint(field, y0, t, rtol=1e-6, atol=1e-9, return_info=True, coupled=True)
    assert coupled["nfev"] * 50 > 10 * info["total"]["nfev"]


# ---------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------


def test_1000_lorenz_against_dop853_reference():
    """1,000 Lorenz trajectories at rtol 1e-6, atol 1e-9 over [0, 1] against dop853 at 1e-13.
    Per trajectory, error in tolerance units: max |y - ref| / (atol + rtol max |ref|). A chaotic
    problem amplifies local errors, so a few trajectories end far beyond 20 units; they do so
    exactly as SciPy's RK45 solving each alone does (same method, same control): the per-sample
    result is the trajectory's own, whatever the batch."""
    y0 = lorenz_starts(1000, seed=3)
    t = np.array([0.0, 1.0])
    ref = nd.odeint(nd.fields.Lorenz(), y0, t, method="dop853", rtol=1e-13, atol=1e-13)[-1]
    # the reference itself against SciPy's DOP853 at 1e-13 on a few rows
    for i in (0, 1, 2):
        sol = scipy_integrate.solve_ivp(lorenz_rows, (0.0, 1.0), y0[i], method="DOP853", rtol=1e-13, atol=1e-13)
        assert_allclose(ref[i], sol.y[:, -1], rtol=1e-9, atol=1e-9)
    rtol, atol = 1e-6, 1e-9

    def units(y, i=slice(None)):
        return np.max(np.abs(y - ref[i]), axis=-1) / (atol + rtol * np.max(np.abs(ref[i]), axis=-1))

    for method in ADAPTIVE:
        u = units(nd.odeint(nd.fields.Lorenz(), y0, t, method=method, rtol=rtol, atol=atol)[-1])
        assert np.percentile(u, 95) <= 20, (method, np.percentile(u, 95))
        if method == "dopri5":
            worst = np.argsort(u)[-3:]
            for i in worst:
                sol = scipy_integrate.solve_ivp(lorenz_rows, (0.0, 1.0), y0[i], method="RK45", rtol=rtol, atol=atol)
                assert abs(u[i] - units(sol.y[:, -1], i)) <= 0.2 * units(sol.y[:, -1], i) + 2, (i, u[i])


def _local_error_order(method, h1):
    """One accepted step of y' = cos(t) y from t = 0.25: the local error is C h^(p+1)."""
    f = lambda t, y: np.cos(t) * y  # noqa: E731
    errs = []
    for h in (h1, h1 / 2):
        t = [0.25, 0.25 + h]
        ys, info = nd.odeint(f, np.array([1.0]), t, method=method, dt=h * 1.000001, rtol=1e6, atol=1e6,
                             return_info=True)
        assert info["accepted"] == 1 and info["rejected"] == 0
        errs.append(abs(ys[-1, 0] - np.exp(np.sin(t[1]) - np.sin(t[0]))))
    return np.log2(errs[0] / errs[1]) - 1


@pytest.mark.parametrize("method,order,h", [("dopri5", 5, 0.1), ("tsit5", 5, 0.1), ("dop853", 8, 0.25)])
def test_measured_order(method, order, h):
    assert abs(_local_error_order(method, h) - order) <= 0.3


def _kepler(e, t):
    """DETEST class D: the two-body orbit of eccentricity e at time t, by Kepler's equation."""
    E = t
    for _ in range(60):
        E = E - (E - e * np.sin(E) - t) / (1 - e * np.cos(E))
    r = 1 - e * np.cos(E)
    return np.array([np.cos(E) - e, np.sqrt(1 - e * e) * np.sin(E), -np.sin(E) / r,
                     np.sqrt(1 - e * e) * np.cos(E) / r])


def _orbit(t, y):
    r3 = (y[..., 0] ** 2 + y[..., 1] ** 2) ** 1.5
    return np.stack([y[..., 2], y[..., 3], -y[..., 0] / r3, -y[..., 1] / r3], axis=-1)


def test_detest_d_dop853_matches_scipy():
    """DETEST class D (Hull et al. 1972), rtol 1e-10: dop853's error within 2x SciPy's DOP853
    and its evaluations within 10%."""
    ecc = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    y0 = np.stack([[1 - e, 0.0, 0.0, np.sqrt((1 + e) / (1 - e))] for e in ecc])
    ys, info = nd.odeint(_orbit, y0, [0.0, 20.0], method="dop853", rtol=1e-10, atol=1e-10, return_info=True)
    for i, e in enumerate(ecc):
        exact = _kepler(e, 20.0)
        sol = scipy_integrate.solve_ivp(_orbit, (0.0, 20.0), y0[i], method="DOP853", rtol=1e-10, atol=1e-10)
        ours, theirs = np.max(np.abs(ys[-1, i] - exact)), np.max(np.abs(sol.y[:, -1] - exact))
        assert ours <= 2 * theirs + 1e-13, (e, ours, theirs)
        assert abs(info["nfev"][i] - sol.nfev) <= 0.1 * sol.nfev, (e, info["nfev"][i], sol.nfev)


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


def oscillator(t, y):
    return np.stack([y[..., 1], -y[..., 0]], axis=-1)


@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("kind", ["python", "linear"])
def test_oscillator_zero_crossings(method, kind):
    y0 = np.array([[1.0, 0.0], [2.0, 0.0]])
    if kind == "python":
        g = lambda t, y: y[..., 0]  # noqa: E731
        f = oscillator
    else:
        g = nd.fields.LinearEvent([1.0, 0.0])
        f = nd.fields.Linear(np.array([[0.0, 1.0], [-1.0, 0.0]]))
    _, info = nd.odeint(f, y0, [0.0, 10.0], method=method, rtol=1e-12, atol=1e-12, events=g, return_info=True)
    expect = np.pi / 2 + np.pi * np.arange(3)
    for s in range(2):
        assert_allclose(info["t_events"][0][s], expect, rtol=0, atol=1e-10)
        assert_allclose(info["y_events"][0][s][:, 0], 0.0, atol=1e-9)


def test_bouncing_ball_impacts():
    """Drop from height 10 under gravity 9.81, restitution 0.9: impacts at analytic times,
    each leg ended by a terminal falling event and restarted with the rebound velocity."""
    gravity, height, k = 9.81, 10.0, 0.9

    def ball(t, y):
        return np.stack([y[..., 1], np.full_like(y[..., 1], -gravity)], axis=-1)

    def ground(t, y):
        return y[..., 0]

    ground.terminal = True
    ground.direction = -1
    t0, y = 0.0, np.array([height, 0.0])
    impacts = []
    for _ in range(4):
        ys, info = nd.odeint(ball, y, [t0, t0 + 100.0], method="dop853", rtol=1e-12, atol=1e-12, events=ground,
                             return_info=True)
        assert info["status"] == "event" and np.isnan(ys[-1]).all()
        te, ye = info["t_events"][0][0], info["y_events"][0][0]
        impacts.append(te)
        t0, y = te, np.array([0.0, -k * ye[1]])
    v = np.sqrt(2 * gravity * height)
    expect = [v / gravity]
    for i in range(1, 4):
        expect.append(expect[-1] + 2 * v * k ** i / gravity)
    assert_allclose(impacts, expect, rtol=0, atol=1e-10)


def _scipy_events(f, y0, span, events, **kw):
    sol = scipy_integrate.solve_ivp(f, span, y0, events=events, rtol=1e-11, atol=1e-12, **kw)
    return sol.t_events


@pytest.mark.parametrize("problem", ["oscillator_rising", "lorenz_section", "decay_threshold"])
def test_events_match_scipy(problem):
    if problem == "oscillator_rising":
        f, y0, span = oscillator, np.array([0.3, 1.0]), (0.0, 12.0)
        g1 = lambda t, y: y[..., 1]  # noqa: E731
        g1.direction = 1
        g2 = lambda t, y: y[..., 0] - 0.5  # noqa: E731
        events = [g1, g2]
    elif problem == "lorenz_section":
        f, y0, span = lorenz_rows, np.array([1.0, 1.0, 20.0]), (0.0, 5.0)
        g = lambda t, y: y[..., 2] - 27.0  # noqa: E731
        g.direction = 1
        events = [g]
    else:
        f, y0, span = (lambda t, y: -0.5 * y), np.array([4.0, 3.0]), (0.0, 10.0)
        g = lambda t, y: y[..., 0] - 1.0  # noqa: E731
        g.terminal = True
        events = [g]
    _, info = nd.odeint(f, y0, list(span), method="dop853", rtol=1e-11, atol=1e-12, events=events,
                        return_info=True)
    theirs = _scipy_events(f, y0, span, events)
    assert len(info["t_events"]) == len(theirs)
    for ours, ref in zip(info["t_events"], theirs):
        assert len(ours) == len(ref)
        assert_allclose(ours, ref, rtol=0, atol=1e-7)


def test_terminal_count_and_batch_of_events():
    """terminal=2 stops at the second event; each sample keeps its own events."""
    g = lambda t, y: y[..., 0]  # noqa: E731
    g.terminal = 2
    y0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    ys, info = nd.odeint(oscillator, y0, np.linspace(0, 10, 11), rtol=1e-10, atol=1e-12, events=g,
                         return_info=True)
    assert list(info["status"]) == ["event", "event"]
    assert_allclose(info["t_reached"], [1.5 * np.pi, 2 * np.pi], atol=1e-8)
    assert len(info["t_events"][0][0]) == 2 and len(info["t_events"][0][1]) == 2
    assert np.isnan(ys[5, 0]).all() and np.isfinite(ys[4, 0]).all() and np.isfinite(ys[6, 1]).all()


# ---------------------------------------------------------------------------------------
# Dense output, failures, warnings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ADAPTIVE)
def test_dense_output_solution(method):
    y0 = np.array([[1.0, 0.0], [0.5, 0.5]])
    t = np.array([0.0, 2.0, 4.0])
    ys, sol = nd.odeint(oscillator, y0, t, method=method, rtol=1e-10, atol=1e-12, dense_output=True)
    assert_allclose(sol(2.0), ys[1], rtol=0, atol=1e-12)
    assert_allclose(sol(4.0), ys[2], rtol=0, atol=1e-12)
    tt = np.array([0.7, 3.3])
    exact = np.stack([np.cos(tt[0]) * y0[0] + np.sin(tt[0]) * y0[0, ::-1] * [1, -1],
                      np.cos(tt[1]) * y0[1] + np.sin(tt[1]) * y0[1, ::-1] * [1, -1]])
    assert_allclose(sol(tt), exact, rtol=0, atol=1e-8)
    assert np.isnan(sol(5.0)).all()


def test_failed_sample_raises_with_the_others_attached():
    field = nd.fields.Linear(np.diag([-1.0, -1e5]))
    y0 = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    t = [0.0, 0.5, 1.0]
    with pytest.raises(nd.IntegrationError, match=r"1 of 3 samples failed.*sample 1.*max_steps=80") as excinfo:
        nd.odeint(field, y0, t, max_steps=80)
    e = excinfo.value
    assert list(e.failed) == [1]
    assert list(e.status) == ["success", "max_steps", "success"]
    assert_allclose(e.ys[-1, 0], [np.exp(-1.0), 0.0], rtol=1e-3, atol=1e-6)
    assert np.isnan(e.ys[-1, 1]).all()
    assert "looks stiff" in str(e) and "radau" in str(e)
    ys, info = nd.odeint(field, y0, t, max_steps=80, on_failure="status")
    assert list(info["status"]) == ["success", "max_steps", "success"]
    assert_array_equal(ys[:, 0], e.ys[:, 0])


def test_float32_tolerance_below_resolution_warns():
    with pytest.warns(RuntimeWarning, match="float32"):
        nd.odeint(lambda t, y: -y, np.ones(2, dtype=np.float32), [0.0, 1.0], rtol=1e-9)


def test_tsit5_and_dop853_coupled_mode():
    """coupled=True integrates the whole array as one system with every adaptive method."""
    y0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    for method in ("tsit5", "dop853"):
        ys, info = nd.odeint(oscillator, y0, [0.0, 1.0], method=method, rtol=1e-10, atol=1e-12, coupled=True,
                             return_info=True)
        assert isinstance(info["nfev"], (int, np.integer))
        assert_allclose(ys[-1, 0], [np.cos(1), -np.sin(1)], atol=1e-9)


def test_events_need_an_adaptive_method():
    with pytest.raises(ValueError, match="events"):
        nd.odeint(oscillator, np.array([1.0, 0.0]), [0.0, 1.0], method="rk4", events=lambda t, y: y[0])
