"""nd.NeuralODE (docs/models.md §2): structure, forward against a NumPy twin and SciPy, gradients
against finite differences for every solver and both gradient modes, memory of the adjoint,
training, dtypes and seeds, and argument checking."""
from __future__ import annotations

import pickle
import re
import tracemalloc

import numpy as np
import pytest

import neurodyn as nd

import reference_nn as ref

SOLVERS = ("euler", "midpoint", "rk4", "dopri5", "tsit5", "dop853")
FIXED = ("euler", "midpoint", "rk4")
ADAPTIVE = ("dopri5", "tsit5", "dop853")
NAMES = ("input_proj.kernel", "input_proj.bias", "dynamics_dense1.kernel", "dynamics_dense1.bias",
         "dynamics_dense2.kernel", "dynamics_dense2.bias", "output_norm.gamma", "output_norm.beta",
         "output_proj.kernel", "output_proj.bias")


def make(solver="rk4", gradient="backprop", input_size=3, hidden=4, output_size=2, num_steps=4,
         step_size=0.25, tol=1e-9, dtype=np.float64, perturb=True, seed=1, coupled=False):
    """A small float64 model. ``perturb`` moves every parameter off its initial value (zero
    biases, unit gamma, zero beta) so that no gradient term is tested only at a special point
    where it could vanish by accident."""
    m = nd.NeuralODE(input_size, hidden_size=hidden, num_steps=num_steps, step_size=step_size,
                     output_size=output_size, solver=solver, rtol=tol, atol=tol, gradient=gradient,
                     coupled=coupled, seed=seed, dtype=dtype)
    if perturb:
        r = np.random.default_rng(100 + seed)
        for p in m.params.values():
            p += (0.3 * r.normal(size=p.shape)).astype(p.dtype)
    return m


@pytest.fixture
def data():
    r = np.random.default_rng(11)
    return r.normal(size=(3, 3)), r.normal(size=(3, 2))


def fd_errors(model, x, y, *, t=None, loss="mse"):
    """Relative error of every parameter's gradient against central differences of the loss
    (every entry is perturbed)."""
    _, grads = model.loss_and_grad(x, y, loss=loss, t=t)
    assert set(grads) == set(model.params)
    names = list(model.params)
    num = ref.central_difference(lambda: model.loss_and_grad(x, y, loss=loss, t=t)[0],
                                 [model.params[k] for k in names])
    return {k: ref.rel_err(grads[k], n) for k, n in zip(names, num)}


def assert_end_and_trajectory_gradients(model, data, tol):
    """Gradients of an end-point loss and of a loss over three output times (t[0] > 0, times
    inside the steps) within ``tol`` of central differences."""
    x, y = data
    errs = fd_errors(model, x, y)
    assert max(errs.values()) < tol, errs
    yt = np.random.default_rng(12).normal(size=(3, 3, 2))
    errs = fd_errors(model, x, yt, t=np.array([0.3, 0.55, 1.0]))
    assert max(errs.values()) < tol, errs


def flat(grads):
    return np.concatenate([grads[k].ravel() for k in sorted(grads)])


# ---- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("input_size, output_size, names", [
    (3, 2, NAMES),
    (4, 2, NAMES[2:]),            # input_size == hidden: h0 = x, no input_proj
    (3, None, NAMES[:8]),         # no output_size: the normed state is the output
    (3, 4, NAMES[:8]),            # output_size == hidden: no output_proj either
    (4, 4, NAMES[2:8]),
])
def test_parameter_names_shapes_and_init(input_size, output_size, names):
    m = nd.NeuralODE(input_size, hidden_size=4, output_size=output_size, seed=0)
    assert tuple(m.params) == names
    H = 4
    shapes = {"input_proj.kernel": (input_size, H), "input_proj.bias": (H,),
              "dynamics_dense1.kernel": (H, H), "dynamics_dense1.bias": (H,),
              "dynamics_dense2.kernel": (H, H), "dynamics_dense2.bias": (H,),
              "output_norm.gamma": (H,), "output_norm.beta": (H,),
              "output_proj.kernel": (H, output_size), "output_proj.bias": (output_size,)}
    for k, v in m.params.items():
        assert v.shape == shapes[k] and v.dtype == np.float32
        if k.endswith((".bias", ".beta")):
            assert not v.any()
        elif k.endswith(".gamma"):
            np.testing.assert_array_equal(v, 1)
        else:  # glorot uniform bound sqrt(6 / (fan_in + fan_out))
            assert np.all(np.abs(v) <= np.sqrt(6 / sum(v.shape))) and np.any(v)
    assert m.param_count() == sum(int(np.prod(shapes[k])) for k in names)
    x = np.zeros((5, input_size), np.float32)
    assert m(x).shape == (5, output_size if output_size else H)


def test_default_configuration_follows_edifice():
    m = nd.NeuralODE(3, seed=0)
    c = m.config
    assert (c["hidden_size"], c["num_steps"], c["step_size"], c["solver"], c["gradient"]) == (256, 10, 0.1, "euler", "backprop")
    assert m.params["dynamics_dense1.kernel"].dtype == np.float32


def test_repr_names_the_class_config_and_size():
    m = nd.NeuralODE(3, hidden_size=4, output_size=2, solver="rk4", seed=0)
    r = repr(m)
    assert r.startswith("NeuralODE(input_size=3, hidden_size=4")
    assert "solver='rk4'" in r and "74 parameters" in r


# ---- forward -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", FIXED)
def test_forward_matches_numpy_twin(solver, dtype):
    m = make(solver, dtype=dtype, num_steps=5, step_size=0.2)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(dtype)
    out = m(x)
    assert out.dtype == dtype and out.shape == (4, 2)
    expected = ref.node_forward(m.params, x, solver, 5, 0.2)
    rtol = 1e-11 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol)


