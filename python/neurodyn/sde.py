"""Stochastic differential equations in C: :func:`sdeint` and the built-in diffusions.

``dy = f(t, y) dt + g(t, y) dW`` (Itô), every index over the leading axes of ``y0`` an
independent sample with its own Brownian path (docs/models.md §8). A built-in drift
(:mod:`neurodyn.fields`) with a built-in diffusion (:class:`Constant`, :class:`Linear`) runs
with no Python per step, its samples shared among the kernel threads.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, _core
from .encode import seed_key
from .fields import Field
from .fields import _param as _field_param
from ._typing import Seed
from .training import kernel_progress

#: Brownian increments: ``dW``, or ``(dW, dZ)`` for sra.
Brownian = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]

_SDE = _core.DEFAULTS["sdeint"]  # the kernel's defaults (nd_sde_opts_default)

IntegrationError = _core.IntegrationError

#: Method and noise names, in the kernel's order (csrc/nd_sde.h).
METHODS = _core.TABLES["sde_methods"]
NOISES = _core.TABLES["sde_noises"]

# Codes shared with csrc/nd_sde.h (nd_diffusion_kind).
_CONSTANT, _LINEAR = 1, 2


def _param(name, value, ndims):
    """A private, read-only float copy of a diffusion parameter with one of ``ndims`` axes."""
    if np.ndim(value) not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} axes, got shape {np.shape(value)}")
    return _field_param(name, value, np.ndim(value))


class Diffusion(_checks.FrozenArrays):
    """Base class of the built-in diffusions ``g(t, y)``, evaluated in C by :func:`sdeint`.
    Calling one evaluates it in NumPy (for plots and checks); ``derivative`` gives
    ``dg_i/dy_i``, which Milstein's method uses."""

    def _spec(self, dim: int, noise: str) -> tuple:
        raise NotImplementedError

    def __call__(self, t: float, y: ArrayLike) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, t: float, y: ArrayLike) -> np.ndarray:
        raise NotImplementedError


class Constant(Diffusion):
    """A diffusion independent of time and state, ``g = sigma``: additive noise.

    Parameters
    ----------
    sigma : float or array_like, shape (d,) or (d, m)
        A scalar or one value per state component (``noise="additive"`` or ``"diagonal"``:
        component i gets ``sigma_i dW_i``), or a matrix for ``noise="general"``
        (``dy_i = ... + sum_k sigma_ik dW_k`` with m Brownian motions).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> g = nd.sde.Constant([0.1, 0.2])
    >>> g(0.0, np.zeros((3, 2))).shape
    (3, 2)
    """

    def __init__(self, sigma: ArrayLike) -> None:
        self.sigma = _param("sigma", sigma, (0, 1, 2))

    def _spec(self, dim, noise):
        if noise == "general":
            if self.sigma.ndim != 2:
                raise ValueError(f"noise='general' needs sigma of shape (d, m); got shape {self.sigma.shape}")
            return (_CONSTANT, (self.sigma,))
        if self.sigma.ndim == 2:
            raise ValueError(f"a (d, m) sigma drives general noise: pass noise='general' (noise={noise!r})")
        return (_CONSTANT, (np.broadcast_to(self.sigma, (dim,)) if self.sigma.ndim == 0 else self.sigma,))

    def __call__(self, t: float, y: ArrayLike) -> np.ndarray:
        y = np.asarray(y)
        if self.sigma.ndim == 2:
            return np.broadcast_to(self.sigma, y.shape + self.sigma.shape[1:]).astype(y.dtype)
        return np.broadcast_to(self.sigma, y.shape).astype(y.dtype)

    def derivative(self, t: float, y: ArrayLike) -> np.ndarray:
        return np.zeros_like(np.asarray(y))

    def __repr__(self):
        return f"Constant(sigma={self.sigma.tolist()!r})"


