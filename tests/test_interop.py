"""Models to and from NIR, ncps and snntorch: round trips and equality with the peers' own
forward passes."""
import numpy as np
import pytest

import neurodyn as nd

torch = pytest.importorskip("torch")
F64 = torch.float64


# ---- ncps -----------------------------------------------------------------------------------------

ncps = pytest.importorskip("ncps")


def _ncps_ltc_outputs(ltc, x, h0):
    out, h = ltc(torch.from_numpy(x), torch.from_numpy(h0))
    return out.detach().numpy(), h.detach().numpy()


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("wiring", ["full", "ncp"])
def test_ltc_ncps_to_neurodyn_to_ncps(implicit, wiring):
    from ncps.torch import LTC
    from ncps.wirings import AutoNCP, FullyConnected

    torch.manual_seed(0)
    w = FullyConnected(6, output_dim=2) if wiring == "full" else AutoNCP(8, 2, seed=1)
    peer = LTC(3, w, implicit_param_constraints=implicit).double()
    if not implicit:
        peer.rnn_cell.apply_weight_constraints()
    rng = np.random.default_rng(0)
    N = peer.state_size
    x, h0 = rng.normal(size=(5, 7, 3)), rng.normal(size=(5, N)) * 0.1
    ref_out, ref_h = _ncps_ltc_outputs(peer, x, h0)
    cell = nd.LTCCell.from_ncps(peer)
    assert cell.dtype == np.float64 and cell.config["units"] == N and cell.config["output_size"] == 2
    np.testing.assert_allclose(cell.forward_sequence(x, h0=h0), ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cell.states(x, h0=h0)[:, -1], ref_h, rtol=1e-12, atol=1e-12)
    back = cell.to_ncps()
    out, h = _ncps_ltc_outputs(back, x, h0)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, ref_h, rtol=1e-12, atol=1e-12)


def test_ltc_timespans_through_the_ncps_cell():
    from ncps.torch import LTC

    torch.manual_seed(1)
    peer = LTC(2, 5).double()
    cell = nd.LTCCell.from_ncps(peer)
    rng = np.random.default_rng(1)
    x, ts = rng.normal(size=(3, 4, 2)), rng.uniform(0.2, 3.0, size=(3, 4))
    h = torch.zeros(3, 5, dtype=F64)
    outs = []
    for t in range(4):  # the cell stepped with per-sample elapsed times of shape (B, 1)
        o, h = peer.rnn_cell(torch.from_numpy(x[:, t]), h, torch.from_numpy(ts[:, t:t + 1]))
        outs.append(o.detach().numpy())
    np.testing.assert_allclose(cell.forward_sequence(x, ts), np.stack(outs, 1), rtol=1e-12, atol=1e-12)


def test_ltc_ncps_refusals():
    from ncps.torch import LTC

    with pytest.raises(ValueError, match="mixed_memory"):
        nd.LTCCell.from_ncps(LTC(2, 4, mixed_memory=True))
    peer = LTC(2, 4, implicit_param_constraints=False)
    with torch.no_grad():
        peer.rnn_cell.w[0, 0] = -0.5
    with pytest.raises(ValueError, match="apply_weight_constraints"):
        nd.LTCCell.from_ncps(peer)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("layers,proj", [(1, None), (2, 3), (0, 2)])
@pytest.mark.parametrize("activation", ["lecun_tanh", "silu"])
def test_cfc_ncps_to_neurodyn_to_ncps(mode, layers, proj, activation):
    from ncps.torch import CfC

    torch.manual_seed(2)
    peer = CfC(3, 5, proj_size=proj, mode=mode, activation=activation, backbone_units=7, backbone_layers=layers,
               backbone_dropout=0.1).double().eval()
    if mode == "pure":
        with torch.no_grad():
            peer.rnn_cell.w_tau.normal_()
            peer.rnn_cell.A.normal_(1.0, 0.3)
    rng = np.random.default_rng(2)
    x, h0 = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 5))
    ref, ref_h = (a.detach().numpy() for a in peer(torch.from_numpy(x), torch.from_numpy(h0)))
    cell = nd.CfC.from_ncps(peer)
    assert cell.config["mode"] == mode and cell.config["backbone_layers"] == layers
    np.testing.assert_allclose(cell.forward_sequence(x, h0=h0), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cell.states(x, h0=h0)[:, -1], ref_h, rtol=1e-12, atol=1e-12)
    back = cell.to_ncps().eval()
    out, h = (a.detach().numpy() for a in back(torch.from_numpy(x), torch.from_numpy(h0)))
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, ref_h, rtol=1e-12, atol=1e-12)


