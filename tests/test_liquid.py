"""The Liquid family (docs/models.md §1 and §3): nd.ltc_scan and its backward kernel, and Edifice's
Liquid model.

- the scan: the golden values of docs/models.md, a NumPy twin that steps each method literally, frame-by-frame
  nd.solve_ltc, convergence at each method's order, dtypes, layouts, per-sample dopri5;
- gradients of the scan and of the whole model against central finite differences (float64);
- the model's forward against a NumPy twin, its parameter names/shapes and Edifice defaults;
- streaming (init_cache/step) against the whole-sequence call, training on two small tasks,
  dropout, save/load/pickle, and bad input.

Sizes are kept tiny (hidden 3-6, batch 2-3, T 3-5) so that every parameter entry can be
differentiated numerically and the file runs in a few seconds.
"""
from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
from neurodyn import _core

import reference_liquid as twin
import reference_nn as ref_nn
from conftest import LAYOUTS, as_layout

SOLVERS = ("exact", "euler", "midpoint", "rk4", "dopri5")


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def scan_inputs(seed=0, B=3, T=4, H=5, tau_range=(0.6, 3.0)):
    """Random a, tau, h0 in float64. tau stays in a range where every method is stable with
    one substep (|R(-1/tau)| <= 1: euler and midpoint need tau > 0.5, rk4 tau > 0.359); the
    scan refuses unstable factors, which has tests of its own."""
    r = np.random.default_rng(seed)
    return (r.normal(size=(B, T, H)), r.uniform(*tau_range, size=(B, T, H)), r.normal(size=(B, H)))


def assert_grad_close(analytic, numeric, rtol, what="", atol=1e-8):
    """Every entry within rtol of the finite difference, plus a floor: 1% of the largest entry
    (relative to the array) and ``atol`` absolute. The central difference with eps 1e-6 carries
    an absolute round-off of ~1e-16 |L| / 1e-6 = 1e-10 for a loss of order 1 (more after a few
    layer norms), so entries that are tiny by cancellation cannot be checked relatively; atol
    is 100 times that noise. The whole array is also checked normwise."""
    g, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    assert g.shape == n.shape, what
    floor = 1e-2 * np.max(np.abs(n), initial=0.0)
    bad = np.abs(g - n) > rtol * (np.abs(n) + floor) + atol
    assert not bad.any(), f"{what}: worst |g - n| = {np.max(np.abs(g - n)):.3g} at {np.argwhere(bad)[:3].tolist()}"
    assert ref_nn.rel_err(g, n) < rtol, what


# The model's tau is at least 0.1, and a fixed-step method with k substeps is stable only for
# k tau above 0.5 (euler, midpoint) or 0.359 (rk4); the scan refuses unstable factors. Models
# in these tests therefore take at least this many substeps.
MIN_STABLE_STEPS = {"euler": 6, "midpoint": 6, "rk4": 4}


def stable_steps(solver, steps):
    return max(steps, MIN_STABLE_STEPS.get(solver, 1))


def make(solver="rk4", *, embed=3, hidden=4, layers=2, ffn=False, output_size=2, steps=1, tol=None,
         dropout=0.0, dtype=np.float64, seed=1, perturb=True):
    """A tiny model. ``perturb`` moves every parameter off its initial value (zero biases, unit
    gamma, zero beta), so no gradient term is checked only at a point where it vanishes by
    accident. ``tol`` sets dopri5's rtol = atol."""
    kw = {} if tol is None else {"rtol": tol, "atol": tol, "max_steps": 10_000}
    m = nd.Liquid(embed, hidden_size=hidden, num_layers=layers, dropout=dropout,
                  integration_steps=stable_steps(solver, steps), solver=solver, ffn=ffn, output_size=output_size,
                  seed=seed, dtype=dtype, **kw)
    if perturb:
        r = np.random.default_rng(100 + seed)
        for p in m.params.values():
            p += (0.3 * r.normal(size=p.shape)).astype(p.dtype)
    return m


def model_data(seed=3, B=2, T=4, embed=3, out=2):
    r = np.random.default_rng(seed)
    return r.normal(size=(B, T, embed)), r.normal(size=(B, out))


def check_model_gradient(model, x, y, rtol, loss="mse", **kw):
    """loss_and_grad against central differences of the loss for every parameter entry."""
    _, grads = model.loss_and_grad(x, y, loss=loss, **kw)
    assert set(grads) == set(model.params)
    names = list(model.params)
    num = ref_nn.central_difference(lambda: model.loss_and_grad(x, y, loss=loss, **kw)[0],
                                    [model.params[k] for k in names])
    for k, n in zip(names, num):
        assert grads[k].dtype == model.params[k].dtype and grads[k].shape == model.params[k].shape, k
        assert_grad_close(grads[k], n, rtol, k)


# ---------------------------------------------------------------------------------------
# 1. docs/models.md §1 golden values through the scan (T = 1, h0 = x)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver, steps, a, expected, tol64", [
    ("euler", 1, 0.5, 0.5, 0.0),               # 1 + (0.5 - 1): dyadic, exact in any precision
    ("midpoint", 1, 0.5, 0.75, 0.0),           # slope at the half step -0.25
    ("rk4", 1, 0.5, 0.6875, 0.0),              # 1 - (0.5 + 2*0.25 + 2*0.375 + 0.125) / 6
    ("exact", 1, 0.5, 0.6839397206, 1e-10),    # 0.5 + 0.5 e^-1
    ("euler", 10, 0.0, 0.3486784401, 1e-10),   # 0.9^10
    ("rk4", 5, 0.0, 0.3678852381, 1e-10),      # (1 - 0.2 + 0.02 - 0.00133.. + 0.0000666..)^5
])
def test_golden_values_through_the_scan(solver, steps, a, expected, tol64, dtype):
    h = nd.ltc_scan(np.full((1, 1, 1), a, dtype), np.ones((1, 1, 1), dtype), np.ones((1, 1), dtype),
                    solver=solver, steps=steps)
    assert h.dtype == dtype and h.shape == (1, 1, 1)
    tol = tol64 if dtype == np.float64 else max(tol64, 3e-7)
    assert abs(float(h[0, 0, 0]) - expected) <= tol


def test_golden_dopri5_through_the_scan():
    """No golden number for dopri5 in the spec: at tight tolerance it must land on the exact
    0.6839397206, and at the default tolerance within 1e-3 but not exactly on it."""
    args = (np.full((1, 1, 1), 0.5), np.ones((1, 1, 1)), np.ones((1, 1)))
    tight = float(nd.ltc_scan(*args, solver="dopri5", rtol=1e-10, atol=1e-12, max_steps=1000)[0, 0, 0])
    assert abs(tight - 0.6839397206) < 1e-9
    loose = float(nd.ltc_scan(*args, solver="dopri5")[0, 0, 0])
    assert 0 < abs(loose - (0.5 + 0.5 * np.exp(-1))) < 1e-3


