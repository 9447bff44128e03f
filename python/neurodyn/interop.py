"""Models to and from other tools: NIR graphs for the spiking networks, and weights to and from
the peer libraries ncps (liquid cells) and snntorch (spiking networks). docs/interop.md states
every mapping and what cannot be mapped.

Each peer is imported only by the function that needs it: ``import neurodyn`` needs none of them.
"""
from __future__ import annotations

import json
import math

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from . import _checks, nn
from ._typing import PathLike

if TYPE_CHECKING:
    import nir
    import torch

    from .ann2snn import ConvertedSNN
    from .liquid import CfC, LTCCell
    from .snn import SNN

# ---- NIR (the Neuromorphic Intermediate Representation) ------------------------------------------
#
# NIR describes neurons in continuous time: a LIF node is tau dv/dt = (v_leak - v) + r I, fires
# when v > v_threshold and then sets v = v_reset; an IF node is dv/dt = r I with the same firing
# and reset. neurodyn's neurons are discrete: V <- beta V + I (docs/models.md §5). One forward
# Euler step of length dt maps one onto the other:
#     v <- (1 - dt/tau) v + (r dt / tau) I       (LIF)        v <- v + r dt I       (IF)
# so beta = 1 - dt/tau and the input gain r dt / tau (r dt for IF) is 1 when r = tau/dt (1/dt).
# Export writes exactly that (tau = dt / (1 - beta), r = tau / dt; IF: r = 1/dt), as snntorch's
# exporter does with dt = 1e-4, the default here. Import inverts it; a gain other than 1 is folded
# into the weights and bias of the Affine node before the neurons.

_NIR_DT = 1e-4
_META = "neurodyn"  # graph metadata key: the class and configuration, for an exact round trip


def _nir():
    try:
        import nir
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError("NIR export and import need the nir package: pip install 'neurodyn[nir]'") from err
    return nir


def _affine(nir, params, name, dtype):
    return nir.Affine(weight=np.array(params[f"{name}.kernel"].T, dtype=dtype, order="C"),
                      bias=np.array(params[f"{name}.bias"], dtype=dtype))


def _neurons(nir, n, beta, threshold, reset, reset_delay, dt):
    """One layer of n neurons as a NIR LIF node (beta < 1) or IF node (beta = 1). The node's
    metadata states neurodyn's reset (NIR's own fields say: reset to v_reset = 0)."""
    meta = {"reset": reset, "reset_delay": int(bool(reset_delay)), "beta": float(beta)}
    theta, zero = np.full(n, float(threshold)), np.zeros(n)
    if beta == 1.0:
        return nir.IF(r=np.full(n, 1.0 / dt), v_threshold=theta, v_reset=zero, metadata=meta)
    tau = dt / (1.0 - beta)
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=zero.copy(), v_threshold=theta, v_reset=zero,
                   metadata=meta)


