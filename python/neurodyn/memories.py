"""Associative memories as dynamical systems: memories are the stable equilibria of neural
dynamics, reached by integrating them (docs/models.md §9 and §10).

:class:`FiringRateMemory`
    A firing-rate network ``tau dr/dt = -r + phi(W r + u)`` (or its current form) whose
    synapses are designed so that rescaled 0/1 memories are equilibria, with the local
    stability of each computed exactly in the (P+1)-dimensional range of W (Betteti, Baggio,
    Bullo, Zampieri, Neural Computation 2025).
:class:`IDPHopfield`
    The input-driven Hopfield network ``dx/dt = -x + W(u) psi(x)``, in which the input acts
    through the synapses, ``W(u) = (1/N) Xi diag(alpha(u)) Xi^T``; and the classical additive
    network as a baseline (Betteti, Baggio, Bullo, Zampieri, Science Advances 2025).
:class:`SequentialHopfield`
    Fast IDP retrieval with slow saliency dynamics that step through a sequence of memories;
    :func:`saliency_map` and :func:`map_fixed_points` are its adiabatic reduction.

Every network's synaptic matrix has rank P + 1 and is never formed as N x N in the dynamics:
a field evaluation costs O(NP), in C. The fields (``model.field(...)``) are built-in fields of
:func:`neurodyn.odeint` and :func:`neurodyn.sdeint`, with analytic Jacobians
(``field.jacobian``). Noisy recall runs :func:`neurodyn.sdeint` (Euler–Maruyama by default)
with no Python per step.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn
from ._typing import PathLike, Seed
from .encode import seed_key
from .fields import Field
from .fields import _param as _field_param
from .ode import FIXED, odeint
from .sde import Constant, sdeint
from .training import kernel_progress

#: Names in the kernels' order (csrc/nd_memories.h).
FORMS = _core.TABLES["memory_forms"]
ACTIVATIONS = _core.TABLES["memory_activations"]
SLOW_LAWS = _core.TABLES["memory_slow_laws"]
PATTERN_KINDS = _core.TABLES["memory_patterns"]



__all__ = ["FiringRateMemory", "IDPHopfield", "SequentialHopfield", "MemoryField", "PiecewiseInput", "Recall",
           "SequenceRun", "bernoulli_patterns", "correlated_patterns", "balanced_patterns", "random_patterns",
           "hadamard_patterns", "saliency_map", "map_fixed_points", "iterate_map"]


# ---- pattern generators ------------------------------------------------------------------------

def bernoulli_patterns(P: int, N: int, q: float, *, seed: Seed = None) -> np.ndarray:
    """P memories of N units, each unit active with probability q, independently.

    Returns
    -------
    ndarray of int8, shape (P, N), values 0 and 1

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.memories.bernoulli_patterns(3, 1000, 0.2, seed=0).mean().round(1)
    np.float64(0.2)
    """
    return _core.memories_patterns("bernoulli", P, N, q=q, seed=seed_key(seed))


def correlated_patterns(P: int, N: int, q: float, r: float, *, seed: Seed = None) -> np.ndarray:
    """P memories with activity q whose pairs overlap in a fraction r of their active units
    (r in [q, 1); r = q is independent memories).

    A unit is shared by every memory with probability ``q0``, and otherwise active in each
    memory on its own with probability ``p1 = q (1 - r) / (1 - q)``; ``q0`` is chosen so that
    each unit's activity is q. A unit active in one memory is then active in another with
    probability r (the overlap fraction of docs/models.md §9's design).

    Returns
    -------
    ndarray of int8, shape (P, N), values 0 and 1
    """
    return _core.memories_patterns("correlated", P, N, q=q, r=r, seed=seed_key(seed))


def balanced_patterns(N: int, q: float) -> np.ndarray:
    """The exactly balanced deterministic set of docs/models.md §9: ``P = floor(1 + 1/q)``
    memories (fewer if the rounded blocks do not fit in N), ``q^2 N`` units common to all, then
    one private block per memory, so that every memory has ``q N`` active units and every pair
    shares exactly ``q^2 N``.

    Returns
    -------
    ndarray of int8, shape (P, N), values 0 and 1

    Examples
    --------
    >>> import neurodyn as nd
    >>> X = nd.memories.balanced_patterns(1000, 0.2)
    >>> X.shape, int(X[0] @ X[1])
    ((6, 1000), 40)
    """
    return _core.memories_patterns("balanced", 0, N, q=q)


def random_patterns(P: int, N: int, *, seed: Seed = None) -> np.ndarray:
    """P memories of N units, each +1 or -1 with probability 1/2.

    Returns
    -------
    ndarray of int8, shape (P, N)
    """
    return _core.memories_patterns("rademacher", P, N, seed=seed_key(seed))


def hadamard_patterns(P: int, N: int, *, seed: Seed = None) -> np.ndarray:
    """P mutually orthogonal +-1 memories: distinct rows (chosen at random from ``seed``, never
    the all-ones row) of the Sylvester-Hadamard matrix of order N, a power of 2.

    Returns
    -------
    ndarray of int8, shape (P, N), with ``X @ X.T == N * I``

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> X = nd.memories.hadamard_patterns(4, 64, seed=1).astype(int)
    >>> bool(np.array_equal(X @ X.T, 64 * np.eye(4)))
    True
    """
    return _core.memories_patterns("hadamard", P, N, seed=seed_key(seed))


# ---- the map of sequential retrieval ---------------------------------------------------------

def saliency_map(z: ArrayLike, kappa: float) -> np.ndarray:
    """``kappa (1 - 1/z)``: the saliency the next memory of a sequence starts with when the
    current one started with ``z`` (docs/models.md §10, hard-tanh and orthogonal memories in the
    adiabatic limit)."""
    z = np.asarray(z, dtype=np.float64)
    kappa = _checks.real("kappa", kappa, minimum=0.0)
    return kappa * (1.0 - 1.0 / z)


def map_fixed_points(kappa: float) -> np.ndarray:
    """The fixed points ``(kappa -+ sqrt(kappa^2 - 4 kappa)) / 2`` of :func:`saliency_map`,
    ascending: two (one at kappa = 4) when ``kappa >= 4``, none below (the sequence collapses).
    The larger one attracts the saliencies of a self-sustained sequence.

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.memories.map_fixed_points(4.0).tolist(), nd.memories.map_fixed_points(3.0).tolist()
    ([2.0, 2.0], [])
    """
    kappa = _checks.real("kappa", kappa, minimum=0.0)
    if kappa < 4.0:  # kappa^2 - 4 kappa < 0 (at kappa = 0 the formula's 0 is outside the map's domain)
        return np.empty(0)
    root = math.sqrt(kappa * kappa - 4.0 * kappa)
    return np.array([(kappa - root) / 2.0, (kappa + root) / 2.0])


def iterate_map(z0: float, kappa: float, n: int) -> np.ndarray:
    """``[z0, f(z0), f(f(z0)), ...]`` for n steps of :func:`saliency_map`, stopping after the
    first value below 1 (a saliency below 1 retrieves nothing: the sequence has collapsed)."""
    z = [_checks.real("z0", z0)]
    n = _checks.integer("n", n, minimum=0)
    for _ in range(n):
        if z[-1] < 1.0:
            break
        z.append(float(saliency_map(z[-1], kappa)))
    return np.array(z)


# ---- fields ------------------------------------------------------------------------------------

class MemoryField(Field):
    """A memory network as a built-in field of :func:`neurodyn.odeint`, evaluated in C in
    O(NP) (docs/models.md §9, §10). Made by the models' ``field`` methods.

    The state of one sample is its N units, followed (``per_sample_input``) by its own input:
    u (N values) for the firing-rate and additive networks, the saliencies alpha (P values) for
    the IDP network, held constant by the field (or moved by a slow law). ``jacobian(t, y)``
    gives the analytic Jacobians (which the implicit methods use), ``energy(y)`` and
    ``overlaps(y)`` the network's energy and overlaps with its memories.
    """

    kind = "memory"

    def __init__(self, patterns: np.ndarray, *, form: str, activation: str, gain: float, threshold: float = 0.0,
                 tau: float = 1.0, design: tuple[float, float, float] = (0.0, 0.0, 0.0), zero_diagonal: bool = False,
                 input: ArrayLike | None = None, per_sample_input: bool = False, slow: str = "none",
                 kappa: float = 0.0, eps: float = 0.0, leak: float = 0.0, successors: ArrayLike | None = None,
                 active: tuple[np.ndarray, np.ndarray] | None = None, dtype: DTypeLike = np.float64) -> None:
        # int8 (P, N), read-only, owned by the model; 0/1 memories go to C as their active units
        # (active = (starts (P + 1,), units)), which is all the products need
        self.patterns, self.active = patterns, active
        _checks.choice("form", form, FORMS)
        _checks.choice("activation", activation, ACTIVATIONS)
        self.form, self.activation = form, activation
        self.gain, self.threshold, self.tau = float(gain), float(threshold), float(tau)
        self.design = tuple(float(v) for v in design)
        self.zero_diagonal, self.per_sample_input = bool(zero_diagonal), bool(per_sample_input)
        self.input = None if input is None else _field_param("input", np.asarray(input, dtype=dtype), 1)
        self.slow, self.kappa, self.eps, self.leak = slow, float(kappa), float(eps), float(leak)
        self.successors = successors
        self._check()  # the kernels' rules; sets dim: N, plus N or P with per-sample inputs

    def _spec(self):
        codes = (FORMS.index(self.form), ACTIVATIONS.index(self.activation), int(self.zero_diagonal),
                 int(self.per_sample_input), SLOW_LAWS.index(self.slow))
        consts = (self.gain, self.threshold, self.tau) + self.design + (self.kappa, self.eps, self.leak)
        P, N = self.patterns.shape
        arrays = (None if self.active else self.patterns, self.input, self.successors) + (self.active or (None, None))
        return ("memory", arrays, codes + (N, P), consts)

    def _states(self, y: ArrayLike) -> tuple[np.ndarray, tuple[int, ...]]:
        arr = _checks.real_array("y", y)
        if arr.ndim == 0 or arr.shape[-1] != self.dim:
            raise ValueError(f"y has shape {arr.shape}; this field needs its last axis of size {self.dim}")
        return arr.reshape(-1, self.dim), arr.shape[:-1]

    def energy(self, y: ArrayLike) -> np.ndarray:
        """The network's energy at each state (docs/models.md §9, §10), shape ``y.shape[:-1]``."""
        rows, lead = self._states(y)
        return _core.memories_states(self._spec(), rows, 0).reshape(lead)

    def overlaps(self, y: ArrayLike, scale: float) -> np.ndarray:
        """``scale * xi^mu · s(y)`` for each memory, s the rates (rate form), phi(x) (current form) or
        psi(x); shape ``y.shape[:-1] + (P,)``."""
        rows, lead = self._states(y)
        return _core.memories_states(self._spec(), rows, 1, scale=float(scale)).reshape(lead + self.patterns.shape[:1])

    def __repr__(self):
        P, N = self.patterns.shape
        extra = ", input per sample" if self.per_sample_input else (", input" if self.input is not None else "")
        return f"MemoryField(form={self.form!r}, N={N}, P={P}, activation={self.activation!r}{extra})"


# ---- inputs and results ------------------------------------------------------------------------

class PiecewiseInput:
    """An input held constant over windows: ``values[k]`` from ``starts[k]`` until
    ``starts[k + 1]`` (the last until the end of the run).

    Parameters
    ----------
    starts : array_like, shape (W,)
        Strictly increasing start times; the first must be <= the run's start (0).
    values : array_like, shape (W, N) or (W, B, N)
        One input per window, shared by every sample or one per sample.
    """

    def __init__(self, starts: ArrayLike, values: ArrayLike) -> None:
        self.starts = _checks.times("starts", starts)
        if len(self.starts) > 1 and self.starts[1] < self.starts[0]:
            raise ValueError("starts must be increasing")
        self.values = _checks.real_array("values", values)
        if self.values.ndim not in (2, 3) or self.values.shape[0] != len(self.starts):
            raise ValueError(f"values must have shape (W, N) or (W, B, N) with W = {len(self.starts)} windows, "
                             f"got {self.values.shape}")
        if self.starts[0] > 0:
            raise ValueError(f"the first window must start at or before 0, got starts[0]={self.starts[0]!r}")

    def windows(self, t_max: float) -> list[tuple[float, float, np.ndarray]]:
        """[(start, end, value)] covering [0, t_max]."""
        out = []
        for k, s in enumerate(self.starts):
            e = self.starts[k + 1] if k + 1 < len(self.starts) else math.inf
            lo, hi = max(s, 0.0), min(e, t_max)
            if hi > lo:
                out.append((lo, hi, self.values[k]))
        return out

    def __repr__(self):
        return f"PiecewiseInput(windows={len(self.starts)}, values shape={self.values.shape})"


class Recall:
    """The result of a recall.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Output times.
    overlaps : ndarray, shape (T, B, P)
        Overlap of each sample with each memory at each time.
    final : ndarray, shape (B, N)
        The final rates (firing-rate networks) or currents x (Hopfield networks).
    retrieved : ndarray of int, shape (B,)
        The memory each sample ends in, -1 for none.
    states : ndarray, shape (T, B, N)
        The units at every output time.
    """

    def __init__(self, t: np.ndarray, states: np.ndarray, overlaps: np.ndarray, final: np.ndarray,
                 retrieved: np.ndarray) -> None:
        self.t, self.states, self.overlaps, self.final, self.retrieved = t, states, overlaps, final, retrieved

    def __repr__(self):
        T, B, P = self.overlaps.shape
        return (f"Recall(times={T}, samples={B}, memories={P}, retrieved={np.count_nonzero(self.retrieved >= 0)} "
                f"of {B})")


def _windows(input, t_max, batch, size, name="input"):
    """[(start, end, shared value or None, per-sample value or None)] of an input: None, an
    array (size,) shared, (batch, size) per sample, or a PiecewiseInput of those."""
    if isinstance(input, PiecewiseInput):
        raw = input.windows(t_max)
    else:
        raw = [(0.0, t_max, None if input is None else _checks.real_array(name, input))]
    out = []
    for lo, hi, value in raw:
        if value is None:
            out.append((lo, hi, None, None))
            continue
        if value.shape == (size,):
            out.append((lo, hi, value, None))
        elif value.shape == (batch, size):
            out.append((lo, hi, None, value))
        else:
            raise ValueError(f"{name} has shape {value.shape}; this network needs ({size},) or ({batch}, {size}) "
                             f"(one per sample)")
    return out


# Window w of a noisy run draws its increments under key seed + w * this (mod 2^63): the
# windows are separate nd.sdeint calls, whose steps each count from 0.
_WINDOW_KEY = 0x9E3779B97F4A7C15


def _integrate(make_field, x0, t_max, windows, *, method, n_times, dt, noise, seed, rtol, atol, verbose):
    """Output times (T,) and states (T, B, N) of the dynamics of make_field(shared, per_sample)
    from x0 (B, N) over the windows of a piecewise-constant input: nd.odeint per window, or
    nd.sdeint with additive noise on the units when noise > 0."""
    B, N = x0.shape
    dtype = x0.dtype
    single = dtype == np.float32
    rtol = (1e-4 if single else 1e-6) if rtol is None else rtol
    atol = (1e-6 if single else 1e-8) if atol is None else atol
    if noise:
        if dt is None:
            raise ValueError("noise needs a step dt")
        key = seed_key(seed)
    times = np.linspace(0.0, t_max, n_times)
    states = None  # (n_times, B, N), filled window by window
    x = x0
    tiny = 1e-12 * max(1.0, t_max)
    for w, (lo, hi, shared, per) in enumerate(windows):
        inside = times[(times > lo + tiny) & (times < hi - tiny)]
        tt = np.concatenate([[lo], inside, [hi]])
        field = make_field(shared, per is not None)
        y = x if per is None else np.concatenate([x, per.astype(dtype)], axis=1)
        if noise:
            sigma = np.zeros(field.dim)
            sigma[:N] = noise  # the units; a state's input (after them) is held
            ys = sdeint(field, Constant(sigma), y, tt, dt=dt, noise="additive", method=method,
                        seed=(key + w * _WINDOW_KEY) % 2**63, verbose=verbose)
        else:
            kw = {"dt": dt} if method in FIXED else {}
            ys = odeint(field, y, tt, method=method, rtol=rtol, atol=atol, verbose=verbose, **kw)
        if len(windows) == 1 and per is None:
            return times, ys  # one window over all the output times: its solution is the answer
        if states is None:
            states = np.empty((n_times, B, N), dtype=dtype)
            states[0] = x0
        states[np.searchsorted(times, inside)] = ys[1:-1, :, :N]
        x = ys[-1, :, :N]
        states[np.abs(times - hi) <= tiny] = x  # an output time at the window's end
    return times, states


def _batch(name, x, N, dtype):
    arr = _checks.real_array(name, x, dtype)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != N:
        raise ValueError(f"{name} has shape {np.shape(x)}; this network needs (batch, {N}) or ({N},)")
    return np.ascontiguousarray(arr)


def _method(method, noise):
    """The integrator's method: odeint's default without noise, sdeint's with it."""
    if method is None:
        return "euler_maruyama" if noise else "dopri5"
    return _name("method", method)


def _t_max(t_max):
    return _checks.real("t_max", t_max, minimum=0.0, strict=True)


def _name(name, value, table=None):
    """An option name from the kernels' table (which of them a network takes is the kernels'
    rule, checked when used)."""
    if table is not None:
        _checks.choice(name, value, table)
    elif not isinstance(value, str):
        raise ValueError(f"{name}={value!r} is not a name")
    return value


def _pm_config(N, P, activation, gain, zero_diagonal, tau, dtype):
    """The configuration shared by the networks of +-1 memories."""
    return {"N": _checks.integer("N", N, minimum=1), "P": _checks.integer("P", P, minimum=1),
            "activation": _name("activation", activation, ACTIVATIONS), "gain": _checks.real("gain", gain),
            "zero_diagonal": bool(zero_diagonal), "tau": _checks.real("tau", tau), "dtype": nn.model_dtype(dtype).name}


# ---- firing-rate memories (§9) -----------------------------------------------------------------

class _Memories(nn.Model):
    """A network whose one parameter is its memories, ``patterns`` (P, N); ``_adopt`` checks
    them (and rebuilds what the network derives from them) after construction, loading and
    unpickling alike."""

    @classmethod
    def _param_specs(cls, config):
        nn._spend(1)
        return [("patterns", (config["P"], config["N"]), "zeros")]

    def __setstate__(self, state):
        super().__setstate__(state)
        self._adopt(self.config, self.params)


class FiringRateMemory(_Memories):
    """A firing-rate associative memory with designed stability (docs/models.md §9).

    Rate form ``tau dr/dt = -r + phi(W r + u)``, current form ``tau dx/dt = -x + W phi(x) + u``
    (same equilibria through ``x = W r``), with the synaptic design
    ``W = (alpha/N)(Xi - beta)(Xi - beta)^T + (gamma/N) 1 1^T`` that makes the target currents
    ``x*^mu = a + (b - a) xi^mu`` (rates ``phi(x*^mu)``) equilibria for every memory. W has rank
    P + 1 and is never formed in the dynamics.

    Parameters
    ----------
    patterns : array_like, shape (P, N)
        The memories, of 0 and 1, with P < N. Their mean activity is the design's q.
    a, b : float
        Field levels, ``a < b``: the target currents of inactive and active units.
    activation : {"sigmoid", "rectified_tanh"}
        ``sigmoid``: ``1 / (1 + exp(-4 gain (x - threshold - 1/(2 gain))))`` (slope ``gain`` at its
        centre); ``rectified_tanh``: ``tanh(gain (x - threshold))`` above the threshold, else 0.
    gain, threshold : float
        The activation's gain rho (> 0) and threshold x*.
    overlap : float, optional
        The memories' overlap fraction r in [0, 1) (default q, independent memories).
    tau : float
        Time constant (> 0).
    dtype : float32 or float64
        Of the parameters and the dynamics (the stability analysis is always in float64).

    Examples
    --------
    >>> import neurodyn as nd
    >>> X = nd.memories.balanced_patterns(1000, 0.2)
    >>> net = nd.FiringRateMemory(X, a=-0.3, b=0.95, gain=4.8, threshold=0.2, dtype="float64")
    >>> net.stability()["lambda_max"].round(4).tolist()
    [-0.9998, -0.9998, -0.9998, -0.9998, -0.9998, -0.9998]
    """

    def __init__(self, patterns: ArrayLike, *, a: float, b: float, activation: str = "sigmoid", gain: float,
                 threshold: float, overlap: float | None = None, tau: float = 1.0,
                 dtype: DTypeLike = np.float32) -> None:
        X = _checks.real_array("patterns", patterns, np.float64)
        if X.ndim != 2:
            raise ValueError(f"patterns has shape {X.shape}; expected (P, N)")
        config = self._validate(N=X.shape[1], P=X.shape[0], a=a, b=b, activation=activation, gain=gain,
                                threshold=threshold, overlap=overlap, tau=tau, dtype=dtype)
        self._adopt(config, {"patterns": X.astype(config["dtype"])})

    @classmethod
    def _validate(cls, *, N, P, a, b, activation="sigmoid", gain, threshold, overlap=None, tau=1.0,
                  dtype=np.float32):
        return {"N": _checks.integer("N", N, minimum=1), "P": _checks.integer("P", P, minimum=1),
                "a": _checks.real("a", a), "b": _checks.real("b", b),
                "activation": _name("activation", activation, ACTIVATIONS),
                "gain": _checks.real("gain", gain), "threshold": _checks.real("threshold", threshold),
                "overlap": None if overlap is None else _checks.real("overlap", overlap),
                "tau": _checks.real("tau", tau), "dtype": nn.model_dtype(dtype).name}

    def _adopt(self, config, params):
        super()._adopt(config, params)
        c = self.config
        # the kernels' rules: 0/1 patterns, P < N, a < b, q and r, gain, threshold, and tau
        self.design = _core.memories_rate_design(params["patterns"], a=c["a"], b=c["b"], activation=c["activation"],
                                                 gain=c["gain"], threshold=c["threshold"], overlap=c["overlap"])
        self._xi = params["patterns"].astype(np.int8)
        self._xi.setflags(write=False)
        self._counts = np.count_nonzero(self._xi, axis=1)
        starts = np.zeros(len(self._xi) + 1, dtype=np.int64)
        np.cumsum(self._counts, out=starts[1:])
        self._units = (starts, np.nonzero(self._xi)[1].astype(np.int32))  # row-major: memory by memory
        for arr in self._units:
            arr.setflags(write=False)
        self._grams = None
        self.field()  # the kernels' rules on the whole network (tau among them)

    # -- the design ---------------------------------------------------------------------------

    @property
    def q(self) -> float:
        """The memories' mean activity."""
        return self.design["q"]

    @property
    def overlap(self) -> float:
        """The overlap fraction r used by the design."""
        return self.design["r"]

    def _act(self, what, x):
        c = self.config
        return _core.memories_activation(c["activation"], c["gain"], c["threshold"], what,
                                         _checks.real_array("x", x, self.dtype, finite=False))

    def phi(self, x: ArrayLike) -> np.ndarray:
        """The activation at currents x."""
        return self._act(0, x)

    def dphi(self, x: ArrayLike) -> np.ndarray:
        """Its derivative."""
        return self._act(1, x)

    def phi_inv(self, r: ArrayLike) -> np.ndarray:
        """Its inverse on the rates' range (0, 1) ([0, 1) for the rectified tanh; 0 maps to the threshold)."""
        return self._act(2, r)

    def int_phi(self, x: ArrayLike) -> np.ndarray:
        """Its integral from where it vanishes (-inf for the sigmoid, the threshold for the rectified tanh)."""
        return self._act(3, x)

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        """The target currents ``a + (b - a) xi^mu`` and rates ``phi`` of them, each (P, N)."""
        c = self.config
        x = (c["a"] + (c["b"] - c["a"]) * self._xi).astype(self.dtype)
        return x, self.phi(x)

    def dense_weights(self) -> np.ndarray:
        """W as an N x N matrix (for checks on small networks; the dynamics never form it)."""
        d, N = self.design, self.config["N"]
        Y = self.params["patterns"].astype(np.float64) - d["beta"]
        return (d["alpha"] / N * (Y.T @ Y) + d["gamma"] / N).astype(self.dtype)

    # -- the dynamics -------------------------------------------------------------------------

    def field(self, form: str = "rate", input: ArrayLike | None = None, *,
              per_sample_input: bool = False) -> MemoryField:
        """The network's dynamics as a built-in field of :func:`neurodyn.odeint`.

        Parameters
        ----------
        form : {"rate", "current"}
        input : array_like, shape (N,), optional
            A constant input u shared by every sample.
        per_sample_input : bool
            The state is ``[units, u]`` (2N values): every sample carries its own input.
        """
        _checks.choice("form", form, FORMS[:2])
        c, d = self.config, self.design
        if input is not None and per_sample_input:
            raise ValueError("give a shared input or per_sample_input=True, not both")
        return MemoryField(self._xi, form=form, activation=c["activation"], gain=c["gain"], threshold=c["threshold"],
                           tau=c["tau"], design=(d["alpha"], d["beta"], d["gamma"]), input=input,
                           per_sample_input=per_sample_input, active=self._units, dtype=self.dtype)

    def __call__(self, r: ArrayLike, input: ArrayLike | None = None, *, form: str = "rate") -> np.ndarray:
        """``dr/dt`` (or ``dx/dt`` with ``form="current"``) at states of shape (..., N)."""
        return self.field(form, input)(0.0, _checks.real_array("r", r, self.dtype))

    def energy(self, r: ArrayLike, input: ArrayLike | None = None) -> np.ndarray:
        """``E(r) = -1/2 r^T W r - u^T r + sum_i int_0^{r_i} phi^-1``, non-increasing along the rate
        dynamics, for rates r (..., N) in [0, 1]."""
        return self.field("rate", input).energy(_checks.real_array("r", r, self.dtype))

    def overlaps(self, r: ArrayLike) -> np.ndarray:
        """``m_mu = r · xi^mu / (N q_mu)`` for rates r (..., N), with ``q_mu = |xi^mu| / N`` each
        memory's own activity (docs/models.md §9's ``N q``, exact for memories whose activity
        is not exactly q): phi(b) at memory mu's target rates, about q for the others."""
        return self._per_memory(self.field("rate").overlaps(_checks.real_array("r", r, self.dtype), 1.0))

    def _per_memory(self, raw: np.ndarray) -> np.ndarray:
        return (raw / np.maximum(self._counts, 1)).astype(self.dtype)

    def _recall_overlaps(self, r: np.ndarray) -> np.ndarray:
        """overlaps() of a solver's rates (T, B, N), finite and of this network's size: the
        kernel without the checks of user input."""
        raw = _core.memories_states(self.field("rate")._spec(), r.reshape(-1, r.shape[-1]), 1, scale=1.0)
        return self._per_memory(raw.reshape(r.shape[:-1] + (self.config["P"],)))

    def equilibrium_residual(self) -> float:
        """``max_mu || -x*^mu + W phi(x*^mu) ||_inf`` at the target currents (0 by design, up to rounding)."""
        x, _ = self.targets()
        return float(np.max(np.abs(self.field("current")(0.0, x))))

    # -- stability ------------------------------------------------------------------------------

    def _stability_grid(self, gains, thresholds):
        if self._grams is None:
            self._grams = _core.memories_grams(self.params["patterns"])
        c, d = self.config, self.design
        return _core.memories_stability(self._grams, c["a"], c["b"], d["q"], d["r"], c["activation"],
                                        np.atleast_1d(np.asarray(gains, dtype=np.float64)),
                                        np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))

    def stability(self) -> dict[str, Any]:
        """Local stability of every memory (docs/models.md §9).

        ``lambda_max`` (P,): the largest eigenvalue of ``-I + D^1/2 W D^1/2``,
        ``D = diag(phi'(x*^mu))``, computed in the (P+1)-dimensional range of W (memory mu is
        stable iff it is < 0); ``stable`` (P,) that test; ``sufficient``: the closed-form
        condition ``max(phi'(a), phi'(b)) max(alpha', gamma) < 1`` holds (every memory stable);
        ``unstable``: one of the closed-form instability conditions holds; and the quantities
        behind them (``sufficient_value``, ``unstable1``, ``unstable2``, ``alpha_prime``).
        """
        c = self.config
        g = self._stability_grid(c["gain"], c["threshold"])
        lam = g["lambda_max"][0, 0]
        d = self.design
        return {"lambda_max": lam, "stable": lam < 0, "sufficient": bool(d["sufficient"] < 1),
                "unstable": bool(d["unstable1"] > 0 or d["unstable2"] > 0), "sufficient_value": d["sufficient"],
                "unstable1": d["unstable1"], "unstable2": d["unstable2"], "alpha_prime": d["alpha_prime"]}

    def phase_diagram(self, gains: ArrayLike, thresholds: ArrayLike) -> dict[str, np.ndarray]:
        """The stability analysis over a (gain, threshold) grid, the design recomputed at every point.

        Returns
        -------
        dict
            ``lambda_max`` (G, H): the largest over the memories; ``stable`` (G, H): every
            memory stable; ``sufficient`` and ``unstable`` (G, H): the closed-form conditions;
            ``gains``, ``thresholds``. Points where the design does not exist (phi(b) <= phi(a))
            are NaN and not stable.
        """
        g = self._stability_grid(gains, thresholds)
        lam = g["lambda_max"].max(axis=2)
        return {"gains": np.atleast_1d(np.asarray(gains, dtype=np.float64)),
                "thresholds": np.atleast_1d(np.asarray(thresholds, dtype=np.float64)),
                "lambda_max": lam, "stable": lam < 0, "sufficient": g["sufficient"] < 1,
                "unstable": (g["unstable1"] > 0) | (g["unstable2"] > 0)}

    # -- recall ---------------------------------------------------------------------------------

    def cues(self, memories: ArrayLike, keep: float = 0.6, *, seed: Seed = None) -> np.ndarray:
        """Degraded memories: each active unit of ``patterns[memories[i]]`` kept with probability
        ``keep`` (docs/models.md §9's experiment). Returns int8 (len(memories), N)."""
        idx = np.asarray(memories, dtype=np.int64).reshape(-1)
        if np.any((idx < 0) | (idx >= self.config["P"])):
            raise ValueError(f"memories must be indices in [0, {self.config['P']})")
        keep = _checks.real("keep", keep, minimum=0.0)
        if keep > 1:
            raise ValueError(f"keep must be in [0, 1], got {keep}")
        rng = nn.as_generator(seed)
        return (self._xi[idx] * (rng.random((len(idx), self.config["N"])) < keep)).astype(np.int8)

    def recall(self, cues: ArrayLike, t_max: float, *, form: str = "rate",
               input: ArrayLike | PiecewiseInput | None = None, method: str | None = None, n_times: int = 101,
               dt: float | None = None, noise: float = 0.0, seed: Seed = None, rtol: float | None = None,
               atol: float | None = None, tol: float = 0.02, verbose: bool = True) -> Recall:
        """Integrate the network from cues and report what it retrieves.

        Parameters
        ----------
        cues : array_like, shape (B, N) or (N,)
            0/1 patterns (degraded memories, or anything else). A sample starts at the rates
            ``phi(a) + (phi(b) - phi(a)) cue`` (rate form) or the currents ``a + (b - a) cue``.
        t_max : float
            End time.
        form : {"rate", "current"}
        input : array_like (N,) or (B, N), or PiecewiseInput, optional
            External input u: shared, per sample, or piecewise constant in time (integrated
            window by window).
        method : str, optional
            Any :func:`neurodyn.odeint` method (default ``"dopri5"``; ``dt`` is the fixed
            methods' step); with ``noise > 0`` any :func:`neurodyn.sdeint` method (default
            ``"euler_maruyama"``) with steps of ``dt``.
        n_times : int
            Number of output times, evenly spaced from 0 to t_max.
        noise : float
            sigma of additive noise ``sigma dW`` on every unit (0: deterministic).
        seed : int or numpy.random.Generator
            Keys the noise: a sample's increments depend on the seed, its index in the batch,
            the window of the input and the step (window w uses the key
            ``seed + w * 0x9E3779B97F4A7C15``).
        rtol, atol : float, optional
            Adaptive methods' tolerances (default 1e-6 and 1e-8 in float64, 1e-4 and 1e-6 in
            float32).
        tol : float
            A sample retrieves memory mu when its overlap is within ``tol`` of phi(b).

        Returns
        -------
        Recall
            ``final`` holds the final rates (``phi(x)`` in the current form).
        """
        _checks.choice("form", form, FORMS[:2])
        t_max = _t_max(t_max)
        n_times = _checks.integer("n_times", n_times, minimum=2)
        noise = _checks.real("noise", noise, minimum=0.0)
        method = _method(method, noise)
        tol = _checks.real("tol", tol, minimum=0.0)
        C = _batch("cues", cues, self.config["N"], self.dtype)
        if not np.all((C == 0) | (C == 1)):
            raise ValueError("cues must hold only 0 and 1")
        c, d = self.config, self.design
        x0 = (c["a"] + (c["b"] - c["a"]) * C) if form == "current" else (d["phi_a"] + (d["phi_b"] - d["phi_a"]) * C)
        x0 = np.ascontiguousarray(x0, dtype=self.dtype)
        windows = _windows(input, t_max, C.shape[0], c["N"])
        t, states = _integrate(lambda shared, per: self.field(form, shared, per_sample_input=per), x0, t_max, windows,
                               method=method, n_times=n_times, dt=dt, noise=noise, seed=seed, rtol=rtol, atol=atol,
                               verbose=verbose)
        rates = states if form == "rate" else self.phi(states)
        m = self._recall_overlaps(np.ascontiguousarray(rates, dtype=self.dtype))
        dist = np.abs(m[-1] - d["phi_b"])
        best = np.argmin(dist, axis=1)
        retrieved = np.where(dist[np.arange(len(best)), best] <= tol, best, -1)
        return Recall(t, states, m, rates[-1], retrieved)


