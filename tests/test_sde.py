"""nd.sdeint: strong and weak orders, per-sample paths, dtypes, the NumPy twin, bad input and
failures (docs/models.md §0, §8).

Orders are measured against exact solutions on the path the solver used (geometric Brownian
motion from W(T); a linear additive problem from exactly sampled Gaussian functionals) or against
the twin (tests/reference_sde.py) on a much finer grid of the same Brownian path.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
import reference as ref
import reference_sde as rsde


def order(h, err):
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


# ---------------------------------------------------------------------------------------
# Strong orders
# ---------------------------------------------------------------------------------------

MU, SIGMA = 1.5, 1.0


def _gbm_error(method, dt, builtin, samples=4000):
    """Mean |X(1) - exact| for dX = MU X dt + SIGMA X dW, X(0) = 1: X(1) = exp(MU - SIGMA^2/2 + SIGMA W(1))."""
    y0 = np.ones((samples, 1))
    if builtin:
        f, g = nd.fields.Linear([[MU]]), nd.sde.Linear(SIGMA)
    else:  # callables: milstein takes the derivative-free form
        f, g = (lambda t, y: MU * y), (lambda t, y: SIGMA * y)
    ys, dW = nd.sdeint(f, g, y0, [0.0, 1.0], dt=dt, method=method, seed=11, return_brownian=True)
    exact = np.exp(MU - 0.5 * SIGMA**2 + SIGMA * dW.sum(axis=0))
    return float(np.mean(np.abs(ys[-1] - exact)))


@pytest.mark.parametrize("method, expected", [("euler_maruyama", 0.5), ("milstein", 1.0)])
@pytest.mark.parametrize("builtin", [True, False], ids=["builtin", "callable"])
def test_gbm_strong_order(method, expected, builtin):
    h = 2.0 ** -np.arange(4, 9)
    err = [_gbm_error(method, dt, builtin) for dt in h]
    assert order(h, err) == pytest.approx(expected, abs=0.15)


def test_milstein_derivative_sources_agree():
    # dg=, g.derivative and the built-in analytic derivative are the same scheme, to rounding
    y0 = np.full((300, 1), 0.8)
    ys, dW = nd.sdeint(nd.fields.Linear([[0.3]]), nd.sde.Linear(0.6), y0, [0, 1], dt=0.01, method="milstein",
                       seed=2, return_brownian=True)

    def g(t, y):
        return 0.6 * y

    with_dg = nd.sdeint(lambda t, y: 0.3 * y, g, y0, [0, 1], dt=0.01, method="milstein", brownian=dW,
                        dg=lambda t, y: np.full_like(y, 0.6))
    g.derivative = lambda t, y: np.full_like(y, 0.6)
    with_attr = nd.sdeint(lambda t, y: 0.3 * y, g, y0, [0, 1], dt=0.01, method="milstein", brownian=dW)
    assert_allclose(with_dg, ys, rtol=1e-12)
    assert_allclose(with_attr, ys, rtol=1e-12)


def _linear_additive_exact(h, samples, rng, a=-1.0, sigma=1.0):
    """dX = a X dt + sigma dW on [0, 1], X(0) = 1. Over a step, (dW, I_(1,0), J) with
    J = int_0^h e^(a (h - u)) dW(u) are jointly Gaussian (covariances of the integrands 1, h - u,
    e^(a (h - u))); sampled exactly, X' = e^(a h) X + sigma J is the exact solution on the path."""
    e = math.exp(a * h)
    c13 = (e - 1) / a
    c23 = e * (h / a - 1 / a**2) + 1 / a**2
    cov = np.array([[h, h * h / 2, c13], [h * h / 2, h**3 / 3, c23], [c13, c23, (e * e - 1) / (2 * a)]])
    L = np.linalg.cholesky(cov)
    steps = round(1 / h)
    z = rng.standard_normal((steps, samples, 3)) @ L.T
    x = np.ones(samples)
    for k in range(steps):
        x = e * x + sigma * z[k, :, 2]
    return z[..., 0:1].copy(), z[..., 1:2].copy(), x