def test_trajectory_at_off_grid_times_uses_the_fixed_step_rule():
    """Between output times the fixed-step solvers take n = round(|dt_out| / step_size)
    equal steps (docs/models.md §1), so t = 0.27 with step 0.1 is 3 steps of 0.09 and 0.27 -> 1.0 is
    7 steps of 0.73/7."""
    m = make("rk4", num_steps=10, step_size=0.1)
    x = np.random.default_rng(1).normal(size=(2, 3))
    hs = m.trajectory(x, [0.27, 1.0])
    f = ref.node_field(m.params)
    h1 = ref.fixed_step(f, ref.node_project(m.params, x), "rk4", 3, 0.09)
    h2 = ref.fixed_step(f, h1, "rk4", 7, 0.73 / 7)
    np.testing.assert_allclose(hs[0], h1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hs[1], h2, rtol=1e-12, atol=1e-14)


def test_dopri5_matches_scipy():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    m = make("dopri5", tol=1e-10)
    x = np.random.default_rng(2).normal(size=(3, 3))
    t = np.array([0.1, 0.37, 1.0])
    h0 = ref.node_project(m.params, x)
    f = ref.node_field(m.params)
    sol = scipy_integrate.solve_ivp(lambda _, y: f(y.reshape(h0.shape)).ravel(), (0, 1.0), h0.ravel(),
                                    method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12)
    expected = sol.y.T.reshape(len(t), *h0.shape)
    np.testing.assert_allclose(m.trajectory(x, t), expected, rtol=0, atol=1e-8)
    out = m.predict_trajectory(x, t)
    np.testing.assert_allclose(out, [ref.node_head(m.params, e) for e in expected], rtol=0, atol=1e-7)


@pytest.mark.parametrize("solver, coupled", [(s, False) for s in SOLVERS] + [("dopri5", True)])
def test_trajectory_equals_odeint_of_the_dynamics(solver, coupled):
    """The model's ODE is exactly ``nd.odeint(model.dynamics(), h0, t)`` from the projected
    state, per sample by default or as one system with ``coupled``: the field object exposes
    the same weights the model integrates."""
    m = make(solver, num_steps=8, step_size=0.125, tol=1e-6, coupled=coupled)
    x = np.random.default_rng(3).normal(size=(4, 3))
    t = np.array([0.0, 0.3, 0.6, 1.0])
    h0 = ref.dense(x, m.params["input_proj.kernel"], m.params["input_proj.bias"])
    kw = {"dt": 0.125} if solver in FIXED else {"rtol": 1e-6, "atol": 1e-6, "coupled": coupled}
    expected = nd.odeint(m.dynamics(), h0, t, method=solver, **kw)
    np.testing.assert_allclose(m.trajectory(x, t), expected, rtol=1e-13, atol=1e-14)
    # The field evaluates f(h) of docs/models.md §2.
    np.testing.assert_allclose(m.dynamics()(0.0, h0), ref.node_field(m.params)(h0), rtol=1e-12)


