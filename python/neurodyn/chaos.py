"""Lyapunov spectra of flows and maps, the Kaplan–Yorke dimension and built-in chaotic maps.

:func:`lyapunov_spectrum` runs the QR method of Benettin et al. (1980) and Shimada & Nagashima
(1979) in C: the state and ``k`` tangent vectors advance together on the variational equations
``dV/dt = J(t, y) V`` by classical RK4 with step ``dt``; every ``orth_every`` steps the tangent
vectors are re-orthonormalised by a QR factorisation (modified Gram–Schmidt for a few small
vectors, LAPACK's Householder ``geqrf`` otherwise) and, after the transient, ``log |R_ii|`` is
accumulated; ``lambda_i`` is its sum over the accumulation's time. :func:`lyapunov_spectrum_map`
does the same for maps ``x_{j+1} = g(x_j)``. docs/models.md §12 has the equations.

What a spectrum can be computed for
    * the built-in fields of :mod:`neurodyn.fields` (the catalogue of chaotic flows, Lorenz,
      linear, polynomial and MLP fields, memory networks, hybrid models): their Jacobians are C;
    * a trained :class:`neurodyn.NeuralODE`: its autonomous dynamics ``dh/dt = f(h)``
      (:meth:`~neurodyn.NeuralODE.dynamics`, an MLP field);
    * Python callables ``f(t, y)`` with ``jac(t, y)``;
    * not :class:`neurodyn.Liquid`, :class:`neurodyn.LTCCell` or :class:`neurodyn.CfC` as they
      stand: they are input-driven recurrent layers, whose dynamics depend on the input sequence.
      With a fixed input their step is a map; give it to :func:`lyapunov_spectrum_map` as a
      callable with its Jacobian.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, _core
from .fields import Field

_OPTS = _core.DEFAULTS["lyapunov"]

#: The QR methods, by name (the kernels' table).
QR_METHODS = _core.TABLES["qr_methods"]
#: The built-in maps, by name.
MAP_KINDS = _core.TABLES["map_kinds"]


def _resolve_field(f):
    """A built-in field's spec, or the callable itself."""
    if isinstance(f, Field):
        return f._spec()
    if isinstance(f, Map):
        raise TypeError("f is a map: use neurodyn.lyapunov_spectrum_map")
    dynamics = getattr(f, "dynamics", None)
    if callable(dynamics) and not isinstance(f, type):
        field = dynamics()
        if isinstance(field, Field):  # a NeuralODE: its autonomous field
            return field._spec()
    from .liquid import CfC, Liquid, LTCCell  # the models import later than this module

    if isinstance(f, (Liquid, LTCCell, CfC)):
        raise TypeError(f"a {type(f).__name__} is input-driven: its Lyapunov spectrum needs a fixed input; give its "
                        "step as a map to neurodyn.lyapunov_spectrum_map")
    if callable(f):
        return f
    raise TypeError(f"f must be a built-in field, a NeuralODE or a callable f(t, y), got {type(f).__name__}")


def _finish(exps, div, y_end, raw, single, return_info):
    if single:
        exps, div, y_end = exps[0], div[0], y_end[0]
    if not return_info:
        return exps
    info = dict(raw)
    info.update(divergence=div, y_end=y_end)
    return exps, info