def test_docstring_example_two_frames_from_zero():
    """h0 defaults to zeros: 0.5 (1 - e^-1) and then 0.5 + (h1 - 0.5) e^-1."""
    h = nd.ltc_scan(np.full((1, 2, 1), 0.5), np.ones((1, 2, 1)))
    h1 = 0.5 * (1 - np.exp(-1))
    assert_allclose(h.ravel(), [h1, 0.5 + (h1 - 0.5) * np.exp(-1)], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# 2. The scan against its twins
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver, steps", [
    ("exact", 1), ("euler", 1), ("euler", 3), ("euler", 50), ("midpoint", 1), ("midpoint", 4),
    ("rk4", 1), ("rk4", 7), ("dopri5", 1)])
def test_scan_matches_literal_stepping_twin(solver, steps):
    """The library computes the fixed-step solvers as the decay factor R(z)^k; the twin takes
    the k steps one by one. Both must agree to rounding, with and without h0."""
    a, tau, h0 = scan_inputs(1)
    for init in (h0, None):
        out = nd.ltc_scan(a, tau, init, solver=solver, steps=steps)
        assert out.shape == a.shape and out.dtype == np.float64
        assert_allclose(out, twin.ltc_scan(a, tau, init, solver, steps), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("solver, steps", [("exact", 1), ("euler", 2), ("midpoint", 3), ("rk4", 2)])
def test_scan_is_solve_ltc_frame_by_frame(solver, steps):
    a, tau, h0 = scan_inputs(2)
    out = nd.ltc_scan(a, tau, h0, solver=solver, steps=steps)
    h = h0
    for t in range(a.shape[1]):
        h = nd.solve_ltc(h, a[:, t], tau[:, t], solver=solver, steps=steps)
        assert_allclose(out[:, t], h, rtol=1e-14, atol=1e-14)


def test_dopri5_scan_is_solve_ltc_per_sample_frame():
    """dopri5 integrates one sample's H units as one system: nd.solve_ltc on that sample's
    frame (its whole array one system) gives the same numbers, for every tolerance."""
    a, tau, h0 = scan_inputs(3)
    for rtol, atol in ((1e-2, 1e-4), (1e-6, 1e-8)):
        out = nd.ltc_scan(a, tau, h0, solver="dopri5", rtol=rtol, atol=atol)
        for b in range(a.shape[0]):
            h = h0[b]
            for t in range(a.shape[1]):
                h = nd.solve_ltc(h, a[b, t], tau[b, t], solver="dopri5", rtol=rtol, atol=atol)
                assert_allclose(out[b, t], h, rtol=1e-14, atol=1e-15)


def test_dopri5_sample_does_not_depend_on_the_rest_of_the_batch():
    """Adding samples with very different stiffness (tau 0.1) and scale must not change a
    sample's step sequence, hence its result, by a single bit; nd.solve_ltc on the whole batch
    (one system) does change it, which shows the test can tell the difference."""
    a, tau, h0 = scan_inputs(4, B=1)
    alone = nd.ltc_scan(a, tau, h0, solver="dopri5")
    r = np.random.default_rng(40)
    a2 = np.concatenate([50 * r.normal(size=a.shape), a, r.normal(size=a.shape)])
    tau2 = np.concatenate([np.full(a.shape, 0.1), tau, r.uniform(0.2, 5, size=a.shape)])
    h02 = np.concatenate([-20 * np.ones_like(h0), h0, np.zeros_like(h0)])
    batched = nd.ltc_scan(a2, tau2, h02, solver="dopri5")
    assert_array_equal(batched[1], alone[0])
    one_system = nd.solve_ltc(h02, a2[:, 0], tau2[:, 0], solver="dopri5")
    assert np.max(np.abs(one_system[1] - alone[0, 0])) > 1e-8


@pytest.mark.parametrize("solver, order, ks", [
    ("euler", 1, (16, 32, 64)), ("midpoint", 2, (8, 16, 32)), ("rk4", 4, (4, 8, 16))])
def test_fixed_solvers_converge_to_exact_at_their_order(solver, order, ks):
    """Doubling the substeps divides the distance to the exact scan by about 2^order."""
    a, tau, h0 = scan_inputs(5, tau_range=(0.5, 2.0))
    exact = nd.ltc_scan(a, tau, h0, solver="exact")
    errs = [np.max(np.abs(nd.ltc_scan(a, tau, h0, solver=solver, steps=k) - exact)) for k in ks]
    ratios = [errs[i] / errs[i + 1] for i in range(len(errs) - 1)]
    for q in ratios:
        assert 0.8 * 2**order < q < 1.25 * 2**order, (errs, ratios)
    assert errs[-1] < {1: 2e-2, 2: 1e-3, 4: 3e-6}[order], errs
    # and far out the error keeps shrinking (R^k stays accurate for large k)
    assert np.max(np.abs(nd.ltc_scan(a, tau, h0, solver=solver, steps=4096) - exact)) < errs[-1] / 40


def test_dopri5_converges_as_rtol_shrinks():
    a, tau, h0 = scan_inputs(6)
    exact = nd.ltc_scan(a, tau, h0, solver="exact")
    errs = []
    for tol in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10):
        out = nd.ltc_scan(a, tau, h0, solver="dopri5", rtol=tol, atol=tol, max_steps=1000)
        errs.append(np.max(np.abs(out - exact)))
    assert all(e2 < e1 for e1, e2 in zip(errs, errs[1:])), errs
    assert errs[0] < 5e-2 and errs[-1] < 1e-9, errs
    assert errs[0] > 1e-7  # the loose run is genuinely approximate


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_follows_float64(solver):
    a, tau, h0 = (v.astype(np.float32) for v in scan_inputs(7))
    out32 = nd.ltc_scan(a, tau, h0, solver=solver, steps=3)
    assert out32.dtype == np.float32
    out64 = nd.ltc_scan(a.astype(np.float64), tau.astype(np.float64), h0.astype(np.float64), solver=solver, steps=3)
    assert_allclose(out32, out64, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("solver", ["exact", "rk4", "dopri5"])
def test_any_layout_in_inputs_untouched(layout, solver):
    a, tau, h0 = scan_inputs(8)
    expected = nd.ltc_scan(a, tau, h0, solver=solver, steps=2)
    la, lt, lh = (as_layout(v, layout) for v in (a, tau, h0))
    copies = [v.copy() for v in (la, lt, lh)]
    assert_array_equal(nd.ltc_scan(la, lt, lh, solver=solver, steps=2), expected)
    for v, c in zip((la, lt, lh), copies):
        assert_array_equal(v, c)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 0, 2), (2, 3, 0)])
