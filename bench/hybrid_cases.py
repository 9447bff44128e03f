"""Hybrid energy model (docs/models.md §11): one training step against PyTorch autograd +
torchdiffeq, its GEMM floor, and the bounded-rollout experiment against an unconstrained
NeuralODE field.

    python bench/run.py --suite hybrid [--quick] [--threads N]

The training step: d = 2, hidden (64, 32), activations (tanh, polynomial p = 3), the gradient
form dz/dt = -grad H(z); a batch of 256 windows rolled out over t = [0, 1] by rk4 with 20
steps of 0.05, MSE against targets at the 10 output times 0.1, ..., 1.0, the gradient of every
parameter through the solver (backprop), then one Adam update; float64 on both sides.
neurodyn: ``HybridEBM.window_loss_and_grad`` (the field, its VJP with Hessian-vector products
and parameter gradients, all in C) + ``nd.optim.Adam``. PyTorch: the same energy as a module,
grad H by ``torch.autograd.grad(create_graph=True)`` (the double backward), torchdiffeq's rk4
(its 3/8-rule variant: 4 evaluations per step, the same cost), ``loss.backward()`` and
``torch.optim.Adam``. Both sides start from the same parameters and data, and the probe
compares their losses there (the two rk4 variants differ by ~1e-7).

Besides the wall-time ratio of the harness, ``extras`` holds each side's CPU time per step
(this process's, over a few steps): on a machine shared with other work the wall time waits
for the cores, the CPU time is the work itself.

The GEMM floor: the matrix products the step cannot avoid, on neurodyn's OpenBLAS at the
case's shapes (float64, no bias), timed round-robin with the two sides. Per stage of the forward
solve: the two layer products and the two backward products of grad H; per stage of the
backward pass: the same four again (the stage re-evaluated from the tape, keeping its values),
the four tangent products of the Hessian-vector product and the four weight-gradient products
(inner dimension the batch).
"""
from __future__ import annotations

import time

import numpy as np

from harness import Case, Side, Skip, Target, floors
from neural_ode_cases import grad_probe

D, H1, H2, BATCH, STEPS, T_END, OUTS = 2, 64, 32, 256, 20, 1.0, 10
SEED, DATA_SEED, LR = 2024, 7, 1e-3


def problem(batch, seed=DATA_SEED):
    rng = np.random.default_rng(seed)
    z0 = rng.normal(size=(batch, D))
    target = rng.normal(size=(OUTS + 1, batch, D)) * 0.5
    return z0, target


def _model():
    import neurodyn as nd

    return nd.HybridEBM(D, hidden_sizes=(H1, H2), activations=("tanh", "polynomial"), seed=SEED)


def _times():
    return np.linspace(0.0, T_END, OUTS + 1)


def nd_side(batch):
    import neurodyn as nd

    model = _model()
    z0, target = problem(batch)
    opt = nd.optim.Adam(lr=LR)
    kw = dict(method="rk4", dt=T_END / STEPS)

    def step():
        value, grads = model.window_loss_and_grad(z0, target, _times(), **kw)
        opt.step(model.params, grads)
        return value

    # the loss and every gradient at the initial parameters (before any update), for the check
    loss0, g0 = _model().window_loss_and_grad(z0, target, _times(), **kw)
    names = sorted(g0)
    return Side(run=step, probe=lambda: grad_probe(loss0, g0, names, nfev=4 * STEPS),
                note="window_loss_and_grad (rk4, backprop in C) + nd.optim.Adam, float64")


def torch_side(batch):
    try:
        import torch
        import torchdiffeq
    except ImportError as exc:
        raise Skip(f"torch or torchdiffeq not installed: {exc}")
    model = _model()
    p = {k: torch.tensor(np.array(v), dtype=torch.float64, requires_grad=True) for k, v in model.params.items()}
    beta, power = model.config["beta"], model.config["power"]

    def energy(z):
        g1 = z @ p["hidden1.kernel"]
        a1 = torch.tanh(beta * g1)
        g2 = a1 @ p["hidden2.kernel"]
        F1 = torch.sum(torch.log(torch.cosh(beta * g1)), dim=-1) / beta
        F2 = torch.sum(torch.nn.functional.softplus(g2) ** power, dim=-1) / power
        return (0.5 * torch.sum(z * z, -1) - z @ p["visible.bias"] - F1 - g1 @ p["hidden1.bias"] - F2
                - g2 @ p["hidden2.bias"])

    def field(t, z):
        with torch.enable_grad():
            zz = z if z.requires_grad else z.requires_grad_(True)
            (g,) = torch.autograd.grad(energy(zz).sum(), zz, create_graph=True)
        return -g

    z0, target = problem(batch)
    z0, target = torch.tensor(z0), torch.tensor(target)
    times = torch.tensor(_times())
    opt = torch.optim.Adam(list(p.values()), lr=LR)

    def loss():
        ys = torchdiffeq.odeint(field, z0, times, method="rk4", options={"step_size": T_END / STEPS})
        return torch.mean((ys[1:] - target[1:]) ** 2)

    def step():
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
        return float(value.detach())

    value = loss()  # before any update: the loss and every gradient, for the check
    value.backward()
    loss0 = float(value.detach())
    g0 = {k: v.grad.detach().numpy().copy() for k, v in p.items()}
    opt.zero_grad()
    return Side(run=step, probe=lambda: grad_probe(loss0, g0, sorted(g0), nfev=4 * STEPS),
                note=f"autograd.grad(create_graph=True) field, torchdiffeq rk4, torch.optim.Adam, torch "
                     f"{torch.__version__}")


