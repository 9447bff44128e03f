"""Concurrency and determinism.

The kernels release the GIL, so several Python threads run them at once. Every case here
computes a result serially, then has 8 threads compute the same kind of result (each on
its own inputs) at the same moment, started together by a barrier, and checks the bits.
Seeded work (samplers, Poisson encoding, seeded initialisation and training) must also give
the same bits for 1 or 2 BLAS threads and across repeated runs.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import neurodyn as nd

N_THREADS = 8
ROUNDS = 5  # calls per thread after the barrier: the threads keep overlapping


def _same(a, b):
    """Bit-identical, recursively through tuples, lists and dicts of arrays or numbers."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def _run_concurrently(calls):
    """Run ``calls[i]()`` in thread i, all released at once, ROUNDS times each; return every
    thread's results."""
    barrier = threading.Barrier(len(calls))

    def work(call):
        barrier.wait()
        return [call() for _ in range(ROUNDS)]

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(work, calls))


def _check_against_serial(make_call):
    """``make_call(i)`` -> a zero-argument callable for thread i."""
    calls = [make_call(i) for i in range(N_THREADS)]
    serial = [call() for call in calls]
    for i, results in enumerate(_run_concurrently(calls)):
        for r in results:
            _same(r, serial[i])


# -- the cases: make(i) gives thread i its own inputs (shared models are read only) --------

def _odeint_lorenz_rk4(i):
    y0 = np.random.default_rng(i).normal(size=(64, 3))
    t = np.linspace(0.0, 1.0, 21)
    f = nd.fields.Lorenz()
    return lambda: nd.odeint(f, y0, t, method="rk4", dt=0.005)


def _odeint_lorenz_dopri5(i):
    y0 = np.random.default_rng(100 + i).normal(size=(32, 3)).astype(np.float32)
    t = np.linspace(0.0, 0.5, 11, dtype=np.float32)
    f = nd.fields.Lorenz()
    return lambda: nd.odeint(f, y0, t, method="dopri5", rtol=1e-6, atol=1e-8, return_info=True)


_MLP_W = [np.random.default_rng(7).normal(scale=0.3, size=s) for s in ((8, 32), (32, 8))]


def _odeint_mlp_dopri5(i):
    y0 = np.random.default_rng(200 + i).normal(size=(64, 8))
    f = nd.fields.MLP(_MLP_W)
    return lambda: nd.odeint(f, y0, [0.0, 0.5, 1.0], method="dopri5", rtol=1e-7, atol=1e-9)


_PATTERNS = np.random.default_rng(3).normal(size=(128, 64))


def _hopfield(i):
    q = np.random.default_rng(300 + i).normal(size=(48, 64))
    return lambda: (nd.hopfield_retrieve(q, _PATTERNS, beta=0.5, steps=3),
                    nd.hopfield_energy(q, _PATTERNS, beta=0.5))


def _lif_run(i):
    currents = np.random.default_rng(400 + i).uniform(0.0, 0.6, size=(30, 16, 40)).astype(np.float32)
    return lambda: nd.lif_run(currents, tau=2.0)


_SNN = nd.SNN(20, 5, hidden_sizes=(48, 32), num_timesteps=12, encoding="poisson", seed=11)


def _snn_forward(i):
    x = np.random.default_rng(500 + i).uniform(size=(16, 20)).astype(np.float32)
    y = np.arange(16) % 5
    return lambda: (_SNN(x, seed=i), _SNN.loss_and_grad(x, y, seed=i))


_LIQUID = nd.Liquid(12, hidden_size=32, num_layers=2, dropout=0.0, seed=12)


def _liquid_forward(i):
    x = np.random.default_rng(600 + i).normal(size=(4, 10, 12)).astype(np.float32)
    return lambda: _LIQUID(x)


_QUAD = nd.energies.Quadratic(np.zeros(6), np.eye(6) * 2.0 + 0.1)