def test_empty_scans(solver, shape):
    out = nd.ltc_scan(np.zeros(shape), np.ones(shape), solver=solver)
    assert out.shape == shape and out.dtype == np.float64


def test_integer_inputs_compute_in_float64():
    h = nd.ltc_scan(np.ones((1, 2, 2), dtype=np.int32), np.ones((1, 2, 2), dtype=np.int64))
    assert h.dtype == np.float64
    assert_allclose(h, twin.ltc_scan(np.ones((1, 2, 2)), np.ones((1, 2, 2))), rtol=1e-15)


def test_property_random_shapes_match_the_twin():
    """Random sizes (including empty), dtypes, solvers, step counts and h0: the scan matches
    the twin to the dtype's precision."""
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.given(B=st.integers(0, 3), T=st.integers(0, 4), H=st.integers(0, 4), solver=st.sampled_from(SOLVERS),
               steps=st.integers(1, 6), dtype=st.sampled_from([np.float32, np.float64]), with_h0=st.booleans(),
               seed=st.integers(0, 2**16))
    def check(B, T, H, solver, steps, dtype, with_h0, seed):
        a, tau, h0 = (v.astype(dtype) for v in scan_inputs(seed, B, T, H))
        init = h0 if with_h0 else None
        out = nd.ltc_scan(a, tau, init, solver=solver, steps=steps)
        assert out.shape == (B, T, H) and out.dtype == dtype
        expected = twin.ltc_scan(a, tau, init, solver, steps)
        tol = 1e-12 if dtype == np.float64 else 2e-5
        assert_allclose(out, expected, rtol=tol, atol=tol)

    check()


# ---------------------------------------------------------------------------------------
# 3a. Gradients of the scan
# ---------------------------------------------------------------------------------------


def scan_backward(a, tau, h0, dh, solver, steps=1, rtol=1e-2, atol=1e-4, max_steps=100):
    opts = dict(solver=solver, steps=steps, rtol=rtol, atol=atol, max_steps=max_steps)
    h = _core.ltc_scan(a, tau, h0, **opts)
    return _core.ltc_scan_backward(a, tau, h0, h, dh, **opts)


@pytest.mark.parametrize("solver, steps, tol", [
    ("exact", 1, None), ("euler", 1, None), ("euler", 3, None), ("midpoint", 1, None), ("midpoint", 2, None),
    ("rk4", 1, None), ("rk4", 20, None), ("dopri5", 1, 1e-12)])
def test_scan_backward_matches_finite_differences(solver, steps, tol):
    """L = sum(w * h) with random w: the backward with dh = w gives dL/da, dL/dtau, dL/dh0.
    dopri5 is differentiated through the steps it took; at rtol = atol = 1e-12 moving the
    step sizes changes h by ~1e-12, below what the finite differences resolve."""
    a, tau, h0 = scan_inputs(9, B=2, T=4, H=3)
    w = np.random.default_rng(90).normal(size=a.shape)
    rtol, atol = (1e-2, 1e-4) if tol is None else (tol, tol)
    opts = dict(solver=solver, steps=steps, rtol=rtol, atol=atol, max_steps=10_000)
    da, dtau, dh0 = scan_backward(a, tau, h0, w, solver, steps, rtol, atol, 10_000)
    num = ref_nn.central_difference(lambda: float(np.sum(w * _core.ltc_scan(a, tau, h0, **opts))), [a, tau, h0])
    bound = 1e-7 if tol is None else 1e-6
    for name, g, n in zip(("da", "dtau", "dh0"), (da, dtau, dh0), num):
        assert_grad_close(g, n, bound, name)


def test_scan_backward_without_h0_is_the_zero_start():
    a, tau, _ = scan_inputs(10, B=2, T=3, H=3)
    w = np.random.default_rng(91).normal(size=a.shape)
    for solver in SOLVERS:
        g_none = scan_backward(a, tau, None, w, solver, 2)
        g_zero = scan_backward(a, tau, np.zeros((2, 3)), w, solver, 2)
        for x, y in zip(g_none, g_zero):
            assert_array_equal(x, y)


def test_exact_backward_is_the_spec_formula():
    """docs/models.md §3 writes the exact-scan backward out; the kernel must be that recursion."""
    a, tau, h0 = scan_inputs(11)
    dh = np.random.default_rng(92).normal(size=a.shape)
    h = nd.ltc_scan(a, tau, h0)
    got = _core.ltc_scan_backward(a, tau, h0, h, dh, solver="exact")
    for g, e in zip(got, twin.ltc_scan_exact_backward(a, tau, h0, h, dh)):
        assert_allclose(g, e, rtol=1e-13, atol=1e-14)


def test_dopri5_backward_is_exact_for_the_steps_it_took():
    """At the default (loose) tolerance the finite difference of the adaptive scan includes
    the step sizes' sensitivity; the backward excludes it by design. With the twin's step
    sizes frozen, the scan becomes a smooth map whose derivative the backward must give
    to finite-difference accuracy."""
    a, tau, h0 = scan_inputs(12, B=2, T=3, H=3)
    w = np.random.default_rng(93).normal(size=a.shape)
    sizes = twin.dopri5_scan_step_sizes(a, tau, h0, 1e-2, 1e-4)
    assert max(len(s) for s in sizes.values()) > 1  # not a trivial single step
    assert_allclose(twin.dopri5_frozen_scan(a, tau, h0, sizes), nd.ltc_scan(a, tau, h0, solver="dopri5"),
                    rtol=1e-13, atol=1e-14)
    got = scan_backward(a, tau, h0, w, "dopri5")
    num = ref_nn.central_difference(lambda: float(np.sum(w * twin.dopri5_frozen_scan(a, tau, h0, sizes))),
                                    [a, tau, h0])
    for name, g, n in zip(("da", "dtau", "dh0"), got, num):
        assert_grad_close(g, n, 1e-7, name)


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_backward_follows_float64(solver):
    a, tau, h0 = scan_inputs(13)
    dh = np.random.default_rng(94).normal(size=a.shape)
    g64 = scan_backward(a, tau, h0, dh, solver, 2)
    g32 = scan_backward(*(v.astype(np.float32) for v in (a, tau, h0, dh)), solver, 2)
    for x, y in zip(g32, g64):
        assert x.dtype == np.float32
        assert_allclose(x, y, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# 3b. Gradients of the whole model (every parameter entry)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver, steps, ffn, output_size, tol, bound", [
    ("exact", 1, False, 2, None, 1e-6),
    ("exact", 1, True, None, None, 1e-6),
    ("euler", 3, True, 2, None, 1e-6),
    ("midpoint", 2, False, None, None, 1e-6),
    ("rk4", 1, True, 2, None, 1e-6),
    ("rk4", 5, False, 2, None, 1e-6),
    ("dopri5", 1, False, 2, 1e-10, 1e-5),
    ("dopri5", 1, True, 2, 1e-10, 1e-5),
])
def test_model_gradient_matches_finite_differences(solver, steps, ffn, output_size, tol, bound):
    m = make(solver, steps=steps, ffn=ffn, output_size=output_size, tol=tol)
    x, y = model_data(out=output_size or 4)
    check_model_gradient(m, x, y, bound)