def test_call_trajectory_and_predict_trajectory_are_consistent():
    m = make("rk4")
    x = np.random.default_rng(4).normal(size=(3, 3))
    t = np.array([0.0, 0.5, 1.0])
    hs = m.trajectory(x, t)
    assert hs.shape == (3, 3, 4)
    np.testing.assert_allclose(hs[0], ref.node_project(m.params, x), rtol=1e-14)  # h(0) = h0
    outs = m.predict_trajectory(x, t)
    assert outs.shape == (3, 3, 2)
    np.testing.assert_allclose(outs, [ref.node_head(m.params, h) for h in hs], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(m(x), outs[-1])  # t_end = num_steps * step_size = 1
    # A leading 0 is prepended internally when t[0] > 0: asking for it changes nothing.
    np.testing.assert_array_equal(m.trajectory(x, t[1:]), hs[1:])


def test_without_input_projection_the_state_starts_at_x():
    m = make("euler", input_size=4)
    x = np.random.default_rng(5).normal(size=(2, 4))
    np.testing.assert_array_equal(m.trajectory(x, [0.0])[0], x)
    np.testing.assert_allclose(m(x), ref.node_forward(m.params, x, "euler", 4, 0.25), rtol=1e-12)


# ---- gradients against finite differences ------------------------------------------------------------
# Relative error below 1e-6 per parameter (every entry checked). Exact discrete backprop has
# no discretisation error at all, so what remains is the finite-difference error (~1e-10).


@pytest.mark.parametrize("solver", SOLVERS)
def test_backprop_gradient_matches_finite_differences(solver, data):
    errs = fd_errors(make(solver), *data)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("solver", SOLVERS)
def test_backprop_trajectory_gradient_matches_finite_differences(solver, data):
    """A loss over several output times; they fall between the fixed steps (0.3 is not a
    multiple of 0.25) and inside dopri5's adaptive steps (dense output), and t[0] > 0."""
    x, _ = data
    t = np.array([0.3, 0.55, 1.0])
    y = np.random.default_rng(12).normal(size=(3, 3, 2))
    errs = fd_errors(make(solver), x, y, t=t)
    assert max(errs.values()) < 1e-6, errs


def test_cross_entropy_gradient_matches_finite_differences(data):
    x, _ = data
    m = make("midpoint", output_size=3)
    errs = fd_errors(m, x, np.array([2, 0, 1]), loss="cross_entropy")
    assert max(errs.values()) < 1e-6, errs


def test_gradient_without_projections_matches_finite_differences():
    """input_size == hidden and no output_proj: the loss reaches x's layer directly."""
    r = np.random.default_rng(13)
    m = make("rk4", input_size=4, output_size=None)
    assert "input_proj.kernel" not in m.params and "output_proj.kernel" not in m.params
    errs = fd_errors(m, r.normal(size=(3, 4)), r.normal(size=(3, 4)))
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_adjoint_gradient_matches_finite_differences(solver, data):
    """The continuous adjoint is exact only up to the solver's accuracy: rk4 with 8 steps
    and dopri5 at 1e-9 are accurate to well below 1e-5."""
    assert_end_and_trajectory_gradients(make(solver, gradient="adjoint", num_steps=8, step_size=0.125), data, 1e-5)


@pytest.mark.parametrize("solver", ADAPTIVE)
@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_per_sample_gradients_match_finite_differences(solver, gradient, data):
    """Every sample with its own steps (docs/models.md §8): exact backprop through each
    sample's steps, and the adjoint solved per sample with its own step control, both within
    1e-6 of central differences of the per-sample forward solve (tolerance 1e-11, so the
    adjoint's continuous gradient is as close as the discrete one); over several output times
    (dense outputs) too."""
    assert_end_and_trajectory_gradients(make(solver, gradient, tol=1e-11), data, 1e-6)


@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_coupled_dopri5_gradients_match_finite_differences(gradient, data):
    """coupled=True: the batch as one system, forward and backward."""
    m = make("dopri5", gradient, tol=1e-11, coupled=True)
    errs = fd_errors(m, *data)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("solver", ADAPTIVE)
@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_batch_gradient_is_the_sum_of_its_samples(solver, gradient):
    """Per-sample steps make a batch's gradient the sum of its samples' gradients. Through the
    ODE with the same cotangents per sample, both modes: each sample's forward and backward
    steps are its own bits, so the sums agree to rounding. Through the loss with backprop: the
    MSE of a batch of B is the mean of its samples' losses, so B times its gradient is the sum.
    (The adjoint's steps follow the size of its cotangent, which the mean scales by 1/B.)"""
    r = np.random.default_rng(21)
    x, y = r.normal(size=(5, 3)), r.normal(size=(5, 2))
    x[2] *= 4.0  # samples of different difficulty take different steps
    m = make(solver, gradient, tol=1e-7)
    t = np.array([0.4, 1.0])

    def ode_grad(xs, ybar):
        _, (_, _, times, _, ys, info, _) = m._forward(xs, t, 4 if gradient == "backprop" else 0)
        return m._ode_grad(times, ys, info, ybar)

    ybar = r.normal(size=(3, 5, 4))
    y0bar, dp = ode_grad(x, ybar)
    alone = [ode_grad(x[i:i + 1], ybar[:, i:i + 1]) for i in range(5)]
    np.testing.assert_array_equal(y0bar, np.concatenate([a[0] for a in alone]))
    total = sum(a[1] for a in alone)
    np.testing.assert_allclose(dp, total, rtol=1e-12, atol=1e-14 * np.max(np.abs(total)))
    if gradient == "backprop":
        loss, grads = m.loss_and_grad(x, y)
        alone = [m.loss_and_grad(x[i:i + 1], y[i:i + 1]) for i in range(5)]
        assert loss == pytest.approx(np.mean([a[0] for a in alone]), rel=1e-13)
        for k in grads:
            total = sum(a[1][k] for a in alone)
            np.testing.assert_allclose(5 * grads[k], total, rtol=1e-11, atol=1e-13 * np.max(np.abs(total)), err_msg=k)
    # a coupled batch shares one step size: its gradient is not the sum of the samples'
    mc = make(solver, gradient, tol=1e-7, coupled=True)
    gc = mc.loss_and_grad(x, y)[1]["dynamics_dense1.kernel"]
    assert not np.allclose(5 * gc, sum(mc.loss_and_grad(x[i:i + 1], y[i:i + 1])[1]["dynamics_dense1.kernel"]
                                       for i in range(5)), rtol=1e-9, atol=0)


# ---- kept stages: backprop reads the forward solve's stages (odeint record=8) -----------------------


def _replay(model):
    """The same model evaluating every stage again in its backward pass."""
    model._keep_stages = 0
    return model


def _solve_kept(dtype, solver, times, coupled=True, B=4, H=5, first_step=0.0, seed=31):
    """An MLP field's model, spec, initial states, solver options and output cotangents for a
    solve, coupled or per sample; with first_step a first step far too long (most first
    attempts rejected)."""
    r = np.random.default_rng(seed)
    m = make(solver, tol=1e-6, hidden=H, dtype=dtype, coupled=coupled)
    spec = m._dynamics_spec()
    h0 = r.normal(size=(B, H)).astype(dtype)
    opts = m._solver_options(times)
    if first_step:
        opts = {**opts, "dt": first_step, "rtol": 1e-5 if dtype == np.float32 else 1e-9}
        h0 = 3 * h0
    ybar = r.normal(size=(len(times), B, H)).astype(dtype)
    return m, spec, h0, opts, ybar


def _first_kept(solver, coupled, seed):
    """A float64 solve keeping its stages, its tape and the gradient through them."""
    times = np.array([0.0, 0.4, 1.0])
    m, spec, h0, opts, ybar = _solve_kept(np.float64, solver, times, coupled=coupled, seed=seed)
    _, _, first = nd._core.odeint(spec, h0, times, record=12, **opts)
    tape = dict(steps=first["steps"], outs=first["tape"][0], states=first["tape"][1], method=solver, coupled=coupled)
    ok = nd._core.ode_backprop(field=spec, t=times, ybar=ybar, kept=first["kept"], **tape)
    return m, spec, h0, opts, ybar, times, first["kept"], tape, ok


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, first_step", [("euler", 0), ("midpoint", 0), ("rk4", 0), ("dopri5", 0),
                                                ("dopri5", 2.0)])