def _langevin(i):
    x0 = np.random.default_rng(700 + i).normal(size=(32, 6))
    return lambda: (nd.langevin_sample(_QUAD, x0, steps=40, step_size=0.01, noise_scale=0.3, seed=i),
                    nd.langevin_sample(_QUAD, x0, steps=40, step_size=0.01, noise_scale=0.3, mala=True, seed=i,
                                       return_info=True))


_EBM = nd.EBM(8, hidden_sizes=(32, 16), seed=13)


def _langevin_ebm(i):
    return lambda: _EBM.sample(16, steps=20, step_size=0.05, noise_scale=0.05, seed=i)


_NODE = nd.NeuralODE(6, hidden_size=32, num_steps=5, step_size=0.1, output_size=3, seed=14)


def _neural_ode(i):
    rng = np.random.default_rng(800 + i)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = rng.normal(size=(16, 3)).astype(np.float32)
    return lambda: (_NODE(x), _NODE.loss_and_grad(x, y))


CASES = {
    "odeint_lorenz_rk4": _odeint_lorenz_rk4,
    "odeint_lorenz_dopri5": _odeint_lorenz_dopri5,
    "odeint_mlp_dopri5": _odeint_mlp_dopri5,
    "hopfield": _hopfield,
    "lif_run": _lif_run,
    "snn": _snn_forward,
    "liquid": _liquid_forward,
    "langevin": _langevin,
    "langevin_ebm": _langevin_ebm,
    "neural_ode": _neural_ode,
}


@pytest.mark.parametrize("name", list(CASES))
def test_threads_match_serial(name):
    _check_against_serial(CASES[name])


@pytest.mark.parametrize("threads", [1, 2])
def test_mixed_kernels_match_serial(threads, set_threads):
    """Every thread runs a different family at once: seeded samplers (which hold BLAS to one
    thread while they run) overlap GEMM-heavy kernels of other threads."""
    set_threads(threads)
    names = list(CASES)
    _check_against_serial(lambda i: CASES[names[i % len(names)]](i))


# -- determinism across BLAS thread counts and runs -------------------------------------

def _seeded_results():
    out = {}
    x0 = np.random.default_rng(1).normal(size=(64, 6))
    out["langevin"] = nd.langevin_sample(_QUAD, x0, steps=50, step_size=0.01, noise_scale=0.3, seed=5)
    out["mala"] = nd.langevin_sample(_QUAD, x0, steps=50, step_size=0.01, noise_scale=0.3, mala=True, seed=5,
                                     return_info=True)
    out["mala_f32"] = nd.langevin_sample(_QUAD, x0.astype(np.float32), steps=50, step_size=0.01,
                                         noise_scale=0.3, mala=True, seed=5)
    ebm = nd.EBM(16, hidden_sizes=(64, 64), seed=21)
    out["ebm_params"] = dict(ebm.params)
    out["ebm_sample"] = ebm.sample(48, steps=30, step_size=0.05, noise_scale=0.05, seed=6)
    out["ebm_mala"] = ebm.sample(48, steps=30, step_size=0.05, noise_scale=0.05, mala=True, seed=6)
    out["poisson"] = nd.encode.poisson(np.random.default_rng(2).uniform(size=(32, 50)), 20, seed=7)
    out["poisson_f32"] = nd.encode.poisson(np.random.default_rng(2).uniform(size=(32, 50)).astype(np.float32),
                                           20, seed=7)
    for name, make in (("snn", lambda: nd.SNN(10, 3, hidden_sizes=(24,), num_timesteps=8, encoding="poisson",
                                              seed=22)),
                       ("liquid", lambda: nd.Liquid(6, hidden_size=16, num_layers=1, dropout=0.1, seed=23)),
                       ("neural_ode", lambda: nd.NeuralODE(6, hidden_size=16, num_steps=4, output_size=3, seed=24)),
                       ("hopfield", lambda: nd.Hopfield(6, num_patterns=8, pattern_dim=16, seed=25)),
                       ("cfc", lambda: nd.CfC(6, 12, backbone_units=16, seed=26)),
                       ("ltccell", lambda: nd.LTCCell(6, 8, seed=27))):
        out[name + "_init"] = dict(make().params)
    return out