def hybrid_floors(batch):
    """The step's unavoidable matrix products (module docstring), float64, one Python call
    per product included (about a microsecond each, a few percent of the floor): the GEMM
    floor. The work floor adds each forward stage's transcendental functions: the first layer's
    tanh (batch x 64) and the polynomial activation's exp(-|g|) and log1p of it (batch x 32 each:
    softplus and sigmoid come from the one exp). Their derivatives up to the second (for the
    Hessian-vector product) are arithmetic on those values, so the backward needs no more
    (neurodyn evaluates them again as it re-evaluates each stage from its tape)."""

    def spec(sides):
        layer = [(batch, D, H1), (batch, H1, H2), (batch, H2, H1), (batch, H1, D)]  # one evaluation of grad H
        weight = [(D, batch, H1), (H1, batch, H2)]  # each twice: adot^T e and a^T edot
        prods = [(r, k, n, False, 3) for r, k, n in layer] + [(r, k, n, False, 2) for r, k, n in weight]
        return dict(products=prods, elementwise=[("tanh", batch * H1), ("exp", batch * H2), ("log1p", batch * H2)],
                    what=f"{4 * STEPS} stages x 16 products of grad H, its tangent and weight gradients",
                    time_scale=4 * STEPS, dtype=np.float64)

    return floors(spec)


def bounded_rollouts(n=1000, seed=12):
    """The certified-ball experiment of tests/test_hybrid.py, and the same starts under the
    field of an unconstrained nd.NeuralODE (tanh(W2 silu(W1 h + b1) + b2), random weights)."""
    import neurodyn as nd

    rng = np.random.default_rng(seed)
    z0 = rng.normal(size=(n, 2))
    z0 *= (100 * rng.random((n, 1))) / np.linalg.norm(z0, axis=1, keepdims=True)
    t = np.linspace(0, 20, 101)
    out = {}
    model = nd.HybridEBM(2, hidden_sizes=(4, 3), activations=("tanh", "sigmoid"), seed=11)
    prng = np.random.default_rng(12)
    for k in model.params:
        model.params[k] = 2.0 * prng.uniform(-0.9, 0.9, size=model.params[k].shape)
    cert = model.certificate()
    ys = nd.odeint(model.field(), z0, t, method="rk4", dt=0.04, verbose=False)
    r = np.linalg.norm(ys, axis=-1)
    out["hybrid"] = {"radius": cert["radius"], "start_outside": float(np.mean(r[0] > cert["radius"])),
                     "end_inside": float(np.mean(r[-1] <= cert["radius"])), "max_final_norm": float(r[-1].max())}
    node = nd.NeuralODE(2, hidden_size=2, seed=11, dtype=np.float64)
    for k in node.params:
        if k.startswith("dynamics"):
            node.params[k] = 2.0 * prng.uniform(-0.9, 0.9, size=node.params[k].shape)
    ys = nd.odeint(node.dynamics(), z0, t, method="rk4", dt=0.04, verbose=False)
    r = np.linalg.norm(ys, axis=-1)
    out["neural_ode"] = {"end_inside_same_radius": float(np.mean(r[-1] <= cert["radius"])),
                         "max_final_norm": float(r[-1].max()), "median_growth": float(np.median(r[-1] - r[0]))}
    return out


def _cpu_seconds(run, calls=5):
    run()
    c0 = time.process_time()
    for _ in range(calls):
        run()
    return (time.process_time() - c0) / calls


def train_case(quick):
    batch = 16 if quick else BATCH
    built = {}

    def keep(name, make):
        def factory():
            built[name] = side = make(batch)
            return side
        return factory

    def extras(sides):
        cpu = {name: _cpu_seconds(side.run) for name, side in built.items()}
        more = {f"{name}_cpu_s": s for name, s in cpu.items()}
        if "torch_torchdiffeq" in cpu:
            more["ratio_cpu"] = cpu["torch_torchdiffeq"] / cpu["neurodyn"]
        if not quick:
            more["bounded_rollouts"] = bounded_rollouts()
        return more

    return Case(
        name=f"hybrid_train_step_B{batch}",
        description=f"HybridEBM training step, d {D}, hidden ({H1}, {H2}) tanh/polynomial, batch {batch}, rk4 "
                    f"{STEPS} steps, backprop + Adam, float64",
        params={"d": D, "hidden": [H1, H2], "activations": ["tanh", "polynomial"], "batch": batch, "steps": STEPS,
                "t": [0.0, T_END], "outputs": OUTS, "dtype": "float64", "init": f"nd.HybridEBM(seed={SEED})",
                "data_seed": DATA_SEED, "compare": "the loss at the initial parameters"},
        neurodyn=keep("neurodyn", nd_side), peers={"torch_torchdiffeq": keep("torch_torchdiffeq", torch_side)},
        rtol=1e-5, atol=1e-9, agree=1e-5, agree_metric="rel_l2",
        agree_why="the loss and every gradient at the shared start (relative L2 per tensor); torchdiffeq's rk4 is "
                  "the 3/8 rule",
        targets=[Target("torch_torchdiffeq", 3.0, "training step >= 3x faster than PyTorch + torchdiffeq")],
        extras=extras, **hybrid_floors(batch),
    )


def build(quick: bool, timer_cfg) -> list:
    return [train_case(quick)]


from neural_ode_cases import markdown_extras  # noqa: E402,F401  (renders the GEMM floor table)
