"""Work on nothing: an axis of size 0 beside a huge one (or a huge count of steps) has no work
to do, so every call answers at once, or raises its documented exception, instead of looping
over the huge axis's empty rows (for hours, without stopping on Ctrl-C).

The huge axes are cheap to hand over (zero-element arrays, or zero-stride views). The calls run
in one child process whose watchdog ends it when a call hangs, naming the call; the property
suite (test_properties.py, "huge:<axis>+zero:<axis>") does the same for every entry point with
two free axes.
"""
import functools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurodyn as nd
from test_properties import _sanitizer_env, _unexpected_sanitizer_lines

HUGE = 2**40

# name -> (code evaluating to the call's result, expected: a shape tuple, or an exception name)
CASES = {
    # the two calls that used to loop for hours
    "ltc_scan:B-huge,H-zero": ("nd.ltc_scan(np.zeros((2**40, 3, 0), np.float32), np.ones((2**40, 3, 0), np.float32))",
                               (HUGE, 3, 0)),
    "CfC.forward_sequence:B-zero,T-huge": ("nd.CfC(1, 2, seed=0).forward_sequence(np.zeros((0, 2**40, 1), np.float32))",
                                           (0, HUGE, 2)),
    "ltc_scan:T-huge,B-zero": ("nd.ltc_scan(np.zeros((0, 2**40, 4)), np.ones((0, 2**40, 4)))", (0, HUGE, 4)),
    "ltc_scan:dopri5,H-zero": ("nd.ltc_scan(np.zeros((2**40, 3, 0)), np.ones((2**40, 3, 0)), solver='dopri5')",
                               (HUGE, 3, 0)),
    "_core.ltc_scan_backward:H-zero": (
        "nd._core.ltc_scan_backward(*[np.zeros((2**40, 3, 0))] * 2, None, *[np.zeros((2**40, 3, 0))] * 2)[1]",
        (HUGE, 3, 0)),
    "_core.cfc_backward:B-zero,T-huge": (
        "nd._core.cfc_backward(None, np.zeros(0), np.zeros((0, 2**40, 2)), CFC_PARAMS, input_size=1, "
        "backbone_activation='lecun_tanh', mode='default')[0]", (0, HUGE, 1)),
    "LTCCell.forward_sequence:B-zero,T-huge": (
        "nd.LTCCell(1, 2, seed=0).forward_sequence(np.zeros((0, 2**40, 1), np.float32))", "ValueError"),
    "Liquid:B-zero,T-huge": ("nd.Liquid(1, hidden_size=2, num_layers=1, output_size=1, seed=0)"
                             "(np.zeros((0, 2**40, 1), np.float32))", (0, 1)),
    "langevin_sample:no-chains,steps-huge": (
        "nd.langevin_sample(nd.energies.DoubleWell(dim=2), np.zeros((0, 2)), steps=2**62)", (0, 2)),
    "langevin_sample:python-energy,no-chains": (
        "nd.langevin_sample(lambda x: (x.sum(1), x), np.zeros((0, 2)), steps=2**62)", (0, 2)),
    "odeint:rk4,no-state": ("nd.odeint(nd.fields.Lorenz(), np.zeros((0, 3)), [0.0, 1e9], method='rk4', dt=1e-6, "
                            "max_steps=2**62)", (2, 0, 3)),
    "odeint:python-rhs,no-state": ("nd.odeint(lambda t, y: -y, np.zeros((0, 3)), [0.0, 1e9], method='euler', "
                                   "dt=1e-6, max_steps=2**62)", (2, 0, 3)),
    "odeint:dopri5,no-state": ("nd.odeint(nd.fields.Lorenz(), np.zeros((0, 3)), [0.0, 1e9], rtol=1e-12, "
                               "atol=1e-12, max_steps=2**62)", (2, 0, 3)),
    "lif_run:T-huge,B-zero": ("nd.lif_run(np.zeros((2**40, 0, 3)))[0]", (HUGE, 0, 3)),
    "lif_rate:T-huge,n-zero": ("nd.lif_rate(np.zeros((2**40, 4, 0)))", (4, 0)),
    "SNN:B-zero,steps-huge": ("nd.SNN(3, 2, hidden_sizes=(4,), num_timesteps=2**40, seed=0)(np.zeros((0, 3)))",
                              (0, 2)),
    "encode.poisson:n-zero,steps-huge": ("nd.encode.poisson(np.zeros((0,)), 2**40, seed=0)", (HUGE, 0)),
    "ClassicalHopfield.recall:B-zero,steps-huge": (
        "nd.ClassicalHopfield(5).recall(np.zeros((0, 5)), steps=2**40, mode='async', seed=0)", (0, 5)),
    "_core.hopfield_classical_async:n-zero": (
        "nd._core.hopfield_classical_async(np.zeros((0, 0)), np.zeros((2**40, 0)), "
        "np.zeros((2**40, 0), np.int64))[0]", (HUGE, 0)),
    "nn.dense_backward:out-zero": ("nd._core.dense_backward(np.zeros((2**30, 0)), np.zeros((0, 0)), "
                                   "np.zeros((2**30, 0)), True)[0]", (2**30, 0)),
}

