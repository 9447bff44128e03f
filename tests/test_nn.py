"""The neural-network core (neurodyn.nn and the SwiGLU kernels of neurodyn._core).

Forward passes are compared with the pure-NumPy twins of tests/reference_nn.py in float32
and float64; every backward kernel is compared with central finite differences in float64
(docs/models.md §0: "Every backward kernel is checked against finite differences in float64").
"""
from __future__ import annotations

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import _core, nn

import reference_nn as ref

DTYPES = (np.float32, np.float64)
ACTS = ("identity", "tanh", "silu", "relu", "sigmoid", "softplus")
# Central differences in float64 are good to ~1e-10 relative; 1e-6 leaves room for the
# curvature of tanh/softplus without hiding a wrong formula (those are off by O(1)).
FD_TOL = 1e-6


def tol(dtype):
    """rtol for a float32/float64 kernel against a float64 twin fed the same inputs."""
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-12


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def dense_params(rng, n_in, n_out, dtype=np.float64, bias=True):
    p = {"d.kernel": rng.normal(size=(n_in, n_out)).astype(dtype)}
    if bias:
        p["d.bias"] = rng.normal(size=n_out).astype(dtype)
    return p


def ln_params(rng, n, dtype=np.float64):
    # gamma away from 1 and beta away from 0, so a kernel that ignored them would fail.
    return {"n.gamma": (1 + 0.5 * rng.normal(size=n)).astype(dtype),
            "n.beta": rng.normal(size=n).astype(dtype)}


