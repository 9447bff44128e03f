"""Optimisers that update a parameter dict in place from a gradient dict of the same names."""
from __future__ import annotations

import numpy as np

from . import _checks


def _pair(params: dict, name: str, g):
    """The parameter ``name`` and its gradient as an array of the parameter's dtype and shape
    (an integer gradient would otherwise be squared in its own, wrapping, dtype; a gradient of
    another shape would silently broadcast)."""
    if name not in params:
        raise KeyError(f"a gradient for {name!r}, which is not a parameter")
    p = params[name]
    g = _checks.real_array(f"the gradient of {name!r}", g, p.dtype, finite=False)
    if g.shape != p.shape:
        raise ValueError(f"the gradient of {name!r} has shape {g.shape}, the parameter {p.shape}")
    return p, g


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction and optional decoupled weight decay.

    Parameters
    ----------
    lr : float
        Step size.
    beta1, beta2 : float
        Decay of the first and second moment estimates, in [0, 1).
    eps : float
        Added to the root of the second moment.
    weight_decay : float
        Decoupled (AdamW) decay applied as ``p -= lr * weight_decay * p``.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> p = {"w": np.array([1.0])}
    >>> opt = nd.optim.Adam(lr=0.1)
    >>> opt.step(p, {"w": np.array([2.0])})
    >>> p["w"].round(6).tolist()
    [0.9]
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.lr = _checks.real("lr", lr, minimum=0.0, strict=True)
        self.beta1 = _checks.real("beta1", beta1, minimum=0.0)
        self.beta2 = _checks.real("beta2", beta2, minimum=0.0)
        if self.beta1 >= 1 or self.beta2 >= 1:
            raise ValueError(f"beta1 and beta2 must be < 1, got {beta1}, {beta2}")
        self.eps = _checks.real("eps", eps, minimum=0.0, strict=True)
        self.weight_decay = _checks.real("weight_decay", weight_decay, minimum=0.0)
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        """One update of every parameter that has a gradient."""
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for name, g in grads.items():
            p, g = _pair(params, name, g)
            if name not in self.m:
                self.m[name] = np.zeros_like(p)
                self.v[name] = np.zeros_like(p)
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            if self.weight_decay:
                p -= (self.lr * self.weight_decay) * p
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)

    def __repr__(self):
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps}, weight_decay={self.weight_decay})"


class SGD:
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    Parameters
    ----------
    lr : float, default 1e-2
        Learning rate, > 0.
    momentum : float, default 0.0
        In [0, 1): the velocity ``v <- momentum v + g`` and the step ``p <- p - lr v``.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> p = {"w": np.array([1.0])}
    >>> nd.optim.SGD(lr=0.5).step(p, {"w": np.array([2.0])})
    >>> p["w"].tolist()
    [0.0]
    """

    def __init__(self, lr=1e-2, momentum=0.0):
        self.lr = _checks.real("lr", lr, minimum=0.0, strict=True)
        self.momentum = _checks.real("momentum", momentum, minimum=0.0)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        for name, g in grads.items():
            p, g = _pair(params, name, g)
            if self.momentum:
                v = self.velocity.setdefault(name, np.zeros_like(p))
                v *= self.momentum
                v += g
                p -= self.lr * v
            else:
                p -= self.lr * g

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


def make(optimizer, lr):
    """An optimiser from a name ("adam", "sgd") or an optimiser instance."""
    if isinstance(optimizer, (Adam, SGD)):
        return optimizer
    _checks.choice("optimizer", optimizer, ("adam", "sgd"))
    return Adam(lr=lr) if optimizer == "adam" else SGD(lr=lr)
