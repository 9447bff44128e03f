"""Implicit methods of nd.odeint, method="radau" and "bdf" (docs/models.md §8).

- Hairer & Wanner's stiff problems (Robertson to 1e11, Van der Pol mu = 1e3 and 1e6, HIRES,
  OREGO) at rtol 1e-6 against a tight reference, next to SciPy's Radau and BDF with the same
  analytic Jacobian: the error within 2x of SciPy's same method and no more evaluations
  (f + Jacobian) than SciPy at every tolerance;
- the tight reference itself against the published values of the Test Set for IVP Solvers;
- a batch of 1,000 Robertson problems with rates varied +-20%: each sample bit-identical to
  the same problem solved alone, in another order or in chunks;
- a stiff linear field (eigenvalues -1 and -1e4) against expm; built-in and difference
  Jacobians; float32; bad input, failing samples that leave the others intact.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd

scipy_integrate = pytest.importorskip("scipy.integrate")
scipy_linalg = pytest.importorskip("scipy.linalg")

METHODS = ("radau", "bdf")
SCIPY = {"radau": "Radau", "bdf": "BDF"}


# ---------------------------------------------------------------------------------------
# The stiff test set (Hairer & Wanner, Solving ODEs II, IV.10; Mazzia & Magherini's Test Set
# for IVP Solvers). One-sample right-hand sides for the solver comparisons (SciPy calls them
# one state at a time), vectorised ones for batches, and the same fields built in C.
# ---------------------------------------------------------------------------------------


def rober(t, y):
    y1, y2, y3 = y
    return np.array([-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2 * y2, 3e7 * y2 * y2])


def rober_jac(t, y):
    y1, y2, y3 = y
    return np.array([[-0.04, 1e4 * y3, 1e4 * y2],
                     [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2],
                     [0.0, 6e7 * y2, 0.0]])


def vdp(mu):
    """y'' - mu (1 - y^2) y' + y = 0 as a first-order system."""
    def f(t, y):
        return np.array([y[1], mu * (1 - y[0] * y[0]) * y[1] - y[0]])

    def jac(t, y):
        return np.array([[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] * y[0])]])
    return f, jac


def vdp_scaled(eps):
    """Hairer's VDPOL: y1' = y2, y2' = ((1 - y1^2) y2 - y1) / eps (mu = eps^-1/2, time scaled by mu)."""
    def f(t, y):
        return np.array([y[1], ((1 - y[0] * y[0]) * y[1] - y[0]) / eps])

    def jac(t, y):
        return np.array([[0.0, 1.0], [(-2 * y[0] * y[1] - 1) / eps, (1 - y[0] * y[0]) / eps]])
    return f, jac


HIRES_TERMS = [(0, -1.71, {0: 1}), (0, 0.43, {1: 1}), (0, 8.32, {2: 1}), (0, 0.0007, {}),
               (1, 1.71, {0: 1}), (1, -8.75, {1: 1}),
               (2, -10.03, {2: 1}), (2, 0.43, {3: 1}), (2, 0.035, {4: 1}),
               (3, 8.32, {1: 1}), (3, 1.71, {2: 1}), (3, -1.12, {3: 1}),
               (4, -1.745, {4: 1}), (4, 0.43, {5: 1}), (4, 0.43, {6: 1}),
               (5, -280.0, {5: 1, 7: 1}), (5, 0.69, {3: 1}), (5, 1.71, {4: 1}), (5, -0.43, {5: 1}), (5, 0.69, {6: 1}),
               (6, 280.0, {5: 1, 7: 1}), (6, -1.81, {6: 1}),
               (7, -280.0, {5: 1, 7: 1}), (7, 1.81, {6: 1})]


def hires(t, y):
    y1, y2, y3, y4, y5, y6, y7, y8 = y
    return np.array([-1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007, 1.71 * y1 - 8.75 * y2,
                     -10.03 * y3 + 0.43 * y4 + 0.035 * y5, 8.32 * y2 + 1.71 * y3 - 1.12 * y4,
                     -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
                     -280 * y6 * y8 + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
                     280 * y6 * y8 - 1.81 * y7, -280 * y6 * y8 + 1.81 * y7])


