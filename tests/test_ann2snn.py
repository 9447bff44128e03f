"""ANN-to-SNN conversion (docs/models.md §6): nd.if_neuron, nd.ANN and nd.ann2snn.

- integrate-and-fire rates: the golden values, the count ceil(T I / theta) - 1 for many
  (I, T, theta) away from integer T I / theta, saturation above theta, v0;
- the ANN's forward against a NumPy twin and its gradient against finite differences;
- the conversion: lambda_l (percentile / max) against np.percentile of the activations, the
  converted network against a twin that applies the documented rescaling to integrate-and-fire
  layers, its invariance under the threshold, and accuracy on scikit-learn's digits
  approaching the ANN's as T grows;
- refusal of layer norm, bad input, save/load/pickle of the ANN.
"""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neurodyn as nd

import reference_snn as twin


# ---------------------------------------------------------------------------------------
# Integrate-and-fire rates
# ---------------------------------------------------------------------------------------


def test_if_neuron_golden_values():
    # docs/models.md §6: I = 0.35, T = 10 -> 0.3; I = 1.0, T = 100 -> 0.99 (V = 1 is not above theta
    # at the first step, then every step fires)
    assert nd.if_neuron(0.35, num_timesteps=10) == 0.3
    assert nd.if_neuron(1.0, num_timesteps=100) == 0.99
    assert nd.if_neuron(0.35) == 0.3  # T defaults to 10


def if_cases():
    """(I, T, theta) with T I / theta at least 0.05 from an integer, so accumulated rounding
    (T ulps at most) cannot move a spike across the threshold."""
    cases = []
    for theta in (1.0, 0.7, 2.5):
        for frac in (0.013, 0.1, 0.29, 0.35, 0.5, 0.77, 0.9, 0.999, 1.0):
            for T in (7, 10, 33, 100, 257):
                i = frac * theta
                q = T * i / theta
                if abs(q - round(q)) > 0.05:
                    cases.append((i, T, theta))
    return cases


def test_if_neuron_count_formula():
    cases = if_cases()
    assert len(cases) >= 60
    for i, T, theta in cases:
        want = math.ceil(T * i / theta) - 1
        rate = nd.if_neuron(i, num_timesteps=T, threshold=theta)
        assert rate * T == pytest.approx(want, abs=1e-9), (i, T, theta)
        assert twin.if_count(i, T, theta) == want  # the twin agrees with the formula


def test_if_neuron_dyadic_integer_cases():
    # T I / theta an exact integer with dyadic values: no rounding at all, and the strict
    # threshold keeps the last crossing on the boundary from firing
    for i, T, want in ((0.25, 8, 1), (0.5, 10, 4), (0.75, 4, 2), (1.0, 16, 15), (0.125, 64, 7)):
        assert nd.if_neuron(i, num_timesteps=T) * T == want


def test_if_neuron_saturates_and_silent():
    for i in (1.0 + 1e-9, 1.5, 3.0, 100.0):
        assert nd.if_neuron(i, num_timesteps=20) == 1.0
    for i in (0.0, -0.3, -5.0):
        assert nd.if_neuron(i, num_timesteps=20) == 0.0
    assert nd.if_neuron(2.4, num_timesteps=10, threshold=2.5) == 0.9


def test_if_neuron_arrays_dtype_and_v0():
    cur = np.array([[0.35, 1.0], [0.0, 2.0]], np.float32)
    rate = nd.if_neuron(cur, num_timesteps=10)
    assert rate.shape == (2, 2) and rate.dtype == np.float32
    assert_allclose(rate, [[0.3, 0.9], [0.0, 1.0]], rtol=1e-6)
    # v0 is the starting membrane: 0.35 from v0 = 0.5 -> V = 0.85, 1.2 fires, ...
    for v0 in (0.5, 0.95, -0.4):
        got = nd.if_neuron(np.array([0.35, 0.6]), num_timesteps=13, v0=np.array([v0, v0]))
        assert_array_equal(got * 13, [twin.if_count(0.35, 13, v0=v0), twin.if_count(0.6, 13, v0=v0)])
    # if_neuron is lif_run with beta = 1 and reset by subtraction
    c = np.random.default_rng(0).uniform(0, 1, 50)
    s, _ = nd.lif_run(np.broadcast_to(c, (30, 1, 50)), beta=1.0, reset="subtract")
    assert_array_equal(nd.if_neuron(c, num_timesteps=30), s.mean(axis=0).ravel())


def test_if_neuron_bad_input():
    with pytest.raises(ValueError, match="threshold must be > 0"):
        nd.if_neuron(0.5, threshold=-1.0)
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.if_neuron(0.5, num_timesteps=0)
    with pytest.raises(ValueError, match="NaN"):
        nd.if_neuron(np.array([0.5, np.nan]))