def test_cfc_timespans_through_the_ncps_cell():
    from ncps.torch import CfC

    torch.manual_seed(3)
    peer = CfC(2, 4, mode="pure", backbone_units=6).double()
    cell = nd.CfC.from_ncps(peer)
    rng = np.random.default_rng(3)
    x, ts = rng.normal(size=(3, 5, 2)), rng.uniform(0.2, 3.0, size=(3, 5))
    h, outs = torch.zeros(3, 4, dtype=F64), []
    for t in range(5):
        o, h = peer.rnn_cell(torch.from_numpy(x[:, t]), h, torch.from_numpy(ts[:, t:t + 1]))
        outs.append(o.detach().numpy())
    np.testing.assert_allclose(cell.forward_sequence(x, ts), np.stack(outs, 1), rtol=1e-12, atol=1e-12)


def test_cfc_ncps_refusals():
    from ncps.torch import CfC
    from ncps.wirings import AutoNCP

    with pytest.raises(ValueError, match="wired"):
        nd.CfC.from_ncps(CfC(2, AutoNCP(8, 2)))
    with pytest.raises(ValueError, match="mixed_memory"):
        nd.CfC.from_ncps(CfC(2, 4, mixed_memory=True))
    with pytest.raises(ValueError, match="GELU"):
        nd.CfC.from_ncps(CfC(2, 4, activation="gelu"))
    with pytest.raises(ValueError, match="sigmoid"):
        nd.CfC(2, 3, backbone_activation="sigmoid").to_ncps()


# ---- snntorch -------------------------------------------------------------------------------------

snn = pytest.importorskip("snntorch")


def _run_snntorch(net, x, T):
    """Spikes of every Leaky layer (T, B, n) and the mean readout, stepping with constant input."""
    from snntorch import Leaky

    import snntorch.utils

    layers = list(net)
    snntorch.utils.reset(net)  # the layers with init_hidden=True keep their membrane inside
    mems = [m.init_leaky() if isinstance(m, Leaky) and not m.init_hidden else None for m in layers]
    rec = [[] for m in layers if isinstance(m, Leaky)]
    outs = []
    with torch.no_grad():
        for _ in range(T):
            h, k = x, 0
            for i, m in enumerate(layers):
                if isinstance(m, Leaky):
                    if m.init_hidden:
                        h = m(h)
                    else:
                        h, mems[i] = m(h, mems[i])
                    rec[k].append(h)
                    k += 1
                else:
                    h = m(h.to(m.weight.dtype))  # snntorch's spikes are float32 whatever the net's dtype
            outs.append(h)
    return [torch.stack(r).numpy() for r in rec], torch.stack(outs).mean(0).numpy()


def _snntorch_net(reset, reset_delay, readout=True, per_neuron=False, seed=0):
    from snntorch import surrogate

    torch.manual_seed(seed)
    sizes = [5, 12, 8]

    def leaky(n):
        beta = torch.full((n,), 0.8125, dtype=F64) if per_neuron else torch.tensor(0.8125, dtype=F64)
        thr = torch.full((n,), 0.75, dtype=F64) if per_neuron else torch.tensor(0.75, dtype=F64)
        return snn.Leaky(beta=beta, threshold=thr, reset_mechanism=reset, reset_delay=reset_delay,
                         spike_grad=surrogate.fast_sigmoid(slope=7.0))

    mods = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [torch.nn.Linear(a, b, dtype=F64), leaky(b)]
    if readout:
        mods.append(torch.nn.Linear(sizes[-1], 3, dtype=F64))
    with torch.no_grad():
        for m in mods:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.5)
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("reset,reset_delay", [("subtract", True), ("subtract", False), ("zero", True),
                                               ("zero", False)])
def test_snntorch_to_neurodyn_same_spikes(reset, reset_delay):
    net = _snntorch_net(reset, reset_delay)
    T = 30
    model = nd.SNN.from_snntorch(net, num_timesteps=T)
    c = model.config
    assert (c["beta"], c["threshold"], c["reset"], c["surrogate"], c["slope"]) == (0.8125, 0.75, reset,
                                                                                    "fast_sigmoid", 7.0)
    x = np.random.default_rng(4).uniform(-1, 2, size=(1000, 5))
    spikes, out = _run_snntorch(net, torch.from_numpy(x), T)
    ours = model.spikes(x)
    if reset == "subtract" and not reset_delay:
        # snntorch's immediate subtractive reset is not neurodyn's when a membrane still exceeds
        # the threshold after its reset (it then skips the next reset): compare the rest
        ok = np.all([np.array_equal(a, b) for a, b in zip(spikes, ours)])
        assert ok or sum(int((a != b).sum()) for a, b in zip(spikes, ours)) < 0.01 * sum(a.size for a in ours)
        return
    for a, b in zip(spikes, ours):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model(x), out, rtol=1e-10, atol=1e-12)


