"""Built-in vector fields (nd.fields): evaluation in C against the NumPy twins of
tests/reference.py, across dtypes, batch shapes and memory layouts; their validation; and
odeint driven by a field against the reference integrators (docs/models.md §0, §1).
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd
import reference as ref
from conftest import LAYOUTS, as_layout

ACTIVATIONS = ("identity", "tanh", "silu", "relu", "sigmoid", "softplus")
BATCH_SHAPES = [(), (1,), (5,), (2, 3), (0,), (2, 0)]


def _tol(dtype, scale=1.0):
    """Absolute tolerance for a result of magnitude ``scale`` computed in ``dtype``."""
    return (1e-13 if np.dtype(dtype) == np.float64 else 3e-6) * max(1.0, scale)


def make_field(kind, rng, n=4, dtype=np.float64):
    """A field and its NumPy twin, with random parameters."""
    if kind == "linear":
        A = rng.normal(size=(n, n)).astype(dtype)
        return nd.fields.Linear(A), ref.linear(A), n
    if kind == "linear_b":
        A, b = rng.normal(size=(n, n)).astype(dtype), rng.normal(size=n).astype(dtype)
        return nd.fields.Linear(A, b), ref.linear(A, b), n
    if kind == "lorenz":
        return nd.fields.Lorenz(), ref.lorenz(), 3
    if kind == "lorenz_custom":
        return nd.fields.Lorenz(sigma=3.5, rho=-2.0, beta=0.25), ref.lorenz(3.5, -2.0, 0.25), 3
    if kind == "mlp":
        ws = [rng.normal(size=s).astype(dtype) / 2 for s in [(n, 7), (7, 5), (5, n)]]
        bs = [rng.normal(size=7).astype(dtype), None, rng.normal(size=n).astype(dtype)]
        return (nd.fields.MLP(ws, bs, activation="silu", final_activation="tanh"),
                ref.mlp(ws, bs, activation="silu", final_activation="tanh"), n)
    raise ValueError(kind)


KINDS = ("linear", "linear_b", "lorenz", "lorenz_custom", "mlp")


# ---------------------------------------------------------------------------------------
# Evaluation: field(t, y) against the twin
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", BATCH_SHAPES, ids=str)
def test_field_eval_matches_reference(kind, dtype, batch, rng):
    field, twin, n = make_field(kind, rng, dtype=dtype)
    y = (rng.normal(size=batch + (n,)) * 3).astype(dtype)
    dy = field(0.25, y)
    assert dy.shape == y.shape and dy.dtype == dtype
    expected = twin(0.25, y.astype(np.float64))
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    assert_allclose(dy, expected, rtol=0, atol=_tol(dtype, scale) * (20 if kind == "mlp" else 1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_field_eval_any_layout(kind, layout, rng):
    """Non-contiguous, Fortran-ordered, read-only and byte-swapped states give the same
    dy as a C-contiguous one, and are left untouched."""
    field, _, n = make_field(kind, rng)
    y = rng.normal(size=(3, 2, n))
    expected = field(0.0, y)
    y_in = as_layout(y, layout)
    y_before = np.array(y_in, copy=True)
    assert_array_equal(field(0.0, y_in), expected)
    assert_array_equal(y_in, y_before)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_activations(activation, dtype, rng):
    """Each activation, as hidden and as final activation, including inputs large enough to
    overflow a naive exp (sigmoid, silu, softplus must stay finite and exact)."""
    n = 3
    ws = [np.eye(n, 4, dtype=dtype) * 1.0, rng.normal(size=(4, n)).astype(dtype)]
    bs = [np.array([0.0, 0.5, -0.5, 0.0], dtype=dtype), None]
    y = np.array([[-800.0, -30.0, -1.0], [0.0, 1e-3, 2.0], [30.0, 90.0, 800.0]], dtype=dtype)
    for hidden, final in [(activation, "identity"), ("identity", activation)]:
        field = nd.fields.MLP(ws, bs, activation=hidden, final_activation=final)
        twin = ref.mlp(ws, bs, activation=hidden, final_activation=final)
        dy = field(0.0, y)
        expected = twin(0.0, y.astype(np.float64))
        assert np.all(np.isfinite(dy))
        scale = np.maximum(1.0, np.abs(expected))
        assert_allclose(dy / scale, expected / scale, rtol=0,
                        atol=1e-13 if dtype == np.float64 else 2e-6)


def test_mlp_single_layer_and_docstring_example():
    W1, W2 = np.eye(2), -np.eye(2)
    dy = nd.fields.MLP([W1, W2], activation="relu")(0.0, np.array([1.0, -1.0]))
    assert dy.tolist() == [-1.0, 0.0]
    W = np.array([[0.0, 2.0], [-3.0, 0.5]])
    dy = nd.fields.MLP([W], [np.array([1.0, -1.0])])(0.0, np.array([[1.0, 2.0], [0.0, -1.0]]))
    # [1, 2] W = [-6, 3] and [0, -1] W = [3, -0.5], plus b = [1, -1]
    assert_allclose(dy, [[-5.0, 2.0], [4.0, -1.5]], rtol=1e-15)


def test_lorenz_docstring_values():
    dy = nd.fields.Lorenz()(0.0, [1.0, 1.0, 1.0])
    assert_allclose(dy, [0.0, 26.0, 1.0 - 8.0 / 3.0], rtol=1e-15)


def test_integer_state_is_float64():
    dy = nd.fields.Linear([[0.0, 1.0], [-1.0, 0.0]])(0.0, [1, 2])
    assert dy.dtype == np.float64 and dy.tolist() == [2.0, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_cast_to_the_state_dtype(dtype, rng):
    """float64 parameters with a float32 state (and the reverse) compute in the state's type."""
    A = rng.normal(size=(3, 3))
    y = rng.normal(size=(4, 3)).astype(dtype)
    other = np.float32 if dtype == np.float64 else np.float64
    dy = nd.fields.Linear(A.astype(other))(0.0, y)
    assert dy.dtype == dtype
    assert_allclose(dy, y.astype(np.float64) @ A.astype(other).astype(np.float64).T, rtol=0, atol=_tol(np.float32, 5))


