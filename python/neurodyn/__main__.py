"""A short tour of neurodyn: ``python -m neurodyn [--family NAME]``.

Each part runs a family's kernels on built-in or generated data and prints what it did,
the key numbers, and how long it took. Under each figure, a line starting with ``=`` says how
to read it: what a good value is, and what chance (or a trivial answer) would give.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time

import numpy as np

import neurodyn as nd


def _timed(label, fn):
    start = time.perf_counter()
    out = fn()
    print(f"  {label:<58s} {1e3 * (time.perf_counter() - start):8.1f} ms")
    return out


def _means(text):
    """How to read the figure printed just above."""
    print(textwrap.fill(text, width=100, initial_indent="      = ", subsequent_indent="        "))


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
    _means("few rejected steps: the step-size controller predicts well; the orbit stays on the attractor "
           "(z within about [0, 50]), while x(20) itself is chaotic and agrees between solvers only to a few digits")

    rng = np.random.default_rng(0)
    batch = rng.normal(size=(1000, 3)) + np.array([0.0, 0.0, 25.0])
    yb = _timed("Lorenz, 1,000 initial states as one batch, t in [0, 2]",
                lambda: nd.odeint(lorenz, batch, [0.0, 2.0], rtol=1e-6, atol=1e-9))
    print(f"    final states: mean |x| = {np.abs(yb[-1, :, 0]).mean():.3f}")
    _means("the states have reached the attractor's two wings, where |x| is about 10 on average; "
           "1,000 trajectories cost one call")

    # x'' + 2 zeta w x' + w^2 x = 0 as a linear field, against its closed form.
    w, zeta = 2.0, 0.1
    osc = nd.fields.Linear([[0.0, 1.0], [-w * w, -2 * zeta * w]])
    ts = np.linspace(0.0, 10.0, 101)
    wd = w * np.sqrt(1 - zeta**2)
    exact = np.exp(-zeta * w * ts) * (np.cos(wd * ts) + zeta * w / wd * np.sin(wd * ts))
    for method, dt in (("euler", 1e-3), ("midpoint", 1e-2), ("rk4", 1e-2), ("dopri5", None)):
        yo = (nd.odeint(osc, np.array([1.0, 0.0]), ts, method=method, max_steps=100_000, dt=dt) if dt else
              nd.odeint(osc, np.array([1.0, 0.0]), ts, method=method, max_steps=100_000, rtol=1e-8, atol=1e-10))
        print(f"    damped oscillator, {method:<8s} max error vs exact: {np.abs(yo[:, 0] - exact).max():.2e}")
    _means("error against the closed form: 0 is perfect; euler's error is of order dt, midpoint's dt^2, "
           "rk4's dt^4, and dopri5 stays near its tolerance 1e-8")

    for solver in ("exact", "euler", "midpoint", "rk4", "dopri5"):
        x1 = nd.solve_ltc(1.0, 0.5, 1.0, solver=solver)
        print(f"    solve_ltc(x=1, a=0.5, tau=1), {solver:<8s} -> {float(x1):.10f}")
    _means("exact is 0.5 + 0.5/e = 0.6839397206; one step of euler, midpoint and rk4 gives the "
           "polynomials 0.5, 0.75, 0.6875 of docs/models.md section 1; dopri5 is within its rtol 1e-2")

    try:
        nd.odeint(lambda t, y: y * y, np.array([1.0]), [0.0, 0.5, 2.0])
    except nd.IntegrationError as err:
        print(f"    y' = y^2 from y(0) = 1 blows up at t = 1: IntegrationError at t = {err.t:.6f} "
              f"({err.status}), {len(err.ts)} of 3 outputs kept")
        _means("the exact solution 1/(1 - t) is infinite at t = 1: the solver stops just short of it and "
               "raises instead of returning garbage")


def tour_neural_ode() -> None:
    """Fit a Neural ODE to a damped rotation, with exact backprop and with the adjoint."""
    print("Neural ODE (nd.NeuralODE) -- forward and backward through the solver in C")
    rng = np.random.default_rng(0)
    A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    x0 = rng.uniform(-1.0, 1.0, size=(64, 2))
    t = np.linspace(0.1, 1.0, 10)
    target = nd.odeint(nd.fields.Linear(A), x0, np.concatenate([[0.0], t]), rtol=1e-8, atol=1e-10)[1:]
    trivial = float(np.mean(target ** 2))
    for gradient in ("backprop", "adjoint"):
        model = nd.NeuralODE(2, hidden_size=32, output_size=2, num_steps=10, step_size=0.1, solver="rk4",
                             gradient=gradient, seed=0)
        before = model.loss_and_grad(x0, target, t=t)[0]
        _timed(f"fit a damped rotation, rk4, gradient={gradient!r}, 40 epochs",
               lambda: model.fit(x0, target.astype(np.float32), t=t, epochs=40, batch_size=16, lr=1e-2, seed=0,
                                 verbose=False))
        after = model.loss_and_grad(x0, target, t=t)[0]
        print(f"    trajectory MSE {before:.4f} -> {after:.4f} "
              f"({model.param_count():,} parameters)")
    _means(f"mean squared error over the 10 output times: 0 is perfect; predicting 0 everywhere gives "
           f"{trivial:.3f}; both gradients are exact, so the two fits end at the same loss")


def tour_liquid() -> None:
    """Liquid time-constant networks: Edifice's Liquid model, streaming, and the LTC and CfC cells."""
    print("Liquid networks (nd.Liquid, nd.LTCCell, nd.CfC) -- scans and their gradients in C")
    rng = np.random.default_rng(0)
    # Which of three waveforms, from 24 irregular samples of it.
    n, T = 192, 24
    t = np.sort(rng.uniform(0, 6, size=(n, T)), axis=1)
    kind = rng.integers(0, 3, size=n)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    s = np.sin(2 * t + phase)
    wave = np.where(kind[:, None] == 0, s, np.where(kind[:, None] == 1, np.sign(s), 2 * ((t + phase) / np.pi % 1) - 1))
    dt = np.diff(t, axis=1, prepend=0.0) + 1e-3
    x = np.stack([wave + 0.1 * rng.normal(size=wave.shape), dt], axis=-1).astype(np.float32)
    train, test = slice(0, 128), slice(128, None)
    model = nd.Liquid(2, hidden_size=16, num_layers=1, solver="exact", output_size=3, dropout=0.0, seed=0)
    _timed("Liquid (hidden 16, exact solver): classify 3 waveforms, 30 epochs",
           lambda: model.fit(x[train], kind[train], loss="cross_entropy", epochs=30, batch_size=32, lr=1e-2,
                             seed=0, verbose=False))
    acc = (model(x[test]).argmax(1) == kind[test]).mean()
    print(f"    held-out accuracy {acc:.2f} (chance 0.33)")
    _means("the fraction of the 64 unseen sequences classified right: 1.0 is perfect, guessing gives 0.33")
    cache, last = model.init_cache(4), None
    for k in range(T):
        last, cache = model.step(x[test][:4, k], cache)
    print(f"    streaming step() over the sequence matches the whole call: "
          f"max |diff| {np.abs(last - model(x[test][:4])).max():.1e}")
    _means("float32 rounding (about 1e-6) is agreement: the step-by-step state is the whole call's")
    # The CfC's state is rebuilt from its backbone at every step (docs/models.md section 3), so
    # remembering the statistics of a whole sequence takes it more units and smaller, more
    # numerous Adam steps than the LTC cell: with 8 units at the LTC's rate it stalls near
    # chance, or at 0.67 (square waves told apart, sine and sawtooth not), depending on the seed.
    # Smaller settings were at the mercy of rounding: 16 units, backbone 32, 120 epochs at 2e-3
    # reached 0.92 with OpenBLAS's Haswell kernels and 0.44 with its SkylakeX kernels, same seed.
    # These reach 0.72-0.95 over four seeds with either.
    cells = ((nd.LTCCell(1, 8, output_size=3, seed=0), {"epochs": 40, "batch_size": 32, "lr": 5e-2}),
             (nd.CfC(1, 24, backbone_units=64, output_size=3, seed=0), {"epochs": 200, "batch_size": 16, "lr": 1.5e-3}))
    for cell, options in cells:
        _timed(f"{type(cell).__name__}: the same task with per-sample timespans, {options['epochs']} epochs",
               lambda: cell.fit(x[train, :, :1], kind[train], timespans=dt[train], loss="cross_entropy", seed=0,
                                verbose=False, **options))
        acc = (cell(x[test, :, :1], timespans=dt[test]).argmax(1) == kind[test]).mean()
        print(f"    held-out accuracy {acc:.2f} (chance 0.33)")
    _means("these cells see only the noisy wave values and the time between samples: telling sine from "
           "sawtooth needs the distribution of the values over the whole sequence")


