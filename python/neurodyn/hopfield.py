"""Modern and classical Hopfield networks: fused retrieval in C, energies, models."""
from __future__ import annotations

from typing import Any

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn
from ._estimator import RowsFit
from ._typing import Seed


# The retrieval kernels' default inverse temperature.
_BETA = _core.DEFAULTS["hopfield_forward"]["beta"]


def _as_matrix(name, a, dtype=None):
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected real numbers")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    return arr if dtype is None else arr.astype(dtype, copy=False)


def hopfield_retrieve(queries: ArrayLike, patterns: ArrayLike, beta: float = _BETA, values: ArrayLike | None = None,
                      *, steps: int = 1, tol: float | None = None) -> np.ndarray:
    """Retrieve from a modern Hopfield memory: ``softmax(beta Q Y^T) V``.

    One fused, tiled kernel with an online softmax: memory stays O(batch x d) however many
    patterns there are, and large beta cannot overflow (the softmax is taken relative to a
    running row maximum).

    Parameters
    ----------
    queries : array_like, shape (B, d) or (d,)
    patterns : array_like, shape (N, d)
        Stored patterns Y (the keys).
    beta : float
        Inverse temperature (> 0).
    values : array_like, shape (N, dv), optional
        What is read out (default: the patterns themselves).
    steps : int
        Number of updates xi <- softmax(beta xi Y^T) Y (values must be None for more than one).
    tol : float, optional
        Stop earlier once the largest change of an update is below tol.

    Returns
    -------
    ndarray, shape (B, dv) (or (dv,) for a single query), dtype of the queries.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> Y = np.eye(3)
    >>> nd.hopfield_retrieve([0.9, 0.1, 0.0], Y, beta=50).round(3).tolist()
    [1.0, 0.0, 0.0]
    """
    steps = _checks.integer("steps", steps, minimum=1)
    if tol is not None:
        tol = _checks.real("tol", tol, minimum=0.0)
    q = np.asarray(queries)
    single = q.ndim == 1
    q2 = q[None] if single else q
    if values is not None and (steps > 1 or tol is not None):
        raise ValueError("iterating (steps > 1 or tol) needs values=None: the update maps patterns to patterns")
    if tol is not None and steps == 1:
        steps = 1000
    xi = q2
    for _ in range(steps):
        new, _ = _core.hopfield_forward(xi, patterns, values, beta)
        done = tol is not None and np.max(np.abs(new - xi), initial=0.0) < tol
        xi = new
        if done:
            break
    return xi[0] if single else xi


def hopfield_energy(queries: ArrayLike, patterns: ArrayLike, beta: float = _BETA, *,
                    full: bool = False) -> np.ndarray | np.floating[Any]:
    """Energy of states under stored patterns.

    ``full=False`` (Edifice's form): ``-logsumexp(beta xi . y_i)``. ``full=True`` (Ramsauer et
    al., eq. 2): ``-logsumexp(beta xi . y_i) / beta + xi.xi / 2 + log(N) / beta + M^2 / 2`` with
    M the largest pattern norm; the retrieval update never increases it.

    Parameters
    ----------
    queries : array_like, shape (B, M) or (M,)
        States xi.
    patterns : array_like, shape (N, M)
        Stored patterns Y.
    beta : float, default 1.0
    full : bool, default False
        Ramsauer et al.'s full energy instead of Edifice's ``-logsumexp``.

    Returns
    -------
    ndarray, shape (B,) (or a scalar for a single state)
    """
    q = np.asarray(queries)
    single = q.ndim == 1
    q2 = q[None] if single else q
    Y = np.asarray(patterns)
    # zero-width values: the kernel computes the log-sum-exp alone
    nothing = np.zeros((len(Y) if Y.ndim else 0, 0), dtype=np.result_type(q2.dtype, np.float32))
    _, lse = _core.hopfield_forward(q2, Y, nothing, beta)
    beta = float(beta)  # accepted by the kernel
    if not full:
        e = -lse
    else:
        M = float(np.max(np.linalg.norm(Y.astype(np.float64), axis=1)))
        xi = q2.astype(lse.dtype)
        e = -lse / beta + 0.5 * np.sum(xi * xi, axis=1) + math.log(Y.shape[0]) / beta + 0.5 * M * M
    return e[0] if single else e


