"""Spiking-network benchmark cases: neurodyn against snntorch's ``Leaky`` on PyTorch CPU.

(1) ``snn_net``: a 64-256-128-10 SNN, T=25, B=128, float32. neurodyn: ``nd.SNN(64, 10,
    hidden_sizes=(256, 128), num_timesteps=25, tau=2.0)``, ``net(x)`` and
    ``net.loss_and_grad(x, y)`` (cross-entropy on integer labels); the peers get neurodyn's
    initial parameters, compute the first layer's current once (constant input) and read out
    ``nn.Linear`` on the mean spikes, ``F.cross_entropy``. Every peer runs the neuron neurodyn
    runs, so that the gradients are the same function (checked by the harness):

    * ``snn_net_*``: snntorch's stock ``Leaky(beta=exp(-1/2), threshold=1,
      reset_mechanism="subtract", spike_grad=surrogate.sigmoid(slope=10))``, which applies a
      spike's reset at the next step and detaches it, against ``nd.SNN(reset_delay=True)``;
    * ``snn_net_*_reset_now``: SpikingJelly's ``LIFNode`` set to neurodyn's default neuron (the
      reset in the step that spikes, detached, the sigmoid surrogate of slope 10), against
      ``nd.SNN()``.

    Each also under ``torch.compile`` with ``ND_BENCH_COMPILE_SNN=1`` (left out by default:
    compiling the unrolled steps takes many minutes on a shared 2-core machine).

(2) ``snn_layer``: one Linear(n, n) + LIF layer, n=4096, B=16, T=500, float32, input spikes
    X ~ Bernoulli(0.05) of shape (T, B, n), in two rows: ``*_same_algorithm`` (neurodyn's dense
    GEMMs, ``spikes=False``, the peer's algorithm) and ``*_end_to_end`` (neurodyn's
    spike-driven products). Both sides compute the currents over the T*B rows,
    run the LIF over T, and use the loss mse(mean_t S, target). neurodyn: the event-driven
    ``nd.nn.dense(spikes=True)`` (each current adds the weight rows its input spikes select) +
    ``nd.lif_rate(reset_delay=True)`` (the rates without a spike raster) + ``nd.lif_backward(out=cur)``
    (the gradient over the currents) + ``nd.nn.dense_grad(spikes=True, need_dx=False)`` for
    dW = X^T dcur, event by event. snntorch: ``nn.Linear`` on the
    (T*B, n) view + stock ``Leaky`` (``reset_delay=True``) stepped over ``cur.unbind(0)`` +
    ``backward()`` (indexing ``cur[t]`` instead makes autograd build T full-size gradients of
    the current tensor: 96 s instead of ~15 s per training step here).
    The two are the same model to the bit (delayed, detached reset).

Peak memory (training step, the peak falls in the backward pass), each side in a fresh
subprocess (``python bench/snn_cases.py --memory PROBLEM SIDE``) after one warm-up step:

* RSS: ``malloc_trim(0)``, then the peak resident set size is reset (``5`` written to
  ``/proc/self/clear_refs``) and the step runs; reported is VmHWM - VmRSS before the step. The
  same method for both sides.
* allocator: neurodyn with ``tracemalloc`` (NumPy's and the binding's allocations are traced);
  torch with ``torch.profiler(profile_memory=True)``: the running sum of its allocation events
  (size > 0 allocate, < 0 free) in time order; peak above the start.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np

from harness import Case, Side, Skip, Target, TimerConfig, floors, measure
from neural_ode_cases import (grad_probe, import_peer, markdown_extras, nn_extras, out_probe, quickify,  # noqa: F401
                              record_extras, summarize, torch_compile, torch_mod)

HERE = os.path.dirname(os.path.abspath(__file__))
BETA = math.exp(-1.0 / 2.0)
CMP_RTOL, CMP_ATOL = 1e-4, 1e-5
# torch.compile peers of the SNN classifier: ND_BENCH_COMPILE_SNN=1 (see net_sides)
COMPILE_SNN = os.environ.get("ND_BENCH_COMPILE_SNN") == "1"


# --------------------------------------------------------------------------------------
# sizes


def net_sizes(quick):
    return dict(B=8, I=12, H=(16, 8), O=4, T=5) if quick else dict(B=128, I=64, H=(256, 128), O=10, T=25)


def layer_sizes(quick):
    return dict(n=64, B=4, T=20) if quick else dict(n=4096, B=16, T=500)


# --------------------------------------------------------------------------------------
# (1) the SNN classifier


def net_problem(sz, seed=3, high=1.0):
    """Constant inputs x ~ U(0, high). With high = 1 the hidden layers fire at 5.3% and 0.9%
    (full sizes; the cost of either side does not depend on the rates), no membrane exceeds two
    thresholds, so snntorch's reset_delay=False rule and neurodyn's give the same spikes (with
    U(0, 2): 19% and 9%, but 628 of 409,600 second-layer spikes differ), and no membrane goes
    below -8.8 (see ``nan_check``)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, high, size=(sz["B"], sz["I"])).astype(np.float32)
    y = rng.integers(0, sz["O"], size=sz["B"]).astype(np.int64)
    return x, y


