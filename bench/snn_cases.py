"""Spiking-network benchmark cases: neurodyn against snntorch's ``Leaky`` on PyTorch CPU.

(1) ``snn_net``: a 64-256-128-10 SNN, T=25, B=128, float32. neurodyn: ``nd.SNN(64, 10,
    hidden_sizes=(256, 128), num_timesteps=25, tau=2.0)``, ``net(x)`` and
    ``net.loss_and_grad(x, y)`` (cross-entropy on integer labels). snntorch: ``nn.Linear`` +
    ``snn.Leaky(beta=exp(-1/2), threshold=1, reset_mechanism="subtract",
    spike_grad=surrogate.sigmoid(slope=10))`` per layer, stepped over T with the constant input
    (the first layer's current computed once, as neurodyn does), readout ``nn.Linear`` on the mean
    spikes, ``F.cross_entropy``. neurodyn's initial parameters are copied in.

    Reset convention: ``nd.SNN`` resets in the step that spikes (V <- beta V + I; S = [V > 1];
    V <- V - S), so the peer ``snntorch`` uses ``Leaky(reset_delay=False)``, the same forward
    model (they differ only when a membrane still exceeds the threshold after its reset, i.e.
    V > 2, which the probe counts). Gradients: neurodyn detaches the reset (as snntorch does for
    its default delayed reset), snntorch's ``reset_delay=False`` path does not (``do_reset =
    spk - reset`` keeps the surrogate gradient). The extras therefore also compare snntorch's
    gradients with neurodyn's own kernel run with ``detach_reset=False`` (untimed). The peer
    ``snntorch_default`` is stock ``Leaky`` (``reset_delay=True``): a slightly different model,
    timed to show the ratio does not hinge on that choice.

(2) ``snn_layer``: one Linear(n, n) + LIF layer, n=4096, B=16, T=500, float32, input spikes
    X ~ Bernoulli(0.05) of shape (T, B, n). Both sides compute the currents over the T*B rows,
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

from harness import Case, Side, Skip, Target, measure, TimerConfig
from neural_ode_cases import (grad_probe, import_peer, markdown_extras, nn_extras, out_probe, quickify,  # noqa: F401
                              record_extras, summarize, torch_mod)

HERE = os.path.dirname(os.path.abspath(__file__))
BETA = math.exp(-1.0 / 2.0)
CMP_RTOL, CMP_ATOL = 1e-4, 1e-5


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


def make_nd_net(sz):
    import neurodyn as nd

    return nd.SNN(sz["I"], sz["O"], hidden_sizes=sz["H"], num_timesteps=sz["T"], tau=2.0, seed=2024)


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
            with torch.no_grad():
                for i, fc in enumerate(self.fcs):
                    fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(params[f"snn_layer_{i}_dense.kernel"].T)))
                    fc.bias.copy_(torch.from_numpy(params[f"snn_layer_{i}_dense.bias"]))
                self.out.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["snn_output.kernel"].T)))
                self.out.bias.copy_(torch.from_numpy(params["snn_output.bias"]))

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

        def grads(self):
            g = {}
            for i, fc in enumerate(self.fcs):
                g[f"snn_layer_{i}_dense.kernel"] = fc.weight.grad.numpy().T
                g[f"snn_layer_{i}_dense.bias"] = fc.bias.grad.numpy()
            g["snn_output.kernel"] = self.out.weight.grad.numpy().T
            g["snn_output.bias"] = self.out.bias.grad.numpy()
            return g

    return torch, F, Net()


def net_sides(kind, sz, x, y):
    names = net_names(sz)

    def nd_factory():
        net = make_nd_net(sz)
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

    def peer(reset_delay):
        def factory():
            torch, F, model = _snntorch_net(sz, make_nd_net(sz).params, reset_delay)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            note = f"Leaky(reset_delay={reset_delay})"
            if kind == "forward":
                def run():
                    with torch.no_grad():
                        return model(xt)

                def probe():
                    rec = [[] for _ in sz["H"]]
                    with torch.no_grad():
                        out = model(xt, record=rec).numpy()
                    p = out_probe(out)
                    p.parts["spike_counts"] = np.array([float(torch.stack(r).sum()) for r in rec])
                    return p

                return Side(run=run, probe=probe, note="no_grad; " + note)
            params = list(model.parameters())

            def step():
                for p in params:
                    p.grad = None
                loss = F.cross_entropy(model(xt), yt)
                loss.backward()
                return loss

            def probe():
                loss = step()
                return grad_probe(loss.item(), model.grads(), names)

            return Side(run=step, probe=probe, note=note + "; cross_entropy, backward()")

        return factory

    return nd_factory, {"snntorch": peer(False), "snntorch_default": peer(True)}


def net_extras(kind, sz, x, y):
    """Forward: how many spikes differ between neurodyn and snntorch(reset_delay=False) and how
    often a membrane exceeds 2 thresholds (the only place the two reset rules differ).
    Training: snntorch's gradients against neurodyn's kernel with detach_reset=False."""

    def more(sides):
        import neurodyn as nd
        from neurodyn import snn as nd_snn

        out = {}
        net = make_nd_net(sz)
        if kind == "forward":
            try:
                torch, F, model = _snntorch_net(sz, net.params, False)
            except Skip as exc:
                return {"reset_check": f"skipped: {exc}"}
            rec = [[] for _ in sz["H"]]
            with torch.no_grad():
                model(torch.from_numpy(x), record=rec)
            nd_spikes = net.spikes(x)
            rows = []
            cur_in = None
            for i, r in enumerate(rec):
                st = torch.stack(r).numpy()
                # the membrane before reset in neurodyn's own run of this layer, to count V > 2
                if i == 0:
                    one = nd.nn.dense(net.params, "snn_layer_0_dense", x)
                    cur = np.ascontiguousarray(np.broadcast_to(one, (sz["T"],) + one.shape))
                else:
                    T, B = nd_spikes[i - 1].shape[:2]
                    cur = nd.nn.dense(net.params, f"snn_layer_{i}_dense",
                                      nd_spikes[i - 1].reshape(T * B, -1)).reshape(T, B, -1)
                s, v = nd.lif_run(cur, beta=BETA)
                pre = v + s  # membrane before the subtractive reset (threshold 1)
                rows.append({"layer": i, "neurodyn_rate": float(nd_spikes[i].mean()), "snntorch_rate": float(st.mean()),
                             "spikes_differing": int((st != nd_spikes[i]).sum()), "spikes_total": int(st.size),
                             "membrane_above_2_thresholds": int((pre > 2.0).sum())})
                cur_in = cur
            del cur_in
            out["reset_check"] = rows
            return out
        # training: neurodyn's kernels with the snntorch(reset_delay=False) gradient convention
        try:
            import_peer("snntorch")
        except Skip as exc:
            return {"undetached_check": f"skipped: {exc}"}
        alt = make_nd_net(sz)
        alt._lif = lambda: dict(nd_snn.SNN._lif(alt), detach_reset=False)  # noqa: E731
        loss, g = alt.loss_and_grad(x, y)
        p_alt = grad_probe(loss, g, net_names(sz))
        out["nan_check"] = nan_check(sz)
        peer = sides.get("snntorch", {}).get("_probe")
        if peer is not None:
            rows = {}
            for k, a in p_alt.parts.items():
                b = peer.parts[k]
                rows[k] = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))
            out["undetached_check"] = {
                "what": "snntorch(reset_delay=False) gradients vs neurodyn's kernels run with detach_reset=False "
                        "(untimed; nd.SNN itself detaches the reset)",
                "rel_l2_diff": rows, "worst": max(v for k, v in rows.items() if k != "loss")}
        return out

    return more


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
    net = make_nd_net(sz)
    _, g = net.loss_and_grad(x, y)
    torch, F, model = _snntorch_net(sz, net.params, False)
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


def nd_layer_fns(X, W, b, target):
    """neurodyn's forward and training step for the big layer, from public functions."""
    import neurodyn as nd

    T, B, n = X.shape
    X2 = X.reshape(T * B, n)
    params = {"fc.kernel": W, "fc.bias": b}

    # As a careful user would: the rates come from nd.lif_rate (no spike raster), and the
    # gradient overwrites the currents (out=cur), so one (T, B, n) array is alive at a time.
    # The input is a spike raster: the event-driven product (spikes=True) does work in
    # proportion to the spikes, which a dense Linear cannot.
    def forward():
        cur = nd.nn.dense(params, "fc", X2, spikes=True).reshape(T, B, n)
        return nd.lif_rate(cur, beta=BETA, reset_delay=True)

    def train():
        cur = nd.nn.dense(params, "fc", X2, spikes=True).reshape(T, B, n)
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
        nd.nn.dense_grad(params, "fc", X2, dcur.reshape(T * B, n), grads, need_dx=False, spikes=True)
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