def test_neurodyn_to_snntorch_and_back():
    model = nd.SNN(4, 3, hidden_sizes=(9, 6), num_timesteps=12, tau=3.0, threshold=0.5, surrogate="atan", slope=2.5,
                   reset="zero", reset_delay=True, seed=0, dtype=np.float64)
    net = model.to_snntorch()
    x = np.random.default_rng(5).uniform(0, 1, size=(200, 4))
    spikes, out = _run_snntorch(net, torch.from_numpy(x), 12)
    for a, b in zip(spikes, model.spikes(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model(x), out, rtol=1e-10, atol=1e-12)
    back = nd.SNN.from_snntorch(net, num_timesteps=12)
    assert (back.config["surrogate"], back.config["slope"], back.config["reset_delay"]) == ("atan", 2.5, True)
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)


def test_snntorch_gradients_match():
    # same model, same loss: neurodyn's BPTT gradients equal snntorch's autograd ones (float64;
    # snntorch's spike function returns float32, so its gradients carry float32 rounding)
    net = _snntorch_net("subtract", True, seed=1)
    T = 10
    model = nd.SNN.from_snntorch(net, num_timesteps=T)
    rng = np.random.default_rng(6)
    x, y = rng.uniform(0, 1.5, size=(16, 5)), rng.integers(0, 3, size=16)
    _, grads = model.loss_and_grad(x, y)
    from snntorch import Leaky

    xt = torch.from_numpy(x)
    mems = [m.init_leaky() if isinstance(m, Leaky) else None for m in net]
    outs = []
    for _ in range(T):
        h = xt
        for i, m in enumerate(net):
            if isinstance(m, Leaky):
                h, mems[i] = m(h, mems[i])
            else:
                h = m(h.to(F64))
        outs.append(h)
    torch.nn.functional.cross_entropy(torch.stack(outs).mean(0), torch.from_numpy(y)).backward()
    np.testing.assert_allclose(grads["snn_layer_0_dense.kernel"], net[0].weight.grad.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["snn_output.kernel"], net[4].weight.grad.numpy().T, rtol=1e-5, atol=1e-6)


def test_snntorch_refusals():
    net = _snntorch_net("subtract", True)
    with pytest.raises(ValueError, match="alternate"):
        nd.SNN.from_snntorch([net[0], net[0]])
    net[3].reset_mechanism = "none"
    with pytest.raises(ValueError, match="reset_mechanism"):
        nd.SNN.from_snntorch(net)
    odd = _snntorch_net("zero", True)
    with torch.no_grad():
        odd[1].beta.fill_(0.5)
    with pytest.raises(ValueError, match="differ"):
        nd.SNN.from_snntorch(odd)


# ---- NIR ------------------------------------------------------------------------------------------

nir = pytest.importorskip("nir")


def _strip(graph):
    """The same graph without neurodyn's metadata: what a foreign tool writes."""
    nodes = {}
    for k, v in graph.nodes.items():
        v = type(v).from_dict({**v.to_dict(), "metadata": {}}) if hasattr(v, "to_dict") else v
        nodes[k] = v
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata={})


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neurodyn_to_nir_to_neurodyn_is_the_identity(reset, dtype, tmp_path):
    model = nd.SNN(6, 3, hidden_sizes=(10, 7), num_timesteps=9, tau=2.5, threshold=0.8, reset=reset,
                   encoding="poisson", seed=0, dtype=dtype)
    graph = model.to_nir()
    assert [type(graph.nodes[k]).__name__ for k in ("snn_layer_0_dense", "snn_layer_0_dense_neurons", "output")] == \
           ["Affine", "LIF", "Output"]
    lif = graph.nodes["snn_layer_0_dense_neurons"]
    beta = np.exp(-1 / 2.5)
    np.testing.assert_allclose(lif.tau, 1e-4 / (1 - beta), rtol=1e-15)
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0, rtol=1e-15)
    for g in (graph, nir.read(_write(graph, tmp_path / "m.nir"))):
        back = nd.from_nir(g)
        assert type(back) is nd.SNN and back.config == model.config
        for k, v in model.params.items():
            np.testing.assert_array_equal(back.params[k], v)


