"""Liquid-family benchmark cases: ``nd.Liquid`` against the same model written in PyTorch
CPU, and ``nd.LTCCell`` / ``nd.CfC`` against the ``ncps`` package's torch LTC and CfC.

Liquid (B=64, T=100, H = embed = 128, 2 layers, dropout 0, float32). Per layer, in both:
``x = LayerNorm(u)``; ``tau = softplus(min(Dense_tau(x), 20)) + 0.1``;
``a = Dense_out(silu(Dense_hidden(x)))`` (hidden 2H); a scan over T from h = 0; ``u = u + h``;
then a final LayerNorm and the last step. The torch twin runs every dense/elementwise operation
over all B*T rows at once and only the recurrence in a Python loop over T (the efficient way to
write it in eager PyTorch). It gets neurodyn's initial parameters.

* ``exact``: ``h = a + (h - a) exp(-1/tau)`` per step (exp(-1/tau) computed for all steps at once).
* ``rk4`` with 4 substeps: the peer ``torch`` steps the four RK4 stages of dh/ds = (a - h)/tau
  four times per frame, as the model is written down. neurodyn uses the fact that on this linear
  equation the substeps amount to ``h = a + R(-1/(4 tau))^4 (h - a)`` (R the RK4 stability
  polynomial): the same numbers, less work. The peer ``torch_rk4_closed_form`` does the same
  trick in torch, to show how much of the ratio is that algebra and how much is the engine.

LTCCell / CfC (input 8, 32 units, B=64, T=100, float32). ncps's ``LTC(8, 32)`` is a fully
connected wiring with softplus constraints (``implicit_param_constraints=True``) and
``ode_unfolds=6``: structurally the same cell as ``nd.LTCCell(8, 32)``; ncps's ``CfC(8, 32)``
(backbone 128, one layer, lecun_tanh, mode default) is structurally ``nd.CfC(8, 32)``. The two
libraries initialise differently (ncps's wiring draws its own reversal-potential signs), so
*here neurodyn's parameters are copied into the ncps modules* (the all-ones sparsity masks stay):
the models are then parameter-identical and the outputs are checked to agree.

Timespans: ncps 1.0.1's ``LTC.forward`` / ``CfC.forward`` squeeze the per-step timespans to
shape (B,), which fails to broadcast for batch > 1 (mlech26l/ncps issues #81-#83, PR #85). The
main cases therefore use ``timespans=None`` (dt = 1) on both sides. The ``*_timespans`` cases
give both sides per-sample, per-step timespans: neurodyn through ``timespans=``, ncps by
stepping its public cell (``model.rnn_cell``) over T with ``ts[:, t:t+1]`` (what PR #85 does).
"""
from __future__ import annotations

import os

import numpy as np

from harness import Case, Side, Target, floors
from neural_ode_cases import (cached, grad_probe, import_peer, torch_compile,  # noqa: F401
                              markdown_extras, nn_extras, out_probe, quickify, record_extras, summarize, torch_mod)

CMP_RTOL, CMP_ATOL = 1e-4, 1e-5  # tolerance units of the harness's table (float32 models)


# --------------------------------------------------------------------------------------
# Liquid


def liquid_problem(B, T, E, H, seed=11):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(B, T, E)).astype(np.float32)
    y = rng.normal(0.0, 1.0, size=(B, H)).astype(np.float32)
    return x, y


def make_nd_liquid(E, H, L, solver, steps, dtype=np.float32):
    import neurodyn as nd

    return nd.Liquid(E, hidden_size=H, num_layers=L, dropout=0.0, integration_steps=steps, solver=solver, seed=2024,
                     dtype=dtype)


def liquid_param_names(L):
    names = []
    for i in range(1, L + 1):
        n = f"ltc_layer_{i}"
        names += [f"{n}_norm.gamma", f"{n}_norm.beta"]
        for d in ("_tau", "_f_hidden", "_f_out"):
            names += [f"{n}{d}.kernel", f"{n}{d}.bias"]
    return names + ["final_norm.gamma", "final_norm.beta"]