def layouts(a):
    """The same values in the layouts a caller may pass (docs/models.md §0: any layout in)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    ro = a.copy()
    ro.setflags(write=False)
    return {"C": a.copy(), "F": np.asfortranarray(a), "strided": big[..., ::2], "readonly": ro,
            "byteswapped": a.astype(a.dtype.newbyteorder())}


# ---- forward against the twins ------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_matches_numpy(rng, dtype, bias):
    p = dense_params(rng, 7, 5, dtype, bias)
    x = rng.normal(size=(6, 7)).astype(dtype)
    y = nn.dense(p, "d", x)
    assert y.dtype == dtype and y.shape == (6, 5)
    np.testing.assert_allclose(y, ref.dense(x, p["d.kernel"], p.get("d.bias")), rtol=tol(dtype), atol=tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_forward_matches_numpy(rng, dtype):
    p = ln_params(rng, 9, dtype)
    # An offset of 50 makes a one-pass variance (E[x^2] - E[x]^2) lose digits in float32.
    x = (50 + rng.normal(size=(4, 9))).astype(dtype)
    y, (xc, mean, rstd) = nn.layernorm(p, "n", x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref.layernorm(x, p["n.gamma"], p["n.beta"]), rtol=tol(dtype) * 10, atol=tol(dtype) * 10)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=1), rtol=tol(dtype))
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(axis=1) + 1e-5), rtol=tol(dtype))


def test_layernorm_eps_is_1e_5(rng):
    """A constant row has zero variance: the output is beta exactly, and rstd = 1/sqrt(eps)."""
    p = ln_params(rng, 4)
    y, (_, _, rstd) = nn.layernorm(p, "n", np.full((1, 4), 3.0))
    np.testing.assert_array_equal(y[0], p["n.beta"])
    np.testing.assert_allclose(rstd, [1 / np.sqrt(1e-5)], rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
def test_activation_forward_matches_numpy(rng, dtype, name):
    # Include large magnitudes: sigmoid/softplus/silu must not overflow exp.
    x = np.concatenate([rng.normal(scale=3, size=40), [-80.0, -30.0, 0.0, 30.0, 80.0]]).astype(dtype)
    y = nn.activation(name, x)
    assert y.dtype == dtype and y.shape == x.shape
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, ref.activation(name, x), rtol=tol(dtype) * 4, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_keeps_shape_of_nd_input(rng, dtype):
    x = rng.normal(size=(2, 3, 4)).astype(dtype)
    y = nn.activation("silu", x)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y, ref.activation("silu", x), rtol=tol(dtype) * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_swiglu_forward_matches_numpy(rng, dtype):
    g, u = rng.normal(scale=2, size=(2, 2, 6, 5)).astype(dtype)
    out = _core.swiglu_forward(g, u)
    assert out.dtype == dtype and out.shape == g.shape
    np.testing.assert_allclose(out, ref.swiglu(g, u), rtol=tol(dtype) * 4, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_forward_matches_numpy(rng, dtype):
    pred, target = rng.normal(size=(2, 5, 3)).astype(dtype)
    loss, dpred = nn.mse_loss(pred, target)
    assert dpred.dtype == dtype and dpred.shape == pred.shape
    assert loss == pytest.approx(ref.mse(pred, target), rel=tol(dtype))
    np.testing.assert_allclose(dpred, 2 * (pred.astype(np.float64) - target) / pred.size, rtol=tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_forward_matches_numpy(rng, dtype):
    logits = rng.normal(scale=3, size=(6, 4)).astype(dtype)
    labels = rng.integers(0, 4, size=6)
    loss, dlogits = nn.cross_entropy_loss(logits, labels)
    assert dlogits.dtype == dtype and dlogits.shape == logits.shape
    assert loss == pytest.approx(ref.cross_entropy(logits, labels), rel=tol(dtype))
    np.testing.assert_allclose(dlogits, ref.cross_entropy_grad(logits, labels), rtol=tol(dtype) * 4, atol=1e-7)


def test_mse_and_cross_entropy_of_no_rows():
    """Zero-size batches give a zero loss and an empty gradient, not a division by zero."""
    loss, d = nn.mse_loss(np.zeros((0, 3)), np.zeros((0, 3)))
    assert loss == 0.0 and d.shape == (0, 3)
    loss, d = nn.cross_entropy_loss(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert loss == 0.0 and d.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, fan_in, fan_out", [(256, 64, 64), (1024, 64, 64), (8192, 64, 2), (509, 96, 80),
                                                   (128, 64, 256), (1021, 256, 64), (128, 128, 256)])
def test_dense_products_match_numpy(rng, dtype, rows, fan_in, fan_out):
    """The layer and its input and weight gradients at the shapes nd_gemm cuts into blocks or
    computes by its other routes (on kernels with OpenBLAS's small-matrix path: row and column
    blocks under its limit, cut by rows where column blocks would be too thin, dy w^T with w^T
    copied first, x^T dy over slices of the rows) equal float64 products to rounding."""
    x = rng.normal(size=(rows, fan_in)).astype(dtype)
    w = rng.normal(size=(fan_in, fan_out)).astype(dtype)
    b = rng.normal(size=fan_out).astype(dtype)
    dy = rng.normal(size=(rows, fan_out)).astype(dtype)
    y = _core.dense_forward(x, w, b)
    dx, dw, db = _core.dense_backward(x, w, dy, True)
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    scale = 1e-5 if dtype == np.float32 else 1e-13
    for got, want, inner in ((y, x64 @ w64 + b64, fan_in), (dx, dy64 @ w64.T, fan_out), (dw, x64.T @ dy64, rows),
                             (db, dy64.sum(0), rows)):
        assert got.dtype == dtype
        # each entry is a sum of `inner` products of unit normals: error ~ eps sqrt(inner) |terms|
        bound = scale * np.sqrt(inner) * (np.abs(x64).max() + np.abs(w64).max()) * np.abs(dy64).max()
        assert np.max(np.abs(got - want)) < bound


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_bits_do_not_depend_on_the_block(rng, dtype):
    """act_forward evaluates whole blocks of elements unrolled and the rest one at a time; both
    must give the same bits (a sample's outputs may not depend on its batch, which decides
    where the blocks fall): an array at once equals its rows one by one, for every activation.
    gcc's choice of fused multiply-adds in either form can break this; this test catches it."""
    uint = np.uint64 if dtype == np.float64 else np.uint32
    for act in _core.TABLES["activations"]:
        for scale in (0.1, 1.0, 3.0, 10.0):
            z = (rng.normal(size=(67, 5)) * scale).astype(dtype)
            whole = _core.act_forward(act, z)
            rows = np.concatenate([_core.act_forward(act, z[i:i + 1]) for i in range(z.shape[0])])
            np.testing.assert_array_equal(whole.view(uint), rows.view(uint), err_msg=f"{act} at scale {scale}")