def to_nir(model: SNN | ConvertedSNN, *, dt: float = _NIR_DT) -> nir.NIRGraph:
    """A NIR graph of a spiking network: :class:`neurodyn.SNN` or :class:`neurodyn.ConvertedSNN`.

    Nodes, in a chain: ``input`` (Input) -> for each hidden layer i an Affine node (the Dense
    layer, weight = kernel transposed, as NIR's ``W x + b``) and a neuron node -> the readout
    Affine node -> ``output``. The SNN's LIF neurons become LIF nodes with, per neuron,
    ``tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0``, ``v_threshold = threshold``,
    ``v_reset = 0``; the converted network's integrate-and-fire neurons (beta = 1) become IF
    nodes with ``r = 1 / dt``. This is the forward Euler discretisation with step ``dt``: a tool
    simulating the graph with that step reproduces neurodyn's ``V <- beta V + I`` exactly (see
    docs/interop.md).

    What NIR cannot say is stated in metadata: NIR resets a spiking neuron to ``v_reset``;
    neurodyn's default reset subtracts the threshold, and ``reset_delay`` postpones it by a
    step. Each neuron node's metadata holds ``reset`` ("subtract" or "zero"), ``reset_delay``
    and the exact ``beta``; a tool that ignores it resets to zero. The readout is a rate:
    neurodyn's output is the mean over the time steps of the last Affine node's output (the
    Affine node is linear, so that equals the Affine map of the mean spike rates). The graph's
    metadata ``neurodyn`` holds the class and configuration as JSON (encoding, number of steps,
    surrogate, ...), so that :func:`from_nir` rebuilds the very same model; ``dt`` is stored
    beside it. A converted network without an output layer ends with a Scale node (its last
    layer's scale).

    Parameters
    ----------
    model : SNN or ConvertedSNN
    dt : float, default 1e-4
        The time step the continuous-time constants are written for (snntorch's choice).

    Returns
    -------
    nir.NIRGraph
    """
    from .ann2snn import ConvertedSNN
    from .snn import SNN

    nir = _nir()
    dt = _checks.real("dt", dt, minimum=0.0, strict=True)
    c, p = model.config, model.params
    nodes, chain = {"input": nir.Input(input_type=np.array([c["input_size"]]))}, ["input"]
    if isinstance(model, SNN):
        beta = c["beta"] if c["beta"] is not None else math.exp(-1.0 / c["tau"])
        names = [f"snn_layer_{i}_dense" for i in range(len(c["hidden_sizes"]))]
        lif = dict(beta=beta, threshold=c["threshold"], reset=c["reset"], reset_delay=c["reset_delay"])
        readout: str | None = "snn_output"
    elif isinstance(model, ConvertedSNN):
        names = [f"dense_{i}" for i in range(len(c["hidden_sizes"]))]
        lif = dict(beta=1.0, threshold=c["threshold"], reset="subtract", reset_delay=False)
        readout = "output" if "output.kernel" in p else None
    else:
        raise TypeError(f"to_nir exports an SNN or a ConvertedSNN, not a {type(model).__name__}")
    for i, (name, n) in enumerate(zip(names, c["hidden_sizes"])):
        nodes[name] = _affine(nir, p, name, model.dtype)
        nodes[f"{name}_neurons"] = _neurons(nir, n, dt=dt, **lif)
        chain += [name, f"{name}_neurons"]
    if readout is not None:
        nodes["readout"] = _affine(nir, p, readout, model.dtype)  # "output" names the Output node
        chain.append("readout")
    else:
        nodes["scale"] = nir.Scale(scale=np.full(c["hidden_sizes"][-1], c["scales"][-1], dtype=model.dtype))
        chain.append("scale")
    width = c["output_size"] or c["hidden_sizes"][-1]
    nodes["output"] = nir.Output(output_type=np.array([width]))
    chain.append("output")
    meta = {_META: json.dumps({"class": type(model).__name__, "config": c}), "dt": dt,
            "readout": "mean over time steps of the output node"}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])), metadata=meta)


def _text(value):
    """A metadata value as stored (HDF5 returns bytes for strings)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return value


def _chain(graph):
    """The node names of a feed-forward chain from the one Input node to the one Output node."""
    nir = _nir()
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"the graph must have one Input node, it has {len(inputs)}")
    succ = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    chain, node = [inputs[0]], inputs[0]
    while not isinstance(graph.nodes[node], nir.Output):
        nxt = succ.get(node, [])
        if len(nxt) != 1:
            raise ValueError(f"node {node!r} has {len(nxt)} successors: neurodyn imports feed-forward chains only "
                             f"(no branches, no recurrence)")
        node = nxt[0]
        if node in chain:
            raise ValueError(f"the graph has a cycle through {node!r}: recurrent graphs are not imported")
        chain.append(node)
    if len(chain) != len(graph.nodes):
        raise ValueError(f"the graph has nodes outside the chain from input to output: "
                         f"{sorted(set(graph.nodes) - set(chain))}")
    return chain


def _uniform(name, values, what):
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"node {name!r}: {what} must be finite")
    if np.any(np.abs(v - v[0]) > 1e-12 * max(1.0, abs(v[0]))):
        raise ValueError(f"node {name!r}: {what} differs between neurons; neurodyn's layers share one value")
    return float(v[0])


def _node_dt(name, node, nir):
    """The step at which the node's input gain is 1 (LIF: tau / r; IF: 1 / r)."""
    r = _uniform(name, node.r, "r")
    if isinstance(node, nir.LIF):
        return _uniform(name, node.tau, "tau") / r
    return 1.0 / r