def _torch_liquid_class():
    torch = torch_mod()
    nn, F = torch.nn, torch.nn.functional

    class TorchLiquid(nn.Module):
        """Edifice's Liquid in eager PyTorch (embed == hidden: no input projection)."""

        def __init__(self, p, L, H, solver, steps, scan, dtype):
            super().__init__()
            self.L, self.solver, self.steps, self.scan = L, solver, steps, scan
            self.norms = nn.ModuleList([nn.LayerNorm(H, eps=1e-5, dtype=dtype) for _ in range(L)])
            self.tau = nn.ModuleList([nn.Linear(H, H, dtype=dtype) for _ in range(L)])
            self.f_hidden = nn.ModuleList([nn.Linear(H, 2 * H, dtype=dtype) for _ in range(L)])
            self.f_out = nn.ModuleList([nn.Linear(2 * H, H, dtype=dtype) for _ in range(L)])
            self.final = nn.LayerNorm(H, eps=1e-5, dtype=dtype)
            with torch.no_grad():
                for i in range(L):
                    n = f"ltc_layer_{i + 1}"
                    self.norms[i].weight.copy_(torch.from_numpy(np.asarray(p[f"{n}_norm.gamma"])))
                    self.norms[i].bias.copy_(torch.from_numpy(np.asarray(p[f"{n}_norm.beta"])))
                    for lin, d in ((self.tau[i], "_tau"), (self.f_hidden[i], "_f_hidden"), (self.f_out[i], "_f_out")):
                        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(p[f"{n}{d}.kernel"].T)))
                        lin.bias.copy_(torch.from_numpy(np.asarray(p[f"{n}{d}.bias"])))
                self.final.weight.copy_(torch.from_numpy(np.asarray(p["final_norm.gamma"])))
                self.final.bias.copy_(torch.from_numpy(np.asarray(p["final_norm.beta"])))

        def _scan(self, a, tau):
            B, T, H = a.shape
            h = torch.zeros(B, H, dtype=a.dtype)
            hs = []
            if self.solver == "exact" or self.scan == "closed_form":
                if self.solver == "exact":
                    factor = torch.exp(-1.0 / tau)
                else:  # rk4 substeps on a linear ODE: h <- a + R(q)^steps (h - a), q = -1/(steps tau)
                    q = -1.0 / (self.steps * tau)
                    factor = (1 + q * (1 + q * (0.5 + q * (1.0 / 6 + q / 24)))) ** self.steps
                for t in range(T):
                    at = a[:, t]
                    h = at + (h - at) * factor[:, t]
                    hs.append(h)
            else:  # rk4, the substeps written out
                dt = 1.0 / self.steps
                inv = 1.0 / tau
                for t in range(T):
                    at, it = a[:, t], inv[:, t]
                    for _ in range(self.steps):
                        k1 = (at - h) * it
                        k2 = (at - (h + 0.5 * dt * k1)) * it
                        k3 = (at - (h + 0.5 * dt * k2)) * it
                        k4 = (at - (h + dt * k3)) * it
                        h = h + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
                    hs.append(h)
            return torch.stack(hs, dim=1)

        def forward(self, x):
            u = x
            for i in range(self.L):
                xn = self.norms[i](u)
                tau = F.softplus(torch.clamp(self.tau[i](xn), max=20.0)) + 0.1
                a = self.f_out[i](F.silu(self.f_hidden[i](xn)))
                u = u + self._scan(a, tau)
            return self.final(u)[:, -1]

        def grads(self):
            g = {}
            for i in range(self.L):
                n = f"ltc_layer_{i + 1}"
                g[f"{n}_norm.gamma"] = self.norms[i].weight.grad.numpy()
                g[f"{n}_norm.beta"] = self.norms[i].bias.grad.numpy()
                for lin, d in ((self.tau[i], "_tau"), (self.f_hidden[i], "_f_hidden"), (self.f_out[i], "_f_out")):
                    g[f"{n}{d}.kernel"] = lin.weight.grad.numpy().T
                    g[f"{n}{d}.bias"] = lin.bias.grad.numpy()
            g["final_norm.gamma"] = self.final.weight.grad.numpy()
            g["final_norm.beta"] = self.final.bias.grad.numpy()
            return g

    return torch, TorchLiquid


