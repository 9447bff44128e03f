"""PyTorch bridge benchmark: a PyTorch model whose LIF layers are ``neurodyn.torch`` against the
same model with snntorch's ``Leaky`` layers.

``torch_lif_train``: a 64-256-128-10 spiking classifier, T=25, B=128, float32, one training step
(forward, cross-entropy on the readout of the last layer's mean spikes, backward). Both sides are
PyTorch models with the same ``torch.nn.Linear`` layers and weights; only the neurons differ:

* neurodyn: ``fc0(x)`` once (constant input), ``neurodyn.torch.lif(cur, num_steps=T)`` (one C loop
  over the steps, forward and surrogate backward), ``fc1`` over the (T, B, 256) spike tensor (one
  matrix product for all steps), ``neurodyn.torch.lif_rate`` (the rates counted in the C loop),
  ``out`` on the rates.
* snntorch: ``fc0(x)`` once, then per step ``Leaky -> fc1 -> Leaky``, the mean of the last spikes,
  ``out``.

The neuron is the same on both sides: snntorch's default ``Leaky`` (reset by subtraction, applied
at the next step: ``reset_delay=True``, reset detached from the gradient), beta = exp(-1/2),
threshold 1, and the sigmoid surrogate of slope 10; neurodyn's kernels run with
``reset_delay=True``. The probe compares the loss and every parameter gradient.
"""
from __future__ import annotations

import math

import numpy as np

from harness import Case, Side, Target
from neural_ode_cases import grad_probe, import_peer, torch_mod

BETA = math.exp(-1.0 / 2.0)
NAMES = ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias", "out.weight", "out.bias"]


def sizes(quick):
    return dict(B=8, I=12, H=(16, 8), O=4, T=5) if quick else dict(B=128, I=64, H=(256, 128), O=10, T=25)


def _problem(sz, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(sz["B"], sz["I"])).astype(np.float32)
    y = rng.integers(0, sz["O"], size=sz["B"]).astype(np.int64)
    return x, y


def _linears(torch, sz):
    torch.manual_seed(2024)
    w = [sz["I"]] + list(sz["H"])
    layers = torch.nn.ModuleDict({"fc0": torch.nn.Linear(w[0], w[1]), "fc1": torch.nn.Linear(w[1], w[2]),
                                  "out": torch.nn.Linear(w[2], sz["O"])})
    with torch.no_grad():  # larger weights than torch's default, so that both layers fire
        layers["fc0"].weight.mul_(2.0)
        layers["fc1"].weight.mul_(2.0)
    return layers


def _side(sz, x, y, forward, note):
    torch = torch_mod()
    F = torch.nn.functional
    layers = _linears(torch, sz)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    params = list(layers.parameters())

    def step():
        for p in params:
            p.grad = None
        loss = F.cross_entropy(forward(layers, xt), yt)
        loss.backward()
        return loss

    def probe():
        loss = step()
        grads = {f"{k}.{n}": getattr(layers[k], n).grad.numpy() for k in layers for n in ("weight", "bias")}
        return grad_probe(loss.item(), grads, NAMES)

    return Side(run=step, probe=probe, note=note)


def neurodyn_side(sz, x, y):
    torch_mod()
    import neurodyn.torch as ndt

    lif = dict(beta=BETA, threshold=1.0, reset="subtract", reset_delay=True, surrogate="sigmoid", slope=10.0)

    def forward(m, xt):
        s1 = ndt.lif(m["fc0"](xt), num_steps=sz["T"], **lif)   # (T, B, H1): one C loop
        cur1 = m["fc1"](s1)                                     # one GEMM over all T*B rows
        return m["out"](ndt.lif_rate(cur1, **lif))              # the rates counted in C

    return _side(sz, x, y, forward, "neurodyn.torch.lif / lif_rate in a torch model; backward()")


def snntorch_side(sz, x, y):
    torch = torch_mod()
    snn = import_peer("snntorch")
    from snntorch import surrogate

    lifs = [snn.Leaky(beta=BETA, threshold=1.0, spike_grad=surrogate.sigmoid(slope=10), reset_mechanism="subtract")
            for _ in sz["H"]]

    def forward(m, xt):
        cur0 = m["fc0"](xt)
        mem = [lif.init_leaky() for lif in lifs]
        outs = []
        for _ in range(sz["T"]):
            s, mem[0] = lifs[0](cur0, mem[0])
            s, mem[1] = lifs[1](m["fc1"](s), mem[1])
            outs.append(s)
        return m["out"](torch.stack(outs).mean(0))

    return _side(sz, x, y, forward, "snntorch.Leaky (reset_delay=True, subtract), stepped over T; backward()")


def build(quick: bool, timer_cfg) -> list:
    sz = sizes(quick)
    x, y = _problem(sz)
    dims = f"{sz['I']}-{'-'.join(map(str, sz['H']))}-{sz['O']}"
    cases = [Case(
        name="torch_lif_train",
        description=f"PyTorch SNN {dims}, T={sz['T']}, B={sz['B']}, training step (cross-entropy, BPTT), float32: "
                    f"LIF layers from neurodyn.torch vs snntorch",
        params={"sizes": dims, "batch": sz["B"], "T": sz["T"], "beta": BETA, "threshold": 1.0,
                "reset": "subtract, delayed (snntorch's default)", "surrogate": "sigmoid(slope=10)",
                "encoding": "constant input x ~ U(0, 1)", "dtype": "float32"},
        neurodyn=lambda: neurodyn_side(sz, x, y), peers={"snntorch": lambda: snntorch_side(sz, x, y)},
        rtol=1e-4, atol=1e-5, agree=1e-5, agree_metric="rel_l2",
        agree_why="the same torch layers and neuron: loss and every gradient to float32 rounding",
        targets=[Target("snntorch", 3.0, "training step >= 3x faster than the same torch model with snntorch")],
    )]
    return cases