def from_nir(graph: nir.NIRGraph | PathLike, *, dt: float | None = None, num_timesteps: int | None = None,
             dtype: DTypeLike | None = None) -> SNN | ConvertedSNN:
    """A neurodyn spiking network from a NIR graph (or a path to a NIR file).

    A graph written by :func:`to_nir` comes back as the very model (class, configuration and
    parameters, bit for bit). Any other graph must be a chain ``Input -> (Affine|Linear ->
    LIF|IF)+ -> [Affine|Linear] -> Output``; it becomes an :class:`neurodyn.SNN` with constant
    input encoding. Per neuron node, with the forward Euler step ``dt``:
    ``beta = 1 - dt / tau`` (IF: 1), and the input gain ``r dt / tau`` (IF: ``r dt``) is folded
    into the preceding Affine node's weight and bias; ``v_threshold`` is the threshold;
    ``v_reset = 0`` is the reset to zero (the node's metadata ``reset = "subtract"``, written by
    :func:`to_nir`, selects the subtractive reset). A chain that ends with neurons gets an
    identity readout, so the model's output is the last layer's spike rates.

    Cannot be imported (ValueError): branches, recurrence or other node types (convolutions,
    CubaLIF, ...); ``v_leak`` or ``v_reset`` other than 0; neurons of one layer, or layers,
    with different time constants or thresholds (neurodyn's SNN shares one of each).

    Parameters
    ----------
    graph : nir.NIRGraph or str or path
    dt : float, optional
        The time step. Default: the one stored by :func:`to_nir`, else the step at which every
        neuron node's input gain is 1 (``tau / r``; snntorch's exporter writes 1e-4 that way).
    num_timesteps : int, optional
        Steps of the simulation (default: the stored configuration's, else 25).
    dtype : float32 or float64, optional
        Default: the stored configuration's, else the Affine weights' (float32 unless float64).

    Returns
    -------
    SNN or ConvertedSNN
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    chain = _chain(graph)
    meta = {k: _text(v) for k, v in (graph.metadata or {}).items()}
    stored = json.loads(meta[_META]) if isinstance(meta.get(_META), str) else None
    affines, neurons, readout, scale = [], [], None, None
    for name in chain[1:-1]:
        node = graph.nodes[name]
        if isinstance(node, (nir.Affine, nir.Linear)):
            if readout is not None:
                raise ValueError(f"node {name!r}: two Affine/Linear nodes in a row")
            readout = name
        elif isinstance(node, (nir.LIF, nir.IF)):
            if readout is None:
                raise ValueError(f"node {name!r}: a neuron layer must follow an Affine or Linear node")
            affines.append(readout)
            neurons.append(name)
            readout = None
        elif isinstance(node, nir.Scale) and stored is not None and name == chain[-2]:
            scale = name
        else:
            raise ValueError(f"node {name!r} is a {type(node).__name__}: neurodyn imports Affine, Linear, LIF and IF "
                             f"nodes")
    if not neurons:
        raise ValueError("the graph has no LIF or IF node")
    weights = []
    for name in affines + ([readout] if readout else []):
        node = graph.nodes[name]
        W = np.asarray(node.weight)
        if W.ndim != 2:
            raise ValueError(f"node {name!r}: weight must be a matrix, got shape {W.shape}")
        b = np.asarray(node.bias) if isinstance(node, nir.Affine) else np.zeros(W.shape[0], W.dtype)
        weights.append((name, W, b))
    if stored is not None:
        return _from_stored(stored, weights, graph, scale)
    return _snn_from_chain(graph, weights, neurons, readout is not None, dt, meta.get("dt"), num_timesteps, dtype, nir)


def _from_stored(stored, weights, graph, scale):
    """The model :func:`to_nir` wrote: its configuration, with the nodes' parameters."""
    from .io import _registry

    cls = _registry().get(stored.get("class"))
    if cls is None or cls.__name__ not in ("SNN", "ConvertedSNN"):
        raise ValueError(f"the graph's metadata names an unknown class {stored.get('class')!r}")
    config = cls._validate(**stored["config"])
    dtype = np.dtype(config["dtype"])
    layers = [name[:-len(".kernel")] for name, _, _ in cls._param_specs(config) if name.endswith(".kernel")]
    if len(layers) != len(weights):
        raise ValueError(f"the graph has {len(weights)} Affine nodes; its stored configuration implies {len(layers)}")
    params = {}
    for layer, (_, W, b) in zip(layers, weights):
        params[f"{layer}.kernel"] = np.array(W.T, dtype=dtype, order="C")
        params[f"{layer}.bias"] = np.array(b, dtype=dtype)
    if scale is not None and cls.__name__ == "ConvertedSNN":
        config["scales"][-1] = _uniform(scale, graph.nodes[scale].scale, "scale")
    return cls._from_saved(config, params, copy=False)


