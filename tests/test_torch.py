"""neurodyn.torch: every wrapper against torch.autograd.gradcheck (float64) and against the
native neurodyn call it wraps (outputs and gradients)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import neurodyn as nd  # noqa: E402
import neurodyn.torch as ndt  # noqa: E402
from neurodyn import _core  # noqa: E402

F64 = torch.float64


def t64(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def gradcheck(fn, inputs, **kw):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, **kw)


# ---- LIF -----------------------------------------------------------------------------------------

LIF_CASES = [dict(beta=0.8, reset="subtract"), dict(tau=3.0, reset="zero"),
             dict(beta=0.7, reset="subtract", reset_delay=True), dict(beta=0.9, reset="zero", reset_delay=True)]


@pytest.mark.parametrize("opts", LIF_CASES)
@pytest.mark.parametrize("surrogate", ["sigmoid", "fast_sigmoid", "atan"])
def test_lif_gradcheck_smooth_model(opts, surrogate):
    rng = np.random.default_rng(0)
    cur = t64(rng.normal(0.6, 0.8, size=(6, 2, 3)))
    v0 = t64(rng.normal(0.0, 0.3, size=(2, 3)))
    kw = dict(opts, surrogate=surrogate, slope=2.0, smooth=True, detach_reset=False)
    gradcheck(lambda c, v: ndt.lif(c, v, membrane=True, **kw), (cur, v0))
    gradcheck(lambda c, v: ndt.lif_rate(c, v, **kw), (cur, v0))
    const = t64(rng.normal(0.6, 0.8, size=(2, 3)))
    gradcheck(lambda c: ndt.lif(c, num_steps=5, **kw), (const,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("opts", LIF_CASES)
def test_lif_matches_native(dtype, opts):
    rng = np.random.default_rng(1)
    cur_np = rng.normal(0.5, 1.0, size=(7, 3, 4)).astype(dtype == F64 and np.float64 or np.float32)
    v0_np = rng.normal(0, 0.2, size=(3, 4)).astype(cur_np.dtype)
    cur = torch.from_numpy(cur_np.copy()).requires_grad_()
    v0 = torch.from_numpy(v0_np.copy()).requires_grad_()
    s, m = ndt.lif(cur, v0, membrane=True, **opts)
    s_ref, m_ref = nd.lif_run(cur_np, v0=v0_np, **opts)
    assert s.dtype == dtype
    np.testing.assert_array_equal(s.detach().numpy(), s_ref)
    np.testing.assert_array_equal(m.detach().numpy(), m_ref)
    ds = rng.normal(size=s.shape).astype(cur_np.dtype)
    dm = rng.normal(size=s.shape).astype(cur_np.dtype)
    (s * torch.from_numpy(ds)).sum().add((m * torch.from_numpy(dm)).sum()).backward()
    dc_ref, dv_ref = nd.lif_backward(cur_np, ds, dm, v0=v0_np, **opts)
    np.testing.assert_array_equal(cur.grad.numpy(), dc_ref)
    np.testing.assert_array_equal(v0.grad.numpy(), dv_ref)
    # the rate and its gradient
    cur.grad = None
    r = ndt.lif_rate(cur, **opts)
    np.testing.assert_array_equal(r.detach().numpy(), nd.lif_rate(cur_np, **opts))
    dr = rng.normal(size=r.shape).astype(cur_np.dtype)
    (r * torch.from_numpy(dr)).sum().backward()
    dc_rate, _ = nd.lif_backward(cur_np, dr / cur_np.shape[0], **opts)
    np.testing.assert_allclose(cur.grad.numpy(), dc_rate, rtol=1e-6)


def test_lif_constant_current_equals_repeated():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.uniform(0, 1.5, size=(3, 5)), requires_grad=True)
    s = ndt.lif(x, num_steps=8, beta=0.8)
    xr = x.detach().clone().requires_grad_()
    s_rep = ndt.lif(xr.unsqueeze(0).expand(8, 3, 5), beta=0.8)
    assert torch.equal(s, s_rep)
    w = torch.randn(8, 3, 5, dtype=F64)
    (s * w).sum().backward()
    (s_rep * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_lif_module_and_no_grad():
    layer = ndt.LIF(beta=0.9, output="rate")
    assert "beta=0.9" in repr(layer)
    cur = torch.rand(10, 2, 4, requires_grad=True)
    with torch.no_grad():
        r = layer(cur)
    assert not r.requires_grad and r.grad_fn is None
    r2 = layer(cur)
    assert r2.requires_grad
    assert torch.equal(r, r2.detach())
    with pytest.raises(ValueError, match="output="):
        ndt.LIF(output="volts")
    with pytest.raises(ValueError, match="threshold"):
        ndt.LIF(threshold=-1.0)


def test_lif_matches_snntorch_leaky():
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate

    rng = np.random.default_rng(3)
    T, B, n = 20, 4, 6
    cur_np = rng.normal(0.4, 0.6, size=(T, B, n))
    beta = 0.875  # exact in float32, as snntorch stores it
    leaky = snn.Leaky(beta=beta, threshold=1.0, spike_grad=surrogate.sigmoid(slope=10), reset_mechanism="subtract",
                      reset_delay=True)
    cur_peer = torch.tensor(cur_np, requires_grad=True)
    mem = leaky.init_leaky()
    spikes = []
    for t in range(T):
        s, mem = leaky(cur_peer[t], mem)
        spikes.append(s)
    sp = torch.stack(spikes)
    cur = torch.tensor(cur_np, requires_grad=True)
    s = ndt.lif(cur, beta=beta, reset_delay=True, surrogate="sigmoid", slope=10.0)
    assert torch.equal(s.detach(), sp.detach().to(F64))
    w = torch.tensor(rng.normal(size=(T, B, n)))
    (sp * w).sum().backward()
    (s * w).sum().backward()
    # snntorch's spike function returns float32 spikes, so its gradient passes through float32
    np.testing.assert_allclose(cur.grad.numpy(), cur_peer.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---- Hopfield ------------------------------------------------------------------------------------

def test_hopfield_gradcheck():
    rng = np.random.default_rng(4)
    q, Y, V = t64(rng.normal(size=(3, 4))), t64(rng.normal(size=(5, 4))), t64(rng.normal(size=(5, 2)))
    beta = t64(0.7)
    gradcheck(lambda q, Y, V, b: ndt.hopfield_retrieve(q, Y, b, V, return_lse=True), (q, Y, V, beta))
    gradcheck(lambda q, Y: ndt.hopfield_retrieve(q, Y, 1.3), (q, Y))
    gradcheck(lambda q, Y, b: ndt.hopfield_retrieve(q[0], Y, b), (q, Y, beta))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hopfield_matches_native(dtype):
    rng = np.random.default_rng(5)
    q, Y, V = (rng.normal(size=s).astype(dtype) for s in ((6, 8), (20, 8), (20, 3)))
    out = ndt.hopfield_retrieve(torch.from_numpy(q), torch.from_numpy(Y), 2.0, torch.from_numpy(V))
    np.testing.assert_array_equal(out.numpy(), nd.hopfield_retrieve(q, Y, 2.0, V))
    qt, Yt = torch.from_numpy(q).requires_grad_(), torch.from_numpy(Y).requires_grad_()
    out = ndt.hopfield_retrieve(qt, Yt, 2.0)
    dout = rng.normal(size=out.shape).astype(dtype)
    (out * torch.from_numpy(dout)).sum().backward()
    o, lse = _core.hopfield_forward(q, Y, None, 2.0)
    dq, dY, _, _ = _core.hopfield_backward(q, Y, None, 2.0, o, lse, dout)
    np.testing.assert_array_equal(qt.grad.numpy(), dq)
    np.testing.assert_array_equal(Yt.grad.numpy(), dY)


def test_hopfield_module_round_trip():
    model = nd.Hopfield(6, num_patterns=10, pattern_dim=4, beta=1.5, seed=0, dtype=np.float64)
    mod = ndt.Hopfield.from_model(model)
    x = np.random.default_rng(6).normal(size=(3, 6))
    np.testing.assert_allclose(mod(torch.from_numpy(x)).detach().numpy(), model(x), rtol=1e-12, atol=1e-13)
    back = mod.to_model()
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)


# ---- odeint with an MLP field --------------------------------------------------------------------

def _mlp(rng, n=3, h=5):
    return [t64(rng.normal(0, 0.5, size=(n, h))), t64(rng.normal(0, 0.5, size=(h, n)))], \
           [t64(rng.normal(0, 0.1, size=h)), t64(rng.normal(0, 0.1, size=n))]


@pytest.mark.parametrize("method,gradient", [("rk4", "backprop"), ("euler", "backprop"), ("dopri5", "backprop"),
                                             ("rk4", "adjoint")])
def test_odeint_mlp_gradcheck(method, gradient):
    rng = np.random.default_rng(7)
    W, b = _mlp(rng)
    y0 = t64(rng.normal(size=(2, 3)))
    t = [0.0, 0.3, 0.7]
    kw = dict(method=method, dt=0.05 if method != "dopri5" else None, rtol=1e-10, atol=1e-12,
              gradient=gradient, activation="tanh")
    tol = dict(atol=1e-5, rtol=1e-4) if gradient == "adjoint" else {}
    f = lambda y0, w1, w2, b1, b2: ndt.odeint_mlp(y0, t, [w1, w2], [b1, b2], **kw)  # noqa: E731
    if tol:
        assert torch.autograd.gradcheck(f, (y0, *W, *b), eps=1e-6, **tol)
    else:
        gradcheck(f, (y0, *W, *b))


def test_odeint_mlp_matches_native_and_neural_ode():
    model = nd.NeuralODE(3, hidden_size=3, num_steps=5, step_size=0.1, solver="rk4", seed=0, dtype=np.float64)
    field = model.dynamics()
    y0 = np.random.default_rng(8).normal(size=(4, 3))
    t = np.linspace(0, 0.5, 4)
    ref = nd.odeint(field, y0, t, method="rk4", dt=0.1)
    W = [torch.from_numpy(w.copy()) for w in field.weights]
    b = [torch.from_numpy(v.copy()) for v in field.biases]
    ys = ndt.odeint_mlp(torch.from_numpy(y0), t, W, b, activation="silu", final_activation="tanh", method="rk4",
                        dt=0.1)
    np.testing.assert_array_equal(ys.numpy(), ref)
    # gradients against NeuralODE.loss_and_grad's (mse at the end time, after the layer norm of gamma 1 beta 0)
    y = np.random.default_rng(9).normal(size=(4, 3))
    _, grads = model.loss_and_grad(y0, y)
    W = [w.requires_grad_() for w in W]
    b = [v.requires_grad_() for v in b]
    out = ndt.odeint_mlp(torch.from_numpy(y0), [0.0, 0.5], W, b, activation="silu", final_activation="tanh",
                         method="rk4", dt=0.1)[-1]
    z = torch.nn.functional.layer_norm(out, (3,), eps=_core.DEFAULTS["layernorm_forward"]["eps"])
    torch.nn.functional.mse_loss(z, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(W[0].grad.numpy(), grads["dynamics_dense1.kernel"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b[1].grad.numpy(), grads["dynamics_dense2.bias"], rtol=1e-10, atol=1e-12)


def test_mlpode_module_trains():
    torch.manual_seed(0)
    block = ndt.MLPODE([2, 8, 2], method="rk4", dt=0.1, gradient="adjoint", dtype=F64)
    y0 = torch.randn(16, 2, dtype=F64)
    target = y0 * 0.5
    opt = torch.optim.Adam(block.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(block(y0, [0.0, 1.0])[-1], target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- liquid cells --------------------------------------------------------------------------------

def test_ltc_cell_gradcheck():
    rng = np.random.default_rng(10)
    model = nd.LTCCell(2, 3, seed=0, dtype=np.float64)
    params = {n: t64(v) for n, v in zip(ndt._LTC_CELL, model._effective())}
    x, h0 = t64(rng.normal(size=(2, 3, 2))), t64(rng.normal(size=(2, 3)) * 0.1)
    ts = torch.tensor(rng.uniform(0.5, 1.5, size=(2, 3)))
    names = list(params)

    def f(x, h0, *ps):
        return ndt.ltc_cell(x, dict(zip(names, ps)), ts, h0, ode_unfolds=3)

    gradcheck(f, (x, h0, *params.values()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ltc_cell_module_matches_native(dtype):
    model = nd.LTCCell(3, 5, output_size=2, seed=1, dtype=dtype)
    mod = ndt.LTCCell.from_model(model)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 6, 3)).astype(dtype)
    ts = rng.uniform(0.5, 2, size=(4, 6)).astype(dtype)
    out, h_last = mod(torch.from_numpy(x), torch.from_numpy(ts))
    np.testing.assert_allclose(out.detach().numpy(), model.forward_sequence(x, ts), rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(h_last.detach().numpy(), model.states(x, ts)[:, -1], rtol=1e-5 if dtype == np.float32 else 1e-12)
    y = rng.normal(size=(4, 6, 2)).astype(dtype)
    _, grads = model.loss_and_grad(x, y, timespans=ts)
    torch.nn.functional.mse_loss(out, torch.from_numpy(y)).backward()
    for name, g in grads.items():
        np.testing.assert_allclose(mod.p(name).grad.numpy(), g, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-6 if dtype == np.float32 else 1e-13, err_msg=name)
    back = mod.to_model()
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)


@pytest.mark.parametrize("mode", list(nd.liquid.CFC_MODES))
@pytest.mark.parametrize("layers", [0, 2])
def test_cfc_gradcheck(mode, layers):
    rng = np.random.default_rng(12)
    model = nd.CfC(2, 3, backbone_units=4, backbone_layers=layers, mode=mode, seed=0, dtype=np.float64)
    cell = [t64(v) for k, v in model.params.items()]
    x, h0 = t64(rng.normal(size=(2, 4, 2))), t64(rng.normal(size=(2, 3)))
    ts = torch.tensor(rng.uniform(0.5, 1.5, size=(2, 4)))

    def f(x, h0, *ps):
        return ndt.cfc(x, ps, 3, ts, h0, mode=mode)

    gradcheck(f, (x, h0, *cell))


@pytest.mark.parametrize("mode", list(nd.liquid.CFC_MODES))
def test_cfc_module_matches_native(mode):
    model = nd.CfC(3, 4, backbone_units=6, backbone_layers=1, mode=mode, output_size=2, seed=2, dtype=np.float64)
    mod = ndt.CfC.from_model(model)
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3, 5, 3))
    out, _ = mod(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), model.forward_sequence(x), rtol=1e-12, atol=1e-14)
    y = rng.normal(size=(3, 5, 2))
    _, grads = model.loss_and_grad(x, y)
    torch.nn.functional.mse_loss(out, torch.from_numpy(y)).backward()
    for name, g in grads.items():
        np.testing.assert_allclose(mod.p(name).grad.numpy(), g, rtol=1e-10, atol=1e-13, err_msg=name)


# ---- the Liquid scan -----------------------------------------------------------------------------

@pytest.mark.parametrize("solver,steps", [("exact", 1), ("euler", 6), ("rk4", 4), ("dopri5", 1)])
def test_ltc_scan_gradcheck(solver, steps):
    rng = np.random.default_rng(14)
    a, tau = t64(rng.normal(size=(2, 4, 3))), t64(rng.uniform(0.5, 2, size=(2, 4, 3)))
    h0 = t64(rng.normal(size=(2, 3)))
    kw = dict(solver=solver, steps=steps, rtol=1e-10, atol=1e-12, max_steps=10_000)
    gradcheck(lambda a, tau, h0: ndt.ltc_scan(a, tau, h0, **kw), (a, tau, h0))


def test_ltc_scan_and_layer_match_native():
    model = nd.Liquid(4, hidden_size=4, num_layers=1, dropout=0.0, seed=0, dtype=np.float64)
    x = np.random.default_rng(15).normal(size=(2, 5, 4))
    layer = ndt.LiquidLayer.from_model(model, 1)
    u = layer(torch.from_numpy(x))
    ref = model.forward_sequence(x)  # final_norm(u)
    z = torch.nn.functional.layer_norm(u, (4,), eps=_core.DEFAULTS["layernorm_forward"]["eps"])
    np.testing.assert_allclose(z.detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    a, tau = np.abs(x) + 0.1, np.abs(x) + 0.5
    np.testing.assert_array_equal(ndt.ltc_scan(torch.from_numpy(a), torch.from_numpy(tau)).numpy(),
                                  nd.ltc_scan(a, tau))


# ---- conventions ---------------------------------------------------------------------------------

def test_zero_copy_in_and_out():
    cur = torch.rand(5, 2, 3, dtype=F64)
    assert np.shares_memory(ndt._array(cur, "x"), cur.numpy())
    s = ndt.lif(cur, beta=0.5)
    assert s.is_contiguous() and s.dtype == F64


def test_errors():
    cur = torch.rand(5, 2, 3)
    with pytest.raises(TypeError, match="float32 or torch.float64"):
        ndt.lif(cur.to(torch.int32), beta=0.5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        ndt.lif(np.zeros((5, 2, 3)), beta=0.5)
    with pytest.raises(TypeError, match="dtype"):
        ndt.hopfield_retrieve(torch.rand(2, 3), torch.rand(4, 3, dtype=F64))
    with pytest.raises(ValueError, match="num_steps"):
        ndt.lif(torch.rand(2, 3), beta=0.5)
    with pytest.raises(ValueError, match="timespans"):
        ndt.ltc_scan  # noqa: B018
        ndt.cfc(torch.rand(1, 2, 2), [torch.rand(5, 3), torch.rand(3)] * 4, 3, torch.ones(1, 2, requires_grad=True))


def test_cuda_tensors_are_refused_with_advice():
    meta = torch.empty(3, 2, 4, device="meta")
    with pytest.raises(ValueError, match=r"\.cpu\(\)"):
        ndt.lif(meta, beta=0.5)


def test_import_neurodyn_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, neurodyn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_docstring_examples():
    import doctest

    assert doctest.testmod(ndt).failed == 0


@pytest.mark.parametrize("density", [0.05, 0.6])
def test_spike_linear(density):
    rng = np.random.default_rng(20)
    x = torch.tensor((rng.random((4, 3, 7)) < density).astype(np.float64), requires_grad=True)
    W, b = t64(rng.normal(size=(5, 7))), t64(rng.normal(size=5))
    gradcheck(lambda W, b: ndt.spike_linear(x.detach(), W, b), (W, b))
    y = ndt.spike_linear(x, W, b)
    ref = torch.nn.functional.linear(x, W, b)
    np.testing.assert_allclose(y.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    dy = torch.tensor(rng.normal(size=y.shape))
    gx, gW, gb = torch.autograd.grad(y, (x, W, b), dy)
    rx, rW, rb = torch.autograd.grad(ref, (x, W, b), dy)
    for a, r in ((gx, rx), (gW, rW), (gb, rb)):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-12, atol=1e-12)
    layer = ndt.SpikeLinear(7, 5, dtype=F64)
    np.testing.assert_allclose(layer(x.detach()).detach().numpy(),
                               torch.nn.functional.linear(x, layer.weight, layer.bias).detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        ndt.spike_linear(x.detach() * 0.5 + 0.25, W, b)


def test_every_wrapper_under_no_grad_keeps_no_graph():
    rng = np.random.default_rng(30)
    x = torch.tensor(rng.normal(size=(2, 3, 2)), requires_grad=True)
    cfc_model = nd.CfC(2, 3, backbone_units=4, seed=0, dtype=np.float64)
    ltc_model = nd.LTCCell(2, 3, seed=0, dtype=np.float64)
    a = torch.tensor(rng.normal(size=(2, 3, 3)), requires_grad=True)
    W = [torch.zeros(3, 3, dtype=F64, requires_grad=True)]
    calls = [
        lambda: ndt.lif(a, beta=0.5),
        lambda: ndt.lif_rate(a, beta=0.5),
        lambda: ndt.hopfield_retrieve(a[0], a[1], 1.0),
        lambda: ndt.odeint_mlp(a[0], [0.0, 0.1], W, method="euler", dt=0.1),
        lambda: ndt.ltc_cell(x, {n: torch.from_numpy(v) for n, v in zip(ndt._LTC_CELL, ltc_model._effective())}),
        lambda: ndt.cfc(x, [torch.from_numpy(v) for v in cfc_model.params.values()], 3),
        lambda: ndt.ltc_scan(a, a.detach().abs() + 0.5),
        lambda: ndt.spike_linear((a > 0).double(), W[0]),
    ]
    for call in calls:
        with torch.no_grad():
            out = call()
        assert out.grad_fn is None and not out.requires_grad
        with_grad = call()
        assert with_grad.requires_grad or call is calls[-1]
        np.testing.assert_array_equal(out.numpy(), with_grad.detach().numpy())


def test_nd_torch_is_loaded_on_first_use():
    assert nd.torch is ndt