def test_kept_stages_give_the_replays_gradient_bit_for_bit(solver, first_step, dtype):
    """The backward pass through the kept stages makes the replay's operations in the replay's
    order on the forward pass's values (the replay forms each stage's argument as the forward
    pass does): the same bits, with outputs inside the steps (dopri5's dense output, t between
    the fixed steps), in both precisions; the forward solve's outputs are unchanged. A first
    step far too long makes dopri5 reject steps, whose stages the next attempt overwrites."""
    times = np.array([0.0, 0.3, 0.55, 1.0])
    m, spec, h0, opts, ybar = _solve_kept(dtype, solver, times, first_step=first_step)
    ys, _, info = nd._core.odeint(spec, h0, times, record=4, **opts)
    ys_k, _, info_k = nd._core.odeint(spec, h0, times, record=12, **opts)
    np.testing.assert_array_equal(ys, ys_k)
    tape = dict(steps=info["steps"], outs=info["tape"][0], states=info["tape"][1], method=solver, coupled=True)
    if solver == "dopri5":  # some output falls strictly inside a step
        st, outs = info["steps"], info["tape"][0]
        assert any(times[j] < st[i, 2] + st[i, 3] for i in range(len(st)) for j in range(*outs[i]))
    if first_step:
        assert info_k["rejected"] > 0
    replay = nd._core.ode_backprop(field=spec, t=times, ybar=ybar, **tape)
    kept = nd._core.ode_backprop(field=spec, t=times, ybar=ybar, kept=info_k["kept"], **tape)
    for a, b in zip(replay, kept):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, coupled", [("rk4", False), ("dopri5", True), ("dopri5", False), ("tsit5", False),
                                            ("dop853", False)])
def test_training_through_kept_stages_matches_the_replay(solver, coupled, dtype):
    """loss_and_grad keeps the stages (and reuses their memory at the next call): every
    gradient the replay's bits, over successive calls on other data and other times."""
    r = np.random.default_rng(41)
    kept, replay = make(solver, tol=1e-6, dtype=dtype, coupled=coupled), _replay(
        make(solver, tol=1e-6, dtype=dtype, coupled=coupled))
    held = None
    for call, t in enumerate([None, np.array([0.3, 0.55, 1.0]), None]):
        x = r.normal(size=(3, 3)).astype(dtype)
        y = r.normal(size=(3, 2) if t is None else (3, 3, 2)).astype(dtype)
        lk, gk = kept.loss_and_grad(x, y, t=t)
        lr, gr = replay.loss_and_grad(x, y, t=t)
        assert lk == lr
        for k in gk:
            np.testing.assert_array_equal(gk[k], gr[k], err_msg=k)
        assert held is None or kept._kept_stages is held  # the memory of the last call, reused
        held = kept._kept_stages
    assert not hasattr(replay, "_kept_stages")
    copy = pickle.loads(pickle.dumps(kept))  # the kept stages are not part of the model's state
    assert not hasattr(copy, "_kept_stages")
    np.testing.assert_array_equal(copy(x), kept(x))


def test_kept_stages_are_used_by_backprop_through_the_explicit_solvers():
    """Backprop through the coupled solver and through the per-sample driver keeps the stages (the
    binding decides where a solve can); radau and the adjoint keep none."""
    r = np.random.default_rng(43)
    x, y = r.normal(size=(3, 3)), r.normal(size=(3, 2))
    for solver, coupled, gradient, keeps in [("euler", False, "backprop", True), ("rk4", False, "backprop", True),
                                             ("dopri5", False, "backprop", True), ("tsit5", False, "backprop", True),
                                             ("dop853", False, "backprop", True), ("dopri5", True, "backprop", True),
                                             ("radau", False, "backprop", False), ("rk4", False, "adjoint", False),
                                             ("dopri5", False, "adjoint", False)]:
        m = make(solver, gradient, tol=1e-6, coupled=coupled)
        m.loss_and_grad(x, y)
        assert hasattr(m, "_kept_stages") == keeps, (solver, coupled, gradient)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["dopri5", "tsit5", "dop853"])
@pytest.mark.parametrize("case", ["ends", "inside", "rejected", "many"])
def test_per_sample_kept_stages_give_the_replays_gradient_bit_for_bit(solver, dtype, case):
    """Through the per-sample driver: the kept stages give the replay's bits, with outputs only
    at the ends of steps, with outputs inside steps (rounds that keep their last stage too;
    dop853's replayed whole), with rejected attempts mixed in a round (the accepted rows' stages
    moved down over them), also for hundreds of rows of 64 values; the forward solve's outputs
    are unchanged. (The driver runs the stages in blocks of rows for row-wise fields only, not
    an MLP's: csrc/tests/test_ode_grad.c tests kept stages through blocks.)"""
    long = case in ("rejected", "many")
    times = np.array([0.0, 0.3, 0.55, 1.0]) if case == "inside" else np.array([0.0, 3.0 if long else 1.0])
    B, H = (700, 64) if case == "many" else (6, 5)
    m, spec, h0, opts, ybar = _solve_kept(dtype, solver, times, False, B, H, 6.0 if long else 0.0, seed=37)
    ys, _, info = nd._core.odeint(spec, h0, times, record=4, **opts)
    ys_k, _, info_k = nd._core.odeint(spec, h0, times, record=12, **opts)
    np.testing.assert_array_equal(ys, ys_k)
    np.testing.assert_array_equal(info["steps"], info_k["steps"])
    if long:
        assert info_k["rejected"].sum() > 0
        # some round accepted some of its rows and rejected others
        st = info["steps"]
        rounds = [np.sum(st[:, 1] == r) for r in np.unique(st[:, 1])]
        assert min(rounds) < B
    tape = dict(steps=info["steps"], outs=info["tape"][0], states=info["tape"][1], method=solver, coupled=False)
    replay = nd._core.ode_backprop(field=spec, t=times, ybar=ybar, **tape)
    kept = nd._core.ode_backprop(field=spec, t=times, ybar=ybar, kept=info_k["kept"], **tape)
    for a, b in zip(replay, kept):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def _kept_stage_bytes(m, B, dtype):
    """Bytes of one kept stage of the coupled solver for B rows of an MLP field: its argument
    [B, H] and each layer's pre-activations and outputs (docs/models.md §2)."""
    widths = [m.params["dynamics_dense1.kernel"].shape[1], m.params["dynamics_dense2.kernel"].shape[1]]
    return B * (widths[-1] + 2 * sum(widths)) * np.dtype(dtype).itemsize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, coupled", [("rk4", True), ("dopri5", True), ("dopri5", False)])