def _snn_from_chain(graph, weights, neurons, has_readout, dt, stored_dt, num_timesteps, dtype, nir):
    from .snn import SNN

    if dt is None:
        dt = float(stored_dt) if stored_dt is not None else None
    if dt is None:
        steps = [_node_dt(name, graph.nodes[name], nir) for name in neurons]
        dt = steps[0]
        if any(abs(s - dt) > 1e-9 * dt for s in steps):
            raise ValueError(f"the neuron nodes imply different time steps {steps}: give dt")
    dt = _checks.real("dt", dt, minimum=0.0, strict=True)
    if dtype is None:
        w = weights[0][1].dtype
        dtype = np.float64 if w == np.float64 else np.float32
    dtype = nn.model_dtype(dtype)
    betas, thetas, resets, delays, gains = [], [], [], [], []
    for name in neurons:
        node = graph.nodes[name]
        meta = {k: _text(v) for k, v in (node.metadata or {}).items()}
        r = _uniform(name, node.r, "r")
        if _uniform(name, node.v_reset, "v_reset") != 0.0:
            raise ValueError(f"node {name!r}: v_reset must be 0 (neurodyn resets to zero or by subtraction)")
        if isinstance(node, nir.LIF):
            if _uniform(name, node.v_leak, "v_leak") != 0.0:
                raise ValueError(f"node {name!r}: v_leak must be 0 (neurodyn's LIF has no resting potential)")
            tau = _uniform(name, node.tau, "tau")
            beta, gain = 1.0 - dt / tau, r * dt / tau
            if np.asarray(node.tau).dtype == np.float32:
                beta = float(np.float32(beta))  # a decay written in float32 is a float32 number
        else:
            beta, gain = 1.0, r * dt
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"node {name!r}: dt / tau = {dt / tau} gives beta = {beta} outside [0, 1]; use a smaller dt")
        betas.append(beta)
        gains.append(gain)
        thetas.append(_uniform(name, node.v_threshold, "v_threshold"))
        resets.append(meta.get("reset", "zero"))
        delays.append(bool(int(meta.get("reset_delay", 0))))
    for what, values in (("time constants", betas), ("thresholds", thetas), ("resets", resets),
                         ("reset delays", delays)):
        if any(v != values[0] for v in values):
            raise ValueError(f"the neuron layers have different {what} {values}; neurodyn's SNN shares one")
    params: dict[str, np.ndarray] = {}
    sizes: list[int] = []
    for i, (name, W, b) in enumerate(weights[:len(neurons)]):
        g = gains[i]
        params[f"snn_layer_{i}_dense.kernel"] = np.array(W.T * g if g != 1.0 else W.T, dtype=dtype, order="C")
        params[f"snn_layer_{i}_dense.bias"] = np.array(b * g if g != 1.0 else b, dtype=dtype)
        sizes.append(W.shape[0])
    for i in range(1, len(sizes)):
        if weights[i][1].shape[1] != sizes[i - 1]:
            raise ValueError(f"node {weights[i][0]!r} takes {weights[i][1].shape[1]} inputs from a layer of "
                             f"{sizes[i - 1]} neurons")
    if has_readout:
        _, W, b = weights[-1]
        params["snn_output.kernel"] = np.array(W.T, dtype=dtype, order="C")
        params["snn_output.bias"] = np.array(b, dtype=dtype)
    else:  # the last neurons are the output: their rates, through an identity readout
        params["snn_output.kernel"] = np.eye(sizes[-1], dtype=dtype)
        params["snn_output.bias"] = np.zeros(sizes[-1], dtype=dtype)
    config = SNN._validate(input_size=weights[0][1].shape[1], output_size=params["snn_output.kernel"].shape[1],
                           hidden_sizes=sizes, num_timesteps=25 if num_timesteps is None else num_timesteps,
                           threshold=thetas[0], beta=betas[0], reset=resets[0], reset_delay=delays[0], dtype=dtype)
    return SNN._from_saved(config, params, copy=False)


# ---- snntorch ---------------------------------------------------------------------------------------

_SNNTORCH_SURROGATES = {"atan": ("atan", "alpha"), "sigmoid": ("sigmoid", "slope"),
                        "fast_sigmoid": ("fast_sigmoid", "slope")}


def _surrogate_of(fn):
    """(name, slope) of an snntorch surrogate made by ``snntorch.surrogate.atan(alpha)``,
    ``sigmoid(slope)`` or ``fast_sigmoid(slope)`` (read from the closure), else None."""
    qual = getattr(fn, "__qualname__", "")
    maker = qual.split(".<locals>")[0] if ".<locals>" in qual else None
    if maker not in _SNNTORCH_SURROGATES or fn.__closure__ is None:
        return None
    name, var = _SNNTORCH_SURROGATES[maker]
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__))
    return (name, float(cells[var].cell_contents)) if var in cells else None


def _scalar(t, what, name):
    v = np.asarray(t.detach().cpu().numpy(), dtype=np.float64).ravel()
    if v.size == 0 or np.any(v != v[0]):
        raise ValueError(f"{name}: {what} differs between neurons; neurodyn's layers share one value")
    return float(v[0])