# ---- backward against finite differences (float64) ------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_dense_backward_finite_differences(rng, bias):
    p = dense_params(rng, 4, 3, bias=bias)
    x = rng.normal(size=(5, 4))
    w = rng.normal(size=(5, 3))  # L = sum(w * y): dL/dy = w, an arbitrary cotangent

    def loss():
        return float(np.sum(w * nn.dense(p, "d", x)))

    grads = {}
    dx = nn.dense_grad(p, "d", x, w, grads)
    arrays = [x, p["d.kernel"]] + ([p["d.bias"]] if bias else [])
    num = ref.central_difference(loss, arrays)
    assert ref.rel_err(dx, num[0]) < FD_TOL
    assert ref.rel_err(grads["d.kernel"], num[1]) < FD_TOL
    if bias:
        assert ref.rel_err(grads["d.bias"], num[2]) < FD_TOL
    else:
        assert "d.bias" not in grads


def test_layernorm_backward_finite_differences(rng):
    p = ln_params(rng, 6)
    x = rng.normal(scale=2, size=(4, 6)) + 1.0
    w = rng.normal(size=(4, 6))

    def loss():
        return float(np.sum(w * nn.layernorm(p, "n", x)[0]))

    _, cache = nn.layernorm(p, "n", x)
    grads = {}
    dx = nn.layernorm_grad(p, "n", cache, w, grads)
    num_x, num_g, num_b = ref.central_difference(loss, [x, p["n.gamma"], p["n.beta"]])
    assert ref.rel_err(dx, num_x) < FD_TOL
    assert ref.rel_err(grads["n.gamma"], num_g) < FD_TOL
    assert ref.rel_err(grads["n.beta"], num_b) < FD_TOL
    # Normalisation makes the loss invariant to shifting a row: dx sums to 0 per row.
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_finite_differences(rng, name):
    x = rng.normal(scale=2, size=(3, 7))
    if name == "relu":
        x = np.sign(x) * (0.1 + np.abs(x))  # keep every entry away from the kink at 0
    w = rng.normal(size=x.shape)

    def loss():
        return float(np.sum(w * nn.activation(name, x)))

    dx = nn.activation_grad(name, x, nn.activation(name, x), w)
    (num,) = ref.central_difference(loss, [x])
    assert ref.rel_err(dx, num) < FD_TOL


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_float32_agrees_with_float64(rng, name):
    x = rng.normal(scale=2, size=30)
    dy = rng.normal(size=30)
    d64 = nn.activation_grad(name, x, nn.activation(name, x), dy)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    d32 = nn.activation_grad(name, x32, nn.activation(name, x32), dy32)
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-6)


def test_swiglu_backward_finite_differences(rng):
    g, u = rng.normal(scale=2, size=(2, 4, 5))
    w = rng.normal(size=(4, 5))

    def loss():
        return float(np.sum(w * _core.swiglu_forward(g, u)))

    dg, du = _core.swiglu_backward(g, u, w)
    num_g, num_u = ref.central_difference(loss, [g, u])
    assert ref.rel_err(dg, num_g) < FD_TOL
    assert ref.rel_err(du, num_u) < FD_TOL


def test_mse_backward_finite_differences(rng):
    pred, target = rng.normal(size=(2, 4, 3))
    _, dpred = nn.mse_loss(pred, target)
    (num,) = ref.central_difference(lambda: nn.mse_loss(pred, target)[0], [pred])
    assert ref.rel_err(dpred, num) < FD_TOL


def test_cross_entropy_backward_finite_differences(rng):
    logits = rng.normal(scale=2, size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    _, dlogits = nn.cross_entropy_loss(logits, labels)
    (num,) = ref.central_difference(lambda: nn.cross_entropy_loss(logits, labels)[0], [logits])
    assert ref.rel_err(dlogits, num) < FD_TOL


# ---- cross-entropy edge cases --------------------------------------------------------------


def test_cross_entropy_stable_for_huge_logits():
    """exp(1e4) overflows; log-sum-exp with the row max subtracted must not."""
    logits = np.array([[1e4, 0.0, -1e4], [800.0, 800.5, -3.0], [-1e300, 0.0, 1e300]])
    labels = np.array([1, 0, 2])
    loss, d = nn.cross_entropy_loss(logits, labels)
    # Row 0: -log softmax = 1e4; row 1: log(1 + e^0.5) - 0 + ...; row 2: 0.
    expected = (1e4 + np.logaddexp(0.0, 0.5) + 0.0) / 3
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-14)  # softmax - onehot sums to 0
    np.testing.assert_allclose(d, ref.cross_entropy_grad(logits, labels), atol=1e-14)