def hires_jac(t, y):
    y6, y8 = y[5], y[7]
    J = np.zeros((8, 8))
    J[0, :3] = -1.71, 0.43, 8.32
    J[1, :2] = 1.71, -8.75
    J[2, 2:5] = -10.03, 0.43, 0.035
    J[3, 1:4] = 8.32, 1.71, -1.12
    J[4, 4:7] = -1.745, 0.43, 0.43
    J[5, 3:8] = 0.69, 1.71, -280 * y8 - 0.43, 0.69, -280 * y6
    J[6, 5:8] = 280 * y8, -1.81, 280 * y6
    J[7, 5:8] = -280 * y8, 1.81, -280 * y6
    return J


def orego(t, y):
    y1, y2, y3 = y
    return np.array([77.27 * (y2 + y1 * (1 - 8.375e-6 * y1 - y2)), (y3 - (1 + y1) * y2) / 77.27, 0.161 * (y1 - y3)])


def orego_jac(t, y):
    y1, y2, _ = y
    return np.array([[77.27 * (1 - 2 * 8.375e-6 * y1 - y2), 77.27 * (1 - y1), 0.0],
                     [-y2 / 77.27, -(1 + y1) / 77.27, 1 / 77.27],
                     [0.161, 0.0, -0.161]])


ROBER_TERMS = [(0, -0.04, {0: 1}), (0, 1e4, {1: 1, 2: 1}), (1, 0.04, {0: 1}), (1, -1e4, {1: 1, 2: 1}),
               (1, -3e7, {1: 2}), (2, 3e7, {1: 2})]


def vdp_terms(mu):
    return [(0, 1.0, {1: 1}), (1, mu, {1: 1}), (1, -mu, {0: 2, 1: 1}), (1, -1.0, {0: 1})]


def vdp_scaled_terms(eps):
    return [(0, 1.0, {1: 1}), (1, 1 / eps, {1: 1}), (1, -1 / eps, {0: 2, 1: 1}), (1, -1 / eps, {0: 1})]


OREGO_TERMS = [(0, 77.27, {1: 1}), (0, 77.27, {0: 1}), (0, -77.27 * 8.375e-6, {0: 2}), (0, -77.27, {0: 1, 1: 1}),
               (1, 1 / 77.27, {2: 1}), (1, -1 / 77.27, {1: 1}), (1, -1 / 77.27, {0: 1, 1: 1}),
               (2, 0.161, {0: 1}), (2, -0.161, {2: 1})]

# name: (f, jac, field terms, y0, output times, rtol, atol)
PROBLEMS = {
    "robertson": (rober, rober_jac, ROBER_TERMS, [1.0, 0.0, 0.0],
                  np.concatenate([[0.0], np.logspace(-6, 11, 35)]), 1e-6, 1e-10),
    "vdp1e3": (*vdp(1e3), vdp_terms(1e3), [2.0, 0.0], np.linspace(0.0, 3000.0, 31), 1e-6, 1e-6),
    "vdp1e6": (*vdp_scaled(1e-6), vdp_scaled_terms(1e-6), [2.0, 0.0], np.linspace(0.0, 2.0, 21), 1e-6, 1e-6),
    "hires": (hires, hires_jac, HIRES_TERMS, [1, 0, 0, 0, 0, 0, 0, 0.0057], np.linspace(0.0, 321.8122, 11),
              1e-6, 1e-10),
    "orego": (orego, orego_jac, OREGO_TERMS, [1.0, 2.0, 3.0], np.linspace(0.0, 360.0, 37), 1e-6, 1e-6),
}

# Test Set for IVP Solvers (release 2.4): the solution at the end of each interval.
PUBLISHED = {
    "robertson": [0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050],
    "vdp1e6": [0.1706167732170483e1, -0.8928097010247975e0],
    "hires": [0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4, 0.1175651343283149e-2,
              0.2386356198831331e-2, 0.6238968252742796e-2, 0.2849998395185769e-2, 0.2850001604814231e-2],
    "orego": [0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3],
}


def field_of(name):
    f, _, terms, y0, *_ = PROBLEMS[name]
    return nd.fields.Polynomial.from_terms(len(y0), terms)


_REFERENCES = {}


def reference(name):
    """The solution at the output times from Radau at rtol 1e-12 on the C field (checked
    against the published values below, and against SciPy at every tolerance through the
    comparison of errors)."""
    if name not in _REFERENCES:
        _, _, _, y0, t, _, atol = PROBLEMS[name]
        _REFERENCES[name] = nd.odeint(field_of(name), np.array(y0), t, method="radau", rtol=1e-12,
                                      atol=atol * 1e-6, max_steps=10**6, verbose=False)
    return _REFERENCES[name]