# ---------------------------------------------------------------------------------------
# The ANN
# ---------------------------------------------------------------------------------------


def test_ann_forward_names_and_gradient():
    ann = nd.ANN(4, hidden_sizes=(6, 5), output_size=3, seed=0, dtype=np.float64)
    assert list(ann.params) == ["dense_0.kernel", "dense_0.bias", "dense_1.kernel", "dense_1.bias", "output.kernel",
                                "output.bias"]
    r = np.random.default_rng(1)
    for k in ann.params:
        if k.endswith(".bias"):
            ann.params[k] = 0.2 * r.standard_normal(ann.params[k].shape)
    x = r.standard_normal((5, 4))
    acts = twin.ann_activations(ann.params, x, 2)
    for got, want in zip(ann.activations(x), acts):
        assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert_allclose(ann(x), twin.dense(acts[-1], ann.params, "output"), rtol=1e-13, atol=1e-15)
    # gradient against central differences of the twin's loss
    y = r.integers(0, 3, 5)
    _, grads = ann.loss_and_grad(x, y)
    for name, value in ann.params.items():
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            p = {k: v.copy() for k, v in ann.params.items()}
            vals = []
            for eps in (1e-6, -1e-6):
                p[name][idx] = value[idx] + eps
                vals.append(twin.cross_entropy(twin.dense(twin.ann_activations(p, x, 2)[-1], p, "output"), y)[0])
            num[idx] = (vals[0] - vals[1]) / 2e-6
        assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_ann_output_layer_rules():
    # an output Dense only when output_size is set and differs from the last hidden size
    assert "output.kernel" not in nd.ANN(3, hidden_sizes=(4,), seed=0).params
    assert "output.kernel" not in nd.ANN(3, hidden_sizes=(4,), output_size=4, seed=0).params
    assert nd.ANN(3, hidden_sizes=(4,), output_size=2, seed=0).params["output.kernel"].shape == (4, 2)
    ln = nd.ANN(3, hidden_sizes=(4, 2), norm="layer", seed=0)
    assert {"bn_0.gamma", "bn_0.beta", "bn_1.gamma", "bn_1.beta"} <= set(ln.params)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_ann_save_load_pickle_bit_for_bit(tmp_path, dtype):
    r = np.random.default_rng(0)
    x, y = r.uniform(0, 1, (12, 5)).astype(dtype), r.integers(0, 3, 12)
    for norm in (None, "layer"):
        ann = nd.ANN(5, hidden_sizes=(7, 4), output_size=3, norm=norm, seed=2, dtype=dtype)
        ann.fit(x, y, epochs=1, batch_size=4, seed=0, verbose=False)
        path = tmp_path / f"ann-{norm}.npz"
        ann.save(path)
        for other in (nd.load(path), pickle.loads(pickle.dumps(ann))):
            assert type(other) is nd.ANN and other.config == ann.config
            assert list(other.params) == list(ann.params)
            for k, v in ann.params.items():
                assert other.params[k].dtype == v.dtype and other.params[k].tobytes() == v.tobytes()
            assert_array_equal(other(x), ann(x))


# ---------------------------------------------------------------------------------------
# The conversion
# ---------------------------------------------------------------------------------------


def small_ann(hidden=(8, 6), output_size=3, seed=0, dtype=np.float64, with_bias=True):
    """A small ANN with non-zero biases (so their rescaling is exercised) and inputs in [0, 1]."""
    ann = nd.ANN(4, hidden_sizes=hidden, output_size=output_size, seed=seed, dtype=dtype)
    r = np.random.default_rng(seed + 10)
    if with_bias:
        for k in ann.params:
            if k.endswith(".bias"):
                ann.params[k] = (0.1 * r.standard_normal(ann.params[k].shape)).astype(dtype)
    x = r.uniform(0, 1, (200, 4)).astype(dtype)
    return ann, x


