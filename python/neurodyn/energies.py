"""Analytic energies for :func:`neurodyn.langevin_sample`, evaluated in C.

Each is callable: ``energy(x)`` for x of shape (batch, dim) returns ``(E (batch,), dE/dx
(batch, dim))``. The Boltzmann density is proportional to exp(-E).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, _core



def _float(name, a, ndim):
    arr = _checks.real_array(name, a, np.float64).copy()  # a private, frozen copy
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _precision(name, P, d):
    if P.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {P.shape}")
    if not np.allclose(P, P.T):
        raise ValueError(f"{name} must be symmetric")
    if np.linalg.eigvalsh(P).min() <= 0:
        raise ValueError(f"{name} must be positive definite")


class Energy(_checks.FrozenArrays):
    """Base of the built-in energies."""

    dim: int

    def _spec(self) -> tuple:
        raise NotImplementedError

    def __call__(self, x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(E, dE/dx) for x of shape (batch, dim)."""
        arr = np.atleast_2d(x)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"x has shape {np.shape(x)}; this energy takes (batch, {self.dim})")
        return _core.energy_eval(self._spec(), arr)


class Quadratic(Energy):
    """``E = (x - mean)^T precision (x - mean) / 2``: the Gaussian N(mean, precision^-1).

    Parameters
    ----------
    mean : array_like, shape (d,)
    precision : array_like, shape (d, d)
        Symmetric positive definite: the inverse covariance.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> E, g = nd.energies.Quadratic([1.0, 0.0], np.eye(2))(np.array([[2.0, 0.0]]))
    >>> float(E[0]), g[0].tolist()
    (0.5, [1.0, 0.0])
    """

    def __init__(self, mean: ArrayLike, precision: ArrayLike) -> None:
        self.mean = _float("mean", mean, 1)
        self.dim = self.mean.shape[0]
        self.precision = _float("precision", precision, 2)
        _precision("precision", self.precision, self.dim)

    def _spec(self):
        return ("quadratic", (self.mean, self.precision), "identity", (0.0, 0.0))

    def __repr__(self):
        return f"Quadratic(dim={self.dim})"


class GaussianMixture(Energy):
    """``E = -log sum_k w_k N(x; mean_k, cov_k)``.

    Parameters
    ----------
    means : array_like, shape (K, d)
        The components' means.
    covs : array_like, shape (K, d, d)
        Their covariances, symmetric positive definite.
    weights : array_like, shape (K,), optional
        Positive, normalised to sum to 1 (equal weights by default).
    """

    def __init__(self, means: ArrayLike, covs: ArrayLike, weights: ArrayLike | None = None) -> None:
        self.means = _float("means", means, 2)
        K, d = self.means.shape
        self.dim = d
        self.covs = _float("covs", covs, 3)
        if self.covs.shape != (K, d, d):
            raise ValueError(f"covs must have shape ({K}, {d}, {d}), got {self.covs.shape}")
        w = np.full(K, 1.0 / K) if weights is None else _float("weights", weights, 1)
        if w.shape != (K,) or np.any(w <= 0):
            raise ValueError(f"weights must be {K} positive numbers")
        self.weights = w / w.sum()
        precs, logc = [], []
        for k in range(K):
            _precision(f"covs[{k}]", self.covs[k], d)
            P = np.linalg.inv(self.covs[k])
            precs.append(0.5 * (P + P.T))
            logc.append(math.log(self.weights[k]) - 0.5 * np.linalg.slogdet(self.covs[k])[1] - 0.5 * d * math.log(2 * math.pi))
        self._precisions = np.array(precs)
        self._logc = np.array(logc)

    def _spec(self):
        return ("gmm", (self.means, self._precisions, self._logc), "identity", (0.0, 0.0))

    def __repr__(self):
        return f"GaussianMixture(components={self.means.shape[0]}, dim={self.dim})"


class DoubleWell(Energy):
    """``E = sum_i barrier (x_i^2 - 1)^2 + tilt x_i``: two wells at about -1 and +1 per
    coordinate, the tilt making one deeper (Boltzmann weights exp(-E)).

    Parameters
    ----------
    barrier : float, default 1.0
        Height of the barrier between the wells, at x_i = 0.
    tilt : float, default 0.0
        Slope added to each coordinate; positive makes the left well deeper.
    dim : int, default 1
        Number of coordinates (independent wells).

    Examples
    --------
    >>> import neurodyn as nd
    >>> E, g = nd.energies.DoubleWell(barrier=2.0)([[1.0], [0.0]])
    >>> E.tolist(), g.ravel().tolist()
    ([0.0, 2.0], [0.0, 0.0])
    """

    def __init__(self, barrier: float = 1.0, tilt: float = 0.0, dim: int = 1) -> None:
        self.barrier = _checks.real("barrier", barrier, minimum=0.0, strict=True)
        self.tilt = _checks.real("tilt", tilt)
        self.dim = _checks.integer("dim", dim, minimum=1)

    def _spec(self):
        return ("double_well", (), "identity", (self.barrier, self.tilt))

    def __repr__(self):
        return f"DoubleWell(barrier={self.barrier}, tilt={self.tilt}, dim={self.dim})"