def test_sra_strong_order_linear_exact_path():
    # With a linear drift every term of order 1.5 is reproduced and the error is O(h^2):
    # at least the promised 1.5.
    rng = np.random.default_rng(5)
    h = 2.0 ** -np.arange(2, 7)
    err = []
    for dt in h:
        dW, dZ, exact = _linear_additive_exact(dt, 2000, rng)
        ys = nd.sdeint(nd.fields.Linear([[-1.0]]), nd.sde.Constant(1.0), np.ones((2000, 1)), [0, 1], dt=dt,
                       noise="additive", method="sra", brownian=(dW, dZ))
        err.append(np.mean(np.abs(ys[-1, :, 0] - exact)))
    assert 1.35 < order(h, err) < 2.15
    assert err[-1] < 1e-3


def test_sra_strong_order_nonlinear():
    # dX = sin X dt + 2 dW: the reference is the twin on a 16x finer grid of the same path (its
    # error is 64x below the finest level's); coarse increments are exact sums of the fine ones.
    samples, fine = 3000, 2.0**-11
    rng = np.random.default_rng(3)
    dW, dZ = rsde.brownian_pairs(rng, round(1 / fine), fine, (samples, 1))

    def f(t, y):
        return np.sin(y)

    def g(t, y):
        return np.full_like(y, 2.0)

    y0 = np.full((samples, 1), 0.5)
    reference = rsde.sdeint(f, g, y0, [0, 1], fine, dW, dZ, noise="additive", method="sra")[-1]
    h = 2.0 ** -np.arange(3, 8)
    err = []
    for dt in h:
        w, z = rsde.coarsen(dW, dZ, fine, round(dt / fine))
        ys = nd.sdeint(f, g, y0, [0, 1], dt=dt, noise="additive", method="sra", brownian=(w, z))
        err.append(np.mean(np.abs(ys[-1] - reference)))
    assert order(h, err) == pytest.approx(1.5, abs=0.15)
    # Euler-Maruyama is strong order 1 on additive noise: far behind at the finest level
    w, z = rsde.coarsen(dW, dZ, fine, round(h[-1] / fine))
    em = nd.sdeint(f, g, y0, [0, 1], dt=h[-1], noise="additive", brownian=w)
    assert np.mean(np.abs(em[-1] - reference)) > 5 * err[-1]


# ---------------------------------------------------------------------------------------
# Weak order: Ornstein-Uhlenbeck moments
# ---------------------------------------------------------------------------------------


def test_ou_weak_order():
    # dX = -theta X dt + sigma dW from X(0) = 2: E X(1) = 2 e^-theta, Var X(1) = sigma^2 (1 - e^-2theta) / (2 theta).
    theta, sigma, x0, samples = 2.0, 1.0, 2.0, 400_000
    mean_exact = x0 * math.exp(-theta)
    var_exact = sigma**2 * (1 - math.exp(-2 * theta)) / (2 * theta)
    h = np.array([0.2, 0.1, 0.05, 0.025])
    mean_err, var_err = [], []
    for i, dt in enumerate(h):
        ys = nd.sdeint(nd.fields.Linear([[-theta]]), nd.sde.Constant(sigma), np.full((samples, 1), x0), [0, 1],
                       dt=dt, noise="additive", seed=100 + i, verbose=False)
        x = ys[-1, :, 0]
        mean_err.append(abs(x.mean() - mean_exact))
        var_err.append(abs(x.var(ddof=1) - var_exact))
        # the moments of the scheme's own recursion, within sampling error
        r = 1 - theta * dt
        n = round(1 / dt)
        assert x.mean() == pytest.approx(x0 * r**n, abs=4 * math.sqrt(var_exact / samples))
        v = sigma**2 * dt * (1 - r ** (2 * n)) / (1 - r * r)
        assert x.var(ddof=1) == pytest.approx(v, rel=4 * math.sqrt(2 / samples))
    assert order(h, mean_err) == pytest.approx(1.0, abs=0.15)
    assert order(h, var_err) == pytest.approx(1.0, abs=0.15)