def make_nd_net(sz, reset_delay=False):
    import neurodyn as nd

    return nd.SNN(sz["I"], sz["O"], hidden_sizes=sz["H"], num_timesteps=sz["T"], tau=2.0, seed=2024,
                  reset_delay=reset_delay)


def net_names(sz):
    names = []
    for i in range(len(sz["H"])):
        names += [f"snn_layer_{i}_dense.kernel", f"snn_layer_{i}_dense.bias"]
    return names + ["snn_output.kernel", "snn_output.bias"]


def _snntorch_net(sz, params, reset_delay):
    torch = torch_mod()
    snn = import_peer("snntorch")
    from snntorch import surrogate

    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [sz["I"]] + list(sz["H"])
            self.fcs = nn.ModuleList([nn.Linear(widths[i], widths[i + 1]) for i in range(len(sz["H"]))])
            self.lifs = nn.ModuleList([snn.Leaky(beta=BETA, threshold=1.0, spike_grad=surrogate.sigmoid(slope=10),
                                                 reset_mechanism="subtract", reset_delay=reset_delay)
                                       for _ in sz["H"]])
            self.out = nn.Linear(widths[-1], sz["O"])
            copy_net_params(torch, self, params)

        def forward(self, x, record=None):
            cur0 = self.fcs[0](x)  # constant input: the first current once
            mems = [lif.init_leaky() for lif in self.lifs]
            out_spikes = []
            for _ in range(sz["T"]):
                s, mems[0] = self.lifs[0](cur0, mems[0])
                if record is not None:
                    record[0].append(s)
                for i in range(1, len(self.lifs)):
                    s, mems[i] = self.lifs[i](self.fcs[i](s), mems[i])
                    if record is not None:
                        record[i].append(s)
                out_spikes.append(s)
            return self.out(torch.stack(out_spikes).mean(0))

        grads = net_grads

    return torch, F, Net()