def scaled_error(name, ys):
    """max over outputs and components of |y - ref| / (atol + rtol |ref|)."""
    *_, rtol, atol = PROBLEMS[name]
    ref = reference(name)
    return float(np.max(np.abs(ys - ref) / (atol + rtol * np.abs(ref))))


# ---------------------------------------------------------------------------------------
# Accuracy and cost against SciPy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PUBLISHED)
def test_tight_reference_matches_published_values(name):
    ref = reference(name)[-1]
    assert_allclose(ref, PUBLISHED[name], rtol=1e-9)
    for method in METHODS:  # and both methods, from the Python right-hand side, at rtol 1e-9
        f, jac, _, y0, t, _, atol = PROBLEMS[name]
        ys = nd.odeint(f, np.array(y0), [t[0], t[-1]], method=method, jac=jac, rtol=1e-9, atol=atol * 1e-3,
                       max_steps=10**6, verbose=False)
        pub = np.array(PUBLISHED[name])
        assert np.all(np.abs(ys[-1] - pub) <= 100 * (atol * 1e-3 + 1e-9 * np.abs(pub)))


@pytest.mark.parametrize("name", PROBLEMS)
def test_polynomial_fields_equal_the_python_right_hand_sides(name, rng):
    f, jac, _, y0, *_ = PROBLEMS[name]
    field = field_of(name)
    for y in rng.uniform(0.1, 2.0, size=(4, len(y0))):
        assert_allclose(field(0.0, y), f(0.0, y), rtol=1e-13, atol=1e-12)
        assert_allclose(field.jacobian(0.0, y), jac(0.0, y), rtol=1e-13, atol=1e-12)


# Tolerances around rtol 1e-6: the maximum error over the outputs of one run moves by 2-4x
# when the tolerance moves by 20% (SciPy's own HIRES Radau error is 1.0, 1.6 and 2.6 at
# 1e-6, 0.9e-6 and 1.25e-6): errors are compared by their geometric mean over the sweep,
# evaluations at every point.
SWEEP = (0.8, 1.0, 1.25)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", PROBLEMS)
def test_stiff_problem_error_and_evaluations_against_scipy(name, method):
    f, jac, _, y0, t, rtol, atol = PROBLEMS[name]
    ours, theirs = [], []
    for fac in SWEEP:
        sol = scipy_integrate.solve_ivp(f, (t[0], t[-1]), y0, method=SCIPY[method], t_eval=t, rtol=rtol * fac,
                                        atol=atol * fac, jac=jac)
        assert sol.success
        ys, info = nd.odeint(f, np.array(y0), t, method=method, jac=jac, rtol=rtol * fac, atol=atol * fac,
                             return_info=True, verbose=False)
        assert info["status"] == "success"
        # SciPy's nfev leaves out nothing here: both take the analytic Jacobian
        assert info["nfev"] + info["njev"] <= sol.nfev + sol.njev, (fac, info, sol.nfev, sol.njev)
        ours.append(scaled_error(name, ys))
        theirs.append(scaled_error(name, sol.y.T))
    gm_ours, gm_theirs = np.exp(np.mean(np.log(ours))), np.exp(np.mean(np.log(theirs)))
    assert gm_ours <= 2 * gm_theirs, (ours, theirs)


@pytest.mark.parametrize("method", METHODS)
def test_builtin_field_matches_python_rhs_solution(method):
    """The same problem through the C field and through Python: the same solution (within
    the rounding of the two right-hand sides)."""
    f, jac, _, y0, t, rtol, atol = PROBLEMS["robertson"]
    py = nd.odeint(f, np.array(y0), t, method=method, jac=jac, rtol=rtol, atol=atol, verbose=False)
    c = nd.odeint(field_of("robertson"), np.array(y0), t, method=method, rtol=rtol, atol=atol)
    assert scaled_error("robertson", c) < 2 * max(scaled_error("robertson", py), 1.0)


# ---------------------------------------------------------------------------------------
# Independent samples: bits alone = bits in a batch
# ---------------------------------------------------------------------------------------


def rober_rates(t, y):
    """Robertson with each sample's rates in the state, y = (y1, y2, y3, k1, k2, k3), k' = 0;
    y: (..., 6), vectorised."""
    y1, y2, y3, k1, k2, k3 = np.moveaxis(y, -1, 0)
    a, b, c = k1 * y1, k3 * y2 * y3, k2 * y2 * y2
    z = np.zeros_like(y1)
    return np.stack([-a + b, a - b - c, c, z, z, z], axis=-1)