def layer_sides(kind, sz):
    X, W, b, target = layer_problem(sz)

    def nd_factory():
        forward, train = nd_layer_fns(X, W, b, target)
        if kind == "forward":
            return Side(run=forward, probe=lambda: out_probe(forward()))

        def probe():
            loss, g = train()
            return grad_probe(loss, g, ("fc.kernel", "fc.bias"))

        return Side(run=train, probe=probe,
                    note="nd.nn.dense(spikes=True) + nd.lif_rate + nd.lif_backward(out=cur) + "
                         "nd.nn.dense_grad(spikes=True)")

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
            net = make_nd_net(sz)
            step = lambda: net.loss_and_grad(x, y)  # noqa: E731
        else:
            torch, F, model = _snntorch_net(sz, make_nd_net(sz).params, reset_delay=False)
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


def build(quick: bool, timer_cfg) -> list:
    cases = []
    sz = net_sizes(quick)
    x, y = net_problem(sz)
    dims = f"{sz['I']}-{'-'.join(map(str, sz['H']))}-{sz['O']}"
    base = {"sizes": dims, "batch": sz["B"], "T": sz["T"], "tau": 2.0, "beta": BETA, "threshold": 1.0,
            "surrogate": "sigmoid(slope=10)", "encoding": "constant input x ~ U(0, 1)", "dtype": "float32",
            "init": "nd.SNN(seed=2024), copied into torch"}
    for kind in ("forward", "train"):
        nd_f, peers = net_sides(kind, sz, x, y)
        more = net_extras(kind, sz, x, y)
        if kind == "train":
            mem = memory_extras("net", quick)
            more = (lambda a, b: (lambda sides: {**a(sides), **b(sides)}))(more, mem)
        cases.append(Case(
            name=f"snn_net_{kind}",
            description=f"SNN {dims}, T={sz['T']}, B={sz['B']}, "
                        + ("forward (logits)" if kind == "forward" else "training step (cross-entropy, BPTT)")
                        + ", float32",
            params=dict(base, kind=kind, **({"forward_case": "snn_net_forward", "loss": "cross_entropy"}
                                            if kind == "train" else {})),
            rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers=peers, extras=nn_extras(more=more),
            targets=[Target("snntorch", 5.0, f"SNN {'forward' if kind == 'forward' else 'forward+backward'} "
                                             ">= 5x faster than snntorch")],
        ))
    lz = layer_sizes(quick)
    lbase = {"n": lz["n"], "batch": lz["B"], "T": lz["T"], "input": "Bernoulli(0.05) spikes (T, B, n)",
             "weights": "N(0, (0.6 / sqrt(0.05 n))^2), bias 0.1", "loss": "mse(mean_t spikes, U(0, 0.3) target)",
             "reset": "subtract, delayed (snntorch's default)", "dtype": "float32"}
    for kind in ("forward", "train"):
        nd_f, torch_f = layer_sides(kind, lz)
        more = layer_breakdown(kind, lz)
        if kind == "train":
            more = (lambda a, b: (lambda sides: {**a(sides), **b(sides)}))(more, memory_extras("layer", quick))
        cases.append(Case(
            name=f"snn_layer{lz['n']}_{kind}",
            description=f"Linear({lz['n']},{lz['n']}) + LIF, B={lz['B']}, T={lz['T']}, "
                        + ("forward (rates)" if kind == "forward" else "training step (mse on rates, fwd + bwd)")
                        + ", float32",
            params=dict(lbase, kind=kind, **({"forward_case": f"snn_layer{lz['n']}_forward"} if kind == "train" else {})),
            rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers={"snntorch": torch_f}, extras=nn_extras(more=more),
            targets=[Target("snntorch", 5.0, f"LIF layer {'forward' if kind == 'forward' else 'forward+backward'} "
                                             ">= 5x faster than snntorch")],
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