def _spikingjelly_net(sz, params):
    """The same network with SpikingJelly's LIFNode set to neurodyn's default neuron: soft reset
    (v_reset=None: V <- V - S) in the step that spikes, detached (detach_reset=True),
    decay_input=False with tau = 1 / (1 - beta) (H = V + (X - V) / tau = beta V + X), the
    sigmoid surrogate of slope 10 (Sigmoid(alpha=10)); multi-step mode over (T, B, n)."""
    torch = torch_mod()
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError as exc:
        raise Skip(f"spikingjelly not importable: {exc}") from None
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [sz["I"]] + list(sz["H"])
            self.fcs = nn.ModuleList([nn.Linear(widths[i], widths[i + 1]) for i in range(len(sz["H"]))])
            self.lifs = nn.ModuleList([neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=1.0,
                                                      v_reset=None, surrogate_function=surrogate.Sigmoid(alpha=10.0),
                                                      detach_reset=True, step_mode="m")
                                       for _ in sz["H"]])
            self.out = nn.Linear(widths[-1], sz["O"])
            copy_net_params(torch, self, params)

        def forward(self, x, record=None):
            functional.reset_net(self)
            T = sz["T"]
            s = self.lifs[0](self.fcs[0](x).expand(T, -1, -1))  # constant input: the first current once
            if record is not None:
                record[0].append(s)
            for i in range(1, len(self.lifs)):
                s = self.lifs[i](self.fcs[i](s))  # one product over the (T, B, n) spikes
                if record is not None:
                    record[i].append(s)
            return self.out(s.mean(0))

        grads = net_grads

    return torch, F, Net()


def copy_net_params(torch, model, params):
    """neurodyn's parameters into a torch twin with .fcs and .out Linear layers."""
    with torch.no_grad():
        for i, fc in enumerate(model.fcs):
            fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(params[f"snn_layer_{i}_dense.kernel"].T)))
            fc.bias.copy_(torch.from_numpy(params[f"snn_layer_{i}_dense.bias"]))
        model.out.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["snn_output.kernel"].T)))
        model.out.bias.copy_(torch.from_numpy(params["snn_output.bias"]))


def net_grads(model):
    """A torch twin's gradients under neurodyn's names (kernels back to [in, out])."""
    g = {}
    for i, fc in enumerate(model.fcs):
        g[f"snn_layer_{i}_dense.kernel"] = fc.weight.grad.numpy().T
        g[f"snn_layer_{i}_dense.bias"] = fc.bias.grad.numpy()
    g["snn_output.kernel"] = model.out.weight.grad.numpy().T
    g["snn_output.bias"] = model.out.bias.grad.numpy()
    return g


def net_sides(kind, sz, x, y, reset_delay, quick):
    """neurodyn's nd.SNN with the given reset rule, and the peers that use the same neuron:
    snntorch's stock Leaky (delayed reset) or SpikingJelly's LIFNode (reset in the step)."""
    names = net_names(sz)

    def nd_factory():
        net = make_nd_net(sz, reset_delay)
        if kind == "forward":
            def probe():
                p = out_probe(net(x))
                p.parts["spike_counts"] = np.array([s.sum() for s in net.spikes(x)], dtype=np.float64)
                return p

            return Side(run=lambda: net(x), probe=probe)

        def probe():
            loss, g = net.loss_and_grad(x, y)
            return grad_probe(loss, g, names)

        return Side(run=lambda: net.loss_and_grad(x, y), probe=probe)

    def peer(make, note, compiled=False):
        def factory():
            torch, F, model = make(sz, make_nd_net(sz, reset_delay).params)
            call = model
            if compiled:
                call = torch_compile(model, quick)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            if kind == "forward":
                def run():
                    with torch.no_grad():
                        return call(xt)

                def probe():
                    rec = [[] for _ in sz["H"]]
                    with torch.no_grad():
                        out = call(xt).numpy()
                        model(xt, record=rec)
                    p = out_probe(out)
                    p.parts["spike_counts"] = np.array([float(torch.stack(r).sum()) for r in rec])
                    return p

                return Side(run=run, probe=probe, note="no_grad; " + note)
            params = list(model.parameters())

            def step():
                for p in params:
                    p.grad = None
                loss = F.cross_entropy(call(xt), yt)
                loss.backward()
                return loss

            def probe():
                loss = step()
                return grad_probe(loss.item(), model.grads(), names)

            return Side(run=step, probe=probe, note=note + "; cross_entropy, backward()")

        return factory

    # torch.compile versions of these peers exist (``peer(..., compiled=True)``) but are left out
    # of the run: compiling the 25 unrolled steps of either model did not finish within minutes
    # on the shared 2-core machine the bench runs on (the timed run must fit its slot).
    if reset_delay:
        stock = "snntorch Leaky (stock: reset_delay=True, reset detached), sigmoid(slope=10)"
        peers = {"snntorch": peer(lambda sz_, p: _snntorch_net(sz_, p, True), stock)}
        if COMPILE_SNN:
            peers["snntorch_compile"] = peer(lambda sz_, p: _snntorch_net(sz_, p, True), "torch.compile; " + stock,
                                             True)
        return nd_factory, peers
    sj = "SpikingJelly LIFNode(soft reset, detach_reset=True, Sigmoid(alpha=10)), multi-step"
    peers = {"spikingjelly": peer(_spikingjelly_net, sj)}
    if COMPILE_SNN:
        peers["spikingjelly_compile"] = peer(_spikingjelly_net, "torch.compile; " + sj, True)
    return nd_factory, peers


