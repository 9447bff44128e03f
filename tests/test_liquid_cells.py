"""The two recurrent cells of docs/models.md §3: ``nd.LTCCell`` (Hasani et al. 2021) and ``nd.CfC``
(Hasani et al. 2022).

- forward against the pure-NumPy twins in tests/reference_liquid_cells.py (float64 to ~1e-12,
  float32 to ~1e-5), with irregular per-sample timespans, batch > 1 (each row equal to the
  row run alone), h0, both CfC modes, 0/1/2 backbone layers, every activation, larger shapes,
  every memory layout, and random shapes (hypothesis);
- every parameter entry's gradient, and the raw kernels' dx / dh0 / dparams, against central
  finite differences in float64 (every-step mse, last-step mse, last-step cross-entropy);
- what the timespans mean: dt changes the output, an LTC step of dt with K unfolds equals K
  steps of dt/K with one unfold, and the fused semi-implicit step converges at first order to
  the LTC ODE integrated by nd.odeint at tight tolerance;
- training on generated irregularly sampled tasks, reproducible from the seed;
- parameters (names, shapes, init ranges), save/load and pickle bit for bit, bad input.

Every parameter is perturbed away from its initial value before a comparison: the initial
biases are 0 and the input/output maps are 1, which would hide a dropped or misplaced term.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
from neurodyn import _core

import reference_liquid_cells as twin
import reference_nn as ref_nn
from conftest import LAYOUTS, as_layout

F64_TOL = dict(rtol=1e-12, atol=1e-12)
# float32 carries ~6e-8 relative per operation; a few dozen operations per step over a few
# steps stay well inside 1e-5 on O(1) outputs.
F32_TOL = dict(rtol=1e-5, atol=1e-5)
CFC_ACTIVATIONS = ("identity", "tanh", "silu", "relu", "sigmoid", "softplus", "lecun_tanh")


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def perturb(cell, seed=0, scale=0.3):
    """Shift every parameter by N(0, scale^2): nonzero biases, non-unit input/output maps."""
    r = np.random.default_rng(seed)
    for name, p in cell.params.items():
        p += (scale * r.normal(size=p.shape)).astype(p.dtype)
    return cell


def ltc(S=3, N=5, *, M=None, K=6, seed=0, dtype=np.float64, eps=1e-8):
    return perturb(nd.LTCCell(S, N, output_size=M, ode_unfolds=K, epsilon=eps, seed=seed, dtype=dtype), seed + 100)


def cfc(I=3, H=4, *, units=6, layers=1, act="lecun_tanh", mode="default", out=None, seed=0, dtype=np.float64,
        scale=0.3):
    cell = nd.CfC(I, H, backbone_units=units, backbone_layers=layers, backbone_activation=act, mode=mode,
                  output_size=out, seed=seed, dtype=dtype)
    return perturb(cell, seed + 100, scale)


def ltc_twin(cell, x, ts=None, h0=None):
    c = cell.config
    return twin.ltc_forward(cell.params, x, ts, h0, ode_unfolds=c["ode_unfolds"], epsilon=c["epsilon"])


def cfc_twin(cell, x, ts=None, h0=None):
    c = cell.config
    return twin.cfc_forward(cell.params, x, ts, h0, hidden_size=c["hidden_size"], backbone_layers=c["backbone_layers"],
                            activation=c["backbone_activation"], mode=c["mode"])


def twin_of(cell, x, ts=None, h0=None):
    return (ltc_twin if isinstance(cell, nd.LTCCell) else cfc_twin)(cell, x, ts, h0)


def sequence(B, T, S, seed=0, dt_range=(0.05, 3.0)):
    """Inputs, irregular per-sample timespans (every row its own sampling) and an h0."""
    r = np.random.default_rng(seed)
    return r.normal(size=(B, T, S)), r.uniform(*dt_range, size=(B, T)), r.normal(scale=0.5, size=(B, 40))


def assert_fd_close(analytic, numeric, what, rtol=1e-6, floor=1e-3):
    """Entrywise |g - fd| < rtol * max(|fd|, floor), and normwise too.

    The central difference with eps 1e-5 has truncation error ~eps^2 |f'''| ~ 1e-10 and
    round-off ~1e-16 / eps ~ 1e-11 on losses of order 1, so an absolute 1e-9 (rtol * floor)
    is ten times above its noise; entries smaller than the floor are held to that absolute
    bound instead of a relative one they cannot meet."""
    g, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert g.shape == n.shape, what
    err = np.abs(g - n) / np.maximum(np.abs(n), floor)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.size == 0 or err.max() < rtol, (
        f"{what}: relative error {err.max():.3g} at {worst} (analytic {g[worst]:.12g}, numeric {n[worst]:.12g})")
    assert ref_nn.rel_err(g, n) < rtol, what


FD_EPS = 1e-5


# ---------------------------------------------------------------------------------------
# 1. Forward against the twins
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("K", [1, 6])
def test_ltc_forward_matches_twin(dtype, with_h0, K):
    cell = ltc(3, 5, M=3, K=K, dtype=dtype)
    x, ts, h0 = sequence(4, 7, 3)
    h0 = h0[:, :5] if with_h0 else None
    out = cell.forward_sequence(x, ts, h0)
    assert out.dtype == dtype and out.shape == (4, 7, 3)
    assert_allclose(out, ltc_twin(cell, x, ts, h0), **(F64_TOL if dtype == np.float64 else F32_TOL))
    assert_allclose(cell.states(x, ts, h0), twin.ltc_states(cell.params, x, ts, h0, ode_unfolds=K),
                    **(F64_TOL if dtype == np.float64 else F32_TOL))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_cfc_forward_matches_twin(dtype, with_h0, mode, layers):
    cell = cfc(3, 4, units=6, layers=layers, mode=mode, out=2, dtype=dtype)
    x, ts, h0 = sequence(5, 6, 3)
    h0 = h0[:, :4] if with_h0 else None
    out = cell.forward_sequence(x, ts, h0)
    assert out.dtype == dtype and out.shape == (5, 6, 2)
    tol = F64_TOL if dtype == np.float64 else F32_TOL
    assert_allclose(out, cfc_twin(cell, x, ts, h0), **tol)
    assert_allclose(cell.states(x, ts, h0), twin.cfc_states(cell.params, x, ts, h0, hidden_size=4, backbone_layers=layers,
                                                             mode=mode), **tol)


@pytest.mark.parametrize("act", CFC_ACTIVATIONS)
def test_cfc_every_backbone_activation_matches_twin(act):
    # Inputs scaled up so relu's kink, sigmoid/tanh saturation and softplus's tail are all hit.
    cell = cfc(2, 3, units=5, layers=2, act=act)
    x, ts, _ = sequence(3, 4, 2)
    assert_allclose(cell.forward_sequence(4 * x, ts), cfc_twin(cell, 4 * x, ts), **F64_TOL)


def test_lecun_tanh_is_the_scaled_tanh():
    # With an identity-free check of the constant: one backbone layer whose output is read
    # straight through ff1 (gate shut by a large negative time_b) reveals 1.7159 tanh(0.666 z).
    cell = nd.CfC(1, 1, backbone_units=1, backbone_layers=1, mode="default", seed=0, dtype=np.float64)
    p = cell.params
    for name in p:
        p[name][...] = 0.0
    p["backbone_0.kernel"][0, 0] = 1.0  # z = x
    p["ff1.kernel"][0, 0] = 1.0         # f1 = tanh(lecun_tanh(x))
    p["time_b.bias"][0] = -1e3          # g = 0 -> h = f1
    x = np.array([[[0.3]], [[-1.2]], [[2.5]]])
    expected = np.tanh(1.7159 * np.tanh(0.666 * x[:, 0, 0]))
    assert_allclose(cell(x)[:, 0], expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_larger_shapes_match_twin(dtype):
    # Sizes past the small-matrix paths of the GEMMs and past one cache line of units. The
    # wide CfC is perturbed less: with 0.3 on 70-wide layers the pre-activations reach ~10
    # and a 6e-8 relative change of the inputs alone moves the output by 5e-5 (measured with
    # the twin), which would test the conditioning rather than the kernel.
    tol = F64_TOL if dtype == np.float64 else F32_TOL
    x, ts, h0 = sequence(13, 5, 9, seed=3)
    cell = ltc(9, 24, M=7, dtype=dtype, seed=4)
    assert_allclose(cell.forward_sequence(x, ts), ltc_twin(cell, x, ts), **tol)
    cell = cfc(9, 33, units=70, layers=2, out=5, dtype=dtype, seed=4, scale=0.1)
    assert_allclose(cell.forward_sequence(x, ts, h0[:, :33]), cfc_twin(cell, x, ts, h0[:, :33]), **tol)


def _cells(dtype=np.float64):
    return [ltc(3, 5, M=2, dtype=dtype), cfc(3, 4, layers=1, out=2, dtype=dtype),
            cfc(3, 4, layers=0, mode="no_gate", dtype=dtype), cfc(3, 4, layers=1, mode="pure", dtype=dtype)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["ltc", "cfc", "cfc-nogate-0layers", "cfc-pure"])
def test_each_row_equals_the_row_run_alone(dtype, which):
    # A popular peer mixes samples when B > 1 (shared state or dt broadcast over the batch):
    # every row, with its own timespans and h0, must give what it gives alone.
    cell = _cells(dtype)[which]
    B = 6
    x, ts, h0 = sequence(B, 5, 3, seed=7)
    h0 = h0[:, :cell.state_size]
    full = cell.forward_sequence(x, ts, h0)
    tol = dict(rtol=1e-13, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-6)
    for b in range(B):
        alone = cell.forward_sequence(x[b:b + 1], ts[b:b + 1], h0[b:b + 1])
        assert_allclose(full[b], alone[0], **tol, err_msg=f"row {b}")
    # and the rows really differ (different dt per row), so the comparison is not vacuous
    assert np.ptp(full[:, -1], axis=0).max() > 1e-3


@pytest.mark.parametrize("which", [0, 1, 2], ids=["ltc", "cfc", "cfc-nogate-0layers"])
def test_call_states_and_readout_agree(which):
    cell = _cells()[which]
    x, ts, _ = sequence(3, 4, 3)
    seq = cell.forward_sequence(x, ts)
    assert_array_equal(cell(x, ts), seq[:, -1])
    h = cell.states(x, ts)
    assert h.shape == (3, 4, cell.state_size)
    if isinstance(cell, nd.LTCCell):
        M = cell.output_size
        expected = h[..., :M] * cell.params["output_w"] + cell.params["output_b"]
    elif "output.kernel" in cell.params:
        expected = h @ cell.params["output.kernel"] + cell.params["output.bias"]
    else:
        expected = h
    assert_allclose(seq, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_h0_continues_a_split_sequence(which):
    # Running the first k steps and then the rest from the last state is the whole run:
    # h0 is the state and nothing else carries over.
    cell = _cells()[which]
    x, ts, _ = sequence(3, 8, 3, seed=2)
    whole = cell.states(x, ts)
    first = cell.states(x[:, :3], ts[:, :3])
    rest = cell.states(x[:, 3:], ts[:, 3:], h0=first[:, -1])
    assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_default_timespans_are_ones_and_integer_timespans_convert(which):
    cell = _cells()[which]
    x, _, _ = sequence(2, 4, 3)
    assert_array_equal(cell.forward_sequence(x), cell.forward_sequence(x, np.ones((2, 4))))
    assert_array_equal(cell.forward_sequence(x, np.full((2, 4), 2, dtype=np.int32)),
                       cell.forward_sequence(x, np.full((2, 4), 2.0)))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_any_layout_in_and_inputs_untouched(layout, which):
    for dtype in (np.float64, np.float32):
        cell = _cells(dtype)[which]
        x, ts, h0 = sequence(3, 4, 3)
        h0 = h0[:, :cell.state_size]
        expected = cell.forward_sequence(x, ts, h0)
        xs, tss, hs = (as_layout(a, layout) for a in (x, ts, h0))
        before = [a.copy() for a in (xs, tss, hs)]
        assert_array_equal(cell.forward_sequence(xs, tss, hs), expected)
        for a, b in zip((xs, tss, hs), before):
            assert_array_equal(a, b)


def test_random_shapes_match_twin():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.given(B=st.integers(1, 4), T=st.integers(1, 5), S=st.integers(0, 4), N=st.integers(1, 6),
                      kind=st.sampled_from(["ltc", "cfc"]), dtype=st.sampled_from([np.float32, np.float64]),
                      layers=st.integers(0, 2), seed=st.integers(0, 2**16))
    def check(B, T, S, N, kind, dtype, layers, seed):
        r = np.random.default_rng(seed)
        if kind == "ltc":
            cell = ltc(S, N, M=int(r.integers(1, N + 1)), K=int(r.integers(1, 5)), dtype=dtype, seed=seed)
        else:
            cell = cfc(S, N, units=int(r.integers(1, 6)), layers=layers, mode=("default", "no_gate", "pure")[seed % 3],
                       act=CFC_ACTIVATIONS[seed % len(CFC_ACTIVATIONS)], dtype=dtype, seed=seed)
        x = r.normal(size=(B, T, S))
        ts = r.uniform(0.01, 4.0, size=(B, T))
        h0 = r.normal(size=(B, N)) if seed % 3 else None
        tol = F64_TOL if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
        assert_allclose(cell.forward_sequence(x, ts, h0), twin_of(cell, x, ts, h0), **tol)

    check()


# ---------------------------------------------------------------------------------------
# 2. Gradients against central finite differences (float64)
# ---------------------------------------------------------------------------------------


def _targets(kind, B, T, M, seed=1):
    r = np.random.default_rng(seed)
    if kind == "mse-every-step":
        return "mse", r.normal(size=(B, T, M))
    if kind == "mse-last-step":
        return "mse", r.normal(size=(B, M))
    return "cross_entropy", r.integers(0, M, size=B)


def _twin_loss(cell, x, ts, loss, y):
    out = twin_of(cell, x, ts)
    if loss == "mse":
        return ref_nn.mse(out if y.ndim == 3 else out[:, -1], y)
    return ref_nn.cross_entropy(out[:, -1], y)


def _check_param_grads(cell, kind, B=3, T=4, seed=5):
    x, ts, _ = sequence(B, T, cell.config["input_size"], seed=seed, dt_range=(0.2, 2.0))
    loss, y = _targets(kind, B, T, cell.output_size)
    value, grads = cell.loss_and_grad(x, y, timespans=ts, loss=loss)
    # the loss value itself against the twin: the gradient of a wrong loss would still pass FD
    assert value == pytest.approx(_twin_loss(cell, x, ts, loss, y), rel=1e-12, abs=1e-14)
    assert list(grads) == list(cell.params) or set(grads) == set(cell.params)
    names = list(cell.params)
    numeric = ref_nn.central_difference(lambda: cell.loss_and_grad(x, y, timespans=ts, loss=loss)[0],
                                        [cell.params[n] for n in names], eps=FD_EPS)
    for name, num in zip(names, numeric):
        assert grads[name].shape == cell.params[name].shape
        assert_fd_close(grads[name], num, f"{kind}: d loss / d {name}")


LOSS_KINDS = ["mse-every-step", "mse-last-step", "cross_entropy"]


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("K", [1, 3])
def test_ltc_param_grads_match_fd(kind, K):
    _check_param_grads(ltc(2, 4, M=3, K=K, seed=1), kind)


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_cfc_param_grads_match_fd(kind, mode, layers):
    _check_param_grads(cfc(2, 3, units=4, layers=layers, mode=mode, out=3, seed=2), kind)


@pytest.mark.parametrize("act", CFC_ACTIVATIONS)
def test_cfc_param_grads_every_activation(act):
    # relu's kink is avoided by FD only with probability 1; the inputs are continuous random.
    _check_param_grads(cfc(2, 3, units=4, layers=1, act=act, out=2, seed=3), "mse-every-step", T=3)


def test_cfc_param_grads_without_output_head():
    _check_param_grads(cfc(2, 3, units=4, layers=1, seed=4), "mse-every-step")


def _weights(shape, seed=9):
    # L = sum(R * h) with a fixed random R: dL/dh = R reaches every state entry with a
    # different weight, so a transposed or misrouted gradient cannot cancel.
    return np.random.default_rng(seed).normal(size=shape)


LTC_ORDER = ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
             "sensory_erev")


def _ltc_raw(B, T, S, N, K, seed, dtype=np.float64):
    """The raw kernels' inputs for an LTCCell of S inputs and N units: mapped inputs, timespans,
    h0 and the effective parameters in the kernels' order, all of dtype."""
    cell = ltc(S, N, M=N, K=K, seed=seed)
    x, ts, h0 = sequence(B, T, S, seed=seed, dt_range=(0.2, 2.0))
    xm = x * cell.params["input_w"] + cell.params["input_b"]
    eff = twin.ltc_effective(cell.params)
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return dict(x=cast(xm), ts=cast(ts), h0=cast(h0[:, :N]), params=[cast(eff[n]) for n in LTC_ORDER],
                kw=dict(ode_unfolds=K, epsilon=cell.config["epsilon"]))


def _ltc_raw_backward(a, R):
    _, cache = _core.ltccell_forward(a["x"], a["ts"], a["h0"], *a["params"], **a["kw"], keep_cache=True)
    return _core.ltccell_backward(a["x"], a["ts"], cache, R.astype(a["x"].dtype), *a["params"], **a["kw"])


# The second shape crosses the backward's blocks of 8 samples (B = 11) and has whole 64-byte
# chunks and a tail in a row of synapses (N = 19 is 16 + 3 floats and 2 x 8 + 3 doubles).
@pytest.mark.parametrize("B, T, S, N, K", [(3, 4, 3, 4, 3), (11, 2, 17, 19, 2)])
def test_ltc_raw_kernel_dx_dh0_dparams_match_fd(B, T, S, N, K):
    a = _ltc_raw(B, T, S, N, K, seed=6)
    R = _weights((B, T, N))

    def loss():
        return float(np.sum(R * _core.ltccell_forward(a["x"], a["ts"], a["h0"], *a["params"], **a["kw"])[0]))

    dx, dh0, dflat = _ltc_raw_backward(a, R)
    num = ref_nn.central_difference(loss, [a["x"], a["h0"]] + a["params"], eps=FD_EPS)
    assert_fd_close(dx, num[0], "ltccell_backward dx")
    assert_fd_close(dh0, num[1], "ltccell_backward dh0")
    assert dflat.size == sum(p.size for p in a["params"])
    k = 0
    for name, p, n in zip(LTC_ORDER, a["params"], num[2:]):
        assert_fd_close(dflat[k:k + p.size].reshape(p.shape), n, f"ltccell_backward d{name}")
        k += p.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ltc_backward_rows_alone_and_float32(dtype):
    # A sample's dx and dh0 do not depend on the samples that share its block; float32 follows
    # float64 at the shape whose rows have whole vector chunks and a tail.
    B, T, S, N, K = 11, 3, 17, 19, 2
    a = _ltc_raw(B, T, S, N, K, seed=8, dtype=dtype)
    R = _weights((B, T, N))
    dx, dh0, dflat = _ltc_raw_backward(a, R)
    for b in (0, 7, 8, 10):
        one = dict(a, x=a["x"][b:b + 1], ts=a["ts"][b:b + 1], h0=a["h0"][b:b + 1])
        dx1, dh01, _ = _ltc_raw_backward(one, R[b:b + 1])
        np.testing.assert_array_equal(dx1[0], dx[b], err_msg=f"dx of row {b}")
        np.testing.assert_array_equal(dh01[0], dh0[b], err_msg=f"dh0 of row {b}")
    if dtype == np.float32:
        ref = _ltc_raw_backward(_ltc_raw(B, T, S, N, K, seed=8), R)
        got = {"dx": dx, "dh0": dh0} | _ltc_split(dflat, a["params"])
        want = {"dx": ref[0], "dh0": ref[1]} | _ltc_split(ref[2], a["params"])
        for what in got:  # array by array: a wrong small one cannot hide in a large one's norm
            assert got[what].dtype == np.float32
            assert ref_nn.rel_err(got[what], want[what]) < 1e-4, what


def _ltc_split(dflat, params):
    """The flat parameter gradient as {name: array}, in the kernels' order."""
    out, k = {}, 0
    for name, p in zip(LTC_ORDER, params):
        out[name] = dflat[k:k + p.size].reshape(p.shape)
        k += p.size
    return out


# 521 samples are groups of several blocks of 8 (the last block short); no sensory inputs, one unit
@pytest.mark.parametrize("B, S, N", [(521, 2, 3), (19, 0, 1)])
def test_ltc_batch_gradient_is_the_sum_of_its_rows(B, S, N, set_threads):
    a = _ltc_raw(B, 2, S, N, 2, seed=12)
    R = _weights((B, 2, N))
    dx, dh0, dflat = _ltc_raw_backward(a, R)
    rows = [_ltc_raw_backward(dict(a, x=a["x"][b:b + 1], ts=a["ts"][b:b + 1], h0=a["h0"][b:b + 1]), R[b:b + 1])
            for b in range(B)]
    np.testing.assert_allclose(dflat, np.sum([r[2] for r in rows], axis=0), rtol=1e-11, atol=1e-13)
    np.testing.assert_array_equal(dx, np.concatenate([r[0] for r in rows]))
    np.testing.assert_array_equal(dh0, np.concatenate([r[1] for r in rows]))
    set_threads(2)
    for got, want in zip(_ltc_raw_backward(a, R), (dx, dh0, dflat)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("layers", [0, 2])
def test_cfc_raw_kernel_dx_dh0_dparams_match_fd(mode, layers):
    act = "lecun_tanh"
    cell = cfc(3, 4, units=5, layers=layers, act=act, mode=mode, seed=7)
    x, ts, h0 = sequence(3, 4, 3, seed=8, dt_range=(0.2, 2.0))
    x = np.ascontiguousarray(x)
    h0 = np.ascontiguousarray(h0[:, :4])
    names = [f"backbone_{l}.{k}" for l in range(layers) for k in ("kernel", "bias")]
    if mode == "pure":
        names += ["ff1.kernel", "ff1.bias", "w_tau", "A"]
    else:
        names += [f"{h}.{k}" for h in ("ff1", "ff2", "time_a", "time_b") for k in ("kernel", "bias")]
    assert names == cell._cell_names()
    params = [np.ascontiguousarray(cell.params[n]) for n in names]
    codes = dict(backbone_activation=act, mode=mode)
    R = _weights((3, 4, 4))

    def loss():
        h, _ = _core.cfc_forward(x, ts, h0, tuple(params), hidden_size=4, **codes)
        return float(np.sum(R * h))

    h, cache = _core.cfc_forward(x, ts, h0, tuple(params), hidden_size=4, keep_cache=True, **codes)
    assert_allclose(h, twin.cfc_states(cell.params, x, ts, h0, hidden_size=4, backbone_layers=layers, mode=mode),
                    **F64_TOL)
    dx, dh0, dflat = _core.cfc_backward(ts, cache, R, tuple(params), input_size=3, **codes)
    num = ref_nn.central_difference(loss, [x, h0] + params, eps=FD_EPS)
    assert_fd_close(dx, num[0], "cfc_backward dx")
    assert_fd_close(dh0, num[1], "cfc_backward dh0")
    k = 0
    for name, p, n in zip(names, params, num[2:]):
        assert_fd_close(dflat[k:k + p.size].reshape(p.shape), n, f"cfc_backward d{name}")
        k += p.size
    assert k == dflat.size


@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_float32_grads_close_to_float64(which):
    # Same parameters in both precisions: float32 backward must not lose more than
    # accumulated rounding (a float32-only bug, e.g. a wrong cast in the f32 instance, would).
    c64 = _cells(np.float64)[which]
    c32 = type(c64)(**{**c64.config, "dtype": np.float32})
    c32.params = {k: v.astype(np.float32) for k, v in c64.params.items()}
    c64.params = {k: v.astype(np.float64) for k, v in c32.params.items()}  # identical values in both
    x, ts, _ = sequence(8, 10, 3, seed=3)
    y = np.random.default_rng(0).normal(size=(8, 10, c64.output_size))
    l64, g64 = c64.loss_and_grad(x, y, timespans=ts)
    l32, g32 = c32.loss_and_grad(x, y, timespans=ts)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name in g64:
        assert g32[name].dtype == np.float32
        assert ref_nn.rel_err(g32[name], g64[name]) < 1e-4, name


# ---------------------------------------------------------------------------------------
# 3. What the timespans mean
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_doubling_one_samples_dt_changes_only_that_sample(which):
    cell = _cells()[which]
    x, ts, _ = sequence(3, 5, 3, seed=4, dt_range=(0.2, 1.0))
    base = cell.forward_sequence(x, ts)
    ts2 = ts.copy()
    ts2[1] *= 2.0
    out = cell.forward_sequence(x, ts2)
    assert np.abs(out[1] - base[1]).max() > 1e-3  # a real change, not rounding
    assert_array_equal(out[[0, 2]], base[[0, 2]])
    assert_allclose(out, twin_of(cell, x, ts2), **F64_TOL)


def test_cfc_dt_enters_only_through_time_a():
    # g = sigmoid(time_a(b) dt + time_b(b)): with time_a zeroed, dt has no effect at all.
    cell = cfc(3, 4, layers=1, out=2)
    x, ts, _ = sequence(3, 5, 3)
    cell.params["time_a.kernel"][...] = 0.0
    cell.params["time_a.bias"][...] = 0.0
    assert_array_equal(cell.forward_sequence(x, ts), cell.forward_sequence(x, 3.0 * ts))


def test_ltc_one_step_of_K_unfolds_is_K_steps_of_dt_over_K():
    # c = C K / dt: one step of dt with K unfolds is K one-unfold steps of dt/K with the input
    # held (the sensory synapses are evaluated once per step and the input is the same).
    K = 4
    a = ltc(3, 5, K=K, seed=2)
    b = nd.LTCCell(3, 5, ode_unfolds=1, seed=0, dtype=np.float64)
    b.params = {k: v.copy() for k, v in a.params.items()}
    x, ts, h0 = sequence(2, 3, 3, seed=1)
    h0 = h0[:, :5]
    coarse = a.states(x, ts, h0)
    fine = b.states(np.repeat(x, K, axis=1), np.repeat(ts / K, K, axis=1), h0)
    assert_allclose(coarse, fine[:, K - 1::K], rtol=1e-13, atol=1e-14)


def test_ltc_converges_to_the_ode_solution():
    # With constant input the cell discretises C dv/dt = g_l (v_l - v) + sum a(v)(E - v) +
    # sum a~ (E~ - v): the fused step is semi-implicit Euler with step dt/K, first order, so
    # the error against a tight dopri5 solution halves each time K doubles.
    cell = ltc(2, 4, seed=3)
    xc = np.array([0.7, -0.4])
    dts = np.array([0.3, 1.1, 0.05, 0.6, 2.0])  # irregular steps
    v0 = np.array([0.2, -0.1, 0.0, 0.3])
    times = np.concatenate([[0.0], np.cumsum(dts)])
    exact = nd.odeint(twin.ltc_rhs(cell.params, xc), v0, times, rtol=1e-11, atol=1e-13, max_steps=100000)[1:]
    x = np.broadcast_to(xc, (1, dts.size, 2))
    errors = []
    for K in (16, 32, 64, 128, 256, 512, 1024):
        c = nd.LTCCell(2, 4, ode_unfolds=K, epsilon=0.0, seed=0, dtype=np.float64)
        c.params = cell.params
        errors.append(np.abs(c.states(x, dts[None], v0[None])[0] - exact).max())
    errors = np.array(errors)
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 1.9) & (ratios < 2.1)), ratios
    assert errors[-1] < 2e-4, errors
    # the trajectory moves well beyond that error, so convergence is not to a constant
    assert np.abs(exact - v0).max() > 0.1


# ---------------------------------------------------------------------------------------
# 4. Training on irregularly sampled tasks
# ---------------------------------------------------------------------------------------


def waveforms(n, T, seed):
    """Sine (0), square (1) or sawtooth (2) of random frequency and phase, sampled at
    irregular times (gaps uniform in [0.05, 0.6]); returns x [n, T, 1], timespans, labels."""
    r = np.random.default_rng(seed)
    gaps = r.uniform(0.05, 0.6, size=(n, T))
    t = np.cumsum(gaps, axis=1) + r.uniform(0.0, 10.0, size=(n, 1))
    phase = (t * r.uniform(0.15, 0.35, size=(n, 1))) % 1.0
    labels = r.integers(0, 3, size=n)
    waves = np.stack([np.sin(2 * np.pi * phase), np.where(phase < 0.5, 1.0, -1.0), 2 * phase - 1])
    x = waves[labels, np.arange(n)]
    return x[..., None].astype(np.float32), gaps.astype(np.float32), labels


def accuracy(cell, x, ts, labels):
    return float(np.mean(cell(x, ts).argmax(axis=1) == labels))


def test_cfc_learns_to_classify_irregular_waveforms():
    x, ts, y = waveforms(384, 20, 0)
    xv, tsv, yv = waveforms(300, 20, 1)
    cell = nd.CfC(1, 16, backbone_units=32, output_size=3, seed=0)
    before = accuracy(cell, xv, tsv, yv)
    # 60 epochs: at 40 the run can still sit on a plateau it leaves a few epochs later, and
    # whether it has left depends on the last bits of the arithmetic (an -O2 build gave 0.83)
    hist = cell.fit(x, y, timespans=ts, loss="cross_entropy", epochs=60, batch_size=32, lr=1e-3, seed=0,
                    verbose=False).history_
    assert len(hist["loss"]) == 60
    assert hist["loss"][-1] < 0.3 < hist["loss"][0]
    assert accuracy(cell, xv, tsv, yv) >= 0.9 > before + 0.3  # chance is 1/3


def test_ltc_learns_to_classify_irregular_waveforms():
    x, ts, y = waveforms(384, 20, 0)
    xv, tsv, yv = waveforms(300, 20, 1)
    cell = nd.LTCCell(1, 8, output_size=3, seed=0)
    hist = cell.fit(x, y, timespans=ts, loss="cross_entropy", epochs=20, batch_size=32, lr=1e-2, seed=0,
                    verbose=False).history_
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    assert accuracy(cell, xv, tsv, yv) >= 0.85


def damped_sines(n, T, seed):
    """Next-value prediction on y = e^{-d t} sin(w t + p) sampled at irregular times: input
    [y(t_k), t_{k+1} - t_k], timespans t_k - t_{k-1}, target y(t_{k+1}) at every step."""
    r = np.random.default_rng(seed)
    gaps = r.uniform(0.1, 0.5, size=(n, T + 1))
    t = np.cumsum(gaps, axis=1)
    y = np.exp(-r.uniform(0.05, 0.3, (n, 1)) * t) * np.sin(r.uniform(1.5, 3.0, (n, 1)) * t
                                                             + r.uniform(0, 2 * np.pi, (n, 1)))
    x = np.stack([y[:, :-1], gaps[:, 1:]], axis=-1)
    return x.astype(np.float32), gaps[:, :-1].astype(np.float32), y[:, 1:, None].astype(np.float32)


def test_cfc_learns_damped_sine_next_value_every_step():
    x, ts, y = damped_sines(256, 20, 0)
    xv, tsv, yv = damped_sines(200, 20, 1)
    persistence = np.mean((xv[..., :1] - yv) ** 2)  # "next = current", the baseline to beat
    cell = nd.CfC(2, 16, backbone_units=32, output_size=1, seed=0)
    cell.fit(x, y, timespans=ts, loss="mse", epochs=30, batch_size=32, lr=3e-3, seed=0, verbose=False)
    mse = np.mean((cell.forward_sequence(xv, tsv) - yv) ** 2)
    assert mse < 0.3 * persistence, (mse, persistence)


@pytest.mark.parametrize("kind", ["ltc", "cfc"])
def test_same_seed_same_history(kind):
    x, ts, y = waveforms(64, 8, 3)

    def run(fit_seed):
        cell = nd.LTCCell(1, 5, output_size=3, seed=1) if kind == "ltc" else \
            nd.CfC(1, 6, backbone_units=8, output_size=3, seed=1)
        hist = cell.fit(x, y, timespans=ts, loss="cross_entropy", epochs=3, batch_size=16, lr=1e-2, seed=fit_seed,
                        verbose=False).history_
        return hist, cell

    (h1, c1), (h2, c2), (h3, _) = run(5), run(5), run(6)
    assert h1["loss"] == h2["loss"] and h1["batch_loss"] == h2["batch_loss"]
    for name in c1.params:
        assert_array_equal(c1.params[name], c2.params[name])
    assert h3["batch_loss"] != h1["batch_loss"]  # the seed does drive the shuffling


# ---------------------------------------------------------------------------------------
# 5. Parameters, save/load, pickle
# ---------------------------------------------------------------------------------------


def test_ltc_parameter_names_shapes_and_initial_ranges():
    S, N, M = 3, 7, 2
    cell = nd.LTCCell(S, N, output_size=M, seed=11)
    shapes = {"gleak": (N,), "vleak": (N,), "cm": (N,), "w": (N, N), "sigma": (N, N), "mu": (N, N), "erev": (N, N),
              "sensory_w": (S, N), "sensory_sigma": (S, N), "sensory_mu": (S, N), "sensory_erev": (S, N),
              "input_w": (S,), "input_b": (S,), "output_w": (M,), "output_b": (M,)}
    assert {k: v.shape for k, v in cell.params.items()} == shapes
    assert all(v.dtype == np.float32 for v in cell.params.values())
    assert cell.param_count() == 3 * N + 4 * N * N + 4 * S * N + 2 * S + 2 * M
    p = {k: v.astype(np.float64) for k, v in cell.params.items()}
    sp = twin.softplus
    tol = 1e-6  # float32 storage of the inverse softplus
    for name, lo, hi, positive in (("gleak", 0.001, 1.0, True), ("vleak", -0.2, 0.2, False), ("cm", 0.4, 0.6, True),
                                   ("w", 0.001, 1.0, True), ("sigma", 3.0, 8.0, False), ("mu", 0.3, 0.8, False),
                                   ("sensory_w", 0.001, 1.0, True), ("sensory_sigma", 3.0, 8.0, False),
                                   ("sensory_mu", 0.3, 0.8, False)):
        v = sp(p[name]) if positive else p[name]
        assert v.min() >= lo - tol and v.max() <= hi + tol, name
    for name in ("erev", "sensory_erev"):
        assert set(np.unique(p[name])) <= {-1.0, 1.0} and len(np.unique(p[name])) == 2, name
    assert_array_equal(p["input_w"], 1.0)
    assert_array_equal(p["input_b"], 0.0)
    assert_array_equal(p["output_w"], 1.0)
    assert_array_equal(p["output_b"], 0.0)
    again = nd.LTCCell(S, N, output_size=M, seed=11)
    other = nd.LTCCell(S, N, output_size=M, seed=12)
    assert all(np.array_equal(cell.params[k], again.params[k]) for k in shapes)
    assert not np.array_equal(cell.params["w"], other.params["w"])


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_cfc_parameter_names_shapes(layers):
    I, H, U, O = 3, 5, 7, 2
    cell = nd.CfC(I, H, backbone_units=U, backbone_layers=layers, output_size=O, seed=0)
    expected, width = {}, I + H
    for l in range(layers):
        expected[f"backbone_{l}.kernel"], expected[f"backbone_{l}.bias"] = (width, U), (U,)
        width = U
    for head in ("ff1", "ff2", "time_a", "time_b"):
        expected[f"{head}.kernel"], expected[f"{head}.bias"] = (width, H), (H,)
    expected["output.kernel"], expected["output.bias"] = (H, O), (O,)
    assert {k: v.shape for k, v in cell.params.items()} == expected
    assert cell.param_count() == sum(int(np.prod(s)) for s in expected.values())
    assert "output.kernel" not in nd.CfC(I, H, backbone_units=U, seed=0).params


def _save_load_cells():
    return [ltc(3, 5, M=2, dtype=np.float32), ltc(3, 5, K=2, eps=1e-6), cfc(3, 4, layers=2, out=2, dtype=np.float32),
            cfc(3, 4, layers=0, mode="no_gate", act="silu")]


@pytest.mark.parametrize("which", range(4), ids=["ltc32", "ltc64", "cfc32", "cfc64-nogate"])
def test_save_load_and_pickle_bit_for_bit(which, tmp_path):
    cell = _save_load_cells()[which]
    x, ts, h0 = sequence(3, 4, 3)
    expected = cell.forward_sequence(x, ts)
    path = tmp_path / "cell.npz"
    cell.save(path)
    for copy in (nd.load(path), pickle.loads(pickle.dumps(cell))):
        assert type(copy) is type(cell)
        assert copy.config == cell.config
        assert list(copy.params) == list(cell.params)
        for name, p in cell.params.items():
            assert copy.params[name].dtype == p.dtype
            assert copy.params[name].tobytes() == p.tobytes(), name
            assert not np.shares_memory(copy.params[name], p)
        assert copy.forward_sequence(x, ts).tobytes() == expected.tobytes()
    assert type(cell).__name__ in repr(cell) and f"{cell.param_count():,}" in repr(cell)


# ---------------------------------------------------------------------------------------
# 6. Bad input
# ---------------------------------------------------------------------------------------


@pytest.fixture(params=["ltc", "cfc"])
def small(request):
    return nd.LTCCell(2, 3, seed=0) if request.param == "ltc" else nd.CfC(2, 3, backbone_units=4, seed=0)


GOOD_X = np.zeros((2, 3, 2))


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 3, 5)), r"x has shape \(2, 3, 5\).*input_size=2"),
    (np.zeros((3, 2)), r"x has shape \(3, 2\)"),
    (np.zeros((2, 0, 2)), r"x has no time steps \(T = 0\)"),
    (np.full((2, 3, 2), np.nan), r"x contains NaN"),
    (np.array([[[0.0, np.inf]] * 3] * 2), r"x contains NaN or inf"),
])
def test_bad_x(small, x, match):
    with pytest.raises(ValueError, match=match):
        small(x)
    with pytest.raises(ValueError, match=match):
        small.forward_sequence(x)


def test_complex_x_refused(small):
    with pytest.raises(TypeError, match="x has dtype complex"):
        small(GOOD_X.astype(complex))


@pytest.mark.parametrize("ts, match", [
    (np.zeros((2, 3)), "timespans must be positive"),
    (-np.ones((2, 3)), "timespans must be positive"),
    (np.array([[1.0, np.nan, 1.0]] * 2), "timespans must be positive and finite"),
    (np.array([[1.0, np.inf, 1.0]] * 2), "timespans must be positive and finite"),
    (np.ones(3), r"timespans has shape \(3,\); expected \(batch, time\) = \(2, 3\)"),
    (np.ones((3, 2)), r"timespans has shape \(3, 2\)"),
    (np.ones((2, 3, 1)), r"timespans has shape \(2, 3, 1\)"),
])
def test_bad_timespans(small, ts, match):
    with pytest.raises(ValueError, match=match):
        small(GOOD_X, ts)
    with pytest.raises(ValueError, match=match):
        small.loss_and_grad(GOOD_X, np.zeros((2, 3)), timespans=ts)
    with pytest.raises(ValueError, match=match):
        small.fit(GOOD_X, np.zeros((2, 3)), timespans=ts, epochs=1, verbose=False)


def test_timespans_that_underflow_float32_are_refused():
    # 1e-50 is positive in float64 but 0 in the cell's float32: checked after the conversion.
    cell = nd.CfC(2, 3, backbone_units=4, seed=0)
    with pytest.raises(ValueError, match="timespans must be positive"):
        cell(GOOD_X, np.full((2, 3), 1e-50))


@pytest.mark.parametrize("h0, match", [
    (np.zeros((2, 4)), r"h0 has shape \(2, 4\); expected \(2, 3\)"),
    (np.zeros(3), r"h0 has shape"),
    (np.full((2, 3), np.nan), "h0 contains NaN"),
])
def test_bad_h0(small, h0, match):
    with pytest.raises(ValueError, match=match):
        small(GOOD_X, None, h0)


@pytest.mark.parametrize("h0", [
    pytest.param(np.zeros((2, 3), complex) + 1j, id="complex"),
    pytest.param(np.array([["a"] * 3] * 2), id="str"),
])
@pytest.mark.filterwarnings("ignore:Casting complex values")  # the symptom of the bug, not noise to show
def test_h0_of_a_non_real_dtype_is_refused_naming_it(small, h0):
    with pytest.raises(TypeError, match="h0"):
        small(GOOD_X, None, h0)


def test_bad_targets_and_loss(small):
    with pytest.raises(ValueError, match="loss='l1' is not one of"):
        small.loss_and_grad(GOOD_X, np.zeros((2, 3)), loss="l1")
    with pytest.raises(ValueError, match=r"y has shape \(2, 4\)"):
        small.loss_and_grad(GOOD_X, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="y contains NaN"):
        small.loss_and_grad(GOOD_X, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        small.loss_and_grad(GOOD_X, np.array([0, 3]), loss="cross_entropy")
    with pytest.raises(ValueError, match="integer labels"):
        small.loss_and_grad(GOOD_X, np.array([0.0, 1.0]), loss="cross_entropy")
    with pytest.raises(ValueError, match="x has 2 sequences but y has shape"):
        small.fit(GOOD_X, np.zeros((3, 3)), verbose=False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(output_size=4), ValueError, "output_size=4 exceeds units=3"),
    (dict(output_size=0), ValueError, "output_size must be >= 1"),
    (dict(ode_unfolds=-1), ValueError, "ode_unfolds must be >= 1, got -1"),
    (dict(ode_unfolds=0), ValueError, "ode_unfolds must be >= 1, got 0"),
    (dict(ode_unfolds=2.5), TypeError, "ode_unfolds must be an integer"),
    (dict(epsilon=-1.0), ValueError, "epsilon must be >= 0"),
    (dict(epsilon=float("nan")), ValueError, "epsilon must be finite"),
    (dict(dtype=np.float16), ValueError, "dtype must be float32 or float64"),
    (dict(seed=-1), ValueError, "seed must be non-negative"),
])
def test_bad_ltc_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        nd.LTCCell(2, 3, **kwargs)


def test_bad_ltc_sizes():
    with pytest.raises(ValueError, match="units must be >= 1, got 0"):
        nd.LTCCell(2, 0)
    with pytest.raises(ValueError, match="input_size must be >= 0, got -1"):
        nd.LTCCell(-1, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mode="gated"), ValueError, "mode='gated' is not one of 'default', 'no_gate'"),
    (dict(mode=None), ValueError, "mode=None is not one of"),
    (dict(backbone_activation="gelu"), ValueError, "backbone_activation='gelu' is not one of"),
    (dict(backbone_layers=-1), ValueError, "backbone_layers must be >= 0, got -1"),
    (dict(backbone_layers=9), ValueError, "backbone_layers must be at most 8"),
    (dict(backbone_units=0), ValueError, "backbone_units must be >= 1, got 0"),
    (dict(output_size=0), ValueError, "output_size must be >= 1"),
    (dict(dtype=np.int64), ValueError, "dtype must be float32 or float64"),
])
def test_bad_cfc_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        nd.CfC(2, 3, **kwargs)


def test_bad_cfc_sizes():
    with pytest.raises(ValueError, match="hidden_size must be >= 1, got 0"):
        nd.CfC(2, 0)
    with pytest.raises(TypeError, match="hidden_size must be an integer"):
        nd.CfC(2, 2.5)


def test_no_inputs_and_eight_layers_still_work():
    # input_size 0 (an autonomous cell driven by its own state) and the deepest backbone
    # allowed are legal configurations and must match the twin, not crash.
    for cell in (ltc(0, 4, seed=1), cfc(0, 3, layers=1, seed=1), cfc(2, 3, units=3, layers=8, seed=1)):
        x, ts, h0 = sequence(2, 3, cell.config["input_size"])
        h0 = h0[:, :cell.state_size]
        assert_allclose(cell.forward_sequence(x, ts, h0), twin_of(cell, x, ts, h0), **F64_TOL)


def test_ode_unfolds_too_large_for_the_kernel_is_named():
    with pytest.raises((ValueError, OverflowError), match="ode_unfolds"):
        nd.LTCCell(2, 3, ode_unfolds=2**31)(GOOD_X)


def test_a_parameter_of_the_wrong_shape_is_refused():
    cell = nd.LTCCell(2, 3, seed=0)
    cell.params["w"] = cell.params["w"][:2]
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        cell(GOOD_X)
    cell = nd.CfC(2, 3, backbone_units=4, seed=0)
    cell.params["ff1.kernel"] = cell.params["ff1.kernel"][:2]
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        cell(GOOD_X)


@pytest.mark.parametrize("name", ["input_w", "output_b"])
def test_ltc_maps_of_the_wrong_shape_are_refused(name):
    cell = nd.LTCCell(2, 3, seed=0)
    cell.params[name] = cell.params[name][:1].copy()
    with pytest.raises(ValueError, match=name):
        cell(GOOD_X)


@pytest.mark.parametrize("which", [0, 1], ids=["ltc", "cfc"])
def test_concurrent_calls_agree(which):
    # The kernels release the GIL; calls from several threads on one cell must not share scratch.
    import threading

    cell = _cells()[which]
    x, ts, _ = sequence(16, 30, 3, seed=5)
    expected = cell.forward_sequence(x, ts)
    results = [None] * 6

    def run(i):
        results[i] = cell.forward_sequence(x, ts)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_array_equal(r, expected)


def test_the_cells_share_the_kernels_timespans_rule():
    ts = np.ones((2, 3))
    ts[1, 2] = 0.0
    for cell in (nd.LTCCell(2, 3, seed=0), nd.CfC(2, 3, backbone_units=4, seed=0)):
        with pytest.raises(ValueError) as excinfo:
            cell(GOOD_X, ts)
        assert str(excinfo.value) == "timespans must be positive and finite, got 0"


@pytest.mark.parametrize("make, message", [
    (lambda: nd.CfC(2, 3, backbone_layers=9), "backbone_layers must be at most 8, got 9"),
    (lambda: nd.CfC(-1, 3), "input_size must be >= 0, got -1"),
    (lambda: nd.LTCCell(2, 3, ode_unfolds=100_001), "ode_unfolds must be at most 100000, got 100001"),
    (lambda: nd.LTCCell(2, 3, epsilon=float("inf")), "epsilon must be finite, got inf"),
])
def test_construction_runs_the_kernels_rules(make, message):
    with pytest.raises(ValueError) as excinfo:
        make()
    assert str(excinfo.value) == message


def test_cfc_modes_come_from_the_kernel():
    assert nd.liquid.CFC_MODES == _core.TABLES["cfc_modes"] == ("default", "no_gate", "pure")


def test_ltccell_backward_flushes_decayed_cotangents():
    """docs/models.md §0: over a long sequence with the loss on the last step the cotangents
    carried back decay below the flush level (the smallest normal number over epsilon); the
    gradients keep none of them, and the parameter gradients (sums dominated by the recent
    steps) match float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 400, 3))
    y = rng.normal(size=(2, 5))
    m64 = nd.LTCCell(3, 5, ode_unfolds=2, seed=1, dtype=np.float64)
    m32 = nd.LTCCell(3, 5, ode_unfolds=2, seed=1, dtype=np.float32)
    l32, g32 = m32.loss_and_grad(x.astype(np.float32), y.astype(np.float32), loss="mse")
    l64, g64 = m64.loss_and_grad(x, y, loss="mse")
    tiny = np.finfo(np.float32).tiny / np.finfo(np.float32).eps
    for k, g in g32.items():
        assert not np.any((g != 0) & (np.abs(g) < tiny)), k
        np.testing.assert_allclose(g, g64[k], rtol=2e-3, atol=1e-6 * np.abs(g64[k]).max(), err_msg=k)
    # the input's gradient, step by step: the early steps' cotangents are far below the level,
    # and come out as zeros rather than subnormals
    xf = x.astype(np.float32)
    _, cache = m32._run(xf, None, None, True)
    dh = np.zeros((2, 400, 5), np.float32)
    dh[:, -1] = 1.0
    dx, dh0 = _core_grad(m32, xf, cache, dh)
    assert not np.any((dx != 0) & (np.abs(dx) < tiny)) and not np.any((dh0 != 0) & (np.abs(dh0) < tiny))
    assert np.all(dx[:, :10] == 0) and np.abs(dx[:, -1]).max() > 1e-6


def _core_grad(m, x, cache, dh):
    from neurodyn import _core

    c = m.config
    dx, dh0, _ = _core.ltccell_backward(m._mapped(x), None, cache, dh, *m._effective(), ode_unfolds=c["ode_unfolds"],
                                        epsilon=c["epsilon"])
    return dx, dh0
