"""neurodyn.optim: Adam and SGD against hand-written NumPy updates (tests/reference_nn.py)."""
from __future__ import annotations

import numpy as np
import pytest

from neurodyn import optim

import reference_nn as ref


def problem(seed=3, dtype=np.float64):
    """Two parameters of different shapes and a sequence of gradients that change sign and
    scale from step to step (so the moment estimates matter)."""
    r = np.random.default_rng(seed)
    params = {"a.kernel": r.normal(size=(3, 4)).astype(dtype), "a.bias": r.normal(size=4).astype(dtype)}
    grads = [{k: (r.normal(size=v.shape) * 10.0 ** r.integers(-2, 2)).astype(dtype) for k, v in params.items()}
             for _ in range(7)]
    return params, grads


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.8), (0.0, 0.0)])
def test_adam_matches_reference_over_several_steps(weight_decay, betas):
    params, grads = problem()
    mine = {k: v.copy() for k, v in params.items()}
    opt = optim.Adam(lr=0.05, beta1=betas[0], beta2=betas[1], eps=1e-6, weight_decay=weight_decay)
    twin = ref.AdamRef(0.05, betas[0], betas[1], 1e-6, weight_decay)
    for g in grads:
        opt.step(mine, g)
        twin.step(params, g)
        for k in params:
            np.testing.assert_allclose(mine[k], params[k], rtol=1e-13, atol=1e-15)
    assert opt.t == len(grads)


def test_adam_first_step_moves_by_lr():
    """After bias correction the first Adam step is lr * g / (|g| + eps): magnitude lr for
    every entry whatever the scale of its gradient (Kingma & Ba 2015, §2.1)."""
    p = {"w": np.zeros(4)}
    optim.Adam(lr=0.01, eps=1e-12).step(p, {"w": np.array([1e-6, -3.0, 250.0, -1e4])})
    np.testing.assert_allclose(p["w"], [-0.01, 0.01, -0.01, 0.01], rtol=1e-6)


def test_adam_weight_decay_is_decoupled():
    """With a zero gradient, AdamW only shrinks: p <- p (1 - lr wd) (Loshchilov & Hutter).
    Coupled L2 (g += wd p) would instead move p by about lr, independent of wd."""
    p = {"w": np.array([2.0, -4.0])}
    opt = optim.Adam(lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.step(p, {"w": np.zeros(2)})
    np.testing.assert_allclose(p["w"], np.array([2.0, -4.0]) * (1 - 0.05) ** 3, rtol=1e-14)


def test_adam_updates_in_place_and_keeps_float32():
    params, grads = problem(dtype=np.float32)
    kernel = params["a.kernel"]
    before = kernel.copy()
    opt = optim.Adam(lr=0.01)
    for g in grads:
        opt.step(params, g)
    assert params["a.kernel"] is kernel  # in place: a model holding the array sees the update
    assert kernel.dtype == np.float32 and not np.array_equal(kernel, before)
    twin_p, _ = problem(dtype=np.float32)
    twin = ref.AdamRef(0.01, 0.9, 0.999, 1e-8)
    for g in grads:
        twin.step(twin_p, g)
    np.testing.assert_allclose(kernel, twin_p["a.kernel"], rtol=1e-4, atol=1e-6)


def test_adam_leaves_parameters_without_gradients_alone():
    p = {"a": np.ones(2), "b": np.ones(3)}
    optim.Adam(lr=0.1).step(p, {"a": np.ones(2)})
    np.testing.assert_array_equal(p["b"], np.ones(3))
    assert not np.array_equal(p["a"], np.ones(2))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_reference_over_several_steps(momentum):
    params, grads = problem()
    mine = {k: v.copy() for k, v in params.items()}
    opt = optim.SGD(lr=0.03, momentum=momentum)
    twin = ref.SGDRef(0.03, momentum)
    for g in grads:
        opt.step(mine, g)
        twin.step(params, g)
        for k in params:
            np.testing.assert_allclose(mine[k], params[k], rtol=1e-13, atol=1e-15)


def test_sgd_momentum_accumulates():
    """A constant gradient g with momentum mu moves p by lr g (1 + mu + mu^2) by step 3."""
    p = {"w": np.array([0.0])}
    opt = optim.SGD(lr=0.1, momentum=0.5)
    for _ in range(3):
        opt.step(p, {"w": np.array([2.0])})
    assert p["w"][0] == pytest.approx(-(0.1 * 2.0) * (1 + 1.5 + 1.75), rel=1e-14)


def test_optimisers_minimise_a_quadratic():
    """End to end: both reach the minimum of |W - T|^2 from afar."""
    r = np.random.default_rng(0)
    target = r.normal(size=(4, 3))
    for opt in (optim.Adam(lr=0.05), optim.SGD(lr=0.1, momentum=0.5)):
        p = {"w": np.zeros((4, 3))}
        for _ in range(400):
            opt.step(p, {"w": 2 * (p["w"] - target)})
        np.testing.assert_allclose(p["w"], target, atol=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, "lr"),
    ({"lr": -1e-3}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"beta1": 1.0}, "beta1"),
    ({"beta1": 1.5}, "beta1"),
    ({"beta2": 1.0}, "beta2"),
    ({"beta1": -0.1}, "beta1"),
    ({"eps": 0.0}, "eps"),
    ({"weight_decay": -0.1}, "weight_decay"),
])
def test_adam_rejects_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.Adam(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, "lr"),
    ({"lr": -0.5}, "lr"),
    ({"lr": float("inf")}, "lr"),
    ({"lr": 0.1, "momentum": 1.0}, "momentum"),
    ({"lr": 0.1, "momentum": -0.2}, "momentum"),
])
def test_sgd_rejects_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.SGD(**kwargs)


def test_non_numbers_are_type_errors():
    with pytest.raises(TypeError, match="lr"):
        optim.Adam(lr="0.1")
    with pytest.raises(TypeError, match="momentum"):
        optim.SGD(lr=0.1, momentum=True)


def test_make_by_name_and_instance():
    assert isinstance(optim.make("adam", 0.01), optim.Adam) and optim.make("adam", 0.01).lr == 0.01
    assert isinstance(optim.make("sgd", 0.2), optim.SGD) and optim.make("sgd", 0.2).lr == 0.2
    inst = optim.SGD(lr=0.3, momentum=0.1)
    assert optim.make(inst, 0.01) is inst
    with pytest.raises(ValueError, match="optimizer"):
        optim.make("rmsprop", 0.01)
    assert "Adam(lr=0.01" in repr(optim.Adam(lr=0.01)) and "momentum=0.1" in repr(inst)