def nan_check(sz):
    """snntorch's sigmoid surrogate computes slope e^(-slope u) / (e^(-slope u) + 1)^2, which is
    inf / inf = NaN in float32 once the membrane u - threshold < -88.7 / slope (-8.9 for slope
    10). With inputs x ~ U(0, 3) some first-layer membranes settle near -10: the gradients of
    that layer come out NaN in snntorch, finite in neurodyn. Untimed."""
    try:
        torch = torch_mod()
        import_peer("snntorch")
    except Skip as exc:
        return f"skipped: {exc}"
    x, y = net_problem(sz, high=3.0)
    net = make_nd_net(sz, True)
    _, g = net.loss_and_grad(x, y)
    torch, F, model = _snntorch_net(sz, net.params, True)
    F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    gt = model.grads()
    return {"inputs": "x ~ U(0, 3), same network",
            "neurodyn_nonfinite_grads": sorted(k for k, v in g.items() if not np.all(np.isfinite(v))),
            "snntorch_nonfinite_grads": sorted(k for k, v in gt.items() if not np.all(np.isfinite(v)))}


# --------------------------------------------------------------------------------------
# (2) one big Linear + LIF layer


def layer_problem(sz, seed=4, p_in=0.05):
    n, B, T = sz["n"], sz["B"], sz["T"]
    rng = np.random.default_rng(seed)
    X = (rng.random((T, B, n), dtype=np.float32) < p_in).astype(np.float32)
    # N(0, s^2) weights with s chosen so that a current has std 0.6: a moderate firing rate
    W = (rng.standard_normal((n, n), dtype=np.float32) * np.float32(0.6 / math.sqrt(n * p_in)))
    b = np.full(n, 0.1, dtype=np.float32)
    target = rng.uniform(0.0, 0.3, size=(B, n)).astype(np.float32)
    return X, W, b, target


def nd_layer_fns(X, W, b, target, spikes=True):
    """neurodyn's forward and training step for the big layer, from public functions. With
    ``spikes=False`` the products are dense GEMMs, the same algorithm as the peer's Linear."""
    import neurodyn as nd

    T, B, n = X.shape
    X2 = X.reshape(T * B, n)
    params = {"fc.kernel": W, "fc.bias": b}

    # As a careful user would: the rates come from nd.lif_rate (no spike raster), and the
    # gradient overwrites the currents (out=cur), so one (T, B, n) array is alive at a time.
    # The input is a spike raster: the event-driven product (spikes=True) does work in
    # proportion to the spikes, which a dense Linear cannot.
    def forward():
        cur = nd.nn.dense(params, "fc", X2, spikes=spikes).reshape(T, B, n)
        return nd.lif_rate(cur, beta=BETA, reset_delay=True)

    def train():
        cur = nd.nn.dense(params, "fc", X2, spikes=spikes).reshape(T, B, n)
        rate = nd.lif_rate(cur, beta=BETA, reset_delay=True)
        diff = rate - target
        loss = float(np.mean(diff * diff))
        drate = (2.0 / diff.size) * diff
        # the cotangent of a mean rate: one (B, n) row that lif_backward reads for every step
        ds = (drate / T).astype(np.float32)
        dcur = nd.lif_backward(cur, dspikes=ds, beta=BETA, reset_delay=True, surrogate="sigmoid", slope=10.0,
                               out=cur)[0]
        del ds, cur
        grads = {}
        nd.nn.dense_grad(params, "fc", X2, dcur.reshape(T * B, n), grads, need_dx=False, spikes=spikes)
        return loss, grads

    return forward, train