def rober_rates_jac(t, y):
    y1, y2, y3, k1, k2, k3 = np.moveaxis(y, -1, 0)
    J = np.zeros(y.shape + (6,))
    J[..., 0, 0], J[..., 0, 1], J[..., 0, 2] = -k1, k3 * y3, k3 * y2
    J[..., 1, 0], J[..., 1, 1], J[..., 1, 2] = k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2
    J[..., 2, 1] = 2 * k2 * y2
    J[..., 0, 3], J[..., 0, 5] = -y1, y2 * y3
    J[..., 1, 3], J[..., 1, 4], J[..., 1, 5] = y1, -y2 * y2, -y2 * y3
    J[..., 2, 4] = y2 * y2
    return J


def rober_batch(n, seed):
    rng = np.random.default_rng(seed)
    rates = np.array([0.04, 3e7, 1e4]) * rng.uniform(0.8, 1.2, size=(n, 3))
    return np.concatenate([np.tile([1.0, 0.0, 0.0], (n, 1)), rates], axis=1)


T_ROBER = np.concatenate([[0.0], np.logspace(-5, 11, 17)])


@pytest.mark.parametrize("method", METHODS)
def test_thousand_robertson_problems_bit_identical_to_each_alone(method):
    y0 = rober_batch(1000, seed=7)
    kw = dict(method=method, jac=rober_rates_jac, rtol=1e-6, atol=1e-10, return_info=True, verbose=False)
    ys, info = nd.odeint(rober_rates, y0, T_ROBER, **kw)
    assert ys.shape == (len(T_ROBER), 1000, 6) and np.all(np.isfinite(ys))
    assert np.all(info["status"] == "success")
    # one call per round over every live sample's rows, not one per sample
    total = info["total"]
    assert total["rhs_calls"] < total["nfev"] / 100
    assert total["nfev"] == info["nfev"].sum() and total["njev"] == info["njev"].sum()
    assert total["nlu"] == info["nlu"].sum() and total["failed"] == 0
    # the samples' own paths differ (their rates do)
    assert len(np.unique(info["accepted"])) > 10
    # in another order
    order = np.random.default_rng(2).permutation(1000)
    shuffled = nd.odeint(rober_rates, y0[order], T_ROBER, **kw)[0]
    assert_array_equal(shuffled, ys[:, order])
    # alone, as a 1-d state (f sees one row per call) and as a batch of one
    for s in np.random.default_rng(1).choice(1000, size=10, replace=False):
        alone, one_info = nd.odeint(rober_rates, y0[s], T_ROBER, **kw)
        assert_array_equal(alone, ys[:, s])
        assert one_info["nfev"] == info["nfev"][s] and one_info["accepted"] == info["accepted"][s]
    for s in (0, 999):
        assert_array_equal(nd.odeint(rober_rates, y0[s:s + 1], T_ROBER, **kw)[0][:, 0], ys[:, s])


@pytest.mark.parametrize("method", METHODS)
def test_difference_jacobians_bit_identical_alone_and_close_to_analytic(method):
    y0 = rober_batch(40, seed=3)
    kw = dict(method=method, rtol=1e-6, atol=1e-10, verbose=False)
    ys, info = nd.odeint(rober_rates, y0, T_ROBER, return_info=True, **kw)
    for s in (0, 17, 39):
        assert_array_equal(nd.odeint(rober_rates, y0[s], T_ROBER, **kw), ys[:, s])
    # chunks of other sizes, and two leading axes
    chunks = [nd.odeint(rober_rates, c, T_ROBER, **kw) for c in np.array_split(y0, [3, 25])]
    assert_array_equal(np.concatenate(chunks, axis=1), ys)
    assert_array_equal(nd.odeint(rober_rates, y0.reshape(8, 5, 6), T_ROBER, **kw).reshape(ys.shape), ys)
    exact = nd.odeint(rober_rates, y0, T_ROBER, jac=rober_rates_jac, **kw)
    scale = 1e-10 + 1e-6 * np.abs(exact)
    assert np.max(np.abs(ys - exact) / scale) < 50
    # difference rows are counted in nfev: d = 6 per Jacobian
    assert np.all(info["nfev"] >= 6 * info["njev"])


