"""Built-in vector fields for :func:`neurodyn.odeint`, evaluated entirely in C.

A field acts on the last axis of the state; with an adaptive method each index over the
leading axes is a sample of its own (``coupled=True`` makes the whole array one system).
Calling a field, ``field(t, y)``, evaluates it once (in C) and returns ``dy/dt``;
``field.jacobian(t, y)`` returns ``df/dy`` for each row (the implicit methods use it). A field
is checked by the solvers' own rules when it is built (``_core.field_check``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, _core

#: The kinds of built-in field, by name (the kernels' table).
KINDS = _core.TABLES["field_kinds"]


def _param(name, value, ndim=None):
    """A private, read-only float copy of a parameter: later changes to the caller's array do
    not leak in. A field's parameters are checked with the field (``_core.field_check``); with
    ``ndim`` (the diffusions of neurodyn.sde) the number of axes and finiteness are checked here."""
    arr = np.array(value, dtype=_checks.float_dtype(name, value), copy=True)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    if ndim is not None and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


def _index_param(value):
    """A private, read-only copy of an integer parameter (indices, exponents), checked with the
    field (integers, shape, range)."""
    arr = np.array(value, copy=True)
    arr.setflags(write=False)
    return arr


class Field(_checks.FrozenArrays):
    """Base class of the built-in vector fields. ``dim`` is the size of the state's last axis."""

    dim: int
    kind: str  # one of KINDS

    def _spec(self) -> tuple:
        """(kind, parameters, activations, constants), the form the kernels read."""
        raise NotImplementedError

    def _check(self) -> None:
        """The solvers' rules on this field (shapes, finiteness, layer sizes, names); sets dim."""
        self.dim = _core.field_check(field=self._spec())

    def __call__(self, t: float, y: ArrayLike) -> np.ndarray:
        """Evaluate ``dy/dt`` at time ``t`` for ``y`` of shape ``(..., dim)``."""
        return _core.field_eval(field=self._spec(), t=t, y=y)

    def jacobian(self, t: float, y: ArrayLike) -> np.ndarray:
        """The Jacobian ``df/dy`` at time ``t`` for each row of ``y`` (shape ``(..., dim)``), in C.

        Returns
        -------
        ndarray, shape ``y.shape + (dim,)``
            ``J[..., r, c] = d f_r / d y_c``; the implicit methods of :func:`neurodyn.odeint`
            use it.

        Examples
        --------
        >>> import numpy as np, neurodyn as nd
        >>> nd.fields.Lorenz().jacobian(0.0, np.array([1.0, 2.0, 3.0])).tolist()[1]
        [25.0, -1.0, -1.0]
        """
        return _core.field_jac(field=self._spec(), t=t, y=y)


class Linear(Field):
    """The linear field ``dy/dt = A y + b``.

    Parameters
    ----------
    A : array_like, shape (n, n)
    b : array_like, shape (n,), optional

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> field = nd.fields.Linear([[0.0, 1.0], [-1.0, 0.0]])
    >>> field(0.0, np.array([1.0, 0.0])).tolist()
    [0.0, -1.0]
    """

    kind = "linear"

    def __init__(self, A: ArrayLike, b: ArrayLike | None = None) -> None:
        self.A = _param("A", A)
        self.b = None if b is None else _param("b", b)
        self._check()

    def _spec(self):
        return (self.kind, (self.A, self.b), (), ())

    def __repr__(self):
        return f"Linear(dim={self.dim}, bias={self.b is not None})"


class Lorenz(Field):
    """The Lorenz system on states of shape ``(..., 3)``.

    ``dy/dt = (sigma (y1 - y0), y0 (rho - y2) - y1, y0 y1 - beta y2)``.

    Parameters
    ----------
    sigma, rho, beta : float
        Lorenz's parameters; the defaults 10, 28, 8/3 give the chaotic attractor.

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.fields.Lorenz()(0.0, [1.0, 1.0, 1.0]).tolist()
    [0.0, 26.0, -1.6666666666666665]
    """

    dim = 3

    kind = "lorenz"
    #: A reference initial condition and the published exponents at the defaults (Sprott).
    y0_ref = (1.0, 1.0, 1.0)
    reference_exponents = (0.9056, 0.0, -14.5723)

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> None:
        self.sigma, self.rho, self.beta = sigma, rho, beta
        self._check()
        self.sigma, self.rho, self.beta = float(sigma), float(rho), float(beta)

    def _spec(self):
        return (self.kind, (), (), (self.sigma, self.rho, self.beta))

    def __repr__(self):
        return f"Lorenz(sigma={self.sigma!r}, rho={self.rho!r}, beta={self.beta!r})"