def torch_layer_fns(X, W, b, target):
    torch = torch_mod()
    snn = import_peer("snntorch")
    from snntorch import surrogate

    T, B, n = X.shape
    fc = torch.nn.Linear(n, n)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
        fc.bias.copy_(torch.from_numpy(b))
    lif = snn.Leaky(beta=BETA, threshold=1.0, spike_grad=surrogate.sigmoid(slope=10), reset_mechanism="subtract")
    X2 = torch.from_numpy(X.reshape(T * B, n))
    tg = torch.from_numpy(target)

    def rate():
        cur = fc(X2).view(T, B, n)
        mem = lif.init_leaky()
        spikes = []
        # unbind, not cur[t]: the backward of T selects would materialise T full-size (T, B, n)
        # gradients (measured: 96 s instead of ~15 s for the training step at full size)
        for c in cur.unbind(0):
            s, mem = lif(c, mem)
            spikes.append(s)
        return torch.stack(spikes).mean(0)

    def forward():
        with torch.no_grad():
            return rate()

    def train():
        fc.weight.grad = fc.bias.grad = None
        loss = torch.nn.functional.mse_loss(rate(), tg)
        loss.backward()
        return loss

    def grads():
        return {"fc.kernel": fc.weight.grad.numpy().T, "fc.bias": fc.bias.grad.numpy()}

    return forward, train, grads, (fc, lif, X2)


def layer_sides(kind, sz, spikes):
    X, W, b, target = layer_problem(sz)
    prod = "nd.nn.dense(spikes=True)" if spikes else "nd.nn.dense (dense GEMM)"

    def nd_factory():
        forward, train = nd_layer_fns(X, W, b, target, spikes)
        if kind == "forward":
            return Side(run=forward, probe=lambda: out_probe(forward()))

        def probe():
            loss, g = train()
            return grad_probe(loss, g, ("fc.kernel", "fc.bias"))

        return Side(run=train, probe=probe,
                    note=f"{prod} + nd.lif_rate + nd.lif_backward(out=cur) + "
                         f"nd.nn.dense_grad(spikes={spikes})")

    def torch_factory():
        forward, train, grads, _ = torch_layer_fns(X, W, b, target)
        if kind == "forward":
            return Side(run=forward, probe=lambda: out_probe(forward().numpy()), note="no_grad; stock Leaky")

        def probe():
            loss = train()
            return grad_probe(loss.item(), grads(), ("fc.kernel", "fc.bias"))

        return Side(run=train, probe=probe, note="stock Leaky (reset_delay=True); backward()")

    return nd_factory, torch_factory


