"""Optimisers that update a parameter dict in place from a gradient dict of the same names.

Every update is all or nothing: :meth:`Optimizer.prepare` computes the new parameters and
moments into fresh arrays (nothing is modified, so an error or a Ctrl-C there leaves every
array as it was), and :meth:`Optimizer.commit` copies them in with Ctrl-C held back until the
last copy is done. A step therefore never leaves some parameters updated and others not, and
the moments always belong to the parameters they sit beside. An update that would make a
parameter NaN or inf is refused before anything is written.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _checks


def _pair(params: dict[str, np.ndarray], name: str, g: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The parameter ``name`` and its gradient as an array of the parameter's dtype and shape
    (an integer gradient would otherwise be squared in its own, wrapping, dtype; a gradient of
    another shape would silently broadcast)."""
    if name not in params:
        raise KeyError(f"a gradient for {name!r}, which is not a parameter")
    p = params[name]
    g = _checks.real_array(f"the gradient of {name!r}", g, p.dtype, finite=False)
    if g.shape != p.shape:
        raise ValueError(f"the gradient of {name!r} has shape {g.shape}, the parameter {p.shape}")
    if not p.flags.writeable:
        raise ValueError(f"the parameter {name!r} is read-only")
    return p, g


class NonFiniteError(ValueError, FloatingPointError):
    """A loss, gradient or update that is NaN or inf, refused before anything was changed.
    Both a ValueError (a bad value) and a FloatingPointError (a numerical blow-up)."""


def _finite_update(name: str, new: np.ndarray) -> np.ndarray:
    if not np.isfinite(new).all():
        raise NonFiniteError(f"the update of {name!r} is NaN or inf (a non-finite gradient, or a step too "
                                 f"large for this loss); nothing was changed: lower the learning rate or clip the "
                                 f"gradients")
    return new


#: What :meth:`Optimizer.prepare` hands to :meth:`Optimizer.commit`: the new step count and, per
#: parameter, (name, the parameter, its new value, {slot: new moment}).
Prepared = tuple[int, list[tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]]]


class Optimizer:
    """Base of the optimisers: ``step = prepare + commit`` and the state a checkpoint holds.

    A subclass names its per-parameter moment dicts in ``SLOTS``, its hyper-parameters in
    ``HYPER``, and implements ``_update(name, p, g, t) -> (new_p, {slot: new_moment})``, which
    must not modify its inputs.
    """

    SLOTS: tuple[str, ...] = ()
    HYPER: tuple[str, ...] = ()
    lr: float

    def __init__(self) -> None:
        self.t = 0
        for slot in self.SLOTS:
            setattr(self, slot, {})

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def prepare(self, params: dict[str, np.ndarray], grads: Mapping[str, ArrayLike]) -> Prepared:
        """The update of every parameter that has a gradient, computed into new arrays; the
        parameters and the optimiser are left untouched. Pass the result to :meth:`commit`."""
        t = self.t + 1
        updates: list[tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        for name, g in grads.items():
            p, g = _pair(params, name, g)
            new_p, moments = self._update(name, p, g, t)
            updates.append((name, p, _finite_update(name, new_p), moments))
        return t, updates

    def commit(self, params: dict[str, np.ndarray], prepared: Prepared) -> None:
        """Write a prepared update: the parameters in place, the moments and the step count.
        Only copies, which cannot fail; the caller holds back Ctrl-C around it."""
        t, updates = prepared
        for name, p, new_p, moments in updates:
            if params.get(name) is not p:
                raise ValueError(f"the parameter {name!r} was replaced since the update was prepared")
        for name, p, new_p, moments in updates:
            np.copyto(p, new_p)
            for slot, value in moments.items():
                getattr(self, slot)[name] = value
        self.t = t

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, ArrayLike]) -> None:
        """One update of every parameter that has a gradient: all of them or, on an error or a
        Ctrl-C, none."""
        from .training import deferred_interrupts

        prepared = self.prepare(params, grads)
        with deferred_interrupts():
            self.commit(params, prepared)

    # ---- checkpoints ----------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-serialisable description, {"slot:param": moment array}) of the optimiser."""
        meta = {"class": type(self).__name__, "t": self.t, "hyper": {k: getattr(self, k) for k in self.HYPER}}
        arrays = {f"{slot}:{name}": value for slot in self.SLOTS for name, value in getattr(self, slot).items()}
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
        """Take the state written by :meth:`state` (hyper-parameters, step count and moments),
        each moment checked against the shape and dtype of its parameter."""
        if meta.get("class") != type(self).__name__:
            raise ValueError(f"the checkpoint holds a {meta.get('class')!r} optimiser, not {type(self).__name__}")
        hyper = meta.get("hyper")
        if not isinstance(hyper, dict) or set(hyper) != set(self.HYPER):
            raise ValueError("the checkpoint's optimiser hyper-parameters are malformed")
        fresh = type(self)(**hyper)  # checks them
        t = _checks.integer("the checkpoint's optimiser step", meta.get("t"), minimum=0)
        slots: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.SLOTS}
        for key, value in arrays.items():
            slot, _, name = key.partition(":")
            if slot not in slots or name not in params:
                raise ValueError(f"the checkpoint holds an unknown optimiser entry {key!r}")
            p = params[name]
            if value.shape != p.shape or value.dtype != p.dtype:
                raise ValueError(f"the optimiser entry {key!r} has shape {value.shape} and dtype {value.dtype}; "
                                 f"its parameter {p.shape} and {p.dtype}")
            slots[slot][name] = np.array(value, copy=True)
        for k in self.HYPER:
            setattr(self, k, getattr(fresh, k))
        for slot, values in slots.items():
            setattr(self, slot, values)
        self.t = t