@pytest.mark.parametrize("method", METHODS)
def test_builtin_field_batch_bit_identical_alone(method):
    field = field_of("vdp1e3")
    y0 = np.stack([np.array([2.0, 0.0]) * s for s in np.linspace(0.5, 1.5, 9)])
    t = np.linspace(0.0, 300.0, 7)
    ys, info = nd.odeint(field, y0, t, method=method, rtol=1e-6, atol=1e-6, return_info=True)
    for s in (0, 4, 8):
        assert_array_equal(nd.odeint(field, y0[s], t, method=method, rtol=1e-6, atol=1e-6), ys[:, s])
    assert info["total"]["jac_calls"] > 0 and info["total"]["njev"] == info["njev"].sum()


# ---------------------------------------------------------------------------------------
# Exact solutions, dtypes, directions
# ---------------------------------------------------------------------------------------


def stiff_linear():
    """A with eigenvalues -1 and -1e4 and non-orthogonal eigenvectors."""
    V = np.array([[1.0, 2.0], [1.0, -1.0]])
    return V @ np.diag([-1.0, -1e4]) @ np.linalg.inv(V)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stiff_linear_field_against_expm(method, dtype):
    A = stiff_linear()
    y0 = np.array([[1.0, 0.0], [0.5, -2.0], [3.0, 1.0]], dtype=dtype)
    t = np.array([0.0, 1e-5, 1e-3, 0.1, 1.0, 5.0])
    rtol, atol = (1e-8, 1e-10) if dtype == np.float64 else (1e-4, 1e-6)
    ys, info = nd.odeint(nd.fields.Linear(A.astype(dtype)), y0, t, method=method, rtol=rtol, atol=atol,
                         return_info=True)
    assert ys.dtype == dtype
    exact = np.stack([y0.astype(np.float64) @ scipy_linalg.expm(A * ti).T for ti in t])
    err = np.abs(ys - exact) / (atol + rtol * np.abs(exact))
    assert err.max() < 30, err.max()
    # a stiff problem: an explicit method would need ~1e4 steps to reach t = 5 stably
    assert info["accepted"].max() < 400
    assert np.all(info["njev"] >= 1) and np.all(info["nlu"] >= 1)


@pytest.mark.parametrize("method", METHODS)
def test_float32_python_rhs_keeps_dtype(method):
    f, _, _, y0, t, *_ = PROBLEMS["robertson"]
    ys = nd.odeint(lambda t, y: f(t, y).astype(np.float32), np.array(y0, dtype=np.float32), t[:20],
                   method=method, rtol=1e-4, atol=1e-8, verbose=False)
    ref = reference("robertson")[:20]
    assert ys.dtype == np.float32
    assert np.max(np.abs(ys - ref) / (1e-8 + 1e-4 * np.abs(ref))) < 50


@pytest.mark.parametrize("method", METHODS)
def test_decreasing_times_and_scalar_state(method):
    # y' = -y from y(2) = 1 backwards: y(t) = exp(2 - t)
    t = np.array([2.0, 1.5, 0.0])
    ys = nd.odeint(lambda t, y: -y, 1.0, t, method=method, rtol=1e-9, atol=1e-12, verbose=False)
    assert ys.shape == (3,)
    assert_allclose(ys, np.exp(2.0 - t), rtol=1e-7)
    # a single output time returns y0 and does no work
    ys, info = nd.odeint(lambda t, y: -y, np.ones(3), [0.0], method=method, return_info=True, verbose=False)
    assert_array_equal(ys, np.ones((1, 3)))
    assert np.all(info["nfev"] == 0)


@pytest.mark.parametrize("method", METHODS)
def test_time_broadcasts_and_inputs_untouched(method):
    """In a batch f gets t as (m, 1), one time per row; y0 and t are left as given."""
    seen = []

    def f(t, y):
        seen.append((np.shape(t), y.shape))
        return -(1.0 + t) * y  # y' = -(1 + t) y: y(t) = y0 exp(-t - t^2/2)

    y0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.array([0.0, 0.5, 1.0])
    before = (y0.copy(), t.copy())
    ys = nd.odeint(f, y0, t, method=method, rtol=1e-9, atol=1e-12, verbose=False)
    assert_allclose(ys, y0[None] * np.exp(-t - t ** 2 / 2)[:, None, None], rtol=1e-6)
    assert all(ts[1] == 1 and ts[0] == ys_[0] and ys_[1] == 2 for ts, ys_ in seen)
    assert_array_equal(y0, before[0])
    assert_array_equal(t, before[1])