def layer_breakdown(kind, sz):
    """Where the time goes: the GEMM(s) and the LIF part of each side, timed alone."""

    def more(sides):
        import neurodyn as nd

        cfg = TimerConfig(warmup=1, repeats=3, min_sample=0.0, budget=10.0)
        X, W, b, target = layer_problem(sz)
        T, B, n = X.shape
        X2 = X.reshape(T * B, n)
        params = {"fc.kernel": W, "fc.bias": b}
        cur = nd.nn.dense(params, "fc", X2).reshape(T, B, n)
        out = {"gemm_gflop": 2.0 * T * B * n * n / 1e9}
        t = {"neurodyn_gemm_fwd_s": measure(lambda: nd.nn.dense(params, "fc", X2), cfg).median,
             "neurodyn_spike_fwd_s": measure(lambda: nd.nn.dense(params, "fc", X2, spikes=True), cfg).median,
             "neurodyn_lif_run_s": measure(lambda: nd.lif_run(cur, beta=BETA, reset_delay=True), cfg).median,
             "neurodyn_lif_rate_s": measure(lambda: nd.lif_rate(cur, beta=BETA, reset_delay=True), cfg).median}
        if kind == "train":
            ds = np.full((T, B, n), 1e-6, dtype=np.float32)
            dcur, _ = nd.lif_backward(cur, dspikes=ds, beta=BETA, reset_delay=True)
            d2 = dcur.reshape(T * B, n)
            t["neurodyn_lif_backward_s"] = measure(lambda: nd.lif_backward(cur, dspikes=ds, beta=BETA,
                                                                           reset_delay=True), cfg).median
            t["numpy_gemm_dW_s"] = measure(lambda: X2.T @ d2, cfg).median
            t["neurodyn_spike_dW_s"] = measure(lambda: nd.nn.dense_grad(params, "fc", X2, d2, {}, need_dx=False,
                                                                        spikes=True), cfg).median
        try:
            torch = torch_mod()
            _, _, _, (fc, lif, Xt) = torch_layer_fns(X, W, b, target)
            ct = torch.from_numpy(cur)

            def lif_loop():
                mem = lif.init_leaky()
                for c in ct.unbind(0):
                    s, mem = lif(c, mem)

            with torch.no_grad():
                t["torch_gemm_fwd_s"] = measure(lambda: fc(Xt), cfg).median
                t["snntorch_lif_loop_s"] = measure(lif_loop, cfg).median
        except Skip as exc:
            out["torch"] = f"skipped: {exc}"
        out["times"] = t
        out["gemm_gflops"] = {k.replace("_s", ""): out["gemm_gflop"] / v for k, v in t.items() if "gemm" in k}
        return out

    return more


# --------------------------------------------------------------------------------------
# peak memory, measured in a fresh subprocess per side


def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _malloc_trim():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except OSError:
        return False