class Linear(Diffusion):
    """The diagonal diffusion ``g_i(t, y) = scale_i y_i + offset_i`` (``noise="diagonal"``).

    With ``offset = 0``, ``dy = mu y dt + scale y dW`` is geometric Brownian motion.

    Parameters
    ----------
    scale : float or array_like, shape (d,)
    offset : float or array_like, shape (d,), optional

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.sde.Linear(0.5)(0.0, np.array([2.0, -4.0])).tolist()
    [1.0, -2.0]
    """

    def __init__(self, scale: ArrayLike, offset: ArrayLike | None = None) -> None:
        self.scale = _param("scale", scale, (0, 1))
        self.offset = None if offset is None else _param("offset", offset, (0, 1))

    def _spec(self, dim, noise):
        def full(a):
            return None if a is None else (np.broadcast_to(a, (dim,)) if a.ndim == 0 else a)
        return (_LINEAR, (full(self.scale), full(self.offset)))

    def __call__(self, t: float, y: ArrayLike) -> np.ndarray:
        y = np.asarray(y)
        g = self.scale * y
        return (g if self.offset is None else g + self.offset).astype(y.dtype, copy=False)

    def derivative(self, t: float, y: ArrayLike) -> np.ndarray:
        y = np.asarray(y)
        return np.broadcast_to(self.scale, y.shape).astype(y.dtype)

    def __repr__(self):
        offset = None if self.offset is None else self.offset.tolist()
        return f"Linear(scale={self.scale.tolist()!r}, offset={offset!r})"


@overload
def sdeint(f: Field | Callable[..., ArrayLike], g: Diffusion | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *,
           dt: float, noise: str = ..., method: str = ..., seed: Seed = ..., args: tuple[Any, ...] = ...,
           m: int | None = ..., dg: Callable[..., ArrayLike] | None = ..., sample_ids: ArrayLike | None = ...,
           brownian: Brownian | None = ..., return_brownian: Literal[False] = ...,
           verbose: bool = ...) -> np.ndarray: ...


@overload
def sdeint(f: Field | Callable[..., ArrayLike], g: Diffusion | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *,
           dt: float, noise: str = ..., method: str = ..., seed: Seed = ..., args: tuple[Any, ...] = ...,
           m: int | None = ..., dg: Callable[..., ArrayLike] | None = ..., sample_ids: ArrayLike | None = ...,
           brownian: Brownian | None = ..., return_brownian: Literal[True],
           verbose: bool = ...) -> tuple[np.ndarray, Brownian]: ...


@overload
def sdeint(f: Field | Callable[..., ArrayLike], g: Diffusion | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *,
           dt: float, noise: str = ..., method: str = ..., seed: Seed = ..., args: tuple[Any, ...] = ...,
           m: int | None = ..., dg: Callable[..., ArrayLike] | None = ..., sample_ids: ArrayLike | None = ...,
           brownian: Brownian | None = ..., return_brownian: bool,
           verbose: bool = ...) -> np.ndarray | tuple[np.ndarray, Brownian]: ...