def liquid_sides(kind, solver, steps, x, y, L, scan="stages", compiled=False, quick=False):
    """(neurodyn factory, torch factory) for kind 'forward' or 'train'."""
    B, T, E = x.shape
    H = y.shape[1]
    names = liquid_param_names(L)

    def nd_factory():
        m = make_nd_liquid(E, H, L, solver, steps)
        if kind == "forward":
            return Side(run=lambda: m(x), probe=lambda: out_probe(m(x)))

        def probe():
            loss, g = m.loss_and_grad(x, y, loss="mse")
            return grad_probe(loss, g, names)

        return Side(run=lambda: m.loss_and_grad(x, y, loss="mse"), probe=probe)

    def torch_factory():
        torch, TorchLiquid = _torch_liquid_class()
        nd_m = make_nd_liquid(E, H, L, solver, steps)
        model = TorchLiquid(nd_m.params, L, H, solver, steps, scan, torch.float32)
        call = torch_compile(model, quick) if compiled else model
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        note = {"stages": "rk4 stages written out" if solver == "rk4" else "",
                "closed_form": "per-frame factor R(-1/(4 tau))^4, as neurodyn"}[scan]
        if compiled:
            note = ("torch.compile(model) (the scan unrolled over T); " + note).strip("; ")
        if kind == "forward":
            def run():
                with torch.no_grad():
                    return call(xt)

            return Side(run=run, probe=lambda: out_probe(run().numpy()), note=("no_grad; " + note).strip("; "))
        params = list(model.parameters())

        def step():
            for p in params:
                p.grad = None
            loss = torch.nn.functional.mse_loss(call(xt), yt)
            loss.backward()
            return loss

        def probe():
            loss = step()
            return grad_probe(loss.item(), model.grads(), names)

        return Side(run=step, probe=probe, note=note)

    return nd_factory, torch_factory


def liquid_reference(kind, solver, steps, x, y, L):
    """float64 torch twin (the same computation in double precision)."""

    def reference():
        torch, TorchLiquid = _torch_liquid_class()
        B, T, E = x.shape
        H = y.shape[1]
        nd_m = make_nd_liquid(E, H, L, solver, steps)
        p64 = {k: v.astype(np.float64) for k, v in nd_m.params.items()}
        model = TorchLiquid(p64, L, H, solver, steps, "closed_form", torch.float64)
        xt = torch.from_numpy(x.astype(np.float64))
        note = "float64 torch twin"
        if kind == "forward":
            with torch.no_grad():
                return out_probe(model(xt).numpy(), note=note)
        loss = torch.nn.functional.mse_loss(model(xt), torch.from_numpy(y.astype(np.float64)))
        loss.backward()
        return grad_probe(loss.item(), model.grads(), liquid_param_names(L), note=note)

    return reference


def liquid_floors(kind, solver, B, T, H, L):
    """The physical limit of a Liquid case: its dense layers' GEMM work (forward: 3 GEMMs per
    layer; training step: those plus the input- and weight-gradient GEMMs of each), on
    neurodyn's OpenBLAS at the same shapes. No elementwise work, scan or layer norm is
    included, so no implementation can beat this floor (the GEMM floor). The work floor adds,
    per layer and row, tau's softplus (H), silu's sigmoid (2H) and with the exact solver the
    decay exp(-1/tau) (H); rk4's decay R(-1/(4 tau))^4 is a polynomial. The derivatives
    (softplus' = sigmoid from the exp(-|z|) softplus evaluates, silu's from its sigmoid, the
    decay's from itself) reuse the forward's values: a training step needs no more."""

    def spec(sides):
        rows = L * B * T
        ew = [("softplus", rows * H), ("sigmoid", rows * 2 * H)] + ([("exp", rows * H)] if solver == "exact" else [])
        return dict(products=[(B * T, fi, fo, kind == "train", L) for fi, fo in ((H, H), (H, 2 * H), (2 * H, H))],
                    elementwise=ew, what=f"{L} layers x 3 dense products over {B * T} rows"
                    + (" with their gradients" if kind == "train" else ""))

    return floors(spec)