# ---- input-driven Hopfield networks (§10) --------------------------------------------------------

class _PlusMinusModel(_Memories):
    """Shared by the Hopfield networks of +-1 memories: patterns, activation, saliencies."""

    def _adopt(self, config, params):
        super()._adopt(config, params)
        _core.memories_check_patterns(params["patterns"], False)
        self._xi = params["patterns"].astype(np.int8)
        self._xi.setflags(write=False)
        self._field("idp")  # the kernels' rules on the whole network

    def _field(self, form, input=None, per_sample_input=False, **slow):
        c = self.config
        return MemoryField(self._xi, form=form, activation=c["activation"], gain=c["gain"], tau=c["tau"],
                           zero_diagonal=c["zero_diagonal"], input=input, per_sample_input=per_sample_input,
                           dtype=self.dtype, **slow)

    def psi(self, x: ArrayLike) -> np.ndarray:
        """The activation psi at x."""
        c = self.config
        return _core.memories_activation(c["activation"], c["gain"], 0.0, 0,
                                         _checks.real_array("x", x, self.dtype, finite=False))

    def saliencies(self, u: ArrayLike) -> np.ndarray:
        """``alpha(u) = Xi^T u / N`` for inputs u (..., N): shape (..., P)."""
        U = _checks.real_array("u", u, self.dtype)
        if U.ndim == 0 or U.shape[-1] != self.config["N"]:
            raise ValueError(f"u has shape {U.shape}; this network needs its last axis of size {self.config['N']}")
        return (U @ self.params["patterns"].T / self.config["N"]).astype(self.dtype)

    def input_from(self, a: ArrayLike) -> np.ndarray:
        """The input ``u = sum_mu a_mu xi^mu`` for coefficients a (..., P): shape (..., N)."""
        A = _checks.real_array("a", a, self.dtype)
        if A.ndim == 0 or A.shape[-1] != self.config["P"]:
            raise ValueError(f"a has shape {A.shape}; this network needs its last axis of size {self.config['P']}")
        return (A @ self.params["patterns"]).astype(self.dtype)

    def overlaps(self, x: ArrayLike) -> np.ndarray:
        """``m_mu = xi^mu · psi(x) / N`` for states x (..., N): shape (..., P)."""
        return self._field("idp").overlaps(_checks.real_array("x", x, self.dtype), 1.0 / self.config["N"])