def converted_twin(ann, calib, x, T, theta=1.0, normalization="percentile", q=99.9):
    """The converted network from docs/models.md §6's formulas in float64: lambda_l from the calibration
    activations; W_l theta lambda_{l-1} / lambda_l, b_l theta / lambda_l (lambda_0 = 1); IF
    neurons (beta 1, subtract) driven by the analog input at every step; the output layer
    (W_out lambda_L, b_out) reads the last layer's rate, or without one the rate stands for
    the activation rate * lambda_L. Returns (output, lambdas, spike-decision margin)."""
    n_hidden = len(ann.config["hidden_sizes"])
    acts = twin.ann_activations(ann.params, calib, n_hidden)
    lams = []
    for a in acts:
        lam = 1.0 if normalization is None else (np.percentile(a, q) if normalization == "percentile" else a.max())
        lams.append(lam if lam > 0 else 1.0)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in ann.params.items()}
    h, prev, margin = None, 1.0, np.inf
    B = x.shape[0]
    for i, lam in enumerate(lams):
        W = p[f"dense_{i}.kernel"] * (theta * prev / lam)
        b = p[f"dense_{i}.bias"] * (theta / lam)
        cur = np.broadcast_to(x @ W + b, (T, B, W.shape[1])) if h is None else h @ W + b
        margin = min(margin, twin.lif_trajectory_margin(cur, beta=1.0, threshold=theta))
        h, _, _ = twin.lif_forward(cur, beta=1.0, threshold=theta)
        prev = lam
    rate = h.mean(axis=0)
    out = rate @ p["output.kernel"] * lams[-1] + p["output.bias"] if "output.kernel" in p else rate * lams[-1]
    return out, lams, margin