def test_kept_stages_beyond_their_budget_are_replayed_bit_for_bit(solver, coupled, dtype):
    """odeint(record=8, kept_budget=) keeps the stages of the steps (rounds, per sample) that fit
    in the budget and no more, and info["kept_steps"] counts them: a budget of 0 keeps none, two
    steps' buffers keep the first two (dopri5's share a stage with the step before), the default
    keeps all. The backward pass reads the kept ones and replays the others: the gradients are
    the replay's and the full kept stages' bits, the forward outputs unchanged."""
    times = np.array([0.0, 0.3, 0.55, 1.0, 6.0])
    B, H = 4, 5
    m, spec, h0, opts, ybar = _solve_kept(dtype, solver, times, coupled, B, H, 2.0 if solver == "dopri5" else 0.0)
    core = nd._core
    ys, _, info = core.odeint(spec, h0, times, record=4, **opts)
    n_steps = len(info["steps"])
    assert n_steps > 3
    tape = dict(steps=info["steps"], outs=info["tape"][0], states=info["tape"][1], method=solver, coupled=coupled)
    replay = core.ode_backprop(field=spec, t=times, ybar=ybar, **tape)
    if coupled:
        stages = 4 if solver == "rk4" else 7
        two = (2 * stages - (solver == "dopri5")) * _kept_stage_bytes(m, B, dtype)
        budgets = {0: 0, two - 1: 1, two: 2, None: n_steps}
    else:
        # two rounds of every row, each keeping at most 6 stages: some rounds, not all
        budgets = {0: 0, 2 * 6 * _kept_stage_bytes(m, B, dtype): None, None: n_steps}
    kept = None
    for budget, want in budgets.items():
        extra = {} if budget is None else {"kept_budget": budget}
        ys_k, _, info_k = core.odeint(spec, h0, times, record=12, kept=kept, **opts, **extra)
        kept = info_k["kept"]  # the memory of the last solve, reused (or freed beyond the budget)
        np.testing.assert_array_equal(ys, ys_k)
        if want is None:
            assert 0 < info_k["kept_steps"] < n_steps
        else:
            assert info_k["kept_steps"] == want
        for a, b in zip(replay, core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)):
            assert b.dtype == dtype
            np.testing.assert_array_equal(a, b)
    assert nd._core.DEFAULTS["odeint"]["kept_budget"] > 0
    with pytest.raises(ValueError, match="kept_budget"):
        core.odeint(spec, h0, times, record=12, kept_budget=-1, **opts)


