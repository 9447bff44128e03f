"""ODE integration in C: :func:`odeint` and the LTC relaxation :func:`solve_ltc`."""
from __future__ import annotations

import numpy as np

from . import _checks, _core
from ._stiff import STIFF_METHODS, odeint_stiff
from .fields import Field
from .training import kernel_progress

IntegrationError = _core.IntegrationError

METHODS = ("euler", "midpoint", "rk4", "dopri5")
LTC_SOLVERS = ("exact",) + METHODS


def odeint(f, y0, t, *, method="dopri5", rtol=1e-3, atol=1e-6, dt=None, max_steps=10_000,
           args=(), return_info=False, verbose=True, jac=None):
    """Integrate ``dy/dt = f(t, y)`` from ``t[0]`` and return the state at every time in ``t``.

    Parameters
    ----------
    f : callable or neurodyn.fields.Field
        ``f(t, y, *args) -> dy/dt`` with ``dy`` of the shape of ``y``, vectorised over any
        leading batch axes; or a built-in field (``nd.fields.Linear``, ``Lorenz``, ``MLP``)
        evaluated in C with no Python call per step. A field acts on the last axis of ``y``.
    y0 : array_like, shape S
        Initial state. float32 stays float32, float64 stays float64; integers become float64.
    t : array_like of float, shape (T,)
        Output times, strictly increasing or strictly decreasing; ``t[0]`` is the time of ``y0``.
    method : {"dopri5", "rk4", "midpoint", "euler", "radau", "bdf"}
        ``dopri5``: adaptive Dormand–Prince 5(4) with FSAL (6 evaluations per step) and
        output times filled by its 4th-order dense output. ``rk4``, ``midpoint``, ``euler``
        are fixed-step. ``radau`` (Radau IIA of order 5) and ``bdf`` (variable-order BDF 1–5)
        are implicit, for stiff problems: every index over the leading axes of ``y0`` is its
        own problem with its own steps, Jacobian and LU factors (docs/models.md §8). A
        callable ``f`` then sees the rows that need an evaluation: with a 1-d ``y0``, one row
        per call, ``f(t: float, y: (d,))``; with a batch, one call per round for the ``m`` rows
        of that round, ``f(t: (m, 1), y: (m, d))``, each row at its own time.
    rtol, atol : float
        dopri5 tolerances (>= 0, not both 0). The error norm is the RMS over the state of
        ``(y5 - y4) / (atol + rtol * max(|y|, |y5|))``; a step is accepted when it is <= 1.
    dt : float, optional
        Fixed-step methods: the step to aim for. Between consecutive output times
        ``n = max(1, round_half_away(|t1 - t0| / dt))`` equal steps are taken, so every output
        time is hit exactly; ``None`` takes one step per output interval. dopri5: the first
        step (``None`` chooses it by Hairer's algorithm).
    max_steps : int
        Budget of attempted steps (accepted plus rejected) for the whole call.
    args : tuple
        Extra positional arguments passed to a callable ``f``.
    return_info : bool
        Also return a dict of counters: ``nfev``, ``accepted``, ``rejected``, ``status`` and
        ``steps``, an array ``(accepted, 2)`` of each accepted step's start time and size.
    verbose : bool
        Show a progress bar (with tqdm installed) once the call has run for a second;
        ``False`` never does. Ctrl-C stops the integration either way.
    jac : callable, optional
        ``radau`` and ``bdf`` with a callable ``f``: ``jac(t, y, *args)`` returns
        ``y.shape + (d,)``, ``J[..., r, c] = d f_r / d y_c``, called as ``f`` is. Without it the
        Jacobian comes from forward differences (``d`` rows of ``f`` per Jacobian). A built-in
        field uses its own Jacobian in C.

    Returns
    -------
    ys : ndarray, shape (T,) + S
        ``ys[i]`` is the state at ``t[i]``; ``ys[0] == y0``. Its dtype is that of ``y0``.
    info : dict
        Only with ``return_info=True``. For ``radau`` and ``bdf`` the counters are per sample
        (arrays of the batch shape ``y0.shape[:-1]``; scalars for a 1-d ``y0``): ``nfev`` (rows
        of ``f``, difference Jacobians included), ``njev`` (Jacobians), ``nlu`` (LU
        factorisations; a Radau one is two: the real and the complex matrix), ``accepted``,
        ``rejected``, ``t`` (time reached) and ``status``; with the call's totals
        ``nfev_total``, ``njev_total``, ``nlu_total``, ``rhs_calls``, ``jac_calls``, ``rounds``.

    Raises
    ------
    neurodyn.IntegrationError
        The solver could not reach ``t[-1]``: ``max_steps`` exhausted, step size underflow,
        or a non-finite state or derivative (``radau``/``bdf`` also: a Newton matrix that
        stays singular as the step is reduced). It carries ``t`` (time reached), ``y`` (state
        there), ``ts``/``ys`` (the outputs filled so far), ``status`` and ``info``. With
        ``radau``/``bdf`` a failing sample leaves the others' results intact: ``ys`` holds
        every output, NaN where a sample did not reach, and ``t``/``status`` are per sample.
    ValueError, TypeError
        Bad arguments: NaN in ``y0``, ``t`` not strictly monotonic, an unknown method,
        negative tolerances, ``f`` returning the wrong shape, and so on.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> ys = nd.odeint(lambda t, y: -y, np.array([1.0]), [0.0, 1.0], rtol=1e-8, atol=1e-10)
    >>> bool(abs(ys[-1, 0] - np.exp(-1)) < 1e-7)
    True
    """
    if method in STIFF_METHODS:
        return odeint_stiff(f, y0, t, method=method, rtol=rtol, atol=atol, dt=dt, max_steps=max_steps,
                            jac=jac, args=args, return_info=return_info, verbose=verbose)
    if jac is not None:
        raise TypeError(f"jac is used by the implicit methods {STIFF_METHODS}, not by {method!r}")
    code = _checks.choice("method", method, METHODS + STIFF_METHODS)
    rtol = _checks.real("rtol", rtol, minimum=0.0)
    atol = _checks.real("atol", atol, minimum=0.0)
    if method == "dopri5" and rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol and atol cannot both be 0")
    step = 0.0 if dt is None else _checks.real("dt", dt, minimum=0.0, strict=True)
    max_steps = _checks.integer("max_steps", max_steps, minimum=1)
    times = _checks.times("t", t)
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple, got {type(args).__name__}")
    if isinstance(f, Field):
        rhs = f._spec()
        if args:
            raise TypeError("args are passed to a callable f only; a built-in field takes none")
    elif callable(f):
        rhs = f
    else:
        raise TypeError(f"f must be callable or a neurodyn.fields field, got {type(f).__name__}")
    with kernel_progress("odeint", verbose) as bar:
        ys, info = _core.odeint(rhs, y0, times, code, rtol, atol, step, max_steps, args, bool(return_info),
                                progress=bar)
    return (ys, info) if return_info else ys


