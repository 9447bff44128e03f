"""The spiking family (docs/models.md §5): nd.lif_run / lif_step / lif_backward, the encoders and nd.SNN.

- LIF trajectories against values computed by hand in exact rational arithmetic (dyadic
  beta and currents, so float32 and float64 represent every intermediate exactly), for both
  resets, with and without the delayed reset, with v0; against the NumPy twin
  (tests/reference_snn.py) on random inputs; lif_step against one step of lif_run;
- surrogate gradients: the smooth model's exact gradient against central finite differences
  of the kernel's own smooth forward (float64), the detached reset against finite
  differences of the twin with the reset signal frozen, the hard-spike backward against the
  twin's recursion; the whole SNN's loss_and_grad against the twin's BPTT to 1e-10;
- the encoders (Poisson rates within a stated Monte-Carlo bound, seeds, clipping; latency
  steps; constant), training on scikit-learn's digits, save/load/pickle, bad input, and
  snntorch's Leaky as a peer when it is installed.

Sizes are tiny wherever every entry is differentiated numerically; the file runs in about
ten seconds on two cores, most of it the digits training.
"""
from __future__ import annotations

import concurrent.futures
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
from neurodyn import _core

import reference_snn as twin
from conftest import LAYOUTS, as_layout

SURROGATES = ("sigmoid", "fast_sigmoid", "atan")
RESETS = ("subtract", "zero")
DTYPES = (np.float32, np.float64)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def exact_lif(currents, beta, threshold, reset, T, v0=0, delay=False):
    """The LIF recursion of docs/models.md §5 (and nd_snn.h for the delay) in exact rational arithmetic
    for one neuron: the 'hand computation' the kernel must reproduce bit for bit when every
    value is a short dyadic fraction."""
    beta, th, v = Fraction(beta), Fraction(threshold), Fraction(v0)
    spikes, mem = [], []
    for t in range(T):
        i_t = Fraction(currents[t] if np.ndim(currents) else currents)
        if delay:
            r = 1 if v > th else 0
            # snntorch's Leaky: subtract beta V + I - R theta, zero beta V (1 - R) + I
            v = beta * v + i_t - r * th if reset == "subtract" else beta * v * (1 - r) + i_t
            s = 1 if v > th else 0
        else:
            u = beta * v + i_t
            s = 1 if u > th else 0
            v = u - s * th if reset == "subtract" else u * (1 - s)
        spikes.append(s)
        mem.append(v)
    return np.array(spikes, float), mem