def test_model_gradient_cross_entropy_with_head():
    m = make("rk4", ffn=True, output_size=3, layers=1, hidden=5)
    x, _ = model_data(B=3)
    check_model_gradient(m, x, np.array([2, 0, 1]), 1e-6, loss="cross_entropy")


def test_model_gradient_without_input_projection():
    """embed_dim == hidden: no input_projection, the layer norm sees x itself."""
    m = make("midpoint", embed=4, hidden=4, output_size=None)
    assert "input_projection.kernel" not in m.params
    x, y = model_data(embed=4, out=4)
    check_model_gradient(m, x, y, 1e-6)


def test_tau_clamp_stops_the_gradient():
    """tau = softplus(min(z, 20)) + 0.1: a unit whose z is above 20 has tau fixed at
    softplus(20) + 0.1 and its tau weights get exactly zero gradient; the rest still match
    finite differences."""
    m = make("exact", layers=1)
    m.params["ltc_layer_1_tau.bias"][0] = 60.0  # z ~ 60 for unit 0 whatever the input
    x, y = model_data()
    assert_allclose(m(x), twin.liquid_output(m.params, m.config, x), rtol=1e-12, atol=1e-12)
    _, g = m.loss_and_grad(x, y)
    assert g["ltc_layer_1_tau.bias"][0] == 0 and not g["ltc_layer_1_tau.kernel"][:, 0].any()
    assert g["ltc_layer_1_tau.bias"][1:].all()
    check_model_gradient(m, x, y, 1e-6)


def test_loss_value_and_inputs_untouched():
    m = make("rk4", ffn=True)
    x, y = model_data()
    x.setflags(write=False)
    before = {k: v.copy() for k, v in m.params.items()}
    loss, _ = m.loss_and_grad(x, y)
    assert loss == pytest.approx(np.mean((twin.liquid_output(m.params, m.config, x) - y) ** 2), rel=1e-12)
    for k in before:
        assert_array_equal(m.params[k], before[k])
    m3 = make("rk4", output_size=3)
    labels = np.array([1, 2])
    ce, _ = m3.loss_and_grad(x, labels, loss="cross_entropy")
    assert ce == pytest.approx(ref_nn.cross_entropy(twin.liquid_output(m3.params, m3.config, x), labels), rel=1e-12)


def test_float32_gradients_follow_float64():
    m64 = make("rk4", ffn=True)
    m32 = make("rk4", ffn=True, dtype=np.float32)
    for k in m64.params:  # the same parameters, one rounded
        m64.params[k][...] = m32.params[k]
    x, y = model_data()
    _, g64 = m64.loss_and_grad(x, y)
    _, g32 = m32.loss_and_grad(x.astype(np.float32), y.astype(np.float32))
    for k in g64:
        assert g32[k].dtype == np.float32
        assert ref_nn.rel_err(g32[k], g64[k]) < 1e-4, k


# ---------------------------------------------------------------------------------------
# 4. Forward pass and structure
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver, steps", [("exact", 1), ("euler", 2), ("midpoint", 1), ("rk4", 3), ("dopri5", 1)])
@pytest.mark.parametrize("ffn", [False, True])
def test_forward_matches_numpy_twin(solver, steps, ffn, dtype):
    m = make(solver, steps=steps, ffn=ffn, hidden=5, output_size=3, dtype=dtype)
    x = np.random.default_rng(20).normal(size=(3, 5, 3)).astype(dtype)
    seq = m.forward_sequence(x)
    out = m(x)
    assert seq.shape == (3, 5, 5) and seq.dtype == dtype
    assert out.shape == (3, 3) and out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_allclose(seq, twin.liquid_sequence(m.params, m.config, x), rtol=tol, atol=tol)
    assert_allclose(out, twin.liquid_output(m.params, m.config, x), rtol=tol, atol=tol)


def test_dopri5_model_honours_its_tolerances():
    """rtol/atol/max_steps reach the scan: tight dopri5 matches the exact model, loose does not
    quite, and a budget of 1 step per frame fails with IntegrationError."""
    kw = dict(hidden=5, output_size=None)
    x = np.random.default_rng(21).normal(size=(2, 4, 3))
    exact = make("exact", **kw)(x)
    assert np.max(np.abs(make("dopri5", tol=1e-10, **kw)(x) - exact)) < 1e-8
    loose = np.max(np.abs(make("dopri5", **kw)(x) - exact))
    assert 1e-9 < loose < 1e-2
    starved = nd.Liquid(3, hidden_size=5, num_layers=2, solver="dopri5", rtol=1e-12, atol=1e-12, max_steps=1,
                        seed=1, dtype=np.float64)
    with pytest.raises(nd.IntegrationError):
        starved(x)


@pytest.mark.parametrize("embed, hidden, layers, ffn, output_size", [
    (3, 4, 2, False, None), (3, 4, 2, True, 2), (4, 4, 1, False, 3), (4, 4, 3, True, None), (2, 6, 1, True, 6)])
def test_parameter_names_shapes_and_init(embed, hidden, layers, ffn, output_size):
    m = nd.Liquid(embed, hidden_size=hidden, num_layers=layers, ffn=ffn, output_size=output_size, seed=0)
    shapes = twin.expected_param_shapes(embed, hidden, layers, ffn, output_size)
    assert list(m.params) == list(shapes)  # names and order as Edifice builds the layers
    for k, v in m.params.items():
        assert v.shape == shapes[k] and v.dtype == np.float32, k
        if k.endswith((".bias", ".beta")):
            assert not v.any(), k
        elif k.endswith(".gamma"):
            assert_array_equal(v, 1)
        else:  # glorot uniform, bound sqrt(6 / (fan_in + fan_out))
            assert np.all(np.abs(v) <= np.sqrt(6 / sum(v.shape))) and np.any(v), k
    assert m.param_count() == sum(int(np.prod(s)) for s in shapes.values())
    assert m.output_size == (output_size or hidden)
    assert m(np.zeros((2, 3, embed), np.float32)).shape == (2, output_size or hidden)


def test_param_count_of_the_edifice_default_model():
    """embed 3, hidden 256, 4 layers: 3*256+256 + 4*(2*256 + 256*256+256 + 256*512+512 +
    512*256+256) + 2*256."""
    m = nd.Liquid(3, seed=0)
    per_layer = 2 * 256 + (256 * 256 + 256) + (256 * 512 + 512) + (512 * 256 + 256)
    assert m.param_count() == 3 * 256 + 256 + 4 * per_layer + 2 * 256 == 1_318_400


