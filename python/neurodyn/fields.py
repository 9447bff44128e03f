"""Built-in vector fields for :func:`neurodyn.odeint`, evaluated entirely in C.

A field acts on the last axis of the state; any leading axes are a batch, integrated as
one system. Calling a field, ``field(t, y)``, evaluates it once (in C) and returns ``dy/dt``.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _core

from .nn import ACTIVATIONS

# Codes shared with csrc/nd_fields.h.
_LINEAR, _LORENZ, _MLP = 1, 2, 3


def _param(name, value, ndim):
    """A private float copy of a parameter (later changes to the caller's array do not leak
    in), checked for its number of axes and finiteness."""
    dtype = _checks.float_dtype(name, value)
    arr = np.array(value, dtype=dtype, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


class Field(_checks.FrozenArrays):
    """Base class of the built-in vector fields. ``dim`` is the size of the state's last axis."""

    dim: int

    def _spec(self) -> tuple:
        raise NotImplementedError

    def __call__(self, t, y):
        """Evaluate ``dy/dt`` at time ``t`` for ``y`` of shape ``(..., dim)``."""
        return _core.field_eval(self._spec(), float(t), y)


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

    def __init__(self, A, b=None):
        self.A = _param("A", A, 2)
        if self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be square, got shape {self.A.shape}")
        self.dim = self.A.shape[0]
        self.b = None if b is None else _param("b", b, 1)
        if self.b is not None and self.b.shape != (self.dim,):
            raise ValueError(f"b must have shape ({self.dim},), got {self.b.shape}")

    def _spec(self):
        return (_LINEAR, (self.A, self.b), (), ())

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

    def __init__(self, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
        self.sigma = _checks.real("sigma", sigma)
        self.rho = _checks.real("rho", rho)
        self.beta = _checks.real("beta", beta)

    def _spec(self):
        return (_LORENZ, (), (), (self.sigma, self.rho, self.beta))

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
        ``relu``, ``sigmoid``, ``softplus``, ``lecun_tanh``.
    final_activation : str
        Applied after the last layer (default ``identity``).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> W1, W2 = np.eye(2), -np.eye(2)
    >>> nd.fields.MLP([W1, W2], activation="relu")(0.0, np.array([1.0, -1.0])).tolist()
    [-1.0, 0.0]
    """

    def __init__(self, weights, biases=None, activation="tanh", final_activation="identity"):
        weights = list(weights)
        if not 1 <= len(weights) <= 16:
            raise ValueError(f"an MLP field has 1 to 16 layers, got {len(weights)}")
        self.weights = [_param(f"weights[{i}]", w, 2) for i, w in enumerate(weights)]
        if biases is None:
            biases = [None] * len(weights)
        biases = list(biases)
        if len(biases) != len(weights):
            raise ValueError(f"got {len(biases)} biases for {len(weights)} layers")
        self.biases = [None if b is None else _param(f"biases[{i}]", b, 1) for i, b in enumerate(biases)]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if 0 in w.shape:
                raise ValueError(f"weights[{i}] has shape {w.shape}: every layer needs at least one unit")
            if i > 0 and w.shape[0] != self.weights[i - 1].shape[1]:
                raise ValueError(f"weights[{i}] has {w.shape[0]} inputs but weights[{i - 1}] "
                                 f"has {self.weights[i - 1].shape[1]} outputs")
            if b is not None and b.shape != (w.shape[1],):
                raise ValueError(f"biases[{i}] must have shape ({w.shape[1]},), got {b.shape}")
        self.dim = self.weights[0].shape[0]
        if self.weights[-1].shape[1] != self.dim:
            raise ValueError(f"the last layer has {self.weights[-1].shape[1]} outputs; a vector "
                             f"field needs {self.dim}, its input size")
        _checks.choice("activation", activation, ACTIVATIONS)
        _checks.choice("final_activation", final_activation, ACTIVATIONS)
        self.activation = activation
        self.final_activation = final_activation

    def _spec(self):
        acts = [ACTIVATIONS.index(self.activation)] * (len(self.weights) - 1)
        acts.append(ACTIVATIONS.index(self.final_activation))
        params = tuple(p for wb in zip(self.weights, self.biases) for p in wb)
        return (_MLP, params, tuple(acts), ())

    def __repr__(self):
        sizes = [self.dim] + [w.shape[1] for w in self.weights]
        return (f"MLP(sizes={sizes}, activation={self.activation!r}, "
                f"final_activation={self.final_activation!r})")


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

    def __init__(self, c, d=0.0, direction=0, terminal=False):
        self.c = _param("c", c, 1).astype(np.float64)
        self.d = _checks.real("d", d)
        if direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {direction!r}")
        self.direction = int(direction)
        self.terminal = terminal

    def __call__(self, t, y):
        """``c . y - d`` over the last axis of ``y``."""
        return np.asarray(y, dtype=np.float64) @ self.c - self.d

    def __repr__(self):
        return f"LinearEvent(c={self.c.tolist()}, d={self.d}, direction={self.direction}, terminal={self.terminal})"