def rel_err(a, b):
    """Normwise relative error |a - b| / max(|b|, tiny)."""
    a, b = np.ravel(a), np.ravel(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def central_difference(f, x, eps=1e-6):
    """d f / d x for a scalar function f of the array x, entry by entry (float64)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def random_currents(seed, T=6, B=2, n=3, mean=0.6, scale=0.5, dtype=np.float64):
    """Currents that make neurons hover around the threshold, so spikes, resets and the
    surrogate's non-trivial region all occur."""
    r = np.random.default_rng(seed)
    return (mean + scale * r.standard_normal((T, B, n))).astype(dtype)


def smooth_forward(currents, v0, **kw):
    """The kernel's own smooth model (docs/models.md §0: the backward kernel is checked against finite
    differences of what it differentiates): spikes and membrane with smooth spikes."""
    s, m, _, _, _ = _core.lif_forward(currents, v0, smooth=True, membrane=True, **kw)
    return s, m


# ---------------------------------------------------------------------------------------
# 1. LIF forward: hand-computed trajectories
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_docstring_trajectory(dtype):
    # beta 1/2, theta 1, I = 3/4: V = 3/4, 9/8 -> spike -> 1/8, 13/16, 29/32 -> spike -> 5/32 ...
    s, v = nd.lif_run(np.full((6, 1, 1), 0.75, dtype), beta=0.5)
    assert s.dtype == dtype and v.dtype == dtype
    assert_array_equal(s.ravel(), [0, 1, 0, 1, 0, 1])
    assert_array_equal(v.ravel(), [0.75, 0.125, 0.8125, 0.15625, 0.828125, 0.1640625])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_hand_values_every_mode(dtype):
    # Values worked out with fractions (see exact_lif): one literal table per mode, so a
    # wrong order of decay / spike / reset shows up as a specific wrong number.
    cur = np.full((8, 1, 1), 0.5, dtype)
    cases = {
        ("subtract", False): ([0, 0, 1, 0, 0, 1, 0, 0],
                              [0.5, 0.875, 0.15625, 0.6171875, 0.962890625, 0.22216796875, 0.6666259765625,
                               0.999969482421875]),
        ("zero", False): ([0, 0, 1, 0, 0, 1, 0, 0], [0.5, 0.875, 0.0, 0.5, 0.875, 0.0, 0.5, 0.875]),
        ("subtract", True): ([0, 0, 1, 0, 0, 1, 0, 0],
                             [0.5, 0.875, 1.15625, 0.3671875, 0.775390625, 1.08154296875, 0.3111572265625,
                              0.733367919921875]),
        ("zero", True): ([0, 0, 1, 0, 0, 1, 0, 0], [0.5, 0.875, 1.15625, 0.5, 0.875, 1.15625, 0.5, 0.875]),
    }
    for (reset, delay), (spikes, mem) in cases.items():
        s, v = nd.lif_run(cur, beta=0.75, reset=reset, reset_delay=delay)
        assert_array_equal(s.ravel(), spikes, err_msg=f"{reset} delay={delay}")
        assert_array_equal(v.ravel(), mem, err_msg=f"{reset} delay={delay}")
        es, em = exact_lif(0.5, 0.75, 1, reset, 8, delay=delay)  # the table agrees with the oracle
        assert_array_equal(es, spikes)
        assert [float(m) for m in em] == mem


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_strict_threshold_and_v0(dtype):
    # v0 = 1/2, beta 1/2, I = 3/4: the first step lands exactly on theta = 1, which is not a
    # spike (S = [V > theta], strict); the next step goes to 5/4 and fires.
    cur = np.full((4, 1, 1), 0.75, dtype)
    v0 = np.full((1, 1), 0.5, dtype)
    s, v = nd.lif_run(cur, beta=0.5, v0=v0)
    assert_array_equal(s.ravel(), [0, 1, 0, 1])
    assert_array_equal(v.ravel(), [1.0, 0.25, 0.875, 0.1875])
    # delayed reset: the spike at step 1 is subtracted at step 2
    s, v = nd.lif_run(cur, beta=0.5, v0=v0, reset_delay=True)
    assert_array_equal(s.ravel(), [0, 1, 0, 0])
    assert_array_equal(v.ravel(), [1.0, 1.25, 0.375, 0.9375])
    # delayed zero reset with v0 above theta: the reset hits the very first step
    # (V = beta v0 (1 - [v0 > theta]) + I = I, snntorch's rule, as nd_snn.h documents)
    s, v = nd.lif_run(cur, beta=0.5, v0=np.full((1, 1), 1.5, dtype), reset="zero", reset_delay=True)
    assert_array_equal(s.ravel(), [0, 1, 0, 1])
    assert_array_equal(v.ravel(), [0.75, 1.125, 0.75, 1.125])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_threshold_scales(dtype):
    # theta 1/2 with I = 3/4 > theta: a spike at every step; V = 1/4, 3/8, 7/16, 15/32
    s, v = nd.lif_run(np.full((4, 1, 1), 0.75, dtype), beta=0.5, threshold=0.5)
    assert_array_equal(s.ravel(), [1, 1, 1, 1])
    assert_array_equal(v.ravel(), [0.25, 0.375, 0.4375, 0.46875])
    # scaling currents, v0 and theta by a power of two scales the membrane exactly and keeps spikes
    cur = random_currents(3, T=12, B=3, n=5, dtype=dtype)
    v0 = random_currents(4, T=1, B=3, n=5, dtype=dtype)[0]
    for reset in RESETS:
        for delay in (False, True):
            s1, v1 = nd.lif_run(cur, beta=0.75, v0=v0, reset=reset, reset_delay=delay)
            s4, v4 = nd.lif_run(4 * cur, beta=0.75, v0=4 * v0, threshold=4.0, reset=reset, reset_delay=delay)
            assert_array_equal(s1, s4)
            assert_array_equal(4 * v1, v4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("delay", (False, True))
def test_lif_beta_09_exact(dtype, reset, delay):
    # beta = 0.9 (the float nearest 9/10), I = 1/4 varying per neuron: spikes equal the exact
    # rational recursion with beta = 9/10, whose decisions are at least 1e-3 from theta, far
    # above the rounding of 30 steps; membranes agree to the dtype's precision.
    T = 30
    currents = np.array([0.25, 0.3, 0.5, 0.125])
    cur = np.broadcast_to(currents, (T, 1, 4)).astype(dtype)
    s, v = nd.lif_run(cur, beta=0.9, reset=reset, reset_delay=delay)
    for j, i_j in enumerate(currents):
        es, em = exact_lif(Fraction(str(i_j)), Fraction(9, 10), 1, reset, T, delay=delay)
        assert_array_equal(s[:, 0, j], es)
        assert_allclose(v[:, 0, j], [float(m) for m in em], rtol=0, atol=2e-5 if dtype == np.float32 else 1e-13)
    assert s.sum() > 10  # the test exercises resets


def test_lif_tau_means_exp_minus_one_over_tau():
    cur = random_currents(0, T=10, B=2, n=4)
    for tau in (0.5, 2.0, 7.0):
        s, v = nd.lif_run(cur, tau=tau)
        s2, v2 = nd.lif_run(cur, beta=math.exp(-1.0 / tau))
        assert_array_equal(s, s2)
        assert_array_equal(v, v2)
    # the default is tau = 2
    assert_array_equal(nd.lif_run(cur)[1], nd.lif_run(cur, beta=math.exp(-0.5))[1])


# ---------------------------------------------------------------------------------------
# 1b. LIF forward against the NumPy twin on random inputs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("delay", (False, True))
def test_lif_matches_twin(dtype, reset, delay):
    cur = random_currents(11, T=25, B=4, n=40, mean=0.4, scale=0.6, dtype=dtype)
    v0 = random_currents(12, T=1, B=4, n=40, mean=0.3, scale=0.5, dtype=dtype)[0]
    kw = dict(beta=0.8, threshold=1.0, reset=reset, reset_delay=delay)
    for v_init in (None, v0):
        # the comparison of spikes is exact: every decision is far from theta compared with
        # the rounding of 25 steps (margin checked in float64; float32 rounding adds ~2e-6)
        assert twin.lif_trajectory_margin(cur, v0=v_init, **kw) > 2e-5
        s, v = nd.lif_run(cur, v0=v_init, **kw)
        ts, tv, _ = twin.lif_forward(cur, v0=v_init, **kw)
        assert s.dtype == dtype and v.dtype == dtype and s.shape == cur.shape
        assert_array_equal(s, ts)
        assert_allclose(v, tv, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6 if dtype == np.float32 else 1e-14)
        assert 0.05 < s.mean() < 0.6  # spikes and silences both occur


def test_random_shapes_layouts_and_bad_values():
    # Property test of the binding (DESIGN "Tests"): any shape (zero-size included), dtype and
    # layout either matches the twin or, with a NaN/inf planted, raises a clear error.
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.given(T=st.integers(0, 6), B=st.integers(0, 3), n=st.integers(0, 5),
                      dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
                      reset=st.sampled_from(RESETS), delay=st.booleans(), with_v0=st.booleans(),
                      beta=st.sampled_from([0.0, 0.5, 0.8, 1.0]), bad=st.sampled_from([None, np.nan, np.inf]),
                      seed=st.integers(0, 2**16))
    def check(T, B, n, dtype, layout, reset, delay, with_v0, beta, bad, seed):
        cur = random_currents(seed, T=T, B=B, n=n, dtype=dtype)
        v0 = random_currents(seed + 1, T=1, B=B, n=n, dtype=dtype)[0] if with_v0 else None
        kw = dict(beta=beta, reset=reset, reset_delay=delay)
        if bad is not None and cur.size:
            cur.flat[seed % cur.size] = bad
            with pytest.raises(ValueError, match="currents contains NaN or inf"):
                nd.lif_run(as_layout(cur, layout), v0=v0, **kw)
            return
        hypothesis.assume(cur.size == 0 or twin.lif_trajectory_margin(cur, v0=v0, **kw) > 1e-5)
        s, v = nd.lif_run(as_layout(cur, layout), v0=v0, **kw)
        ts, tv, _ = twin.lif_forward(cur, v0=v0, **kw)
        assert s.shape == cur.shape and s.dtype == dtype and v.dtype == dtype
        assert_array_equal(s, ts)
        tol = 1e-5 if dtype == np.float32 else 1e-13
        assert_allclose(v, tv, rtol=tol, atol=tol)

    check()


def test_lif_step_equals_one_step_of_run():
    cur = random_currents(5, T=15, B=3, n=7)
    v = random_currents(6, T=1, B=3, n=7)[0]
    for reset in RESETS:
        s_run, v_run = nd.lif_run(cur, beta=0.7, reset=reset, v0=v)
        s1, v1 = nd.lif_step(cur[0], v, beta=0.7, reset=reset)
        assert_array_equal(s1, s_run[0])
        assert_array_equal(v1, v_run[0])
        # stepping T times reproduces the whole run
        state = v.copy()
        for t in range(cur.shape[0]):
            st, state = nd.lif_step(cur[t], state, beta=0.7, reset=reset)
            assert_array_equal(st, s_run[t])
            assert_array_equal(state, v_run[t])
    # the caller's v is not written into
    v_before = v.copy()
    nd.lif_step(cur[0], v, beta=0.7)
    assert_array_equal(v, v_before)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lif_any_layout_same_result_caller_untouched(layout):
    cur = random_currents(8, T=9, B=3, n=5)
    want = nd.lif_run(cur, beta=0.6)
    arr = as_layout(cur, layout)
    before = np.array(arr, copy=True)
    got = nd.lif_run(arr, beta=0.6)
    assert_array_equal(got[0], want[0])
    assert_array_equal(got[1], want[1])
    assert_array_equal(arr, before)


def test_lif_dtypes_and_empty():
    cur = random_currents(9, T=4, B=2, n=3)
    # integer currents compute in float64 (lossless), float32 stays float32
    s, v = nd.lif_run(np.ones((3, 1, 2), np.int64), beta=0.5)
    assert s.dtype == np.float64 and v.dtype == np.float64
    assert_array_equal(s.ravel(), [0, 0, 1, 1, 1, 1])  # V = 1 (not above theta), 1.5, 1.25: fires
    s32, _ = nd.lif_run(cur.astype(np.float32), beta=0.5)
    assert s32.dtype == np.float32
    # zero-size axes give empty outputs of the right shape, not an error
    for shape in ((0, 2, 3), (4, 0, 3), (4, 2, 0)):
        s, v = nd.lif_run(np.zeros(shape), beta=0.5)
        assert s.shape == shape and v.shape == shape


def test_rate_decode():
    spikes = (random_currents(1, T=20, B=3, n=4) > 0.6).astype(float)
    assert_allclose(nd.rate_decode(spikes), spikes.sum(axis=0) / 20, rtol=1e-15)
    assert_allclose(nd.rate_decode(spikes.transpose(1, 0, 2), axis=1), spikes.mean(axis=0), rtol=1e-15)
    with pytest.raises(ValueError, match="time axis"):
        nd.rate_decode(np.float64(1.0))


# ---------------------------------------------------------------------------------------
# 3. Surrogate gradients
# ---------------------------------------------------------------------------------------

MODES = [(sur, reset, delay) for sur in SURROGATES for reset in RESETS for delay in (False, True)]


def loss_weights(seed, shape):
    r = np.random.default_rng(seed)
    return r.standard_normal(shape), r.standard_normal(shape)


@pytest.mark.parametrize("surrogate,reset,delay", MODES)
@pytest.mark.parametrize("slope", (4.0, 10.0))
def test_smooth_model_gradient_is_exact(surrogate, reset, delay, slope):
    # With smooth=True and detach_reset=False the backward pass is the exact gradient of the
    # smooth model; L = sum(ws * S) + sum(wm * V) checks both cotangents, and dv0 too.
    # Central differences with eps 1e-6 in float64 carry ~1e-10 absolute error on O(1)
    # gradients (and eps^2 times the third derivative, ~1e-9 at slope 10): a normwise
    # relative error below 1e-6 leaves room for nothing else.
    kw = dict(beta=0.8, threshold=1.0, reset=reset, reset_delay=delay, surrogate=surrogate, slope=slope)
    cur = random_currents(MODES.index((surrogate, reset, delay)), T=6, B=2, n=3)
    v0 = random_currents(7, T=1, B=2, n=3, mean=0.5)[0]
    ws, wm = loss_weights(1, cur.shape)

    def loss(c, v):
        s, m = smooth_forward(c, v, **kw)
        return float(np.sum(ws * s) + np.sum(wm * m))

    dcur, dv0 = nd.lif_backward(cur, ws, wm, v0=v0, detach_reset=False, smooth=True, **kw)
    num_cur = central_difference(lambda c: loss(c, v0), cur.copy())
    num_v0 = central_difference(lambda v: loss(cur, v), v0.copy())
    assert rel_err(dcur, num_cur) < 1e-6
    assert rel_err(dv0, num_v0) < 1e-6
    assert np.abs(num_cur).max() > 0.1  # not vacuous

    # the twin's forward of the same smooth model agrees with the kernel's
    ts, tm, _ = twin.lif_forward(cur, beta=0.8, reset=reset, v0=v0, reset_delay=delay, smooth=surrogate,
                                 slope=slope)
    s, m = smooth_forward(cur, v0, **kw)
    assert_allclose(s, ts, rtol=1e-13, atol=1e-15)
    assert_allclose(m, tm, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("surrogate,reset,delay", MODES)
def test_detached_reset_is_gradient_with_frozen_reset(surrogate, reset, delay):
    # detach_reset=True means: the reset signal is a constant. The model with that signal
    # frozen at the run's own values (twin.lif_forward(frozen_reset=...)) has exactly the
    # same trajectory, and its finite-difference gradient is what the kernel must return.
    kw = dict(beta=0.8, threshold=1.0, reset=reset, reset_delay=delay)
    cur = random_currents(100 + MODES.index((surrogate, reset, delay)), T=6, B=2, n=3)
    v0 = random_currents(8, T=1, B=2, n=3, mean=0.5)[0]
    ws, wm = loss_weights(2, cur.shape)
    _, _, frozen = twin.lif_forward(cur, v0=v0, smooth=surrogate, slope=4.0, **kw)

    def loss(c, v):
        s, m, _ = twin.lif_forward(c, v0=v, smooth=surrogate, slope=4.0, frozen_reset=frozen, **kw)
        return float(np.sum(ws * s) + np.sum(wm * m))

    dcur, dv0 = nd.lif_backward(cur, ws, wm, v0=v0, surrogate=surrogate, slope=4.0, detach_reset=True,
                                smooth=True, **kw)
    assert rel_err(dcur, central_difference(lambda c: loss(c, v0), cur.copy())) < 1e-6
    assert rel_err(dv0, central_difference(lambda v: loss(cur, v), v0.copy())) < 1e-6
    # and detaching changes the answer (the test distinguishes the two settings)
    dfull, _ = nd.lif_backward(cur, ws, wm, v0=v0, surrogate=surrogate, slope=4.0, detach_reset=False,
                               smooth=True, **kw)
    assert rel_err(dcur, dfull) > 1e-3


@pytest.mark.parametrize("surrogate,reset,delay", MODES)
@pytest.mark.parametrize("detach", (True, False))
def test_hard_forward_backward_matches_twin(surrogate, reset, delay, detach):
    # The training setting: hard spikes forward, surrogate backward. Compared with the twin's
    # hand-derived recursion, with both cotangents, one of them, and with v0.
    kw = dict(beta=0.75, threshold=1.0, reset=reset, reset_delay=delay, slope=10.0)
    cur = random_currents(200 + MODES.index((surrogate, reset, delay)), T=12, B=3, n=8)
    v0 = random_currents(9, T=1, B=3, n=8, mean=0.4)[0]
    ws, wm = loss_weights(3, cur.shape)
    for ds, dm, v in ((ws, wm, v0), (ws, None, None), (None, wm, v0)):
        got_c, got_v = nd.lif_backward(cur, ds, dm, v0=v, surrogate=surrogate, detach_reset=detach, **kw)
        want_c, want_v = twin.lif_backward(cur, ds, dm, v0=v, surrogate_kind=surrogate, detach_reset=detach, **kw)
        assert_allclose(got_c, want_c, rtol=1e-12, atol=1e-14)
        assert_allclose(got_v, want_v, rtol=1e-12, atol=1e-14)
    # no cotangent at all: zero gradients
    zc, zv = nd.lif_backward(cur, v0=v0, surrogate=surrogate, detach_reset=detach, **kw)
    assert not zc.any() and not zv.any()


def test_surrogate_shapes():
    # dS/dV of the three surrogates, read off the backward pass of one step with dspikes = 1:
    # at x = V - theta = 0 they peak at k/4 (sigmoid), 1 (fast sigmoid) and k/2 (atan).
    x = np.array([-0.3, -0.05, 0.0, 0.02, 0.4])
    cur = (1.0 + x).reshape(1, 1, -1)
    for kind, peak in (("sigmoid", 10 / 4), ("fast_sigmoid", 1.0), ("atan", 10 / 2)):
        d, _ = nd.lif_backward(cur, np.ones_like(cur), beta=0.5, surrogate=kind, slope=10.0)
        assert_allclose(d.ravel(), twin.surrogate(kind, 10.0, (1.0 + x) - 1.0), rtol=1e-12)
        assert_allclose(d.ravel()[2], peak, rtol=1e-15)
    # the derivative of the smooth spike is the surrogate (twin self-check, by differences)
    xs = np.linspace(-1, 1, 41) + 1e-3
    for kind in SURROGATES:
        num = (twin.smooth_spike(kind, 3.0, xs + 1e-6) - twin.smooth_spike(kind, 3.0, xs - 1e-6)) / 2e-6
        assert_allclose(twin.surrogate(kind, 3.0, xs), num, rtol=1e-7)


def test_backward_float32_follows_float64():
    cur = random_currents(21, T=10, B=2, n=6)
    ws, wm = loss_weights(4, cur.shape)
    d64, v64 = nd.lif_backward(cur, ws, wm, beta=0.75)
    d32, v32 = nd.lif_backward(cur.astype(np.float32), ws.astype(np.float32), wm.astype(np.float32), beta=0.75)
    assert d32.dtype == np.float32 and v32.dtype == np.float32
    assert_allclose(d32, d64, rtol=1e-4, atol=1e-5)
    # the default decay is tau = 2 in the backward pass as in the forward
    assert_array_equal(nd.lif_backward(cur, ws)[0], nd.lif_backward(cur, ws, beta=math.exp(-0.5))[0])


# ---------------------------------------------------------------------------------------
# 3b. The SNN's gradient against the twin's BPTT
# ---------------------------------------------------------------------------------------


def perturbed_snn(seed=0, **kw):
    """A small float64 SNN whose biases are moved off zero (so their gradients are not checked
    only at an accidental zero) and whose first layer is scaled up so that neurons spike."""
    net = nd.SNN(5, 3, dtype=np.float64, seed=seed, **kw)
    r = np.random.default_rng(seed + 1)
    for name, value in net.params.items():
        if name.endswith(".bias"):
            net.params[name] = 0.3 * r.standard_normal(value.shape)
        elif name.startswith("snn_layer"):
            net.params[name] = value * 2.5
    return net


SNN_CASES = [
    dict(encoding="constant", surrogate="sigmoid", reset="subtract", loss="cross_entropy"),
    dict(encoding="constant", surrogate="fast_sigmoid", reset="zero", loss="mse"),
    dict(encoding="poisson", surrogate="atan", reset="subtract", loss="cross_entropy"),
    dict(encoding="latency", surrogate="sigmoid", reset="zero", loss="cross_entropy"),
]


@pytest.mark.parametrize("case", SNN_CASES, ids=lambda c: "-".join(c.values()))
def test_snn_loss_and_grad_matches_twin(case):
    case = dict(case)
    loss = case.pop("loss")
    T, hidden = 8, (7, 6)
    net = perturbed_snn(hidden_sizes=hidden, num_timesteps=T, tau=3.0, threshold=0.9, slope=5.0, **case)
    r = np.random.default_rng(4)
    x = r.uniform(0, 1, (4, 5))
    y = r.integers(0, 3, 4) if loss == "cross_entropy" else r.standard_normal((4, 3))
    seed = 17
    enc = {"constant": None, "poisson": nd.encode.poisson(x, T, seed), "latency": nd.encode.latency(x, T)}
    value, grads = net.loss_and_grad(x, y, loss=loss, seed=seed)
    want_value, want, want_out = twin.snn_loss_and_grad(
        net.params, x, y, hidden_sizes=hidden, num_timesteps=T, beta=math.exp(-1 / 3.0), threshold=0.9,
        reset=case["reset"], surrogate_kind=case["surrogate"], slope=5.0, loss=loss,
        encoded=enc[case["encoding"]])
    # the hard forward passes agree exactly (decisions are well away from theta) ...
    layers = net.spikes(x, seed=seed)
    assert [s.shape for s in layers] == [(T, 4, 7), (T, 4, 6)]
    assert 0.05 < np.mean([s.mean() for s in layers]) < 0.95
    assert_allclose(net(x, seed=seed), want_out, rtol=1e-12, atol=1e-13)
    # ... and so do the loss and every gradient (the same arithmetic up to summation order)
    assert set(grads) == set(net.params)
    assert abs(value - want_value) <= 1e-12 * abs(want_value)
    for name in net.params:
        assert grads[name].shape == net.params[name].shape and grads[name].dtype == np.float64
        assert rel_err(grads[name], want[name]) < 1e-10, name
    assert np.abs(grads["snn_layer_0_dense.kernel"]).max() > 1e-4  # the gradient reaches the first layer


def test_snn_float32_gradient_follows_float64():
    net64 = perturbed_snn(hidden_sizes=(6,), num_timesteps=6)
    net32 = nd.SNN(5, 3, hidden_sizes=(6,), num_timesteps=6, seed=0)
    net32.params = {k: v.astype(np.float32) for k, v in net64.params.items()}
    x = np.random.default_rng(5).uniform(0, 1, (3, 5))
    y = np.array([0, 2, 1])
    v64, g64 = net64.loss_and_grad(x, y)
    v32, g32 = net32.loss_and_grad(x.astype(np.float32), y)
    assert abs(v32 - v64) < 1e-5
    for k in g64:
        assert g32[k].dtype == np.float32
        assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------------------
# 4. The SNN learns digits
# ---------------------------------------------------------------------------------------


def digits_split():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    d = datasets.load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return model_selection.train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)


def test_snn_learns_digits():
    xtr, xte, ytr, yte = digits_split()
    net = nd.SNN(64, 10, hidden_sizes=(128,), num_timesteps=10, seed=0)
    hist = net.fit(xtr, ytr, epochs=8, batch_size=64, lr=2e-3, seed=0, verbose=False).history_
    losses = np.asarray(hist["loss"])
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    acc = np.mean(net(xte).argmax(axis=1) == yte)
    assert acc >= 0.90, acc  # measured 95.6% (450 test images)


def test_snn_fit_is_reproducible():
    r = np.random.default_rng(0)
    x, y = r.uniform(0, 1, (40, 5)).astype(np.float32), r.integers(0, 3, 40)
    runs = []
    for _ in range(2):
        net = nd.SNN(5, 3, hidden_sizes=(8,), num_timesteps=5, encoding="poisson", seed=3)
        net.fit(x, y, epochs=2, batch_size=16, seed=9, verbose=False)
        runs.append(net.params)
    for k in runs[0]:
        assert_array_equal(runs[0][k], runs[1][k])


# ---------------------------------------------------------------------------------------
# 5. Encoders
# ---------------------------------------------------------------------------------------


def test_poisson_rates_within_monte_carlo_error():
    # Each entry fires Bernoulli(p) at each of T = 4000 steps; its rate has standard deviation
    # sqrt(p (1 - p) / T) <= 0.0079. Allowing 5 standard deviations per entry, the chance that
    # any of the 11 entries fails by bad luck is below 1e-5 (and the seed is fixed anyway).
    p = np.linspace(0, 1, 11)
    T = 4000
    s = nd.encode.poisson(p, T, seed=123)
    assert s.shape == (T, 11) and s.dtype == np.float64
    assert set(np.unique(s)) <= {0.0, 1.0}
    rate = s.mean(axis=0)
    sd = np.sqrt(p * (1 - p) / T)
    assert np.all(np.abs(rate - p) <= 5 * sd + 1e-12)
    assert rate[0] == 0.0 and rate[-1] == 1.0  # p = 0 never fires, p = 1 always does
    # steps are independent: the lag-1 correlation of the p = 0.5 train is within 5 / sqrt(T)
    z = s[:, 5] - s[:, 5].mean()
    assert abs(np.dot(z[1:], z[:-1]) / np.dot(z, z)) < 5 / np.sqrt(T)
    # and entries are independent of each other: two p = 0.5 entries of a wider input
    s2 = nd.encode.poisson(np.full(2, 0.5), T, seed=5)
    assert abs(np.corrcoef(s2[:, 0], s2[:, 1])[0, 1]) < 5 / np.sqrt(T)


def test_poisson_seeds_and_clipping():
    x = np.random.default_rng(0).uniform(0, 1, (3, 4)).astype(np.float32)
    a = nd.encode.poisson(x, 50, seed=7)
    assert a.shape == (50, 3, 4) and a.dtype == np.float32
    assert_array_equal(a, nd.encode.poisson(x, 50, seed=7))
    assert (a != nd.encode.poisson(x, 50, seed=8)).any()
    # a Generator seed moves on like any other use of the generator, reproducibly
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert_array_equal(nd.encode.poisson(x, 20, g1), nd.encode.poisson(x, 20, g2))
    assert (nd.encode.poisson(x, 20, g1) != nd.encode.poisson(x, 20, np.random.default_rng(1))).any()
    # out-of-range intensities are clipped to [0, 1]: never / always
    c = nd.encode.poisson(np.array([-3.0, -1e-9, 1.0 + 1e-9, 7.0]), 200, seed=0)
    assert_array_equal(c.sum(axis=0), [0, 0, 200, 200])


def test_poisson_same_seed_whatever_the_threads():
    x = np.random.default_rng(2).uniform(0, 1, (64, 50))
    want = nd.encode.poisson(x, 30, seed=11)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: nd.encode.poisson(x, 30, seed=11), range(8)))
    for g in got:
        assert_array_equal(g, want)