def test_cross_entropy_stable_for_huge_float32_logits():
    # Near the float32 maximum (exp overflows from 88.7 on); row 1's two tied logits are
    # small enough that log 2 survives next to them.
    logits = np.array([[3e38, -3e38, 0.0], [1e4, 1e4, -1e4]], dtype=np.float32)
    loss, d = nn.cross_entropy_loss(logits, np.array([0, 1]))
    assert d.dtype == np.float32
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-6)  # row 0 contributes 0, row 1 log 2
    np.testing.assert_allclose(d, [[0, 0, 0], [0.25, -0.25, 0]], atol=1e-7)


@pytest.mark.parametrize("bad", [[0, 3], [-1, 0], [4, 4]])
def test_cross_entropy_labels_out_of_range(bad):
    with pytest.raises(ValueError, match="labels"):
        nn.cross_entropy_loss(np.zeros((2, 3)), np.array(bad))


def test_cross_entropy_labels_wrong_length():
    with pytest.raises(ValueError, match="logits"):
        nn.cross_entropy_loss(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_cross_entropy_refuses_fractional_labels():
    # Truncating 1.7 to class 1 would be a silently wrong result.
    with pytest.raises(TypeError):
        nn.cross_entropy_loss(np.zeros((2, 3)), np.array([0.0, 1.7]))


# ---- dtypes, layouts, shapes ----------------------------------------------------------------


def test_output_dtype_follows_the_first_input(rng):
    p64 = dense_params(rng, 3, 2)
    x32 = rng.normal(size=(4, 3)).astype(np.float32)
    assert nn.dense(p64, "d", x32).dtype == np.float32
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    assert nn.dense(p32, "d", x32.astype(np.float64)).dtype == np.float64
    # integers are converted losslessly to float64
    assert nn.activation("tanh", np.arange(4)).dtype == np.float64
    g = rng.normal(size=5)
    assert _core.swiglu_forward(g.astype(np.float32), g).dtype == np.float32


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="x has dtype complex128"):
        nn.activation("tanh", np.ones(3, dtype=complex))


@pytest.mark.parametrize("layout", ["C", "F", "strided", "readonly", "byteswapped"])
def test_layers_accept_any_layout_and_leave_inputs_alone(rng, layout):
    x = rng.normal(size=(5, 4))
    p = dense_params(rng, 4, 3)
    pl = ln_params(rng, 4)
    xl = layouts(x)[layout]
    before = xl.copy()
    np.testing.assert_allclose(nn.dense(p, "d", xl), ref.dense(x, p["d.kernel"], p["d.bias"]), rtol=1e-12)
    np.testing.assert_allclose(nn.layernorm(pl, "n", xl)[0], ref.layernorm(x, pl["n.gamma"], pl["n.beta"]), rtol=1e-12)
    np.testing.assert_allclose(nn.activation("silu", xl), ref.activation("silu", x), rtol=1e-14)
    np.testing.assert_allclose(_core.swiglu_forward(xl, xl), ref.swiglu(x, x), rtol=1e-14)
    np.testing.assert_array_equal(xl, before)


def test_shape_mismatches_are_value_errors(rng):
    p = dense_params(rng, 4, 3)
    with pytest.raises(ValueError, match="kernel"):
        nn.dense(p, "d", np.ones((2, 5)))
    with pytest.raises(ValueError, match="x has shape"):
        nn.dense(p, "d", np.ones(4))
    with pytest.raises(ValueError, match="dy"):
        nn.dense_grad(p, "d", np.ones((2, 4)), np.ones((2, 2)), {})
    with pytest.raises(ValueError, match="gamma"):
        nn.layernorm(ln_params(rng, 3), "n", np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"up has shape \(4,\); expected \(3,\), the same shape as gate"):
        _core.swiglu_forward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"target has shape \(4,\); expected \(3,\), the same shape as pred"):
        nn.mse_loss(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="same shape"):
        nn.activation_grad("tanh", np.ones(3), np.ones(3), np.ones(4))


def test_unknown_activation_names_the_value():
    with pytest.raises(ValueError, match="gelu"):
        nn.activation("gelu", np.ones(3))