def test_per_sample_kept_stages_refuse_another_solve_and_other_objects():
    m, spec, h0, opts, ybar, times, kept, tape, ok = _first_kept("dopri5", False, 37)
    core = nd._core
    # a later solve reusing the object: the first tape's stages are gone
    _, _, second = core.odeint(spec, h0 * 1.5, times, record=12, kept=kept, **opts)
    assert second["kept"] is kept
    with pytest.raises(ValueError, match="kept holds the stages of another solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)
    # the same steps from other initial states: refused too
    _, _, third = core.odeint(spec, h0, times, record=12, kept=kept, **{**opts, "dt": 0.05, "rtol": 1e-2})
    _, _, fourth = core.odeint(spec, h0 + 1e-9, times, record=12, kept=kept, **{**opts, "dt": 0.05, "rtol": 1e-2})
    np.testing.assert_array_equal(third["steps"], fourth["steps"])
    with pytest.raises(ValueError, match="initial states differ"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, steps=third["steps"], outs=third["tape"][0],
                          states=third["tape"][1], method="dopri5")
    # the same solve again: usable again, the same bits
    core.odeint(spec, h0, times, record=12, kept=kept, **opts)
    for a, b in zip(ok, core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)):
        np.testing.assert_array_equal(a, b)
    # another field's parameters, another method, the coupled solver's gradient
    m2 = pickle.loads(pickle.dumps(m))
    m2.params["dynamics_dense2.bias"][0] += 1e-3
    with pytest.raises(ValueError, match="another field"):
        core.ode_backprop(field=m2._dynamics_spec(), t=times, ybar=ybar, kept=kept, **tape)
    with pytest.raises(ValueError, match="another solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **{**tape, "method": "tsit5"})
    with pytest.raises(ValueError, match="per-sample solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **{**tape, "coupled": True})
    # an object of the coupled solver for a per-sample gradient, and the other way round
    _, _, coupled = core.odeint(spec, h0, times, record=12, **{**opts, "coupled": True})
    with pytest.raises(ValueError, match="coupled solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=coupled["kept"], **tape)
    # what record=8 needs: a built-in MLP field
    with pytest.raises(ValueError, match="needs a built-in MLP or hybrid field"):
        core.odeint(lambda t, y: -y, h0, times, record=12, **opts)
    with pytest.raises(ValueError, match="only as an MLP field"):
        core.odeint(nd.fields.Linear(np.eye(5))._spec(), h0, times, record=12, **opts)


def test_kept_stages_refuse_another_solve_and_other_objects():
    m, spec, h0, opts, ybar, times, kept, tape, ok = _first_kept("rk4", True, 31)
    core = nd._core
    # a later solve reusing the object: the first tape's stages are gone
    _, _, second = core.odeint(spec, h0 + 1, times, record=12, kept=kept, **opts)
    assert second["kept"] is kept
    with pytest.raises(ValueError, match="kept holds the stages of another solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)
    # the same solve again: usable again, the same bits
    core.odeint(spec, h0, times, record=12, kept=kept, **opts)
    for a, b in zip(ok, core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)):
        np.testing.assert_array_equal(a, b)
    # another field's parameters, another dtype
    m2 = pickle.loads(pickle.dumps(m))
    m2.params["dynamics_dense2.bias"][0] += 1e-3
    other = m2._dynamics_spec()
    with pytest.raises(ValueError, match="another field"):
        core.ode_backprop(field=other, t=times, ybar=ybar, kept=kept, **tape)
    with pytest.raises((ValueError, TypeError)):
        core.ode_backprop(field=spec, t=times, ybar=ybar.astype(np.float32), kept=kept,
                          **{**tape, "states": tape["states"].astype(np.float32)})
    # another method's or a per-sample gradient, another object
    with pytest.raises(ValueError, match="another solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **{**tape, "method": "midpoint"})
    with pytest.raises(ValueError, match="coupled solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **{**tape, "method": "dopri5", "coupled": False})
    with pytest.raises(TypeError, match="kept must be the info"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=object(), **tape)
    with pytest.raises(TypeError, match="kept must be the info"):
        core.odeint(spec, h0, times, record=12, kept="kept", **opts)
    # what record=8 needs: a built-in MLP field; kept only with record=8
    with pytest.raises(ValueError, match="needs a built-in MLP or hybrid field"):
        core.odeint(lambda t, y: -y, h0, times, record=12, **opts)
    with pytest.raises(ValueError, match="only as an MLP field"):
        core.odeint(nd.fields.Linear(np.eye(5))._spec(), h0, times, record=12, **opts)
    with pytest.raises(ValueError, match=r"record=8\) only"):
        core.odeint(spec, h0, times, record=4, kept=kept, **opts)
    # a failed solve keeps no steps: its object serves no tape
    _, _, failed = core.odeint(spec, h0, times, record=12, kept=kept, **{**opts, "max_steps": 2})
    assert failed["status_code"] < 0
    with pytest.raises(ValueError, match="another solve"):
        core.ode_backprop(field=spec, t=times, ybar=ybar, kept=kept, **tape)


def test_backprop_and_adjoint_agree_for_tight_dopri5(data):
    gb = make("dopri5", "backprop", tol=1e-10).loss_and_grad(*data)[1]
    ga = make("dopri5", "adjoint", tol=1e-10).loss_and_grad(*data)[1]
    for k in gb:
        assert ref.rel_err(ga[k], gb[k]) < 1e-6, k


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_adjoint_converges_at_the_solver_order(solver, order, data):
    """The continuous adjoint integrated backwards by a p-th order method is O(h^p) off the
    true gradient (Euler is only first order, hence a loose match at any fixed step).
    Halving h must divide the error by about 2^p. The truth is exact backprop through rk4
    with 256 steps (discretisation error ~1e-12)."""
    x, y = data
    truth = flat(make("rk4", num_steps=256, step_size=1 / 256).loss_and_grad(x, y)[1])
    steps = (4, 8, 16) if order == 4 else (8, 16, 32)
    errs = []
    for n in steps:
        g = flat(make(solver, "adjoint", num_steps=n, step_size=1 / n).loss_and_grad(x, y)[1])
        errs.append(ref.rel_err(g, truth))
    ratios = [errs[i] / errs[i + 1] for i in range(len(errs) - 1)]
    for r in ratios:
        assert 2**order * 0.8 < r < 2**order * 1.25, (errs, ratios)
    assert errs[-1] < {1: 0.02, 2: 2e-4, 4: 1e-7}[order], errs


def test_loss_value_is_the_mse_of_the_outputs(data):
    x, y = data
    m = make("rk4")
    loss, _ = m.loss_and_grad(x, y)
    assert loss == pytest.approx(np.mean((m(x) - y) ** 2), rel=1e-13)
    t = np.array([0.5, 1.0])
    yt = np.stack([y, -y])
    loss_t, _ = m.loss_and_grad(x, yt, t=t)
    assert loss_t == pytest.approx(np.mean((m.predict_trajectory(x, t) - yt) ** 2), rel=1e-13)


def test_loss_and_grad_leaves_inputs_and_parameters_alone(data):
    x, y = data
    m = make("dopri5", gradient="adjoint")
    x.setflags(write=False)  # a write would raise
    before = {k: v.copy() for k, v in m.params.items()}
    xc, yc = x.copy(), y.copy()
    m.loss_and_grad(x, y)
    m.loss_and_grad(np.asfortranarray(x), y[:, :])
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(y, yc)
    for k in before:
        np.testing.assert_array_equal(m.params[k], before[k])


# ---- dtypes and seeds -------------------------------------------------------------------------------


@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_float32_model_gives_float32_outputs_and_gradients(gradient):
    m32 = nd.NeuralODE(3, hidden_size=4, output_size=2, num_steps=4, step_size=0.25, solver="rk4",
                       gradient=gradient, seed=9)
    m64 = nd.NeuralODE(3, hidden_size=4, output_size=2, num_steps=4, step_size=0.25, solver="rk4",
                       gradient=gradient, seed=9, dtype=np.float64)
    # The same seed draws the same numbers; float32 only rounds them.
    for k in m64.params:
        np.testing.assert_array_equal(m32.params[k], m64.params[k].astype(np.float32))
    r = np.random.default_rng(0)
    x, y = r.normal(size=(5, 3)), r.normal(size=(5, 2))
    assert m32(x).dtype == np.float32  # float64 input, float32 model: the model's dtype wins
    assert m32.trajectory(x, [0.5]).dtype == np.float32
    assert m32.predict_trajectory(x, [0.5]).dtype == np.float32
    loss32, g32 = m32.loss_and_grad(x, y)
    loss64, g64 = m64.loss_and_grad(x, y)
    assert isinstance(loss32, float) and loss32 == pytest.approx(loss64, rel=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32, k
        assert ref.rel_err(g32[k], g64[k]) < 1e-4, k


def test_same_seed_same_parameters_different_seed_different():
    a = nd.NeuralODE(3, hidden_size=6, output_size=2, seed=123)
    b = nd.NeuralODE(3, hidden_size=6, output_size=2, seed=123)
    c = nd.NeuralODE(3, hidden_size=6, output_size=2, seed=124)
    d = nd.NeuralODE(3, hidden_size=6, output_size=2, seed=np.random.default_rng(123))
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]) and a.params[k].dtype == b.params[k].dtype
        assert np.array_equal(a.params[k], d.params[k])
    assert not np.array_equal(a.params["dynamics_dense1.kernel"], c.params["dynamics_dense1.kernel"])
    x = np.ones((2, 3))
    np.testing.assert_array_equal(a(x), b(x))


@pytest.mark.parametrize("seed, exc", [(-1, ValueError), (1.5, TypeError), ("0", TypeError)])
def test_bad_seed(seed, exc):
    with pytest.raises(exc, match="seed"):
        nd.NeuralODE(3, hidden_size=4, seed=seed)


# ---- memory -------------------------------------------------------------------------------------


def _peak_bytes(model, x, y):
    """Peak of the memory traced during one loss_and_grad. NumPy's data buffers and the
    binding's PyMem_Raw workspaces are both traced by tracemalloc."""
    model.loss_and_grad(x, y)  # warm-up, so one-time allocations are not counted
    tracemalloc.start()
    try:
        model.loss_and_grad(x, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_adjoint_memory_does_not_grow_with_steps(record_property):
    """docs/models.md §2: the adjoint's memory is independent of the number of steps; backprop keeps
    a tape of states, O(steps)."""
    B, H = 32, 64
    r = np.random.default_rng(0)
    x, y = r.normal(size=(B, 8)), r.normal(size=(B, 4))
    peaks = {}
    for gradient in ("adjoint", "backprop"):
        for n in (10, 1000):
            m = nd.NeuralODE(8, hidden_size=H, output_size=4, num_steps=n, step_size=1.0 / n, solver="rk4",
                             gradient=gradient, seed=0, dtype=np.float64)
            peaks[gradient, n] = _peak_bytes(m, x, y)
    for (g, n), v in peaks.items():
        record_property(f"peak_{g}_{n}_MB", round(v / 1e6, 3))
    state = B * H * 8
    assert peaks["adjoint", 1000] <= 1.5 * peaks["adjoint", 10], peaks
    # The tape holds one state per step. Its buffer starts with room for 256 steps, which the
    # 10-step run already pays for, so 1000 steps cost at least 1000 - 256 more states.
    assert peaks["backprop", 1000] - peaks["backprop", 10] >= (1000 - 256) * state, peaks
    assert peaks["backprop", 1000] > 5 * peaks["adjoint", 1000], peaks


# ---- training --------------------------------------------------------------------------------------


def spiral(x, t, rate=0.5, omega=1.5):
    """Exact flow of the damped spiral dx/dt = [[-rate, -omega], [omega, -rate]] x."""
    out = []
    for s in t:
        c, sn = np.cos(omega * s), np.sin(omega * s)
        out.append(np.exp(-rate * s) * x @ np.array([[c, sn], [-sn, c]]))
    return np.stack(out)


def test_fit_learns_a_damped_spiral_trajectory():
    """Four output times of a damped spiral from 128 start points, float32, 40 epochs
    (~0.1 s). Measured final loss 0.0028 (from 1.02); the threshold leaves a 3.5x margin."""
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, size=(128, 2))
    t = np.array([0.25, 0.5, 0.75, 1.0])
    y = spiral(x, t)
    m = nd.NeuralODE(2, hidden_size=16, output_size=2, num_steps=4, step_size=0.25, solver="rk4", seed=0)
    hist = m.fit(x, y, t=t, epochs=40, batch_size=32, lr=2e-2, seed=0, verbose=False).history_
    assert set(hist) >= {"loss", "batch_loss", "time"}
    assert len(hist["loss"]) == 40 and len(hist["time"]) == 40 and len(hist["batch_loss"]) == 40 * 4
    assert hist["loss"][-1] < 0.01
    assert hist["loss"][-1] < hist["loss"][0] / 50
    final, _ = m.loss_and_grad(x, y, t=t)
    assert final < 0.01 and final < 0.05 * np.mean(y**2)  # far better than predicting 0


def test_fit_with_adjoint_and_sgd_momentum_regresses_the_end_point():
    """End-point regression with the adjoint gradient and an SGD instance. Measured 0.0005
    (from 1.09) with SGD; threshold 0.005."""
    r = np.random.default_rng(1)
    x = r.uniform(-1, 1, size=(128, 2))
    y = spiral(x, [1.0])[0]
    m = nd.NeuralODE(2, hidden_size=16, output_size=2, num_steps=4, step_size=0.25, solver="rk4",
                     gradient="adjoint", seed=0, dtype=np.float64)
    hist = m.fit(x, y, epochs=60, batch_size=16, optimizer=nd.optim.SGD(lr=0.1, momentum=0.9), seed=0, verbose=False).history_
    assert hist["loss"][-1] < 0.005 and hist["loss"][-1] < hist["loss"][0] / 50
    assert np.mean((m(x) - y) ** 2) < 0.005


def test_fit_classifies_inside_a_circle():
    """Cross-entropy on 256 points labelled |x| < 0.65; measured accuracy 0.98, loss 0.07."""
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, size=(256, 2))
    labels = (np.hypot(x[:, 0], x[:, 1]) < 0.65).astype(np.int64)
    m = nd.NeuralODE(2, hidden_size=16, output_size=2, num_steps=4, step_size=0.25, solver="rk4", seed=0)
    hist = m.fit(x, labels, loss="cross_entropy", epochs=40, batch_size=32, lr=2e-2, seed=0, verbose=False).history_
    assert hist["loss"][-1] < 0.2 and hist["loss"][-1] < hist["loss"][0] / 4
    assert np.mean(np.argmax(m(x), axis=1) == labels) > 0.93


def test_fit_is_reproducible():
    r = np.random.default_rng(2)
    x, y = r.normal(size=(40, 2)), r.normal(size=(40, 2))
    runs = []
    for _ in range(2):
        m = nd.NeuralODE(2, hidden_size=8, output_size=2, num_steps=3, step_size=0.2, solver="midpoint", seed=5)
        hist = m.fit(x, y, epochs=3, batch_size=8, lr=1e-2, seed=7, verbose=False).history_
        runs.append((hist["batch_loss"], m.params))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


def test_fit_uses_every_sample_once_per_epoch():
    """The epoch loss is the size-weighted mean of its minibatch losses (last batch short)."""
    r = np.random.default_rng(3)
    x, y = r.normal(size=(10, 2)), r.normal(size=(10, 2))
    m = nd.NeuralODE(2, hidden_size=4, output_size=2, num_steps=2, step_size=0.1, seed=0)
    hist = m.fit(x, y, epochs=2, batch_size=4, lr=1e-3, seed=0, verbose=False).history_
    assert len(hist["batch_loss"]) == 6
    b = hist["batch_loss"]
    assert hist["loss"][0] == pytest.approx((4 * b[0] + 4 * b[1] + 2 * b[2]) / 10, rel=1e-12)


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"input_size": 0}, ValueError, "input_size"),
    ({"input_size": 2.5}, TypeError, "input_size"),
    ({"hidden_size": -1}, ValueError, "hidden_size"),
    ({"num_steps": 0}, ValueError, "num_steps"),
    ({"step_size": 0.0}, ValueError, "step_size must be > 0"),
    ({"step_size": -0.1}, ValueError, "step_size must be > 0"),
    ({"step_size": float("nan")}, ValueError, "step_size"),
    ({"output_size": 0}, ValueError, "output_size"),
    ({"solver": "rk45"}, ValueError, "solver='rk45'"),
    ({"solver": "RK4"}, ValueError, "solver='RK4'"),  # no silent fallback (unlike Edifice)
    ({"gradient": "autodiff"}, ValueError, "gradient='autodiff'"),
    ({"rtol": -1e-3}, ValueError, "rtol"),
    ({"solver": "dopri5", "rtol": 0, "atol": 0}, ValueError, "rtol and atol"),
    ({"dtype": np.float16}, ValueError, "dtype"),
])
def test_constructor_rejects_bad_arguments(kwargs, exc, match):
    args = {"input_size": 3, "hidden_size": 4}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nd.NeuralODE(**args)