def test_latency_times_exact():
    T = 11
    x = np.array([1.0, 0.9, 0.55, 0.5, 0.26, 0.01, 0.0, -0.5, 3.0])
    s = nd.encode.latency(x, T)
    assert s.shape == (T, 9)
    for i, xi in enumerate(x):
        step = twin.latency_step(xi, T)
        if step is None:
            assert not s[:, i].any(), xi
        else:
            assert s[:, i].sum() == 1 and s[step, i] == 1, (xi, step, np.flatnonzero(s[:, i]))
    # by hand: (1 - x)(T - 1) = 0, 1, 4.5 -> 5 (half away from zero, C's round), 5, 7.4 -> 7, 9.9 -> 10
    assert_array_equal(s[:, :6].argmax(axis=0), [0, 1, 5, 5, 7, 10])
    assert s[0, 8] == 1  # x > 1 is clipped to 1: the earliest step
    # a batch keeps its shape, float32 stays float32; T = 1 puts every positive input at step 0
    b = nd.encode.latency(np.array([[0.2, 0.0], [1.0, 0.7]], np.float32), 1)
    assert b.dtype == np.float32
    assert_array_equal(b, [[[1, 0], [1, 1]]])


def test_constant_encoding():
    x = np.random.default_rng(3).uniform(0, 1, (2, 3))
    c = nd.encode.constant(x, 4)
    assert c.shape == (4, 2, 3)
    for t in range(4):
        assert_array_equal(c[t], x)
    c[0, 0, 0] = 99.0  # a copy: writing into it does not touch x or the other steps
    assert x[0, 0] != 99.0 and c[1, 0, 0] == x[0, 0]


