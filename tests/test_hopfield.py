"""The Hopfield family (docs/models.md §4): fused retrieval, energies, separation, the trainable
Hopfield / AssociativeMemory models and the classical binary network.

Forward results are compared with the float64 NumPy twins of tests/reference_hopfield.py;
every backward is compared with central finite differences in float64 (docs/models.md §0); capacity
and training claims are measured, with the numbers stated in each test.
"""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.special

import neurodyn as nd
from neurodyn import _core

import reference_hopfield as ref
from conftest import LAYOUTS, as_layout

DTYPES = (np.float32, np.float64)
# Unit roundoff multiples: an error budget of a few dozen roundings of the largest quantity
# involved. Measured worst cases are ~7 eps in both precisions, so these leave ~10x headroom
# and still catch any real formula error (those are O(1)).
REL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}
TILE = 512  # pattern tile of the kernel (csrc/nd_hopfield.h)
ROWS = 128  # row block of the kernel


def scale_of_scores(Q, Y, beta):
    """1 + beta max|q||y|: the size of the largest score, which is what rounding in the
    scores (and hence in the softmax weights and the lse) is proportional to."""
    qn = np.linalg.norm(np.asarray(Q, np.float64), axis=-1).max(initial=0.0)
    yn = np.linalg.norm(np.asarray(Y, np.float64), axis=-1).max(initial=0.0)
    return 1.0 + beta * qn * yn


def assert_retrieval_close(out, lse, Q, Y, beta, V=None):
    """out and lse against the twin fed the same (already rounded) inputs."""
    dt = np.dtype(out.dtype)
    r_out, r_lse = ref.retrieve(Q, Y, beta, V)
    k = scale_of_scores(Q, Y, beta)
    vmax = np.abs(np.asarray(Y if V is None else V, np.float64)).max()
    np.testing.assert_allclose(out, r_out, rtol=0, atol=REL[dt] * k * max(vmax, 1e-300))
    if lse is not None:
        np.testing.assert_allclose(lse, r_lse, rtol=0, atol=REL[dt] * (k + math.log(Y.shape[0]) + 1))


def rand_pm1(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def flip(rng, X, k):
    """Copies of the rows of X with exactly k entries each flipped in sign."""
    X = X.copy()
    for row in X:
        row[rng.choice(X.shape[1], k, replace=False)] *= -1
    return X


# ================================================================================================
# 1. Retrieval against the twin
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, TILE - 1, TILE, TILE + 1, 5000])
@pytest.mark.parametrize("beta", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("with_values", [False, True])
def test_retrieve_matches_twin(rng, dtype, N, beta, with_values):
    # N straddles the 512-pattern tile so the online-softmax rescaling between tiles is used
    Q = rng.normal(size=(5, 4)).astype(dtype)
    Y = rng.normal(size=(N, 4)).astype(dtype)
    V = rng.normal(size=(N, 3)).astype(dtype) if with_values else None
    out = nd.hopfield_retrieve(Q, Y, beta, V)
    assert out.dtype == dtype and out.shape == (5, 3 if with_values else 4)
    o2, lse = _core.hopfield_forward(Q, Y, V, beta)
    np.testing.assert_array_equal(out, o2)
    assert_retrieval_close(out, lse, Q, Y, beta, V)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.01, 100.0])
def test_retrieve_many_patterns(rng, dtype, beta):
    # 100,000 patterns: ~196 tiles, the running max moves many times
    N = 100_000
    Q = rng.normal(size=(3, 3)).astype(dtype)
    Y = rng.normal(size=(N, 3)).astype(dtype)
    V = rng.normal(size=(N, 2)).astype(dtype)
    out, lse = _core.hopfield_forward(Q, Y, V, beta)
    assert_retrieval_close(out, lse, Q, Y, beta, V)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [ROWS + 1, 256, 257, 300])
def test_retrieve_row_blocks(rng, dtype, B):
    # more rows than a row block (128) and than 256: every block must see its own queries
    Q = rng.normal(size=(B, 6)).astype(dtype)
    Y = rng.normal(size=(700, 6)).astype(dtype)
    out, lse = _core.hopfield_forward(Q, Y, None, 2.0)
    assert_retrieval_close(out, lse, Q, Y, 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_overflow_at_large_beta(rng, dtype):
    # scores of beta q.y ~ 1e5: exp would overflow in either precision without the max shift
    Q = 30 * rng.normal(size=(4, 8)).astype(dtype)
    Y = 30 * rng.normal(size=(1000, 8)).astype(dtype)
    out, lse = _core.hopfield_forward(Q, Y, None, 100.0)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(lse))
    S = 100.0 * (Q.astype(np.float64) @ Y.astype(np.float64).T)
    assert S.max() > 1e4  # the test does exercise exp overflow
    assert_retrieval_close(out, lse, Q, Y, 100.0)
    # at this beta the softmax is one-hot on the best match
    np.testing.assert_allclose(out, Y[np.argmax(S, axis=1)], rtol=REL[np.dtype(dtype)] * 10)


