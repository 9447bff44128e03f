"""Energy-based models: 60 Langevin steps on an MLP energy, and one contrastive-divergence
training step, neurodyn (all steps in C) against the same loop in PyTorch with autograd."""
from __future__ import annotations

import math

import numpy as np

from harness import Case, Probe, Side, Skip, Target, floors
from neural_ode_cases import grad_probe
from neural_ode_cases import markdown_extras  # noqa: F401  (renders the GEMM floor table)

STEPS, STEP_SIZE, NOISE = 60, 10.0, 0.005


def sizes(quick):
    return {"B": 16, "d": 8, "H": (32, 16)} if quick else {"B": 128, "d": 64, "H": (256, 128)}


def _torch_energy(ebm):
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch not installed: {exc}")
    layers = []
    p = ebm.params
    for i in range(len(ebm.config["hidden_sizes"])):
        layers.append((torch.tensor(p[f"energy_dense_{i}.kernel"]), torch.tensor(p[f"energy_dense_{i}.bias"])))
    out = (torch.tensor(p["energy_output.kernel"]), torch.tensor(p["energy_output.bias"]))
    for w, b in layers + [out]:
        w.requires_grad_(True)
        b.requires_grad_(True)

    def energy(x):
        h = x
        for w, b in layers:
            h = torch.nn.functional.silu(h @ w + b)
        return (h @ out[0] + out[1])[:, 0]
    return torch, energy, [t for wb in layers + [out] for t in wb]


def langevin_floors(sz):
    """The physical limit of the sampling case: per step, each layer's product and the product
    of its input gradient (the 1-unit output layer included), on neurodyn's OpenBLAS at the same
    shapes, times the step count. Both sides must do these products every step; no
    activation, noise or update is included, so no implementation can beat this floor (the
    GEMM floor). The work floor adds each hidden layer's silu, a sigmoid over its B x width
    elements per step; its derivative s (1 + z (1 - s)) reuses it. The Gaussian noise is not
    counted: a sampler needs no transcendental function for it (a ziggurat draws mostly by
    table look-up)."""

    def spec(sides):
        widths = [sz["d"], *sz["H"], 1]
        prods = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            prods += [(sz["B"], fan_in, fan_out, False, 1), (sz["B"], fan_out, fan_in, False, 1)]
        return dict(products=prods, elementwise=[("sigmoid", sz["B"] * sum(sz["H"]))],
                    what=f"{STEPS} steps x each layer's product and its input gradient's", time_scale=STEPS)

    return floors(spec)


