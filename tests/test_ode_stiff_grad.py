"""Gradients through radau: the discrete adjoint of its accepted steps (csrc/nd_ode_stiff.h,
"gradients"), against exact gradients and finite differences in float64, and NeuralODE
training with solver="radau".
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import neurodyn as nd
from neurodyn import _core

scipy_linalg = pytest.importorskip("scipy.linalg")


def solve(field, y0, t, rtol=1e-10, atol=1e-12):
    ys, _, raw = _core.odeint_stiff(field._spec(), y0, t, method="radau", rtol=rtol, atol=atol, max_steps=10**6,
                                    record=True)
    assert np.all(raw["status_code"] == 0)
    return ys, raw["tape"]


def grads(field, y0, t, w, **kw):
    """(loss, dL/dy0, dL/dtheta) of L = sum(w * ys) by the discrete adjoint."""
    ys, (steps, outs, states, stages) = solve(field, y0, t, **kw)
    y0bar, dp = _core.ode_stiff_backprop(field=field._spec(), t=t, ybar=w, steps=steps, outs=outs, states=states,
                                         stages=stages)
    return float(np.sum(w * ys)), y0bar, dp


def loss(field, y0, t, w, **kw):
    return float(np.sum(w * solve(field, y0, t, **kw)[0]))


def stiff_matrix():
    V = np.array([[1.0, 2.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, 3.0]])
    return V @ np.diag([-1.0, -50.0, -1e4]) @ np.linalg.inv(V)


T = np.array([0.0, 0.05, 0.3, 1.0, 2.0])


def test_stiff_linear_y0_gradient_is_exact_and_parameters_match_differences():
    A, b = stiff_matrix(), np.array([0.5, -1.0, 2.0])
    rng = np.random.default_rng(0)
    y0 = rng.normal(size=(4, 3))
    w = rng.normal(size=(len(T), 4, 3))
    field = nd.fields.Linear(A, b)
    _, y0bar, dp = grads(field, y0, T, w)
    # y(t) = e^{At} (y0 + A^-1 b) - A^-1 b: dL/dy0 = sum_j e^{A t_j}^T w_j
    exact = sum(w[j] @ scipy_linalg.expm(A * T[j]) for j in range(len(T)))
    assert_allclose(y0bar, exact, rtol=1e-6, atol=1e-8)
    # the parameters (A row-major, then b) by central differences
    flat = np.concatenate([A.ravel(), b])
    assert dp.shape == flat.shape
    eps = 1e-6
    for i in (0, 4, 5, 8, 9, 11):
        hi, lo = flat.copy(), flat.copy()
        hi[i] += eps
        lo[i] -= eps
        fd = (loss(nd.fields.Linear(hi[:9].reshape(3, 3), hi[9:]), y0, T, w)
              - loss(nd.fields.Linear(lo[:9].reshape(3, 3), lo[9:]), y0, T, w)) / (2 * eps)
        assert abs(dp[i] - fd) <= 1e-4 * max(1.0, abs(fd)), (i, dp[i], fd)


def mlp_field(flat, d=3, h=5):
    W1, b1 = flat[:d * h].reshape(d, h), flat[d * h:d * h + h]
    o = d * h + h
    W2, b2 = flat[o:o + h * d].reshape(h, d), flat[o + h * d:]
    return nd.fields.MLP([W1, W2], [b1, b2], activation="tanh")


def test_small_mlp_field_against_finite_differences():
    rng = np.random.default_rng(3)
    d, h = 3, 5
    flat = rng.normal(scale=0.8, size=d * h + h + h * d + d)
    flat[d * h + h:d * h + h + h * d] *= 20  # a steep field: stiff enough for Radau to matter
    y0 = rng.normal(size=(2, d))
    w = rng.normal(size=(len(T), 2, d))
    _, y0bar, dp = grads(mlp_field(flat), y0, T, w)
    eps = 1e-6
    for s, i in ((0, 0), (1, 2)):
        hi, lo = y0.copy(), y0.copy()
        hi[s, i] += eps
        lo[s, i] -= eps
        fd = (loss(mlp_field(flat), hi, T, w) - loss(mlp_field(flat), lo, T, w)) / (2 * eps)
        assert abs(y0bar[s, i] - fd) <= 1e-5 * max(1.0, abs(fd)), (s, i, y0bar[s, i], fd)
    for i in rng.choice(len(flat), size=6, replace=False):
        hi, lo = flat.copy(), flat.copy()
        hi[i] += eps
        lo[i] -= eps
        fd = (loss(mlp_field(hi), y0, T, w) - loss(mlp_field(lo), y0, T, w)) / (2 * eps)
        assert abs(dp[i] - fd) <= 1e-5 * max(1.0, abs(fd)), (i, dp[i], fd)


def test_gradient_of_a_batch_is_the_sum_of_its_samples():
    A = stiff_matrix()
    rng = np.random.default_rng(1)
    y0 = rng.normal(size=(3, 3))
    w = rng.normal(size=(len(T), 3, 3))
    field = nd.fields.Linear(A)
    _, y0bar, dp = grads(field, y0, T, w, rtol=1e-6, atol=1e-8)
    for s in range(3):
        _, yb, d1 = grads(field, y0[s:s + 1], T, w[:, s:s + 1], rtol=1e-6, atol=1e-8)
        assert_allclose(yb[0], y0bar[s], rtol=1e-12)
        dp = dp - d1
    assert np.max(np.abs(dp)) < 1e-10 * max(1.0, np.max(np.abs(d1)))


def test_neural_ode_trains_with_radau():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2))
    y = np.stack([np.sin(x[:, 0]), x[:, 0] * x[:, 1]], axis=1)
    model = nd.NeuralODE(2, hidden_size=6, output_size=2, num_steps=4, step_size=0.25, solver="radau",
                         rtol=1e-6, atol=1e-8, seed=0, dtype=np.float64)
    before = model.loss_and_grad(x, y)[0]
    model.fit(x, y, epochs=5, batch_size=16, lr=1e-2, seed=0, verbose=False)
    after = model.loss_and_grad(x, y)[0]
    assert after < before
    # one parameter's gradient against central differences
    value, g = model.loss_and_grad(x[:4], y[:4])
    key = "dynamics_dense1.kernel"
    eps = 1e-6
    p = model.params[key]
    old = p[0, 1]
    p[0, 1] = old + eps
    up = model.loss_and_grad(x[:4], y[:4])[0]
    p[0, 1] = old - eps
    down = model.loss_and_grad(x[:4], y[:4])[0]
    p[0, 1] = old
    assert abs(g[key][0, 1] - (up - down) / (2 * eps)) <= 1e-4 * max(1e-3, abs(g[key][0, 1]))


def test_unavailable_gradients_say_so():
    with pytest.raises(ValueError, match="backwards"):
        nd.NeuralODE(2, hidden_size=4, solver="radau", gradient="adjoint")
    model = nd.NeuralODE(2, hidden_size=4, output_size=1, solver="bdf", seed=0)
    x = np.zeros((3, 2), dtype=np.float32)
    assert model(x).shape == (3, 1)
    with pytest.raises(ValueError, match="bdf"):
        model.loss_and_grad(x, np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="radau"):
        _core.odeint_stiff(nd.fields.Lorenz()._spec(), np.ones(3), np.array([0.0, 1.0]), method="bdf", record=True)