def test_twin_agrees_with_scipy(rng):
    # the twin itself against SciPy's softmax / logsumexp, so both routes are independent
    Q, Y, V = rng.normal(size=(7, 5)), rng.normal(size=(600, 5)), rng.normal(size=(600, 2))
    S = 3.0 * Q @ Y.T
    r_out, r_lse = ref.retrieve(Q, Y, 3.0, V)
    np.testing.assert_allclose(r_out, scipy.special.softmax(S, axis=1) @ V, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(r_lse, scipy.special.logsumexp(S, axis=1), rtol=1e-14)
    out = nd.hopfield_retrieve(Q, Y, 3.0, V)
    np.testing.assert_allclose(out, scipy.special.softmax(S, axis=1) @ V, rtol=0, atol=1e-12)


def test_single_pattern_is_returned_exactly(rng):
    # N = 1: the softmax weight is exactly 1 and lse is the score itself
    Q, Y = rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    out, lse = _core.hopfield_forward(Q, Y, None, 0.7)
    np.testing.assert_array_equal(out, np.repeat(Y, 3, axis=0))
    np.testing.assert_allclose(lse, 0.7 * Q @ Y[0], rtol=1e-14)


def test_single_query_vector(rng):
    Q, Y = rng.normal(size=(4, 5)), rng.normal(size=(30, 5))
    one = nd.hopfield_retrieve(Q[2], Y, 1.5)
    assert one.shape == (5,)
    # the same row in a batch (the BLAS may block differently, so to the last bits only)
    np.testing.assert_allclose(one, nd.hopfield_retrieve(Q, Y, 1.5)[2], rtol=1e-14, atol=1e-15)


def test_result_dtype_follows_queries(rng):
    Y = rng.normal(size=(10, 3))
    assert nd.hopfield_retrieve(rng.normal(size=(2, 3)).astype(np.float32), Y).dtype == np.float32
    assert nd.hopfield_retrieve(rng.normal(size=(2, 3)), Y.astype(np.float32)).dtype == np.float64
    # integers and float16 are converted losslessly (int -> float64, float16 -> float32)
    assert nd.hopfield_retrieve(np.ones((2, 3), np.int32), Y).dtype == np.float64
    assert nd.hopfield_retrieve(np.ones((2, 3), np.float16), Y).dtype == np.float32


def test_zero_queries(rng):
    out = nd.hopfield_retrieve(np.zeros((0, 3)), rng.normal(size=(5, 3)))
    assert out.shape == (0, 3)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("which", ["queries", "patterns", "values"])
def test_layouts_give_same_result_and_inputs_unchanged(rng, layout, which):
    base = {"queries": rng.normal(size=(6, 5)), "patterns": rng.normal(size=(700, 5)),
            "values": rng.normal(size=(700, 3))}
    expected = nd.hopfield_retrieve(base["queries"], base["patterns"], 1.3, base["values"])
    args = dict(base)
    args[which] = as_layout(base[which], layout)
    kept = {k: np.array(v, copy=True) for k, v in args.items()}
    out = nd.hopfield_retrieve(args["queries"], args["patterns"], 1.3, args["values"])
    # the kernel sees the same contiguous numbers whatever the layout: bit-identical output
    np.testing.assert_array_equal(out, expected)
    for k in args:
        np.testing.assert_array_equal(args[k], kept[k])
    if layout == "readonly":
        assert not args[which].flags.writeable


def test_fortran_and_strided_everywhere(rng):
    Q, Y = rng.normal(size=(9, 4)), rng.normal(size=(520, 4))
    Qs = np.asfortranarray(Q)
    Ys = np.zeros((1040, 8))[::2, ::2]
    Ys[...] = Y
    out, lse = _core.hopfield_forward(Qs, Ys, None, 0.5)
    assert_retrieval_close(out, lse, Q, Y, 0.5)


@pytest.mark.parametrize("steps", [2, 5])
def test_iterated_retrieval(rng, steps):
    Q, Y = rng.normal(size=(4, 6)), rng.normal(size=(40, 6))
    out = nd.hopfield_retrieve(Q, Y, 0.8, steps=steps)
    np.testing.assert_allclose(out, ref.retrieve_iterated(Q, Y, 0.8, steps), rtol=0, atol=1e-12)


def test_iteration_with_tol_reaches_fixed_point(rng):
    Y = rand_pm1(rng, (20, 32))
    Q = flip(rng, Y[:5], 6)
    out = nd.hopfield_retrieve(Q, Y, 0.2, tol=1e-10)
    np.testing.assert_allclose(out, ref.retrieve_iterated(Q, Y, 0.2, steps=1000, tol=1e-10), atol=1e-12)
    # a fixed point: one more update moves it by less than tol
    assert np.abs(nd.hopfield_retrieve(out, Y, 0.2) - out).max() < 1e-10


try:
    from hypothesis import given, strategies as st
except ImportError:  # hypothesis is a test extra: skip the property tests, keep the rest
    class _AnyStrategy:
        def __getattr__(self, name):
            return lambda *a, **k: None

    st = _AnyStrategy()

    def given(**_):
        return pytest.mark.skip(reason="hypothesis is not installed")


@given(B=st.integers(0, 5), N=st.integers(1, 40), d=st.integers(1, 6),
       log_beta=st.floats(-2, 2), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1), with_values=st.booleans())
def test_retrieve_property(B, N, d, log_beta, dtype, layout, seed, with_values):
    r = np.random.default_rng(seed)
    beta = 10.0 ** log_beta
    Q = as_layout(r.normal(size=(B, d)).astype(dtype), layout)
    Y = as_layout(r.normal(size=(N, d)).astype(dtype), layout)
    V = as_layout(r.normal(size=(N, 2)).astype(dtype), layout) if with_values else None
    out, lse = _core.hopfield_forward(Q, Y, V, beta)
    assert out.dtype == dtype and out.shape == (B, 2 if with_values else d)
    if B:
        assert_retrieval_close(out, lse, Q, Y, beta, V)


# ================================================================================================
# 2. Energies
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.05, 1.0, 50.0])
def test_edifice_energy_is_minus_lse(rng, dtype, beta):
    Q = rng.normal(size=(6, 5)).astype(dtype)
    Y = rng.normal(size=(900, 5)).astype(dtype)
    e = nd.hopfield_energy(Q, Y, beta)
    assert e.shape == (6,) and e.dtype == dtype
    _, lse = _core.hopfield_forward(Q, Y, None, beta)
    np.testing.assert_allclose(e, -lse, rtol=REL[np.dtype(dtype)], atol=0)
    Sd = beta * Q.astype(np.float64) @ Y.astype(np.float64).T
    np.testing.assert_allclose(e, -scipy.special.logsumexp(Sd, axis=1), rtol=0,
                               atol=REL[np.dtype(dtype)] * (scale_of_scores(Q, Y, beta) + 10))