# ---------------------------------------------------------------------------------------
# Bad input and failures
# ---------------------------------------------------------------------------------------


def test_jac_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"jac\(t, y\) returned an array of shape \(3,\); expected \(3, 3\)"):
        nd.odeint(rober, np.array([1.0, 0, 0]), [0, 1], method="radau", jac=lambda t, y: y, verbose=False)
    with pytest.raises(ValueError, match=r"jac\(t, y\) returned an array of shape \(2, 3, 2\); expected \(2, 3, 3\)"):
        nd.odeint(lambda t, y: -y, np.ones((2, 3)), [0, 1], method="bdf", jac=lambda t, y: np.zeros((2, 3, 2)),
                  verbose=False)
    with pytest.raises(ValueError, match=r"f\(t, y\) returned an array of shape \(2,\); expected \(3,\)"):
        nd.odeint(lambda t, y: y[:2], np.ones(3), [0, 1], method="radau", verbose=False)


def _singular_jac(t, y):
    """So large that mu/h - J is exactly singular at every representable step for samples
    whose first value exceeds 1.5; the true Jacobian (-I) otherwise."""
    big = (y[..., 0] > 1.5)[..., None, None]
    return np.where(big, 1e300, -np.eye(y.shape[-1]))


@pytest.mark.parametrize("method", METHODS)
def test_unrecoverable_singular_newton_matrix(method):
    with pytest.raises(nd.IntegrationError, match="singular") as e:
        nd.odeint(lambda t, y: -y, np.full(2, 2.0), [0, 1], method=method, jac=_singular_jac, verbose=False)
    assert e.value.status == "singular" and e.value.t == 0.0
    # in a batch the failing sample leaves the others' results intact
    y0 = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]])
    with pytest.raises(nd.IntegrationError, match=r"1 of 3 samples failed; sample 1 stopped at t=0.0") as e:
        nd.odeint(lambda t, y: -y, y0, [0.0, 0.5, 1.0], method=method, jac=_singular_jac, rtol=1e-8,
                  atol=1e-10, verbose=False)
    err = e.value
    assert err.status.tolist() == ["success", "singular", "success"]
    assert_allclose(err.ys[:, [0, 2]], y0[None, [0, 2]] * np.exp(-np.array([0.0, 0.5, 1.0]))[:, None, None],
                    rtol=1e-6)
    assert np.all(np.isnan(err.ys[1:, 1]))
    assert err.t.tolist() == [1.0, 0.0, 1.0] and err.info["status"][1] == "singular"
    assert err.failed.tolist() == [1]
    # or the status instead of an exception
    ys, info = nd.odeint(lambda t, y: -y, y0, [0.0, 0.5, 1.0], method=method, jac=_singular_jac, rtol=1e-8,
                         atol=1e-10, on_failure="status", verbose=False)
    assert info["status"].tolist() == ["success", "singular", "success"] and info["total"]["failed"] == 1
    assert_array_equal(ys, err.ys)


@pytest.mark.parametrize("method", METHODS)
def test_failures_raise_clear_errors(method):
    kw = dict(method=method, verbose=False)
    with pytest.raises(ValueError, match="y0 must be finite, got nan"):
        nd.odeint(lambda t, y: -y, np.array([np.nan, 1.0]), [0, 1], **kw)
    with pytest.raises(ValueError, match=r"rtol must be finite and >= 0, got -1"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], rtol=-1.0, **kw)
    with pytest.raises(ValueError, match="t must be strictly increasing or strictly decreasing"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1, 1], **kw)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], max_steps=0, **kw)
    with pytest.raises(TypeError, match="a built-in field has its own Jacobian"):
        nd.odeint(nd.fields.Lorenz(), np.ones(3), [0, 1], jac=lambda t, y: None, **kw)
    with pytest.raises(TypeError, match="jac must be callable"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], jac=3, **kw)
    with pytest.raises(nd.IntegrationError, match="max_steps=30 steps were used") as e:
        nd.odeint(rober, np.array([1.0, 0, 0]), [0, 1e5], max_steps=30, **kw)
    assert e.value.status == "max_steps" and 0 < e.value.t < 1e5

    class Boom(Exception):
        pass

    def f(t, y):
        if t > 0.5:
            raise Boom("from f")
        return -y

    with pytest.raises(Boom, match="from f"):
        nd.odeint(f, np.ones(2), [0, 1], **kw)
    # a non-finite Jacobian fails the sample
    with pytest.raises(nd.IntegrationError, match="non-finite") as e:
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], jac=lambda t, y: np.full((2, 2), np.nan), **kw)
    assert e.value.status == "nonfinite"