def snn_from_snntorch(net: torch.nn.Module | Sequence[torch.nn.Module], *, num_timesteps: int = 25,
                      surrogate: str | None = None, slope: float | None = None, encoding: str = "constant",
                      dtype: DTypeLike | None = None) -> SNN:
    """An :class:`neurodyn.SNN` with the weights and neurons of a feed-forward snntorch network.

    ``net`` is a ``torch.nn.Sequential`` (or a list of modules) alternating ``torch.nn.Linear``
    and ``snntorch.Leaky``: ``Linear, Leaky, Linear, Leaky, ...``, optionally ending with a
    ``Linear`` readout. Each Linear becomes a Dense layer (kernel = weight transposed). The
    Leaky layers must share beta, threshold, reset mechanism ("subtract" or "zero") and
    ``reset_delay``, which become the SNN's ``beta``, ``threshold``, ``reset`` and
    ``reset_delay`` (so the forward pass is the same model, spike for spike). The surrogate
    gradient (training only) is read from snntorch's ``surrogate.atan(alpha)`` (``atan`` with
    ``slope = alpha``, snntorch's default), ``sigmoid(slope)`` or ``fast_sigmoid(slope)``, or
    given with ``surrogate=``/``slope=``. A net ending with a Leaky layer gets an identity
    readout: the model's output is then that layer's spike rates.

    The snntorch net is driven with the same input at every step (neurodyn's constant encoding)
    for ``num_timesteps`` steps; its readout averaged over the steps is the model's output.

    Cannot be mapped (ValueError): other layer types (convolutions, recurrent or synaptic
    neurons), per-neuron beta or threshold, ``reset_mechanism="none"``, inhibition, state
    quantisation, graded spikes, a Linear without bias is mapped with a zero bias.
    """
    import torch
    from snntorch import Leaky

    from .snn import SNN

    mods = list(net)
    linears: list[torch.nn.Linear] = []
    leakies: list[Any] = []  # snntorch.Leaky
    for i, m in enumerate(mods):
        expect = torch.nn.Linear if i % 2 == 0 else Leaky
        if type(m) is not expect:
            raise ValueError(f"module {i} is a {type(m).__name__}; a {expect.__name__} was expected (the net must "
                             f"alternate Linear and Leaky layers)")
        (linears if i % 2 == 0 else leakies).append(m)
    if not leakies:
        raise ValueError("the net has no Leaky layer")
    props = []
    for i, m in enumerate(leakies):
        name = f"Leaky layer {i}"
        if m.reset_mechanism not in ("subtract", "zero"):
            raise ValueError(f"{name}: reset_mechanism={m.reset_mechanism!r} cannot be mapped (subtract or zero)")
        if m.inhibition or m.state_quant or _scalar(m.graded_spikes_factor, "graded_spikes_factor", name) != 1.0:
            raise ValueError(f"{name}: inhibition, state quantisation and graded spikes cannot be mapped")
        beta = min(max(_scalar(m.beta, "beta", name), 0.0), 1.0)  # snntorch clamps beta to [0, 1]
        sg = _surrogate_of(m.spike_grad)
        props.append((beta, _scalar(m.threshold, "threshold", name), m.reset_mechanism, bool(m.reset_delay), sg))
    if any(p[:4] != props[0][:4] for p in props):
        raise ValueError(f"the Leaky layers differ in beta, threshold, reset or reset_delay: {[p[:4] for p in props]}")
    beta, threshold, reset, delay, sg = props[0]
    if surrogate is None:
        if sg is None or any(p[4] != sg for p in props):
            raise ValueError("the surrogate gradient cannot be read from the Leaky layers (it is not snntorch's atan, "
                             "sigmoid or fast_sigmoid, or differs between layers): give surrogate= and slope=")
        surrogate, slope = sg
    elif slope is None:
        slope = sg[1] if sg is not None and sg[0] == surrogate else 10.0
    w0 = linears[0].weight
    if dtype is None:
        dtype = np.float64 if w0.dtype == torch.float64 else np.float32
    params: dict[str, np.ndarray] = {}
    sizes: list[int] = []
    for i, lin in enumerate(linears[:len(leakies)]):
        _linear_into(params, f"snn_layer_{i}_dense", lin, dtype)
        sizes.append(lin.out_features)
    if len(linears) > len(leakies):
        _linear_into(params, "snn_output", linears[-1], dtype)
    else:
        params["snn_output.kernel"] = np.eye(sizes[-1], dtype=dtype)
        params["snn_output.bias"] = np.zeros(sizes[-1], dtype=dtype)
    config = SNN._validate(input_size=linears[0].in_features, output_size=params["snn_output.kernel"].shape[1],
                           hidden_sizes=sizes, num_timesteps=num_timesteps, beta=beta, threshold=threshold,
                           surrogate=surrogate, slope=slope, encoding=encoding, reset=reset, reset_delay=delay,
                           dtype=dtype)
    return SNN._from_saved(config, params, copy=False)