def sdeint(f: Field | Callable[..., ArrayLike], g: Diffusion | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *,
           dt: float, noise: str = _SDE["noise"], method: str = _SDE["method"], seed: Seed = None,
           args: tuple[Any, ...] = (), m: int | None = None, dg: Callable[..., ArrayLike] | None = None,
           sample_ids: ArrayLike | None = None, brownian: Brownian | None = None, return_brownian: bool = False,
           verbose: bool = True) -> np.ndarray | tuple[np.ndarray, Brownian]:
    """Integrate the Itô SDE ``dy = f(t, y) dt + g(t, y) dW`` and return the state at every time in ``t``.

    Every index over the leading axes of ``y0`` is an independent sample with its own
    Brownian path; the last axis is its state. Steps are fixed: between consecutive output
    times ``n = max(1, round_half_away((t1 - t0) / dt))`` steps of equal size, so every
    output time is hit exactly (as :func:`neurodyn.odeint`'s fixed-step methods).

    Parameters
    ----------
    f : callable or neurodyn.fields.Field
        The drift: ``f(t, y, *args)`` returning an array of ``y``'s shape, vectorised over the
        batch (it receives the whole batch, shape of ``y0``, and ``t`` as a float); or a built-in
        field (``nd.fields.Linear``, ``Lorenz``, ``MLP``) evaluated in C.
    g : callable or Diffusion
        The diffusion: ``g(t, y, *args)`` returning ``y.shape`` for ``noise="diagonal"`` or
        ``"additive"`` (component i is driven by its own ``dW_i``) and ``y.shape + (m,)`` for
        ``noise="general"``; or a built-in :class:`Constant` or :class:`Linear`, evaluated in C.
        With a built-in f and g no Python runs during the integration.
    y0 : array_like, shape batch + (d,)
        Initial states. float32 stays float32, float64 stays float64; integers become float64.
    t : array_like of float, shape (T,)
        Output times, strictly increasing; ``t[0]`` is the time of ``y0``.
    dt : float
        The step to aim for (> 0).
    noise : {"diagonal", "additive", "general"}
        ``"additive"`` promises that g does not depend on y (``sra`` relies on it, and a
        callable g is then evaluated once per step).
    method : {"euler_maruyama", "milstein", "sra"}
        ``euler_maruyama``: ``y + h f + g dW`` (any noise; strong order 0.5, and 1 with
        additive noise). ``milstein`` (diagonal or additive noise; strong order 1 when g_i
        depends on y_i only): adds ``g dg/dy (dW^2 - h) / 2``, with ``dg/dy = dg_i/dy_i`` from
        a built-in diffusion, from ``dg``, from ``g.derivative`` if the callable has one, and
        otherwise Platen's derivative-free form ``(g(ybar) - g(y)) (dW^2 - h) / (2 sqrt(h))``,
        ``ybar = y + h f + g sqrt(h)`` (Kloeden & Platen 1992, §11.1), which costs a second
        evaluation of g per step. ``sra``: Rößler's SRA1 (2010), strong order 1.5 for
        additive noise, two drift evaluations per step; it also draws
        ``I_(1,0) = int (W(s) - W(t)) ds`` over each step.
    seed : int or numpy.random.Generator, optional
        Key of the counter-based generator. Sample i's increments are a function of
        ``(seed, sample_ids[i], step, component)`` only: the same in any batch, in any order,
        at any thread count; every method sees the same dW for the same seed and grid.
        None draws a fresh key.
    args : tuple
        Extra positional arguments of callable f, g and dg.
    m : int, optional
        Brownian motions of general noise. A Constant diffusion gives it; for a callable g it
        is read from the shape of ``g(t[0], y0)`` when not given.
    dg : callable, optional
        ``dg(t, y, *args)``: ``dg_i/dy_i``, shape of y, for milstein with a callable g.
    sample_ids : array_like of int, shape batch, optional
        Each sample's stream of random numbers (>= 0); default: its flat index in the batch.
        Pass the ids of a larger run to reproduce some of its samples alone.
    brownian : ndarray or tuple of ndarray, optional
        Increments to use instead of drawing them: ``dW`` of shape ``(steps,) + batch + (m,)``
        (``(steps,) + y0.shape`` for diagonal and additive noise), and for sra the pair
        ``(dW, dZ)`` with ``dZ`` the ``I_(1,0)`` of each step, as ``return_brownian`` gives them.
    return_brownian : bool
        Also return the increments used: ``dW``, or ``(dW, dZ)`` for sra.
    verbose : bool
        Show a progress bar (with tqdm installed) once the call has run for a second.
        Ctrl-C stops the integration either way.

    Returns
    -------
    ys : ndarray, shape (T,) + y0.shape
        ``ys[i]`` is the state at ``t[i]``; its dtype is that of ``y0``.
    brownian : ndarray or tuple of ndarray
        Only with ``return_brownian=True``.

    Raises
    ------
    neurodyn.IntegrationError
        A sample's state became NaN or inf. That sample stops; the others run to the end. The
        exception's ``ys`` holds every sample (NaN after a failure), ``failed`` (batch shape)
        marks the samples that stopped, ``t`` the time each reached.
    ValueError, TypeError
        Bad arguments: ``dt <= 0``, ``t`` not strictly increasing, NaN in ``y0``, an unknown
        method or noise, a method that does not apply to the noise, a diffusion or increments
        of the wrong shape, a callable returning the wrong shape.

    Notes
    -----
    Step k of a sample draws standard normals xi1, xi2 from Philox4x32-10 under key ``seed``,
    stream ``sample_ids[i]``, indices ``2 m k + c`` and ``2 m k + m + c``;
    ``dW = sqrt(h) xi1`` and ``I_(1,0) = h^(3/2) (xi1 + xi2 / sqrt(3)) / 2``.

    Examples
    --------
    Geometric Brownian motion, 1,000 paths, in C with no Python per step:

    >>> import numpy as np, neurodyn as nd
    >>> ys = nd.sdeint(nd.fields.Linear([[0.05]]), nd.sde.Linear(0.2), np.ones((1000, 1)),
    ...                [0.0, 1.0], dt=0.01, seed=0)
    >>> ys.shape
    (2, 1000, 1)
    >>> bool(abs(ys[-1].mean() - np.exp(0.05)) < 0.03)
    True
    """
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple, got {type(args).__name__}")
    drift: tuple[Any, ...] | Callable[..., ArrayLike]  # a built-in field's spec, or the callable
    diffusion: tuple[Any, ...] | Callable[..., ArrayLike]
    if isinstance(f, Field):
        drift = f._spec()
    elif callable(f):
        drift = f
    else:
        raise TypeError(f"f must be callable or a neurodyn.fields field, got {type(f).__name__}")
    if args and not callable(drift) and isinstance(g, Diffusion):
        raise TypeError("args are passed to a callable f or g only; built-in fields and diffusions take none")
    if isinstance(g, Diffusion):
        dim = np.shape(y0)[-1] if np.ndim(y0) else 0
        diffusion = g._spec(dim, noise)
    elif callable(g):
        diffusion = g
        derivative = getattr(g, "derivative", None)
        if dg is None and method == "milstein" and callable(derivative):
            dg = derivative
        if noise == "general" and m is None:
            y = np.asarray(y0)
            t0 = float(np.ravel(np.asarray(t, dtype=np.float64))[0])
            probe = np.asarray(g(t0, y.copy(), *args))
            if probe.ndim != y.ndim + 1:
                raise ValueError(f"g(t, y) returned an array of shape {probe.shape}; general noise needs "
                                 f"y.shape + (m,) = {y.shape} + (m,)")
            m = probe.shape[-1]
    else:
        raise TypeError(f"g must be callable or a neurodyn.sde diffusion, got {type(g).__name__}")
    dW = dZ = None
    if brownian is not None:
        if method == "sra":
            if not (isinstance(brownian, tuple) and len(brownian) == 2):
                raise TypeError("brownian for sra is the pair (dW, dZ) that return_brownian gives")
            dW, dZ = brownian
        else:
            dW = brownian[0] if isinstance(brownian, tuple) else brownian
    key = seed_key(seed) if (seed is not None or brownian is None) else 0  # a given path needs no key
    kw = {} if m is None else {"m": _checks.integer("m", m, minimum=1)}
    with kernel_progress("sdeint", verbose) as bar:
        ys, bw, bz, _ = _core.sdeint(drift, diffusion, y0, t, method=method, noise=noise, dt=dt, seed=key,
                                     sample_ids=sample_ids, dW=dW, dZ=dZ, record=bool(return_brownian), args=args,
                                     dg=dg, progress=bar, **kw)
    if not return_brownian:
        return ys
    # record=True: the kernel returned the increments (dZ for sra only)
    if method == "sra":
        assert bw is not None and bz is not None
        return ys, (bw, bz)
    assert bw is not None
    return ys, bw