def hopfield_separation(patterns: ArrayLike) -> dict[str, Any]:
    """How well stored patterns are separated, and the beta above which one update retrieves
    each of them (Ramsauer et al., Theorem 3).

    Pattern i's separation is ``Delta_i = y_i.y_i - max_{j != i} y_i.y_j``. Retrieval of y_i in
    one update with exponentially small error is guaranteed when
    ``Delta_i >= 2 / (beta N) + log(2 (N - 1) N beta M^2) / beta`` (M the largest norm). The
    right side peaks at a tiny beta and falls after it; the smallest beta past the peak that
    satisfies it for the worst separated pattern is returned (inf when two patterns coincide,
    so that no beta separates them).

    Parameters
    ----------
    patterns : array_like, shape (N, M)
        Stored patterns, N >= 2, finite.

    Returns
    -------
    dict with ``delta`` (N,), ``min_delta``, ``max_norm`` and ``beta_min``.
    """
    Y = _as_matrix("patterns", patterns, np.float64)
    if not np.all(np.isfinite(Y)):
        raise ValueError("patterns contains NaN or inf")
    N = Y.shape[0]
    if N < 2:
        raise ValueError("separation needs at least two patterns")
    G = Y @ Y.T
    diag = np.diag(G).copy()
    np.fill_diagonal(G, -np.inf)
    delta = diag - G.max(axis=1)
    M = float(np.sqrt(diag.max()))
    dmin = float(delta.min())

    c = 2.0 * (N - 1) * N * M * M

    def bound(b):
        return 2.0 / (b * N) + math.log(c * b) / b

    beta_min = math.inf
    if dmin > 0 and M > 0:
        # The bound rises to its peak at beta* = e^(1 - 2/N) / c and falls after it; the
        # theorem speaks of the falling branch, so bracket the crossing from beta* upwards.
        lo = math.exp(1.0 - 2.0 / N) / c
        if bound(lo) <= dmin:
            beta_min = lo
        else:
            hi = 2.0 * lo
            while bound(hi) > dmin and hi < 1e15:
                lo, hi = hi, 2.0 * hi
            if bound(hi) <= dmin:
                for _ in range(200):  # bisect in log space: the bracket can span decades
                    mid = math.sqrt(lo * hi)
                    lo, hi = (mid, hi) if bound(mid) > dmin else (lo, mid)
                beta_min = hi
    return {"delta": delta, "min_delta": dmin, "max_norm": M, "beta_min": beta_min}


# ---- models -------------------------------------------------------------------------------

def _retrieve_layer(params, prefix, x, beta, caches):
    """Query projection then retrieval from the layer's own patterns (keys = values)."""
    q = nn.dense(params, f"{prefix}_query_proj", x)
    Y = params[f"{prefix}_patterns"]
    out, lse = _core.hopfield_forward(q, Y, None, beta)
    if caches is not None:
        caches[prefix] = (x, q, out, lse)
    return out


def _retrieve_layer_grad(params, prefix, beta, caches, dout, grads):
    x, q, out, lse = caches[prefix]
    Y = params[f"{prefix}_patterns"]
    dq, dY, _, _ = _core.hopfield_backward(q, Y, None, beta, out, lse, np.ascontiguousarray(dout), None)
    grads[f"{prefix}_patterns"] = dY
    return nn.dense_grad(params, f"{prefix}_query_proj", x, dq, grads)