# ---- initialisation -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_glorot_uniform_bounds_and_spread(dtype):
    fan_in, fan_out = 60, 40
    w = nn.glorot_uniform(np.random.default_rng(0), fan_in, fan_out, dtype)
    a = np.sqrt(6 / (fan_in + fan_out))
    assert w.shape == (fan_in, fan_out) and w.dtype == dtype
    assert np.all(np.abs(w) <= a)
    # U(-a, a) has standard deviation a / sqrt(3); 2400 draws pin it to a few percent.
    assert np.std(w) == pytest.approx(a / np.sqrt(3), rel=0.05)
    assert abs(np.mean(w)) < 0.05 * a
    np.testing.assert_array_equal(w, nn.glorot_uniform(np.random.default_rng(0), fan_in, fan_out, dtype))


def test_init_dense_and_layernorm():
    p = {}
    nn.init_dense(p, "lay", 3, 5, np.random.default_rng(1), np.float32)
    nn.init_layernorm(p, "ln", 5, np.float32)
    assert p["lay.kernel"].shape == (3, 5) and p["lay.kernel"].dtype == np.float32
    np.testing.assert_array_equal(p["lay.bias"], np.zeros(5, np.float32))
    np.testing.assert_array_equal(p["ln.gamma"], np.ones(5, np.float32))
    np.testing.assert_array_equal(p["ln.beta"], np.zeros(5, np.float32))
    assert all(v.dtype == np.float32 for v in p.values())


# ---- property test over shapes and dtypes ------------------------------------------------------

try:
    from hypothesis import given, strategies as st
except ImportError:  # a test extra: only this test is skipped without it, not the module
    def given(**_):
        return lambda f: pytest.mark.skip(reason="hypothesis is not installed")(lambda: None)

    class st:  # noqa: N801 - stands in for hypothesis.strategies
        integers = sampled_from = staticmethod(lambda *a: None)


@given(rows=st.integers(0, 6), n_in=st.integers(1, 6), n_out=st.integers(1, 6),
       dtype=st.sampled_from(DTYPES), act=st.sampled_from(ACTS), seed=st.integers(0, 2**16))
def test_dense_then_activation_property(rows, n_in, n_out, dtype, act, seed):
    """Random shapes (including zero rows) and dtypes: every forward matches its twin."""
    r = np.random.default_rng(seed)
    p = dense_params(r, n_in, n_out, dtype)
    x = r.normal(size=(rows, n_in)).astype(dtype)
    y = nn.dense(p, "d", x)
    assert y.shape == (rows, n_out) and y.dtype == dtype
    np.testing.assert_allclose(y, ref.dense(x, p["d.kernel"], p["d.bias"]), rtol=tol(dtype) * 10, atol=tol(dtype) * 10)
    a = nn.activation(act, y)
    np.testing.assert_allclose(a, ref.activation(act, y), rtol=tol(dtype) * 4, atol=1e-30)
    grads = {}
    dx = nn.dense_grad(p, "d", x, np.ones_like(y), grads)
    assert dx.shape == x.shape and grads["d.kernel"].shape == (n_in, n_out)
    np.testing.assert_allclose(grads["d.bias"], np.full(n_out, float(rows)), rtol=1e-6)


# ---- event-driven dense layers on spike inputs -------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("density", [0.0, 0.04, 0.2, 0.6])  # 0.6: the dense kernels take over
def test_spike_dense_is_the_product_and_its_gradient(dtype, density):
    rng = np.random.default_rng(11)
    rows, n_in, out = 301, 97, 150  # out is not a multiple of the 64-column blocks
    x = (rng.random((rows, n_in)) < density).astype(dtype)
    params = {"fc.kernel": rng.standard_normal((n_in, out)).astype(dtype),
              "fc.bias": rng.standard_normal(out).astype(dtype)}
    before = {k: v.copy() for k, v in params.items()}
    x0 = x.copy()
    y = nd.nn.dense(params, "fc", x, spikes=True)
    want = x.astype(np.float64) @ params["fc.kernel"].astype(np.float64) + params["fc.bias"]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * 10)
    assert y.dtype == dtype
    dy = rng.standard_normal((rows, out)).astype(dtype)
    g_spk, g_dense = {}, {}
    dx_spk = nd.nn.dense_grad(params, "fc", x, dy, g_spk, spikes=True)
    dx_dense = nd.nn.dense_grad(params, "fc", x, dy, g_dense)
    np.testing.assert_allclose(g_spk["fc.kernel"], x.T.astype(np.float64) @ dy, rtol=tol, atol=tol * 10)
    np.testing.assert_array_equal(g_spk["fc.bias"], g_dense["fc.bias"])  # same kernel for db and dx
    np.testing.assert_array_equal(dx_spk, dx_dense)
    assert nd.nn.dense_grad(params, "fc", x, dy, {}, need_dx=False, spikes=True) is None
    np.testing.assert_array_equal(x, x0)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, np.nan, np.inf])