def liquid_cases(B, T, H, L, quick):
    x, y = liquid_problem(B, T, H, H)
    cases = []
    for solver, steps in (("exact", 1), ("rk4", 4)):
        tag = "exact" if solver == "exact" else f"rk4x{steps}"
        fwd_name = f"liquid_{tag}_forward"
        base = {"batch": B, "time": T, "embed": H, "hidden": H, "layers": L, "dropout": 0.0, "solver": solver,
                "integration_steps": steps, "dtype": "float32", "init": "nd.Liquid(seed=2024), copied into torch",
                "data_seed": 11}
        for kind in ("forward", "train"):
            nd_f, torch_f = liquid_sides(kind, solver, steps, x, y, L)
            peers = {"torch": torch_f}
            if solver == "exact" and os.environ.get("ND_BENCH_COMPILE_LIQUID") == "1":
                # off by default: torch.compile unrolls the scan's 2 x 100 steps into one graph,
                # which did not finish compiling within minutes on the shared 2-core machine
                peers["torch_compile"] = liquid_sides(kind, solver, steps, x, y, L, compiled=True, quick=quick)[1]
            if solver == "rk4":
                peers["torch_rk4_closed_form"] = liquid_sides(kind, solver, steps, x, y, L, scan="closed_form")[1]
            ref = cached(liquid_reference(kind, solver, steps, x, y, L))
            what = "forward (last step)" if kind == "forward" else "training step (mse on the last step, fwd + bwd)"
            cases.append(Case(
                name=fwd_name if kind == "forward" else f"liquid_{tag}_train",
                description=f"Liquid {what}, B={B} T={T} H=embed={H}, {L} layers, {solver}"
                            + (f" x{steps} substeps" if solver != "exact" else "") + ", float32",
                params=dict(base, kind=kind, **({"forward_case": fwd_name, "loss": "mse"} if kind == "train" else {})),
                rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers=peers, reference=ref,
                agree=1e-4, agree_metric="rel_l2", agree_why="float32, relative L2 per tensor",
                extras=nn_extras(reference=ref), **liquid_floors(kind, solver, B, T, H, L),
                targets=[Target("torch", 5.0 if kind == "forward" else 3.0,
                                f"Liquid {tag} {'forward' if kind == 'forward' else 'training step'} >= "
                                f"{5 if kind == 'forward' else 3}x faster than PyTorch")],
            ))
    return cases


# --------------------------------------------------------------------------------------
# LTCCell and CfC against ncps

LTC_UNFOLDS, CFC_BACKBONE = 6, 128
LTC_NAMES = ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
             "sensory_erev", "input_w", "input_b", "output_w", "output_b")
CFC_HEADS = ("ff1", "ff2", "time_a", "time_b")


def cell_problem(B, T, I, M, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(B, T, I)).astype(np.float32)
    y = rng.normal(0.0, 1.0, size=(B, M)).astype(np.float32)
    ts = rng.uniform(0.5, 1.5, size=(B, T)).astype(np.float32)
    return x, y, ts


def make_nd_cell(kind, I, N):
    import neurodyn as nd

    if kind == "ltc":
        return nd.LTCCell(I, N, ode_unfolds=LTC_UNFOLDS, seed=2024)
    return nd.CfC(I, N, backbone_units=CFC_BACKBONE, backbone_layers=1, backbone_activation="lecun_tanh", mode="default",
                  seed=2024)


def cfc_names(layers=1):
    names = []
    for l in range(layers):
        names += [f"backbone_{l}.kernel", f"backbone_{l}.bias"]
    for h in CFC_HEADS:
        names += [f"{h}.kernel", f"{h}.bias"]
    return names