class Adam(Optimizer):
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

    SLOTS = ("m", "v")
    HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _checks.real("lr", lr, minimum=0.0, strict=True)
        self.beta1 = _checks.real("beta1", beta1, minimum=0.0)
        self.beta2 = _checks.real("beta2", beta2, minimum=0.0)
        if self.beta1 >= 1 or self.beta2 >= 1:
            raise ValueError(f"beta1 and beta2 must be < 1, got {beta1}, {beta2}")
        self.eps = _checks.real("eps", eps, minimum=0.0, strict=True)
        self.weight_decay = _checks.real("weight_decay", weight_decay, minimum=0.0)
        self.m: dict[str, np.ndarray]
        self.v: dict[str, np.ndarray]

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        c1 = 1.0 - self.beta1**t
        c2 = 1.0 - self.beta2**t
        m = self.m[name] * self.beta1 if name in self.m else np.zeros_like(p)
        m += (1 - self.beta1) * g
        v = self.v[name] * self.beta2 if name in self.v else np.zeros_like(p)
        v += (1 - self.beta2) * (g * g)
        new = p - (self.lr * self.weight_decay) * p if self.weight_decay else p.copy()
        new -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
        return new, {"m": m, "v": v}

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps}, weight_decay={self.weight_decay})"


class SGD(Optimizer):
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

    SLOTS = ("velocity",)
    HYPER = ("lr", "momentum")

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0) -> None:
        super().__init__()
        self.lr = _checks.real("lr", lr, minimum=0.0, strict=True)
        self.momentum = _checks.real("momentum", momentum, minimum=0.0)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")
        self.velocity: dict[str, np.ndarray]

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if not self.momentum:
            return p - self.lr * g, {}
        v = self.velocity[name] * self.momentum if name in self.velocity else np.zeros_like(p)
        v += g
        return p - self.lr * v, {"velocity": v}

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


OPTIMIZERS: dict[str, type[Adam] | type[SGD]] = {"adam": Adam, "sgd": SGD}


def make(optimizer: str | Optimizer, lr: float) -> Optimizer:
    """An optimiser from a name ("adam", "sgd") or an optimiser instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    _checks.choice("optimizer", optimizer, tuple(OPTIMIZERS))
    return OPTIMIZERS[optimizer](lr=lr)