# ---------------------------------------------------------------------------------------
# One path per sample, whatever the batch, its order and the threads
# ---------------------------------------------------------------------------------------


def _mlp_field(rng, d=3, hidden=16):
    return nd.fields.MLP([rng.uniform(-0.5, 0.5, (d, hidden)), rng.uniform(-0.5, 0.5, (hidden, d))],
                         [rng.uniform(-0.1, 0.1, hidden), None], activation="tanh")


def _problems(rng):
    """(name, f, g, noise, method) covering block mode (built-in) and whole-batch callbacks."""
    mlp = _mlp_field(rng)
    scale = rng.uniform(0.1, 0.4, 3)
    return [
        ("mlp-linear-milstein", mlp, nd.sde.Linear(scale), "diagonal", "milstein"),
        ("mlp-constant-sra", mlp, nd.sde.Constant(0.3), "additive", "sra"),
        ("lorenz-linear-em", nd.fields.Lorenz(), nd.sde.Linear(scale), "diagonal", "euler_maruyama"),
        ("callable-milstein", lambda t, y: -y + np.sin(t), lambda t, y: 0.2 * y + 0.1, "diagonal", "milstein"),
        ("callable-general", lambda t, y: -y, lambda t, y: np.stack([0.1 * y, 0.2 * np.ones_like(y)], -1),
         "general", "euler_maruyama"),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sample_alone_equals_sample_in_shuffled_batch(case, dtype, set_threads):
    rng = np.random.default_rng(case)
    name, f, g, noise, method = _problems(rng)[case]
    B = 200
    y0 = rng.uniform(-1, 1, (B, 3)).astype(dtype)
    t = [0.0, 0.2, 0.5]
    kw = dict(dt=0.01, noise=noise, method=method, seed=77)
    ids = np.arange(B)
    set_threads(1)
    full = nd.sdeint(f, g, y0, t, sample_ids=ids, **kw)
    perm = rng.permutation(B)
    for n in (1, 2):
        set_threads(n)
        shuffled = nd.sdeint(f, g, y0[perm], t, sample_ids=ids[perm], **kw)
        assert_array_equal(shuffled, full[:, perm])
    for i in (0, 63, 64, 199):
        alone = nd.sdeint(f, g, y0[i:i + 1], t, sample_ids=ids[i:i + 1], **kw)
        assert_array_equal(alone[:, 0], full[:, i], err_msg=name)


def test_batch_shape_and_default_ids():
    # the default id of a sample is its flat index: a (4, 5) batch is the (20,) batch reshaped
    y0 = np.linspace(-1, 1, 20 * 2).reshape(4, 5, 2)
    f, g = nd.fields.Linear([[-1.0, 0.5], [0.0, -2.0]]), nd.sde.Constant([0.3, 0.1])
    a = nd.sdeint(f, g, y0, [0, 1], dt=0.05, seed=4, noise="additive")
    b = nd.sdeint(f, g, y0.reshape(20, 2), [0, 1], dt=0.05, seed=4, noise="additive")
    assert a.shape == (2, 4, 5, 2)
    assert_array_equal(a.reshape(2, 20, 2), b)
    one = nd.sdeint(f, g, y0[2, 3], [0, 1], dt=0.05, seed=4, noise="additive", sample_ids=13)
    assert_array_equal(one, a[:, 2, 3])


def test_same_seed_same_path_every_method():
    y0 = np.ones((50, 2))
    kw = dict(dt=0.1, seed=9, return_brownian=True, noise="additive")
    _, w_em = nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.5), y0, [0, 1], method="euler_maruyama", **kw)
    _, w_mil = nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.5), y0, [0, 1], method="milstein", **kw)
    _, (w_sra, z_sra) = nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.5), y0, [0, 1], method="sra", **kw)
    assert_array_equal(w_em, w_mil)
    assert_array_equal(w_em, w_sra)
    # I_(1,0): variance h^3/3 and covariance h^2/2 with dW
    h = 0.1
    assert np.var(z_sra) == pytest.approx(h**3 / 3, rel=0.1)
    assert np.mean(w_sra * z_sra) == pytest.approx(h**2 / 2, rel=0.1)
    other = nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.5), y0, [0, 1], dt=0.1, seed=10, noise="additive")
    assert not np.array_equal(other, nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.5), y0, [0, 1], dt=0.1, seed=9,
                                               noise="additive"))