# ---------------------------------------------------------------------------------------
# Parameters are private copies; the caller's arrays are left alone
# ---------------------------------------------------------------------------------------


def test_parameters_are_copied_and_caller_arrays_untouched(rng):
    A = rng.normal(size=(3, 3))
    b = rng.normal(size=3)
    W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 3))
    copies = [x.copy() for x in (A, b, W1, W2)]
    lin = nd.fields.Linear(A, b)
    mlp = nd.fields.MLP([W1, W2], [None, b])
    y = rng.normal(size=(2, 3))
    before_lin, before_mlp = lin(0.0, y), mlp(0.0, y)
    # The caller keeps a writable array; changing it later must not change the field.
    for x in (A, b, W1, W2):
        assert x.flags.writeable
        x += 1.0
    assert_array_equal(lin(0.0, y), before_lin)
    assert_array_equal(mlp(0.0, y), before_mlp)
    for x, c in zip((A, b, W1, W2), copies):
        assert_array_equal(x, c + 1.0)


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,exc,match", [
    (lambda: nd.fields.Linear(np.zeros((2, 3))), ValueError, r"\bA\b.*square"),
    (lambda: nd.fields.Linear(np.zeros(3)), ValueError, r"\bA\b.*2 axes"),
    (lambda: nd.fields.Linear(np.eye(2), [1.0, 2.0, 3.0]), ValueError, r"\bb\b.*\(2,\)"),
    (lambda: nd.fields.Linear([[np.nan]]), ValueError, r"\bA\b.*NaN"),
    (lambda: nd.fields.Linear(np.eye(2), [np.inf, 0.0]), ValueError, r"\bb\b.*(NaN|inf)"),
    (lambda: nd.fields.Linear(np.eye(2) * 1j), TypeError, r"\bA\b.*complex"),
    (lambda: nd.fields.Lorenz(sigma=float("nan")), ValueError, r"sigma"),
    (lambda: nd.fields.Lorenz(rho="28"), TypeError, r"rho"),
    (lambda: nd.fields.MLP([np.zeros((2, 3)), np.zeros((3, 2))], activation="gelu"), ValueError,
     r"activation.*gelu"),
    (lambda: nd.fields.MLP([np.zeros((2, 2))], final_activation="Tanh"), ValueError,
     r"final_activation.*Tanh"),
    (lambda: nd.fields.MLP([np.zeros((2, 3)), np.zeros((4, 2))]), ValueError, r"weights\[1\]"),
    (lambda: nd.fields.MLP([np.zeros((2, 3)), np.zeros((3, 3))]), ValueError, r"last layer.*3.*2"),
    (lambda: nd.fields.MLP([np.zeros((2, 2))], [np.zeros(3)]), ValueError, r"biases\[0\]"),
    (lambda: nd.fields.MLP([np.zeros((2, 2))], [None, None]), ValueError, r"biases"),
    (lambda: nd.fields.MLP([]), ValueError, r"layers"),
    (lambda: nd.fields.MLP([np.eye(2)] * 17), ValueError, r"layers"),
    (lambda: nd.fields.MLP([np.full((2, 2), np.nan)]), ValueError, r"weights\[0\].*NaN"),
])
def test_field_construction_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("kind", KINDS)
def test_state_with_wrong_last_axis(kind, rng):
    field, _, n = make_field(kind, rng)
    with pytest.raises(ValueError, match=rf"\by\b.*last axis of size {n}"):
        field(0.0, np.zeros((2, n + 1)))
    with pytest.raises(ValueError, match=rf"y0.*last axis of size {n}"):
        nd.odeint(field, np.zeros((2, n + 1)), [0.0, 1.0])
    with pytest.raises(ValueError, match=r"y0"):
        nd.odeint(field, 1.0, [0.0, 1.0])  # a 0-d state has no last axis