def measure_memory(problem, side, quick):
    """Runs in the subprocess: build the problem, one warm-up step, then the measured step."""
    import gc
    import resource

    sys.path.insert(0, HERE)
    import harness

    harness.set_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if problem == "net":
        sz = net_sizes(quick)
        x, y = net_problem(sz)
        if side == "neurodyn":
            net = make_nd_net(sz, True)
            step = lambda: net.loss_and_grad(x, y)  # noqa: E731
        else:
            torch, F, model = _snntorch_net(sz, make_nd_net(sz, True).params, reset_delay=True)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)

            def step():
                for p in model.parameters():
                    p.grad = None
                loss = F.cross_entropy(model(xt), yt)
                loss.backward()
                return loss
    else:
        sz = layer_sizes(quick)
        X, W, b, target = layer_problem(sz)
        if side == "neurodyn":
            _, step = nd_layer_fns(X, W, b, target)
        else:
            _, step, _, _ = torch_layer_fns(X, W, b, target)
    res = step()  # warm-up: lazy initialisations, thread pools, first-touch of buffers
    del res
    gc.collect()
    out = {"side": side, "problem": problem}
    # RSS: the resident high-water mark during the step, above the resident size before it
    out["malloc_trim"] = _malloc_trim()
    rss0 = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        res = step()
        hwm = _status_kb("VmHWM")
        out["rss_before_bytes"] = rss0
        out["rss_peak_increase_bytes"] = hwm - rss0
    except OSError as exc:
        out["rss_peak_increase_bytes"] = None
        out["rss_error"] = str(exc)
        res = step()
    del res
    gc.collect()
    _malloc_trim()
    if side == "neurodyn":
        import tracemalloc

        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        res = step()
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["allocator_peak_bytes"] = peak - base
        out["allocator_method"] = "tracemalloc"
    else:
        import torch
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            res = step()
        allocs = []

        def walk(nodes):
            for nd_ in nodes:
                ef = nd_.extra_fields
                if type(ef).__name__ == "_ExtraFields_Allocation" and str(ef.device) == "cpu":
                    allocs.append((nd_.start_time_ns, ef.alloc_size))
                walk(nd_.children)

        walk(prof.profiler.kineto_results.experimental_event_tree())
        allocs.sort()
        run = np.cumsum([a for _, a in allocs]) if allocs else np.zeros(1)
        out["allocator_peak_bytes"] = int(max(0, run.max()))
        out["allocator_events"] = len(allocs)
        out["allocator_method"] = "torch.profiler allocation events"
        del torch
    out["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def memory_extras(problem, quick):
    def more(sides):
        res = {}
        for side in ("neurodyn", "snntorch"):
            if sides.get(side, {}).get("status") != "ok":
                continue
            cmd = [sys.executable, os.path.join(HERE, "snn_cases.py"), "--memory", problem, side] + (
                ["--quick"] if quick else [])
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=os.environ.copy())
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode != 0 or not line:
                    res[side] = {"status": "error", "message": (proc.stderr or proc.stdout)[-800:]}
                else:
                    res[side] = json.loads(line[-1])
            except subprocess.TimeoutExpired:
                res[side] = {"status": "error", "message": "timeout"}
        nd_m, pe_m = res.get("neurodyn", {}), res.get("snntorch", {})
        ratios = {}
        for key in ("rss_peak_increase_bytes", "allocator_peak_bytes"):
            a, b = nd_m.get(key), pe_m.get(key)
            if a and b:
                ratios[key.replace("_bytes", "")] = a / b
        return {"peak_memory": res, "peak_memory_neurodyn_over_snntorch": ratios,
                "peak_memory_method": "training step (forward + backward) in a fresh subprocess after one warm-up "
                                      "step; RSS: VmHWM after resetting it (clear_refs 5) minus VmRSS before, "
                                      "after malloc_trim; allocator: tracemalloc (neurodyn) / torch.profiler "
                                      "allocation events (torch)"}

    return more


# --------------------------------------------------------------------------------------
# the cases


def layer_floors(kind, sz):
    """The dense layer's GEMMs at the case's shapes on neurodyn's OpenBLAS: the currents
    (T*B, n) x (n, n), and for a training step the weight gradient X^T dcur (the input needs no
    gradient). What a dense implementation cannot avoid; the spike-driven products can go
    below it, because they skip the zeros (the GEMM floor). The forward's spike is a step, no
    transcendental work: only a training step has a work floor, which adds the sigmoid of the
    surrogate gradient (slope 10) at every neuron and step (T x B x n)."""

    def spec(sides):
        T, B, n = sz["T"], sz["B"], sz["n"]
        prods = [(T * B, n, n, False, 1)] + ([(n, T * B, n, False, 1)] if kind == "train" else [])
        return dict(products=prods, elementwise=[("sigmoid", T * B * n)] if kind == "train" else [],
                    what=f"dense currents {T * B}x{n}x{n}" + (" and weight gradient" if kind == "train" else ""))

    return floors(spec, work=kind == "train")