def _pm_patterns(patterns):
    X = _checks.real_array("patterns", patterns, np.float64)
    if X.ndim != 2:
        raise ValueError(f"patterns has shape {X.shape}; expected (P, N)")
    return X


class IDPHopfield(_PlusMinusModel):
    """The input-driven (IDP) Hopfield network (docs/models.md §10).

    ``tau dx/dt = -x + W(u) psi(x)``, ``W(u) = (1/N) Xi diag(alpha(u)) Xi^T`` (optionally with a
    zero diagonal), saliencies ``alpha_mu(u) = xi^mu . u / N``: the input acts through the
    synapses, so the memory with the largest saliency is the one the state falls to. The
    classical additive network ``tau dx/dt = -x + W psi(x) + u``, ``W = (1/N) Xi Xi^T``, is the
    baseline (``recall(..., classical=True)``, :meth:`additive_field`).

    Parameters
    ----------
    patterns : array_like, shape (P, N)
        +-1 memories, P < N (:func:`random_patterns`, :func:`hadamard_patterns`).
    activation : {"tanh", "hardtanh"}
        ``tanh(gain x)`` or ``clip(x, -1, 1)``.
    gain : float
        delta of ``tanh(delta x)`` (> 0).
    zero_diagonal : bool
        Remove W's diagonal (no self-coupling).
    tau : float
    dtype : float32 or float64

    Examples
    --------
    >>> import neurodyn as nd
    >>> X = nd.memories.hadamard_patterns(4, 64, seed=0)
    >>> net = nd.IDPHopfield(X, activation="hardtanh", dtype="float64")
    >>> net.equilibrium_check(0, 1.5)["equilibrium"], net.equilibrium_check(0, 0.8)["equilibrium"]
    (True, False)
    """

    def __init__(self, patterns: ArrayLike, *, activation: str = "tanh", gain: float = 10.0,
                 zero_diagonal: bool = False, tau: float = 1.0, dtype: DTypeLike = np.float32) -> None:
        X = _pm_patterns(patterns)
        config = self._validate(N=X.shape[1], P=X.shape[0], activation=activation, gain=gain,
                                zero_diagonal=zero_diagonal, tau=tau, dtype=dtype)
        self._adopt(config, {"patterns": X.astype(config["dtype"])})

    @classmethod
    def _validate(cls, *, N, P, activation="tanh", gain=10.0, zero_diagonal=False, tau=1.0, dtype=np.float32):
        return _pm_config(N, P, activation, gain, zero_diagonal, tau, dtype)

    def field(self, saliencies: ArrayLike | None = None) -> MemoryField:
        """The IDP dynamics as a built-in field: with saliencies (P,) shared by every sample, or
        (None) carried by each state after its units, ``y = [x, alpha]`` (N + P values)."""
        return self._field("idp", saliencies, saliencies is None)

    def additive_field(self, input: ArrayLike | None = None, *, per_sample_input: bool = False) -> MemoryField:
        """The classical additive network ``tau dx/dt = -x + W psi(x) + u`` as a built-in field."""
        return self._field("additive", input, per_sample_input)

    def __call__(self, x: ArrayLike, u: ArrayLike) -> np.ndarray:
        """``dx/dt`` at states x (B, N) under inputs u (N,) or (B, N)."""
        X = _batch("x", x, self.config["N"], self.dtype)
        a = np.broadcast_to(self.saliencies(u), (X.shape[0], self.config["P"]))
        dy = self.field()(0.0, np.concatenate([X, a], axis=1))
        return dy[:, :self.config["N"]]

    def energy(self, x: ArrayLike, u: ArrayLike | None = None) -> np.ndarray:
        """``E(x; u) = -1/2 psi^T W(u) psi + x^T psi - sum_i int_0^{x_i} psi`` for x (B, N) and
        inputs u (N,) or (B, N) (None: W = 0)."""
        X = _batch("x", x, self.config["N"], self.dtype)
        if u is None:
            return self._field("idp").energy(X)
        a = np.broadcast_to(self.saliencies(u), (X.shape[0], self.config["P"]))
        return self.field().energy(np.concatenate([X, a], axis=1))

    def equilibrium_check(self, mu: int, saliency: float, *, input: ArrayLike | None = None) -> dict[str, Any]:
        """Is ``x* = saliency * xi^mu`` an equilibrium under the input ``u = saliency * xi^mu``
        (or ``input``), and is it stable?

        With hard-tanh and orthogonal memories, x* is an exact equilibrium iff saliency >= 1,
        and then stable with Jacobian -I (docs/models.md §10).

        Returns
        -------
        dict
            ``residual``: ``||dx/dt||_inf`` at x*; ``equilibrium``: residual <= 1e-12 (float64)
            or 1e-5 (float32); ``jacobian``: the Jacobian there (N, N); ``max_real_eig``:
            its largest eigenvalue's real part; ``stable``: equilibrium and max_real_eig < 0.
        """
        P, N = self.config["P"], self.config["N"]
        mu = _checks.integer("mu", mu, minimum=0)
        if mu >= P:
            raise ValueError(f"mu must be in [0, {P}), got {mu}")
        s = _checks.real("saliency", saliency)
        x = (s * self.params["patterns"][mu]).astype(self.dtype)
        u = x if input is None else input
        a = self.saliencies(u)
        field = self.field(a)
        res = float(np.max(np.abs(field(0.0, x))))
        J = field.jacobian(0.0, x)
        eig = float(np.max(np.linalg.eigvals(J.astype(np.float64)).real))
        ok = res <= (1e-12 if self.dtype == np.float64 else 1e-5) * max(1.0, abs(s))
        return {"residual": res, "equilibrium": ok, "jacobian": J, "max_real_eig": eig, "stable": ok and eig < 0}

    def recall(self, x0: ArrayLike, t_max: float, *, input: ArrayLike | PiecewiseInput | None = None,
               classical: bool = False, method: str | None = None, n_times: int = 101, dt: float | None = None,
               noise: float = 0.0, seed: Seed = None, rtol: float | None = None, atol: float | None = None,
               threshold: float = 0.8, verbose: bool = True) -> Recall:
        """Integrate the network from x0 under an input and report what it retrieves.

        Parameters
        ----------
        x0 : array_like, shape (B, N) or (N,)
        t_max : float
        input : array_like (N,) or (B, N), or PiecewiseInput
            The input u, acting through the saliencies ``alpha(u)`` (IDP) or added to the
            currents (``classical=True``).
        classical : bool
            Integrate the classical additive network instead.
        method, n_times, dt, noise, seed, rtol, atol, verbose
            As :meth:`FiringRateMemory.recall`; with ``noise > 0`` :func:`neurodyn.sdeint` steps
            of dt (docs/models.md §10's experiments use Euler–Maruyama, dt = 0.01, sigma = 0.5).
        threshold : float
            A sample retrieves memory mu when ``|m_mu| >= threshold`` (the largest such); either
            sign, as -xi^mu is an equilibrium whenever xi^mu is.

        Returns
        -------
        Recall
        """
        t_max = _t_max(t_max)
        n_times = _checks.integer("n_times", n_times, minimum=2)
        noise = _checks.real("noise", noise, minimum=0.0)
        method = _method(method, noise)
        threshold = _checks.real("threshold", threshold, minimum=0.0)
        N, P = self.config["N"], self.config["P"]
        X0 = _batch("x0", x0, N, self.dtype)
        B = X0.shape[0]
        windows = _windows(input, t_max, B, N)
        if classical:
            def make(shared, per):
                return self.additive_field(shared, per_sample_input=per)
        else:
            # the input acts through its saliencies: P numbers per window (and sample)
            windows = [(lo, hi, None if sh is None else self.saliencies(sh), None if pe is None else self.saliencies(pe))
                       for lo, hi, sh, pe in windows]

            def make(shared, per):
                return self._field("idp", shared, per)
        t, states = _integrate(make, X0, t_max, windows, method=method, n_times=n_times, dt=dt, noise=noise,
                               seed=seed, rtol=rtol, atol=atol, verbose=verbose)
        m = self.overlaps(states)
        last = np.abs(m[-1])
        best = np.argmax(last, axis=1)
        retrieved = np.where(last[np.arange(B), best] >= threshold, best, -1)
        return Recall(t, states, m, states[-1], retrieved)


