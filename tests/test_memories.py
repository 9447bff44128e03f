"""Associative memories as dynamical systems (docs/models.md §9, §10).

Fields, energies and Jacobians are compared with the dense float64 twins of
tests/reference_memories.py (W formed as N x N); eigenvalues from the (P+1)-dimensional
method with numpy.linalg.eigvalsh on N x N matrices; the check values and experiments are
those of docs/models.md, with the measured figures stated in each test.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import _core

import reference_memories as ref

M = nd.memories
DTYPES = (np.float32, np.float64)

# docs/models.md §9: (activation, threshold x*, a) -> lambda_max of -I + D^1/2 W D^1/2
CHECK_VALUES = [("sigmoid", 0.2, -0.3, -0.9998), ("sigmoid", 0.8, -0.3, 6.036),
                ("rectified_tanh", 0.2, -0.3, -0.9821), ("rectified_tanh", 0.8, -0.3, 5.024),
                ("sigmoid", 0.2, 0.1, -0.5695), ("rectified_tanh", 0.2, 0.1, -0.9864)]


@pytest.fixture(scope="module")
def balanced():
    return M.balanced_patterns(1000, 0.2)


def rate_net(X, act="sigmoid", thr=0.2, a=-0.3, dtype=np.float64, **kw):
    return nd.FiringRateMemory(X, a=a, b=0.95, activation=act, gain=4.8, threshold=thr, dtype=dtype, **kw)


# ---- the design's check values --------------------------------------------------------------------

@pytest.mark.parametrize("act,thr,a,want", CHECK_VALUES)
def test_check_values_lambda_max(balanced, act, thr, a, want):
    net = rate_net(balanced, act, thr, a)
    lam = net.stability()["lambda_max"]
    assert lam.shape == (6,)
    # to the 4 significant digits the table gives
    np.testing.assert_allclose(lam, want, atol=0.5 * 10.0 ** (np.floor(np.log10(abs(want))) - 3))
    # confirmed by a dense N x N eigensolver (all memories of the balanced set are alike: memory 0)
    dense = ref.lambda_max_dense(balanced, a, 0.95, 0.2, 0.2, act, 4.8, thr, 0)
    assert abs(lam[0] - dense) <= 1e-10
    assert net.stability()["stable"].all() == (want < 0)


def test_stability_per_memory_matches_dense_on_random_memories():
    X = M.bernoulli_patterns(5, 300, 0.25, seed=4)
    net = nd.FiringRateMemory(X, a=-0.2, b=0.9, gain=2.0, threshold=0.4, dtype="float64")
    lam = net.stability()["lambda_max"]
    q = net.q
    dense = [ref.lambda_max_dense(X, -0.2, 0.9, q, q, "sigmoid", 2.0, 0.4, mu) for mu in range(5)]
    np.testing.assert_allclose(lam, dense, atol=1e-10)


@pytest.mark.parametrize("act,thr,a,_", CHECK_VALUES)
def test_equilibrium_residual_balanced_set(balanced, act, thr, a, _):
    # -x* + W phi(x*) at every memory's target currents, through the rank-(P+1) field
    assert rate_net(balanced, act, thr, a).equilibrium_residual() <= 1e-12


def test_closed_form_conditions(balanced):
    stable = rate_net(balanced, "sigmoid", 0.2).stability()
    assert stable["sufficient"] and not stable["unstable"]
    unstable = rate_net(balanced, "sigmoid", 0.8).stability()
    assert unstable["unstable"] and not unstable["sufficient"]
    d = rate_net(balanced).design
    ap = (0.95 + 0.3) / (d["phi_b"] - d["phi_a"])
    assert d["alpha_prime"] == pytest.approx(ap, rel=1e-14)
    assert d["sufficient"] == pytest.approx(max(d["dphi_a"], d["dphi_b"]) * max(ap, d["gamma"]), rel=1e-14)


def test_phase_diagram(balanced):
    net = rate_net(balanced)
    gains, ths = np.array([2.0, 4.8]), np.array([0.2, 0.5, 0.8, 1.2])
    pd = net.phase_diagram(gains, ths)
    assert pd["lambda_max"].shape == (2, 4)
    np.testing.assert_allclose(pd["lambda_max"][1, [0, 2]], [-0.99978, 6.03627], atol=1e-4)
    for i, g in enumerate(gains):
        for j, th in enumerate(ths):
            if np.isnan(pd["lambda_max"][i, j]):
                continue
            one = nd.FiringRateMemory(balanced, a=-0.3, b=0.95, gain=g, threshold=th, dtype="float64")
            assert pd["lambda_max"][i, j] == pytest.approx(one.stability()["lambda_max"].max(), abs=1e-12)
    # rectified tanh with the threshold above b: phi(b) = phi(a) = 0, no design: NaN, not stable
    rt = rate_net(balanced, "rectified_tanh").phase_diagram([4.8], [0.2, 1.0])
    assert np.isnan(rt["lambda_max"][0, 1]) and not rt["stable"][0, 1] and rt["stable"][0, 0]


# ---- the rank-structured fields against dense W -----------------------------------------------------

def test_rate_and_current_fields_equal_dense(balanced):
    rng = np.random.default_rng(0)
    for act in ("sigmoid", "rectified_tanh"):
        net = rate_net(balanced, act)
        d = net.design
        W = ref.rate_weights(balanced, d["alpha"], d["beta"], d["gamma"])
        np.testing.assert_allclose(net.dense_weights(), W, rtol=0, atol=1e-14)
        r = rng.random((3, 1000))
        u = rng.normal(0, 0.1, 1000)
        np.testing.assert_allclose(net(r, u), ref.rate_rhs(W, act, 4.8, 0.2, r, u), rtol=0, atol=1e-12)
        x = rng.normal(0, 1, (3, 1000))
        np.testing.assert_allclose(net(x, u, form="current"), ref.current_rhs(W, act, 4.8, 0.2, x, u),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "hardtanh"])
@pytest.mark.parametrize("zd", [False, True])
def test_idp_and_additive_fields_equal_dense(act, zd):
    rng = np.random.default_rng(1)
    X = M.random_patterns(7, 200, seed=2)
    net = nd.IDPHopfield(X, activation=act, gain=3.0, zero_diagonal=zd, tau=0.5, dtype="float64")
    x = rng.normal(0, 1, (4, 200))
    u = rng.normal(0, 1, (4, 200))
    a = net.saliencies(u)
    np.testing.assert_allclose(a, u @ X.T / 200, atol=1e-14)
    want = np.stack([ref.hopfield_rhs(ref.idp_weights(X, a[b], zd), act, 3.0, x[b], tau=0.5) for b in range(4)])
    np.testing.assert_allclose(net(x, u), want, rtol=0, atol=1e-12)
    W = ref.idp_weights(X, np.ones(7), zd)
    add = net.additive_field(u[0])
    np.testing.assert_allclose(add(0.0, x), ref.hopfield_rhs(W, act, 3.0, x, u[0], tau=0.5), rtol=0, atol=1e-12)
    # energies
    E = net.energy(x, u)
    want = [ref.hopfield_energy(ref.idp_weights(X, a[b], zd), act, 3.0, x[b:b + 1])[0] for b in range(4)]
    np.testing.assert_allclose(E, want, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(add.energy(x), ref.hopfield_energy(W, act, 3.0, x, u[0]), rtol=1e-12, atol=1e-10)


def test_rate_energy_matches_quadrature():
    X = M.bernoulli_patterns(3, 40, 0.3, seed=1)
    rng = np.random.default_rng(2)
    for act in ("sigmoid", "rectified_tanh"):
        net = nd.FiringRateMemory(X, a=-0.2, b=1.0, activation=act, gain=2.0, threshold=0.1, dtype="float64")
        d = net.design
        W = ref.rate_weights(X, d["alpha"], d["beta"], d["gamma"])
        r = rng.random((2, 40))
        u = rng.normal(0, 0.1, 40)
        np.testing.assert_allclose(net.energy(r, u), ref.rate_energy(W, act, 2.0, 0.1, r, u), rtol=1e-7)
        # the closed forms are finite at both ends of the rates' range
        assert np.isfinite(net.energy(np.array([[0.0] * 20 + [1.0] * 20]))).all()


@pytest.mark.parametrize("form", ["rate", "current"])
def test_rate_energy_never_increases(form):
    # 20 random starts, 200 times each, u = 0 and a constant input
    X = M.bernoulli_patterns(8, 400, 0.2, seed=3)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    rng = np.random.default_rng(4)
    t = np.linspace(0.0, 10.0, 200)
    for u in (None, rng.normal(0, 0.05, 400)):
        if form == "rate":
            y0 = rng.random((20, 400))
            ys = nd.odeint(net.field("rate", u), y0, t, rtol=1e-10, atol=1e-12, verbose=False)
            rates = ys
        else:
            y0 = rng.normal(0, 1, (20, 400))
            ys = nd.odeint(net.field("current", u), y0, t, rtol=1e-10, atol=1e-12, verbose=False)
            rates = net.phi(ys)
        E = net.energy(rates, u)  # (200, 20)
        steps = np.diff(E, axis=0)
        assert steps.max() <= 1e-9 * np.abs(E).max(), steps.max()
        assert (E[-1] < E[0]).all()


# ---- Jacobians --------------------------------------------------------------------------------------

def central_jacobian(field, y, h=1e-6):
    J = np.empty(y.shape + (y.shape[-1],))
    for c in range(y.shape[-1]):
        e = np.zeros_like(y)
        e[..., c] = h
        J[..., c] = (field(0.0, y + e) - field(0.0, y - e)) / (2 * h)
    return J


def test_jacobians_against_central_differences():
    rng = np.random.default_rng(5)
    Xb = M.bernoulli_patterns(3, 24, 0.4, seed=6)
    Xs = M.hadamard_patterns(3, 32, seed=6)
    rate = nd.FiringRateMemory(Xb, a=-0.3, b=0.9, gain=2.0, threshold=0.1, tau=0.7, dtype="float64")
    idp = nd.IDPHopfield(Xs, activation="tanh", gain=1.5, zero_diagonal=True, dtype="float64")
    seq = nd.SequentialHopfield(Xs, sequence=[0, 1, 2], kappa=5.0, eps=0.3, leak=2.0, activation="tanh",
                                gain=1.5, dtype="float64")
    near0 = 0.6 * Xs[0] + 0.05 * rng.normal(size=32)
    cases = [(rate.field("rate"), rng.random((2, 24))),
             (rate.field("current", rng.normal(0, 0.1, 24)), rng.normal(0, 1, (2, 24))),
             (rate.field("rate", per_sample_input=True), np.c_[rng.random((2, 24)), rng.normal(0, 0.1, (2, 24))]),
             (idp.field(), np.c_[rng.normal(0, 0.5, (2, 32)), [[1.5, 0.7, 2.0], [0.3, 1.0, 1.2]]]),
             (idp.field([1.5, 0.7, 2.0]), rng.normal(0, 0.5, (2, 32))),
             (idp.additive_field(per_sample_input=True), rng.normal(0, 0.5, (2, 64))),
             (seq.field(), np.r_[np.r_[near0, [1.5, 0.7, 0.2]][None], np.c_[rng.normal(0, .5, (1, 32)), [[1, 2, 3]]]])]
    for field, y in cases:
        J = field.jacobian(0.0, y)
        assert J.shape == y.shape + (y.shape[-1],)
        np.testing.assert_allclose(J, central_jacobian(field, y), rtol=0, atol=2e-7, err_msg=repr(field))


def test_implicit_methods_with_the_analytic_jacobians():
    # radau and bdf take the fields' Jacobians from C (nd_field_jac -> nd_memory_field_jac)
    X = M.bernoulli_patterns(5, 200, 0.25, seed=7)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    cues = net.cues(np.arange(5), 0.7, seed=9)
    ref = net.recall(cues, 10.0, rtol=1e-10, atol=1e-12, n_times=2, verbose=False).final
    for method, tol in (("radau", 1e-6), ("bdf", 2e-5)):
        res = net.recall(cues, 10.0, method=method, rtol=1e-6, atol=1e-8, n_times=2, verbose=False)
        assert (res.retrieved == np.arange(5)).all()
        np.testing.assert_allclose(res.final, ref, atol=tol)
    seq = nd.SequentialHopfield(M.hadamard_patterns(3, 32, seed=0), sequence=[0, 1, 2], kappa=5.0, eps=0.1,
                                activation="tanh", gain=2.0, dtype="float64")
    y0 = np.r_[np.random.default_rng(1).normal(size=32) * 0.5, [2.0, 0.5, 0.1]][None]
    ya = nd.odeint(seq.field(), y0, [0.0, 5.0], method="radau", rtol=1e-8, atol=1e-10, verbose=False)
    yb = nd.odeint(seq.field(), y0, [0.0, 5.0], rtol=1e-10, atol=1e-12, verbose=False)
    np.testing.assert_allclose(ya, yb, atol=1e-6)


# ---- recall -----------------------------------------------------------------------------------------

def test_retrieval_experiment():
    # docs/models.md §9: N = 1000, q = 0.2, P = floor(N / (10 ln N)) = 14, sigmoid rho = 4.8,
    # x* = 0.2, a = -0.3, b = 0.95, dt = 0.01, T = 10, cues keep each active unit w.p. 0.6
    N, q = 1000, 0.2
    P = int(N / (10 * np.log(N)))
    assert P == 14
    X = M.bernoulli_patterns(P, N, q, seed=1)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    cues = net.cues(np.arange(P), 0.6, seed=2)
    res = net.recall(cues, 10.0, method="euler", dt=0.01, verbose=False)
    phib = net.design["phi_b"]
    # every cued memory is retrieved: its overlap within 0.02 of phi(b), the others near q
    assert (res.retrieved == np.arange(P)).all()
    held = res.overlaps[-1, np.arange(P), np.arange(P)]
    assert np.abs(held - phib).max() <= 0.02
    others = res.overlaps[-1][~np.eye(P, dtype=bool)]
    # (measured: 0.0995 to 0.305, mean 0.200: the memories' own overlaps, binomial around q)
    assert np.abs(others - q).max() <= 0.15 and abs(others.mean() - q) <= 0.01
    # the same with the adaptive default and the current form
    assert (net.recall(cues, 10.0, form="current", verbose=False).retrieved == np.arange(P)).all()
    # non-memory cues (fresh Bernoulli(q) patterns): measured 20 of 20 end away from every
    # memory (all at the quiescent state, overlaps ~ 0.003)
    other = net.recall(M.bernoulli_patterns(20, N, q, seed=5), 10.0, verbose=False)
    assert (other.retrieved == -1).all()
    assert np.abs(other.overlaps[-1] - phib).min() > 0.5


def test_recall_with_piecewise_input_window_by_window():
    X = M.bernoulli_patterns(4, 200, 0.25, seed=7)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    rng = np.random.default_rng(8)
    u1, u2 = rng.normal(0, 0.05, (2, 200))
    cues = net.cues([0, 1], 0.7, seed=9)
    pw = M.PiecewiseInput([0.0, 2.5], np.stack([u1, u2]))
    res = net.recall(cues, 5.0, input=pw, n_times=11, rtol=1e-10, atol=1e-12, verbose=False)
    # by hand: two odeint calls, the state carried over
    d = net.design
    r0 = d["phi_a"] + (d["phi_b"] - d["phi_a"]) * cues
    a = nd.odeint(net.field("rate", u1), r0, [0.0, 2.5], rtol=1e-10, atol=1e-12, verbose=False)[-1]
    b = nd.odeint(net.field("rate", u2), a, [2.5, 5.0], rtol=1e-10, atol=1e-12, verbose=False)[-1]
    np.testing.assert_allclose(res.final, b, atol=1e-9)
    np.testing.assert_allclose(res.t, np.linspace(0, 5, 11))
    np.testing.assert_allclose(res.states[5], a, atol=1e-9)  # t = 2.5, the end of the first window
    # per-sample inputs ride in the state: the same as each sample alone with a shared input
    U = np.stack([u1, u2])
    both = net.recall(cues, 3.0, input=U, n_times=2, rtol=1e-10, atol=1e-12, verbose=False)
    for k in range(2):
        one = net.recall(cues[k], 3.0, input=U[k], n_times=2, rtol=1e-10, atol=1e-12, verbose=False)
        np.testing.assert_allclose(both.final[k], one.final[0], atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rate_field_by_unit_classes_has_the_bits_of_every_unit(dtype):
    # Without an input the rate form computes phi(h) once per class of units active in the same
    # memories (N = 1000, P = 14, q = 0.2: 567 classes); a zero input (added to every unit's h,
    # which it leaves as it is) takes the path that computes every unit: the same bits.
    X = M.bernoulli_patterns(14, 1000, 0.2, seed=1)
    net = rate_net(X, dtype=dtype)
    r = np.random.default_rng(3).random((5, 1000)).astype(dtype)
    by_class = net.field("rate")(0.0, r)
    assert np.array_equal(by_class, net.field("rate", np.zeros(1000))(0.0, r))
    d = net.design
    W = ref.rate_weights(X.astype(np.float64), d["alpha"], d["beta"], d["gamma"])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(by_class, ref.rate_rhs(W, "sigmoid", 4.8, 0.2, r.astype(np.float64)), rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_blocks_give_each_sample_its_own_bits(dtype):
    # A memory field is evaluated row by row, so the per-sample driver runs the stages on
    # blocks of rows (about 10 of N = 1000 doubles, 20 of floats): 23 samples are several
    # blocks, the last one partial. Each sample's outputs, inside steps and at their ends, with
    # the outputs filled by the blocks (plain), after the round (dense output recorded) or
    # with events (linear: the population's mean rate crossing a level), are its bits alone.
    N, B = 1000, 23
    X = M.bernoulli_patterns(6, N, 0.2, seed=3)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype=dtype)
    d = net.design
    r0 = (d["phi_a"] + (d["phi_b"] - d["phi_a"]) * net.cues(np.arange(B) % 6, 0.6, seed=4)).astype(dtype)
    f, t = net.field("rate"), np.linspace(0.0, 3.0, 7)
    ev = nd.fields.LinearEvent(np.full(N, 1.0 / N), 0.15)
    for kw in ({}, {"dense_output": True}, {"events": ev}):
        ys = nd.odeint(f, r0, t, rtol=1e-4, atol=1e-6, verbose=False, **kw)
        ys = ys[0] if isinstance(ys, tuple) else ys
        for k in range(B):
            one = nd.odeint(f, r0[k:k + 1], t, rtol=1e-4, atol=1e-6, verbose=False, **kw)
            one = one[0] if isinstance(one, tuple) else one
            assert np.array_equal(ys[:, k], one[:, 0]), (kw, k)


def test_sdeint_with_the_memory_field():
    # the field is a built-in drift of nd.sdeint: with sigma = 0, Euler–Maruyama is the Euler twin
    X = M.bernoulli_patterns(3, 60, 0.3, seed=1)
    net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    d = net.design
    W = ref.rate_weights(X, d["alpha"], d["beta"], d["gamma"])
    cues = net.cues([0, 1, 2], 0.6, seed=3)
    r0 = d["phi_a"] + (d["phi_b"] - d["phi_a"]) * cues
    want = ref.euler(lambda r: ref.rate_rhs(W, "sigmoid", 4.8, 0.2, r), r0, 0.01, 300)
    ys = nd.sdeint(net.field(), nd.sde.Constant(0.0), r0, [0.0, 1.0, 3.0], dt=0.01, noise="additive", seed=0,
                   verbose=False)
    np.testing.assert_allclose(ys[-1], want, atol=1e-12)


def test_noisy_recall_is_seeded_and_has_the_ou_spread():
    X = M.random_patterns(3, 50, seed=1)
    net = nd.IDPHopfield(X, dtype="float64")
    x0 = np.random.default_rng(2).normal(size=(4, 50))
    kw = dict(input=np.ones(50), noise=0.3, dt=0.01, n_times=3, verbose=False)
    a = net.recall(x0, 2.0, seed=7, **kw)
    assert np.array_equal(a.states, net.recall(x0, 2.0, seed=7, **kw).states)
    assert not np.array_equal(a.states, net.recall(x0, 2.0, seed=8, **kw).states)
    # the classical network at a saturated memory (hard-tanh, psi' = 0 there) is an OU process
    # around it: stationary variance sigma^2 / 2 per unit
    net2 = nd.IDPHopfield(M.hadamard_patterns(2, 256, seed=0), activation="hardtanh", dtype="float64")
    xi = net2.params["patterns"][0]
    res = net2.recall(np.tile(4.0 * xi, (8, 1)), 30.0, input=4.0 * xi, noise=0.2, dt=0.01, seed=3, n_times=31,
                      verbose=False)
    assert (res.states[10:] - 4.0 * xi).var() == pytest.approx(0.02, rel=0.1)


# ---- IDP facts ----------------------------------------------------------------------------------------

def test_hardtanh_hadamard_equilibria():
    X = M.hadamard_patterns(8, 256, seed=3)
    net = nd.IDPHopfield(X, activation="hardtanh", dtype="float64")
    for mu in (0, 5):
        for s in (1.0, 1.5, 3.0):
            chk = net.equilibrium_check(mu, s)
            assert chk["residual"] <= 1e-12 and chk["equilibrium"] and chk["stable"]
            # stable with Jacobian -I: every unit is saturated (|x_i| >= 1, psi' = 0)
            assert np.array_equal(chk["jacobian"], -np.eye(256))
        chk = net.equilibrium_check(mu, 0.8)
        assert not chk["equilibrium"]
        # psi(0.8 xi) = 0.8 xi, W psi = 0.64 xi: the residual is 0.16 at every unit
        assert chk["residual"] == pytest.approx(0.8 - 0.64, abs=1e-14)


def test_idp_noise_retrieves_most_salient_memory():
    # docs/models.md §10: N = 1024, P = 10, dt = 0.01, sigma = 0.5, x0 ~ N(0, I), a window of
    # length 10 with u = sum_mu a_mu xi^mu: target U(2, 3.5), the previous window's target
    # U(0.05, 0.2), background U(0.8, 1.5); 200 seeded trials, hard-tanh.
    # Measured: 200 of 200 retrieve the target (|m| >= 0.8, the largest overlap); the classical
    # additive network under the same inputs retrieves it in 0 of 200 (it ends in a mixture).
    N, P, B = 1024, 10, 200
    net = nd.IDPHopfield(M.random_patterns(P, N, seed=0), activation="hardtanh", dtype="float32")
    rng = np.random.default_rng(1)
    prev = rng.integers(0, P, B)
    target = (prev + rng.integers(1, P, B)) % P
    a = rng.uniform(0.8, 1.5, (B, P))
    a[np.arange(B), target] = rng.uniform(2.0, 3.5, B)
    a[np.arange(B), prev] = rng.uniform(0.05, 0.2, B)
    x0 = rng.standard_normal((B, N))
    res = net.recall(x0, 10.0, input=net.input_from(a), noise=0.5, dt=0.01, seed=3, n_times=2, verbose=False)
    hits = np.mean(res.retrieved == target)
    assert hits >= 0.95, hits
    assert res.overlaps.dtype == np.float32


# ---- sequential retrieval -----------------------------------------------------------------------------

def test_map_fixed_points():
    for kappa in (4.0, 4.5, 6.0, 10.0):
        fp = M.map_fixed_points(kappa)
        root = np.sqrt(kappa ** 2 - 4 * kappa)
        np.testing.assert_allclose(fp, [(kappa - root) / 2, (kappa + root) / 2], rtol=1e-15)
        np.testing.assert_allclose(M.saliency_map(fp, kappa), fp, rtol=1e-13)
    for kappa in (0.0, 2.0, 3.99):
        assert M.map_fixed_points(kappa).size == 0
    # above 4 the iterates settle on the larger fixed point; below they fall under 1 (collapse)
    assert M.iterate_map(3.0, 6.0, 60)[-1] == pytest.approx(M.map_fixed_points(6.0)[1], rel=1e-9)
    z = M.iterate_map(3.0, 3.5, 60)
    assert z[-1] < 1 and len(z) < 20


def test_sequential_retrieval_above_and_below_critical_gain():
    # 4 orthogonal memories, hard-tanh, eps = 0.01, noise 0.1 on the units; the map's critical
    # gain is 4. Measured: kappa = 5 visits 0 1 2 3 in order 3.5 times in T = 1000 and goes on;
    # kappa = 3 visits 0 1 2 3 0 and falls to the quiescent state (the map from Z = 3 falls
    # below 1 after four steps; the escape times, a few time units, slow the collapse).
    X = M.hadamard_patterns(4, 64, seed=0)
    runs = {}
    for kappa in (5.0, 3.0):
        net = nd.SequentialHopfield(X, sequence=[0, 1, 2, 3], kappa=kappa, eps=0.01, leak=10.0, dtype="float64")
        runs[kappa] = net.run([3.0, 0.0, 0.0, 0.0], 1000.0, dt=0.02, noise=0.1, seed=1, verbose=False)
    # above: the sequence in order at least 3 times, and still retrieving at the end
    assert runs[5.0].visits[0][:12] == [0, 1, 2, 3] * 3
    assert np.abs(runs[5.0].overlaps[-1, 0]).max() > 0.8
    assert all(0 < e < 20 for e in runs[5.0].escape_times[0][:11])
    # below: it collapses (fewer than two rounds, nothing retrieved at the end)
    assert len(runs[3.0].visits[0]) < 8
    assert np.abs(runs[3.0].overlaps[-1, 0]).max() < 0.5


def test_custom_slow_law_runs_in_python():
    X = M.hadamard_patterns(3, 32, seed=0)
    law = lambda a, m: -a + 0.0 * m  # noqa: E731
    net = nd.SequentialHopfield(X, sequence=[0, 1, 2], kappa=5.0, slow_law=law, eps=0.1, dtype="float64")
    run = net.run([2.0, 0.0, 0.0], 20.0, dt=0.01, noise=0.0, n_times=3, verbose=False)
    # alpha' = -eps alpha: Euler steps of 0.01 over 20
    assert run.saliencies[-1, 0, 0] == pytest.approx(2.0 * (1 - 0.001) ** 2000, rel=1e-6)
    with pytest.raises(ValueError, match="slow_law"):
        net.save("/nonexistent/x.npz")


# ---- generators ---------------------------------------------------------------------------------------

def test_generators():
    X = M.balanced_patterns(1000, 0.2)
    np.testing.assert_array_equal(X, ref.balanced(1000, 0.2))
    assert np.array_equal(M.bernoulli_patterns(4, 100, 0.3, seed=5), M.bernoulli_patterns(4, 100, 0.3, seed=5))
    assert not np.array_equal(M.bernoulli_patterns(4, 100, 0.3, seed=5), M.bernoulli_patterns(4, 100, 0.3, seed=6))
    # a pattern does not depend on how many are drawn
    assert np.array_equal(M.bernoulli_patterns(2, 100, 0.3, seed=5), M.bernoulli_patterns(4, 100, 0.3, seed=5)[:2])
    C = M.correlated_patterns(2, 40000, 0.2, 0.6, seed=1).astype(float)
    assert C.mean() == pytest.approx(0.2, abs=0.01)
    assert (C[0] @ C[1]) / C[0].sum() == pytest.approx(0.6, abs=0.02)
    H = M.hadamard_patterns(10, 128, seed=2).astype(float)
    np.testing.assert_array_equal(H @ H.T, 128 * np.eye(10))
    rows = {tuple(h) for h in ref.sylvester(128)}
    assert all(tuple(h) in rows for h in H) and not (H == 1).all(axis=1).any()
    R = M.random_patterns(3, 1000, seed=0)
    assert set(np.unique(R)) == {-1, 1} and abs(R.mean()) < 0.05


# ---- bad input ------------------------------------------------------------------------------------------

def test_bad_input_messages(balanced):
    X = balanced.astype(float)
    half = X.copy()
    half[0, 3] = 0.5
    with pytest.raises(ValueError, match=r"patterns must hold only 0 and 1, got 0.5"):
        rate_net(half)
    with pytest.raises(ValueError, match=r"patterns must hold only -1 and \+1, got 0"):
        nd.IDPHopfield(X)
    with pytest.raises(ValueError, match=r"a must be < b, got 0.95"):
        nd.FiringRateMemory(X, a=0.95, b=0.95, gain=4.8, threshold=0.2)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\), got 1.5"):
        M.bernoulli_patterns(3, 100, 1.5)
    with pytest.raises(ValueError, match=r"q \(the memories' activity\) must be in \(0, 1\), got 0"):
        nd.FiringRateMemory(np.zeros((2, 10)), a=0.0, b=1.0, gain=1.0, threshold=0.0)
    with pytest.raises(ValueError, match=r"patterns must have fewer memories \(rows\) than units \(columns\)"):
        rate_net(np.eye(4))
    with pytest.raises(ValueError, match=r"patterns must have fewer memories"):
        nd.IDPHopfield(M.random_patterns(8, 8, seed=0))
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1"):
        rate_net(balanced, overlap=1.0)
    with pytest.raises(ValueError, match=r"gain must be > 0"):
        nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=-1.0, threshold=0.2)
    with pytest.raises(ValueError, match=r"tau must be > 0"):
        rate_net(balanced, tau=0.0)
    with pytest.raises(ValueError, match=r"activation"):
        nd.FiringRateMemory(X, a=-0.3, b=0.95, activation="tanh", gain=4.8, threshold=0.2)
    with pytest.raises(ValueError, match=r"activation"):
        nd.IDPHopfield(M.random_patterns(2, 8, seed=0), activation="sigmoid")
    with pytest.raises(ValueError, match=r"r \(the overlap fraction\) must be in \[q, 1\)"):
        M.correlated_patterns(2, 100, 0.3, 0.1)
    with pytest.raises(ValueError, match=r"N must be a power of 2"):
        M.hadamard_patterns(2, 100)
    # mismatched input sizes
    net = rate_net(balanced)
    cues = net.cues([0, 1], seed=0)
    with pytest.raises(ValueError, match=r"input has shape \(999,\); this network needs \(1000,\) or \(2, 1000\)"):
        net.recall(cues, 1.0, input=np.zeros(999), verbose=False)
    with pytest.raises(ValueError, match=r"input has shape \(3, 1000\)"):
        net.recall(cues, 1.0, input=np.zeros((3, 1000)), verbose=False)
    with pytest.raises(ValueError, match=r"cues has shape \(2, 999\)"):
        net.recall(np.zeros((2, 999)), 1.0, verbose=False)
    with pytest.raises(ValueError, match=r"y0 has shape \(2, 999\); this field needs its last axis of size 1000"):
        nd.odeint(net.field(), np.zeros((2, 999)), [0, 1], verbose=False)
    with pytest.raises(ValueError, match=r"input has shape \(999,\); expected \(1000,\) for \(n,\), with n = 1000 from the network, one per unit"):
        net.field("rate", np.zeros(999))(0.0, np.zeros(1000))
    idp = nd.IDPHopfield(M.random_patterns(3, 16, seed=0))
    with pytest.raises(ValueError, match=r"u has shape \(15,\)"):
        idp(np.zeros((1, 16)), np.zeros(15))
    with pytest.raises(ValueError, match=r"saliencies has shape \(2,\); expected \(3,\) for \(p,\), with p = 3 from the network, one per memory"):
        idp.field(np.zeros(2))(0.0, np.zeros(16))
    with pytest.raises(ValueError, match=r"r \(the rates\) must lie in \[0, 1\]"):
        net.energy(np.full(1000, 1.5))
    with pytest.raises(ValueError, match=r"cues must hold only 0 and 1"):
        net.recall(np.full((1, 1000), 0.5), 1.0, verbose=False)
    with pytest.raises(ValueError, match=r"sequence"):
        nd.SequentialHopfield(M.hadamard_patterns(3, 16, seed=0), sequence=[0, 5], kappa=5.0)
    with pytest.raises(ValueError, match=r"kappa must be >= 0"):
        nd.SequentialHopfield(M.hadamard_patterns(3, 16, seed=0), sequence=[0, 1], kappa=-1.0)


# ---- dtypes, save/load, repr ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes(balanced, dtype):
    net = rate_net(balanced, dtype=dtype)
    assert net.params["patterns"].dtype == dtype
    r = np.random.default_rng(0).random((2, 1000)).astype(dtype)
    dr = net(r)
    assert dr.dtype == dtype
    ref64 = rate_net(balanced)(r.astype(np.float64))
    np.testing.assert_allclose(dr, ref64, atol=1e-5 if dtype == np.float32 else 1e-13)
    res = net.recall(net.cues([0, 3], seed=1), 5.0, verbose=False)
    assert res.final.dtype == dtype and res.overlaps.dtype == dtype
    assert list(res.retrieved) == [0, 3]
    idp = nd.IDPHopfield(M.hadamard_patterns(3, 64, seed=0), dtype=dtype)
    x = np.random.default_rng(1).normal(size=(2, 64)).astype(dtype)
    assert idp(x, x[0]).dtype == dtype and idp.overlaps(x).dtype == dtype


def test_save_load_pickle_repr(tmp_path, balanced):
    nets = [rate_net(balanced, "rectified_tanh", overlap=0.25, tau=2.0),
            nd.IDPHopfield(M.random_patterns(5, 40, seed=1), activation="hardtanh", zero_diagonal=True),
            nd.SequentialHopfield(M.hadamard_patterns(4, 32, seed=0), sequence=[2, 0, 1], kappa=5.5, eps=0.05)]
    for net in nets:
        path = tmp_path / f"{type(net).__name__}.npz"
        net.save(path)
        back = nd.load(path)
        assert type(back) is type(net) and back.config == net.config
        assert np.array_equal(back.params["patterns"], net.params["patterns"])
        clone = pickle.loads(pickle.dumps(net))
        assert clone.config == net.config
        assert repr(back) == repr(net)
        assert type(net).__name__ in repr(net) and "parameters" in repr(net)
    assert nets[0].stability()["lambda_max"] == pytest.approx(nd.load(tmp_path / "FiringRateMemory.npz")
                                                             .stability()["lambda_max"])
    # a file whose patterns were altered to non-memories is refused on load
    bad = rate_net(balanced)
    bad.params["patterns"][0, 0] = 0.5
    bad.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="patterns must hold only 0 and 1"):
        nd.load(tmp_path / "bad.npz")
    assert "MemoryField(form='idp', N=40, P=5" in repr(nets[1].field())
    assert "Recall(" in repr(nets[1].recall(np.zeros(40), 1.0, input=np.ones(40), verbose=False))


def test_inputs_not_modified(balanced):
    net = rate_net(balanced)
    cues = net.cues([0], seed=0)
    keep = cues.copy()
    u = np.zeros(1000)
    u.setflags(write=False)
    net.recall(cues, 1.0, input=u, verbose=False)
    assert np.array_equal(cues, keep)