def lyapunov_spectrum(f: Union[Field, Any, Callable[[float, np.ndarray], ArrayLike]], y0: ArrayLike, *,
                      n_exponents: Optional[int] = None, t_transient: float = _OPTS["t_transient"],
                      t_total: float = _OPTS["t_total"], dt: float = _OPTS["dt"], t0: float = _OPTS["t0"],
                      jac: Optional[Callable[[float, np.ndarray], ArrayLike]] = None,
                      orth_every: int = _OPTS["orth_every"], qr: str = _OPTS["qr"], tol: float = _OPTS["tol"],
                      check_every: int = _OPTS["check_every"],
                      return_info: bool = False) -> Union[np.ndarray, tuple[np.ndarray, dict[str, Any]]]:
    """The Lyapunov spectrum of the flow ``dy/dt = f(t, y)`` by the QR method, in C.

    Parameters
    ----------
    f : neurodyn.fields.Field, NeuralODE or callable
        A built-in field (the catalogue of chaotic flows, MLP fields, ...), a trained
        :class:`~neurodyn.NeuralODE` (its dynamics), or ``f(t, y)`` returning ``y``'s shape for
        ``y`` of ``y0``'s shape (the whole batch at one time ``t``, a float).
    y0 : array_like, shape (n,) or (B, n)
        Initial states: each row of a 2-d ``y0`` is a sample with its own spectrum. float32 or
        float64 (the logarithms accumulate in float64 either way).
    n_exponents : int, optional
        ``k``, the leading exponents to compute, ``1 <= k <= n`` (default: all ``n``).
    t_transient : float
        Time integrated before the accumulation, the state settling on the attractor and the
        tangent vectors on the Lyapunov vectors (they are re-orthonormalised meanwhile too).
    t_total : float
        The accumulation's time, over which the exponents are averaged (after the transient).
    dt : float
        The RK4 step; ``t_total / dt`` steps are taken (rounded).
    t0 : float
        The initial time (forced systems read it).
    jac : callable, optional
        For a callable ``f`` (required): ``jac(t, y)`` returning ``y.shape + (n,)``, ``J[..., r,
        c] = d f_r / d y_c``.
    orth_every : int
        RK4 steps between two re-orthonormalisations.
    qr : {"auto", "householder", "gram_schmidt"}
        The QR factorisation (auto: Gram–Schmidt up to 1024 tangent values ``n k``).
    tol : float
        With ``tol > 0``, stop at the first check at which no exponent of any sample moved by
        ``tol`` or more since the previous check (``info["converged"]``).
    check_every : int
        Re-orthonormalisations between two checks (0: about 100 checks over ``t_total``).
    return_info : bool
        Also return a dict: ``divergence`` (the field's divergence ``tr J`` averaged over the
        same accumulation, by the same RK4 quadrature: with ``k = n`` the exponents sum to it),
        ``change`` (the largest move of an exponent between the last two checks, the running
        estimate's convergence), ``converged``, ``steps``, ``t_accum``, ``nfev``, ``njev`` and
        ``y_end`` (the final state).

    Returns
    -------
    exponents : ndarray, shape (k,) or (B, k), float64
        Largest first.
    info : dict
        With ``return_info``.

    Raises
    ------
    neurodyn.IntegrationError
        When the orbit or a tangent vector overflows (``dt`` too large, an escaping orbit), or
        the tangent vectors lose their rank.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> lam = nd.lyapunov_spectrum(nd.fields.Lorenz(), [1.0, 1.0, 1.0], t_transient=10, t_total=200)
    >>> lam.shape, bool(0.7 < lam[0] < 1.1), bool(abs(lam.sum() + 41 / 3) < 1e-3)
    ((3,), True, True)
    """
    g = _resolve_field(f)
    y0 = _checks.real_array("y0", y0)
    if not callable(g) and jac is not None:
        raise TypeError("jac is for a callable f: a built-in field has its own Jacobian")
    exps, div, y_end, raw = _core.lyapunov(
        f=g, y0=y0, jac=jac, map=False, n_exponents=n_exponents, t0=t0, dt=dt,
        t_transient=t_transient, t_total=t_total, orth_every=orth_every, qr=qr, tol=tol, check_every=check_every)
    return _finish(exps, div, y_end, raw, y0.ndim == 1, return_info)


def lyapunov_spectrum_map(g: Union["Map", Callable[[np.ndarray], ArrayLike]], x0: ArrayLike, *,
                          n_exponents: Optional[int] = None, n_transient: int = 1000, n_iter: int = 10000,
                          jac: Optional[Callable[[np.ndarray], ArrayLike]] = None,
                          orth_every: int = _OPTS["orth_every"], qr: str = _OPTS["qr"], tol: float = _OPTS["tol"],
                          check_every: int = _OPTS["check_every"],
                          return_info: bool = False) -> Union[np.ndarray, tuple[np.ndarray, dict[str, Any]]]:
    """The Lyapunov spectrum of the map ``x_{j+1} = g(x_j)`` by the QR method, in C.

    Parameters
    ----------
    g : neurodyn.chaos.Map or callable
        A built-in map (:class:`Henon`, :class:`Logistic`) or ``g(x)`` returning ``x``'s shape
        for ``x`` of ``x0``'s shape.
    x0 : array_like, shape (n,) or (B, n)
        Initial states, one sample per row of a 2-d ``x0``.
    n_exponents : int, optional
        ``k <= n`` leading exponents (default all).
    n_transient, n_iter : int
        Iterations before the accumulation and of the accumulation.
    jac : callable, optional
        For a callable ``g`` (required): ``jac(x)`` returning ``x.shape + (n,)``.
    orth_every, qr, tol, check_every, return_info
        As :func:`lyapunov_spectrum`; the info's ``divergence`` is the average ``log |det Dg|``.

    Returns
    -------
    exponents : ndarray, shape (k,) or (B, k), float64
        Per iteration, largest first (natural logarithms).

    Examples
    --------
    >>> import neurodyn as nd
    >>> lam = nd.lyapunov_spectrum_map(nd.chaos.Henon(), [0.1, 0.1], n_iter=20000)
    >>> bool(abs(lam[0] - 0.419) < 0.01), bool(abs(lam.sum() - np.log(0.3)) < 1e-9)
    (True, True)
    """
    if isinstance(g, Map):
        spec, jac_cb = g._spec(), None
        if jac is not None:
            raise TypeError("jac is for a callable g: a built-in map has its own Jacobian")
    elif callable(g):
        if jac is None:
            raise TypeError("a callable g needs jac=, its Jacobian jac(x) -> x.shape + (n,)")
        if not callable(jac):
            raise TypeError(f"jac must be callable, got {type(jac).__name__}")
        spec, jac_cb = (lambda t, x: g(x)), (lambda t, x: jac(x))
    else:
        raise TypeError(f"g must be a neurodyn.chaos map or a callable g(x), got {type(g).__name__}")
    x0 = _checks.real_array("x0", x0)
    # iteration counts are integers (a Python type; their ranges are the kernel's rules)
    n_transient, n_iter = _checks.integer("n_transient", n_transient), _checks.integer("n_iter", n_iter)
    exps, div, y_end, raw = _core.lyapunov(
        f=spec, y0=x0, jac=jac_cb, map=True, n_exponents=n_exponents,
        t_transient=n_transient, t_total=n_iter, orth_every=orth_every, qr=qr, tol=tol, check_every=check_every)
    return _finish(exps, div, y_end, raw, x0.ndim == 1, return_info)