def make_ncps(kind, nd_model):
    """ncps's torch LTC / CfC at the same sizes, with neurodyn's parameters copied in."""
    torch = torch_mod()
    import_peer("ncps")
    import ncps.torch as nt

    c = nd_model.config
    if kind == "ltc":
        model = nt.LTC(c["input_size"], c["units"], ode_unfolds=c["ode_unfolds"], epsilon=c["epsilon"],
                       implicit_param_constraints=True)
        cell = model.rnn_cell
        with torch.no_grad():
            for name in LTC_NAMES:
                getattr(cell, name).copy_(torch.from_numpy(np.asarray(nd_model.params[name])))
            assert float(cell.sparsity_mask.min()) == 1.0 and float(cell.sensory_sparsity_mask.min()) == 1.0
    else:
        model = nt.CfC(c["input_size"], c["hidden_size"], mode=c["mode"], activation=c["backbone_activation"],
                       backbone_units=c["backbone_units"], backbone_layers=c["backbone_layers"])
        cell = model.rnn_cell
        with torch.no_grad():
            lin = cell.backbone[0]
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(nd_model.params["backbone_0.kernel"].T)))
            lin.bias.copy_(torch.from_numpy(np.asarray(nd_model.params["backbone_0.bias"])))
            for h in CFC_HEADS:
                getattr(cell, h).weight.copy_(torch.from_numpy(np.ascontiguousarray(nd_model.params[f"{h}.kernel"].T)))
                getattr(cell, h).bias.copy_(torch.from_numpy(np.asarray(nd_model.params[f"{h}.bias"])))
    return torch, model


def ncps_grads(kind, model):
    cell = model.rnn_cell
    if kind == "ltc":
        return {n: getattr(cell, n).grad.numpy() for n in LTC_NAMES}
    g = {"backbone_0.kernel": cell.backbone[0].weight.grad.numpy().T, "backbone_0.bias": cell.backbone[0].bias.grad.numpy()}
    for h in CFC_HEADS:
        g[f"{h}.kernel"] = getattr(cell, h).weight.grad.numpy().T
        g[f"{h}.bias"] = getattr(cell, h).bias.grad.numpy()
    return g


def cell_sides(kind, mode, x, y, ts, N, timespans):
    """(neurodyn factory, ncps factory); mode 'forward' or 'train'."""
    I = x.shape[2]
    names = LTC_NAMES if kind == "ltc" else tuple(cfc_names())
    tsp = ts if timespans else None

    def nd_factory():
        m = make_nd_cell(kind, I, N)
        if mode == "forward":
            return Side(run=lambda: m.forward_sequence(x, timespans=tsp),
                        probe=lambda: out_probe(m.forward_sequence(x, timespans=tsp)))

        def run():
            return m.loss_and_grad(x, y, timespans=tsp, loss="mse")

        def probe():
            loss, g = run()
            return grad_probe(loss, g, names)

        return Side(run=run, probe=probe)

    def ncps_factory():
        torch, model = make_ncps(kind, make_nd_cell(kind, I, N))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        tst = torch.from_numpy(ts)

        if timespans:  # step the public cell: ts as (B, 1) broadcasts (ncps's forward squeezes it to (B,))
            cell = model.rnn_cell
            B, T = ts.shape

            def seq():
                h = torch.zeros(B, model.state_size)
                outs = []
                for t in range(T):
                    out, h = cell(xt[:, t], h, tst[:, t:t + 1])
                    outs.append(model.fc(out) if hasattr(model, "fc") else out)
                return torch.stack(outs, dim=1)

            note = "model.rnn_cell stepped over T with ts[:, t:t+1]"
        else:
            def seq():
                return model(xt)[0]

            note = f"ncps.torch.{'LTC' if kind == 'ltc' else 'CfC'} forward, timespans=None"
        if mode == "forward":
            def run():
                with torch.no_grad():
                    return seq()

            return Side(run=run, probe=lambda: out_probe(run().numpy()), note="no_grad; " + note)
        params = [p for p in model.parameters() if p.requires_grad]

        def step():
            for p in params:
                p.grad = None
            loss = torch.nn.functional.mse_loss(seq()[:, -1], yt)
            loss.backward()
            return loss

        def probe():
            loss = step()
            return grad_probe(loss.item(), ncps_grads(kind, model), names)

        return Side(run=step, probe=probe, note=note + "; mse on the last step, backward()")

    return nd_factory, ncps_factory


