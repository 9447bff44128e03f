"""Ctrl-C during ``fit`` takes effect at a step boundary (docs/models.md §0: the model is left as
it was after the last completed step, with an optimiser state that belongs to it).

The interrupt is ``_thread.interrupt_main`` from a timer thread at a random moment of the fit:
it lands in Python code between any two bytecodes, or in a C kernel polling for signals. Every
interrupted model must hold exactly the parameters of one of the steps of an uninterrupted run
with the same seeds, and its optimiser the moments of that same step.
"""
from __future__ import annotations

import _thread
import signal
import sys
import threading
import time

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import optim, training

pytestmark = [pytest.mark.skipif(sys.platform == "win32" or not hasattr(signal, "SIGINT"), reason="needs SIGINT"),
              pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                 reason="interrupts reach the main thread only")]

TRIALS = 40


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own SIGINT handler, as in an interactive session: a process started as a
    background job inherits SIGINT ignored, and then Python installs no handler and
    _thread.interrupt_main() does nothing, so no interrupt would land."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _data(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# Wide layers and tiny batches: the optimiser's update is a large part of each step, so the
# interrupts land inside updates often (an in-place update without protection fails here).
CASES = {
    "ANN": lambda r: (nd.ANN(6, hidden_sizes=(256,), output_size=3, seed=0), _data(r, 48, 6), r.integers(0, 3, 48)),
    "SNN": lambda r: (nd.SNN(6, 3, hidden_sizes=(256,), num_timesteps=2, encoding="poisson", seed=0),
                      _data(r, 48, 6).clip(0, 1), r.integers(0, 3, 48)),
    "Liquid": lambda r: (nd.Liquid(3, hidden_size=48, num_layers=1, output_size=2, dropout=0.2, seed=0),
                         _data(r, 32, 2, 3), _data(r, 32, 2)),
    "NeuralODE": lambda r: (nd.NeuralODE(3, hidden_size=96, output_size=2, num_steps=2, solver="euler", seed=0),
                            _data(r, 48, 3), _data(r, 48, 2)),
}
FIT = dict(epochs=2, batch_size=1, lr=1e-3, seed=1, verbose=False)


def _fingerprint(params) -> bytes:
    return b"".join(params[k].tobytes() for k in sorted(params))


class Recorder(training.Callback):
    """The parameters and Adam moments after every step (and before the first)."""

    def __init__(self):
        self.states = {}

    def _keep(self, state):
        opt = state.optimizer
        self.states[_fingerprint(state.model.params)] = (opt.t, _fingerprint(opt.m), _fingerprint(opt.v))

    def on_train_begin(self, state):
        self._keep(state)

    def on_batch_end(self, state):
        self._keep(state)


class _Interrupter:
    """``_thread.interrupt_main()`` ``delay`` seconds after :meth:`go` (the thread is started
    beforehand, so that no interrupt can land in ``Thread.start``)."""

    def __init__(self, delay):
        self._go = threading.Event()
        self.thread = threading.Thread(target=self._fire, args=(delay,), daemon=True)
        self.thread.start()

    def _fire(self, delay):
        self._go.wait()
        time.sleep(delay)
        _thread.interrupt_main()

    def go(self):
        self._go.set()


def _drain(thread):
    """Wait for the timer; swallow an interrupt that arrives after fit returned."""
    late = False
    while True:
        try:
            thread.join()
            time.sleep(0.02)  # let a pending interrupt reach the eval loop here
            return late
        except KeyboardInterrupt:
            late = True


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_interrupted_fit_leaves_the_state_of_a_completed_step(name):
    model, x, y = CASES[name](np.random.default_rng(0))
    reference = Recorder()
    model.fit(x, y, callbacks=[reference], **FIT)
    # the length of a fit as the trials run it (no recorder, warm): the shorter of two, so that a
    # fit slowed by a busy machine does not push the delays past the end of most trials
    durations = []
    for _ in range(2):
        model, x, y = CASES[name](np.random.default_rng(0))
        start = time.perf_counter()
        model.fit(x, y, **FIT)
        durations.append(time.perf_counter() - start)
    duration = min(durations)
    steps = FIT["epochs"] * -(-len(x) // FIT["batch_size"])
    assert len(reference.states) == steps + 1  # every step gave new parameters

    delays = np.random.default_rng(42).uniform(0.0, 0.6 * duration, TRIALS)
    interrupted, bad = 0, []
    for trial, delay in enumerate(delays):
        model, x, y = CASES[name](np.random.default_rng(0))
        opt = optim.Adam(lr=FIT["lr"])
        timer = _Interrupter(delay)
        try:
            timer.go()
            model.fit(x, y, optimizer=opt, **FIT)
        except KeyboardInterrupt:
            interrupted += 1
        _drain(timer.thread)
        state = reference.states.get(_fingerprint(model.params))
        if state is None or state != (opt.t, _fingerprint(opt.m), _fingerprint(opt.v)):
            bad.append(trial)
    assert bad == [], f"{len(bad)} of {TRIALS} interrupted fits match no completed step"
    # the interrupts really landed inside fit (most of them; a loaded machine shifts a few past it)
    assert interrupted >= TRIALS // 4, interrupted


def test_an_interrupted_ebm_fit_keeps_its_parameters_whole():
    """EBM.fit: the optimiser update and the replay buffer are written together."""
    x = np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)
    kw = dict(epochs=2, batch_size=8, seed=3, verbose=False, langevin=dict(steps=5, step_size=0.05, noise_scale=0.1))
    reference = Recorder()
    nd.EBM(3, hidden_sizes=(8,), seed=0).fit(x, callbacks=[reference], **kw)
    start = time.perf_counter()
    nd.EBM(3, hidden_sizes=(8,), seed=0).fit(x, **kw)
    duration = time.perf_counter() - start
    for delay in np.random.default_rng(1).uniform(0, 0.8 * duration, 10):
        ebm = nd.EBM(3, hidden_sizes=(8,), seed=0)
        opt = optim.Adam(lr=1e-3)
        timer = _Interrupter(delay)
        try:
            timer.go()
            ebm.fit(x, optimizer=opt, **kw)
        except KeyboardInterrupt:
            pass
        _drain(timer.thread)
        assert reference.states.get(_fingerprint(ebm.params)) == (opt.t, _fingerprint(opt.m), _fingerprint(opt.v))


def test_the_held_back_interrupt_arrives_at_the_end_of_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with training.deferred_interrupts():
            _thread.interrupt_main()
            for _ in range(1000):  # many chances for the signal to be handled inside the block
                time.sleep(0)
            done.append(True)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_blocks_deliver_once_at_the_outermost_end():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with training.deferred_interrupts():
            with training.deferred_interrupts():
                _thread.interrupt_main()
                time.sleep(0.01)
            reached.append("inner done")
            time.sleep(0.01)
            reached.append("outer done")
    assert reached == ["inner done", "outer done"]


def test_a_refused_update_changes_nothing():
    """An update that would make one parameter non-finite is refused for every parameter."""
    params = {"a": np.ones(3), "b": np.ones(2)}
    opt = optim.SGD(lr=1.0, momentum=0.5)
    opt.step(params, {"a": np.ones(3), "b": np.ones(2)})
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(optim.NonFiniteError, match="'b'"):
        opt.step(params, {"a": np.ones(3), "b": np.array([1.0, np.nan])})
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    np.testing.assert_array_equal(opt.velocity["b"], [1.0, 1.0])
    with pytest.raises(KeyError):
        opt.step(params, {"a": np.ones(3), "zzz": np.ones(1)})
    np.testing.assert_array_equal(params["a"], before["a"])
    assert opt.t == 1