class MLP(Field):
    """A multilayer perceptron vector field, evaluated in C.

    ``dy/dt = act_L(... act_1(y W_1 + b_1) ... W_L + b_L)``. Dense layers follow ``y = x W + b`` with ``W`` of shape ``[in, out]``; the first layer's
    input size and the last layer's output size are the state size. The batch goes through
    each layer as one GEMM (CBLAS).

    Parameters
    ----------
    weights : sequence of array_like, shapes (n, h1), (h1, h2), ..., (hk, n)
    biases : sequence of array_like or None, optional
        One per layer (an entry may be None); None means no biases.
    activation : str
        Applied after every layer but the last: one of ``identity``, ``tanh``, ``silu``,
        ``relu``, ``sigmoid``, ``softplus``, ``lecun_tanh`` (``_core.TABLES["activations"]``).
    final_activation : str
        Applied after the last layer (default ``identity``).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> W1, W2 = np.eye(2), -np.eye(2)
    >>> nd.fields.MLP([W1, W2], activation="relu")(0.0, np.array([1.0, -1.0])).tolist()
    [-1.0, 0.0]
    """

    kind = "mlp"

    def __init__(self, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike | None] | None = None,
                 activation: str = "tanh", final_activation: str = "identity") -> None:
        weights = list(weights)
        self.weights = [_param(f"weights[{i}]", w) for i, w in enumerate(weights)]
        biases = [None] * len(weights) if biases is None else list(biases)
        if len(biases) != len(weights):
            raise ValueError(f"got {len(biases)} biases for {len(weights)} layers")
        self.biases = [None if b is None else _param(f"biases[{i}]", b) for i, b in enumerate(biases)]
        self.activation = activation
        self.final_activation = final_activation
        self._check()

    def _spec(self):
        return self._spec_of(self.weights, self.biases, self.activation, self.final_activation)

    @classmethod
    def _spec_of(cls, weights, biases, activation, final_activation):
        """The kernels' form of an MLP field from its arrays as they are (no copy, no check
        here: the kernels check a field they are given)."""
        params = tuple(p for wb in zip(weights, biases) for p in wb)
        return (cls.kind, params, (activation, final_activation), ())

    def __repr__(self):
        sizes = [self.dim] + [w.shape[1] for w in self.weights]
        return (f"MLP(sizes={sizes}, activation={self.activation!r}, "
                f"final_activation={self.final_activation!r})")


class Polynomial(Field):
    """A polynomial field: a sum of monomials, each added to one component of ``dy/dt``.

    ``dy[..., target[k]] += coef[k] * prod_j y[..., j] ** powers[k, j]`` for every term ``k``.
    Mass-action chemical kinetics, Van der Pol's oscillator and the stiff test problems of
    Hairer & Wanner (Robertson, HIRES, OREGO) have this form, so they run in C with an exact
    Jacobian (:meth:`jacobian`), as the implicit methods of :func:`neurodyn.odeint` want.

    Parameters
    ----------
    coef : array_like, shape (K,)
        The terms' coefficients.
    target : array_like of int, shape (K,)
        The component each term adds to, in ``[0, dim)``.
    powers : array_like of int, shape (K, dim)
        Each term's exponents, in ``[0, 64]``; ``dim`` is the state size.

    Examples
    --------
    Robertson's kinetics, ``y0' = -0.04 y0 + 1e4 y1 y2``, ``y1' = 0.04 y0 - 1e4 y1 y2 - 3e7 y1^2``,
    ``y2' = 3e7 y1^2``:

    >>> import numpy as np, neurodyn as nd
    >>> rober = nd.fields.Polynomial.from_terms(3, [
    ...     (0, -0.04, {0: 1}), (0, 1e4, {1: 1, 2: 1}),
    ...     (1, 0.04, {0: 1}), (1, -1e4, {1: 1, 2: 1}), (1, -3e7, {1: 2}),
    ...     (2, 3e7, {1: 2})])
    >>> rober(0.0, np.array([1.0, 0.0, 0.0])).tolist()
    [-0.04, 0.04, 0.0]
    """

    kind = "polynomial"

    def __init__(self, coef: ArrayLike, target: ArrayLike, powers: ArrayLike) -> None:
        self.coef = _param("coef", coef)
        self.target = _index_param(target)
        self.powers = _index_param(powers)
        self._check()

    @classmethod
    def from_terms(cls, dim: int, terms: Iterable[tuple[int, float, Mapping[int, int]]]) -> Polynomial:
        """The field of ``terms``, each ``(target, coef, {component: power})``, on ``dim`` values."""
        dim = _checks.integer("dim", dim, minimum=0)
        terms = list(terms)
        powers = np.zeros((len(terms), dim), dtype=np.int64)
        for k, (_, _, exps) in enumerate(terms):
            for j, p in dict(exps).items():
                if not 0 <= j < dim:
                    raise ValueError(f"term {k} has a power of component {j}; the state has {dim}")
                powers[k, j] = p
        return cls([c for _, c, _ in terms], [r for r, _, _ in terms], powers)

    def _spec(self):
        return (self.kind, (self.coef, self.target, self.powers), (), ())

    def __repr__(self):
        return f"Polynomial(dim={self.dim}, terms={len(self.coef)})"


class LinearEvent:
    """A built-in event function ``g(y) = c @ y - d``, evaluated in C during
    :func:`neurodyn.odeint` (zero crossings, thresholds, Poincaré sections).

    Parameters
    ----------
    c : array_like, shape (d,)
        Coefficients over a sample's state (its last axis).
    d : float
        Offset.
    direction : {0, 1, -1}
        Count rising crossings only (1), falling only (-1) or both (0), as SciPy's ``solve_ivp``.
    terminal : bool or int
        Stop the sample at its first (True) or k-th event.
    """

    def __init__(self, c: ArrayLike, d: float = 0.0, direction: int = 0, terminal: bool | int = False) -> None:
        self.c = _checks.real_array("c", c, np.float64)
        if self.c.ndim != 1:
            raise ValueError(f"c must have 1 axis, got shape {self.c.shape}")
        self.d = _checks.real("d", d)
        if direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {direction!r}")
        self.direction = int(direction)
        self.terminal = terminal

    def __call__(self, t: float, y: ArrayLike) -> np.ndarray:
        """``c . y - d`` over the last axis of ``y``."""
        return np.asarray(y, dtype=np.float64) @ self.c - self.d

    def __repr__(self):
        return f"LinearEvent(c={self.c.tolist()}, d={self.d}, direction={self.direction}, terminal={self.terminal})"


# The catalogue of chaotic flows (kind "flow"), defined beside the fields it extends.
from ._flows import (SYSTEMS, Chen, Chua, DoublePendulum, Duffing, Flow, HenonHeiles, Lorenz96,  # noqa: E402
                     Rossler, SprottB, Thomas)