# ---- sequential retrieval (§10) ------------------------------------------------------------------

class SequenceRun:
    """A run of :class:`SequentialHopfield`.

    Attributes
    ----------
    t : ndarray (T,)
    overlaps, saliencies : ndarray (T, B, P)
    visits : list of lists
        Per sample, the memories retrieved in turn (overlap >= the threshold), repeats of the
        same memory merged.
    visit_times : list of lists
        When each visit began.
    escape_times : list of lists
        Per sample and transition: the time from the moment the current memory's saliency fell
        below 1 (where, with hard-tanh, it stops being an equilibrium) to the moment the next
        memory was retrieved.
    """

    def __init__(self, t: np.ndarray, overlaps: np.ndarray, saliencies: np.ndarray, threshold: float) -> None:
        self.t, self.overlaps, self.saliencies = t, overlaps, saliencies
        self.visits, self.visit_times, self.escape_times = [], [], []
        for b in range(overlaps.shape[1]):
            m, a = np.abs(overlaps[:, b]), saliencies[:, b]
            best = np.argmax(m, axis=1)
            held = np.where(m[np.arange(len(t)), best] >= threshold, best, -1)
            visits: list[int] = []
            times: list[float] = []
            escapes: list[float] = []
            for k in range(len(t)):
                if held[k] >= 0 and (not visits or visits[-1] != held[k]):
                    if visits:
                        prev, start = visits[-1], int(np.searchsorted(t, times[-1]))
                        below = np.flatnonzero(a[start:k + 1, prev] < 1.0)
                        escapes.append(float(t[k] - t[start + below[0]]) if len(below) else math.nan)
                    visits.append(int(held[k]))
                    times.append(float(t[k]))
            self.visits.append(visits)
            self.visit_times.append(times)
            self.escape_times.append(escapes)

    def __repr__(self):
        return f"SequenceRun(times={len(self.t)}, samples={self.overlaps.shape[1]}, visits={[len(v) for v in self.visits]})"


