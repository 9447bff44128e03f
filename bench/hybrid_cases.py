"""Hybrid energy model (docs/models.md §11): one training step against PyTorch autograd +
torchdiffeq, its GEMM floor, and the bounded-rollout experiment against an unconstrained
NeuralODE field.

    python bench/hybrid_cases.py [--quick] [--threads N]

The training step: d = 2, hidden (64, 32), activations (tanh, polynomial p = 3), the gradient
form dz/dt = -grad H(z); a batch of 256 windows rolled out over t = [0, 1] by rk4 with 20
steps of 0.05, MSE against targets at the 10 output times 0.1, ..., 1.0, the gradient of every
parameter through the solver (backprop), then one Adam update; float64 on both sides.
neurodyn: ``HybridEBM.window_loss_and_grad`` (the field, its VJP with Hessian-vector products
and parameter gradients, all in C) + ``nd.optim.Adam``. PyTorch: the same energy as a module,
grad H by ``torch.autograd.grad(create_graph=True)`` (the double backward), torchdiffeq's rk4
(its 3/8-rule variant: 4 evaluations per step, the same cost), ``loss.backward()`` and
``torch.optim.Adam``. Both sides start from the same parameters and data.

The GEMM floor: the matrix products the step cannot avoid, timed alone on neurodyn's OpenBLAS
at the case's shapes: per stage of the forward solve the two layer products and the two
backward products of grad H (4), and per stage of the backward pass the same 4 again, the 4
tangent products of the Hessian-vector product and the 4 weight-gradient products (12).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

D, H1, H2, BATCH, STEPS, T_END, OUTS = 2, 64, 32, 256, 20, 1.0, 10


def problem(batch, seed=7):
    import numpy as np

    rng = np.random.default_rng(seed)
    z0 = rng.normal(size=(batch, D))
    target = rng.normal(size=(OUTS + 1, batch, D)) * 0.5
    return z0, target


def nd_step(batch):
    import numpy as np

    import neurodyn as nd

    model = nd.HybridEBM(D, hidden_sizes=(H1, H2), activations=("tanh", "polynomial"), seed=2024)
    z0, target = problem(batch)
    times = np.linspace(0.0, T_END, OUTS + 1)
    opt = nd.optim.Adam(lr=1e-3)

    def step():
        value, grads = model.window_loss_and_grad(z0, target, times, method="rk4", dt=T_END / STEPS)
        opt.step(model.params, grads)
        return value

    return model, step


def torch_step(model, batch):
    import numpy as np
    import torch
    import torchdiffeq

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
    z0 = torch.tensor(z0)
    target = torch.tensor(target)
    times = torch.linspace(0.0, T_END, OUTS + 1, dtype=torch.float64)
    opt = torch.optim.Adam(list(p.values()), lr=1e-3)

    def step():
        opt.zero_grad()
        ys = torchdiffeq.odeint(field, z0, times, method="rk4", options={"step_size": T_END / STEPS})
        loss = torch.mean((ys[1:] - target[1:]) ** 2)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def gemm_floor(batch, cfg):
    """Seconds and flops of the step's unavoidable matrix products (module docstring)."""
    import numpy as np

    import neurodyn as nd
    from harness import measure

    rng = np.random.default_rng(0)
    shapes = [(batch, D, H1), (batch, H1, H2), (batch, H2, H1), (batch, H1, D)]  # per evaluation of grad H
    total_t = total_f = 0.0
    for rows, k, n in shapes:
        x = rng.standard_normal((rows, k))
        p = {"l.kernel": rng.standard_normal((k, n))}
        t = measure(lambda: nd.nn.dense(p, "l", x), cfg).median
        total_t += t
        total_f += 2.0 * rows * k * n
    stages = 4 * STEPS
    # forward solve: one set of the 4 products a stage; backward: three (re-evaluation, tangent,
    # weight gradients, each of the same shapes)
    return 4 * stages * total_t, 4 * stages * total_f


def bounded_rollouts(n=1000, seed=12):
    """The certified-ball experiment of tests/test_hybrid.py, and the same starts under the
    field of an unconstrained nd.NeuralODE (tanh(W2 silu(W1 h + b1) + b2), random weights)."""
    import numpy as np

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from harness import TimerConfig, measure_interleaved, set_threads, thread_env

    thread_env(args.threads)
    set_threads(args.threads)
    batch = 16 if args.quick else BATCH
    cfg = TimerConfig(warmup=1 if args.quick else 3, repeats=3 if args.quick else 9, min_sample=0.05,
                      budget=2.0 if args.quick else 20.0)
    record = {"case": "hybrid_train_step", "batch": batch, "d": D, "hidden": [H1, H2], "steps": STEPS,
              "threads": args.threads, "dtype": "float64"}
    model, nd_fn = nd_step(batch)
    fns = {"neurodyn": nd_fn}
    try:
        import torch

        torch.set_num_threads(args.threads)
        fns["torch"] = torch_step(model, batch)
        # the same loss from the same parameters: the two implementations agree (up to rk4's variant)
        m2, f2 = nd_step(batch)
        t2 = torch_step(m2, batch)  # built before f2's Adam update moves m2's parameters
        record["loss_difference"] = abs(t2() - f2())
        record["torch"] = torch.__version__
    except ImportError as exc:
        record["torch"] = f"skipped: {exc}"
    # Samples round-robin (a shared machine's bursts land on both sides), wall time and this
    # process's CPU time per step (one thread: the CPU time is the work, whatever else runs).
    timings = measure_interleaved(fns, cfg)
    for name, fn in fns.items():
        record[f"{name}_s"] = timings[name].median
        c0 = time.process_time()
        for _ in range(3):
            fn()
        record[f"{name}_cpu_s"] = (time.process_time() - c0) / 3
    if "torch" in fns:
        record["ratio"] = record["torch_s"] / record["neurodyn_s"]
        record["ratio_cpu"] = record["torch_cpu_s"] / record["neurodyn_cpu_s"]
    floor_s, flops = gemm_floor(batch, cfg)
    record.update(gemm_floor_s=floor_s, gemm_gflop=flops / 1e9, neurodyn_over_floor=record["neurodyn_s"] / floor_s)
    if not args.quick:
        record["bounded_rollouts"] = bounded_rollouts()
    out = args.out or os.path.join(HERE, "results", "hybrid-quick.json" if args.quick else "hybrid.json")
    with open(out, "w") as f:
        json.dump(record, f, indent=2)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