def _linear_into(params, name, lin, dtype):
    w = lin.weight.detach().cpu().numpy()
    params[f"{name}.kernel"] = np.array(w.T, dtype=dtype, order="C")
    b = lin.bias.detach().cpu().numpy() if lin.bias is not None else np.zeros(w.shape[0])
    params[f"{name}.bias"] = np.array(b, dtype=dtype)


def snn_to_snntorch(model: SNN) -> torch.nn.Sequential:
    """A ``torch.nn.Sequential`` of ``Linear`` and ``snntorch.Leaky`` (``init_hidden=True``)
    layers with the SNN's weights and neurons: ``Linear, Leaky`` per hidden layer, then the
    ``Linear`` readout. Call ``snntorch.utils.reset(net)`` and then ``net(x)`` once per step
    for ``num_timesteps`` steps; the mean of the outputs is ``model(x)`` (constant encoding).

    The Leaky layers get the SNN's beta (``exp(-1/tau)``), threshold, reset mechanism,
    ``reset_delay`` and surrogate (``atan`` as ``surrogate.atan(alpha=slope)``, ``sigmoid`` and
    ``fast_sigmoid`` with ``slope``). Poisson and latency encodings are not part of the net:
    feed it the encoded spikes (``nd.encode``) step by step. The layers have the model's dtype;
    snntorch's Leaky emits float32 spikes whatever its input, so a float64 net needs each
    Linear after a Leaky layer fed ``spikes.double()`` (step the layers by hand).
    """
    import torch
    from snntorch import Leaky
    from snntorch import surrogate as sg

    c, p = model.config, model.params
    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    beta = c["beta"] if c["beta"] is not None else math.exp(-1.0 / c["tau"])
    spike_grad = {"atan": lambda s: sg.atan(alpha=s), "sigmoid": lambda s: sg.sigmoid(slope=s),
                  "fast_sigmoid": lambda s: sg.fast_sigmoid(slope=s)}[c["surrogate"]](c["slope"])
    layers = []
    width = c["input_size"]
    names = [f"snn_layer_{i}_dense" for i in range(len(c["hidden_sizes"]))] + ["snn_output"]
    for i, name in enumerate(names):
        kernel = p[f"{name}.kernel"]
        lin = torch.nn.Linear(width, kernel.shape[1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            lin.bias.copy_(torch.from_numpy(p[f"{name}.bias"]))
        layers.append(lin)
        width = kernel.shape[1]
        if name != "snn_output":
            layers.append(Leaky(beta=torch.tensor(beta, dtype=tdtype), threshold=torch.tensor(c["threshold"], dtype=tdtype),
                                spike_grad=spike_grad, reset_mechanism=c["reset"], reset_delay=c["reset_delay"],
                                init_hidden=True))
    return torch.nn.Sequential(*layers)


# ---- ncps -------------------------------------------------------------------------------------------

_ABSENT = -1000.0  # softplus(-1000) is exactly 0 in float32 and float64, and so is its derivative


def _ncps_cell(module, kind):
    """The cell of an ncps sequence module (LTC or CfC), refusing what neurodyn cannot run."""
    if getattr(module, "use_mixed", False):
        raise ValueError(f"the ncps {kind} has mixed_memory=True: its LSTM memory cell has no neurodyn equivalent")
    return getattr(module, "rnn_cell", module)


def _t(x):
    return x.detach().cpu().numpy()


def ltccell_from_ncps(module: torch.nn.Module, *, dtype: DTypeLike | None = None) -> LTCCell:
    """An :class:`neurodyn.LTCCell` from an ncps ``LTC`` or ``LTCCell`` (torch).

    Every parameter is mapped exactly. ncps applies its ``sparsity_mask`` (the wiring's
    synapses) and, with ``implicit_param_constraints=True``, a softplus to ``w``, ``cm``,
    ``gleak`` and ``sensory_w``; neurodyn always applies the softplus to its raw values:
    implicit raw values are copied as they are, explicit (already positive) values ``y`` are
    stored as ``log(expm1(y))``, and a synapse the mask removes (or a conductance of exactly 0)
    is stored as -1000, whose softplus is exactly 0, with a zero gradient, so it stays absent
    under training. Input and output mappings "affine", "linear" and none all map (as
    ``input_w``/``input_b``, ``output_w``/``output_b`` of 1 and 0 where absent).

    Cannot be mapped (ValueError): ``mixed_memory=True``; with
    ``implicit_param_constraints=False``, a negative ``w``, ``sensory_w``, ``cm`` or ``gleak``
    (ncps clips them only in ``apply_weight_constraints()``: call it first).

    ncps's sequence module squeezes ``timespans[:, t]`` to shape (B,), which broadcasts over
    the units rather than the batch: compare timespans with the cell itself.
    """
    cell = _ncps_cell(module, "LTC")
    P = {k: _t(v).astype(np.float64) for k, v in cell._params.items()}
    if dtype is None:
        dtype = np.float64 if cell._params["w"].dtype.itemsize == 8 else np.float32
    implicit = bool(cell._implicit_param_constraints)
    masks = {"w": P["sparsity_mask"], "sensory_w": P["sensory_sparsity_mask"]}
    raw = {}
    for name in ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
                 "sensory_erev"):
        v = P[name]
        if name in ("gleak", "cm", "w", "sensory_w"):
            mask = masks.get(name)
            if not implicit:
                if np.any(v < 0):
                    raise ValueError(f"ncps parameter {name!r} has negative entries and implicit_param_constraints is "
                                     f"False: call apply_weight_constraints() first")
                v = v * mask if mask is not None else v
                safe = np.where(v > 0, v, 1.0)
                v = np.where(v > 0, nn.inverse_softplus(safe), _ABSENT)
            elif mask is not None:
                v = np.where(mask != 0, v, _ABSENT)
        raw[name] = v
    S, N, M = P["sensory_w"].shape[0], P["w"].shape[0], cell.motor_size
    one = {"input_w": np.ones(S), "input_b": np.zeros(S), "output_w": np.ones(M), "output_b": np.zeros(M)}
    for name in one:
        raw[name] = P.get(name, one[name])
    from .liquid import LTCCell

    config = LTCCell._validate(input_size=S, units=N, output_size=M, ode_unfolds=cell._ode_unfolds,
                               epsilon=cell._epsilon, dtype=dtype)
    return LTCCell._from_saved(config, {k: np.array(v, dtype=dtype) for k, v in raw.items()}, copy=False)


def ltccell_to_ncps(model: LTCCell, *, implicit_param_constraints: bool = True) -> torch.nn.Module:
    """An ncps ``LTC`` (torch; ``return_sequences=True``, ``batch_first=True``) with the cell's
    parameters: a fully connected wiring (``ncps.wirings.FullyConnected(units, output_size)``,
    every synapse present), affine input and output mappings, the same ``ode_unfolds`` and
    ``epsilon``. With ``implicit_param_constraints=True`` (default) the raw parameters are
    copied as they are (ncps applies the same softplus); with False the positive values
    ``softplus(raw)`` are written. In float64 the ncps module's outputs equal the cell's to
    rounding. A synapse stored as absent (softplus exactly 0) stays a zero weight."""
    import torch
    from ncps.torch import LTC
    from ncps.wirings import FullyConnected

    c = model.config
    ltc = LTC(c["input_size"], FullyConnected(c["units"], output_dim=c["output_size"]), return_sequences=True,
              batch_first=True, ode_unfolds=c["ode_unfolds"], epsilon=c["epsilon"],
              implicit_param_constraints=implicit_param_constraints)
    if model.dtype == np.float64:
        ltc = ltc.double()
    params = ltc.rnn_cell._params
    with torch.no_grad():
        for name, value in model.params.items():
            v = value
            if not implicit_param_constraints and name in ("gleak", "cm", "w", "sensory_w"):
                v = nn.activation("softplus", value)
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(v)))
        params["sparsity_mask"].fill_(1.0)
        params["sensory_sparsity_mask"].fill_(1.0)
    return ltc