def test_snn_constant_encoding_drives_first_layer_every_step():
    # SNN with encoding="constant": layer 0 sees Dense(x) at every step, i.e. its spikes are
    # lif_run of the broadcast currents
    net = perturbed_snn(hidden_sizes=(6,), num_timesteps=7, tau=2.0)
    x = np.random.default_rng(6).uniform(0, 1, (3, 5))
    cur = x @ net.params["snn_layer_0_dense.kernel"] + net.params["snn_layer_0_dense.bias"]
    s, _ = nd.lif_run(np.broadcast_to(cur, (7, 3, 6)))
    assert_array_equal(net.spikes(x)[0], s)
    want = s.mean(axis=0) @ net.params["snn_output.kernel"] + net.params["snn_output.bias"]
    assert_allclose(net(x), want, rtol=1e-13)


# ---------------------------------------------------------------------------------------
# 6. Bad input
# ---------------------------------------------------------------------------------------


def test_lif_bad_input():
    cur = random_currents(0, T=3, B=2, n=2)
    with pytest.raises(ValueError, match=r"currents has shape \(3, 4\); expected 3 axes \(time, batch, neurons\)"):
        nd.lif_run(np.ones((3, 4)))
    with pytest.raises(ValueError, match="currents"):
        nd.lif_backward(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="tau must be > 0"):
        nd.lif_run(cur, tau=-1.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        nd.lif_run(cur, tau=0.0)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        nd.lif_run(cur, threshold=-1.0)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        nd.lif_run(cur, threshold=0.0)
    with pytest.raises(ValueError, match="beta"):
        nd.lif_run(cur, beta=1.5)
    with pytest.raises(ValueError, match="beta"):
        nd.lif_run(cur, beta=-0.1)
    with pytest.raises(ValueError, match="reset='hard' is not one of"):
        nd.lif_run(cur, reset="hard")
    with pytest.raises(ValueError, match="surrogate='relu' is not one of"):
        nd.lif_backward(cur, cur, surrogate="relu")
    with pytest.raises(ValueError, match="slope must be > 0"):
        nd.lif_backward(cur, cur, slope=0.0)
    with pytest.raises(ValueError, match="currents contains NaN or inf"):
        nd.lif_run(np.where(cur > 0.5, np.nan, cur))
    with pytest.raises(ValueError, match="currents contains NaN or inf"):
        nd.lif_run(np.full((2, 1, 1), np.inf))
    with pytest.raises(ValueError, match="v0"):
        nd.lif_run(cur, v0=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="v0 contains NaN"):
        nd.lif_run(cur, v0=np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="dspikes has shape"):
        nd.lif_backward(cur, np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="dmembrane contains NaN"):
        nd.lif_backward(cur, None, np.full(cur.shape, np.nan))
    with pytest.raises(TypeError, match="currents"):
        nd.lif_run(np.ones((2, 1, 1), complex))
    with pytest.raises(ValueError, match=r"current must have shape \(batch, neurons\)"):
        nd.lif_step(cur, cur[0])
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.if_neuron(0.5, num_timesteps=0)


def test_tau_and_beta_together_refused():
    with pytest.raises(ValueError, match="tau or beta"):
        nd.lif_run(np.ones((2, 1, 1)), tau=5.0, beta=0.5)


def _lif_entries(kwargs):
    """Every public entry that takes the LIF parameters in kwargs (the integrate-and-fire ones
    fix beta, the models take tau but not beta)."""
    cur = np.full((5, 2, 3), 0.5)
    calls = {
        "lif_run": lambda: nd.lif_run(cur, **kwargs),
        "lif_rate": lambda: nd.lif_rate(cur, **kwargs),
        "lif_step": lambda: nd.lif_step(cur[0], cur[0], **kwargs),
        "lif_backward": lambda: nd.lif_backward(cur, cur, **kwargs),
    }
    if "beta" not in kwargs:
        calls["SNN"] = lambda: nd.SNN(3, 2, hidden_sizes=(4,), **kwargs)
    if set(kwargs) == {"threshold"}:
        calls["if_neuron"] = lambda: nd.if_neuron(cur[0], **kwargs)
        calls["ann2snn"] = lambda: nd.ann2snn(nd.ANN(3, hidden_sizes=(4,), seed=0), np.ones((2, 3)), **kwargs)
    return calls


@pytest.mark.parametrize("kwargs,message", [
    ({"beta": 1.5}, "beta must lie in [0, 1], got 1.5"),
    ({"beta": -0.25}, "beta must lie in [0, 1], got -0.25"),
    ({"beta": np.nan}, "beta must lie in [0, 1], got nan"),
    ({"tau": -1.0}, "tau must be > 0 and finite, got -1"),
    ({"tau": 0.0}, "tau must be > 0 and finite, got 0"),
    ({"tau": np.inf}, "tau must be > 0 and finite, got inf"),
    ({"tau": 2.0, "beta": 0.5}, "tau or beta may be given, not both"),
    ({"threshold": 0.0}, "threshold must be > 0 and finite, got 0"),
    ({"threshold": np.nan}, "threshold must be > 0 and finite, got nan"),
    ({"threshold": -0.5}, "threshold must be > 0 and finite, got -0.5"),
])
def test_lif_parameter_rules_give_one_message(kwargs, message):
    """The rules live in the kernel's parameter check (nd_lif_params_check): every entry that
    takes beta, tau or threshold, and the models at construction, give its message."""
    for name, call in _lif_entries(kwargs).items():
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message, name


def test_lif_defaults_and_names_come_from_the_kernel():
    """Signature defaults are the kernel's (nd_lif_params_default, read through _core.DEFAULTS),
    option names its tables; tau gives the decay exp(-1/tau) in the kernel, bit for bit as a
    beta computed in Python, and the ends of beta's range are allowed."""
    import inspect

    d = _core.DEFAULTS["lif_backward"]
    assert d["tau"] == 2.0 and d["beta"] == math.exp(-0.5) and d["threshold"] == 1.0
    for fn in (nd.lif_run, nd.lif_rate, nd.lif_step, nd.lif_backward, nd.SNN):
        for name, p in inspect.signature(fn).parameters.items():
            if name in d and p.default is not None:
                assert p.default == d[name], (fn, name)
    assert nd.snn.SURROGATES == _core.TABLES["lif_surrogates"] == ("sigmoid", "fast_sigmoid", "atan")
    assert nd.snn.RESETS == _core.TABLES["lif_resets"] == ("subtract", "zero")
    cur = random_currents(4, T=9, B=2, n=5)
    for tau in (0.3, 2.0, 17.0):
        for a, b in zip(nd.lif_run(cur, tau=tau), nd.lif_run(cur, beta=math.exp(-1.0 / tau))):
            assert_array_equal(a, b)
    for a, b in zip(nd.lif_run(cur), nd.lif_run(cur, tau=2.0)):
        assert_array_equal(a, b)
    for beta in (0.0, 1.0):
        s, v = nd.lif_run(cur, beta=beta)
        _, want, _ = twin.lif_forward(cur, beta=beta)
        assert_allclose(v, want, rtol=1e-13, atol=1e-13)


def test_encoder_bad_input():
    with pytest.raises(ValueError, match="x contains NaN"):
        nd.encode.poisson(np.array([0.5, np.nan]), 5, seed=0)
    with pytest.raises(ValueError, match="x contains NaN"):
        nd.encode.latency(np.array([np.inf]), 5)
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.encode.poisson([0.5], 0, seed=0)
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.encode.latency([0.5], -2)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        nd.encode.poisson([0.5], 3, seed=-1)
    with pytest.raises(TypeError, match="num_timesteps must be an integer"):
        nd.encode.constant([0.5], 2.5)


def test_snn_bad_input():
    with pytest.raises(ValueError, match="encoding='rate' is not one of"):
        nd.SNN(4, 2, encoding="rate")
    with pytest.raises(ValueError, match="surrogate='step' is not one of"):
        nd.SNN(4, 2, surrogate="step")
    with pytest.raises(ValueError, match="reset='none' is not one of"):
        nd.SNN(4, 2, reset="none")
    with pytest.raises(ValueError, match="tau must be > 0"):
        nd.SNN(4, 2, tau=-2.0)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        nd.SNN(4, 2, threshold=-1.0)
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.SNN(4, 2, num_timesteps=0)
    with pytest.raises(ValueError, match=r"hidden_sizes\[1\] must be >= 1"):
        nd.SNN(4, 2, hidden_sizes=(3, 0))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        nd.SNN(4, 2, dtype=np.float16)
    net = nd.SNN(4, 2, hidden_sizes=(3,), num_timesteps=3, seed=0)
    with pytest.raises(ValueError, match=r"x has shape \(2, 5\); expected \(batch, 4\)"):
        net(np.ones((2, 5)))
    with pytest.raises(ValueError, match="x has shape"):
        net(np.ones(4))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        net(np.array([[0.1, np.nan, 0.2, 0.3]]))
    with pytest.raises(ValueError, match="x contains NaN"):
        net.loss_and_grad(np.full((1, 4), np.nan), np.array([0]))
    with pytest.raises(ValueError, match="loss='hinge' is not one of"):
        net.loss_and_grad(np.ones((1, 4)), np.array([0]), loss="hinge")
    with pytest.raises(ValueError, match="labels must lie in"):
        net.loss_and_grad(np.ones((1, 4)), np.array([2]))
    with pytest.raises(ValueError, match="x has 2 samples"):
        net.fit(np.ones((2, 4)), np.array([0]), verbose=False)


# ---------------------------------------------------------------------------------------
# 7. save / load / pickle
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_snn_save_load_pickle_bit_for_bit(tmp_path, dtype):
    net = nd.SNN(6, 3, hidden_sizes=(9, 5), num_timesteps=6, tau=3.0, threshold=0.8, surrogate="atan", slope=7.0,
                 encoding="poisson", reset="zero", seed=4, dtype=dtype)
    r = np.random.default_rng(1)
    x = r.uniform(0, 1, (10, 6)).astype(dtype)
    net.fit(x, r.integers(0, 3, 10), epochs=1, batch_size=5, seed=0, verbose=False)  # non-initial parameters
    path = tmp_path / "snn.npz"
    net.save(path)
    for other in (nd.load(path), pickle.loads(pickle.dumps(net))):
        assert type(other) is nd.SNN
        assert other.config == net.config
        assert list(other.params) == list(net.params)
        for k, v in net.params.items():
            assert other.params[k].dtype == v.dtype
            assert_array_equal(other.params[k], v)
            assert other.params[k].tobytes() == v.tobytes()
        assert_array_equal(other(x, seed=3), net(x, seed=3))
    assert repr(nd.load(path)) == repr(net)


def test_snn_parameter_names_and_defaults():
    net = nd.SNN(5, 2, seed=0)
    assert list(net.params) == ["snn_layer_0_dense.kernel", "snn_layer_0_dense.bias", "snn_layer_1_dense.kernel",
                                "snn_layer_1_dense.bias", "snn_output.kernel", "snn_output.bias"]
    assert net.params["snn_layer_0_dense.kernel"].shape == (5, 256)
    assert net.params["snn_layer_1_dense.kernel"].shape == (256, 128)
    assert net.params["snn_output.kernel"].shape == (128, 2)
    c = net.config
    assert (c["num_timesteps"], c["tau"], c["threshold"], c["surrogate"], c["slope"], c["encoding"], c["reset"]) == \
        (25, 2.0, 1.0, "sigmoid", 10.0, "constant", "subtract")
    assert net.params["snn_output.kernel"].dtype == np.float32
    assert not net.params["snn_layer_0_dense.bias"].any()  # zero bias (glorot kernels)
    assert_array_equal(nd.SNN(5, 2, seed=0).params["snn_layer_0_dense.kernel"], net.params["snn_layer_0_dense.kernel"])


# ---------------------------------------------------------------------------------------
# 8. snntorch as a peer (optional)
# ---------------------------------------------------------------------------------------


def test_reset_delay_reproduces_snntorch_leaky():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    r = np.random.default_rng(0)
    T, B, n = 40, 4, 30
    cur = (0.35 + 0.5 * r.standard_normal((T, B, n))).astype(np.float32)
    for beta in (0.5, 0.9):
        lif = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="subtract")
        mem = lif.reset_mem()
        spikes, mems = [], []
        with torch.no_grad():
            for t in range(T):
                spk, mem = lif(torch.from_numpy(cur[t]), mem)
                spikes.append(spk.numpy().copy())
                mems.append(mem.numpy().copy())
        s, v = nd.lif_run(cur, beta=beta, reset_delay=True)
        assert 0.05 < s.mean() < 0.6
        assert_array_equal(s, np.stack(spikes))
        assert_allclose(v, np.stack(mems), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lif_backward_takes_one_dspikes_row_for_every_step(dtype):
    """A (B, n) dspikes is the same cotangent at every step: the result is that of the
    broadcast (T, B, n) raster, bit for bit, without the T-fold copy."""
    rng = np.random.default_rng(8)
    cur = rng.normal(0.7, 0.8, size=(9, 5, 301)).astype(dtype)
    row = rng.normal(size=(5, 301)).astype(dtype)
    dm = rng.normal(size=cur.shape).astype(dtype)
    for kw in ({}, {"reset_delay": True}, {"reset": "zero", "surrogate": "atan"}):
        a = nd.lif_backward(cur, row, dm, **kw)
        b = nd.lif_backward(cur, np.broadcast_to(row, cur.shape).copy(), dm, **kw)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="dspikes"):
        nd.lif_backward(cur, row[:, :-1])
    with pytest.raises(ValueError, match="dspikes"):
        nd.lif_backward(cur, np.full((5, 301), np.nan, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_lif_shared_current_is_read_without_copies(dtype, threads):
    """A current broadcast along time (a zero time stride, as np.broadcast_to gives) runs as
    its (T, B, n) copy does, bit for bit; the kernel's sum_time gradient is the per-step
    gradient summed over steps (up to rounding: another summation order, another loop)."""
    rng = np.random.default_rng(11)
    one = rng.normal(0.5, 0.7, size=(3, 301)).astype(dtype)
    view = np.broadcast_to(one, (13,) + one.shape)
    copy = np.ascontiguousarray(view)
    ds = rng.normal(size=copy.shape).astype(dtype)
    before = nd.get_num_threads()
    try:
        nd.set_num_threads(threads)
        for kw in ({}, {"reset_delay": True}, {"reset": "zero"}):
            for a, b in zip(nd.lif_run(view, **kw), nd.lif_run(copy, **kw)):
                assert_array_equal(a, b)
            kw = dict(kw, surrogate="fast_sigmoid" if kw.get("reset") else "sigmoid")
            full, dv_full = _core.lif_backward(copy, dspikes=ds, **kw)
            for cur in (view, copy):
                summed, dv = _core.lif_backward(cur, dspikes=ds, sum_time=True, **kw)
                assert summed.shape == one.shape and summed.dtype == dtype
                tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
                assert_allclose(summed, full.sum(axis=0), **tol)
                # the two modes are separately compiled loops: equal up to contraction and rounding
                assert_allclose(dv, dv_full, **tol)
            for a, b in zip(nd.lif_backward(view, ds, **kw), nd.lif_backward(copy, ds, **kw)):
                assert_array_equal(a, b)
    finally:
        nd.set_num_threads(before)
    assert_array_equal(one, copy[0])  # the input untouched
    with pytest.raises(ValueError, match="NaN"):
        nd.lif_run(np.broadcast_to(np.full((3, 4), np.nan, dtype), (5, 3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lif_rate_is_the_mean_of_the_spikes(dtype):
    rng = np.random.default_rng(12)
    cur = rng.normal(0.6, 0.9, size=(17, 4, 301)).astype(dtype)
    for kw in ({}, {"reset_delay": True}, {"reset": "zero", "beta": 0.8}):
        v0 = rng.normal(size=(4, 301)).astype(dtype)
        r = nd.lif_rate(cur, v0=v0, **kw)
        assert r.shape == (4, 301) and r.dtype == dtype
        assert_array_equal(r, nd.lif_run(cur, v0=v0, **kw)[0].mean(axis=0))
    # golden: beta 0.5, I = 0.75 spikes at steps 2 and 4 of 4 (the docstring trajectory)
    assert nd.lif_rate(np.full((4, 1, 1), 0.75, dtype), beta=0.5)[0, 0] == 0.5
    with pytest.raises(ValueError, match="at least one time step"):
        nd.lif_rate(np.zeros((0, 2, 3), dtype))
    with pytest.raises(ValueError, match="time, batch, neurons"):
        nd.lif_rate(np.zeros((2, 3), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lif_backward_out_overwrites_the_currents(dtype):
    """out=currents gives the same gradient bit for bit, written over the currents; any other
    out, or one sharing memory with another input, is refused and nothing is written."""
    rng = np.random.default_rng(13)
    cur = rng.normal(0.6, 0.9, size=(9, 3, 301)).astype(dtype)
    ds = rng.normal(size=(3, 301)).astype(dtype)
    dm = rng.normal(size=cur.shape).astype(dtype)
    for kw in ({}, {"reset_delay": True, "surrogate": "atan"}):
        want, dv_want = nd.lif_backward(cur, ds, dm, **kw)
        work = cur.copy()
        got, dv = nd.lif_backward(work, ds, dm, out=work, **kw)
        assert got is work
        assert_array_equal(got, want)
        assert_array_equal(dv, dv_want)
    work = cur.copy()
    for bad in (np.empty_like(cur), cur.astype(np.float64 if dtype == np.float32 else np.float32)):
        with pytest.raises(ValueError, match="out must be the currents array"):
            nd.lif_backward(work, ds, out=bad)
    with pytest.raises(ValueError, match="out must be the currents array"):
        nd.lif_backward(work[:, :, ::2], ds[:, ::2], out=work[:, :, ::2])
    with pytest.raises(ValueError, match="shares memory"):
        nd.lif_backward(work, None, work, out=work)
    assert_array_equal(work, cur)


def test_lif_run_can_skip_the_membrane():
    cur = np.random.default_rng(3).normal(0.6, 1.0, size=(7, 3, 11))
    s, m = nd.lif_run(cur, reset_delay=True)
    s2, none = nd.lif_run(cur, reset_delay=True, membrane=False)
    assert none is None
    np.testing.assert_array_equal(s, s2)
    with pytest.raises(TypeError, match="membrane"):
        nd.lif_run(cur, membrane="no")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(3, 1, 1), (7, 3, 5), (4, 5, 203), (70, 3, 301)])  # B*n not byte-aligned;
# the last is split over two threads (rows of 903 neurons in 256-neuron ranges)
def test_kept_spike_bits_are_the_spikes(threads, shape):
    """The bits the forward pass keeps for the backward pass hold exactly its spikes, also
    where a byte straddles two threads' ranges or two time steps."""
    rng = np.random.default_rng(5)
    cur = rng.uniform(-0.5, 1.5, size=shape)
    before = nd.get_num_threads()
    try:
        nd.set_num_threads(threads)
        s, _, bits, _, _ = _core.lif_forward(cur, beta=0.7, bits=True)
        unpacked = _core.spike_bits_unpack(bits, *shape, cur)
    finally:
        nd.set_num_threads(before)
    assert 0 < s.sum() < s.size
    np.testing.assert_array_equal(unpacked, s)
    np.testing.assert_array_equal(np.unpackbits(bits, bitorder="little")[: s.size].reshape(shape), s)