class _Trainable(RowsFit, nn.Model):
    """loss_and_grad (and, through RowsFit, fit) for models with ``_forward(x, caches, rng)`` and
    ``_backward``."""

    def _forward(self, x: np.ndarray, caches: dict[str, Any] | None, rng: np.random.Generator | None) -> np.ndarray:
        """The output for x, keeping in ``caches`` (when given) what ``_backward`` needs; ``rng``
        drives dropout (None: no dropout)."""
        raise NotImplementedError

    def _backward(self, caches: dict[str, Any], dout: np.ndarray, grads: dict[str, np.ndarray]) -> None:
        """Every parameter's gradient into ``grads``, from the caches of ``_forward``."""
        raise NotImplementedError

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *, loss: str = "mse", seed: Seed = None,
                      training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        _checks.choice("loss", loss, nn.LOSSES)
        x = self._check_batch(x, self.config["input_dim"])
        caches: dict[str, Any] = {}
        out = self._forward(x, caches, nn.as_generator(seed) if training else None)
        target = nn.check_targets(loss, y, x.shape[0], out.shape, self.dtype)
        value, dout = nn.loss_and_grad(loss, out, target)
        grads: dict[str, np.ndarray] = {}
        self._backward(caches, dout, grads)
        return value, grads

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self._forward(self._check_batch(x, self.config["input_dim"]), None, None)

    _input_key = "input_dim"

    def _batch_loss(self, x, y, *, rng, loss):
        return self.loss_and_grad(x, y, loss=loss, seed=rng, training=True)


class Hopfield(_Trainable):
    """A modern Hopfield layer (Edifice's ``Hopfield``): ``q = Dense(x)`` (``hopfield_query_proj``)
    and ``softmax(beta q Y^T) Y`` with learnable stored patterns Y [N, M] (``hopfield_patterns``,
    glorot init). Input (batch, input_dim) -> output (batch, pattern_dim).

    Parameters
    ----------
    input_dim : int
        Features per sample.
    num_patterns : int, default 64
        Learnable stored patterns N.
    pattern_dim : int, default 128
        Pattern width M (the output width).
    beta : float, default 1.0
        Inverse temperature of the retrieval softmax.
    seed : int or None
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.Hopfield(10, num_patterns=16, pattern_dim=8, seed=0)(np.zeros((2, 10))).shape
    (2, 8)
    """

    def __init__(self, input_dim: int, num_patterns: int = 64, pattern_dim: int = 128, beta: float = _BETA,
                 seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_dim=input_dim, num_patterns=num_patterns, pattern_dim=pattern_dim,
                                        beta=beta, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_dim, num_patterns=64, pattern_dim=128, beta=_BETA, dtype=np.float32):
        return {"input_dim": _checks.integer("input_dim", input_dim, minimum=1),
                "num_patterns": _checks.integer("num_patterns", num_patterns, minimum=1),
                "pattern_dim": _checks.integer("pattern_dim", pattern_dim, minimum=1),
                "beta": _core.hopfield_check(beta),
                "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        return (nn.dense_specs("hopfield_query_proj", config["input_dim"], config["pattern_dim"])
                + [("hopfield_patterns", (config["num_patterns"], config["pattern_dim"]), "glorot")])

    _task = "regressor"

    @property
    def output_size(self) -> int:
        return self.config["pattern_dim"]

    def _forward(self, x, caches, rng):
        return _retrieve_layer(self.params, "hopfield", x, self.config["beta"], caches)

    def _backward(self, caches, dout, grads):
        _retrieve_layer_grad(self.params, "hopfield", self.config["beta"], caches, dout, grads)