_NCPS_ACTIVATIONS = {"LeCun": "lecun_tanh", "SiLU": "silu", "ReLU": "relu", "Tanh": "tanh"}


def cfc_from_ncps(module: torch.nn.Module, *, dtype: DTypeLike | None = None) -> CfC:
    """An :class:`neurodyn.CfC` from an ncps ``CfC`` or ``CfCCell`` (torch), any mode
    ("default", "no_gate", "pure"): the backbone's Linear layers, the heads (``ff1``, ``ff2``,
    ``time_a``, ``time_b``, or ``ff1``, ``w_tau`` and ``A`` in the pure mode) and the
    projection ``fc`` (``proj_size``) as the Dense head ``output``, all exactly (kernels are
    the transposed weights). ncps's backbone dropout acts only in training: the mapped model is
    the network in evaluation mode.

    Cannot be mapped (ValueError): wired CfCs (``units`` given as an ncps wiring, or a cell
    with a ``sparsity_mask``), ``mixed_memory=True``, the GELU backbone activation.
    """
    import torch

    from .liquid import CfC

    cell = _ncps_cell(module, "CfC")
    if getattr(module, "wiring", None) is not None or getattr(cell, "sparsity_mask", None) is not None or \
            type(cell).__name__ != "CfCCell":
        raise ValueError("a wired ncps CfC (a wiring instead of a number of units) cannot be mapped: its "
                         "per-layer sparse cells have no neurodyn equivalent")
    linears, acts = [], set()
    for m in (cell.backbone if cell.backbone_layers > 0 else []):
        if isinstance(m, torch.nn.Linear):
            linears.append(m)
        elif type(m).__name__ in _NCPS_ACTIVATIONS:
            acts.add(_NCPS_ACTIVATIONS[type(m).__name__])
        elif not isinstance(m, torch.nn.Dropout):
            raise ValueError(f"the backbone's {type(m).__name__} cannot be mapped (activations: lecun_tanh, silu, relu, "
                             f"tanh)")
    activation = acts.pop() if acts else "lecun_tanh"
    H, I = cell.hidden_size, cell.input_size
    if dtype is None:
        dtype = np.float64 if cell.ff1.weight.dtype == torch.float64 else np.float32
    params: dict[str, np.ndarray] = {}
    for l, lin in enumerate(linears):
        _linear_into(params, f"backbone_{l}", lin, dtype)
    heads = ("ff1",) if cell.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
    for h in heads:
        _linear_into(params, h, getattr(cell, h), dtype)
    if cell.mode == "pure":
        params["w_tau"] = np.array(_t(cell.w_tau).reshape(H), dtype=dtype)
        params["A"] = np.array(_t(cell.A).reshape(H), dtype=dtype)
    fc = getattr(module, "fc", None)
    out = None
    if isinstance(fc, torch.nn.Linear):
        _linear_into(params, "output", fc, dtype)
        out = fc.out_features
    units = linears[0].out_features if linears else 128
    config = CfC._validate(input_size=I, hidden_size=H, backbone_units=units, backbone_layers=len(linears),
                           backbone_activation=activation, mode=cell.mode, output_size=out, dtype=dtype)
    return CfC._from_saved(config, params, copy=False)