def test_signature_defaults_follow_edifice():
    sig = inspect.signature(nd.Liquid)
    defaults = {k: p.default for k, p in sig.parameters.items()}
    assert list(sig.parameters)[0] == "embed_dim" and defaults["embed_dim"] is inspect.Parameter.empty
    assert {k: defaults[k] for k in ("hidden_size", "num_layers", "dropout", "integration_steps", "solver", "ffn")} \
        == {"hidden_size": 256, "num_layers": 4, "dropout": 0.1, "integration_steps": 1, "solver": "exact",
            "ffn": False}
    assert defaults["output_size"] is None and defaults["seed"] is None and np.dtype(defaults["dtype"]) == np.float32
    assert (defaults["rtol"], defaults["atol"], defaults["max_steps"]) == (1e-2, 1e-4, 100)
    scan = {k: p.default for k, p in inspect.signature(nd.ltc_scan).parameters.items()}
    assert (scan["h0"], scan["solver"], scan["steps"], scan["rtol"], scan["atol"], scan["max_steps"]) == \
        (None, "exact", 1, 1e-2, 1e-4, 100)


def test_recommended_and_high_accuracy_defaults():
    rec, high = nd.Liquid.recommended_defaults(), nd.Liquid.high_accuracy_defaults()
    common = {"hidden_size": 256, "num_layers": 4, "dropout": 0.1}
    # Edifice recommends one rk4 substep, unstable for its tau < 0.359; neurodyn recommends four
    assert rec == {**common, "integration_steps": 4, "solver": "rk4"}
    assert high == {**common, "integration_steps": 1, "solver": "dopri5"}
    # both build working models (shrunk to test size); dopri5 "must actually work here"
    x = np.random.default_rng(22).normal(size=(2, 4, 3))
    outs = {}
    for name, cfg in (("rec", rec), ("high", high), ("exact", {**rec, "solver": "exact"})):
        m = nd.Liquid(3, **{**cfg, "hidden_size": 8, "num_layers": 2}, seed=5, dtype=np.float64)
        outs[name] = m(x)
        assert np.all(np.isfinite(outs[name]))
    # same parameters, only the solver differs: dopri5 at its default tolerance lands close
    # to the exact solver (rk4 with one substep need not: it is off by O(1) when tau ~ 0.3)
    assert np.max(np.abs(outs["high"] - outs["exact"])) < 1e-2


def test_repr_names_class_config_and_size():
    m = nd.Liquid(3, hidden_size=4, num_layers=2, solver="rk4", ffn=True, seed=0)
    r = repr(m)
    assert r.startswith("Liquid(embed_dim=3, hidden_size=4") and "solver='rk4'" in r and "ffn=True" in r
    assert f"{m.param_count():,} parameters" in r


def test_same_seed_same_parameters():
    a, b = nd.Liquid(3, hidden_size=4, num_layers=2, seed=7), nd.Liquid(3, hidden_size=4, num_layers=2, seed=7)
    c = nd.Liquid(3, hidden_size=4, num_layers=2, seed=8)
    for k in a.params:
        assert_array_equal(a.params[k], b.params[k])
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params if k.endswith("kernel"))
    d = nd.Liquid(3, hidden_size=4, num_layers=2, seed=7, dtype=np.float64)
    for k in a.params:  # float64 draws the same numbers, float32 rounds them
        assert_array_equal(a.params[k], d.params[k].astype(np.float32))


# ---------------------------------------------------------------------------------------
# 5. Streaming: step through a sequence = the whole-sequence call
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("ffn, output_size", [(False, None), (True, None), (False, 2), (True, 3)])
def test_step_reproduces_forward_sequence(solver, ffn, output_size):
    m = make(solver, ffn=ffn, output_size=output_size, steps=2)
    x = np.random.default_rng(30).normal(size=(3, 5, 3))
    seq = m.forward_sequence(x)
    cache = m.init_cache(3)
    assert cache["step"] == 0 and len(cache["h"]) == 2
    assert all(h.shape == (3, 4) and not h.any() and h.dtype == np.float64 for h in cache["h"])
    for t in range(5):
        y_t, cache = m.step(x[:, t], cache)
        assert cache["step"] == t + 1
        expected = seq[:, t]
        if output_size:
            expected = ref_nn.dense(expected, m.params["output.kernel"], m.params["output.bias"])
        assert y_t.shape == (3, output_size or 4)
        # GEMMs over B rows and over B*T rows may round differently; nothing else differs
        assert_allclose(y_t, expected, rtol=1e-12, atol=1e-12)
    assert_allclose(m(x), y_t, rtol=1e-12, atol=1e-12)


def test_step_in_float32_and_cache_is_not_mutated():
    m = nd.Liquid(3, hidden_size=6, num_layers=2, ffn=True, solver="rk4", integration_steps=4, seed=2)
    x = np.random.default_rng(31).normal(size=(2, 4, 3)).astype(np.float32)
    cache0 = m.init_cache(2)
    cache = cache0
    for t in range(4):
        y_t, cache = m.step(x[:, t], cache)
    assert y_t.dtype == np.float32
    assert_allclose(y_t, m(x), rtol=1e-5, atol=1e-5)
    assert cache0["step"] == 0 and all(not h.any() for h in cache0["h"])  # the old cache still starts over
    y_again, _ = m.step(x[:, 0], cache0)
    assert_allclose(y_again, m(x[:, :1]), rtol=1e-5, atol=1e-6)