def test_generator_seed_and_replay():
    rng = np.random.default_rng(0)
    y0 = np.zeros((300, 1))
    ys, bm = nd.sdeint(lambda t, y: -y, lambda t, y: np.ones_like(y), y0, [0, 1], dt=0.1, seed=rng,
                       return_brownian=True)
    assert_array_equal(nd.sdeint(lambda t, y: -y, lambda t, y: np.ones_like(y), y0, [0, 1], dt=0.1, brownian=bm), ys)
    assert bm.shape == (10, 300, 1)
    assert_allclose(np.var(bm), 0.1, rtol=0.15)  # 3,000 draws: the estimate's sd is 2.6%
    # a Generator moves on: the next call draws another key
    assert not np.array_equal(nd.sdeint(lambda t, y: -y, lambda t, y: np.ones_like(y), y0, [0, 1], dt=0.1,
                                        seed=rng), ys)


# ---------------------------------------------------------------------------------------
# The NumPy twin on the same increments
# ---------------------------------------------------------------------------------------

TWIN_CASES = [
    ("euler_maruyama", "diagonal"), ("euler_maruyama", "additive"), ("euler_maruyama", "general"),
    ("milstein", "diagonal"), ("milstein", "additive"), ("sra", "additive"),
]


@pytest.mark.parametrize("method, noise", TWIN_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twin_agreement(method, noise, dtype):
    rng = np.random.default_rng(1)
    A = rng.uniform(-1, 1, (3, 3)) - 2 * np.eye(3)
    b = rng.uniform(-1, 1, 3)
    y0 = rng.uniform(-1, 1, (7, 3)).astype(dtype)
    t = [0.0, 0.3, 0.35, 1.0]
    field = nd.fields.Linear(A, b)
    if noise == "general":
        sig = rng.uniform(-0.5, 0.5, (3, 2))
        g, g_twin = nd.sde.Constant(sig), (lambda t, y: np.broadcast_to(sig, y.shape + (2,)).astype(y.dtype))
    elif noise == "additive":
        sig = rng.uniform(0.1, 0.5, 3)
        g, g_twin = nd.sde.Constant(sig), (lambda t, y: np.broadcast_to(sig, y.shape).astype(y.dtype))
    else:
        s, c = rng.uniform(0.1, 0.5, 3), rng.uniform(-0.2, 0.2, 3)
        g, g_twin = nd.sde.Linear(s, c), (lambda t, y: (s * y + c).astype(y.dtype))
    ys, bm = nd.sdeint(field, g, y0, t, dt=0.02, noise=noise, method=method, seed=3, return_brownian=True)
    dW, dZ = bm if method == "sra" else (bm, None)
    dg = (lambda t, y: np.broadcast_to(s, y.shape).astype(y.dtype)) if noise == "diagonal" else None
    f_twin = ref.linear(A, b)
    twin = rsde.sdeint(lambda t, y: f_twin(t, y).astype(dtype), g_twin, y0, t, 0.02, dW, dZ, noise=noise,
                       method=method, dg=dg, dtype=dtype)
    assert ys.dtype == dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert_allclose(ys, twin, rtol=tol, atol=tol)
    # the same problem through callables: the kernel's whole-batch path
    ys_cb = nd.sdeint(lambda t, y: field(t, y), lambda t, y: g(t, y), y0, t, dt=0.02, noise=noise, method=method,
                      brownian=bm, dg=dg if method == "milstein" else None)
    assert_allclose(ys_cb, ys, rtol=tol, atol=tol)


def test_milstein_derivative_free_twin():
    rng = np.random.default_rng(4)
    y0 = rng.uniform(0.5, 1.5, (6, 2))

    def f(t, y):
        return np.cos(t) - y

    def g(t, y):
        return 0.3 * np.sin(y) + 0.2

    ys, dW = nd.sdeint(f, g, y0, [0, 0.5, 1], dt=0.05, method="milstein", seed=8, return_brownian=True)
    twin = rsde.sdeint(f, g, y0, [0, 0.5, 1], 0.05, dW, method="milstein")
    assert_allclose(ys, twin, rtol=1e-12, atol=1e-13)


def test_float32_follows_float64_on_its_path():
    # float32 draws its own normals (four per Philox block, in single precision); on its path, a
    # float64 run gives the same solution up to float32 rounding
    y0 = np.linspace(0.5, 1.5, 40).reshape(20, 2)
    f, g = nd.fields.Linear([[-1.0, 0.2], [0.1, -0.5]]), nd.sde.Linear([0.3, 0.2])
    y32, dW = nd.sdeint(f, g, y0.astype(np.float32), [0, 1], dt=0.01, seed=1, method="milstein",
                        return_brownian=True)
    y64 = nd.sdeint(f, g, y0, [0, 1], dt=0.01, method="milstein", brownian=dW.astype(np.float64))
    assert y32.dtype == np.float32 and y64.dtype == np.float64 and dW.dtype == np.float32
    assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    # and its increments are N(0, dt) like float64's
    _, big = nd.sdeint(f, g, np.ones((5000, 2), np.float32), [0, 1], dt=0.1, seed=2, return_brownian=True)
    z = big.ravel() / np.sqrt(0.1)
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.02
    assert abs(np.mean(z**4) - 3) < 0.1  # Gaussian kurtosis


# ---------------------------------------------------------------------------------------
# Bad input and failures
# ---------------------------------------------------------------------------------------


def _call(**kw):
    args = dict(f=nd.fields.Linear([[-1.0]]), g=nd.sde.Linear(0.5), y0=np.ones((3, 1)), t=[0.0, 1.0], dt=0.1)
    args.update(kw)
    return nd.sdeint(args.pop("f"), args.pop("g"), args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize("kw, error, match", [
    (dict(dt=0.0), ValueError, "dt must be a finite number > 0, got 0"),
    (dict(dt=-0.5), ValueError, "dt must be a finite number > 0, got -0.5"),
    (dict(dt=float("nan")), ValueError, "dt must"),
    (dict(dt=None), TypeError, "dt must be a real number"),
    (dict(method="heun"), ValueError, "method='heun' is not one of"),
    (dict(noise="scalar"), ValueError, "noise='scalar' is not one of"),
    (dict(method="sra"), ValueError, "method 'sra' does not apply to diagonal noise"),
    (dict(method="milstein", noise="general", g=nd.sde.Constant(np.ones((1, 2)))), ValueError,
     "method 'milstein' does not apply to general noise"),
    (dict(noise="additive"), ValueError, "g depends on the state"),
    (dict(g=nd.sde.Constant([0.1, 0.2])), ValueError, r"sigma has shape \(2,\); expected \(1,\)"),
    (dict(g=nd.sde.Constant(np.ones((1, 2)))), ValueError, "pass noise='general'"),
    (dict(noise="general", g=nd.sde.Constant(0.3)), ValueError, r"needs sigma of shape \(d, m\)"),
    (dict(g=lambda t, y: y[:, :0]), ValueError, r"g\(t, y\) returned an array of shape \(3, 0\); expected \(3, 1\)"),
    (dict(g=lambda t, y: y, noise="general", m=2), ValueError, r"expected \(3, 1, 2\), y.shape \+ \(m,\)"),
    (dict(f=lambda t, y: y[0]), ValueError, r"f\(t, y\) returned an array of shape \(1,\)"),
    (dict(y0=np.array([[np.nan]])), ValueError, "y0 contains NaN or inf"),
    (dict(y0=np.ones((3, 2))), ValueError, "y0 must have a last axis of the drift field's size 1"),
    (dict(t=[0.0, 1.0, 0.5]), ValueError, "t must be strictly increasing"),
    (dict(t=[0.0, np.inf]), ValueError, "t must hold finite times"),
    (dict(brownian=np.zeros((5, 3, 1))), ValueError, r"dW has shape \(5, 3, 1\); expected \(10, 3, 1\)"),
    (dict(method="sra", noise="additive", g=nd.sde.Constant(1.0), brownian=np.zeros((10, 3, 1))), TypeError,
     r"the pair \(dW, dZ\)"),
    (dict(sample_ids=[0, 1, -2]), ValueError, "sample_ids must be >= 0"),
    (dict(sample_ids=[0, 1]), ValueError, r"sample_ids has shape \(2,\)"),
    (dict(f="drift"), TypeError, "f must be callable"),
    (dict(g=3.0), TypeError, "g must be callable"),
    (dict(args=(1,)), TypeError, "args are passed to a callable"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(y0=np.ones((3, 1), dtype=complex)), TypeError, "y0 has dtype complex128"),
])
def test_bad_input(kw, error, match):
    with pytest.raises(error, match=match):
        _call(**kw)


def test_diffusion_parameters_checked():
    with pytest.raises(ValueError, match="sigma contains NaN"):
        nd.sde.Constant([1.0, np.nan])
    with pytest.raises(ValueError, match="scale must have 0 or 1 axes"):
        nd.sde.Linear(np.ones((2, 2)))


def test_nonfinite_sample_stops_alone():
    # dX = X^2 dt + 0.1 dW blows up before t = 1 from X(0) = 2, not from -1 or -0.5
    y0 = np.array([[-1.0], [2.0], [-0.5]])

    def f(t, y):
        with np.errstate(over="ignore"):
            return y * y

    kw = dict(dt=0.01, seed=5)
    with pytest.raises(nd.IntegrationError, match="1 of 3 samples became NaN or inf") as info:
        nd.sdeint(f, nd.sde.Constant(0.1), y0, [0, 0.5, 1], **kw)
    e = info.value
    assert e.status == "nonfinite"
    assert_array_equal(e.failed, [False, True, False])
    assert e.t[0] == 1.0 and 0.4 < e.t[1] < 0.8 and e.t[2] == 1.0
    assert np.isnan(e.ys[2, 1, 0]) and np.isfinite(e.ys[1, 1, 0])
    others = nd.sdeint(f, nd.sde.Constant(0.1), y0[[0, 2]], [0, 0.5, 1], sample_ids=[0, 2], **kw)
    assert_array_equal(others, e.ys[:, [0, 2]])


def test_callback_exception_propagates():
    def g(t, y):
        if t > 0.5:
            raise KeyError("boom")
        return np.ones_like(y)

    with pytest.raises(KeyError, match="boom"):
        nd.sdeint(lambda t, y: -y, g, np.ones(2), [0, 1], dt=0.1)


def test_general_noise_m_inferred_and_shapes():
    def g(t, y):
        return np.stack([y, np.ones_like(y), -y], axis=-1)

    ys, dW = nd.sdeint(lambda t, y: -y, g, np.ones((4, 2)), [0, 0.5], dt=0.1, noise="general",
                       return_brownian=True, seed=0)
    assert ys.shape == (2, 4, 2) and dW.shape == (5, 4, 3)
    sig = np.array([[1.0, 0.0, 2.0], [0.0, -1.0, 0.5]])
    ys, dW = nd.sdeint(nd.fields.Linear(np.zeros((2, 2))), nd.sde.Constant(sig), np.zeros(2), [0, 0.1], dt=0.1,
                       noise="general", return_brownian=True, seed=0)
    assert_allclose(ys[-1], sig @ dW[0], rtol=1e-14)


def test_inputs_not_modified_and_layouts():
    y0 = np.asfortranarray(np.linspace(0, 1, 12).reshape(6, 2))
    y0.setflags(write=False)
    keep = y0.copy()
    a = nd.sdeint(lambda t, y: -y, nd.sde.Constant([0.1, 0.2]), y0, [0, 1], dt=0.1, seed=1)
    assert_array_equal(y0, keep)
    b = nd.sdeint(lambda t, y: -y, nd.sde.Constant([0.1, 0.2]), np.ascontiguousarray(keep), [0, 1], dt=0.1, seed=1)
    assert_array_equal(a, b)


def test_empty_batch_and_single_time():
    ys, dW = nd.sdeint(nd.fields.Linear([[-1.0]]), nd.sde.Linear(0.5), np.ones((0, 1)), [0, 1], dt=0.1,
                       return_brownian=True)
    assert ys.shape == (2, 0, 1) and dW.shape == (10, 0, 1)
    ys = nd.sdeint(nd.fields.Linear([[-1.0]]), nd.sde.Linear(0.5), np.ones((3, 1)), [0.5], dt=0.1)
    assert_array_equal(ys, np.ones((1, 3, 1)))


def test_step_count_rounds_half_away():
    # 0.25 / 0.1 = 2.5 -> 3 steps; the output times are hit exactly
    _, dW = nd.sdeint(lambda t, y: 0 * y, lambda t, y: np.ones_like(y), np.zeros(1), [0, 0.25, 0.5], dt=0.1,
                      return_brownian=True)
    assert dW.shape == (6, 1)


def test_diffusion_objects():
    g = nd.sde.Linear([0.5, 2.0], offset=1.0)
    y = np.array([[1.0, 2.0]])
    assert_array_equal(g(0.0, y), [[1.5, 5.0]])
    assert_array_equal(g.derivative(0.0, y), [[0.5, 2.0]])
    c = nd.sde.Constant(np.ones((2, 3)))
    assert c(0.0, y).shape == (1, 2, 3)
    assert "Linear" in repr(g) and "Constant" in repr(c)
    import pickle
    g2 = pickle.loads(pickle.dumps(g))
    assert_array_equal(g2.scale, g.scale) and not g2.scale.flags.writeable


# ---------------------------------------------------------------------------------------
# Gradients through Euler-Maruyama on a fixed path, against central differences
# ---------------------------------------------------------------------------------------


def _fd_check(build, params, y0, t, dt, noise, seed=0, h=1e-6):
    """build(params) -> (f, g); compares sdeint_vjp with central differences of sum(c * ys)."""
    f, g = build(params)
    ys, dW = nd.sdeint(f, g, y0, t, dt=dt, noise=noise, seed=seed, return_brownian=True)
    c = np.random.default_rng(1).uniform(-1, 1, ys.shape)

    def loss(p, y):
        f_, g_ = build(p)
        return float(np.sum(c * nd.sdeint(f_, g_, y, t, dt=dt, noise=noise, brownian=dW)))

    y0bar, fg, gg = nd.sde.sdeint_vjp(f, g, y0, t, c, dt=dt, brownian=dW, noise=noise)
    analytic = [y0bar] + [a for a in fg + gg if a is not None]
    names = ["y0"] + [n for n, a in zip(params["order"], fg + gg) if a is not None]
    values = [y0] + [params[n] for n in names[1:]]
    for name, value, grad in zip(names, values, analytic):
        value = np.asarray(value, dtype=np.float64)
        fd = np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[idx] += h
            down[idx] -= h
            if name == "y0":
                fd[idx] = (loss(params, up) - loss(params, down)) / (2 * h)
            else:
                fd[idx] = (loss({**params, name: up}, y0) - loss({**params, name: down}, y0)) / (2 * h)
        assert_allclose(np.asarray(grad, dtype=np.float64).reshape(fd.shape), fd, rtol=1e-5, atol=1e-7,
                        err_msg=name)


def test_vjp_linear_drift_linear_diffusion():
    rng = np.random.default_rng(0)
    params = {"A": rng.uniform(-1, 1, (2, 2)), "b": rng.uniform(-1, 1, 2), "scale": rng.uniform(0.1, 0.5, 2),
              "offset": rng.uniform(-0.2, 0.2, 2), "order": ["A", "b", "scale", "offset"]}
    _fd_check(lambda p: (nd.fields.Linear(p["A"], p["b"]), nd.sde.Linear(p["scale"], p["offset"])), params,
              rng.uniform(-1, 1, (3, 2)), [0.0, 0.3, 0.5], 0.05, "diagonal")


def test_vjp_mlp_drift_constant_diffusion():
    rng = np.random.default_rng(1)
    params = {"W1": rng.uniform(-0.5, 0.5, (2, 5)), "b1": rng.uniform(-0.1, 0.1, 5),
              "W2": rng.uniform(-0.5, 0.5, (5, 2)), "sigma": rng.uniform(0.1, 0.4, 2),
              "order": ["W1", "b1", "W2", "b2", "sigma"]}
    _fd_check(lambda p: (nd.fields.MLP([p["W1"], p["W2"]], [p["b1"], None]), nd.sde.Constant(p["sigma"])), params,
              rng.uniform(-1, 1, (4, 2)), [0.0, 0.2], 0.02, "additive")


def test_vjp_lorenz_general_noise():
    rng = np.random.default_rng(2)
    params = {"sigma_m": rng.uniform(-0.5, 0.5, (3, 2)), "order": ["s", "r", "beta", "sigma_m"]}
    y0 = rng.uniform(-1, 1, (2, 3))
    f = nd.fields.Lorenz()
    ys, dW = nd.sdeint(f, nd.sde.Constant(params["sigma_m"]), y0, [0, 0.1], dt=0.01, noise="general", seed=0,
                       return_brownian=True)
    c = np.ones_like(ys)
    y0bar, (ds, dr, db), (dsig,) = nd.sde.sdeint_vjp(f, nd.sde.Constant(params["sigma_m"]), y0, [0, 0.1], c,
                                                      dt=0.01, brownian=dW, noise="general")
    h = 1e-6

    def loss(**kw):
        return np.sum(c * nd.sdeint(nd.fields.Lorenz(**kw), nd.sde.Constant(params["sigma_m"]), y0, [0, 0.1], dt=0.01,
                                    noise="general", brownian=dW))

    for name, grad, base in (("sigma", ds, 10.0), ("rho", dr, 28.0), ("beta", db, 8.0 / 3.0)):
        fd = (loss(**{name: base + h}) - loss(**{name: base - h})) / (2 * h)
        assert grad == pytest.approx(fd, rel=1e-5, abs=1e-7), name
    assert dsig.shape == (3, 2) and y0bar.shape == y0.shape


def test_vjp_refusals():
    f, g = nd.fields.Linear([[-1.0]]), nd.sde.Linear(0.5)
    y0 = np.ones((2, 1))
    ys, dW = nd.sdeint(f, g, y0, [0, 1], dt=0.1, seed=0, return_brownian=True)
    with pytest.raises(NotImplementedError, match="milstein is not differentiated"):
        nd.sde.sdeint_vjp(f, g, y0, [0, 1], ys, dt=0.1, brownian=dW, method="milstein")
    with pytest.raises(NotImplementedError, match="built-in drift field"):
        nd.sde.sdeint_vjp(lambda t, y: -y, g, y0, [0, 1], ys, dt=0.1, brownian=dW)
    with pytest.raises(ValueError, match=r"ybar has shape \(2, 2\); expected \(2, 2, 1\)"):
        nd.sde.sdeint_vjp(f, g, y0, [0, 1], ys[..., 0], dt=0.1, brownian=dW)
    with pytest.raises(ValueError, match=r"dW has shape \(5, 2, 1\)"):
        nd.sde.sdeint_vjp(f, g, y0, [0, 1], ys, dt=0.1, brownian=dW[:5])


# ---------------------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ctrl_c_stops_a_builtin_run(n_threads, set_threads):
    from test_interrupt import ctrl_c_after

    set_threads(n_threads)
    with ctrl_c_after():
        nd.sdeint(nd.fields.Lorenz(), nd.sde.Linear(0.1), np.ones((2000, 3)), [0.0, 1e4], dt=1e-3, seed=0)


def test_ctrl_c_stops_a_python_drift():
    from test_interrupt import ctrl_c_after

    with ctrl_c_after():
        nd.sdeint(lambda t, y: -y, nd.sde.Constant(0.1), np.ones(4), [0.0, 1e6], dt=1e-3, noise="additive")