def cfc_to_ncps(model: CfC) -> torch.nn.Module:
    """An ncps ``CfC`` (torch; ``return_sequences=True``, ``batch_first=True``) with the model's
    parameters: same mode, backbone (units, layers, activation; no dropout) and heads, and the
    Dense head ``output`` as ncps's projection (``proj_size``). The backbone activations
    ncps lacks (identity, sigmoid, softplus) cannot be mapped (ValueError)."""
    import torch
    from ncps.torch import CfC

    c = model.config
    names = {v: k for k, v in _NCPS_ACTIVATIONS.items()}
    if c["backbone_activation"] not in names:
        raise ValueError(f"ncps has no backbone activation {c['backbone_activation']!r} (it has lecun_tanh, silu, relu, "
                         f"tanh, gelu)")
    L = c["backbone_layers"]
    mod = CfC(c["input_size"], c["hidden_size"], proj_size=c["output_size"], return_sequences=True,
              batch_first=True, mode=c["mode"], activation=c["backbone_activation"],
              backbone_units=c["backbone_units"], backbone_layers=L, backbone_dropout=0.0)
    if model.dtype == np.float64:
        mod = mod.double()
    cell, p = mod.rnn_cell, model.params
    targets = [m for m in (cell.backbone if L else []) if isinstance(m, torch.nn.Linear)]
    pairs = [(f"backbone_{l}", lin) for l, lin in enumerate(targets)]
    pairs += [(h, getattr(cell, h)) for h in model._heads(c["mode"])]
    if c["output_size"] is not None:
        pairs.append(("output", mod.fc))
    with torch.no_grad():
        for name, lin in pairs:
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(p[f"{name}.kernel"].T)))
            lin.bias.copy_(torch.from_numpy(p[f"{name}.bias"]))
        if c["mode"] == "pure":
            cell.w_tau.copy_(torch.from_numpy(p["w_tau"]).reshape(1, -1))
            cell.A.copy_(torch.from_numpy(p["A"]).reshape(1, -1))
    return mod