def _write(graph, path):
    nir.write(path, graph)
    return path


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_foreign_graph_of_an_snn_gives_the_same_spikes(reset):
    model = nd.SNN(5, 4, hidden_sizes=(11, 6), num_timesteps=20, tau=4.0, threshold=1.0, reset=reset, seed=1,
                   dtype=np.float64)
    graph = _strip(model.to_nir())
    if reset == "subtract":  # NIR alone says "reset to v_reset = 0"
        back = nd.from_nir(graph, num_timesteps=20)
        assert back.config["reset"] == "zero"
        return
    back = nd.from_nir(graph, num_timesteps=20)
    assert back.config["reset"] == "zero" and abs(back.config["beta"] - np.exp(-0.25)) < 1e-15
    x = np.random.default_rng(7).uniform(0, 3, size=(500, 5))
    for a, b in zip(model.spikes(x), back.spikes(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(back(x), model(x), rtol=1e-12)


def test_converted_snn_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    for out in (3, None):
        ann = nd.ANN(4, hidden_sizes=(8, 6), output_size=out, seed=0, dtype=np.float64)
        conv = nd.ann2snn(ann, rng.uniform(0, 1, size=(50, 4)), num_timesteps=40)
        graph = conv.to_nir()
        assert isinstance(graph.nodes["dense_0_neurons"], nir.IF)
        back = nd.from_nir(nir.read(_write(graph, tmp_path / "c.nir")))
        assert type(back) is nd.ConvertedSNN and back.config == conv.config
        x = rng.uniform(0, 1, size=(20, 4))
        np.testing.assert_array_equal(back(x), conv(x))


def test_snntorch_to_nir_to_neurodyn_same_spikes():
    # snntorch's exporter writes v_reset = 0 whatever the reset: a reset-to-zero net is what the
    # graph states, and then every spike agrees (1,000 random inputs)
    pytest.importorskip("nirtorch")
    from snntorch.export_nir import export_to_nir

    # snntorch runs float32 (its spikes are float32): export the float32 net, then compare in
    # float64 (the same float32 numbers) so that no spike hangs on a rounding difference
    net = _snntorch_net("zero", True, readout=False, per_neuron=True, seed=3).float()
    lifs = [m for m in net if isinstance(m, snn.Leaky)]
    for m in lifs:
        m.init_hidden = True
    graph = export_to_nir(net, torch.zeros(5))
    for m in lifs:
        m.init_hidden = False
    assert graph.nodes["1"].tau.dtype == np.float32
    net = net.double()
    T = 25
    model = nd.from_nir(graph, num_timesteps=T, dtype=np.float64)
    assert model.config["reset"] == "zero" and model.config["beta"] == 0.8125
    x = np.random.default_rng(9).uniform(-1, 2, size=(1000, 5))
    spikes, _ = _run_snntorch(net, torch.from_numpy(x), T)
    ours = model.spikes(x)
    assert sum(s.sum() for s in ours) > 1000  # the layers do fire
    for a, b in zip(spikes, ours):
        np.testing.assert_array_equal(a, b)


def test_nir_refusals():
    W = np.ones((3, 2))
    lif = nir.LIF(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.full(3, 0.1), v_threshold=np.ones(3))
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Affine(weight=W, bias=np.zeros(3)), lif,
                               nir.Output(output_type=np.array([3])))
    with pytest.raises(ValueError, match="v_leak"):
        nd.from_nir(g)
    conv = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Affine(weight=W, bias=np.zeros(3)),
                                  nir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3),
                                              v_leak=np.zeros(3), v_threshold=np.ones(3)),
                                  nir.Output(output_type=np.array([3])))
    with pytest.raises(ValueError, match="CubaLIF"):
        nd.from_nir(conv)
    with pytest.raises(TypeError, match="SNN or a ConvertedSNN"):
        nd.interop.to_nir(nd.ANN(2, hidden_sizes=(3,)))


def test_foreign_if_graph_is_an_snn_without_leak():
    dt = 1e-3
    W1, W2 = np.array([[0.6, 0.2], [0.1, 0.9], [0.4, 0.4]]), np.array([[1.0, -0.5, 0.7]])
    nodes = [nir.Input(input_type=np.array([2])), nir.Affine(weight=W1, bias=np.zeros(3)),
             nir.IF(r=np.full(3, 2.0 / dt), v_threshold=np.ones(3)), nir.Affine(weight=W2, bias=np.zeros(1)),
             nir.Output(output_type=np.array([1]))]
    model = nd.from_nir(nir.NIRGraph.from_list(*nodes), dt=dt, num_timesteps=10, dtype=np.float64)
    c = model.config
    assert (c["beta"], c["reset"], c["threshold"]) == (1.0, "zero", 1.0)
    # the input gain r dt = 2 is folded into the first layer's weights
    np.testing.assert_allclose(model.params["snn_layer_0_dense.kernel"], 2 * W1.T)
    x = np.array([[0.3, 0.1]])
    cur = 2 * W1 @ x[0]
    v, s = np.zeros(3), []
    for _ in range(10):
        v = v + cur
        spike = (v > 1).astype(float)
        v = v * (1 - spike)
        s.append(spike)
    np.testing.assert_array_equal(model.spikes(x)[0][:, 0], np.array(s))