def test_streaming_states_carry_information():
    """The cache really is the recurrent state: stepping frame 2 from a fresh cache differs
    from stepping it after frame 1."""
    m = make("exact", output_size=None)
    x = np.random.default_rng(32).normal(size=(2, 2, 3))
    _, c1 = m.step(x[:, 0], m.init_cache(2))
    after, _ = m.step(x[:, 1], c1)
    fresh, _ = m.step(x[:, 1], m.init_cache(2))
    assert np.max(np.abs(after - fresh)) > 1e-3
    assert_allclose(after, m(x), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# 6. Training
# ---------------------------------------------------------------------------------------
# rk4 with integration_steps=4: one rk4 substep is unstable for tau < 0.36 (|R(-1/tau)| > 1),
# and tau can fall to 0.1 while training; four substeps are stable for every tau >= 0.1.


def waveforms(n, T, seed):
    """Sine (0), square (1) and sawtooth (2) waves of random frequency, phase and amplitude,
    with Gaussian noise of 0.1: [n, T, 1] and labels [n]."""
    r = np.random.default_rng(seed)
    labels = r.integers(0, 3, size=n)
    phase = (np.arange(T)[None] * r.uniform(0.08, 0.2, size=(n, 1)) + r.uniform(0, 1, size=(n, 1))) % 1.0
    shapes = [np.sin(2 * np.pi * phase), np.where(phase < 0.5, 1.0, -1.0), 2 * phase - 1]
    x = r.uniform(0.6, 1.4, size=(n, 1)) * np.choose(labels[:, None], shapes) + 0.1 * r.normal(size=(n, T))
    return x[..., None].astype(np.float32), labels


def damped_sines(n, T, seed):
    """Noisy damped sines A e^{-g t} sin(w t + phi) sampled at irregular times (gaps in
    [0.2, 0.6]). Input frame i = (noisy y(t_i), t_{i+1} - t_i): the value and the time until
    the next sample. Target: the clean y(t_T), the value at the next sample."""
    r = np.random.default_rng(seed)
    gaps = r.uniform(0.2, 0.6, size=(n, T + 1))
    t = np.cumsum(gaps, axis=1) - gaps[:, :1]
    A, g = r.uniform(0.5, 1.5, (n, 1)), r.uniform(0.05, 0.3, (n, 1))
    w, phi = r.uniform(1.5, 3.0, (n, 1)), r.uniform(0, 2 * np.pi, (n, 1))
    y = A * np.exp(-g * t) * np.sin(w * t + phi)
    obs = y[:, :T] + 0.05 * r.normal(size=(n, T))
    x = np.stack([obs, t[:, 1:] - t[:, :T]], axis=-1).astype(np.float32)
    return x, y[:, T:].astype(np.float32)


def test_fit_classifies_sine_square_sawtooth():
    """Measured: held-out accuracy 0.97-0.99 over seeds (about 1 s on 2 cores; speed is
    benchmarked in bench/, not asserted here); chance is 1/3."""
    xtr, ytr = waveforms(300, 20, 0)
    xte, yte = waveforms(300, 20, 1)
    m = nd.Liquid(1, hidden_size=16, num_layers=2, solver="rk4", integration_steps=4, output_size=3, seed=0)
    assert np.mean(m(xte).argmax(1) == yte) < 0.5
    hist = m.fit(xtr, ytr, loss="cross_entropy", epochs=30, batch_size=30, lr=1e-2, seed=0, verbose=False).history_
    assert len(hist["loss"]) == 30 and len(hist["batch_loss"]) == 300 and len(hist["time"]) == 30
    assert hist["loss"][-1] < 0.15 < 0.8 < hist["loss"][0]  # measured 1.10 -> 0.034
    assert np.mean(m(xte).argmax(1) == yte) > 0.9  # measured 0.987


def test_fit_predicts_irregularly_sampled_damped_sines():
    """Predicting persistence (the last value) scores MSE 0.078 here; the model, measured,
    reaches 0.017-0.020 held out (noise floor 0.0025)."""
    xtr, ytr = damped_sines(400, 16, 0)
    xte, yte = damped_sines(400, 16, 1)
    persistence = np.mean((xte[:, -1, :1] - yte) ** 2)
    m = nd.Liquid(2, hidden_size=16, num_layers=1, solver="rk4", integration_steps=4, output_size=1, seed=0)
    hist = m.fit(xtr, ytr, epochs=40, batch_size=32, lr=1e-2, seed=0, verbose=False).history_
    assert hist["loss"][-1] < hist["loss"][0] / 8  # measured 0.34 -> 0.021
    test_mse = np.mean((m(xte) - yte) ** 2)
    assert test_mse < 0.03 and test_mse < 0.4 * persistence, (test_mse, persistence)


def test_fit_is_reproducible():
    xtr, ytr = waveforms(60, 8, 2)
    runs = []
    for _ in range(2):
        m = nd.Liquid(1, hidden_size=6, num_layers=1, solver="rk4", integration_steps=4, output_size=3, seed=3)
        hist = m.fit(xtr, ytr, loss="cross_entropy", epochs=3, batch_size=16, lr=1e-2, seed=11, verbose=False).history_
        runs.append((hist, m.params))
    (h1, p1), (h2, p2) = runs
    assert h1["loss"] == h2["loss"] and h1["batch_loss"] == h2["batch_loss"]
    for k in p1:
        assert_array_equal(p1[k], p2[k])
    m = nd.Liquid(1, hidden_size=6, num_layers=1, solver="rk4", integration_steps=4, output_size=3, seed=3)
    other = m.fit(xtr, ytr, loss="cross_entropy", epochs=3, batch_size=16, lr=1e-2, seed=12, verbose=False).history_
    assert other["batch_loss"] != h1["batch_loss"]  # the fit seed drives shuffling and dropout


# ---------------------------------------------------------------------------------------
# 7. Dropout
# ---------------------------------------------------------------------------------------


def test_dropout_is_seeded_and_only_in_training():
    m = make("rk4", ffn=True, dropout=0.3)
    x, y = model_data()
    eval_loss, eval_g = m.loss_and_grad(x, y)
    l1, g1 = m.loss_and_grad(x, y, training=True, seed=5)
    l2, g2 = m.loss_and_grad(x, y, training=True, seed=5)
    l3, _ = m.loss_and_grad(x, y, training=True, seed=6)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert l1 != eval_loss and l1 != l3
    assert eval_loss == pytest.approx(np.mean((twin.liquid_output(m.params, m.config, x) - y) ** 2), rel=1e-12)
    # the same seed as a Generator in the same state draws the same masks
    l4, _ = m.loss_and_grad(x, y, training=True, seed=np.random.default_rng(5))
    assert l4 == l1


def test_call_never_applies_dropout():
    m = make("exact", ffn=True, dropout=0.5)
    x = model_data()[0]
    nodrop = make("exact", ffn=True, dropout=0.0)  # the same parameters (same seeds)
    assert_array_equal(m(x), nodrop(x))
    assert_array_equal(m(x), m(x))
    assert_array_equal(m.forward_sequence(x), nodrop.forward_sequence(x))
    y_t, _ = m.step(x[:, 0], m.init_cache(2))
    assert_array_equal(y_t, nodrop.step(x[:, 0], nodrop.init_cache(2))[0])


def test_zero_dropout_training_equals_evaluation():
    m = make("midpoint", ffn=True, dropout=0.0)
    x, y = model_data()
    assert m.loss_and_grad(x, y, training=True, seed=1)[0] == m.loss_and_grad(x, y)[0]


def test_gradient_under_dropout_matches_finite_differences():
    """With a fixed seed the dropout masks are fixed, so the training loss is a smooth function
    of the parameters and the backward must scale by the same masks."""
    m = make("rk4", ffn=True, dropout=0.4, layers=1)
    x, y = model_data()
    check_model_gradient(m, x, y, 1e-6, training=True, seed=9)


# ---------------------------------------------------------------------------------------
# 8. Persistence
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [dict(solver="rk4", ffn=True, output_size=2),
                                 dict(solver="dopri5", ffn=False, output_size=None, rtol=1e-5, atol=1e-7)])