def tour_snn() -> None:
    """Spiking networks on scikit-learn's bundled digits, and ANN-to-SNN conversion."""
    print("Spiking networks (nd.lif_run, nd.SNN, nd.ann2snn) -- LIF loops and surrogate BPTT in C")
    s, v = nd.lif_run(np.full((6, 1, 1), 0.75), beta=0.5)
    print(f"    one LIF neuron, beta 0.5, I = 0.75: spikes {s.ravel().astype(int).tolist()}, "
          f"membrane {v.ravel().tolist()}")
    _means("the membrane decays by beta and adds I each step; crossing the threshold 1 gives a spike and "
           "subtracts 1 (docs/models.md section 5)")
    print(f"    integrate-and-fire rates: I=0.35, T=10 -> {float(nd.if_neuron(0.35, 10)):.2f}; "
          f"I=1.0, T=100 -> {float(nd.if_neuron(1.0, 100)):.2f}")
    _means("an integrate-and-fire neuron fires ceil(T I) - 1 times in T steps: its rate approaches the "
           "current I as T grows")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("    (scikit-learn is not installed: the digits demo is skipped; pip install scikit-learn)")
        return
    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    net = nd.SNN(64, 10, hidden_sizes=(128,), num_timesteps=10, seed=0)
    _timed("SNN 64-128-10, T=10: 8 epochs of BPTT on 1,400 digits",
           lambda: net.fit(x[train], y[train], epochs=8, batch_size=64, lr=2e-3, seed=0, verbose=False))
    print(f"    held-out accuracy {(net(x[test]).argmax(1) == y[test]).mean():.3f}")
    _means(f"the fraction of the {len(test)} unseen digits classified right: chance is 0.10; "
           "a good ANN reaches about 0.98")
    ann = nd.ANN(64, hidden_sizes=(128, 64), output_size=10, seed=0)
    _timed("ANN 64-128-64-10: 20 epochs",
           lambda: ann.fit(x[train], y[train], epochs=20, batch_size=64, lr=2e-3, seed=0, verbose=False))
    acc = (ann(x[test]).argmax(1) == y[test]).mean()
    line = ", ".join(f"T={T}: {(nd.ann2snn(ann, x[train][:500], num_timesteps=T)(x[test]).argmax(1) == y[test]).mean():.3f}"
                     for T in (10, 30, 100))
    print(f"    ANN accuracy {acc:.3f}; converted SNN {line}")
    _means("the converted network's rates are multiples of 1/T, so it approaches the ANN's accuracy "
           "as the number of time steps T grows")