def test_field_refuses_args_and_bad_states():
    field = nd.fields.Lorenz()
    with pytest.raises(TypeError, match="args"):
        nd.odeint(field, np.ones(3), [0.0, 1.0], args=(1.0,))
    with pytest.raises(TypeError, match=r"\by\b.*complex"):
        field(0.0, np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match=r"y0.*NaN"):
        nd.odeint(field, np.array([1.0, np.nan, 0.0]), [0.0, 1.0])


def test_reprs():
    assert repr(nd.fields.Linear(np.eye(2), [0, 0])) == "Linear(dim=2, bias=True)"
    assert "sigma=10.0" in repr(nd.fields.Lorenz())
    assert "sizes=[2, 5, 2]" in repr(nd.fields.MLP([np.zeros((2, 5)), np.zeros((5, 2))]))


# ---------------------------------------------------------------------------------------
# odeint with a field against the reference integrators
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odeint_field_fixed_step_matches_reference(kind, method, dtype, rng):
    """Fixed steps with a C field against the NumPy twin integrating the NumPy twin field:
    ~1e-13 in float64, float32 round-off in float32."""
    field, twin, n = make_field(kind, rng, dtype=dtype)
    y0 = rng.normal(size=(4, n))
    if kind.startswith("lorenz"):
        y0 = y0 + [0.0, 0.0, 20.0]
    y0 = y0.astype(dtype)
    t = np.array([0.0, 0.1, 0.25, 0.3])
    ys = nd.odeint(field, y0, t, method=method, dt=0.02)
    ys_ref, _ = ref.odeint_fixed(twin, y0.astype(np.float64), t, method, dt=0.02)
    assert ys.dtype == dtype
    scale = float(np.max(np.abs(ys_ref)))
    tol = 1e-13 if dtype == np.float64 else 2e-5
    assert_allclose(ys, ys_ref, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("kind", ["linear_b", "lorenz", "mlp"])
def test_odeint_field_dopri5_one_system(kind, rng):
    """With coupled=True a batch is one system with one shared step size: the step sequence
    equals the twin's for the flattened batch, and the trajectories agree to round-off."""
    field, twin, n = make_field(kind, rng)
    y0 = rng.normal(size=(3, 2, n))
    if kind == "lorenz":
        y0 = y0 + [0.0, 0.0, 20.0]
    t = np.linspace(0.0, 0.5, 6)
    ys, info = nd.odeint(field, y0, t, rtol=1e-7, atol=1e-9, return_info=True, coupled=True)
    ys_ref, info_ref = ref.odeint_dopri5(twin, y0, t, rtol=1e-7, atol=1e-9)
    assert (info["accepted"], info["rejected"], info["nfev"]) == (
        info_ref["accepted"], info_ref["rejected"], info_ref["nfev"])
    # The step factor depends on y5 - y4, a difference of nearly equal numbers, so step
    # sizes agree to ~1e-7 relative only; the exact counts above already pin the rules.
    assert_allclose(info["steps"], info_ref["steps"], rtol=1e-6)
    assert_allclose(ys, ys_ref, rtol=1e-9, atol=1e-10)
    # One shared step: a single sample alone takes a different number of steps.
    _, info_one = nd.odeint(field, y0[0, 0], t, rtol=1e-7, atol=1e-9, return_info=True)
    assert info_one["accepted"] <= info["accepted"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odeint_field_any_layout(layout, dtype, rng):
    """Every layout of y0 gives bit-identical results, and y0 is left untouched."""
    field, _, n = make_field("mlp", rng, dtype=dtype)
    y0 = rng.normal(size=(3, n)).astype(dtype)
    expected = nd.odeint(field, y0, [0.0, 0.5, 1.0], method="rk4", dt=0.1)
    y_in = as_layout(y0, layout)
    before = np.array(y_in, copy=True)
    got = nd.odeint(field, y_in, [0.0, 0.5, 1.0], method="rk4", dt=0.1)
    assert got.dtype == dtype
    assert_array_equal(got, expected)
    assert_array_equal(y_in, before)


def test_lorenz_batch_equals_separate_fixed_step_runs(rng):
    """For fixed steps the batch is only a batch: each row equals its own run exactly."""
    field = nd.fields.Lorenz()
    y0 = rng.normal(size=(5, 3)) + [0.0, 0.0, 20.0]
    t = np.linspace(0.0, 1.0, 3)
    ys = nd.odeint(field, y0, t, method="rk4", dt=0.01)
    for i in range(5):
        assert_array_equal(ys[:, i], nd.odeint(field, y0[i], t, method="rk4", dt=0.01))


def test_zero_dimensional_linear_field():
    field = nd.fields.Linear(np.zeros((0, 0)))
    ys = nd.odeint(field, np.zeros((4, 0)), [0.0, 1.0])
    assert ys.shape == (2, 4, 0)


# ---------------------------------------------------------------------------------------
# Property tests: random batch shapes, dtypes and layouts against the reference
# ---------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")


@hypothesis.given(
    batch=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    n=st.integers(1, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
    layout=st.sampled_from(LAYOUTS),
    with_b=st.booleans(),
    method=st.sampled_from(["euler", "midpoint", "rk4"]),
    seed=st.integers(0, 2**16),
)
def test_linear_field_property(batch, n, dtype, layout, with_b, method, seed):
    """nd.fields.Linear, evaluated and integrated, against the twin for random shapes,
    dtypes and layouts; inputs never modified."""
    rng = np.random.default_rng(seed)
    A = (rng.normal(size=(n, n)) - np.eye(n)).astype(dtype)
    b = rng.normal(size=n).astype(dtype) if with_b else None
    y0 = as_layout(rng.normal(size=tuple(batch) + (n,)).astype(dtype), layout)
    A_in = as_layout(A, layout)
    A_before, y0_before = np.array(A_in, copy=True), np.array(y0, copy=True)
    field = nd.fields.Linear(A_in, b)
    twin = ref.linear(A, b)

    dy = field(0.0, y0)
    assert dy.dtype == dtype and dy.shape == y0.shape
    dy_ref = twin(0.0, np.asarray(y0, dtype=np.float64))
    scale = float(np.max(np.abs(dy_ref))) if dy_ref.size else 1.0
    assert_allclose(dy, dy_ref, rtol=0, atol=_tol(dtype, scale) * n)

    t = np.array([0.0, 0.3, 0.5])
    ys = nd.odeint(field, y0, t, method=method, dt=0.1)
    ys_ref, _ = ref.odeint_fixed(twin, np.asarray(y0, dtype=np.float64), t, method, dt=0.1)
    assert ys.dtype == dtype and ys.shape == (3,) + y0.shape
    scale = float(np.max(np.abs(ys_ref))) if ys_ref.size else 1.0
    assert_allclose(ys, ys_ref, rtol=0, atol=(1e-13 if dtype == np.float64 else 1e-5) * max(1.0, scale) * n)
    assert_array_equal(A_in, A_before)
    assert_array_equal(y0, y0_before)


@hypothesis.given(
    batch=st.lists(st.integers(0, 3), min_size=0, max_size=2),
    dtype=st.sampled_from([np.float32, np.float64]),
    layout=st.sampled_from(LAYOUTS),
    activation=st.sampled_from(ACTIVATIONS),
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_mlp_field_property(batch, dtype, layout, activation, widths, seed):
    rng = np.random.default_rng(seed)
    n = 3
    sizes = [n] + widths + [n]
    ws = [rng.normal(size=(a, b)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=b).astype(dtype) if rng.random() < 0.5 else None for b in sizes[1:]]
    field = nd.fields.MLP([as_layout(w, layout) for w in ws], bs, activation=activation)
    y = as_layout(rng.normal(size=tuple(batch) + (n,)).astype(dtype), layout)
    dy = field(0.0, y)
    expected = ref.mlp(ws, bs, activation=activation)(0.0, np.asarray(y, dtype=np.float64))
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    assert dy.dtype == dtype
    assert_allclose(dy, expected, rtol=0, atol=(1e-12 if dtype == np.float64 else 1e-5) * max(1.0, scale) * 4)


def test_pickled_fields_and_energies_keep_read_only_parameters():
    """Parameters are frozen at construction; a pickle round trip (how nd.dask ships them to
    workers) must not hand back writable copies that silently diverge from the spec."""
    import pickle

    rng = np.random.default_rng(5)
    objects = [nd.fields.Linear(rng.normal(size=(3, 3)), rng.normal(size=3)), nd.fields.Lorenz(),
               nd.fields.MLP([rng.normal(size=(3, 4)), rng.normal(size=(4, 3))], [np.zeros(4), np.zeros(3)]),
               nd.energies.GaussianMixture(rng.normal(size=(2, 3)), np.stack([np.eye(3)] * 2)),
               nd.energies.Quadratic(np.zeros(3), np.eye(3))]
    for obj in objects:
        copy = pickle.loads(pickle.dumps(obj))
        arrays = [(k, i, a) for k, v in vars(copy).items()
                  for i, a in enumerate(v if isinstance(v, list) else [v]) if isinstance(a, np.ndarray)]
        assert arrays or isinstance(obj, nd.fields.Lorenz)
        for key, i, value in arrays:
            assert not value.flags.writeable, (type(obj).__name__, key, i)
            original = getattr(obj, key)
            np.testing.assert_array_equal(value, original[i] if isinstance(original, list) else original)


def test_field_kinds_are_the_kernels_table():
    """The kinds are the kernels' name table (no codes mirrored in Python); an unknown kind is
    refused by name."""
    assert nd.fields.KINDS == nd._core.TABLES["field_kinds"]
    assert {nd.fields.Linear.kind, nd.fields.Lorenz.kind, nd.fields.MLP.kind, nd.fields.Polynomial.kind} <= set(
        nd.fields.KINDS)
    with pytest.raises(ValueError, match="field kind='spiral' is not one of 'linear'"):
        nd._core.field_check(field=("spiral", (), (), ()))
    assert nd._core.field_check(field=nd.fields.Lorenz()._spec()) == 3


# ---------------------------------------------------------------------------------------
# Jacobians df/dy (the implicit solvers' linearisation) against central differences
# ---------------------------------------------------------------------------------------


def _fd_jacobian(field, y, h=1e-6):
    """Central differences of field(0, y) over the last axis: shape y.shape + (dim,)."""
    n = y.shape[-1]
    J = np.empty(y.shape + (n,))
    for c in range(n):
        e = np.zeros(n)
        e[c] = h
        J[..., c] = (field(0.0, y + e) - field(0.0, y - e)) / (2 * h)
    return J


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [(), (1,), (5,), (2, 3), (0,)], ids=str)
def test_field_jacobian_matches_finite_differences(kind, batch, rng):
    field, _, n = make_field(kind, rng)
    y = rng.normal(size=batch + (n,))
    J = field.jacobian(0.5, y)
    assert J.shape == y.shape + (n,) and J.dtype == np.float64
    fd = _fd_jacobian(field, y)
    assert_allclose(J, fd, rtol=1e-6, atol=1e-7 * max(1.0, float(np.abs(fd).max(initial=0))))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_jacobian_every_activation(activation, rng):
    """A ReLU kink is avoided by the draws (|pre-activation| > 1e-3 checked)."""
    ws = [rng.normal(size=(3, 6)) / 2, rng.normal(size=(6, 3)) / 2]
    bs = [rng.normal(size=6), None]
    field = nd.fields.MLP(ws, bs, activation=activation, final_activation="tanh")
    y = rng.normal(size=(4, 3))
    assert np.abs(y @ ws[0] + bs[0]).min() > 1e-3
    assert_allclose(field.jacobian(0.0, y), _fd_jacobian(field, y), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_field_jacobian_float32_follows_float64(kind, rng):
    field32, _, n = make_field(kind, rng, dtype=np.float32)
    y = rng.normal(size=(3, n))
    J64 = field32.jacobian(0.0, y.astype(np.float64))  # float32 parameters, float64 state
    J32 = field32.jacobian(0.0, y.astype(np.float32))
    assert J32.dtype == np.float32
    assert_allclose(J32, J64, rtol=1e-5, atol=1e-5)


def test_field_jacobian_values_and_errors():
    J = nd.fields.Lorenz().jacobian(0.0, np.array([1.0, 2.0, 3.0]))
    assert J.tolist() == [[-10.0, 10.0, 0.0], [25.0, -1.0, -1.0], [2.0, 1.0, -8.0 / 3.0]]
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_array_equal(nd.fields.Linear(A).jacobian(0.0, np.zeros((2, 2))), np.stack([A, A]))
    with pytest.raises(ValueError, match="last axis of size 2"):
        nd.fields.Linear(A).jacobian(0.0, np.zeros(3))
    with pytest.raises(ValueError, match="y contains NaN or inf"):
        nd.fields.Linear(A).jacobian(0.0, np.array([np.nan, 0.0]))


# ---------------------------------------------------------------------------------------
# Polynomial fields
# ---------------------------------------------------------------------------------------


def _poly_twin(coef, target, powers):
    def f(t, y):
        y = np.asarray(y, dtype=np.float64)
        dy = np.zeros_like(y)
        for c, r, p in zip(coef, target, powers):
            dy[..., r] += c * np.prod(y ** p, axis=-1)
        return dy
    return f


def _random_poly(rng, n=4, K=9):
    coef = rng.normal(size=K)
    target = rng.integers(0, n, size=K)
    powers = rng.integers(0, 3, size=(K, n))
    return coef, target, powers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3), (0,)], ids=str)
def test_polynomial_field_eval_jacobian_vjp(dtype, batch, rng):
    coef, target, powers = _random_poly(rng)
    field = nd.fields.Polynomial(coef.astype(dtype), target, powers)
    twin = _poly_twin(coef.astype(dtype), target, powers)
    y = rng.uniform(-1.5, 1.5, size=batch + (4,)).astype(dtype)
    assert_allclose(field(0.0, y), twin(0.0, y), rtol=0, atol=_tol(dtype, 10))
    if dtype == np.float64:
        y64 = y.astype(np.float64)
        assert_allclose(field.jacobian(0.0, y64), _fd_jacobian(field, y64), rtol=1e-6, atol=1e-8)


def test_polynomial_from_terms_and_checks():
    vdp = nd.fields.Polynomial.from_terms(2, [(0, 1.0, {1: 1}), (1, 5.0, {1: 1}), (1, -5.0, {0: 2, 1: 1}),
                                              (1, -1.0, {0: 1})])
    y = np.array([[2.0, 0.5], [-0.3, 1.0]])
    expected = np.stack([y[:, 1], 5.0 * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], axis=-1)
    assert_allclose(vdp(0.0, y), expected, rtol=1e-15)
    assert repr(vdp) == "Polynomial(dim=2, terms=4)"
    constant = nd.fields.Polynomial([0.5], [1], [[0, 0]])
    assert constant(0.0, np.zeros(2)).tolist() == [0.0, 0.5]
    assert constant.jacobian(0.0, np.ones(2)).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="target must index the state"):
        nd.fields.Polynomial([1.0], [2], [[1, 0]])(0.0, np.zeros(2))
    with pytest.raises(ValueError, match=r"powers must be integers in \[0, 64\]"):
        nd.fields.Polynomial([1.0], [0], [[-1, 0]]).jacobian(0.0, np.zeros(2))
    with pytest.raises(TypeError, match="powers must hold integers"):
        nd.fields.Polynomial([1.0], [0], [[0.5, 0]])
    with pytest.raises(ValueError, match="target has shape"):
        nd.fields.Polynomial([1.0, 2.0], [0], [[1, 0], [0, 1]])(0.0, np.zeros(2))
    with pytest.raises(ValueError, match="term 0 has a power of component 3"):
        nd.fields.Polynomial.from_terms(2, [(0, 1.0, {3: 1})])


def test_polynomial_field_with_explicit_methods():
    """The explicit solvers take it as well: y' = -y^2 from 1 is 1 / (1 + t)."""
    field = nd.fields.Polynomial([-1.0], [0], [[2]])
    ys = nd.odeint(field, np.array([1.0]), [0.0, 1.0, 3.0], rtol=1e-10, atol=1e-12)
    assert_allclose(ys[:, 0], [1.0, 0.5, 0.25], rtol=1e-8)