def build(quick: bool, timer_cfg) -> list:
    cases = []
    sz = net_sizes(quick)
    x, y = net_problem(sz)
    dims = f"{sz['I']}-{'-'.join(map(str, sz['H']))}-{sz['O']}"
    base = {"sizes": dims, "batch": sz["B"], "T": sz["T"], "tau": 2.0, "beta": BETA, "threshold": 1.0,
            "surrogate": "sigmoid(slope=10)", "encoding": "constant input x ~ U(0, 1)", "dtype": "float32",
            "init": "nd.SNN(seed=2024), copied into torch"}
    for reset_delay, tag, reset in ((True, "", "subtract, applied at the next step (snntorch's stock Leaky); "
                                                 "nd.SNN(reset_delay=True)"),
                                    (False, "_reset_now", "subtract, in the step that spikes (neurodyn's default)")):
        for kind in ("forward", "train"):
            nd_f, peers = net_sides(kind, sz, x, y, reset_delay, quick)
            more = None
            if kind == "train" and reset_delay:
                mem = memory_extras("net", quick)
                more = (lambda m: (lambda sides: {"nan_check": nan_check(sz), **m(sides)}))(mem)
            main_peer = "snntorch" if reset_delay else "spikingjelly"
            cases.append(Case(
                name=f"snn_net_{kind}{tag}",
                description=f"SNN {dims}, T={sz['T']}, B={sz['B']}, "
                            + ("forward (logits)" if kind == "forward" else "training step (cross-entropy, BPTT)")
                            + f", float32; reset {reset.split(';')[0]}",
                params=dict(base, kind=kind, reset=reset, detach_reset=True,
                            **({"forward_case": f"snn_net_forward{tag}", "loss": "cross_entropy"}
                               if kind == "train" else {})),
                rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers=peers, extras=nn_extras(more=more),
                # the same neuron, the same spikes: float32 rounding apart (different GEMM kernels
                # sum in different orders), which can flip a spike whose membrane sits at the threshold
                agree=1e-3, agree_metric="rel_l2",
                agree_why="relative L2 per tensor: float32 rounding of the products may flip a spike at the threshold",
                targets=[Target(main_peer, 5.0, f"SNN {'forward' if kind == 'forward' else 'forward+backward'} "
                                                 f">= 5x faster than {main_peer}")],
            ))
    lz = layer_sizes(quick)
    lbase = {"n": lz["n"], "batch": lz["B"], "T": lz["T"], "input": "Bernoulli(0.05) spikes (T, B, n)",
             "weights": "N(0, (0.6 / sqrt(0.05 n))^2), bias 0.1", "loss": "mse(mean_t spikes, U(0, 0.3) target)",
             "reset": "subtract, delayed (snntorch's default)", "dtype": "float32"}
    for spikes, tag, label in ((False, "same_algorithm", "same algorithm: dense GEMMs on both sides"),
                               (True, "end_to_end", "end to end: neurodyn's spike-driven products against "
                                                    "the peer's dense Linear")):
        for kind in ("forward", "train"):
            nd_f, torch_f = layer_sides(kind, lz, spikes)
            more = layer_breakdown(kind, lz) if spikes else None
            if kind == "train" and spikes:
                more = (lambda a, b: (lambda sides: {**a(sides), **b(sides)}))(more, memory_extras("layer", quick))
            cases.append(Case(
                name=f"snn_layer{lz['n']}_{kind}_{tag}",
                description=f"Linear({lz['n']},{lz['n']}) + LIF, B={lz['B']}, T={lz['T']}, "
                            + ("forward (rates)" if kind == "forward" else "training step (mse on rates, fwd + bwd)")
                            + f", float32; {label}",
                params=dict(lbase, kind=kind, algorithm=label,
                            **({"forward_case": f"snn_layer{lz['n']}_forward_{tag}"} if kind == "train" else {})),
                rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers={"snntorch": torch_f}, extras=nn_extras(more=more),
                **layer_floors(kind, lz), agree=1e-3, agree_metric="rel_l2",
                agree_why="relative L2 per tensor: float32 rounding of the currents flips a few spikes",
                targets=[Target("snntorch", 5.0, f"LIF layer {'forward' if kind == 'forward' else 'forward+backward'} "
                                                 f">= 5x faster than snntorch ({tag.replace('_', ' ')})")],
            ))
    return quickify(cases, quick)


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="peak memory of one SNN training step (used by the snn suite)")
    p.add_argument("--memory", nargs=2, metavar=("PROBLEM", "SIDE"), required=True)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    print(json.dumps(measure_memory(a.memory[0], a.memory[1], a.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
