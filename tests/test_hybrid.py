"""Hybrid energy models (docs/models.md §11): values against the NumPy twin, every derivative
against finite differences, the energy's decrease along trajectories, the port-Hamiltonian
power balance, the certified ball, training, the target systems and bad input."""
import itertools

import numpy as np
import pytest

import neurodyn as nd
import reference_hybrid as ref
from neurodyn import _core

ACTS = nd.hybrid.ACTIVATIONS
KINKS = {"relu": (0.0,), "relu_power": (0.0,), "hardtanh": (-1.0, 1.0)}


def make(acts, form="gradient", inputs=0, d=3, sizes=(5, 4), scale=1.0, seed=0, dtype=np.float64, guarantee=False,
         power=3.5):
    m = nd.HybridEBM(d, hidden_sizes=sizes, activations=acts, form=form, inputs=inputs, guarantee=guarantee,
                     beta=1.3, power=power, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for k in m.params:  # every parameter non-zero, so each path of the energy is exercised
        m.params[k] = (scale * rng.uniform(-0.9, 0.9, size=m.params[k].shape)).astype(dtype)
    return m


def away_from_kinks(model, n, rng, lo=-1.5, hi=1.5):
    """n points whose pre-activations are at least 1e-3 from every kink."""
    out = []
    while len(out) < n:
        z = rng.uniform(lo, hi, size=(1, model.d))
        a, ok = z, True
        for l, act in enumerate(model.config["activations"]):
            g = a @ model.params[f"hidden{l + 1}.kernel"]
            ok &= all(np.min(np.abs(g - k)) > 1e-3 for k in KINKS.get(act, ()))
            a, _ = ref.activation(act, g, model.config["beta"], model.config["power"])
        if ok:
            out.append(z[0])
    return np.array(out)


def fd_rel_error(fun, x, grad, h=1e-6, floor=1e-2):
    """Largest relative error of grad against central differences of the scalar fun at x."""
    x = np.array(x, dtype=np.float64)
    worst = 0.0
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + h
        fp = fun(x)
        x[i] = keep - h
        fm = fun(x)
        x[i] = keep
        fd = (fp - fm) / (2 * h)
        worst = max(worst, abs(fd - grad[i]) / max(floor, abs(fd)))
    return worst


PAIRS = list(itertools.product(ACTS, ACTS))


POWERED = [(acts, p) for acts in PAIRS for p in (3.5, 2.0, 3.0)
           if p == 3.5 or {"polynomial", "relu_power"} & set(acts)]


@pytest.mark.parametrize("acts, power", POWERED, ids=[f"{'-'.join(a)}-p{p}" for a, p in POWERED])
def test_energy_and_gradient_match_twin_and_differences(acts, power):
    """Every pair of activations (the powered ones at p = 3.5 through pow, and at integral p,
    whose powers are products) against the twin and differences."""
    m = make(acts, power=power)
    z = away_from_kinks(m, 4, np.random.default_rng(2))
    H, g = _core.hybrid_energy(m._spec(), z)
    np.testing.assert_allclose(H, ref.energy(m.params, m.config, z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, ref.energy_grad(m.params, m.config, z), rtol=1e-10, atol=1e-12)
    assert fd_rel_error(lambda x: m.energy(x).sum(), z, g) < 1e-6
    # Hessian-vector products against differences of the gradient, and the Hessians
    v = np.random.default_rng(3).normal(size=z.shape)
    hv = m.hvp(z, v)
    assert fd_rel_error(lambda x: np.sum(v * m.energy_grad(x)), z, hv) < 1e-6
    hess = m.hessian(z)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", hess, v), hv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hess, np.transpose(hess, (0, 2, 1)), atol=1e-12)


@pytest.mark.parametrize("form", nd.hybrid.FORMS)
@pytest.mark.parametrize("acts, power", POWERED, ids=[f"{'-'.join(a)}-p{p}" for a, p in POWERED])
def test_field_parameter_gradients_match_differences(acts, power, form):
    inputs = 2 if form == "port_hamiltonian" else 0
    m = make(acts, form=form, inputs=inputs, d=2, sizes=(4, 3), power=power)
    rng = np.random.default_rng(4)
    z = away_from_kinks(m, 3, rng)
    a = rng.normal(size=z.shape)
    u_t, u = (np.array([0.0, 1.0]), rng.normal(size=(2, 1, inputs))) if inputs else (None, None)
    spec = m._spec(u_t, u)
    a_out, dp = _core.hybrid_field_vjp(spec, z, a, t=0.4)
    names = [name for name, _, _ in m._param_specs(m.config)]
    flat = np.concatenate([m.params[k].ravel() for k in names])

    def loss(theta):
        k = 0
        for name in names:
            n = m.params[name].size
            m.params[name] = theta[k:k + n].reshape(m.params[name].shape)
            k += n
        return float(np.sum(a * _core.field_eval(m._spec(u_t, u), 0.4, z)))

    assert fd_rel_error(loss, flat, dp, h=1e-5) < 1e-6
    loss(flat)  # restore
    assert fd_rel_error(lambda x: float(np.sum(a * _core.field_eval(spec, 0.4, x))), z, a_out) < 1e-6
    # the field against the twin, and its Jacobian against the VJP
    uu = None if u is None else np.broadcast_to(0.6 * u[0, 0] + 0.4 * u[1, 0], (len(z), inputs))
    np.testing.assert_allclose(_core.field_eval(spec, 0.4, z), ref.field(m.params, m.config, z, uu), rtol=1e-10,
                               atol=1e-12)
    J = m.field().jacobian(0.0, z)
    np.testing.assert_allclose(np.einsum("bi,bij->bj", a, J), a_out, rtol=1e-10, atol=1e-12)


def test_float32_follows_float64():
    m64 = make(("softmax", "polynomial"), form="port_hamiltonian")
    m32 = nd.HybridEBM(3, hidden_sizes=(5, 4), activations=("softmax", "polynomial"), form="port_hamiltonian",
                       guarantee=False, beta=1.3, power=3.5, dtype=np.float32)
    m32.params = {k: v.astype(np.float32) for k, v in m64.params.items()}
    z = np.random.default_rng(0).normal(size=(6, 3))
    out = m32.field()(0.0, z.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, m64.field()(0.0, z), rtol=2e-5, atol=2e-5)
    assert m32.energy(z).dtype == np.float32


def test_gradient_through_odeint_matches_differences():
    """The rollout loss's parameter gradient (backprop through rk4; adjoint) against differences."""
    for form in nd.hybrid.FORMS:
        m = make(("tanh", "polynomial"), form=form, inputs=1 if form == "port_hamiltonian" else 0, d=2,
                 sizes=(4, 3), scale=0.5)
        rng = np.random.default_rng(5)
        z0 = rng.normal(size=(3, 2))
        times = np.linspace(0.0, 0.5, 6)
        target = rng.normal(size=(6, 3, 2))
        u = rng.normal(size=(6, 3, 1)) if form == "port_hamiltonian" else None
        value, grads = m.window_loss_and_grad(z0, target, times, u=u, method="rk4", dt=0.05)
        for name in grads:
            p = m.params[name]

            def loss(x, name=name):
                keep = m.params[name]
                m.params[name] = x
                v = m.window_loss_and_grad(z0, target, times, u=u, method="rk4", dt=0.05)[0]
                m.params[name] = keep
                return v

            assert fd_rel_error(loss, p, grads[name], h=1e-6, floor=1e-3) < 1e-6, name
        # the continuous adjoint agrees to the solver's accuracy
        _, gadj = m.window_loss_and_grad(z0, target, times, u=u, method="dopri5", gradient="adjoint", rtol=1e-10,
                                         atol=1e-12)
        _, gbp = m.window_loss_and_grad(z0, target, times, u=u, method="dopri5", rtol=1e-10, atol=1e-12)
        for name in grads:
            np.testing.assert_allclose(gadj[name], gbp[name], rtol=1e-5, atol=1e-7)



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", nd.hybrid.FORMS)
def test_kept_stages_give_the_replays_bits(form, dtype):
    """The training step keeps each stage's primal sweeps where its solve is coupled (docs/models.md
    §11): the backward pass that reads them gives the bits of the one that evaluates the stages
    again from the recorded states, for rk4 and (with inputs, coupled) dopri5."""
    port = form == "port_hamiltonian"
    m = make(("tanh", "polynomial"), form=form, inputs=1 if port else 0, d=2, sizes=(4, 3), scale=0.5, dtype=dtype)
    rng = np.random.default_rng(9)
    z0 = rng.normal(size=(5, 2)).astype(dtype)
    times = np.linspace(0.0, 0.5, 6)
    target = rng.normal(size=(6, 5, 2)).astype(dtype)
    u = rng.normal(size=(6, 5, 1)).astype(dtype) if port else None
    for method, dt in [("rk4", 0.05)] + ([("dopri5", None)] if port else []):
        spec, t, ys, raw, opts = m._rollout(z0, times, u, method, dt, 1e-6, 1e-8, "tape")
        assert "kept" in raw, method
        ybar = np.asarray(rng.normal(size=ys.shape), dtype=dtype)
        outs, states = raw["tape"]
        tape = dict(steps=raw["steps"], outs=outs, states=states, method=method, coupled=opts["coupled"])
        kept = _core.ode_backprop(field=spec, t=t, ybar=ybar, kept=raw["kept"], **tape)
        again = _core.ode_backprop(field=spec, t=t, ybar=ybar, **tape)
        for a, b in zip(kept, again):
            np.testing.assert_array_equal(a, b)
        # the kept stages belong to these parameters: others are refused
        keep = m.params["hidden1.kernel"].copy()
        m.params["hidden1.kernel"][0, 0] += 1e-3
        with pytest.raises(ValueError, match="another field"):
            _core.ode_backprop(field=m._spec(*m._inputs(u, t if port else None, rows=5)), t=t, ybar=ybar,
                               kept=raw["kept"], **tape)
        m.params["hidden1.kernel"] = keep
    # the next training step reuses the kept stages' memory, and a target system keeps none
    m.window_loss_and_grad(z0, target, times, u=u, method="rk4", dt=0.05)
    first = m._kept_stages
    m.window_loss_and_grad(z0, target, times, u=u, method="rk4", dt=0.05)
    assert m._kept_stages is first
    if not port:
        with pytest.raises(ValueError, match="only as an MLP field or a hybrid energy model's field"):
            _core.odeint(nd.hybrid.Duffing()._spec(), z0[:, :2].astype(np.float64), times, record=12,
                         method="rk4", dt=0.05)


def test_record_16_keeps_the_stages_where_the_solve_can():
    """odeint(record=16) keeps the stages where its solve can keep them for its field (the rule
    lives in the binding; the models ask for it): the coupled solver a hybrid or MLP field's, the
    per-sample driver an MLP field's only; elsewhere nothing is kept, with the same outputs, and
    an earlier object passed as kept= is left unused."""
    m = make(("tanh", "polynomial"), d=2, sizes=(4, 3), scale=0.5, dtype=np.float64)
    mlp = nd.fields.MLP([np.eye(2) * 0.5, np.eye(2)], [np.zeros(2), np.zeros(2)], activation="tanh")
    z0 = np.random.default_rng(3).normal(size=(5, 2))
    times = np.linspace(0.0, 0.5, 6)
    cases = [(m._spec(), "rk4", False, True), (m._spec(), "dopri5", True, True), (m._spec(), "dopri5", False, False),
             (mlp._spec(), "dopri5", False, True), (nd.hybrid.Duffing()._spec(), "rk4", False, False),
             (lambda t, y: -y, "rk4", False, False)]
    for spec, method, coupled, keeps in cases:
        opts = dict(method=method, dt=0.05 if method == "rk4" else 0.0, rtol=1e-6, atol=1e-8, coupled=coupled)
        ys, _, plain = _core.odeint(spec, z0, times, record=4, **opts)
        ys16, _, raw = _core.odeint(spec, z0, times, record=20, **opts)
        np.testing.assert_array_equal(ys, ys16)
        assert ("kept" in raw) == keeps, (method, coupled)
        np.testing.assert_array_equal(plain["tape"][1], raw["tape"][1])
        if keeps:  # its memory serves the next solve
            assert _core.odeint(spec, z0, times, record=20, kept=raw["kept"], **opts)[2]["kept"] is raw["kept"]
    # an object of a solve that kept, passed to one that cannot keep: unused, nothing raised
    _, _, raw = _core.odeint(m._spec(), z0, times, record=20, method="rk4", dt=0.05)
    _, _, none = _core.odeint(m._spec(), z0, times, record=20, kept=raw["kept"], method="dopri5")
    assert "kept" not in none
    # with 8 asked for as well, record=8's rule holds: a solve that cannot keep raises
    with pytest.raises(ValueError, match="only as an MLP field"):
        _core.odeint(m._spec(), z0, times, record=28, method="dopri5")
    # a training step whose solve keeps none leaves the model the memory of the last that did
    target = np.zeros((times.size, 5, 2))
    m.window_loss_and_grad(z0, target, times, method="rk4", dt=0.05)
    held = m._kept_stages
    m.window_loss_and_grad(z0, target, times, method="dopri5")
    assert m._kept_stages is held


def _trained(form):
    sysm = nd.hybrid.Duffing()
    t = np.linspace(0, 1.0, 11)
    X = sysm.trajectories(8, t, seed=0)
    m = nd.HybridEBM(2, hidden_sizes=(16, 8), form=form, seed=1)
    m.fit(X, t, window=4, epochs=3, batch_size=16, lr=1e-2, seed=0, verbose=False)
    return m


@pytest.mark.parametrize("form", nd.hybrid.FORMS)
@pytest.mark.parametrize("trained", [False, True])
def test_energy_never_increases_unforced(form, trained):
    """50 random starts, 200 checkpoints: H(z(t)) is non-increasing for u = 0."""
    m = _trained(form) if trained else make(("tanh", "polynomial"), form=form, d=2, sizes=(8, 6), scale=1.5, seed=3)
    z0 = np.random.default_rng(6).uniform(-4, 4, size=(50, 2))
    ys = nd.odeint(m.field(), z0, np.linspace(0, 10, 200), method="dopri5", rtol=1e-10, atol=1e-12,
                   verbose=False)
    H = m.energy(ys.reshape(-1, 2)).reshape(200, 50)
    assert np.all(np.diff(H, axis=0) <= 1e-9 * (1 + np.abs(H[:-1])))
    assert np.all(H[-1] < H[0])


def test_port_hamiltonian_power_balance_along_a_forced_trajectory():
    """dH/dt = -grad H^T R grad H + y.u: pointwise on the trajectory, and integrated over it."""
    m = make(("sigmoid", "polynomial"), form="port_hamiltonian", inputs=2, d=3, sizes=(6, 4), seed=7)
    t_u = np.linspace(0, 4, 41)
    u = np.stack([np.sin(2 * t_u), np.cos(3 * t_u)], axis=-1)
    t = np.linspace(0, 4, 801)
    ys = nd.odeint(m.field(u, t_u), np.array([[0.5, -1.0, 0.8]]), t, method="dop853", rtol=1e-13, atol=1e-14,
                   verbose=False)[:, 0]
    _, R = m.port_matrices()
    g = m.energy_grad(ys)
    uu = np.stack([np.interp(t, t_u, u[:, j]) for j in range(2)], axis=-1)
    power = -np.einsum("ti,ij,tj->t", g, R, g) + np.sum(m.output(ys) * uu, axis=-1)
    f = np.stack([m.field(u, t_u)(tk, y[None])[0] for tk, y in zip(t, ys)])
    dHdt = np.sum(g * f, axis=-1)
    np.testing.assert_allclose(dHdt, power, rtol=0, atol=1e-8 * (1 + np.max(np.abs(power))))
    # H(t) - H(0) = integral of the power, by Simpson's rule on the knots' pieces (u is linear there)
    H = m.energy(ys)
    integral = np.concatenate([[0.0], np.cumsum((power[:-2:2] + 4 * power[1:-1:2] + power[2::2]) * (t[2] - t[0]) / 6)])
    np.testing.assert_allclose(H[::2] - H[0], integral, rtol=0, atol=1e-8)


@pytest.mark.parametrize("first", ["softmax", "tanh", "sigmoid", "hardtanh"])
def test_rollouts_enter_the_certified_ball_and_stay(first):
    """1000 starts with |z0| up to 100, random weights at large scales: every unforced trajectory
    enters the certified ball and never leaves it (a third to two thirds start outside it)."""
    for form in nd.hybrid.FORMS:
        m = make((first, "sigmoid"), form=form, d=2, sizes=(4, 3), scale=2.0, seed=11, guarantee=True)
        cert = m.certificate()
        assert cert["bounded"] and 0 < cert["radius"] < 100
        rng = np.random.default_rng(12)
        z0 = rng.normal(size=(1000, 2))
        z0 *= (100 * rng.random((1000, 1))) / np.linalg.norm(z0, axis=1, keepdims=True)
        ys = nd.odeint(m.field(), z0, np.linspace(0, 20, 101), method="rk4", dt=0.04, verbose=False)
        inside = np.linalg.norm(ys, axis=-1) <= cert["radius"]
        assert 0.2 < 1 - inside[0].mean() < 0.8  # many start outside: the test is not vacuous
        assert np.all(inside[-1])
        first_in = np.argmax(inside, axis=0)
        later = np.arange(len(ys))[:, None] >= first_in[None, :]
        assert np.all(inside | ~later)  # once in, never out
        assert np.all(m.energy(ys[-1]) <= cert["level"])  # in the sublevel set that lies in the ball


def test_certificate_lower_bound_and_refusals():
    m = make(("tanh", "relu"), d=3, sizes=(6, 5), scale=2.0, guarantee=True)
    cert = m.certificate()
    z = np.random.default_rng(0).normal(size=(500, 3)) * np.logspace(-1, 3, 500)[:, None]
    r = np.linalg.norm(z, axis=1)
    assert np.all(m.energy(z) >= 0.5 * r * r - cert["c1"] * r - cert["c0"] - 1e-9 * r * r)
    assert cert["guarantee"] is True
    free = nd.HybridEBM(2, activations=("relu", "tanh"), guarantee=False, seed=0)
    assert free.certificate()["bounded"] is False and free.certificate()["radius"] is None
    with pytest.raises(ValueError, match=r"activations\[0\] must be bounded .* guarantee=True; 'relu' is not"):
        nd.HybridEBM(2, activations=("relu", "tanh"))
    with pytest.raises(ValueError, match=r"activations\[0\] must be bounded .*'polynomial' is not"):
        nd.HybridEBM(2, activations=("polynomial", "tanh"))


def test_equilibria_of_a_known_energy():
    """One quadratic layer with W21 = w I and no biases: H = (1 - w^2)|z|^2/2, minimum at 0 with
    lambda_min = 1 - w^2 for both tests."""
    m = nd.HybridEBM(2, hidden_sizes=(2, 2), activations=("tanh", "quadratic"), guarantee=True, seed=0)
    for k in m.params:
        m.params[k][...] = 0
    m.params["hidden1.kernel"][...] = 0.5 * np.eye(2)
    eq = m.equilibria(8, seed=0)
    assert len(eq["points"]) == 1
    np.testing.assert_allclose(eq["points"][0], 0, atol=1e-8)
    # tanh'(0) = beta = 1: I - W^T Q W = 1 - 0.25
    np.testing.assert_allclose(eq["lambda_min"], [0.75], rtol=1e-12)
    np.testing.assert_allclose(eq["hessian_lambda_min"], [0.75], rtol=1e-12)
    assert eq["stable"].all() and eq["count"].sum() == 8


@pytest.mark.parametrize("method", ["rk4", "dopri5", "tsit5", "dop853", "euler", "midpoint"])
def test_every_odeint_method_integrates_the_field(method):
    m = make(("softmax", "tanh"), form="port_hamiltonian", d=2, sizes=(5, 3), seed=2)
    z0 = np.random.default_rng(0).normal(size=(4, 2))
    t = np.linspace(0, 1, 5)
    ys = nd.odeint(m.field(), z0, t, method=method, dt=1e-3, rtol=1e-9, atol=1e-11)
    ref_ys = nd.odeint(m.field(), z0, t, method="dop853", rtol=1e-12, atol=1e-13)
    tol = {"euler": 5e-3, "midpoint": 1e-5}.get(method, 1e-7)
    np.testing.assert_allclose(ys, ref_ys, atol=tol)


def test_target_systems_match_twin_and_their_jacobians():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 2))
    mw = nd.hybrid.MultiWell()
    np.testing.assert_allclose(mw(0.0, z), ref.multiwell(z, mw.centres, mw.depths, mw.width, mw.gamma, mw.omega),
                               rtol=1e-12, atol=1e-12)
    ring = nd.hybrid.Ring(dim=3, radius=1.5, rotation=0.7)
    z3 = rng.normal(size=(5, 3))
    np.testing.assert_allclose(ring(0.0, z3), ref.ring(z3, 1.5, 0.7), rtol=1e-12, atol=1e-12)
    duf = nd.hybrid.Duffing()
    np.testing.assert_allclose(duf(0.0, z), ref.duffing(z, -1.0, 1.0, 0.3), rtol=1e-12)
    for sysm, x in ((mw, z), (ring, z3), (duf, z)):
        J = sysm.jacobian(0.0, x)
        for i in range(x.shape[1]):
            e = np.zeros(x.shape[1])
            e[i] = 1e-6
            fd = (sysm(0.0, x + e) - sysm(0.0, x - e)) / 2e-6
            np.testing.assert_allclose(J[:, :, i], fd, rtol=1e-6, atol=1e-7)
    # trajectories: shape, start, and the ring's limit cycle
    X = ring.trajectories(3, np.linspace(0, 30, 4), seed=1)
    assert X.shape == (3, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(X[:, -1], axis=-1), 1.5, atol=1e-6)