@pytest.mark.parametrize("beta", [0.05, 1.0, 50.0])
def test_full_energy_matches_eq2(rng, beta):
    Q, Y = rng.normal(size=(6, 5)), rng.normal(size=(30, 5))
    e = nd.hopfield_energy(Q, Y, beta, full=True)
    np.testing.assert_allclose(e, ref.energy_full(Q, Y, beta), rtol=1e-12, atol=1e-12)
    # a single state gives a scalar
    assert np.ndim(nd.hopfield_energy(Q[0], Y, beta, full=True)) == 0
    np.testing.assert_allclose(nd.hopfield_energy(Q[0], Y, beta, full=True), e[0], rtol=1e-14)


def test_full_energy_is_bounded_below(rng):
    # Ramsauer Lemma 1: 0 <= E <= 2 M^2 on the convex hull of the patterns
    Y = rng.normal(size=(25, 6))
    w = rng.dirichlet(np.ones(25), size=50)
    e = nd.hopfield_energy(w @ Y, Y, 2.0, full=True)
    M2 = (Y * Y).sum(axis=1).max()
    assert np.all(e >= -1e-12) and np.all(e <= 2 * M2 + 1e-12)


@given(N=st.integers(1, 30), d=st.integers(1, 8), log_beta=st.floats(-2, 2),
       spread=st.floats(0.1, 5.0), seed=st.integers(0, 2**32 - 1))
def test_full_energy_never_increases_under_update(N, d, log_beta, spread, seed):
    # The update is CCCP on eq. (2) (Ramsauer Theorem 1): E(xi_{t+1}) <= E(xi_t) for every
    # state, checked over three updates from arbitrary (not only near-pattern) states.
    r = np.random.default_rng(seed)
    beta = 10.0 ** log_beta
    Y = spread * r.normal(size=(N, d))
    xi = 2 * spread * r.normal(size=(4, d))
    e = nd.hopfield_energy(xi, Y, beta, full=True)
    np.testing.assert_allclose(e, ref.energy_full(xi, Y, beta), rtol=1e-10, atol=1e-10)
    for _ in range(3):
        xi = nd.hopfield_retrieve(xi, Y, beta)
        e_new = nd.hopfield_energy(xi, Y, beta, full=True)
        assert np.all(e_new <= e + 1e-10 * (1 + np.abs(e))), (e, e_new)
        e = e_new


# ================================================================================================
# 3. Capacity and the classical network
# ================================================================================================

def test_hebbian_and_pseudoinverse_weights_match_twin(rng):
    P = rand_pm1(rng, (12, 40))
    net = nd.ClassicalHopfield(40)
    net.store(P)
    np.testing.assert_allclose(net.W, ref.hebbian_weights(P), rtol=0, atol=1e-15)
    assert np.all(np.diag(net.W) == 0)
    net.store(P, rule="pseudoinverse")
    np.testing.assert_allclose(net.W, ref.pseudoinverse_weights(P), rtol=0, atol=1e-12)
    assert np.all(np.diag(net.W) == 0) and net.num_patterns == 12


def test_classical_energy_matches_twin(rng):
    net = nd.ClassicalHopfield(30)
    net.store(rand_pm1(rng, (4, 30)))
    X = rand_pm1(rng, (5, 30))
    np.testing.assert_allclose(net.energy(X), ref.classical_energy(net.W, X), rtol=1e-13)


def recall_fraction(net, P, X, **kw):
    """Share of queries that end exactly on their pattern."""
    return float(np.mean(np.all(net.recall(X, **kw) == P, axis=1)))


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_hebbian_capacity(rng, mode):
    # n = 200. At 0.05 n = 10 patterns (well under 0.138 n) recall from 5%-corrupted states
    # is essentially perfect (measured 100%); at 0.25 n = 50 the patterns are no longer
    # fixed points (measured 0% even when starting on the pattern itself).
    n = 200
    net = nd.ClassicalHopfield(n)
    P = rand_pm1(rng, (10, n))
    net.store(P)
    low = recall_fraction(net, P, flip(rng, P, 10), mode=mode, steps=20, seed=1)
    assert low >= 0.95
    assert recall_fraction(net, P, P, mode=mode, steps=20, seed=1) >= 0.95
    P = rand_pm1(rng, (50, n))
    net.store(P)
    high = recall_fraction(net, P, P, mode=mode, steps=20, seed=1)
    assert high <= 0.5 and low - high >= 0.45


def test_pseudoinverse_beats_hebbian(rng):
    # 0.3 n = 60 patterns in n = 200: beyond Hebbian capacity, but the projection rule keeps
    # every pattern a fixed point and recalls from 5% corruption (measured 100% vs 0%)
    n = 200
    P = rand_pm1(rng, (60, n))
    X = flip(rng, P, 10)
    pinv, hebb = nd.ClassicalHopfield(n), nd.ClassicalHopfield(n)
    pinv.store(P, rule="pseudoinverse")
    hebb.store(P, rule="hebbian")
    f_pinv = recall_fraction(pinv, P, X, steps=20, seed=2)
    f_hebb = recall_fraction(hebb, P, X, steps=20, seed=2)
    assert f_pinv >= 0.95
    assert f_hebb <= 0.5
    np.testing.assert_array_equal(pinv.recall(P, mode="sync", steps=1), P)


def test_modern_capacity(rng):
    # d = 128, N = 10 d = 1280 random +-1 patterns (ten times the classical n), queries with
    # 20% of the entries flipped: beta = 0.5 retrieves >= 99% exactly in one update
    # (measured 100% on 200 queries), reading the sign of the output.
    d, N = 128, 1280
    Y = rand_pm1(rng, (N, d))
    idx = rng.choice(N, 200, replace=False)
    Q = flip(rng, Y[idx], int(0.2 * d))
    out = nd.hopfield_retrieve(Q, Y, 0.5)
    assert np.mean(np.all(np.sign(out) == Y[idx], axis=1)) >= 0.99
    # float32 as well
    out32 = nd.hopfield_retrieve(Q.astype(np.float32), Y.astype(np.float32), 0.5)
    assert np.mean(np.all(np.sign(out32) == Y[idx], axis=1)) >= 0.99