def kaplan_yorke_dimension(exponents: ArrayLike) -> Union[float, np.ndarray]:
    """The Kaplan–Yorke (Lyapunov) dimension of spectra.

    ``D = j + (lambda_1 + ... + lambda_j) / |lambda_{j+1}|`` with ``j`` the largest index whose
    partial sum is ``>= 0`` (the exponents sorted largest first); 0 when ``lambda_1 < 0``, and
    the number of exponents when every partial sum is ``>= 0``.

    Parameters
    ----------
    exponents : array_like, shape (..., k)

    Returns
    -------
    float or ndarray, shape (...)

    Examples
    --------
    >>> import neurodyn as nd
    >>> round(float(nd.kaplan_yorke_dimension([0.9056, 0.0, -14.5723])), 4)
    2.0621
    """
    lam = _checks.real_array("exponents", exponents, np.float64)
    if lam.ndim < 1 or lam.shape[-1] < 1:
        raise ValueError(f"exponents must have a last axis of at least one exponent, got shape {lam.shape}")
    lam = -np.sort(-lam, axis=-1)
    csum = np.cumsum(lam, axis=-1)
    k = lam.shape[-1]
    j = np.sum(csum >= 0, axis=-1)  # partial sums decrease past the positive exponents
    jj = np.clip(j, 1, k - 1 if k > 1 else 1)
    s = np.take_along_axis(csum, (jj - 1)[..., None], axis=-1)[..., 0]
    nxt = np.take_along_axis(lam, np.minimum(jj, k - 1)[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(j == 0, 0.0, np.where(j >= k, float(k), jj + s / np.abs(nxt)))
    return float(d) if d.ndim == 0 else d


class Map(_checks.FrozenArrays):
    """Base of the built-in maps: ``map(x)`` iterates once, :meth:`jacobian` gives ``Dg``, in C."""

    kind: str
    dim: int
    y0_ref: tuple = ()
    reference_exponents: tuple | None = None

    def _spec(self):
        raise NotImplementedError

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """``g(x)`` for ``x`` of shape ``(..., dim)``."""
        return _core.map_eval(map=self._spec(), y=x)

    def jacobian(self, x: ArrayLike) -> np.ndarray:
        """``Dg(x)`` of shape ``x.shape + (dim,)``."""
        return _core.map_jac(map=self._spec(), y=x)

    def iterate(self, x0: ArrayLike, n: int) -> np.ndarray:
        """The orbit ``x_0, ..., x_n`` as an array of shape ``(n + 1,) + x0.shape``."""
        n = _checks.integer("n", n, minimum=0)
        out = [_checks.real_array("x0", x0)]
        for _ in range(n):
            out.append(self(out[-1]))
        return np.stack(out)


class Henon(Map):
    """Hénon's map (1976): ``(x, y) -> (1 - a x^2 + y, b x)``.

    Parameters
    ----------
    a, b : float
        Defaults 1.4, 0.3 (the classical attractor; ``log |det Dg| = log |b|`` everywhere).
    """

    kind = "henon"
    dim = 2
    y0_ref = (0.1, 0.1)
    reference_exponents = (0.4192, -1.6232)

    def __init__(self, a: float = 1.4, b: float = 0.3) -> None:
        self.a, self.b = a, b
        _core.map_check(map=self._spec())
        self.a, self.b = float(a), float(b)

    def _spec(self):
        return (self.kind, (self.a, self.b))

    def __repr__(self):
        return f"Henon(a={self.a!r}, b={self.b!r})"


class Logistic(Map):
    """The logistic map ``x -> r x (1 - x)`` (at ``r = 4`` its exponent is ``log 2`` exactly).

    Parameters
    ----------
    r : float
        Default 4.
    """

    kind = "logistic"
    dim = 1
    y0_ref = (0.3,)
    reference_exponents = (float(np.log(2.0)),)

    def __init__(self, r: float = 4.0) -> None:
        self.r = r
        _core.map_check(map=self._spec())
        self.r = float(r)

    def _spec(self):
        return (self.kind, (self.r,))

    def __repr__(self):
        return f"Logistic(r={self.r!r})"


__all__ = ["Henon", "kaplan_yorke_dimension", "Logistic", "lyapunov_spectrum", "lyapunov_spectrum_map", "Map",
           "MAP_KINDS", "QR_METHODS"]