def test_save_load_and_pickle_round_trip(tmp_path, dtype, cfg):
    m = nd.Liquid(3, hidden_size=4, num_layers=2, integration_steps=stable_steps(cfg["solver"], 2), dropout=0.2,
                  seed=4, dtype=dtype, **cfg)
    for p in m.params.values():  # trained-looking values, not the init pattern
        p += np.random.default_rng(44).normal(size=p.shape).astype(dtype)
    x = np.random.default_rng(45).normal(size=(2, 3, 3)).astype(dtype)
    path = tmp_path / "liquid.npz"
    m.save(path)
    for other in (nd.load(path), pickle.loads(pickle.dumps(m))):
        assert type(other) is nd.Liquid and other.config == m.config
        assert list(other.params) == list(m.params)
        for k in m.params:
            assert other.params[k].dtype == dtype
            assert_array_equal(other.params[k], m.params[k])
            assert not np.shares_memory(other.params[k], m.params[k])
        assert_array_equal(other(x), m(x))
        assert_array_equal(other.step(x[:, 0], other.init_cache(2))[0], m.step(x[:, 0], m.init_cache(2))[0])


# ---------------------------------------------------------------------------------------
# 9. Bad input
# ---------------------------------------------------------------------------------------


@pytest.fixture
def small():
    return nd.Liquid(3, hidden_size=4, num_layers=2, seed=0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(solver="rk45"), ValueError, r"solver='rk45' is not one of"),
    (dict(solver=None), ValueError, r"solver"),
    (dict(hidden_size=0), ValueError, r"hidden_size"),
    (dict(num_layers=0), ValueError, r"num_layers"),
    (dict(dropout=1.0), ValueError, r"dropout"),
    (dict(dropout=-0.1), ValueError, r"dropout"),
    (dict(ffn="yes"), TypeError, r"ffn"),
    (dict(output_size=0), ValueError, r"output_size"),
    (dict(rtol=-1.0), ValueError, r"rtol"),
    (dict(max_steps=0), ValueError, r"max_steps"),
    (dict(dtype=np.int32), ValueError, r"dtype"),
    (dict(seed=-1), ValueError, r"seed"),
    (dict(solver="dopri5", rtol=0.0, atol=0.0), ValueError, r"rtol and atol"),
])
def test_constructor_rejects_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.Liquid(3, **{"hidden_size": 4, "num_layers": 1, **kwargs})


def test_constructor_rejects_bad_embed_dim():
    with pytest.raises(ValueError, match="embed_dim"):
        nd.Liquid(0)
    with pytest.raises(TypeError, match="embed_dim"):
        nd.Liquid(2.5)


def test_constructor_names_integration_steps():
    with pytest.raises(ValueError, match="integration_steps"):
        nd.Liquid(3, hidden_size=4, integration_steps=0)


@pytest.mark.parametrize("x, exc, match", [
    (np.zeros((2, 5, 4)), ValueError, r"x has shape \(2, 5, 4\); expected \(batch, time, embed_dim=3\)"),
    (np.zeros((2, 3)), ValueError, r"x has shape \(2, 3\)"),
    (np.zeros((2, 0, 3)), ValueError, r"T = 0"),
    (np.full((2, 3, 3), np.nan), ValueError, r"x contains NaN"),
    (np.full((2, 3, 3), np.inf), ValueError, r"x contains NaN or inf"),
    (np.zeros((2, 3, 3), dtype=complex), TypeError, r"x has dtype complex"),
])
def test_bad_sequences(small, x, exc, match):
    for call in (small, small.forward_sequence, lambda v: small.loss_and_grad(v, np.zeros((2, 4)))):
        with pytest.raises(exc, match=match):
            call(x)


def test_bad_targets_and_losses(small):
    x = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match=r"loss='hinge' is not one of"):
        small.loss_and_grad(x, np.zeros((2, 4)), loss="hinge")
    with pytest.raises(ValueError, match=r"y has shape \(2, 3\), expected \(2, 4\)"):
        small.loss_and_grad(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y contains NaN"):
        small.loss_and_grad(x, np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        small.loss_and_grad(x, np.array([0, 4]), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"x has 2 sequences but y has shape \(3, 4\)"):
        small.fit(x, np.zeros((3, 4)), verbose=False)
    with pytest.raises(ValueError, match=r"epochs"):
        small.fit(x, np.zeros((2, 4)), epochs=0, verbose=False)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(solver="rk45"), ValueError, r"solver='rk45' is not one of"),
    (dict(steps=0), ValueError, r"steps must be >= 1"),
    (dict(rtol=-1e-3), ValueError, r"rtol"),
    (dict(atol=float("nan")), ValueError, r"atol"),
    (dict(max_steps=0), ValueError, r"max_steps"),
])
def test_scan_rejects_bad_options(kwargs, exc, match):
    a, tau, h0 = scan_inputs(50)
    with pytest.raises(exc, match=match):
        nd.ltc_scan(a, tau, h0, **kwargs)


@pytest.mark.parametrize("change, exc, match", [
    (lambda a, t, h: (a * np.nan, t, h), ValueError, r"a contains NaN"),
    (lambda a, t, h: (a, t * 0, h), ValueError, r"tau must be positive"),
    (lambda a, t, h: (a, -t, h), ValueError, r"tau must be positive"),
    (lambda a, t, h: (a, t * np.inf, h), ValueError, r"tau must be positive and finite"),
    (lambda a, t, h: (a, t * np.nan, h), ValueError, r"tau must be positive and finite"),
    (lambda a, t, h: (a, t, h[:, :2]), ValueError, r"h0 has shape \(3, 2\); expected \(3, 5\)"),
    (lambda a, t, h: (a, t, h[:2]), ValueError, r"h0 has shape \(2, 5\)"),
    (lambda a, t, h: (a, t, h * np.nan), ValueError, r"h0 contains NaN"),
    (lambda a, t, h: (a, t[:, :2], h), ValueError, r"tau has shape \(3, 2, 5\); expected \(3, 4, 5\)"),
    (lambda a, t, h: (a[0], t[0], h), ValueError, r"a has shape \(4, 5\); expected 3 axes"),
    (lambda a, t, h: (a.astype(complex), t, h), TypeError, r"a has dtype complex"),
])
def test_scan_rejects_bad_arrays(change, exc, match):
    with pytest.raises(exc, match=match):
        nd.ltc_scan(*change(*scan_inputs(51)))