def test_fit_reduces_the_loss_and_stays_certified():
    sysm = nd.hybrid.MultiWell()
    t = np.linspace(0, 1.0, 11)
    X = sysm.trajectories(16, t, seed=0)
    m = nd.HybridEBM(2, hidden_sizes=(16, 8), seed=0)
    assert m.fit(X, t, window=5, epochs=15, batch_size=32, lr=2e-2, seed=0, verbose=False) is m
    hist = m.history_
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert m.certificate()["bounded"]
    hub = nd.HybridEBM(2, hidden_sizes=(8, 4), form="port_hamiltonian", seed=0)
    h2 = hub.fit(X, t, window=5, epochs=2, loss="huber", delta=0.1, gradient="adjoint", method="dopri5",
                 verbose=False, return_history=True)
    assert np.isfinite(h2["loss"]).all()


def test_estimator_protocol_and_fit_options():
    """get_params/set_params speak of the constructor's arguments; fit returns the model with its
    history; a validation split, callbacks and the seed behave as for every model."""
    m = nd.HybridEBM(2, hidden_sizes=(6,), activations="tanh", form="port_hamiltonian", seed=3)
    params = m.get_params()
    assert params["hidden_sizes"] == (6,) and params["activations"] == "tanh" and params["seed"] == 3
    twin = type(m)(**params)
    for k in m.params:
        np.testing.assert_array_equal(twin.params[k], m.params[k])
    t = np.linspace(0, 0.6, 7)
    X = nd.hybrid.Duffing().trajectories(6, t, seed=1)
    seen = []
    kw = dict(window=3, epochs=2, batch_size=8, verbose=False)
    assert m.fit(X, t, validation_split=0.25, callbacks=[lambda epoch, logs: seen.append(epoch)], **kw) is m
    assert len(m.history_["val_loss"]) == 2 and seen == [0, 1]
    again = type(m)(**params).fit(X, t, validation_split=0.25, **kw)
    np.testing.assert_array_equal(again.history_["batch_loss"], m.history_["batch_loss"])
    assert m.set_params(hidden_sizes=(4, 3), activations=("tanh", "quadratic")) is m
    assert m.params["hidden2.kernel"].shape == (4, 3) and not hasattr(m, "history_")
    with pytest.raises(ValueError, match="invalid parameter 'width'"):
        m.set_params(width=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such'"):
        m.fit(X, t, no_such=1, **kw)
    J, R = m.port_matrices()  # calling the model evaluates its (unforced) field
    np.testing.assert_allclose(m(X[:, 0]), m.energy_grad(X[:, 0]) @ (J - R).T, rtol=1e-12, atol=1e-12)


def test_forced_fit_and_per_sample_input_rules():
    m = nd.HybridEBM(2, hidden_sizes=(8, 4), form="port_hamiltonian", inputs=1, seed=0)
    t = np.linspace(0, 1, 6)
    rng = np.random.default_rng(0)
    X, U = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 1))
    hist = m.fit(X, t, u=U, window=3, epochs=2, verbose=False, validation_data=(X[:1], t, U[:1])).history_
    assert len(hist["loss"]) == 2 and len(hist["val_loss"]) == 2
    with pytest.raises(ValueError, match=r"u \(n, T, 1\) is needed"):
        m.fit(X, t, window=3, epochs=1, verbose=False)
    # one input signal per sample cannot follow a per-sample adaptive solve's compacted rows
    field = m.field(rng.normal(size=(6, 4, 1)), t)
    with pytest.raises(ValueError, match="u must be one signal for every sample"):
        nd.odeint(field, rng.normal(size=(4, 2)), t)
    ys = nd.odeint(field, rng.normal(size=(4, 2)), t, coupled=True)
    assert ys.shape == (6, 4, 2)