def _split_kernel_results():
    """Kernels whose work nd.set_num_threads(2) splits over two threads of the kernels' pool: inputs large
    enough to pass their grain, and odd sizes so the ranges end mid-vector and mid-byte."""
    rng = np.random.default_rng(4)
    cur = rng.normal(0.6, 1.0, size=(9, 13, 1001)).astype(np.float32)
    dspk = rng.normal(size=cur.shape).astype(np.float32)
    out = {"lif_run": nd.lif_run(cur), "lif_backward": nd.lif_backward(cur, dspk, dspk),
           "lif_zero_delay": nd.lif_run(cur.astype(np.float64), reset="zero", reset_delay=True)}
    gmm = nd.energies.GaussianMixture(rng.normal(size=(3, 7)), np.stack([np.eye(7)] * 3))
    out["langevin"] = nd.langevin_sample(gmm, rng.uniform(-1, 1, (1031, 7)), steps=7, step_size=0.05,
                                         noise_scale=1.0, clamp=(-2.0, 2.0), seed=5, verbose=False)
    out["mala"] = nd.langevin_sample(gmm, rng.uniform(-1, 1, (1031, 7)), steps=7, step_size=0.05,
                                     noise_scale=1.0, mala=True, seed=6, return_info=True, verbose=False)
    # large products are cut into blocks shared by the threads: OpenBLAS must see the same calls
    x_big = rng.normal(size=(1000, 300)).astype(np.float32)
    out["dense_forward"] = nd._core.dense_forward(x_big, rng.normal(size=(300, 700)).astype(np.float32), None)
    # 1-8 million multiply-adds: blocks under OpenBLAS's small-matrix limit, where its kernels
    # have that path (nd_blas.c), in both precisions, an odd row count ending a block short
    for dt in (np.float32, np.float64):
        out[f"dense_mid_{np.dtype(dt).name}"] = nd._core.dense_forward(
            rng.normal(size=(509, 64)).astype(dt), rng.normal(size=(64, 64)).astype(dt),
            rng.normal(size=64).astype(dt))
        # blocks of columns and of 16 rows under the limit
        out[f"dense_cols_{np.dtype(dt).name}"] = nd._core.dense_forward(
            rng.normal(size=(128, 64)).astype(dt), rng.normal(size=(64, 256)).astype(dt), None)
        out[f"dense_thin_{np.dtype(dt).name}"] = nd._core.dense_forward(
            rng.normal(size=(1021, 256)).astype(dt), rng.normal(size=(256, 64)).astype(dt), None)
        # the gradients' products: dy w^T with w^T copied, x^T dy summed over slices of the rows
        out[f"dense_mid_grad_{np.dtype(dt).name}"] = nd._core.dense_backward(
            rng.normal(size=(1021, 64)).astype(dt), rng.normal(size=(64, 64)).astype(dt),
            rng.normal(size=(1021, 64)).astype(dt), True)
    spk = (rng.random((3001, 300)) < 0.05).astype(np.float32)
    sp = {"fc.kernel": rng.normal(size=(300, 200)).astype(np.float32), "fc.bias": np.zeros(200, np.float32)}
    out["spike_dense"] = nd.nn.dense(sp, "fc", spk, spikes=True)
    out["spike_dense_grad"] = {}
    nd.nn.dense_grad(sp, "fc", spk, rng.normal(size=(3001, 200)).astype(np.float32), out["spike_dense_grad"],
                     need_dx=False, spikes=True)
    out["hopfield"] = nd.hopfield_retrieve(rng.normal(size=(300, 128)).astype(np.float32),
                                           rng.normal(size=(2000, 128)).astype(np.float32), 0.1)
    snn = nd.SNN(12, 3, hidden_sizes=(67,), num_timesteps=9, seed=7)  # layers over 1003 x 67 neurons
    x = rng.uniform(size=(1003, 12)).astype(np.float32)
    out["snn_forward"] = snn(x)
    snn.fit(x, rng.integers(0, 3, 1003), epochs=1, batch_size=1003, seed=8, verbose=False)
    out["snn_trained"] = dict(snn.params)
    # the LTC cell's samples in groups of whole blocks of 8: 27 samples are 4 groups, the last short
    ltc = nd.LTCCell(6, 19, ode_unfolds=3, seed=9)
    seq = rng.normal(size=(27, 5, 6)).astype(np.float32)
    out["ltccell_forward"] = ltc.forward_sequence(seq)
    out["ltccell_grads"] = ltc.loss_and_grad(seq, rng.normal(size=(27, 19)).astype(np.float32), loss="mse")
    return out


