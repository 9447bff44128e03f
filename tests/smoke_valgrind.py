"""A short run through every kernel family, for a memory checker (not collected by pytest).

    PYTHONMALLOC=malloc valgrind --leak-check=no --error-exitcode=3 python tests/smoke_valgrind.py
"""
import numpy as np

import neurodyn as nd


def expect(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{fn} did not raise {exc.__name__}")


def main():
    rng = np.random.default_rng(0)
    y0 = rng.normal(size=(3, 3))
    t = np.linspace(0.0, 0.2, 4)
    for dtype in (np.float64, np.float32):
        y = y0.astype(dtype)
        for method in ("dopri5", "rk4", "midpoint", "euler"):
            nd.odeint(nd.fields.Lorenz(), y, t.astype(dtype), method=method, dt=0.05)
        nd.odeint(nd.fields.Linear(-np.eye(3, dtype=dtype)), y, t, return_info=True)
        nd.odeint(nd.fields.MLP([rng.normal(size=(3, 5)).astype(dtype), rng.normal(size=(5, 3)).astype(dtype)]), y, t)
        nd.odeint(lambda s, v: -v, y, t)
        nd.solve_ltc(y, y, np.ones_like(y), solver="dopri5")
        nd.ltc_scan(y[None], np.ones_like(y[None]), solver="rk4", steps=2)
        p = rng.normal(size=(6, 3)).astype(dtype)
        nd.hopfield_retrieve(y, p, steps=2)
        nd.hopfield_energy(y, p)
        cur = rng.uniform(size=(4, 2, 3)).astype(dtype)
        nd.lif_run(cur)
        nd.lif_backward(cur, np.ones_like(cur))
        nd.encode.poisson(cur, 3, seed=1)
        q = nd.energies.Quadratic(np.zeros(3), np.eye(3))
        nd.langevin_sample(q, y, steps=3, step_size=0.01, noise_scale=0.1, seed=1)
        nd.langevin_sample(nd.energies.DoubleWell(dim=3), y, steps=3, step_size=0.01, noise_scale=0.1, mala=True,
                           seed=1, clamp=(-2.0, 2.0))
        nd.langevin_sample(lambda x: (0.5 * (x * x).sum(1), x.copy()), y, steps=2, step_size=0.01, seed=1)
    x = rng.normal(size=(2, 4)).astype(np.float32)
    seq = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for model, inp in ((nd.NeuralODE(4, hidden_size=8, num_steps=2, output_size=2, seed=1), x),
                       (nd.Liquid(4, hidden_size=8, num_layers=1, seed=2), seq),
                       (nd.CfC(4, 5, backbone_units=8, seed=3), seq),
                       (nd.LTCCell(4, 5, seed=4), seq),
                       (nd.Hopfield(4, num_patterns=4, pattern_dim=8, seed=5), x)):
        out = model(inp)
        model.loss_and_grad(inp, np.zeros_like(out))
    snn = nd.SNN(4, 3, hidden_sizes=(6,), num_timesteps=3, encoding="poisson", seed=6)
    snn.loss_and_grad(np.abs(x), np.array([0, 2]), seed=1)
    ebm = nd.EBM(3, hidden_sizes=(8,), seed=7)
    ebm.sample(2, steps=2, step_size=0.01, noise_scale=0.01, seed=1)
    expect(nd.IntegrationError, nd.odeint, nd.fields.Lorenz(), y0, [0.0, 10.0], max_steps=3)
    expect(ValueError, nd.odeint, nd.fields.Lorenz(), np.zeros((2, 2)), t)
    expect(ValueError, nd.hopfield_retrieve, y0, np.zeros((4, 5)))
    expect(ZeroDivisionError, nd.odeint, lambda s, v: 1 / 0, y0, t)
    # the kernels' thread pool: inputs past every split's grain, at 2 threads
    nd.set_num_threads(2)
    cur = rng.normal(0.6, 1.0, size=(3, 7, 1100)).astype(np.float32)
    nd.lif_backward(cur, cur, cur)
    nd.lif_run(cur)
    gmm = nd.energies.GaussianMixture(rng.normal(size=(2, 6)), np.stack([np.eye(6)] * 2))
    nd.langevin_sample(gmm, rng.uniform(-1, 1, (1200, 6)), steps=2, step_size=0.05, noise_scale=1.0, seed=3)
    nd.hopfield_retrieve(rng.normal(size=(300, 64)).astype(np.float32), rng.normal(size=(1100, 64)).astype(np.float32))
    nd._core.dense_forward(rng.normal(size=(600, 300)), rng.normal(size=(300, 300)), None)
    nd.set_num_threads(1)
    print("smoke ok")


if __name__ == "__main__":
    main()