class SequentialHopfield(_PlusMinusModel):
    """Sequential retrieval: a two-timescale IDP network (docs/models.md §10).

    Fast retrieval ``tau dx/dt = -x + W(alpha) psi(x)`` and slow saliencies
    ``(tau / eps) dalpha/dt = F(alpha, m)`` driven by the overlaps ``m = Xi^T psi(x) / N``. The
    default law (in C) follows a given sequence of memories:

    ``F_v = -|m_v| alpha_v^2 + kappa |m_prev(v)| - leak o_v alpha_v``

    (prev(v) the memory before v in the sequence, ``o_v`` the sum of ``|m_u|`` over the other
    memories; a state near ``-xi^v`` retrieves v as well, the dynamics being odd, hence ``|m|``):
    the retrieved memory's saliency decays (1/alpha grows linearly), the next one's grows at
    rate kappa, and the others leak to 0 while an unrelated memory is held. With hard-tanh and orthogonal memories a retrieval lasts until its saliency falls
    to 1, so in the adiabatic limit (eps -> 0) the saliency a memory is retrieved with follows
    the map ``Z_{k+1} = kappa (1 - 1/Z_k)`` (:func:`saliency_map`), whose fixed points exist iff
    ``kappa >= 4``: below that critical gain the sequence collapses, above it is self-sustained.
    Leaving a memory needs a perturbation off its direction; small noise provides it.

    Parameters
    ----------
    patterns : array_like, shape (P, N)
        +-1 memories (:func:`hadamard_patterns` for orthogonal ones).
    sequence : sequence of int
        The memories in order; ``cyclic`` closes it into a loop.
    kappa : float
        The gain of the excitation of the next memory.
    eps : float
        The timescale ratio tau_fast / tau_slow (> 0, small).
    leak : float
        The rate at which saliencies not in play decay.
    activation, gain, zero_diagonal, tau, dtype
        As :class:`IDPHopfield` (default hard-tanh).
    slow_law : callable, optional
        ``F(alpha, m) -> dalpha`` on arrays (B, P), replacing the default law (called at every
        step of the integration; such a model cannot be saved).
    """

    def __init__(self, patterns: ArrayLike, *, sequence: Sequence[int], kappa: float, eps: float = 0.01,
                 leak: float = 10.0, cyclic: bool = True, activation: str = "hardtanh", gain: float = 10.0,
                 zero_diagonal: bool = False, tau: float = 1.0, slow_law: str | None = None,
                 dtype: DTypeLike = np.float32) -> None:
        X = _pm_patterns(patterns)
        if slow_law is not None and not callable(slow_law):
            raise TypeError(f"slow_law must be callable or None, got {type(slow_law).__name__}")
        self.slow_law = slow_law
        config = self._validate(N=X.shape[1], P=X.shape[0], sequence=sequence, kappa=kappa, eps=eps, leak=leak,
                                cyclic=cyclic, activation=activation, gain=gain, zero_diagonal=zero_diagonal, tau=tau,
                                dtype=dtype)
        self._adopt(config, {"patterns": X.astype(config["dtype"])})

    @classmethod
    def _validate(cls, *, N, P, sequence, kappa, eps=0.01, leak=10.0, cyclic=True, activation="hardtanh", gain=10.0,
                  zero_diagonal=False, tau=1.0, dtype=np.float32):
        config = _pm_config(N, P, activation, gain, zero_diagonal, tau, dtype)
        seq = [_checks.integer("sequence", v) for v in sequence]
        config.update({"sequence": seq, "kappa": _checks.real("kappa", kappa), "eps": _checks.real("eps", eps),
                       "leak": _checks.real("leak", leak), "cyclic": bool(cyclic)})
        return config

    def _adopt(self, config, params):
        if not hasattr(self, "slow_law"):
            self.slow_law = None
        seq = config["sequence"]
        P = config["P"]
        nxt = np.full(P, -1, dtype=np.int64)
        for i, v in enumerate(seq):
            if not 0 <= v < P:
                raise ValueError(f"sequence must hold memory indices in [0, {P}), got {v}")
            if i + 1 < len(seq) or (config["cyclic"] and len(seq) > 1):
                if nxt[v] >= 0:
                    raise ValueError(f"sequence visits memory {v} twice")
                nxt[v] = seq[(i + 1) % len(seq)]
        self._next = nxt
        self._next.setflags(write=False)
        super()._adopt(config, params)
        self.field()  # the sequence law's rules

    def field(self) -> MemoryField:
        """The two-timescale dynamics as a built-in field on states ``[x, alpha]`` (N + P values),
        with the default slow law."""
        c = self.config
        return self._field("idp", None, True, slow="sequence", kappa=c["kappa"], eps=c["eps"], leak=c["leak"],
                           successors=self._next)

    def save(self, path: PathLike) -> None:
        if self.slow_law is not None:
            raise ValueError("a SequentialHopfield with a custom slow_law cannot be saved (the law is Python code)")
        super().save(path)

    def run(self, alpha0: int, t_max: float, *, x0: ArrayLike | None = None, dt: float = 0.01, noise: float = 0.02,
            seed: Seed = None, n_times: int = 1001, threshold: float = 0.8, method: str = _core.DEFAULTS["sdeint"]["method"],
            verbose: bool = True) -> SequenceRun:
        """Integrate from saliencies alpha0 with :func:`neurodyn.sdeint` (additive noise on the units).

        Parameters
        ----------
        alpha0 : array_like, shape (P,) or (B, P)
            Initial saliencies (e.g. the first memory's above 1, the others 0).
        t_max : float
        x0 : array_like (N,) or (B, N), optional
            Initial units (default: the memory with the largest initial saliency, scaled by it).
        dt, noise, seed
            Step, sigma of the noise on the units, and its seed.
        n_times : int
            Number of output times, evenly spaced from 0 to t_max.
        method : str
            An :func:`neurodyn.sdeint` method.
        threshold : float
            The overlap at which a memory counts as retrieved.

        Returns
        -------
        SequenceRun
        """
        t_max = _t_max(t_max)
        dt = _checks.real("dt", dt, minimum=0.0, strict=True)
        noise = _checks.real("noise", noise, minimum=0.0)
        n_times = _checks.integer("n_times", n_times, minimum=2)
        N, P = self.config["N"], self.config["P"]
        A0 = _batch("alpha0", alpha0, P, self.dtype)
        B = A0.shape[0]
        if x0 is None:
            top = np.argmax(A0, axis=1)
            X0 = (A0[np.arange(B), top][:, None] * self.params["patterns"][top]).astype(self.dtype)
        else:
            X0 = np.broadcast_to(_batch("x0", x0, N, self.dtype), (B, N))
        y0 = np.ascontiguousarray(np.concatenate([X0, A0], axis=1))
        t = np.linspace(0.0, t_max, n_times)
        sigma = np.zeros(N + P)
        sigma[:N] = noise  # the units; the saliencies move by the slow law alone
        ys = sdeint(self.field() if self.slow_law is None else self._python_drift(), Constant(sigma), y0, t, dt=dt,
                    noise="additive", method=method, seed=seed, verbose=verbose)
        m = self.overlaps(ys[:, :, :N])
        return SequenceRun(t, m, ys[:, :, N:], threshold)

    def _python_drift(self):
        """The drift with the fast part in C and the slow law in Python."""
        N, c = self.config["N"], self.config
        held = self._field("idp", None, True)
        rate = c["eps"] / c["tau"]

        def drift(t, y):
            dy = held(0.0, y)
            m = self.overlaps(y[:, :N])
            dy[:, N:] = rate * np.asarray(self.slow_law(y[:, N:], m), dtype=y.dtype)
            return dy
        return drift