def test_async_energy_never_increases(rng):
    # Per single-neuron update (the twin, with the documented tie-break) and per sweep (the
    # library: `steps=k` with one seed replays the same orders, so it is the state after k
    # sweeps). An overloaded Hebbian net (0.3 n) makes many updates happen.
    n = 64
    net = nd.ClassicalHopfield(n)
    net.store(rand_pm1(rng, (20, n)))
    X = rand_pm1(rng, (6, n))
    for x in X:
        energies = [float(ref.classical_energy(net.W, x)[0])]
        for s in range(5):
            x = ref.async_sweep(net.W, x, rng.permutation(n), energies)
        assert np.all(np.diff(energies) <= 1e-12)
        assert energies[-1] < energies[0]
    per_sweep = np.array([net.energy(net.recall(X, steps=k, seed=3)) for k in range(1, 8)])
    per_sweep = np.vstack([net.energy(X), per_sweep])
    assert np.all(np.diff(per_sweep, axis=0) <= 1e-12)


def test_async_recall_matches_twin(rng):
    # n = 128 makes the Hebbian weights k/128, exact in binary, so fields are computed exactly
    # in both implementations and exact ties (field 0) occur and must keep the state.
    # The library draws one permutation per sweep from the seed, shared by the batch.
    n = 128
    net = nd.ClassicalHopfield(n)
    net.store(rand_pm1(rng, (30, n)))
    X = rand_pm1(rng, (5, n))
    steps = 6
    got = net.recall(X, mode="async", steps=steps, seed=11)
    orders = np.random.default_rng(11)
    Z = X.copy()
    for _ in range(steps):
        order = orders.permutation(n)
        new = np.array([ref.async_sweep(net.W, z, order) for z in Z])
        done = np.array_equal(new, Z)
        Z = new
        if done:
            break
    np.testing.assert_array_equal(got, Z)
    # reproducible from the seed
    np.testing.assert_array_equal(net.recall(X, steps=steps, seed=11), got)


def test_sync_recall_matches_twin(rng):
    n = 128
    net = nd.ClassicalHopfield(n)
    net.store(rand_pm1(rng, (30, n)))
    X = rand_pm1(rng, (5, n))
    np.testing.assert_array_equal(net.recall(X, mode="sync", steps=1), ref.sync_step(net.W, X))
    Z = X
    for _ in range(3):
        Z = ref.sync_step(net.W, Z)
    np.testing.assert_array_equal(net.recall(X, mode="sync", steps=3), Z)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_zero_field_keeps_state(mode):
    # p = (1, 1, 1) stored; from x = (-1, 1, -1) neurons 0 and 2 see a field of exactly 0 and
    # neuron 1 a field of -2/3. Keeping the state on a tie gives (-1, -1, -1) in either mode
    # and any order; a sign(0) = +1 convention would give something else.
    net = nd.ClassicalHopfield(3)
    net.store([[1, 1, 1]])
    out = net.recall([[-1, 1, -1]], mode=mode, steps=5, seed=0)
    np.testing.assert_array_equal(out, [[-1, -1, -1]])
    # all-zero weights: every field is 0, nothing moves
    net.W = np.zeros((3, 3))
    np.testing.assert_array_equal(net.recall([[1, -1, 1]], mode=mode, seed=0), [[1, -1, 1]])


def test_classical_misc(rng):
    net = nd.ClassicalHopfield(8)
    assert "ClassicalHopfield" in repr(net)
    P = rand_pm1(rng, (1, 8))
    net.store(P)
    # a stored pattern and its negation are both fixed points of the Hebbian net
    np.testing.assert_array_equal(net.recall(np.vstack([P, -P]), seed=0), np.vstack([P, -P]))
    X = rand_pm1(rng, (3, 8))
    kept = X.copy()
    net.recall(X, seed=0)
    net.energy(X)
    np.testing.assert_array_equal(X, kept)


# ================================================================================================
# 4. Backward
# ================================================================================================

def fd_forward_loss(q, k, v, beta, G, g):
    out, lse = _core.hopfield_forward(q, k, v, beta)
    return float(np.sum(out * G) + (0.0 if g is None else np.sum(lse * g)))


def central(f, x, idx, h=1e-3):
    """Five-point central difference of f() in x[idx]: truncation O(h^4), so h = 1e-3 keeps
    both truncation (~1e-12) and rounding (~eps |f| / h ~ 1e-13) far below the 1e-6 test."""
    old = x[idx]
    vals = []
    for step in (2, 1, -1, -2):
        x[idx] = old + step * h
        vals.append(f())
    x[idx] = old
    return (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)


def rel_err(a, b, floor):
    return abs(a - b) / max(abs(a), abs(b), floor)


@pytest.mark.parametrize("with_values", [False, True])
@pytest.mark.parametrize("with_dlse", [False, True])
def test_backward_matches_twin(rng, with_values, with_dlse):
    # B = 130 > one row block, N = 1100 = three tiles
    B, N, d, dv, beta = 130, 1100, 5, 3, 0.9
    q, k = rng.normal(size=(B, d)), rng.normal(size=(N, d))
    v = rng.normal(size=(N, dv)) if with_values else None
    out, lse = _core.hopfield_forward(q, k, v, beta)
    G = rng.normal(size=out.shape)
    g = rng.normal(size=B) if with_dlse else None
    dq, dk, dvv, dbeta = _core.hopfield_backward(q, k, v, beta, out, lse, G, g)
    rq, rk, rv, rb = ref.retrieve_backward(q, k, v, beta, G, g)
    np.testing.assert_allclose(dq, rq, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, rk, rtol=1e-10, atol=1e-12)
    assert (dvv is None) == (v is None)
    if v is not None:
        np.testing.assert_allclose(dvv, rv, rtol=1e-10, atol=1e-12)
    assert rel_err(dbeta, rb, 1e-8) < 1e-10