def test_method_names_and_jac_with_explicit_methods():
    with pytest.raises(ValueError, match="'radau', 'bdf'"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], method="lsoda")
    with pytest.raises(TypeError, match="jac is used by the implicit methods"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0, 1], method="dopri5", jac=lambda t, y: -np.eye(2))
    assert nd._core.TABLES["stiff_methods"] == ("radau", "bdf", "auto")


@pytest.mark.parametrize("method", METHODS)
def test_coupled_batch_is_one_system(method):
    """coupled=True: the whole array is one state (here the rows interact), as the 1-d solve of
    its flattened values; jac is then (n, n)."""
    def f(t, Y):
        return -np.array([1.0, 1e3, 1e4]) * Y + 0.5 * np.roll(Y.ravel(), 1).reshape(Y.shape)

    def jac(t, Y):
        n = Y.size
        J = np.diag(-np.tile([1.0, 1e3, 1e4], n // 3)) + 0.5 * np.roll(np.eye(n), 1, axis=0)
        return J

    Y0 = np.arange(1.0, 7.0).reshape(2, 3)
    t = np.array([0.0, 0.01, 1.0])
    ys, info = nd.odeint(f, Y0, t, method=method, jac=jac, coupled=True, rtol=1e-8, atol=1e-10, return_info=True,
                         verbose=False)
    flat = nd.odeint(lambda t, y: f(t, y.reshape(2, 3)).ravel(), Y0.ravel(), t, method=method, jac=jac, rtol=1e-8,
                     atol=1e-10, verbose=False)
    assert_array_equal(ys.reshape(3, 6), flat)
    exact = np.stack([scipy_linalg.expm(jac(0, Y0) * ti) @ Y0.ravel() for ti in t])
    assert_allclose(flat, exact, rtol=1e-6, atol=1e-9)
    assert np.ndim(info["nfev"]) == 0
    with pytest.raises(ValueError, match="coupled=True with a built-in field"):
        nd.odeint(nd.fields.Lorenz(), np.ones((2, 3)), [0, 1], method=method, coupled=True)
    if method == "bdf":
        with pytest.raises(ValueError, match="dense_output is not available"):
            nd.odeint(f, Y0, t, method=method, dense_output=True)
    with pytest.raises(ValueError, match="events are not available"):
        nd.odeint(f, Y0, t, method=method, events=lambda t, y: y[0])


def test_radau_dense_output_against_expm():
    """The collocation polynomial of each sample's steps, anywhere in its interval."""
    A = stiff_linear()
    y0 = np.array([[1.0, 0.5], [-2.0, 1.0], [0.3, 0.3]])
    t = np.array([0.0, 0.2, 3.0])
    ys, info, sol = nd.odeint(nd.fields.Linear(A), y0, t, method="radau", rtol=1e-8, atol=1e-10, return_info=True,
                              dense_output=True)
    for x in (1e-5, 3e-4, 0.05, 0.2, 1.234, 3.0):
        exact = y0 @ scipy_linalg.expm(A * x).T
        assert_allclose(sol(x), exact, rtol=1e-5, atol=1e-7)
    assert_allclose(sol(t[-1]), ys[-1], rtol=1e-12, atol=1e-14)
    # one time per sample; outside the interval NaN
    per = sol(np.array([0.1, 1.0, 2.0]))
    assert_allclose(per[1], y0[1] @ scipy_linalg.expm(A * 1.0).T, rtol=1e-5, atol=1e-7)
    assert np.all(np.isnan(sol(4.0)))
    one, sol1 = nd.odeint(nd.fields.Linear(A), y0[1], t, method="radau", rtol=1e-8, atol=1e-10, dense_output=True)
    assert_array_equal(sol1(1.0), per[1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(5, 0), (0, 3), (0,), (2, 0, 3)], ids=str)
def test_empty_states(method, shape):
    ys, info = nd.odeint(lambda t, y: -y, np.ones(shape), [0.0, 1.0, 2.0], method=method, return_info=True,
                         verbose=False)
    assert ys.shape == (3,) + shape and info["total"]["nfev"] == 0