@pytest.mark.parametrize("normalization", ("percentile", "max", None))
@pytest.mark.parametrize("output_size", (3, None))
def test_converted_snn_matches_twin(normalization, output_size):
    ann, calib = small_ann(output_size=output_size)
    x = calib[:30]
    snn = nd.ann2snn(ann, calib, num_timesteps=50, normalization=normalization, percentile=99.0)
    want, lams, margin = converted_twin(ann, calib, x, 50, normalization=normalization, q=99.0)
    assert margin > 1e-9  # spike decisions are far from theta compared with rounding
    assert_allclose(snn.scales, lams, rtol=1e-12)
    assert set(snn.params) == set(ann.params)  # the ANN's parameter names
    got = snn(x)
    assert got.shape == (30, output_size or 6) and got.dtype == np.float64
    assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # num_timesteps at call time overrides the converted T
    want20, _, _ = converted_twin(ann, calib, x, 20, normalization=normalization, q=99.0)
    assert_allclose(snn(x, num_timesteps=20), want20, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("normalization", ("percentile", "max"))
def test_scales_are_percentile_and_max_of_activations(normalization):
    ann, calib = small_ann(hidden=(10, 7, 5), output_size=2)
    snn = nd.ann2snn(ann, calib, normalization=normalization, percentile=99.9)
    acts = ann.activations(calib)
    want = [np.percentile(a, 99.9) if normalization == "percentile" else a.max() for a in acts]
    assert_allclose(snn.scales, want, rtol=1e-12)
    if normalization == "max":
        # max normalisation: no layer's rate would need to exceed 1 on the calibration data
        for a, lam in zip(acts, snn.scales):
            assert (a / lam).max() == pytest.approx(1.0)


@pytest.mark.parametrize("hidden,output_size", [((6,), 3), ((8, 6), 3), ((6,), None)])
def test_converted_snn_approaches_ann_with_T(hidden, output_size):
    # With max normalisation every rate lies in [0, 1] and an IF neuron's rate is off by at most
    # 1/T per layer: the error shrinks like 1/T.
    ann, calib = small_ann(hidden=hidden, output_size=output_size)
    x = calib[:50]
    snn = nd.ann2snn(ann, calib, normalization="max")
    errs = [np.abs(snn(x, num_timesteps=T) - ann(x)).max() for T in (10, 100, 1000, 10000)]
    assert errs[-1] < 2e-3 * np.abs(ann(x)).max() + 1e-9
    for a, b in zip(errs, errs[1:]):
        assert b < 0.5 * a




@pytest.mark.parametrize("hidden,output_size", [
    ((6,), 3),
    ((8, 6), 3),
    ((6,), None),
])
@pytest.mark.parametrize("theta", (0.5, 2.0))
def test_converted_snn_independent_of_threshold(hidden, output_size, theta):
    # Multiplying the threshold and every current by a power of two scales every membrane
    # exactly, so the spikes, and with them the output, must not change at all: the
    # normalisation makes the threshold a unit, not a parameter of the function computed.
    ann, calib = small_ann(hidden=hidden, output_size=output_size)
    x = calib[:40]
    base = nd.ann2snn(ann, calib, num_timesteps=64, threshold=1.0, normalization="max")(x)
    got = nd.ann2snn(ann, calib, num_timesteps=64, threshold=theta, normalization="max")(x)
    assert_allclose(got, base, rtol=1e-12, atol=1e-12)


def test_converted_snn_matches_twin_threshold_two():
    # the documented formulas (docstring of ann2snn: W_l theta lambda_{l-1} / lambda_l) with theta = 2
    ann, calib = small_ann()
    x = calib[:30]
    want, _, margin = converted_twin(ann, calib, x, 50, theta=2.0, normalization="max")
    assert margin > 1e-9
    assert_allclose(nd.ann2snn(ann, calib, num_timesteps=50, threshold=2.0, normalization="max")(x), want,
                    rtol=1e-10, atol=1e-12)


def test_dead_layer_and_float32():
    # a layer that never activates on the calibration data keeps lambda = 1 (nothing to rescale)
    ann, calib = small_ann(hidden=(5,), output_size=2, with_bias=False)
    ann.params["dense_0.bias"][:] = -100.0
    snn = nd.ann2snn(ann, calib)
    assert snn.scales == [1.0]
    assert_allclose(snn(calib[:5]), ann(calib[:5]))  # all silent: output = output bias
    # float32 ANNs convert to float32 networks
    a32, c32 = small_ann(dtype=np.float32)
    s32 = nd.ann2snn(a32, c32)
    assert all(v.dtype == np.float32 for v in s32.params.values())
    assert s32(c32[:3]).dtype == np.float32


def test_digits_conversion_accuracy_and_convergence():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    d = datasets.load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = model_selection.train_test_split(x, d.target, test_size=0.25, random_state=0,
                                                          stratify=d.target)
    ann = nd.ANN(64, hidden_sizes=(128, 64), output_size=10, seed=0)
    ann.fit(xtr, ytr, epochs=20, batch_size=64, lr=2e-3, seed=0, verbose=False)
    ann_out = ann(xte)
    ann_acc = np.mean(ann_out.argmax(axis=1) == yte)
    assert ann_acc >= 0.95  # measured 98.2%
    one = 1.0 / len(yte)  # one test image: the noise floor of an accuracy gap
    for normalization in ("percentile", "max"):
        snn = nd.ann2snn(ann, xtr, normalization=normalization)
        gaps, errs = [], []
        for T in (10, 30, 100, 300):
            out = snn(xte, num_timesteps=T)
            gaps.append(ann_acc - np.mean(out.argmax(axis=1) == yte))
            errs.append(np.mean(np.abs(out - ann_out)))
        assert gaps[2] <= 0.02, (normalization, gaps)  # T = 100 within 2 points (measured 0-0.2)
        # the accuracy gap does not grow with T beyond one image, and the outputs converge
        for a, b in zip(gaps, gaps[1:]):
            assert b <= max(a, 0.0) + one, (normalization, gaps)
        for a, b in zip(errs, errs[1:]):
            assert b < 0.8 * a, (normalization, errs)
        assert snn.num_timesteps == 100  # the default T of the conversion


def test_ann2snn_refuses_layer_norm_and_bad_input():
    ann_ln = nd.ANN(4, hidden_sizes=(5,), output_size=2, norm="layer", seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (10, 4))
    with pytest.raises(ValueError, match="layer normalisation"):
        nd.ann2snn(ann_ln, x)
    with pytest.raises(ValueError, match="norm='batch' is not one of"):
        nd.ANN(4, norm="batch")
    ann = nd.ANN(4, hidden_sizes=(5,), output_size=2, seed=0)
    with pytest.raises(TypeError, match="ann must be a neurodyn.ANN"):
        nd.ann2snn(nd.SNN(4, 2, hidden_sizes=(3,)), x)
    with pytest.raises(ValueError, match="normalization='std' is not one of"):
        nd.ann2snn(ann, x, normalization="std")
    with pytest.raises(ValueError, match="percentile must lie in"):
        nd.ann2snn(ann, x, percentile=150)
    with pytest.raises(ValueError, match="percentile must be >= 0"):
        nd.ann2snn(ann, x, percentile=-1)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        nd.ann2snn(ann, x, threshold=-1.0)
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        nd.ann2snn(ann, x, num_timesteps=0)
    with pytest.raises(ValueError, match="x has shape"):
        nd.ann2snn(ann, np.ones((10, 3)))  # calibration data of the wrong width
    with pytest.raises(ValueError, match="x contains NaN"):
        nd.ann2snn(ann, np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="no samples"):
        nd.ann2snn(ann, np.ones((0, 4)))
    snn = nd.ann2snn(ann, x)
    with pytest.raises(ValueError, match=r"x has shape \(2, 3\); expected \(batch, 4\)"):
        snn(np.ones((2, 3)))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        snn(np.array([[0.1, np.inf, 0.2, 0.3]]))
    with pytest.raises(ValueError, match="num_timesteps must be >= 1"):
        snn(x, num_timesteps=0)
    with pytest.raises(ValueError, match="x has shape"):
        ann(np.ones((2, 3)))