@pytest.mark.parametrize("with_values", [False, True])
@pytest.mark.parametrize("with_dlse", [False, True])
def test_backward_finite_differences(rng, with_values, with_dlse):
    # N = 600 > one tile; entries of every gradient, including patterns in the second tile
    B, N, d, dv, beta = 3, 600, 4, 2, 1.7
    q, k = rng.normal(size=(B, d)), rng.normal(size=(N, d))
    v = rng.normal(size=(N, dv)) if with_values else None
    out, lse = _core.hopfield_forward(q, k, v, beta)
    G = rng.normal(size=out.shape)
    g = rng.normal(size=B) if with_dlse else None
    dq, dk, dvv, dbeta = _core.hopfield_backward(q, k, v, beta, out, lse, G, g)
    def f():
        return fd_forward_loss(q, k, v, beta, G, g)

    # the patterns that weigh most (largest softmax weights) have the largest gradients
    top = np.argsort(-np.abs(dk).sum(axis=1))[:3]
    checks = [(q, dq, (i, j)) for i in range(B) for j in range(d)]
    checks += [(k, dk, (i, j)) for i in list(top) + [0, 513, N - 1] for j in range(d)]
    if v is not None:
        checks += [(v, dvv, (i, j)) for i in list(top) + [515] for j in range(dv)]
    for x, grad, idx in checks:
        # floor: entries below 1e-4 of their tensor's largest are compared in absolute terms
        num = central(f, x, idx)
        assert rel_err(grad[idx], num, 1e-4 * np.abs(grad).max()) < 1e-6, (idx, grad[idx], num)
    b = np.array([beta])
    bnum = central(lambda: fd_forward_loss(q, k, v, b[0], G, g), b, 0)
    assert rel_err(dbeta, bnum, 1e-8) < 1e-6


def test_backward_float32_close_to_twin(rng):
    B, N, d, beta = 20, 700, 4, 1.2
    q, k = rng.normal(size=(B, d)).astype(np.float32), rng.normal(size=(N, d)).astype(np.float32)
    out, lse = _core.hopfield_forward(q, k, None, beta)
    G, g = rng.normal(size=out.shape).astype(np.float32), rng.normal(size=B).astype(np.float32)
    dq, dk, _, dbeta = _core.hopfield_backward(q, k, None, beta, out, lse, G, g)
    assert dq.dtype == np.float32 and dk.dtype == np.float32
    rq, rk, _, rb = ref.retrieve_backward(q, k, None, beta, G, g)
    np.testing.assert_allclose(dq, rq, rtol=1e-4, atol=1e-4 * np.abs(rq).max())
    np.testing.assert_allclose(dk, rk, rtol=1e-4, atol=1e-4 * np.abs(rk).max())
    assert rel_err(dbeta, rb, 1e-3) < 1e-3


def check_model_grads(model, x, y, loss, **kw):
    """Every parameter entry of ``model`` against central differences of its own loss."""
    _, grads = model.loss_and_grad(x, y, loss=loss, **kw)
    assert set(grads) == set(model.params)
    worst = 0.0
    for name, p in model.params.items():
        g = grads[name]
        assert g.shape == p.shape and g.dtype == p.dtype
        # floor: entries below 1e-4 of their tensor's largest are compared in absolute terms
        # (a 1e-6 relative test on a 1e-9 entry would ask FD for more than float64 holds)
        floor = max(1e-4 * np.abs(g).max(), 1e-10)
        for idx in np.ndindex(p.shape):
            num = central(lambda: model.loss_and_grad(x, y, loss=loss, **kw)[0], p, idx)
            err = rel_err(g[idx], num, floor)
            worst = max(worst, err)
            assert err < 1e-6, (name, idx, g[idx], num)
    return worst


def test_hopfield_model_grad_mse(rng):
    m = nd.Hopfield(3, num_patterns=5, pattern_dim=4, beta=1.3, seed=0, dtype=np.float64)
    # patterns away from the glorot scale so the softmax is neither flat nor saturated
    m.params["hopfield_patterns"] *= 3
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    check_model_grads(m, x, y, "mse")


def test_hopfield_model_grad_cross_entropy(rng):
    m = nd.Hopfield(4, num_patterns=6, pattern_dim=3, beta=2.0, seed=1, dtype=np.float64)
    m.params["hopfield_query_proj.bias"] += rng.normal(size=3)
    x, y = rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)
    check_model_grads(m, x, y, "cross_entropy")


def test_associative_memory_grad_heads_layers(rng):
    m = nd.AssociativeMemory(3, num_patterns=4, pattern_dim=4, beta=1.5, num_heads=2, hidden_size=4,
                             num_layers=2, dropout=0.0, output_size=3, seed=2, dtype=np.float64)
    for name, p in m.params.items():  # move LN gains/biases off 1/0 so their gradients matter
        if name.endswith((".gamma", ".beta", ".bias")):
            p += 0.3 * rng.normal(size=p.shape)
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    check_model_grads(m, x, y, "cross_entropy")


def test_associative_memory_grad_no_head_mse(rng):
    m = nd.AssociativeMemory(2, num_patterns=3, pattern_dim=6, beta=0.7, num_heads=3, hidden_size=3,
                             num_layers=1, dropout=0.0, seed=3, dtype=np.float64)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    check_model_grads(m, x, y, "mse")


def test_associative_memory_grad_with_dropout(rng):
    # training=True with a fixed seed draws the same dropout mask on every call, so the
    # gradient through the mask is checkable by differences too
    m = nd.AssociativeMemory(3, num_patterns=3, pattern_dim=2, beta=1.0, num_heads=1, hidden_size=4,
                             num_layers=2, dropout=0.4, output_size=2, seed=4, dtype=np.float64)
    x, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)
    check_model_grads(m, x, y, "cross_entropy", seed=5, training=True)
    # and the mask does something: training and eval losses differ
    assert m.loss_and_grad(x, y, loss="cross_entropy", seed=5, training=True)[0] != \
        m.loss_and_grad(x, y, loss="cross_entropy")[0]


