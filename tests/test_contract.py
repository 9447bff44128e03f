"""The contract of every public entry point (docs/design.md, "One home for every rule").

A table of bad arguments walks through every public function and model: each call must raise
the documented exception type with a message that names the argument. Where several entry
points take the same argument (solver tolerances; a LIF neuron's beta, tau and threshold),
the rule is written once, in the kernel, so the message must be the same through all of them.
"""
import ast
import pathlib
import re

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import _core

F32 = np.float32
X2 = np.zeros((2, 3))
SEQ = np.zeros((2, 4, 3), F32)
CUR = np.zeros((5, 2, 3))
LORENZ = nd.fields.Lorenz()
T01 = [0.0, 1.0]


def _ebm():
    return nd.EBM(3, hidden_sizes=(4,), seed=0)


MEM01 = np.array([[1, 1, 0, 0, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 1, 0]], dtype=float)


def _frm(patterns, **kw):
    args = dict(a=-0.3, b=0.95, gain=4.8, threshold=0.2)
    args.update(kw)
    return nd.FiringRateMemory(patterns, **args)


def _hybrid(**kw):
    return nd.HybridEBM(2, seed=0, **kw)


# (id, call, exception type, the argument the message must name)
BAD = [
    # ODE integration
    ("odeint-y0-nan", lambda: nd.odeint(LORENZ, np.array([np.nan, 0, 0]), T01), ValueError, "y0"),
    ("odeint-t-order", lambda: nd.odeint(LORENZ, np.ones(3), [1.0, 0.5, 0.7]), ValueError, "t"),
    ("odeint-method", lambda: nd.odeint(LORENZ, np.ones(3), T01, method="rk5"), ValueError, "method"),
    ("odeint-rtol", lambda: nd.odeint(LORENZ, np.ones(3), T01, rtol=-1.0), ValueError, "rtol"),
    ("odeint-atol-type", lambda: nd.odeint(LORENZ, np.ones(3), T01, atol="x"), TypeError, "atol"),
    ("odeint-max-steps", lambda: nd.odeint(LORENZ, np.ones(3), T01, max_steps=0), ValueError, "max_steps"),
    ("odeint-dt", lambda: nd.odeint(LORENZ, np.ones(3), T01, method="rk4", dt=-0.1), ValueError, "dt"),
    ("odeint-y0-shape", lambda: nd.odeint(LORENZ, np.ones(4), T01), ValueError, "y0"),
    ("field-linear-A", lambda: nd.fields.Linear(np.ones((2, 3))), ValueError, "A"),
    # Liquid family
    ("solve_ltc-tau", lambda: nd.solve_ltc(1.0, 0.5, -1.0), ValueError, "tau"),
    ("solve_ltc-solver", lambda: nd.solve_ltc(1.0, 0.5, 1.0, solver="rk5"), ValueError, "solver"),
    ("solve_ltc-steps", lambda: nd.solve_ltc(1.0, 0.5, 1.0, solver="rk4", steps=0), ValueError, "steps"),
    ("ltc_scan-tau", lambda: nd.ltc_scan(np.zeros((2, 3, 4)), -np.ones((2, 3, 4))), ValueError, "tau"),
    ("ltc_scan-rtol", lambda: nd.ltc_scan(np.zeros((2, 3, 4)), np.ones((2, 3, 4)), solver="dopri5", rtol=-1.0),
     ValueError, "rtol"),
    ("liquid-solver", lambda: nd.Liquid(3, 4, num_layers=1, solver="rk5"), ValueError, "solver"),
    ("liquid-x-shape", lambda: nd.Liquid(3, 4, num_layers=1, seed=0)(np.zeros((2, 4, 5), F32)), ValueError, "x"),
    ("ltccell-x-nan", lambda: nd.LTCCell(3, 4, seed=0).forward_sequence(np.full((2, 4, 3), np.nan, F32)),
     ValueError, "x"),
    ("cfc-mode", lambda: nd.CfC(3, 4, mode="other"), ValueError, "mode"),
    # Neural ODE
    ("neural_ode-solver", lambda: nd.NeuralODE(2, 4, solver="rk5"), ValueError, "solver"),
    ("neural_ode-gradient", lambda: nd.NeuralODE(2, 4, gradient="other"), ValueError, "gradient"),
    ("neural_ode-x-shape", lambda: nd.NeuralODE(2, 4, seed=0)(np.zeros((3, 5), F32)), ValueError, "x"),
    # Hopfield family
    ("retrieve-beta", lambda: nd.hopfield_retrieve(X2, np.ones((4, 3)), beta=-1.0), ValueError, "beta"),
    ("retrieve-patterns", lambda: nd.hopfield_retrieve(X2, np.ones((4, 2))), ValueError, "patterns"),
    ("retrieve-queries-nan", lambda: nd.hopfield_retrieve(np.full((2, 3), np.nan), np.ones((4, 3))), ValueError,
     "queries"),
    ("retrieve-values", lambda: nd.hopfield_retrieve(X2, np.ones((4, 3)), values=np.ones((5, 3))), ValueError,
     "values"),
    ("energy-beta", lambda: nd.hopfield_energy(X2, np.ones((4, 3)), beta=0.0), ValueError, "beta"),
    ("hopfield-beta", lambda: nd.Hopfield(3, beta=-2.0), ValueError, "beta"),
    ("memory-heads", lambda: nd.AssociativeMemory(3, num_heads=0), ValueError, "num_heads"),
    ("classical-patterns", lambda: nd.ClassicalHopfield(3).store(np.full((2, 3), 0.5)), ValueError, "patterns"),
    # Spiking family
    ("lif_run-beta", lambda: nd.lif_run(CUR, beta=1.5), ValueError, "beta"),
    ("lif_run-threshold", lambda: nd.lif_run(CUR, threshold=0.0), ValueError, "threshold"),
    ("lif_run-reset", lambda: nd.lif_run(CUR, reset="other"), ValueError, "reset"),
    ("lif_run-currents", lambda: nd.lif_run(np.zeros((2, 3))), ValueError, "currents"),
    ("lif_rate-tau", lambda: nd.lif_rate(CUR, tau=-1.0), ValueError, "tau"),
    ("lif_step-v", lambda: nd.lif_step(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "v"),
    ("lif_backward-surrogate", lambda: nd.lif_backward(CUR, np.zeros_like(CUR), surrogate="other"), ValueError,
     "surrogate"),
    ("if_neuron-steps", lambda: nd.if_neuron(np.ones(3), num_timesteps=0), ValueError, "num_timesteps"),
    ("snn-tau", lambda: nd.SNN(3, 2, hidden_sizes=(4,), tau=-1.0), ValueError, "tau"),
    ("ann-hidden", lambda: nd.ANN(3, hidden_sizes=(0,)), ValueError, "hidden_sizes"),
    ("poisson-x", lambda: nd.encode.poisson(np.full(3, np.nan), 5, seed=0), ValueError, "x"),
    # Energy-based family
    ("langevin-step", lambda: nd.langevin_sample(_ebm(), np.zeros((2, 3)), step_size=-1.0), ValueError,
     "step_size"),
    ("langevin-steps", lambda: nd.langevin_sample(_ebm(), np.zeros((2, 3)), steps=-1), ValueError, "steps"),
    ("langevin-x0", lambda: nd.langevin_sample(_ebm(), np.zeros((2, 4))), ValueError, "x0"),
    ("cd-alpha", lambda: nd.contrastive_divergence_loss([1.0], [2.0], reg_alpha=-1.0), ValueError, "reg_alpha"),
    ("ebm-activation", lambda: nd.EBM(3, activation="other"), ValueError, "activation"),
    # Associative memories
    ("frm-patterns", lambda: _frm(np.full((2, 8), 0.5)), ValueError, "patterns"),
    ("frm-a", lambda: _frm(MEM01, a=1.0, b=0.0), ValueError, "a"),
    ("frm-gain", lambda: _frm(MEM01, gain=-1.0), ValueError, "gain"),
    ("frm-overlap", lambda: _frm(MEM01, overlap=1.5), ValueError, "overlap"),
    ("frm-tau", lambda: _frm(MEM01, tau=0.0), ValueError, "tau"),
    ("frm-activation", lambda: _frm(MEM01, activation="tanh"), ValueError, "activation"),
    ("frm-recall-input", lambda: _frm(MEM01).recall(MEM01[:1], 1.0, input=np.zeros(7), verbose=False), ValueError,
     "input"),
    ("idp-patterns", lambda: nd.IDPHopfield(MEM01), ValueError, "patterns"),
    ("idp-activation", lambda: nd.IDPHopfield(2 * MEM01 - 1, activation="sigmoid"), ValueError, "activation"),
    ("bernoulli-q", lambda: nd.memories.bernoulli_patterns(2, 8, 1.5), ValueError, "q"),
    ("hadamard-N", lambda: nd.memories.hadamard_patterns(2, 12), ValueError, "N"),
    ("sequential-kappa", lambda: nd.SequentialHopfield(2 * MEM01 - 1, sequence=[0, 1], kappa=-1.0), ValueError,
     "kappa"),
    ("frm-recall-rtol", lambda: _frm(MEM01).recall(MEM01[:1], 1.0, rtol=-1.0, verbose=False), ValueError, "rtol"),
    ("idp-recall-atol", lambda: nd.IDPHopfield(2 * MEM01 - 1).recall(2 * MEM01[:1] - 1, 1.0, atol=np.nan,
                                                                       verbose=False), ValueError, "atol"),
    ("memories-patterns-P", lambda: nd.memories.bernoulli_patterns(0, 8, 0.5), ValueError, "P"),
    # Hybrid energy models
    ("hybrid-beta", lambda: _hybrid(beta=0.0), ValueError, "beta"),
    ("hybrid-form", lambda: _hybrid(form="other"), ValueError, "form"),
    ("hybrid-activation", lambda: _hybrid(activations=("tanh", "swish")), ValueError, "activations[1]"),
    ("hybrid-inputs", lambda: _hybrid(inputs=2), ValueError, "inputs"),
    ("hybrid-z-shape", lambda: _hybrid().energy(np.zeros((4, 3))), ValueError, "z"),
    ("hybrid-simulate-rtol", lambda: _hybrid().simulate(np.zeros((1, 2)), T01, rtol=-1.0), ValueError, "rtol"),
    ("hybrid-simulate-method", lambda: _hybrid().simulate(np.zeros((1, 2)), T01, method="rk5"), ValueError,
     "method"),
    # Stochastic and implicit solvers
    ("sdeint-dt", lambda: nd.sdeint(LORENZ, nd.sde.Constant(0.1), np.ones(3), T01, dt=-0.1), ValueError, "dt"),
    ("sdeint-method", lambda: nd.sdeint(LORENZ, nd.sde.Constant(0.1), np.ones(3), T01, dt=0.1, method="rk5"),
     ValueError, "method"),
    ("stiff-rtol", lambda: nd.odeint(LORENZ, np.ones(3), T01, method="radau", rtol=-1.0), ValueError, "rtol"),
]


@pytest.mark.parametrize("call,exc,arg", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument_names_the_argument(call, exc, arg):
    with pytest.raises(exc) as info:
        call()
    assert re.search(rf"(?<![A-Za-z_]){re.escape(arg)}(?![A-Za-z_])", str(info.value)), str(info.value)


def _message(call):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    return str(info.value)


# Every entry point that hands solver tolerances to a kernel, as a call taking them as keywords.
TOLERANCE_ENTRIES = {
    "odeint": lambda **kw: nd.odeint(LORENZ, np.ones(3), T01, **kw),
    "solve_ltc": lambda **kw: nd.solve_ltc(1.0, 0.5, 1.0, solver="dopri5", **kw),
    "ltc_scan": lambda **kw: nd.ltc_scan(np.zeros((2, 3, 4)), np.ones((2, 3, 4)), solver="dopri5", **kw),
    "Liquid": lambda **kw: nd.Liquid(3, 4, num_layers=1, solver="dopri5", **kw),
    "NeuralODE": lambda **kw: nd.NeuralODE(2, 4, solver="dopri5", **kw),
    "HybridEBM.simulate": lambda **kw: _hybrid().simulate(np.zeros((1, 2)), T01, **kw),
    "HybridEBM.window_loss": lambda **kw: _hybrid().window_loss(np.zeros((1, 2)), np.zeros((2, 1, 2)), T01,
                                                                method="dopri5", **kw),
    "FiringRateMemory.recall": lambda **kw: _frm(MEM01).recall(MEM01[:1], 1.0, verbose=False, **kw),
    "IDPHopfield.recall": lambda **kw: nd.IDPHopfield(2 * MEM01 - 1).recall(2 * MEM01[:1] - 1, 1.0, verbose=False,
                                                                            **kw),
}


@pytest.mark.parametrize("kwargs", [dict(rtol=0.0, atol=0.0), dict(rtol=-1.0), dict(atol=-1e-9), dict(rtol=np.nan),
                                    dict(rtol="x"), dict(atol=np.inf)],
                         ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_tolerances_one_message_everywhere(kwargs):
    """Bad solver tolerances: one rule, one message, every entry point that takes them."""
    messages = {name: _message(lambda: call(**kwargs)) for name, call in TOLERANCE_ENTRIES.items()}
    assert len(set(messages.values())) == 1, messages
    assert ("rtol and atol" if len(kwargs) == 2 else next(iter(kwargs))) in next(iter(messages.values()))


@pytest.mark.parametrize("kwargs", [dict(beta=1.5), dict(beta=-0.1), dict(beta=np.nan), dict(tau=-1.0), dict(tau=0.0),
                                    dict(tau=np.inf), dict(tau=2.0, beta=0.5), dict(threshold=0.0),
                                    dict(threshold=np.nan)],
                         ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_lif_parameters_one_message_everywhere(kwargs):
    """A LIF neuron's beta, tau and threshold: the same rule and message through every LIF entry."""
    calls = {
        "lif_run": lambda: nd.lif_run(CUR, **kwargs),
        "lif_rate": lambda: nd.lif_rate(CUR, **kwargs),
        "lif_step": lambda: nd.lif_step(np.zeros((2, 3)), np.zeros((2, 3)), **kwargs),
        "lif_backward": lambda: nd.lif_backward(CUR, np.zeros_like(CUR), **kwargs),
        "SNN": lambda: nd.SNN(3, 2, hidden_sizes=(4,), **kwargs),
    }
    if list(kwargs) == ["threshold"]:  # the integrate-and-fire entries take a threshold only
        calls["if_neuron"] = lambda: nd.if_neuron(np.ones(3), **kwargs)
        calls["ann2snn"] = lambda: nd.ann2snn(nd.ANN(3, hidden_sizes=(4,), seed=0), np.zeros((2, 3)), **kwargs)
    try:
        import neurodyn.torch as ndt
    except ImportError:
        ndt = None
    if ndt is not None:
        import torch

        calls["torch.lif"] = lambda: ndt.lif(torch.zeros(5, 2, 3), **kwargs)
        calls["torch.LIF"] = lambda: ndt.LIF(**kwargs)
    messages = {name: _message(call) for name, call in calls.items()}
    assert len(set(messages.values())) == 1, messages


# ---- every default and every rule written once --------------------------------------------

PACKAGE = pathlib.Path(nd.__file__).parent
CSRC = pathlib.Path(__file__).resolve().parents[1] / "csrc"

# Python defaults that share a name and a value with a kernel's default but are not that default.
OWN_DEFAULTS = {
    ("hopfield_retrieve", "steps"),  # Hopfield update steps, not the LTC solver's substeps
    ("simulate", "method"),  # HybridEBM.simulate's own solver choice, with its own tolerances (1e-7, 1e-9)
    ("__init__", "beta"),  # the Duffing flow's cubic stiffness (nd.fields.Duffing), not a Hopfield beta
    ("run", "dt"),  # SequentialHopfield.run's SDE step, not the Lyapunov spectrum's RK4 step
    ("state_space_divergence", "seed"),  # the Monte-Carlo draws of the mixture estimate, not an encoding's
}


def _literal_defaults():
    """(file, function, argument, value) of every literal default in a signature of the package."""
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, d in pairs:
                literal = isinstance(d, ast.Constant) and isinstance(d.value, (int, float, str))
                if literal and not isinstance(d.value, bool):
                    yield path.name, node.name, arg.arg, d.value


def test_no_kernel_default_written_again_in_python():
    """A default the kernels define (``_core.DEFAULTS``) is read from there, never repeated as a literal."""
    kernel = {}
    for entry, defaults in _core.DEFAULTS.items():
        for name, value in defaults.items():
            kernel.setdefault(name, {}).setdefault(value, entry)
    repeated = [f"{f}: {fn}({arg}={value!r}) repeats {kernel[arg][value]}'s default"
                for f, fn, arg, value in _literal_defaults()
                if (fn, arg) not in OWN_DEFAULTS and value in kernel.get(arg, {})]
    assert not repeated, "\n".join(repeated)


# Python checks of a rule the kernel also states, kept on purpose.
OWN_RULES = {
    # LinearEvent checks its direction when built; odeint passes the sign of a callable's direction
    # attribute (SciPy's meaning), so the kernel's rule only sees a LinearEvent through _core.
    ("fields.py", "direction"),
    # lyapunov_spectrum's f may be a field, a NeuralODE or a callable: a Python type, which the
    # SDE kernel's "f must be a built-in field" (a drift given by description) does not cover
    ("chaos.py", "f"),
}


@pytest.mark.skipif(not CSRC.is_dir(), reason="needs the C sources (a source checkout)")
def test_no_kernel_rule_written_again_in_python():
    """An error the kernels raise (an argument and its rule in ND_REQUIRE or nd_arg_error) is not also
    raised by Python with the same rule."""
    text = "\n".join(p.read_text() for p in sorted(CSRC.rglob("*")) if p.suffix in (".c", ".h", ".inc"))
    rules = set(re.findall(r'ND_REQUIRE\([^;]*?"(\w+)"\s*,[^;]*?,\s*"([^"]+)"\)', text, re.S))
    rules |= set(re.findall(r'nd_arg_error(?:_novalue)?\(\s*"([^"]+)"\s*,[^;]*?"([^"]+)"\s*\)', text, re.S))
    assert len(rules) > 100  # the patterns still find the kernels' rules
    twice = []
    for path in sorted(PACKAGE.glob("*.py")):
        src = path.read_text()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                message = ast.get_source_segment(src, node.exc.args[0]) or ""
                for name, rule in rules:
                    head = rule.split(",")[0].strip()
                    if (len(head) > 6 and head in message and (path.name, name) not in OWN_RULES
                            and re.search(rf"(?<![\w!]){re.escape(name)}(?!\w)", message)):  # {value!r} is no mention
                        twice.append(f"{path.name}:{node.lineno} {message[:80]} ~ the kernel's {name} {rule!r}")
    assert not twice, "\n".join(twice)