def _unflatten(params, flat):
    """A flat gradient back to the shapes of ``params`` (arrays, or None for an absent bias, whose
    gradient is None); parameters without arrays (Lorenz's constants) give the flat entries."""
    arrays = [p for p in params if p is not None]
    if not arrays:
        return [float(v) for v in flat]
    out, k = [], 0
    for p in params:
        if p is None:
            out.append(None)
            continue
        out.append(flat[k:k + p.size].reshape(p.shape))
        k += p.size
    return out


def sdeint_vjp(f: Field, g: Diffusion, y0: ArrayLike, t: ArrayLike, ybar: ArrayLike, *, dt: float, brownian: ArrayLike,
               noise: str = _SDE["noise"], method: str = _SDE["method"]) -> tuple[np.ndarray, list[Any], list[Any]]:
    """Gradients through :func:`sdeint` on a fixed Brownian path: exact backpropagation through
    the Euler–Maruyama steps.

    For a loss ``L(ys)`` of the solution ``ys = sdeint(f, g, y0, t, dt=dt, brownian=brownian)``
    with cotangents ``ybar = dL/dys``, returns ``dL/dy0`` and the gradients of the drift field's
    and the diffusion's parameters, the path held fixed (pathwise gradients). The steps are
    replayed in C one output interval at a time.

    Parameters
    ----------
    f : neurodyn.fields.Field
        A built-in drift field (Linear, Lorenz, MLP).
    g : Constant or Linear
        A built-in diffusion.
    y0, t, dt, noise
        As for :func:`sdeint`.
    ybar : array_like, shape (T,) + y0.shape
        Cotangents of every output (zeros where the loss does not look).
    brownian : ndarray, shape (steps,) + batch + (m,)
        The increments of the forward pass (``return_brownian=True``).
    method : {"euler_maruyama"}
        Only Euler–Maruyama steps are differentiated.

    Returns
    -------
    y0bar : ndarray, shape of y0
    f_grads : list
        One entry per parameter of f in its order (Linear: ``A``, ``b``; MLP: each layer's
        weights then bias; None for an absent bias); Lorenz: the gradients of sigma, rho, beta.
    g_grads : list of ndarray
        Constant: ``[dsigma]`` (shape of the sigma the kernel used: (d,) or (d, m)); Linear:
        ``[dscale, doffset]``, each (d,).

    Raises
    ------
    NotImplementedError
        For milstein or sra, or a Python drift or diffusion (no vector-Jacobian product in C).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> f, g = nd.fields.Linear([[-1.0]]), nd.sde.Linear(0.5)
    >>> y0 = np.ones((4, 1))
    >>> ys, dW = nd.sdeint(f, g, y0, [0, 1], dt=0.1, seed=0, return_brownian=True)
    >>> y0bar, (dA, db), (dscale, doffset) = nd.sde.sdeint_vjp(f, g, y0, [0, 1], np.ones_like(ys),
    ...                                                         dt=0.1, brownian=dW)
    >>> dA.shape, db is None
    ((1, 1), True)
    """
    if method != "euler_maruyama":
        _checks.choice("method", method, METHODS)
        raise NotImplementedError(f"sdeint_vjp differentiates euler_maruyama steps; {method} is not "
                                  "differentiated (integrate with method='euler_maruyama' to train through it)")
    if not isinstance(f, Field) or not isinstance(g, Diffusion):
        raise NotImplementedError("sdeint_vjp needs a built-in drift field (neurodyn.fields) and a built-in "
                                  "diffusion (neurodyn.sde): a Python f or g has no vector-Jacobian product in C")
    if isinstance(brownian, tuple):
        raise TypeError("brownian is the dW array of the Euler-Maruyama pass")
    fspec = f._spec()
    dim = np.shape(y0)[-1] if np.ndim(y0) else 0
    gspec = g._spec(dim, noise)
    y0bar, dfield, dg = _core.sde_backprop(fspec, gspec, y0, t, dt, brownian, ybar, noise=noise)
    g_params = [p for p in gspec[1]]
    if gspec[0] == _LINEAR and g_params[1] is None:
        g_params[1] = np.zeros(dim)  # an absent offset still gets its gradient
    return y0bar, _unflatten(fspec[1], dfield), _unflatten(g_params, dg)