# ================================================================================================
# Models: forward against the twin, parameters, persistence
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
def test_hopfield_model_forward(rng, dtype):
    m = nd.Hopfield(5, num_patterns=7, pattern_dim=3, beta=2.5, seed=0, dtype=dtype)
    assert list(m.params) == ["hopfield_query_proj.kernel", "hopfield_query_proj.bias", "hopfield_patterns"]
    assert m.params["hopfield_query_proj.kernel"].shape == (5, 3)
    assert m.params["hopfield_patterns"].shape == (7, 3)
    assert all(p.dtype == dtype for p in m.params.values())
    x = rng.normal(size=(4, 5))
    out = m(x)
    assert out.dtype == dtype and out.shape == (4, 3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref.hopfield_model(x.astype(dtype), m.params, 2.5), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads,layers,output_size", [(1, 2, None), (2, 1, 4), (4, 3, 2)])
def test_associative_memory_forward(rng, dtype, heads, layers, output_size):
    kw = dict(num_patterns=6, pattern_dim=8, beta=1.2, num_heads=heads, hidden_size=8, num_layers=layers,
              dropout=0.1, output_size=output_size)
    m = nd.AssociativeMemory(5, seed=0, dtype=dtype, **kw)
    expected = {"input_proj.kernel": (5, 8), "input_proj.bias": (8,), "input_norm.gamma": (8,),
                "input_norm.beta": (8,)}
    for l in range(1, layers + 1):
        for h in range(1, heads + 1):
            expected[f"layer_{l}_head_{h}_proj.kernel"] = (8, 8 // heads)
            expected[f"layer_{l}_head_{h}_query_proj.kernel"] = (8 // heads, 8 // heads)
            expected[f"layer_{l}_head_{h}_patterns"] = (6, 8 // heads)
        expected[f"layer_{l}_out_proj.kernel"] = (8, 8)
        expected[f"layer_{l}_norm.gamma"] = (8,)
    if output_size:
        expected["output.kernel"] = (8, output_size)
    for name, shape in expected.items():
        assert m.params[name].shape == shape, name
    x = rng.normal(size=(3, 5))
    out = m(x)  # eval mode: no dropout
    assert out.shape == (3, output_size or 8) and out.dtype == dtype
    tol = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(out, ref.associative_memory(x.astype(dtype), m.params, beta=1.2, num_heads=heads,
                                                           num_layers=layers), rtol=tol, atol=tol)
    np.testing.assert_array_equal(m(x), out)


def test_models_seed_save_load_pickle(rng, tmp_path):
    for make in (lambda s: nd.Hopfield(4, num_patterns=5, pattern_dim=6, seed=s),
                 lambda s: nd.AssociativeMemory(4, num_patterns=5, pattern_dim=6, num_heads=2, hidden_size=6,
                                                num_layers=2, output_size=3, seed=s, dtype=np.float64)):
        a, b, c = make(7), make(7), make(8)
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])
        assert any(not np.array_equal(a.params[n], c.params[n]) for n in a.params)
        x = rng.normal(size=(3, 4))
        path = tmp_path / f"{type(a).__name__}.npz"
        a.save(path)
        loaded = nd.load(path)
        assert type(loaded) is type(a) and loaded.config == a.config
        np.testing.assert_array_equal(loaded(x), a(x))
        unpickled = pickle.loads(pickle.dumps(a))
        np.testing.assert_array_equal(unpickled(x), a(x))
        assert type(a).__name__ in repr(a)


def test_model_input_not_modified(rng):
    m = nd.Hopfield(4, num_patterns=5, pattern_dim=6, seed=0)
    x = np.asfortranarray(rng.normal(size=(3, 4)))
    x.setflags(write=False)
    kept = x.copy()
    m(x)
    m.loss_and_grad(x, rng.normal(size=(3, 6)))
    np.testing.assert_array_equal(x, kept)


# ================================================================================================
# 5. Training
# ================================================================================================

@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.default_rng(0).permutation(len(X))
    return X[idx[:1400]], y[idx[:1400]], X[idx[1400:]], y[idx[1400:]]


def test_associative_memory_learns_digits(digits):
    # measured: 98% held-out accuracy after 10 epochs (~0.3 s)
    Xtr, ytr, Xte, yte = digits
    m = nd.AssociativeMemory(64, num_patterns=32, pattern_dim=32, num_heads=2, hidden_size=64, num_layers=1,
                             dropout=0.0, output_size=10, seed=0)
    hist = m.fit(Xtr, ytr, loss="cross_entropy", epochs=10, batch_size=32, lr=3e-3, seed=0, verbose=False).history_
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert np.mean(np.argmax(m(Xte), axis=1) == yte) >= 0.93


def test_hopfield_learns_digits(digits):
    # a single Hopfield layer whose 10-dim patterns act as class prototypes in logit space;
    # measured: 97% held-out accuracy after 30 epochs (~0.1 s)
    Xtr, ytr, Xte, yte = digits
    m = nd.Hopfield(64, num_patterns=40, pattern_dim=10, beta=4.0, seed=0)
    m.fit(Xtr, ytr, loss="cross_entropy", epochs=30, batch_size=32, lr=1e-2, seed=0, verbose=False)
    assert np.mean(np.argmax(m(Xte), axis=1) == yte) >= 0.9
    # the same seeds give bit-identical training
    m2 = nd.Hopfield(64, num_patterns=40, pattern_dim=10, beta=4.0, seed=0)
    m2.fit(Xtr, ytr, loss="cross_entropy", epochs=30, batch_size=32, lr=1e-2, seed=0, verbose=False)
    for name in m.params:
        np.testing.assert_array_equal(m.params[name], m2.params[name])


# ================================================================================================
# 6. Separation (Ramsauer Theorem 3)
# ================================================================================================

def unit_rows(rng, N, d):
    Y = rng.normal(size=(N, d))
    return Y / np.linalg.norm(Y, axis=1, keepdims=True)


def test_separation_delta(rng):
    Y = rng.normal(size=(12, 7))
    s = nd.hopfield_separation(Y)
    np.testing.assert_allclose(s["delta"], ref.separation_delta(Y), rtol=1e-12, atol=1e-12)
    assert s["min_delta"] == pytest.approx(ref.separation_delta(Y).min(), rel=1e-12, abs=1e-12)
    assert s["max_norm"] == pytest.approx(np.linalg.norm(Y, axis=1).max(), rel=1e-13)


def check_beta_min(Y):
    s = nd.hopfield_separation(Y)
    N, M, dmin = len(Y), s["max_norm"], s["min_delta"]
    b = s["beta_min"]
    assert dmin > 0 and math.isfinite(b)
    # it satisfies the inequality, a slightly smaller beta does not, nor does any beta
    # between the bound's peak and beta_min, and every larger beta does
    assert dmin >= ref.separation_bound(b, N, M) - 1e-12
    assert dmin < ref.separation_bound(0.99 * b, N, M)
    assert all(dmin >= ref.separation_bound(b * f, N, M) for f in (1.5, 2, 10, 1e3))
    assert b == pytest.approx(ref.separation_beta_min(dmin, N, M), rel=1e-6)
    return s


def test_separation_beta_min_unit_patterns(rng):
    # unit-norm patterns: the bound crosses Delta_min above beta = 1
    Y = unit_rows(rng, 8, 16)
    s = check_beta_min(Y)
    # Theorem 3's consequence for a stored pattern as the query: the softmax weight on the
    # others is at most (N-1) exp(-beta Delta) <= 1 / (2 N beta M^2), so the retrieval error
    # is below 1 / (N beta M); and the signs are all recovered
    N, M = len(Y), s["max_norm"]
    for beta in (s["beta_min"], 2 * s["beta_min"]):
        out = nd.hopfield_retrieve(Y, Y, beta)
        err = np.linalg.norm(out - Y, axis=1)
        assert np.all(err <= 1.0 / (N * beta * M))
        assert np.all(np.sign(out) == np.sign(Y))


def test_separation_beta_min_well_separated():
    # ten random +-1 patterns of dimension 128: Delta_min = 108, true beta_min ~ 0.070
    Y = rand_pm1(np.random.default_rng(0), (10, 128))
    check_beta_min(Y)


def test_separation_beta_min_small_norms():
    Y = 0.1 * np.eye(2)
    s = check_beta_min(Y)
    out = nd.hopfield_retrieve(Y, Y, s["beta_min"])
    assert np.all(np.argmax(out, axis=1) == [0, 1]) and np.all(np.abs(out - Y).max() < 0.01)


def test_separation_coinciding_patterns_give_inf(rng):
    Y = rng.normal(size=(5, 4))
    Y[3] = Y[1]
    s = nd.hopfield_separation(Y)
    assert s["min_delta"] <= 0 and s["beta_min"] == math.inf


# ================================================================================================
# 7. Bad input
# ================================================================================================

Q3, Y3 = np.ones((2, 3)), np.eye(4, 3)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(queries=Q3, patterns=np.ones((4, 2))), ValueError,
     r"patterns has shape \(4, 2\); expected \(4, 3\) for \(N, d\), with d = 3 from queries"),
    (dict(queries=np.ones(2), patterns=Y3), ValueError,
     r"patterns has shape \(4, 3\); expected \(4, 2\) for \(N, d\), with d = 2 from queries"),
    (dict(queries=Q3, patterns=np.ones(3)), ValueError, "patterns"),
    (dict(queries=Q3, patterns=np.ones((0, 3))), ValueError, "patterns is empty"),
    (dict(queries=Q3, patterns=Y3, beta=0), ValueError, "beta"),
    (dict(queries=Q3, patterns=Y3, beta=-1.0), ValueError, "beta"),
    (dict(queries=Q3, patterns=Y3, beta=float("inf")), ValueError, "beta"),
    (dict(queries=Q3, patterns=Y3, beta=float("nan")), ValueError, "beta"),
    (dict(queries=Q3, patterns=Y3, beta="1"), TypeError, "beta"),
    (dict(queries=Q3, patterns=Y3, values=np.ones((3, 2))), ValueError, "values"),
    (dict(queries=Q3, patterns=Y3, values=np.ones(4)), ValueError, "values"),
    (dict(queries=Q3, patterns=Y3, values=np.ones((4, 2)), steps=2), ValueError, "values"),
    (dict(queries=Q3, patterns=Y3, values=np.ones((4, 2)), tol=1e-3), ValueError, "values"),
    (dict(queries=Q3, patterns=Y3, steps=0), ValueError, "steps"),
    (dict(queries=Q3, patterns=Y3, steps=1.5), TypeError, "steps"),
    (dict(queries=Q3, patterns=Y3, tol=-1.0), ValueError, "tol"),
    (dict(queries=np.array([[np.nan, 0, 0]]), patterns=Y3), ValueError, "queries contains NaN"),
    (dict(queries=np.array([[np.inf, 0, 0]]), patterns=Y3), ValueError, "queries contains NaN or inf"),
    (dict(queries=Q3, patterns=np.where(np.eye(4, 3) == 1, np.nan, 0)), ValueError, "patterns contains NaN"),
    (dict(queries=Q3, patterns=Y3, values=np.full((4, 2), np.inf)), ValueError, "values contains NaN"),
    (dict(queries=Q3.astype(complex), patterns=Y3), TypeError, "queries"),
    (dict(queries=Q3, patterns=Y3.astype(complex)), TypeError, "patterns"),
    (dict(queries=np.array([["a", "b", "c"]]), patterns=Y3), TypeError, "queries"),
])
def test_retrieve_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.hopfield_retrieve(**kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(queries=Q3, patterns=np.ones((4, 2))), ValueError,
     r"patterns has shape \(4, 2\); expected \(4, 3\) for \(N, d\), with d = 3 from queries"),
    (dict(queries=Q3, patterns=np.ones((0, 3))), ValueError, "patterns"),
    (dict(queries=Q3, patterns=Y3, beta=0.0), ValueError, "beta"),
    (dict(queries=Q3, patterns=Y3, beta=float("nan"), full=True), ValueError, "beta"),
    (dict(queries=np.array([[np.nan, 0, 0]]), patterns=Y3, full=True), ValueError, "queries"),
    (dict(queries=Q3, patterns=np.ones(3)), ValueError, "patterns"),
])
def test_energy_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.hopfield_energy(**kwargs)


