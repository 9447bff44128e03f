"""nd.dask: the batched kernels over the chunks of a dask array, on a two-process cluster,
give the bits of the single-process call."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

import neurodyn as nd  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _ran_on_workers(client, arr):
    """The result of arr, checking its chunks were computed on more than one worker."""
    fut = client.compute(arr.to_delayed().ravel().tolist())
    parts = client.gather(fut)
    where = client.who_has(fut)
    workers = {w for ws in where.values() for w in ws}
    return parts, workers


def test_lazy_import():
    import importlib
    import subprocess
    import sys

    code = "import sys, neurodyn; assert 'dask' not in sys.modules; neurodyn.dask; assert 'dask' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importlib.import_module("neurodyn.dask") is nd.dask


def test_lorenz_ensemble_equals_single_process(client):
    rng = np.random.default_rng(0)
    y0 = rng.normal(scale=5.0, size=(10_000, 3)) + np.array([0.0, 0.0, 25.0])
    t = np.linspace(0.0, 0.5, 6)
    field = nd.fields.Lorenz()
    kw = {"method": "rk4", "dt": 0.01}
    lazy = nd.dask.odeint(field, da.from_array(y0, chunks=(2500, 3)), t, **kw)
    assert lazy.shape == (6, 10_000, 3) and lazy.chunks[1] == (2500,) * 4 and lazy.dtype == np.float64
    parts, workers = _ran_on_workers(client, lazy)
    assert len(workers) == 2
    out = np.concatenate(parts, axis=1)
    ref = nd.odeint(field, y0, t, **kw)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_adaptive_chunks_are_bit_identical(method):
    """Every sample has its own step control: any chunking gives the bits of the local call."""
    rng = np.random.default_rng(1)
    y0 = (rng.normal(size=(400, 3)) * [8, 8, 8] + [0, 0, 25]).astype(np.float32)
    t = np.linspace(0.0, 0.3, 4)
    field = nd.fields.Lorenz()
    local = nd.odeint(field, y0, t, method=method, rtol=1e-4, atol=1e-6)
    for chunks in (100, 37, 400):
        out = nd.dask.odeint(field, y0, t, chunks=chunks, method=method, rtol=1e-4,
                             atol=1e-6).compute(scheduler="sync")
        assert out.dtype == np.float32
        assert np.array_equal(out, local)


def test_mlp_and_linear_fields(client):
    rng = np.random.default_rng(2)
    mlp = nd.fields.MLP([rng.normal(size=(4, 16)) * 0.3, rng.normal(size=(16, 4)) * 0.3], activation="tanh")
    lin = nd.fields.Linear([[0.0, 1.0], [-1.0, -0.1]], [0.1, 0.0])
    t = np.linspace(0.0, 1.0, 5)
    for field, dim in ((mlp, 4), (lin, 2)):
        y0 = rng.normal(size=(600, dim))
        lazy = nd.dask.odeint(field, da.from_array(y0, chunks=(150, dim)), t, method="rk4", dt=0.05)
        np.testing.assert_allclose(lazy.compute(), nd.odeint(field, y0, t, method="rk4", dt=0.05),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mala", [False, True])
def test_langevin_equals_single_process(client, mala):
    energy = nd.energies.DoubleWell(barrier=2.0, tilt=0.3, dim=2)
    kw = {"steps": 40, "step_size": 0.01, "noise_scale": 1.0, "mala": mala, "clamp": (-3.0, 3.0)}
    x0 = np.random.default_rng(3).uniform(-2, 2, size=(10_000, 2))
    lazy = nd.dask.langevin_sample(energy, da.from_array(x0, chunks=(2500, 2)), seed=11, **kw)
    parts, workers = _ran_on_workers(client, lazy)
    assert len(workers) == 2
    ref = nd.langevin_sample(energy, x0, seed=11, **kw)
    assert np.array_equal(np.concatenate(parts), ref)
    # uneven chunks, and chains started from U[-1, 1) drawn by each task
    out = nd.dask.langevin_sample(energy, 10_000, chunks=(3000, 1, 4999, 2000), seed=11, **kw).compute()
    assert np.array_equal(out, nd.langevin_sample(energy, 10_000, seed=11, **kw))


def test_langevin_ebm_and_generator_seed(client):
    ebm = nd.EBM(3, hidden_sizes=(16, 16), seed=0)
    kw = {"steps": 20, "step_size": 0.1, "noise_scale": 0.05}
    out = nd.dask.langevin_sample(ebm, 2000, chunks=500, seed=np.random.default_rng(5), **kw)
    assert out.dtype == np.float32 and out.shape == (2000, 3)
    ref = nd.langevin_sample(ebm, 2000, seed=np.random.default_rng(5), **kw)
    # The same starts and noise; an MLP energy's GEMM may round the last rows of a chunk
    # differently from the same rows inside a larger batch (an ulp), so not bit for bit.
    np.testing.assert_allclose(out.compute(), ref, rtol=0, atol=1e-5)
    start = nd.dask.langevin_sample(ebm, 2000, chunks=500, seed=np.random.default_rng(5), steps=0)
    assert np.array_equal(start.compute(), nd.langevin_sample(ebm, 2000, seed=np.random.default_rng(5), steps=0))
    x0 = np.random.default_rng(6).uniform(-1, 1, size=(1000, 3))  # float64 in, the model's float32 out
    out = nd.dask.langevin_sample(ebm, x0, chunks=300, seed=4, **kw)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.compute(), nd.langevin_sample(ebm, x0, seed=4, **kw), rtol=0, atol=1e-5)


def test_langevin_chain_range_is_checked():
    from neurodyn import _core

    spec = nd.energies.DoubleWell()._spec()
    x0 = np.zeros((4, 1))
    with pytest.raises(ValueError, match="chains must start a range"):
        _core.langevin(spec, x0, steps=1, step_size=0.1, noise_scale=1.0, seed=1, chain0=8, chains=10)
    with pytest.raises(ValueError, match="chains must start a range"):
        _core.langevin(spec, x0, steps=1, step_size=0.1, noise_scale=1.0, seed=1, chain0=-1, chains=10)


def test_hopfield_equals_single_process(client):
    rng = np.random.default_rng(7)
    Y = rng.normal(size=(200, 32)).astype(np.float32)
    Q = (Y[rng.integers(0, 200, 20_000)] + 0.3 * rng.normal(size=(20_000, 32))).astype(np.float32)
    lazy = nd.dask.hopfield_retrieve(da.from_array(Q, chunks=(4000, 32)), Y, beta=4.0, steps=2)
    assert lazy.dtype == np.float32 and lazy.chunks[0] == (4096, 3968, 3968, 3968, 4000)  # on 128-row tiles
    parts, workers = _ran_on_workers(client, lazy)
    assert len(workers) == 2
    assert np.array_equal(np.concatenate(parts), nd.hopfield_retrieve(Q, Y, beta=4.0, steps=2))
    V = rng.normal(size=(200, 5)).astype(np.float32)
    out = nd.dask.hopfield_retrieve(Q, Y, 4.0, V, chunks=3333).compute()
    assert out.shape == (20_000, 5)
    assert np.array_equal(out, nd.hopfield_retrieve(Q, Y, 4.0, V))


def test_lif_equals_single_process(client):
    rng = np.random.default_rng(8)
    I = rng.uniform(0.0, 0.8, size=(50, 2000, 16)).astype(np.float32)
    v0 = rng.uniform(0.0, 1.0, size=(2000, 16)).astype(np.float32)
    s, v = nd.dask.lif_run(da.from_array(I, chunks=(50, 500, 16)), v0=v0, beta=0.9, reset="zero")
    assert s.shape == v.shape == I.shape and s.chunks[1] == (500,) * 4
    s, v = dask.compute(s, v)
    ref_s, ref_v = nd.lif_run(I, v0=v0, beta=0.9, reset="zero")
    assert np.array_equal(s, ref_s) and np.array_equal(v, ref_v)
    s, v = nd.dask.lif_run(I, chunks=700, tau=3.0, reset_delay=True)
    ref_s, ref_v = nd.lif_run(I, tau=3.0, reset_delay=True)
    assert np.array_equal(s.compute(), ref_s) and np.array_equal(v.compute(), ref_v)


def test_aligned_chunks():
    from neurodyn.dask import _aligned

    assert _aligned((4000,) * 5, 128) == (4096, 3968, 3968, 3968, 4000)
    assert _aligned((10, 10, 10), 128) == (30,)
    assert _aligned((100, 100, 100), 128) == (128, 128, 44)
    assert _aligned((128, 1), 128) == (128, 1)
    for rows in ((1,), (127, 128, 129, 3), (1000, 1, 1, 1000)):
        out = _aligned(rows, 128)
        assert sum(out) == sum(rows) and all(r > 0 for r in out)
        assert all(e % 128 == 0 for e in np.cumsum(out)[:-1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="y0 has 2 state"):
        nd.dask.odeint(nd.fields.Lorenz(), np.zeros((10, 2)), [0.0, 1.0])
    with pytest.raises(TypeError, match="return_info"):
        nd.dask.odeint(nd.fields.Lorenz(), np.zeros((10, 3)), [0.0, 1.0], return_info=True)
    with pytest.raises(ValueError, match="patterns"):
        nd.dask.hopfield_retrieve(np.zeros((10, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="v0"):
        nd.dask.lif_run(np.zeros((5, 10, 3)), v0=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="dimension"):
        nd.dask.langevin_sample(nd.energies.DoubleWell(dim=2), np.zeros((10, 3)), seed=0)
    # state axis split into chunks is joined; the batch split is kept
    y0 = da.zeros((100, 3), chunks=(25, 1))
    assert nd.dask.odeint(nd.fields.Lorenz(), y0, [0.0, 0.1], method="euler").chunks == ((2,), (25,) * 4, (3,))


def test_pickles_small_and_round_trips():
    rng = np.random.default_rng(9)
    W1, W2 = rng.normal(size=(4, 32)), rng.normal(size=(32, 4))
    cases = [
        (nd.fields.Lorenz(), 0),
        (nd.fields.Linear(np.eye(3), np.ones(3)), 12 * 8),
        (nd.fields.MLP([W1, W2]), (W1.size + W2.size) * 8),
        (nd.energies.DoubleWell(barrier=2.0, dim=2), 0),
        (nd.energies.Quadratic(np.zeros(3), np.eye(3)), 12 * 8),
        (nd.EBM(3, hidden_sizes=(16, 16), seed=0), (3 * 16 + 16 + 16 * 16 + 16 + 16 + 1) * 4),
        (nd.SNN(4, 2, hidden_sizes=(8,), seed=0), (4 * 8 + 8 + 8 * 2 + 2) * 4),
    ]
    for obj, payload in cases:
        blob = pickle.dumps(obj)
        assert len(blob) < payload + 1500, (obj, len(blob))
        back = pickle.loads(blob)
        assert type(back) is type(obj) and repr(back) == repr(obj)
    x = rng.normal(size=(5, 3))
    lor = nd.fields.Lorenz()
    assert np.array_equal(pickle.loads(pickle.dumps(lor))(0.0, x), lor(0.0, x))