def test_scan_dopri5_budget_raises_integration_error():
    a, tau, h0 = scan_inputs(52)
    with pytest.raises(nd.IntegrationError, match="dopri5"):
        nd.ltc_scan(a, tau, h0, solver="dopri5", rtol=1e-12, atol=1e-12, max_steps=3)


def test_backward_kernel_rejects_mismatched_arrays():
    a, tau, h0 = scan_inputs(53)
    h = nd.ltc_scan(a, tau, h0)
    with pytest.raises(ValueError, match=r"dh has shape"):
        _core.ltc_scan_backward(a, tau, h0, h, h[:, :2])
    with pytest.raises(ValueError, match=r"h0 has shape"):
        _core.ltc_scan_backward(a, tau, h0[:, :1], h, h)
    with pytest.raises(ValueError, match=r"h contains NaN"):
        _core.ltc_scan_backward(a, tau, h0, h * np.nan, h)


@pytest.mark.parametrize("cache", [
    pytest.param({}, id="empty"),
    pytest.param(None, id="none"),
    pytest.param({"h": [np.zeros((2, 4))], "step": 0}, id="one-layer-short"),
    pytest.param({"h": [np.zeros((3, 4))] * 2, "step": 0}, id="batch-3-not-2"),
    pytest.param({"h": [np.zeros((2, 5))] * 2, "step": 0}, id="hidden-5-not-4"),
])
def test_step_rejects_bad_caches(small, cache):
    """The message must name the cache (its exact wording is the library's)."""
    with pytest.raises(ValueError, match=r"cache"):
        small.step(np.zeros((2, 3)), cache)


@pytest.mark.parametrize("cache", [
    pytest.param({"h": [0, 0], "step": 0}, id="states-not-arrays"),
    pytest.param({"h": [np.zeros((2, 4), np.float32)] * 2}, id="no-step-counter"),
    pytest.param({"h": [np.full((2, 4), np.nan, np.float32)] * 2, "step": 0}, id="nan-states"),
])
def test_step_rejects_malformed_caches_naming_the_cache(small, cache):
    with pytest.raises((ValueError, TypeError), match="cache"):
        small.step(np.zeros((2, 3), np.float32), cache)


def test_step_rejects_bad_frames(small):
    cache = small.init_cache(2)
    with pytest.raises(ValueError, match=r"embed_dim=3"):
        small.step(np.zeros((2, 4)), cache)
    with pytest.raises(ValueError, match=r"one frame"):
        small.step(np.zeros((2, 2, 3)), cache)
    with pytest.raises(ValueError, match=r"NaN"):
        small.step(np.full((2, 3), np.nan), cache)
    with pytest.raises(ValueError, match=r"batch_size"):
        small.init_cache(0)


def test_step_names_x_t_for_a_bad_frame(small):
    with pytest.raises(ValueError, match=r"x_t.*\(batch, embed_dim"):
        small.step(np.zeros(3), small.init_cache(1))


def test_scan_overflow_is_not_silent():
    # one rk4 substep at tau = 0.1 multiplies by R(-10) = 291 per frame: refused at once, long
    # before the state overflows (and a short scan that would stay finite is refused too)
    a, tau = np.ones((1, 200, 2)), np.full((1, 200, 2), 0.1)
    for T in (200, 2):
        with pytest.raises(nd.IntegrationError, match="unstable") as info:
            nd.ltc_scan(a[:, :T], tau[:, :T], solver="rk4")
        assert info.value.status == "unstable"
    assert np.all(np.isfinite(nd.ltc_scan(a, tau, solver="rk4", steps=4)))  # 4 substeps: stable


@pytest.mark.parametrize("solver, limit", [("euler", 0.5), ("midpoint", 0.5), ("rk4", 0.359)])
def test_stability_limits(solver, limit):
    """The scan accepts tau just above the method's one-substep stability limit and refuses it
    just below (|R(-1/tau)| <= 1)."""
    a = np.ones((1, 3, 1))
    nd.ltc_scan(a, np.full((1, 3, 1), limit * 1.01), solver=solver)
    with pytest.raises(nd.IntegrationError, match="unstable"):
        nd.ltc_scan(a, np.full((1, 3, 1), limit * 0.99), solver=solver)


def test_model_overflow_is_not_silent():
    m = nd.Liquid(1, hidden_size=4, num_layers=1, solver="rk4", seed=0, dtype=np.float64)
    m.params["ltc_layer_1_tau.bias"][:] = -30.0  # tau -> 0.1 for every unit
    x = np.random.default_rng(0).normal(size=(2, 200, 1))
    with pytest.raises(nd.IntegrationError, match="unstable"):
        m(x)


# ---- the layer's time constants (liquid_tau_forward / backward, docs/models.md §3) ----------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_liquid_tau_matches_numpy_and_finite_differences(dtype):
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(7, 9)) * 12).astype(dtype)  # some above the clamp of 20
    z[0, :3] = [20.0, 19.5, 25.0]
    tau = _core.liquid_tau_forward(z)
    want = np.logaddexp(0.0, np.minimum(z.astype(np.float64), 20.0)) + 0.1
    np.testing.assert_allclose(tau, want, rtol=2e-6 if dtype == np.float32 else 1e-13)
    assert tau.dtype == dtype and tau.shape == z.shape
    np.testing.assert_allclose(_core.liquid_tau_forward(z, clamp=3.0, tau_min=0.5),
                               np.logaddexp(0.0, np.minimum(z.astype(np.float64), 3.0)) + 0.5,
                               rtol=2e-6 if dtype == np.float32 else 1e-13)
    z64 = z.astype(np.float64)
    z64[np.abs(z64 - 20.0) < 1e-3] += 0.01  # no difference across the kink
    dtau = rng.normal(size=z.shape)
    dz = _core.liquid_tau_backward(z64, dtau)
    eps = 1e-6
    fd = (_core.liquid_tau_forward(z64 + eps) - _core.liquid_tau_forward(z64 - eps)) / (2 * eps) * dtau
    np.testing.assert_allclose(dz, fd, rtol=1e-6, atol=1e-9)
    assert np.all(dz[z64 >= 20.0] == 0) and np.any(z64 >= 20.0)


def test_liquid_tau_rules_and_nan():
    z = np.array([np.nan, 1.0], np.float32)
    assert np.isnan(_core.liquid_tau_forward(z)[0])  # a NaN is not clamped away
    with pytest.raises(ValueError, match="tau_min"):
        _core.liquid_tau_forward(z, tau_min=0.0)
    with pytest.raises(ValueError, match="clamp"):
        _core.liquid_tau_forward(z, clamp=np.inf)
    with pytest.raises(ValueError, match="dtau"):
        _core.liquid_tau_backward(z, np.ones(3, np.float32))
    assert nd.liquid.TAU_CLAMP == 20.0 and nd.liquid.TAU_MIN == 0.1  # the model's values, from the kernel