@pytest.fixture
def small():
    return nd.NeuralODE(3, hidden_size=4, output_size=2, seed=0)


@pytest.mark.parametrize("x, exc, match", [
    (np.ones((2, 4)), ValueError, r"x has shape \(2, 4\); expected \(batch, 3\)"),
    (np.ones(3), ValueError, r"x has shape \(3,\)"),
    (np.array([[1.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), ValueError, "x contains NaN"),
    (np.array([[1.0, np.inf, 0.0]]), ValueError, "x contains NaN or inf"),
    (np.ones((2, 3), dtype=complex), TypeError, "x has dtype complex"),
])
def test_bad_batches(small, x, exc, match):
    for call in (small, lambda v: small.trajectory(v, [0.5]), lambda v: small.loss_and_grad(v, np.zeros((2, 2)))):
        with pytest.raises(exc, match=match):
            call(x)


def test_bad_losses_and_targets(small):
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="loss='hinge'"):
        small.loss_and_grad(x, np.zeros((2, 2)), loss="hinge")
    with pytest.raises(ValueError, match=r"y has shape \(2, 5\), expected \(2, 2\)"):
        small.loss_and_grad(x, np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"y has shape \(2, 2\), expected \(2, 2, 2\)"):
        small.loss_and_grad(x, np.zeros((2, 2)), t=[0.5, 1.0])
    with pytest.raises(ValueError, match="y contains NaN"):
        small.loss_and_grad(x, np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="integer labels"):
        small.loss_and_grad(x, np.array([0.0, 1.0]), loss="cross_entropy")
    with pytest.raises(ValueError, match="labels must lie in"):
        small.loss_and_grad(x, np.array([0, 2]), loss="cross_entropy")
    with pytest.raises(ValueError, match="trajectory loss"):
        small.loss_and_grad(x, np.array([0, 1]), loss="cross_entropy", t=[0.5])


@pytest.mark.parametrize("t, match", [
    ([0.5, 0.2], "t must be"),
    ([-0.5, 0.2], "t must be non-negative"),
    ([0.1, np.nan], "t contains NaN"),
    (0.5, "t must be a 1-D array"),
    ([[0.1, 0.2]], "t must be a 1-D array"),
    ([], "t must be a 1-D array"),
])
def test_bad_output_times(small, t, match):
    with pytest.raises(ValueError, match=match):
        small.trajectory(np.ones((2, 3)), t)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer='rmsprop'"),
    ({"loss": "l1"}, ValueError, "loss='l1'"),
    ({"seed": -3}, ValueError, "seed"),
])
def test_fit_rejects_bad_arguments(small, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        small.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=False, **kwargs)


def test_fit_rejects_mismatched_sample_counts(small):
    with pytest.raises(ValueError, match=r"x has 4 samples but y has shape \(3"):
        small.fit(np.ones((4, 3)), np.zeros((3, 2)), verbose=False)


def test_wrong_target_shape_names_y(small):
    with pytest.raises(ValueError, match=r"\by\b"):
        small.loss_and_grad(np.ones((2, 3)), np.zeros((2, 5)))


def test_fit_trajectory_with_1d_y_is_a_value_error(small):
    with pytest.raises(ValueError, match=r"\by\b"):
        small.fit(np.ones((2, 3)), np.zeros(2), t=[0.5], verbose=False)


def test_empty_batch_gives_empty_output_or_clear_error(small):
    # DESIGN "Tests": a zero-size input either matches the reference (an empty result) or
    # raises an error that says what is wrong.
    try:
        out = small(np.zeros((0, 3)))
    except ValueError as err:
        assert re.search(r"\bx\b|empty|batch", str(err)), str(err)
    else:
        assert out.shape == (0, 2)