@pytest.mark.parametrize("patterns,exc,match", [
    (np.ones((1, 3)), ValueError, "two patterns"),
    (np.ones(3), ValueError, "patterns"),
    (np.ones((2, 3), complex), TypeError, "patterns"),
])
def test_separation_bad_input(patterns, exc, match):
    with pytest.raises(exc, match=match):
        nd.hopfield_separation(patterns)


def test_separation_rejects_nan():
    with pytest.raises(ValueError, match="patterns"):
        nd.hopfield_separation(np.array([[np.nan, 1.0], [1.0, 0.0], [0.0, 1.0]]))


def test_classical_bad_input():
    net = nd.ClassicalHopfield(4)
    with pytest.raises(ValueError, match="patterns.*-1 and \\+1"):
        net.store([[1, 0, 1, -1]])
    with pytest.raises(ValueError, match="patterns.*-1 and \\+1"):
        net.store([[1, 0.5, 1, -1]])
    with pytest.raises(ValueError, match="patterns"):
        net.store([[1, np.nan, 1, -1]])
    with pytest.raises(ValueError, match="patterns"):
        net.store(np.ones((2, 5)))
    with pytest.raises(ValueError, match="rule"):
        net.store(np.ones((1, 4)), rule="storkey")
    net.store(np.ones((1, 4)))
    with pytest.raises(ValueError, match="x.*-1 and \\+1"):
        net.recall([[1, 0, 1, -1]])
    with pytest.raises(ValueError, match="x"):
        net.recall(np.ones((2, 3)))
    with pytest.raises(ValueError, match="mode"):
        net.recall(np.ones((1, 4)), mode="parallel")
    with pytest.raises(ValueError, match="steps"):
        net.recall(np.ones((1, 4)), steps=0)
    with pytest.raises(ValueError, match="x"):
        net.energy([[2, 1, 1, 1]])
    with pytest.raises(ValueError, match="n"):
        nd.ClassicalHopfield(0)
    with pytest.raises(TypeError, match="n"):
        nd.ClassicalHopfield(2.5)


