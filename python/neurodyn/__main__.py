"""A short tour of neurodyn: ``python -m neurodyn [--family NAME]``.

Each part runs a family's kernels on built-in or generated data and prints what it did,
the key numbers, and how long it took.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import neurodyn as nd


def _timed(label, fn):
    start = time.perf_counter()
    out = fn()
    print(f"  {label:<58s} {1e3 * (time.perf_counter() - start):8.1f} ms")
    return out


def tour_ode() -> None:
    """ODE integration: Lorenz, a batch of trajectories, a damped oscillator, LTC relaxation."""
    print("ODE integration (nd.odeint, nd.solve_ltc) -- all steps in C")
    lorenz = nd.fields.Lorenz()
    t = np.linspace(0.0, 20.0, 2001)
    ys, info = _timed("Lorenz, dopri5 rtol=atol=1e-9, t in [0, 20]",
                      lambda: nd.odeint(lorenz, np.array([1.0, 1.0, 1.0]), t, rtol=1e-9, atol=1e-9,
                                        return_info=True))
    print(f"    {info['accepted']} accepted / {info['rejected']} rejected steps, {info['nfev']} evaluations; "
          f"x(20) = {ys[-1, 0]:+.6f}, z ranges over [{ys[:, 2].min():.2f}, {ys[:, 2].max():.2f}]")

    rng = np.random.default_rng(0)
    batch = rng.normal(size=(1000, 3)) + np.array([0.0, 0.0, 25.0])
    yb = _timed("Lorenz, 1,000 initial states as one batch, t in [0, 2]",
                lambda: nd.odeint(lorenz, batch, [0.0, 2.0], rtol=1e-6, atol=1e-9))
    print(f"    final states: mean |x| = {np.abs(yb[-1, :, 0]).mean():.3f}")

    # x'' + 2 zeta w x' + w^2 x = 0 as a linear field, against its closed form.
    w, zeta = 2.0, 0.1
    osc = nd.fields.Linear([[0.0, 1.0], [-w * w, -2 * zeta * w]])
    ts = np.linspace(0.0, 10.0, 101)
    wd = w * np.sqrt(1 - zeta**2)
    exact = np.exp(-zeta * w * ts) * (np.cos(wd * ts) + zeta * w / wd * np.sin(wd * ts))
    for method, dt in (("euler", 1e-3), ("midpoint", 1e-2), ("rk4", 1e-2), ("dopri5", None)):
        kw = {"dt": dt} if dt else {"rtol": 1e-8, "atol": 1e-10}
        yo = nd.odeint(osc, np.array([1.0, 0.0]), ts, method=method, max_steps=100_000, **kw)
        print(f"    damped oscillator, {method:<8s} max error vs exact: {np.abs(yo[:, 0] - exact).max():.2e}")

    for solver in ("exact", "euler", "midpoint", "rk4", "dopri5"):
        x1 = nd.solve_ltc(1.0, 0.5, 1.0, solver=solver)
        print(f"    solve_ltc(x=1, a=0.5, tau=1), {solver:<8s} -> {float(x1):.10f}")

    try:
        nd.odeint(lambda t, y: y * y, np.array([1.0]), [0.0, 0.5, 2.0])
    except nd.IntegrationError as err:
        print(f"    y' = y^2 from y(0) = 1 blows up at t = 1: IntegrationError at t = {err.t:.6f} "
              f"({err.status}), {len(err.ts)} of 3 outputs kept")


def tour_neural_ode() -> None:
    """Fit a Neural ODE to a damped rotation, with exact backprop and with the adjoint."""
    print("Neural ODE (nd.NeuralODE) -- forward and backward through the solver in C")
    rng = np.random.default_rng(0)
    A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    x0 = rng.uniform(-1.0, 1.0, size=(64, 2))
    t = np.linspace(0.1, 1.0, 10)
    target = nd.odeint(nd.fields.Linear(A), x0, np.concatenate([[0.0], t]), rtol=1e-8, atol=1e-10)[1:]
    for gradient in ("backprop", "adjoint"):
        model = nd.NeuralODE(2, hidden_size=32, output_size=2, num_steps=10, step_size=0.1, solver="rk4",
                             gradient=gradient, seed=0)
        before = model.loss_and_grad(x0, target, t=t)[0]
        history = _timed(f"fit a damped rotation, rk4, gradient={gradient!r}, 40 epochs",
                         lambda: model.fit(x0, target.astype(np.float32), t=t, epochs=40, batch_size=16,
                                           lr=1e-2, seed=0, verbose=False))
        print(f"    trajectory MSE {before:.4f} -> {history['loss'][-1]:.4f} "
              f"({model.param_count():,} parameters)")


FAMILIES = {"ode": tour_ode, "neural_ode": tour_neural_ode}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurodyn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append",
                        help="run only this part (may be repeated); default: all")
    args = parser.parse_args(argv)
    cfg = nd.show_config()
    print(f"neurodyn {cfg['neurodyn']} (numpy {cfg['numpy']}; {cfg['config'].strip()}, "
          f"{cfg['num_threads']} BLAS threads)\n")
    start = time.perf_counter()
    for name in args.family or list(FAMILIES):
        FAMILIES[name]()
        print()
    print(f"tour finished in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