CHILD = textwrap.dedent("""
    import faulthandler, json, sys
    import numpy as np
    import neurodyn as nd
    _cell = nd.CfC(1, 2, backbone_layers=0, seed=0)
    CFC_PARAMS = tuple(_cell.params[n] for n in _cell._cell_names())
    for name, (code, want) in json.loads(sys.argv[1]).items():
        print(json.dumps({"start": name}), flush=True)
        faulthandler.dump_traceback_later(30, exit=True)  # a hang ends the child, naming the call
        try:
            res = eval(code)
            got = list(np.shape(res))
        except Exception as err:
            got = type(err).__name__ + ": " + str(err)[:200]
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps({"name": name, "got": got}), flush=True)
""")


@functools.lru_cache(maxsize=None)
def _results():
    # sanitizer reports come back on the child's stderr (a failed giant allocation is expected)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(CASES)], capture_output=True, text=True,
                          timeout=600, env=_sanitizer_env(os.environ))
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert not _unexpected_sanitizer_lines(proc.stderr), proc.stderr[-3000:]
    if proc.returncode != 0:
        hung = rows[-1].get("start") if rows else None
        raise AssertionError(f"the child failed{' in ' + hung if hung else ''} (return code {proc.returncode}):\n"
                             + proc.stderr[-3000:])
    return {r["name"]: r["got"] for r in rows if "name" in r}


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_empty_axis_beside_a_huge_one_answers_at_once(name):
    got = _results()[name]
    want = CASES[name][1]
    if isinstance(want, str):
        assert isinstance(got, str) and got.startswith(want + ":"), got
    else:
        assert got == list(want), got


def test_the_empty_answers_are_the_small_cases_answers():
    """The early returns give what the loops gave: zeros for the gradient of a state that no
    step touched, and the initial state where nothing happens."""
    h0 = np.arange(6.0).reshape(2, 3)
    empty = np.zeros((2, 0, 3))
    da, dtau, dh0 = nd._core.ltc_scan_backward(empty, empty + 1, h0, empty, empty)
    assert da.shape == dtau.shape == (2, 0, 3) and np.array_equal(dh0, np.zeros((2, 3)))
    cell = nd.CfC(2, 3, seed=0)
    params = tuple(cell.params[n] for n in cell._cell_names())
    dx, dh0, flat = nd._core.cfc_backward(None, np.zeros(0), empty, params, input_size=2,
                                          backbone_activation="lecun_tanh", mode="default")
    assert dx.shape == (2, 0, 2) and np.array_equal(dh0, np.zeros((2, 3))) and not flat.any()
    ys = nd.odeint(nd.fields.Lorenz(), np.zeros((0, 3)), [0.0, 1.0, 2.0], method="rk4", dt=0.1)
    assert ys.shape == (3, 0, 3)