def test_model_bad_input():
    with pytest.raises(ValueError, match="beta"):
        nd.Hopfield(3, beta=0.0)
    with pytest.raises(ValueError, match="num_patterns"):
        nd.Hopfield(3, num_patterns=0)
    with pytest.raises(ValueError, match="num_heads"):
        nd.AssociativeMemory(3, pattern_dim=6, hidden_size=8, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        nd.AssociativeMemory(3, dropout=1.0)
    with pytest.raises(ValueError, match="dtype"):
        nd.Hopfield(3, dtype=np.int32)
    m = nd.Hopfield(3, num_patterns=4, pattern_dim=2, seed=0)
    with pytest.raises(ValueError, match="x"):
        m(np.ones((2, 4)))
    with pytest.raises(ValueError, match="x contains NaN"):
        m(np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="y"):
        m.loss_and_grad(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="loss"):
        m.loss_and_grad(np.ones((2, 3)), np.ones((2, 2)), loss="hinge")
    with pytest.raises(ValueError, match="labels"):
        m.loss_and_grad(np.ones((2, 3)), np.array([0, 5]), loss="cross_entropy")


def test_beta_one_message_everywhere():
    """beta's rule is the kernel's: the same message from the functions, the models and _core."""
    Q, Y = np.ones((2, 3)), np.eye(4, 3)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        calls = {"retrieve": lambda: nd.hopfield_retrieve(Q, Y, beta=bad),
                 "energy": lambda: nd.hopfield_energy(Q, Y, beta=bad, full=True),
                 "Hopfield": lambda: nd.Hopfield(3, beta=bad),
                 "AssociativeMemory": lambda: nd.AssociativeMemory(3, beta=bad),
                 "hopfield_forward": lambda: _core.hopfield_forward(Q, Y, beta=bad)}
        messages = set()
        for call in calls.values():
            with pytest.raises(ValueError) as info:
                call()
            messages.add(str(info.value))
        assert len(messages) == 1 and messages.pop().startswith("beta must be positive and finite, got ")
    assert nd.Hopfield(3, beta=2).config["beta"] == 2.0 and isinstance(nd.Hopfield(3, beta=2).config["beta"], float)
    assert nd.Hopfield(3).config["beta"] == _core.DEFAULTS["hopfield_forward"]["beta"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_below_the_flush_level_are_zeros(dtype):
    """docs/models.md §4: a softmax weight below 2^-103 of the maximum (2^-970 in float64) is 0.
    Two patterns whose scores differ by `gap`; the value of the best one is 0, so the output is
    the other one's weight exactly."""
    level = np.log(np.finfo(dtype).tiny / np.finfo(dtype).eps)  # -71.4 / -672.4
    for gap, kept in ((-level - 10, True), (-level + 10, False)):
        q = np.array([[1.0]], dtype)
        y = np.array([[gap], [0.0]], dtype)
        v = np.array([[0.0], [1.0]], dtype)
        out = nd.hopfield_retrieve(q, y, 1.0, v)
        want = np.exp(-gap) / (1 + np.exp(-gap))
        if kept:
            np.testing.assert_allclose(out, [[want]], rtol=1e-5)
        else:
            assert want > 0 and out[0, 0] == 0