def test_bad_input_names_the_argument():
    m = nd.HybridEBM(2, hidden_sizes=(4, 3), seed=0)
    t = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=r"z has shape \(4, 3\); expected \(batch, 2\)"):
        m.energy(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"trajectories has shape \(2, 5, 3\); expected \(n, T, 2\)"):
        m.fit(np.zeros((2, 5, 3)), t, verbose=False)
    bad = np.zeros((2, 5, 2))
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="trajectories contains NaN or inf"):
        m.fit(bad, t, verbose=False)
    with pytest.raises(ValueError, match="t has 4 times but trajectories has 5 samples"):
        m.fit(np.zeros((2, 5, 2)), t[:4], verbose=False)
    with pytest.raises(ValueError, match="t must be increasing and evenly spaced"):
        m.fit(np.zeros((2, 5, 2)), [0, 0.1, 0.3, 0.4, 0.5], verbose=False)
    with pytest.raises(ValueError, match="activations has 1 entries for 2 hidden layers"):
        nd.HybridEBM(2, hidden_sizes=(4, 3), activations=("tanh",))
    with pytest.raises(ValueError, match="inputs must be 0 for form='gradient'"):
        nd.HybridEBM(2, inputs=2)
    with pytest.raises(ValueError, match=r"activations\[1\]='swish' is not one of"):
        nd.HybridEBM(2, activations=("tanh", "swish"))
    with pytest.raises(ValueError, match="beta must be > 0"):
        nd.HybridEBM(2, beta=0.0)
    with pytest.raises(ValueError, match=r"power must be in \[2, 16\]"):
        nd.HybridEBM(2, power=1.0)
    with pytest.raises(ValueError, match=r"form='hamiltonian' is not one of 'gradient', 'port_hamiltonian'"):
        nd.HybridEBM(2, form="hamiltonian")
    with pytest.raises(ValueError, match="y0 has shape"):
        nd.odeint(m.field(), np.zeros((3, 5)), t)
    with pytest.raises(ValueError, match="u needs form='port_hamiltonian'"):
        m.field(np.zeros((5, 1)), t)
    with pytest.raises(ValueError, match="depths"):
        nd.hybrid.MultiWell(centres=[[0.0, 0.0]], depths=[1.0, 2.0])
    with pytest.raises(ValueError, match="radius must be > 0"):
        nd.hybrid.Ring(radius=-1.0)


def test_save_load_and_repr(tmp_path):
    m = make(("softmax", "relu_power"), form="port_hamiltonian", inputs=1, guarantee=True)
    path = tmp_path / "hybrid.npz"
    m.save(path)
    back = nd.load(path)
    assert isinstance(back, nd.HybridEBM) and back.config == m.config
    for k in m.params:
        np.testing.assert_array_equal(back.params[k], m.params[k])
    z = np.random.default_rng(0).normal(size=(3, 3))
    np.testing.assert_array_equal(back.energy(z), m.energy(z))
    assert repr(m).startswith("HybridEBM(d=3, hidden_sizes=[5, 4], activations=['softmax', 'relu_power']")
    assert "HybridField(dim=3, form='port_hamiltonian'" in repr(m.field())