def _training_results():
    """A few minibatch steps of small seeded models (dropout and Poisson noise included)."""
    rng = np.random.default_rng(3)
    out = {}
    x = rng.uniform(size=(32, 10)).astype(np.float32)
    labels = rng.integers(0, 3, size=32)
    snn = nd.SNN(10, 3, hidden_sizes=(24,), num_timesteps=8, encoding="poisson", seed=31)
    snn.fit(x, labels, epochs=2, batch_size=8, seed=32)
    out["snn"] = dict(snn.params)
    seq = rng.normal(size=(16, 5, 6)).astype(np.float32)
    liquid = nd.Liquid(6, hidden_size=16, num_layers=1, dropout=0.1, output_size=2, seed=33)
    liquid.fit(seq, rng.normal(size=(16, 2)).astype(np.float32), epochs=2, batch_size=4, seed=34)
    out["liquid"] = dict(liquid.params)
    node = nd.NeuralODE(6, hidden_size=16, num_steps=4, output_size=2, seed=35)
    node.fit(seq[:, 0], rng.normal(size=(16, 2)).astype(np.float32), epochs=2, batch_size=4, seed=36)
    out["neural_ode"] = dict(node.params)
    ebm = nd.EBM(6, hidden_sizes=(16, 16), seed=37)
    ebm.fit(seq[:, 0], epochs=2, batch_size=8, langevin={"steps": 5}, seed=38)
    out["ebm"] = dict(ebm.params)
    return out


@pytest.mark.parametrize("produce", [_seeded_results, _split_kernel_results, _training_results],
                         ids=["seeded", "split", "training"])
def test_same_bits_for_any_blas_thread_count_and_run(produce, set_threads):
    set_threads(1)
    first = produce()
    again = produce()
    set_threads(2)
    two = produce()
    _same(again, first)
    _same(two, first)


def test_seeded_sampling_concurrent_with_two_threads(set_threads):
    """Seeded samplers in 8 threads while the thread count is 2 give the bits of each
    sampler run alone at 1 thread."""
    set_threads(2)
    ebm = nd.EBM(32, hidden_sizes=(96, 96), seed=41)

    def make(i):
        return lambda: ebm.sample(64, steps=15, step_size=0.05, noise_scale=0.05, seed=i)

    set_threads(1)
    reference = [make(i)() for i in range(N_THREADS)]
    set_threads(2)
    for i, results in enumerate(_run_concurrently([make(i) for i in range(N_THREADS)])):
        for r in results:
            _same(r, reference[i])
    assert nd.get_num_threads() == 2


def test_thread_count_set_inside_a_sampler_is_kept(set_threads):
    """A count set from inside a sampler's callback is the count afterwards, and reading the
    count there gives the caller's count."""
    set_threads(2)
    seen = []

    def energy(x):
        seen.append(nd.get_num_threads())
        if len(seen) == 2:
            nd.set_num_threads(3)
        return 0.5 * np.sum(x * x, axis=1), x.copy()

    nd.langevin_sample(energy, np.zeros((4, 3)), steps=3, step_size=0.01, seed=1)
    assert seen[:2] == [2, 2] and set(seen[2:]) == {3}
    assert nd.get_num_threads() == 3