def solve_ltc(x, a, tau, *, solver="exact", steps=1, rtol=1e-2, atol=1e-4, max_steps=100):
    """Relax ``x`` toward ``a`` with time constant ``tau`` over one frame, elementwise.

    Integrates ``dx/ds = (a - x) / tau`` for ``s`` from 0 to 1 with ``a`` and ``tau`` held
    fixed: the update of a liquid time-constant layer.

    Parameters
    ----------
    x, a, tau : array_like
        Broadcast together. ``tau`` must be positive. float32 inputs give float32.
    solver : {"exact", "euler", "midpoint", "rk4", "dopri5"}
        ``exact``: ``a + (x - a) * exp(-1 / tau)``. The fixed-step solvers take ``steps``
        substeps of ``1 / steps``. ``dopri5`` treats the whole array as one system with the
        error control of :func:`odeint`, a first step of 0.25, and ``rtol``, ``atol``,
        ``max_steps``.
    steps : int
        Substeps of the fixed-step solvers (>= 1).

    Returns
    -------
    ndarray
        ``x(1)``, of the broadcast shape.

    Examples
    --------
    >>> import neurodyn as nd
    >>> float(nd.solve_ltc(1.0, 0.5, 1.0, solver="rk4"))
    0.6875
    """
    code = _checks.choice("solver", solver, LTC_SOLVERS) - 1  # "exact" is the C code -1
    steps = _checks.integer("steps", steps, minimum=1)
    rtol = _checks.real("rtol", rtol, minimum=0.0)
    atol = _checks.real("atol", atol, minimum=0.0)
    if solver == "dopri5" and rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol and atol cannot both be 0")
    max_steps = _checks.integer("max_steps", max_steps, minimum=1)
    dtype = _checks.float_dtype("x, a and tau", x, a, tau)
    arrays = [np.asarray(v, dtype=dtype) for v in (x, a, tau)]
    try:
        xb, ab, tb = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{n} {v.shape}" for n, v in zip(("x", "a", "tau"), arrays))
        raise ValueError(f"x, a and tau do not broadcast together: {shapes}") from None
    if not np.all(np.isfinite(tb)):
        raise ValueError("tau contains NaN or inf")
    if tb.size and not np.all(tb > 0):
        raise ValueError(f"tau must be positive, got a minimum of {tb.min()!r}")
    return _core.solve_ltc(xb, ab, tb, code, steps, rtol, atol, max_steps)