def tour_hopfield() -> None:
    """Associative memories: corrupted digits retrieved by modern and classical Hopfield nets."""
    print("Hopfield memories (nd.hopfield_retrieve, nd.ClassicalHopfield) -- fused retrieval in C")
    rng = np.random.default_rng(0)
    d, N = 128, 1280
    Y = np.where(rng.random((N, d)) < 0.5, -1.0, 1.0).astype(np.float32)
    q = Y[:256].copy()
    q[rng.random(q.shape) < 0.2] *= -1
    out = _timed(f"modern memory: {N:,} random +-1 patterns of {d}, 256 queries 20% corrupted",
                 lambda: nd.hopfield_retrieve(q, Y, beta=0.5))
    print(f"    recalled exactly: {(np.sign(out) == Y[:256]).all(axis=1).mean():.3f} "
          f"(beta from Ramsauer's Theorem 3 for these patterns: {nd.hopfield_separation(Y[:256])['beta_min']:.3g})")
    _means("the fraction of queries whose sign is their stored pattern, every bit right: 1.0 is perfect, "
           "a random guess would essentially never be; beta 0.5 is above the theorem's bound")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("    (scikit-learn is not installed: the digits demo is skipped)")
        return
    digits = load_digits()
    stored = np.stack([digits.data[digits.target == k][0] for k in range(10)])
    bipolar = np.where(stored > 7, 1.0, -1.0)
    net = nd.ClassicalHopfield(64)
    net.store(bipolar, rule="pseudoinverse")
    noisy = bipolar.copy()
    noisy[rng.random(noisy.shape) < 0.1] *= -1
    back = net.recall(noisy, seed=0)
    print(f"    classical net (pseudo-inverse rule), 10 digits, 10% flipped pixels: "
          f"{(back == bipolar).all(axis=1).mean():.1f} recalled exactly")
    _means("ten digits are more than a 64-neuron classical net holds reliably (Hebbian capacity is about "
           "0.138 x 64 = 9 random patterns, and digits are correlated): some fall into a neighbour's basin")
    modern = nd.hopfield_retrieve(noisy, bipolar, beta=0.5)
    print(f"    modern memory on the same digits: {(np.sign(modern) == bipolar).all(axis=1).mean():.1f} recalled exactly")
    _means("the modern memory's capacity grows exponentially with the dimension: ten patterns are few")