def test_spike_dense_refuses_values_that_are_not_spikes(bad):
    params = {"fc.kernel": np.ones((3, 2)), "fc.bias": np.zeros(2)}
    x = np.array([[1.0, 0.0, bad]])
    with pytest.raises(ValueError, match="0 or 1"):
        nd.nn.dense(params, "fc", x, spikes=True)
    with pytest.raises(ValueError, match="0 or 1"):
        nd.nn.dense_grad(params, "fc", x, np.ones((1, 2)), {}, spikes=True)


def test_spike_dense_empty_shapes():
    params = {"fc.kernel": np.ones((4, 3)), "fc.bias": np.arange(3.0)}
    assert nd.nn.dense(params, "fc", np.zeros((0, 4)), spikes=True).shape == (0, 3)
    g = {}
    nd.nn.dense_grad(params, "fc", np.zeros((0, 4)), np.zeros((0, 3)), g, spikes=True)
    np.testing.assert_array_equal(g["fc.kernel"], np.zeros((4, 3)))


# ---- one rule, one message (docs/design.md, "The contract") -------------------------------------

def _message(call, exc=ValueError):
    with pytest.raises(exc) as info:
        call()
    return str(info.value)


def test_activation_names_are_the_kernels_table():
    assert nn.ACTIVATIONS is _core.TABLES["activations"]
    assert nn.ACTIVATIONS[:2] == ("identity", "tanh") and "lecun_tanh" in nn.ACTIVATIONS
    x = np.linspace(-2, 2, 9)
    for name in nn.ACTIVATIONS:  # every name of the table reaches its kernel
        assert nn.activation(name, x).shape == x.shape


def test_unknown_activation_one_message_everywhere():
    x = np.ones(3)
    messages = {_message(lambda: nn.activation("gelu", x)),
                _message(lambda: nn.activation_grad("gelu", x, x, x)),
                _message(lambda: _core.act_forward(activation="gelu", x=x))}
    assert messages == {"activation='gelu' is not one of " + ", ".join(map(repr, nn.ACTIVATIONS))}


def test_spike_values_one_message_forward_and_backward():
    params = {"fc.kernel": np.ones((3, 2)), "fc.bias": np.zeros(2)}
    x = np.array([[1.0, 0.0, 0.5]])
    forward = _message(lambda: nn.dense(params, "fc", x, spikes=True))
    backward = _message(lambda: nn.dense_grad(params, "fc", x, np.ones((1, 2)), {}, spikes=True))
    assert forward == backward == "x must hold spikes: every value 0 or 1 (spikes=True), got 0.5"


def test_labels_one_message_through_the_loss_and_the_targets():
    logits = np.zeros((2, 3))
    messages = {_message(lambda: nn.cross_entropy_loss(logits, np.array([0, 3]))),
                _message(lambda: nn.check_targets("cross_entropy", np.array([0, 3]), 2, (2, 3), np.float64)),
                _message(lambda: nn.loss_and_grad("cross_entropy", logits, np.array([0, 3])))}
    assert messages == {"labels must lie in [0, 3), got 3"}
    assert "labels must hold integers" in _message(lambda: nn.cross_entropy_loss(logits, [0.0, 1.0]), TypeError)


def test_layernorm_rules_are_the_kernels():
    assert _core.DEFAULTS["layernorm_forward"]["eps"] == 1e-5
    assert _message(lambda: _core.layernorm_forward(np.ones((2, 3)), eps=-1.0)) == "eps must be >= 0, got -1"
    assert _message(lambda: nn.layernorm({"n.gamma": np.ones(0), "n.beta": np.ones(0)}, "n", np.ones((2, 0)))) \
        == "x must have at least one feature (its last axis), got 0"
    # gamma and beta may be left out: ones and zeros
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(_core.layernorm_forward(x)[0], _core.layernorm_forward(x, np.ones(4), np.zeros(4))[0])