def langevin_case(quick):
    sz = sizes(quick)
    import neurodyn as nd

    ebm = nd.EBM(sz["d"], hidden_sizes=sz["H"], seed=2024)
    x0 = np.random.default_rng(1).uniform(-1, 1, (sz["B"], sz["d"])).astype(np.float32)

    def nd_factory():
        run = lambda: nd.langevin_sample(ebm, x0, steps=STEPS, step_size=STEP_SIZE, noise_scale=NOISE, seed=0)
        return Side(run=run, probe=lambda: Probe(ys=nd.langevin_sample(ebm, x0, steps=STEPS, step_size=STEP_SIZE,
                                                                        noise_scale=0.0)[None]))

    def torch_factory():
        torch, energy, _ = _torch_energy(ebm)
        gen = torch.Generator().manual_seed(0)

        def loop(noise):
            x = torch.tensor(x0)
            for _ in range(STEPS):
                x = x.detach().requires_grad_(True)
                g, = torch.autograd.grad(energy(x).sum(), x)
                x = x - (STEP_SIZE / 2) * g + math.sqrt(STEP_SIZE) * noise * torch.randn(x.shape, generator=gen)
            return x.detach()
        return Side(run=lambda: loop(NOISE), probe=lambda: Probe(ys=loop(0.0).numpy()[None]),
                    note="autograd per step, torch.randn noise")

    def handwritten_factory(compiled):
        def factory():
            torch, _, _ = _torch_energy(ebm)
            p = ebm.params
            L = len(ebm.config["hidden_sizes"])
            Ws = [torch.tensor(p[f"energy_dense_{i}.kernel"]) for i in range(L)]
            bs = [torch.tensor(p[f"energy_dense_{i}.bias"]) for i in range(L)]
            w_out = torch.tensor(p["energy_output.kernel"])[:, 0]

            def step(x, noise):
                # the energy's input gradient by hand: forward through the silu layers keeping
                # the pre-activations, then back: g <- (g * silu'(z)) W^T, silu' = s (1 + z (1 - s))
                zs, h = [], x
                for W, b in zip(Ws, bs):
                    z = torch.addmm(b, h, W)
                    zs.append(z)
                    h = torch.nn.functional.silu(z)
                g = w_out.expand(x.shape[0], -1)
                for W, z in zip(reversed(Ws), reversed(zs)):
                    s_ = torch.sigmoid(z)
                    g = (g * (s_ * (1 + z * (1 - s_)))) @ W.T
                return x - (STEP_SIZE / 2) * g + math.sqrt(STEP_SIZE) * noise

            fn = step
            if compiled:
                from neural_ode_cases import torch_compile

                fn = torch_compile(step, quick)
            gen = torch.Generator().manual_seed(0)
            x0t = torch.tensor(x0)

            def loop(scale):
                x = x0t
                with torch.no_grad():
                    for _ in range(STEPS):
                        x = fn(x, scale * torch.randn(x.shape, generator=gen))
                return x
            return Side(run=lambda: loop(NOISE), probe=lambda: Probe(ys=loop(0.0).numpy()[None]),
                        note=("torch.compile of " if compiled else "") + "one step with the gradient written out, "
                             "no autograd; torch.randn noise")
        return factory

    return Case(
        name=f"langevin_{STEPS}steps_B{sz['B']}_d{sz['d']}",
        description=f"{STEPS} Langevin steps, batch {sz['B']}, input {sz['d']}, MLP {list(sz['H'])} (silu), float32",
        params={**sz, "steps": STEPS, "step_size": STEP_SIZE, "noise_scale": NOISE,
                "compare": "noise-free runs (same descent, no sampler noise)"},
        neurodyn=nd_factory, peers={"torch_autograd": torch_factory, "torch_handwritten": handwritten_factory(False),
                                    "torch_handwritten_compile": handwritten_factory(True)}, rtol=1e-3, atol=1e-4,
        agree=1e-4, agree_why="float32, 60 steps of the same descent (noise off in the probe)",
        targets=[Target("torch_autograd", 5.0, "sampling >= 5x faster than the PyTorch autograd loop"),
                 Target("torch_handwritten", 1.0, "sampling faster than a torch loop with the gradient written out")],
        **langevin_floors(sz),
    )


def cd_case(quick):
    sz = sizes(quick)
    import neurodyn as nd

    ebm = nd.EBM(sz["d"], hidden_sizes=sz["H"], seed=2024)
    rng = np.random.default_rng(3)
    xr = rng.normal(size=(sz["B"], sz["d"])).astype(np.float32) * 0.3
    xn = rng.uniform(-1, 1, (sz["B"], sz["d"])).astype(np.float32)
    names = [f"energy_dense_{i}.{k}" for i in range(len(sz["H"])) for k in ("kernel", "bias")] + \
        ["energy_output.kernel", "energy_output.bias"]

    def nd_factory():
        run = lambda: ebm.cd_loss_and_grad(xr, xn)

        def probe():
            loss, g = run()
            return grad_probe(loss, g, names)
        return Side(run=run, probe=probe)

    def torch_factory(compiled=False):
        torch, energy, params = _torch_energy(ebm)
        a, b = torch.tensor(xr), torch.tensor(xn)
        if compiled:
            from neural_ode_cases import torch_compile

            energy = torch_compile(energy, quick)

        def step():
            for p_ in params:
                p_.grad = None
            er, en = energy(a), energy(b)
            loss = er.mean() - en.mean() + 0.01 * ((er ** 2).mean() + (en ** 2).mean())
            loss.backward()
            return loss.detach()
        def probe():
            loss = float(step())
            return grad_probe(loss, {n: t.grad.numpy() for n, t in zip(names, params)}, names)
        return Side(run=step, probe=probe, note=("torch.compile(energy); " if compiled else "") + "autograd backward()")

    return Case(
        name=f"cd_step_B{sz['B']}_d{sz['d']}",
        description=f"one contrastive-divergence loss and parameter gradient, batch {sz['B']} real + {sz['B']} negative",
        params={**sz, "reg_alpha": 0.01}, neurodyn=nd_factory,
        peers={"torch_autograd": torch_factory, "torch_compile": lambda: torch_factory(True)},
        rtol=1e-4, atol=1e-6, agree=1.0, agree_metric="tol_units",
        agree_why="float32 loss and gradients within 1e-6 + 1e-4 |g| elementwise (the output bias's gradient is a "
                  "difference of two means, near 0)", targets=[Target("torch_autograd", 1.0, "CD step faster than PyTorch")],
    )


def build(quick: bool, timer_cfg) -> list:
    return [langevin_case(quick), cd_case(quick)]
