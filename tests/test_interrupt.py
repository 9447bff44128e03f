"""Faults a user causes: Ctrl-C on long calls, and the progress bars of long calls.

Ctrl-C is a real SIGINT sent to this process from a timer thread. Every long kernel is
stopped by its own C loops (they report their work to nd_poll_work, csrc/nd_poll.h, and the
caller's hook looks for signals about 20 times a second; LONG_CALLS holds one long call of
each, and `python tests/test_interrupt.py` prints their stop latencies); a `fit` stops within
its step. Either way the KeyboardInterrupt must arrive within a
second of the signal, and the model must still work afterwards (finite parameters, outputs,
and another `fit`).
"""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import training

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                                reason="needs POSIX signals")

LATENCY = 1.0  # seconds from the signal to the KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_after(delay=0.2):
    """SIGINT to this process after `delay` s; asserts the body raised KeyboardInterrupt within
    LATENCY of the signal (measured from the send: a late timer thread says nothing of us)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    sent = []

    def send():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(delay, send)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        timer.cancel()
    assert sent, "the call finished before the signal: make it longer"
    assert time.perf_counter() - sent[0] < LATENCY


# ---------------------------------------------------------------------------------------
# Long kernels stop from inside C
# ---------------------------------------------------------------------------------------

def test_ctrl_c_stops_odeint_with_a_python_rhs():
    def slow(t, y):
        return -y + np.sin(t)

    with ctrl_c_after():
        nd.odeint(slow, np.ones(4), [0.0, 1e6], method="rk4", dt=1e-3, max_steps=10**10)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_ctrl_c_stops_odeint_with_a_builtin_field_in_float32(method):
    y0 = np.full((500, 3), 1.0, np.float32)
    with ctrl_c_after():
        nd.odeint(nd.fields.Lorenz(), y0, [0.0, 1e6], method=method, dt=1e-3, rtol=1e-6, atol=1e-6,
                  max_steps=10**10)


@pytest.mark.parametrize("energy", [nd.energies.DoubleWell(dim=8), nd.energies.GaussianMixture(
    np.stack([np.zeros(8), np.ones(8)]), np.stack([np.eye(8)] * 2))], ids=["double_well", "gmm"])
def test_ctrl_c_stops_langevin_on_a_builtin_energy(energy):
    with ctrl_c_after():
        nd.langevin_sample(energy, np.zeros((2000, 8)), steps=10**9, step_size=1e-3, noise_scale=1.0, seed=0)


def test_ctrl_c_stops_langevin_on_a_python_energy():
    def quad(x):
        return 0.5 * (x * x).sum(axis=1), x.copy()

    with ctrl_c_after():
        nd.langevin_sample(quad, np.zeros((16, 4)), steps=10**9, step_size=1e-2, noise_scale=1.0, seed=0)


def test_ctrl_c_stops_ebm_sample_and_the_model_still_samples():
    ebm = nd.EBM(16, hidden_sizes=(64, 32), seed=0)
    with ctrl_c_after():
        ebm.sample(1024, steps=10**9, seed=1)
    a = ebm.sample(8, steps=5, seed=2)
    assert np.array_equal(a, ebm.sample(8, steps=5, seed=2))


# ---------------------------------------------------------------------------------------
# Every long kernel polls (csrc/nd_poll.h): one call of each, many seconds long uninterrupted
# ---------------------------------------------------------------------------------------

F32 = np.float32


def _rand(*shape, lo=None, hi=None, seed=0):
    r = np.random.default_rng(seed)
    a = r.standard_normal(shape) if lo is None else r.uniform(lo, hi, shape)
    return a.astype(F32)


def _cfc(units=1024):
    return nd.CfC(16, 64, backbone_units=units, seed=0)


def _cfc_backward():
    cell = _cfc(128)
    x = _rand(8, 20000, 16)
    h, cache = cell._run(x, None, None, True)
    return lambda: cell._run_grad(x, None, cache, np.ones_like(h))


def _ltccell_backward():
    cell = nd.LTCCell(8, 64, seed=0)
    x = _rand(16, 3000, 8)
    h, cache = cell._run(x, None, None, True)
    return lambda: cell._run_grad(x, None, cache, np.ones_like(h))


def _scan_backward():
    a, tau = _rand(64, 1000, 256), _rand(64, 1000, 256, lo=0.5, hi=2.0)
    opts = dict(solver="dopri5", rtol=1e-8, atol=1e-8)
    h = nd._core.ltc_scan(a, tau, None, **opts)
    return lambda: nd._core.ltc_scan_backward(a, tau, None, h, np.ones_like(h), **opts)


def _hopfield_backward():
    q, k = _rand(2048, 64), _rand(100000, 64, seed=1)
    out, lse = nd._core.hopfield_forward(q, k, None, 1.0)
    return lambda: nd._core.hopfield_backward(q, k, None, 1.0, out, lse, np.ones_like(out), None)


def _dense(backward):
    x, w = _rand(100000, 1024), _rand(1024, 1024, seed=1) / 32
    if backward:
        return lambda: nd._core.dense_backward(x, w, x, True, need_dx=False)
    return lambda: nd._core.dense_forward(x, w, None)


def _shared_current(T, B=64, n=1024):
    return np.broadcast_to(_rand(B, n, lo=0.0, hi=2.0), (T, B, n))  # one current every step: no T-fold copy


# name -> a function that sets up and returns the long call (the setup is not timed)
LONG_CALLS = {
    "CfC forward": lambda: (lambda c=_cfc(), x=_rand(32, 5000, 16): c.forward_sequence(x)),
    "CfC backward": _cfc_backward,
    "LTCCell forward": lambda: (lambda c=nd.LTCCell(8, 64, seed=0), x=_rand(16, 3000, 8): c.forward_sequence(x)),
    "LTCCell backward": _ltccell_backward,
    "ltc_scan dopri5 forward": lambda: (lambda a=_rand(64, 1000, 256), t=_rand(64, 1000, 256, lo=0.5, hi=2.0):
                                        nd.ltc_scan(a, t, solver="dopri5", rtol=1e-8, atol=1e-8)),
    "ltc_scan dopri5 backward": _scan_backward,
    "solve_ltc dopri5": lambda: (lambda x=_rand(2**20), t=_rand(2**20, lo=1e-3, hi=2.0):
                                 nd.solve_ltc(x, 0.0, t, solver="dopri5", rtol=1e-9, atol=1e-9, max_steps=10**9)),
    "hopfield_retrieve": lambda: (lambda q=_rand(4096, 64), k=_rand(100000, 64, seed=1): nd.hopfield_retrieve(q, k)),
    "hopfield backward": _hopfield_backward,
    # the kernel under ClassicalHopfield.recall, given many sweeps at once: recall itself calls it one
    # sweep at a time and stops at the first fixed point, too soon for the signal
    "ClassicalHopfield async sweeps": lambda: (
        lambda w=np.zeros((2000, 2000)), x=np.sign(_rand(64, 2000)).astype(np.float64),
        order=np.tile(np.arange(2000, dtype=np.int64), (500, 1)):
        nd._core.hopfield_classical_async(w, x, order)),
    "dense forward": lambda: _dense(False),
    "dense backward": lambda: _dense(True),
    "lif_rate": lambda: (lambda c=_shared_current(10**5, 16, 2048): nd.lif_rate(c, beta=0.9)),
    "lif_backward": lambda: (lambda c=np.ascontiguousarray(_shared_current(1000, 32, 8192)), g=_rand(32, 8192):
                             nd.lif_backward(c, g, beta=0.9, out=c)),  # in place: one raster, 1 GB
    "odeint per-sample MLP field": lambda: (
        lambda f=nd.fields.MLP([_rand(3, 256) / 8, _rand(256, 3, seed=1) / 8], [np.zeros(256, F32), np.zeros(3, F32)]),
        y=_rand(2000, 3): nd.odeint(f, y, [0.0, 1e6], rtol=1e-4, atol=1e-4, max_steps=10**12)),
    "odeint coupled MLP field": lambda: (
        lambda f=nd.fields.MLP([_rand(3, 256) / 8, _rand(256, 3, seed=1) / 8], [np.zeros(256, F32), np.zeros(3, F32)]),
        y=_rand(2000, 3): nd.odeint(f, y, [0.0, 1e6], method="rk4", dt=1e-3, max_steps=10**12, coupled=True)),
    # a fast rotation over a long time keeps the implicit solvers stepping for hours
    "odeint radau": lambda: (lambda f=nd.fields.Linear([[-1.0, 1000.0], [-1000.0, -1.0]]), y=_rand(500, 2):
                             nd.odeint(f, y, [0.0, 1e9], method="radau", rtol=1e-4, atol=1e-7,
                                       max_steps=10**12, verbose=False)),
    "odeint bdf": lambda: (lambda f=nd.fields.Linear([[-1.0, 1000.0], [-1000.0, -1.0]]), y=_rand(500, 2):
                           nd.odeint(f, y, [0.0, 1e9], method="bdf", rtol=1e-4, atol=1e-7,
                                     max_steps=10**12, verbose=False)),
    "sdeint": lambda: (lambda y=_rand(2000, 3): nd.sdeint(nd.fields.Lorenz(), nd.sde.Constant(0.1), y, [0.0, 1e6],
                                                           dt=1e-3, seed=0, verbose=False)),
    "langevin gmm": lambda: (lambda e=nd.energies.GaussianMixture(np.stack([np.zeros(64), np.ones(64)]),
                                                                  np.stack([np.eye(64)] * 2)), x=np.zeros((20000, 64)):
                             nd.langevin_sample(e, x, steps=10**9, step_size=1e-3, noise_scale=1.0, seed=0)),
}


def _stop_latency(name, delay=0.3):
    """Runs the long call, sends SIGINT after `delay` seconds, and returns the seconds from the
    signal to the KeyboardInterrupt."""
    call = LONG_CALLS[name]()
    sent = []
    timer = threading.Timer(delay, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT)))
    timer.start()
    try:
        call()
    except KeyboardInterrupt:
        return time.perf_counter() - sent[0]
    finally:
        timer.cancel()
    raise AssertionError(f"{name} finished before the signal: make it longer")


@pytest.mark.parametrize("name", sorted(LONG_CALLS))
def test_ctrl_c_stops_every_long_kernel(name):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    assert _stop_latency(name) < LATENCY


def test_ctrl_c_stops_a_kernel_on_two_threads():
    """The kernel threads stop with the caller: each of them polls the caller's stop flag."""
    before = nd.get_num_threads()
    nd.set_num_threads(2)
    try:
        # the signal comes sooner: on two AVX-512 threads lif_rate's 3.3e9 neuron-steps take
        # only 0.32 s, and a longer broadcast raster is refused as larger than the memory
        for name in ("hopfield_retrieve", "lif_rate", "dense forward"):
            assert _stop_latency(name, delay=0.1) < LATENCY
    finally:
        nd.set_num_threads(before)