def test_entry_points_take_keywords():
    x, w = np.ones((2, 3)), np.ones((3, 4))
    np.testing.assert_array_equal(_core.dense_forward(x=x, kernel=w), np.full((2, 4), 3.0))
    dx, dw, db = _core.dense_backward(x, w, np.ones((2, 4)), has_bias=False, need_dx=False)
    assert dx is None and db is None and dw.shape == (3, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        _core.dense_forward(x, w, bogus=1)
    with pytest.raises(TypeError, match="missing required argument 'has_bias'"):
        _core.dense_backward(x, w, np.ones((2, 4)))


# ---- tiny cotangents flushed (docs/models.md §0) ----------------------------------------------


def flush_level(dtype):
    """The flush threshold of the backward kernels: the smallest normal number over epsilon."""
    return np.finfo(dtype).tiny / np.finfo(dtype).eps


def tiny_nonzero(a):
    a = np.asarray(a)
    return (a != 0) & (np.abs(a) < flush_level(a.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_flushes_tiny_cotangents(dtype, name):
    tiny = flush_level(dtype)
    x = np.full(6, 0.5, dtype)
    y = nn.activation(name, x)
    dy = np.array([tiny / 4, -tiny / 2, 1.0, -3.0, tiny * 8, tiny / 1024], dtype)
    dx = _core.act_backward(name, x, y, dy)
    want = _core.act_backward(name, x, y, np.where(tiny_nonzero(dy), 0, dy).astype(dtype))
    assert not tiny_nonzero(dx).any()
    np.testing.assert_array_equal(dx[2:5], want[2:5])  # the normal cotangents keep their bits
    assert np.array_equal(dx[[0, 1, 5]], np.zeros(3)) and np.signbit(dx[1]) == np.signbit(want[1] * -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_and_swiglu_backward_flush_tiny_cotangents(rng, dtype):
    tiny = flush_level(dtype)
    x = rng.normal(size=(4, 16)).astype(dtype)
    dy = (rng.normal(size=(4, 16)) * tiny).astype(dtype)  # about half of it below the level
    dy[0] = rng.normal(size=16)  # one row of ordinary cotangents
    _, (_, mean, rstd) = nn.layernorm({"n.gamma": np.ones(16, dtype), "n.beta": np.zeros(16, dtype)}, "n", x)
    dx, _, _ = _core.layernorm_backward(x, np.ones(16, dtype), mean, rstd, dy)
    assert not tiny_nonzero(dx).any() and np.abs(dx[0]).min() > 0
    g, u = rng.normal(size=(2, 64)).astype(dtype)
    dg, du = _core.swiglu_backward(g, u, (rng.normal(size=64) * tiny).astype(dtype))
    assert not tiny_nonzero(dg).any() and not tiny_nonzero(du).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_ltc_scan_backward_flushes_the_decayed_carry(rng, dtype):
    """A loss on the last frame only: the carry decays by exp(-1/tau) per frame, below the
    flush level after ~35 frames in float32 (~330 in float64); the gradients keep no value
    below it and agree with the float64 twin wherever the twin is above it."""
    import reference_liquid as twin

    B, T, H = 2, 420, 8
    a = rng.normal(size=(B, T, H)).astype(dtype)
    tau = np.full((B, T, H), 0.5, dtype)
    h = _core.ltc_scan(a, tau, None, solver="exact", steps=1, rtol=1e-3, atol=1e-6, max_steps=100)
    dh = np.zeros((B, T, H), dtype)
    dh[:, -1] = 1.0
    got = _core.ltc_scan_backward(a, tau, None, h, dh, solver="exact", steps=1, rtol=1e-3, atol=1e-6,
                                  max_steps=100)
    tiny = flush_level(dtype)
    for k, (g, e) in enumerate(zip(got, twin.ltc_scan_exact_backward(a, tau, None, h, dh))):
        assert not tiny_nonzero(g).any()
        normal = np.abs(e) >= 2 * tiny
        assert (~normal).any() and (normal.any() or k == 2)  # dh0, 420 frames back, is below them all
        np.testing.assert_allclose(g[normal], e[normal], rtol=1e-4 if dtype == np.float32 else 1e-10)
        assert np.all(np.abs(g[~normal]) <= 4 * tiny)
