"""ODE integration in C: :func:`odeint` and the LTC relaxation :func:`solve_ltc`."""
from __future__ import annotations

import numpy as np

from . import _checks, _core
from .fields import Field
from .training import kernel_progress

IntegrationError = _core.IntegrationError

METHODS = ("euler", "midpoint", "rk4", "dopri5")


def odeint(f, y0, t, *, method="dopri5", rtol=1e-3, atol=1e-6, dt=None, max_steps=10_000,
           args=(), return_info=False, verbose=True):
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
    method : {"dopri5", "rk4", "midpoint", "euler"}
        ``dopri5``: adaptive Dormand–Prince 5(4) with FSAL (6 evaluations per step) and
        output times filled by its 4th-order dense output. The others are fixed-step.
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

    Returns
    -------
    ys : ndarray, shape (T,) + S
        ``ys[i]`` is the state at ``t[i]``; ``ys[0] == y0``. Its dtype is that of ``y0``.
    info : dict
        Only with ``return_info=True``.

    Raises
    ------
    neurodyn.IntegrationError
        The solver could not reach ``t[-1]``: ``max_steps`` exhausted, step size underflow,
        or a non-finite state or derivative. It carries ``t`` (time reached), ``y`` (state
        there), ``ts``/``ys`` (the outputs filled so far), ``status`` and ``info``.
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
    code = _checks.choice("method", method, METHODS)
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