def tour_ebm() -> None:
    """Langevin sampling and MALA on analytic energies; a small EBM trained by contrastive divergence."""
    print("Energy-based models (nd.langevin_sample, nd.EBM) -- every Langevin step in C")
    well = nd.energies.DoubleWell(barrier=1.0, tilt=0.5)
    x, info = _timed("MALA on a tilted double well: 4,000 chains x 2,000 steps",
                     lambda: nd.langevin_sample(well, np.zeros((4000, 1)), steps=2000, step_size=0.05,
                                                noise_scale=1.0, mala=True, seed=0, return_info=True,
                                                verbose=False))
    grid = np.linspace(-4, 4, 20001)
    density = np.exp(-(((grid ** 2) - 1) ** 2 + 0.5 * grid))
    left = density[grid < 0].sum() / density.sum()
    print(f"    left-well occupancy {(x < 0).mean():.3f} (Boltzmann {left:.3f}), "
          f"acceptance {info['acceptance_rate']:.2f}")
    _means(f"MALA samples the Boltzmann density exactly, so the two agree up to the sampling error of "
           f"{len(x):,} chains (about {np.sqrt(left * (1 - left) / len(x)):.3f}); high acceptance means small steps")
    rng = np.random.default_rng(0)
    data = (0.1 * rng.normal(size=(1024, 2)) + [0.5, -0.3]).astype(np.float32)
    ebm = nd.EBM(2, hidden_sizes=(64, 64), seed=0)
    settings = {"steps": 20, "step_size": 0.1, "noise_scale": 0.05, "clamp": (-1.2, 1.2)}
    _timed("EBM (64, 64) on a 2-D blob: 3 epochs of contrastive divergence, replay buffer",
           lambda: ebm.fit(data, epochs=3, lr=1e-2, batch_size=128, langevin=settings, seed=0, verbose=False))
    noise = rng.uniform(-1.2, 1.2, size=(2048, 2)).astype(np.float32)
    print(f"    mean energy: data {ebm.energy(data).mean():+.3f}, uniform noise {ebm.energy(noise).mean():+.3f} "
          f"(lower = more likely)")
    _means("only differences of energy matter: the data should sit clearly lower than noise "
           "(an untrained model gives both about the same energy)")


FAMILIES = {"ode": tour_ode, "neural_ode": tour_neural_ode, "liquid": tour_liquid, "hopfield": tour_hopfield,
            "snn": tour_snn, "ebm": tour_ebm}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurodyn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append",
                        help="run only this part (may be repeated); default: all")
    args = parser.parse_args(argv)
    cfg = nd.show_config()
    omp = f"kernel threads: {cfg['thread_pool']}"
    print(f"neurodyn {cfg['neurodyn']} (numpy {cfg['numpy']}; {cfg['blas_config'].strip()}; {omp}; "
          f"{cfg['kernel_threads']} thread(s))\n")
    start = time.perf_counter()
    for name in args.family or list(FAMILIES):
        FAMILIES[name]()
        print()
    print(f"tour finished in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