def cell_floors(kind, mode, B, T, I, N):
    """The work floor of an LTCCell or CfC case, per step (T of them). LTCCell: no matrix
    product (each synapse's sigmoid depends on its pair of neurons, so the sums over the
    presynaptic neurons are elementwise work), the sigmoid of every sensory synapse (B x I x N)
    and of every synapse in each of the ode_unfolds unfolds (B x N x N); their derivatives
    s (1 - s) reuse the values (neurodyn recomputes them twice in its backward, rather than
    keeping B T unfolds N^2 values). CfC: the backbone's product (B, I + N) x (I + N, 128) and
    the four heads' (B, 128) x (128, N) (with their gradients in a training step), the
    backbone's lecun_tanh (a tanh over B x 128), the tanh of ff1 and ff2 and the sigmoid of
    the time gate (B x N each), whose derivatives the backward takes from the values kept.
    No GEMM floor of their own: the products are not most of either cell's work."""

    def spec(sides):
        if kind == "ltc":
            return dict(products=[], elementwise=[("sigmoid", B * (I * N + LTC_UNFOLDS * N * N))],
                        what=f"{T} steps x (sensory {B}x{I}x{N} + {LTC_UNFOLDS} unfolds x {B}x{N}x{N} synapses)",
                        time_scale=T)
        train = mode == "train"
        return dict(products=[(B, I + N, CFC_BACKBONE, train, 1), (B, CFC_BACKBONE, N, train, 4)],
                    elementwise=[("tanh", B * (CFC_BACKBONE + 2 * N)), ("sigmoid", B * N)],
                    what=f"{T} steps x backbone {B}x{I + N}x{CFC_BACKBONE} and 4 heads {B}x{CFC_BACKBONE}x{N}"
                    + (" with their gradients" if train else ""), time_scale=T)

    return floors(spec, gemm=False)


def cell_cases(B, T, I, N):
    x, y, ts = cell_problem(B, T, I, N)
    cases = []
    for kind in ("ltc", "cfc"):
        for timespans in (False, True):
            tag = f"{kind}{'_timespans' if timespans else ''}"
            fwd_name = f"{tag}_forward"
            label = "LTCCell (ode_unfolds=6)" if kind == "ltc" else "CfC (backbone 128x1, lecun_tanh, default mode)"
            base = {"cell": kind, "batch": B, "time": T, "input": I, "units": N, "dtype": "float32",
                    "timespans": "U(0.5, 1.5) per sample and step (seed 5)" if timespans else "None (dt = 1)",
                    "init": f"nd.{'LTCCell' if kind == 'ltc' else 'CfC'}(seed=2024), copied into ncps"}
            for mode in ("forward", "train"):
                nd_f, ncps_f = cell_sides(kind, mode, x, y, ts, N, timespans)
                targets = []
                if kind == "ltc" and not timespans:
                    targets = [Target("ncps", 10.0, f"LTCCell {'forward' if mode == 'forward' else 'training step'} "
                                                    ">= 10x faster than ncps LTC")]
                what = "forward (all steps)" if mode == "forward" else "training step (mse on the last step, fwd + bwd)"
                cases.append(Case(
                    name=fwd_name if mode == "forward" else f"{tag}_train",
                    description=f"{label} {what}, B={B} T={T} input={I} units={N}, "
                                f"{'per-step timespans' if timespans else 'dt=1'}, float32",
                    params=dict(base, kind=mode, **({"forward_case": fwd_name, "loss": "mse"} if mode == "train" else {})),
                    rtol=CMP_RTOL, atol=CMP_ATOL, neurodyn=nd_f, peers={"ncps": ncps_f},
                    agree=1e-4, agree_metric="rel_l2", agree_why="float32, relative L2 per tensor",
                    extras=nn_extras(), targets=targets, **cell_floors(kind, mode, B, T, I, N),
                ))
    return cases


def build(quick: bool, timer_cfg) -> list:
    if quick:
        cases = liquid_cases(B=4, T=8, H=16, L=2, quick=True) + cell_cases(B=4, T=8, I=3, N=6)
    else:
        cases = liquid_cases(B=64, T=100, H=128, L=2, quick=False) + cell_cases(B=64, T=100, I=8, N=32)
    return quickify(cases, quick)