class AssociativeMemory(_Trainable):
    """Edifice's Hopfield associative memory: ``x = LN(Dense_H(input))`` (``input_proj``,
    ``input_norm``); per layer l and head h: ``Dense(H / heads)`` (``layer_{l}_head_{h}_proj``)
    then a Hopfield layer with pattern_dim / heads (``layer_{l}_head_{h}_query_proj``,
    ``layer_{l}_head_{h}_patterns``); heads concatenated; ``Dropout(Dense_H(...))``
    (``layer_{l}_out_proj``); post-norm residual ``x = LN(x + o)`` (``layer_{l}_norm``).
    Output (batch, hidden_size), or (batch, output_size) through a Dense ``output`` head
    (beyond Edifice) when ``output_size`` is set. Layers and heads count from 1.

    Parameters
    ----------
    input_dim : int
        Features per sample.
    num_patterns : int, default 64
        Stored (learnable) patterns per head.
    pattern_dim : int, default 128
        Pattern width, split evenly over the heads.
    beta : float, default 1.0
        Inverse temperature of the retrieval softmax.
    num_heads, num_layers : int, default 1 and 2
    hidden_size : int, default 256
        Width of the residual stream H.
    dropout : float in [0, 1), default 0.1
        Dropout after each layer's output projection (training only).
    output_size : int or None
        Optional Dense head on the last layer.
    seed : int or None
    dtype : float32 or float64

    """

    def __init__(self, input_dim: int, num_patterns: int = 64, pattern_dim: int = 128, beta: float = _BETA,
                 num_heads: int = 1, hidden_size: int = 256, num_layers: int = 2, dropout: float = 0.1,
                 output_size: int | None = None, seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_dim=input_dim, num_patterns=num_patterns, pattern_dim=pattern_dim,
                                        beta=beta, num_heads=num_heads, hidden_size=hidden_size,
                                        num_layers=num_layers, dropout=dropout, output_size=output_size,
                                        dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_dim, num_patterns=64, pattern_dim=128, beta=_BETA, num_heads=1, hidden_size=256,
                  num_layers=2, dropout=0.1, output_size=None, dtype=np.float32):
        heads = _checks.integer("num_heads", num_heads, minimum=1)
        H = _checks.integer("hidden_size", hidden_size, minimum=1)
        M = _checks.integer("pattern_dim", pattern_dim, minimum=1)
        if H % heads or M % heads:
            raise ValueError(f"hidden_size={H} and pattern_dim={M} must be divisible by num_heads={heads}")
        dropout = _checks.real("dropout", dropout, minimum=0.0)
        if dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {dropout}")
        return {"input_dim": _checks.integer("input_dim", input_dim, minimum=1),
                "num_patterns": _checks.integer("num_patterns", num_patterns, minimum=1), "pattern_dim": M,
                "beta": _core.hopfield_check(beta), "num_heads": heads, "hidden_size": H,
                "num_layers": _checks.integer("num_layers", num_layers, minimum=1), "dropout": dropout,
                "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
                "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, c):
        H, heads, M, N = c["hidden_size"], c["num_heads"], c["pattern_dim"], c["num_patterns"]
        specs = nn.dense_specs("input_proj", c["input_dim"], H) + nn.layernorm_specs("input_norm", H)
        for l in range(1, c["num_layers"] + 1):
            for h in range(1, heads + 1):
                name = f"layer_{l}_head_{h}"
                specs += nn.dense_specs(f"{name}_proj", H, H // heads)
                specs += nn.dense_specs(f"{name}_query_proj", H // heads, M // heads)
                specs.append((f"{name}_patterns", (N, M // heads), "glorot"))
            specs += nn.dense_specs(f"layer_{l}_out_proj", M, H)
            specs += nn.layernorm_specs(f"layer_{l}_norm", H)
        if c["output_size"] is not None:
            specs += nn.dense_specs("output", H, c["output_size"])
        return specs

    _task = "classifier"

    @property
    def output_size(self) -> int:
        return self.config["output_size"] or self.config["hidden_size"]

    def _forward(self, x, caches, rng):
        p, c = self.params, self.config
        z = nn.dense(p, "input_proj", x)
        h, ln = nn.layernorm(p, "input_norm", z)
        if caches is not None:
            caches["input"] = (x, ln)
        for l in range(1, c["num_layers"] + 1):
            outs = []
            for k in range(1, c["num_heads"] + 1):
                name = f"layer_{l}_head_{k}"
                hp = nn.dense(p, f"{name}_proj", h)
                outs.append(_retrieve_layer(p, name, hp, c["beta"], caches))
            cat = np.ascontiguousarray(np.concatenate(outs, axis=1))
            o = nn.dense(p, f"layer_{l}_out_proj", cat)
            mask = None
            if rng is not None and c["dropout"] > 0:
                mask = ((rng.random(o.shape) >= c["dropout"]) / (1.0 - c["dropout"])).astype(self.dtype)
                o = o * mask
            y, ln = nn.layernorm(p, f"layer_{l}_norm", h + o)
            if caches is not None:
                caches[f"layer_{l}"] = (h, cat, mask, ln)
            h = y
        if "output.kernel" in p:
            if caches is not None:
                caches["output"] = h
            return nn.dense(p, "output", h)
        return h

    def _backward(self, caches, dout, grads):
        p, c = self.params, self.config
        dh = nn.dense_grad(p, "output", caches["output"], dout, grads) if "output.kernel" in p else dout
        heads, w = c["num_heads"], c["pattern_dim"] // c["num_heads"]
        for l in range(c["num_layers"], 0, -1):
            h, cat, mask, ln = caches[f"layer_{l}"]
            dsum = nn.layernorm_grad(p, f"layer_{l}_norm", ln, dh, grads)
            do = dsum if mask is None else dsum * mask
            dcat = nn.dense_grad(p, f"layer_{l}_out_proj", cat, do, grads)
            dh = dsum.copy()  # the residual path
            for k in range(1, heads + 1):
                name = f"layer_{l}_head_{k}"
                dhp = _retrieve_layer_grad(p, name, c["beta"], caches, dcat[:, (k - 1) * w:k * w], grads)
                dh += nn.dense_grad(p, f"{name}_proj", h, dhp, grads)
        x, ln = caches["input"]
        dz = nn.layernorm_grad(p, "input_norm", ln, dh, grads)
        nn.dense_grad(p, "input_proj", x, dz, grads, need_dx=False)


class ClassicalHopfield(nn.Model):
    """The classical binary Hopfield network on n neurons with states in {-1, +1}.

    Storage: Hebbian ``W = P^T P / n`` with a zero diagonal, or the pseudo-inverse rule
    ``W = P^T (P P^T)^+ P`` (projection onto the patterns' span, zero diagonal). Updates:
    synchronous (every neuron at once) or asynchronous (one at a time, in a random order per
    sweep drawn from ``seed``). A neuron whose field is exactly 0 keeps its state (the
    tie-break). Energy ``E = -x^T W x / 2``; asynchronous updates never increase it.
    Capacity of the Hebbian rule is about 0.138 n random patterns. ``save`` and
    :func:`neurodyn.load` keep the weights (``params["W"]``) and the pattern count.

    Parameters
    ----------
    n : int
        Number of binary neurons.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> net = nd.ClassicalHopfield(4)
    >>> net.store([[1, -1, 1, -1]])
    >>> net.recall([[1, -1, 1, 1]]).tolist()
    [[1.0, -1.0, 1.0, -1.0]]
    """

    RULES = ("hebbian", "pseudoinverse")
    MODES = ("async", "sync")

    def __init__(self, n: int) -> None:
        config = self._validate(n=n)
        self._adopt(config, {"W": np.zeros((config["n"], config["n"]))})

    @classmethod
    def _validate(cls, *, n, num_patterns=0, dtype="float64"):
        if nn.model_dtype(dtype) != np.float64:
            raise ValueError(f"a ClassicalHopfield stores float64 weights, got dtype {dtype}")
        return {"n": _checks.integer("n", n, minimum=1),
                "num_patterns": _checks.integer("num_patterns", num_patterns, minimum=0), "dtype": "float64"}

    @classmethod
    def _param_specs(cls, config):
        return [("W", (config["n"], config["n"]), "zeros")]

    @property
    def n(self) -> int:
        return self.config["n"]

    @property
    def W(self) -> np.ndarray:
        """The weight matrix (n, n)."""
        return self.params["W"]

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self.params["W"] = value

    @property
    def num_patterns(self) -> int:
        """How many patterns the last ``store`` stored."""
        return self.config["num_patterns"]

    @num_patterns.setter
    def num_patterns(self, value: int) -> None:
        self.config["num_patterns"] = int(value)

    def _states(self, name, x):
        arr = _checks.real_array(name, x, np.float64, finite=False)  # the +-1 check below covers NaN
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.n:
            raise ValueError(f"{name} must have shape (count, {self.n}), got {np.shape(x)}")
        if not np.all(np.isin(arr, (-1.0, 1.0))):
            raise ValueError(f"{name} must hold only -1 and +1")
        return arr

    def store(self, patterns: ArrayLike, rule: str = "hebbian") -> None:
        """Store patterns, replacing what was stored.

        Parameters
        ----------
        patterns : array_like, shape (P, n)
            Patterns of -1/+1.
        rule : {"hebbian", "pseudoinverse"}
            ``hebbian``: W = P^T P / n (capacity about 0.138 n random patterns);
            ``pseudoinverse``: the projection onto the patterns' span, which keeps linearly
            independent patterns fixed (while its diagonal stays below 1, as for P well below
            n). Both with a zero diagonal.
        """
        _checks.choice("rule", rule, self.RULES)
        P = self._states("patterns", patterns)
        if rule == "hebbian":
            W = P.T @ P / self.n
        else:
            W = P.T @ np.linalg.pinv(P @ P.T) @ P
        np.fill_diagonal(W, 0.0)
        self.W = W
        self.num_patterns = P.shape[0]

    def energy(self, x: ArrayLike) -> np.ndarray:
        """The energy ``-x^T W x / 2`` of each state.

        Parameters
        ----------
        x : array_like, shape (B, n)
            States (±1).

        Returns
        -------
        ndarray, shape (B,)
        """
        X = self._states("x", x)
        return -0.5 * np.einsum("bi,ij,bj->b", X, self.W, X)

    def recall(self, x: ArrayLike, *, mode: str = "async", steps: int = 10, seed: Seed = None) -> np.ndarray:
        """Recall stored patterns from (corrupted) states by sign updates.

        Parameters
        ----------
        x : array_like, shape (B, n)
            Starting states (±1).
        mode : {"async", "sync"}
            ``async``: one neuron at a time in a seeded random order (each sweep visits every
            neuron once); ``sync``: all neurons at once.
        steps : int, default 10
            Sweeps (async) or updates (sync) at most; recall stops earlier at a fixed point.
        seed : int or numpy.random.Generator, optional
            Seeds the async update order.

        Returns
        -------
        ndarray, shape (B, n)
            The final states. A neuron whose field is exactly 0 keeps its state.
        """
        _checks.choice("mode", mode, self.MODES)
        steps = _checks.integer("steps", steps, minimum=1)
        X = self._states("x", x).copy()
        if mode == "sync":
            for _ in range(steps):
                h = X @ self.W.T
                new = np.where(h > 0, 1.0, np.where(h < 0, -1.0, X))
                if np.array_equal(new, X):
                    break
                X = new
            return X
        rng = nn.as_generator(seed)
        for _ in range(steps):
            order = np.stack([rng.permutation(self.n)]).astype(np.int64)
            X, flips = _core.hopfield_classical_async(self.W, X, order)
            if flips == 0:
                break
        return X

    def __repr__(self):
        return f"ClassicalHopfield(n={self.n}, patterns stored={self.num_patterns})"