# ---------------------------------------------------------------------------------------
# fit stops between minibatches and leaves a usable model
# ---------------------------------------------------------------------------------------

def _data(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _classes(rng, n, k):
    return rng.integers(0, k, n)


FITS = {
    "NeuralODE": lambda r: (nd.NeuralODE(3, hidden_size=16, output_size=3, seed=0), _data(r, 64, 3), _data(r, 64, 3)),
    "SNN": lambda r: (nd.SNN(6, 3, hidden_sizes=(16,), num_timesteps=5, seed=0), _data(r, 64, 6),
                      _classes(r, 64, 3)),
    "ANN": lambda r: (nd.ANN(6, hidden_sizes=(16,), output_size=3, seed=0), _data(r, 64, 6), _classes(r, 64, 3)),
    "Liquid": lambda r: (nd.Liquid(4, hidden_size=8, num_layers=1, output_size=2, seed=0), _data(r, 32, 5, 4),
                         _data(r, 32, 2)),
    "LTCCell": lambda r: (nd.LTCCell(3, 6, output_size=1, seed=0), _data(r, 32, 5, 3), _data(r, 32, 5, 1)),
    "CfC": lambda r: (nd.CfC(3, 6, backbone_units=8, output_size=1, seed=0), _data(r, 32, 5, 3),
                      _data(r, 32, 5, 1)),
    "Hopfield": lambda r: (nd.Hopfield(6, num_patterns=8, pattern_dim=8, seed=0), _data(r, 64, 6),
                           _data(r, 64, 8)),
    "AssociativeMemory": lambda r: (nd.AssociativeMemory(6, num_patterns=8, pattern_dim=8, hidden_size=16,
                                                         num_layers=1, output_size=2, seed=0),
                                    _data(r, 64, 6), _data(r, 64, 2)),
}


def _outputs(model, x):
    return np.asarray(model(x))


@pytest.mark.parametrize("name", sorted(FITS))
def test_ctrl_c_stops_fit_and_the_model_still_works(name):
    model, x, y = FITS[name](np.random.default_rng(0))
    with ctrl_c_after():
        model.fit(x, y, epochs=10**8, batch_size=16, lr=1e-3, seed=0, verbose=False)
    for key, value in model.params.items():
        assert np.all(np.isfinite(value)), key
    before = _outputs(model, x)
    assert np.all(np.isfinite(before))
    history = model.fit(x, y, epochs=1, batch_size=16, lr=1e-3, seed=0, verbose=False).history_
    assert np.isfinite(history["loss"][-1])
    assert not np.array_equal(before, _outputs(model, x))  # it trained again


def test_ctrl_c_stops_ebm_fit_and_the_model_still_works():
    rng = np.random.default_rng(0)
    ebm = nd.EBM(4, hidden_sizes=(16,), seed=0)
    x = rng.uniform(-1, 1, (256, 4)).astype(np.float32)
    with ctrl_c_after():
        ebm.fit(x, epochs=10**8, batch_size=32, seed=0, verbose=False,
                langevin=dict(steps=5, step_size=0.1, noise_scale=0.01))
    assert all(np.all(np.isfinite(v)) for v in ebm.params.values())
    assert np.all(np.isfinite(ebm.energy(x)))
    assert np.isfinite(ebm.fit(x, epochs=1, batch_size=64, seed=1, verbose=False).history_["loss"][0])


def test_a_real_ctrl_c_on_a_script_ends_in_keyboardinterrupt():
    """The signal as a terminal sends it, to a separate interpreter sampling an EBM: the process
    reports KeyboardInterrupt and can still use the model."""
    script = textwrap.dedent("""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in an interactive session
        import numpy as np, neurodyn as nd
        ebm = nd.EBM(32, hidden_sizes=(64,), seed=0)
        print("ready", flush=True)
        try:
            ebm.sample(2048, steps=10**9, seed=0, verbose=False)
        except KeyboardInterrupt:
            print("stopped", ebm.sample(2, steps=1, seed=0).shape, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    assert out.strip() == "stopped (2, 32)"
    assert proc.returncode == 0
    assert waited < 5.0  # includes interpreter shutdown


# ---------------------------------------------------------------------------------------
# Progress bars of long kernel calls
# ---------------------------------------------------------------------------------------

class FakeBar:
    """Records what a tqdm bar is asked to show."""
    made = []

    def __init__(self, total, desc, leave, bar_format):
        self.total, self.desc, self.n, self.shown, self.closed = total, desc, 0, [], False
        FakeBar.made.append(self)

    def refresh(self):
        self.shown.append(self.n)

    def close(self):
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    FakeBar.made = []
    monkeypatch.setattr(training, "_tqdm", lambda: FakeBar)
    monkeypatch.setattr(training, "BAR_DELAY", 0.0)
    return FakeBar.made


def _long_lorenz(**kw):
    return nd.odeint(nd.fields.Lorenz(), np.ones((300, 3)), np.linspace(0, 40, 5), method="rk4", dt=1e-3, max_steps=10**6, **kw)


def test_a_long_odeint_shows_a_bar_that_ends_closed(fake_tqdm):
    ys = _long_lorenz()
    assert np.array_equal(ys, _long_lorenz(verbose=False))  # the bar changes nothing
    assert len(fake_tqdm) == 1
    bar = fake_tqdm[0]
    assert bar.desc == "odeint" and bar.total == 100 and bar.closed
    assert len(bar.shown) >= 2 and bar.shown == sorted(bar.shown) and 0 <= bar.shown[0] and bar.shown[-1] <= 100


def test_a_long_sample_shows_a_bar(fake_tqdm):
    nd.langevin_sample(nd.energies.DoubleWell(dim=8), np.zeros((1000, 8)), steps=6000, step_size=1e-3,
                       noise_scale=1.0, seed=0)
    assert [b.desc for b in fake_tqdm] == ["langevin"]
    assert fake_tqdm[0].closed and len(fake_tqdm[0].shown) >= 2


def test_verbose_false_and_short_calls_show_nothing(fake_tqdm, monkeypatch):
    _long_lorenz(verbose=False)
    nd.langevin_sample(nd.energies.DoubleWell(dim=8), np.zeros((1000, 8)), steps=6000, step_size=1e-3,
                       noise_scale=1.0, seed=0, verbose=False)
    assert fake_tqdm == []
    monkeypatch.setattr(training, "BAR_DELAY", 1.0)
    nd.odeint(nd.fields.Lorenz(), np.ones((3,)), [0.0, 1.0])  # far shorter than the delay
    assert fake_tqdm == []


def test_an_exception_in_a_progress_callable_stops_the_kernel_with_its_traceback():
    def broken(done):
        raise RuntimeError("progress broke")

    with pytest.raises(RuntimeError, match="progress broke") as info:
        nd._core.odeint(nd.fields.Lorenz()._spec(), np.ones((300, 3)), np.array([0.0, 1e6]), method="rk4",
                        dt=1e-3, max_steps=10**10, progress=broken)
    assert info.traceback[-1].name == "broken"
    with pytest.raises(TypeError, match="progress must be callable"):
        nd._core.odeint(nd.fields.Lorenz()._spec(), np.ones(3), np.array([0.0, 1.0]), method="rk4", dt=0.1,
                        max_steps=10, progress=3)


def test_a_real_tqdm_bar_runs_when_installed(monkeypatch, capsys):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(training, "BAR_DELAY", 0.0)
    _long_lorenz()
    assert "odeint" in capsys.readouterr().err


if __name__ == "__main__":
    # The stop latency of each long call, in milliseconds: python tests/test_interrupt.py
    for threads in (1, 2):
        nd.set_num_threads(threads)
        for name in sorted(LONG_CALLS):
            print(f"{threads} thread(s)  {name:32s} {1000 * _stop_latency(name):7.1f} ms", flush=True)
