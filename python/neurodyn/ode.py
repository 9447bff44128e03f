"""ODE integration in C: :func:`odeint`."""
from __future__ import annotations

import warnings

import numpy as np

from . import _checks, _core
from .fields import Field
from .training import kernel_progress

IntegrationError = _core.IntegrationError

METHODS = _core.TABLES["ode_methods"]
ADAPTIVE = ("dopri5", "tsit5", "dop853")
FIXED = ("euler", "midpoint", "rk4")
# The stiff solvers named when an explicit method looks stiff (docs/models.md §8).
_STIFF_HINT = 'the problem looks stiff: try method="radau" or method="bdf"'


_OPTS = _core.DEFAULTS["ode_check_options"]


def odeint(f, y0, t, *, method=_OPTS["method"], rtol=_OPTS["rtol"], atol=_OPTS["atol"], dt=None,
           max_steps=_OPTS["max_steps"],
           args=(), return_info=False, events=None, dense_output=False, coupled=False,
           on_failure="raise", verbose=True):
    """Integrate ``dy/dt = f(t, y)`` from ``t[0]`` and return the state at every time in ``t``.

    With an adaptive method every index over the leading axes of ``y0`` is its own
    initial-value problem (docs/models.md §8): each sample has its own step size, its own
    accept/reject decisions, its own error norm (RMS over its own last axis), its own counters
    and failure status. A sample's result is bit-identical whether it is solved alone, in any
    batch, in any order, in any Dask chunking and at any thread count, and samples that
    finish stop costing work.

    Parameters
    ----------
    f : callable or neurodyn.fields.Field
        ``f(t, y, *args) -> dy/dt``; or a built-in field (``nd.fields.Linear``, ``Lorenz``,
        ``MLP``) evaluated in C with no Python call per step. How ``f`` is called:

        - ``y0`` with 2 or more axes, adaptive method: ``y`` is the live samples, shape
          ``(m, d)`` (leading axes flattened, only the samples still running), and ``t`` is
          their times, shape ``(m, 1)``, which broadcasts against ``y``. Return ``(m, d)``.
          ``lambda t, y: -y`` and fields that ignore ``t`` work unchanged.
        - ``y0`` with 0 or 1 axes, or ``coupled=True``, or a fixed-step method: ``t`` is a
          float and ``y`` has the shape of ``y0``.
    y0 : array_like, shape S
        Initial state; its last axis is the state of one sample. float32 stays float32,
        float64 stays float64; integers become float64.
    t : array_like of float, shape (T,)
        Output times, strictly increasing or strictly decreasing; ``t[0]`` is the time of ``y0``.
    method : {"dopri5", "tsit5", "dop853", "rk4", "midpoint", "euler"}
        ``dopri5``: Dormand–Prince 5(4) with FSAL (6 evaluations per step) and its 4th-order
        dense output; ``tsit5``: Tsitouras 5(4), FSAL, its own dense output; ``dop853``:
        Dormand–Prince 8(5,3) with Hairer's error estimator and 7th-order dense output (12
        evaluations per step, 3 more on steps whose dense output is used). Output times are
        filled from the dense output. The others are fixed-step (and always coupled).
    rtol, atol : float
        Tolerances (>= 0, not both 0). The error norm is the RMS over a sample's state of
        ``err / (atol + rtol * max(|y|, |y_new|))``; a step is accepted when it is <= 1.
    dt : float, optional
        Fixed-step methods: the step to aim for. Between consecutive output times
        ``n = max(1, round_half_away(|t1 - t0| / dt))`` equal steps are taken, so every output
        time is hit exactly; ``None`` takes one step per output interval. Adaptive methods:
        the first step (``None`` chooses it by Hairer's algorithm, per sample).
    max_steps : int
        Budget of attempted steps (accepted plus rejected): per sample for adaptive methods,
        for the whole call in coupled and fixed-step mode.
    args : tuple
        Extra positional arguments passed to a callable ``f`` (and to event functions), as they
        are: per-sample integration calls ``f`` with the rows still running only, so a parameter
        that differs by row travels in the state (a component whose derivative is 0) or the
        call uses ``coupled=True``.
    return_info : bool
        Also return a dict: per-sample ``nfev``, ``accepted``, ``rejected``, ``status``
        (arrays of shape ``S[:-1]``; plain numbers for a single sample) and ``steps`` (each
        accepted step's start time and size, ``(accepted, 2)``; for a batch nested lists over
        ``S[:-1]`` of one such array per sample); the whole call's
        ``total`` counters (``nfev``, ``accepted``, ``rejected``, ``rhs_calls`` — batched
        evaluations — and ``rounds``); with events ``t_events`` and ``y_events``.
    events : callable, list of callables or neurodyn.fields.LinearEvent, optional
        As in SciPy's ``solve_ivp``: ``g(t, y, *args)`` called like ``f`` and returning one
        value per sample (shape ``(m,)`` for rows, a scalar for a single sample); a sign
        change over a step is located on the dense output to near machine precision.
        Attributes ``direction`` (+1 rising only, -1 falling only, 0 both) and ``terminal``
        (True or an int k: stop that sample at its k-th event) are read when present.
        ``nd.fields.LinearEvent(c, d)`` specs (``g = c . y - d``) are evaluated in C.
        A sample stopped by a terminal event ends there: its later outputs are NaN and its
        status is ``"event"``. Adaptive methods only.
    dense_output : bool
        Also return a :class:`OdeSolution` that evaluates each sample's continuous solution
        anywhere in its interval (``sol(t)``, ``t`` a scalar or one time per sample).
    coupled : bool
        Treat the whole array as one system with one step size and one error norm over every
        value (the behaviour before per-sample control). Use it when the leading axes are not
        independent problems, or to reproduce earlier results.
    on_failure : {"raise", "status"}
        ``"raise"``: a failed sample raises :class:`IntegrationError`; ``"status"``: the
        failed samples' later outputs are NaN and ``info["status"]`` says why (implies
        ``return_info``).
    verbose : bool
        Show a progress bar (with tqdm installed) once the call has run for a second;
        ``False`` never does. Ctrl-C stops the integration either way.

    Returns
    -------
    ys : ndarray, shape (T,) + S
        ``ys[i]`` is the state at ``t[i]``; ``ys[0] == y0``. Its dtype is that of ``y0``.
    info : dict
        Only with ``return_info=True`` (or ``on_failure="status"``).
    sol : OdeSolution
        Only with ``dense_output=True``; always last.

    Raises
    ------
    neurodyn.IntegrationError
        A sample could not reach ``t[-1]``: ``max_steps`` exhausted, step size underflow, or a
        non-finite state or derivative. The message names the failed samples; the error
        carries ``t`` (time reached), ``y`` (state there), ``ts``/``ys`` (outputs; for a
        batch all of them, NaN where a sample did not reach), ``status``, ``failed`` (indices
        of the failed samples) and ``info``.
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
    _core.ode_check_options(method=method, rtol=rtol, atol=atol, max_steps=max_steps)  # the kernels' rules
    rtol, atol, max_steps = float(rtol), float(atol), int(max_steps)
    step = 0.0 if dt is None else _checks.real("dt", dt, minimum=0.0, strict=True)  # 0 is the kernels' "auto"
    times = _checks.times("t", t)
    if on_failure not in ("raise", "status"):
        raise ValueError(f'on_failure must be "raise" or "status", got {on_failure!r}')
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
    if method in FIXED or (coupled and method == "dopri5"):
        if events is not None or dense_output:
            raise ValueError(f"events and dense_output need an adaptive per-sample solve; method={method!r}"
                             + (" with coupled=True" if coupled else "") + " has neither")
        code = METHODS.index(method)
        with kernel_progress("odeint", verbose) as bar:
            ys, info = _core.odeint(rhs, y0, times, code, rtol, atol, step, max_steps, args,
                                    bool(return_info), progress=bar)
        return (ys, info) if return_info else ys
    return _odeint_samples(rhs, y0, times, method, rtol, atol, step, max_steps, args, return_info,
                           events, dense_output, coupled, on_failure, verbose)


def _event_specs(events, args, dtype):
    """(callable or None, linear (c, d) or None, direction, terminal) of ``events``."""
    from .fields import LinearEvent
    if events is None:
        return None, None, None, None
    evs = list(events) if isinstance(events, (list, tuple)) else [events]
    if not evs:
        return None, None, None, None
    direction = np.array([int(np.sign(getattr(g, "direction", 0))) for g in evs], dtype=np.int64)
    terminal = []
    for g in evs:
        term = getattr(g, "terminal", False)
        if isinstance(term, (bool, np.bool_)):
            terminal.append(1 if term else 0)
        else:
            terminal.append(_checks.integer("terminal", term, minimum=0))
    terminal = np.array(terminal, dtype=np.int64)
    if all(isinstance(g, LinearEvent) for g in evs):
        c = np.stack([g.c for g in evs]).astype(np.float64)
        d = np.array([g.d for g in evs], dtype=np.float64)
        return None, (c, d), direction, terminal
    if any(isinstance(g, LinearEvent) for g in evs):
        raise TypeError("events mixes LinearEvent specs and callables; use one kind")
    for g in evs:
        if not callable(g):
            raise TypeError(f"an event must be callable or a LinearEvent, got {type(g).__name__}")

    def stacked(tt, y, *a):
        return np.stack([np.asarray(g(tt, y, *a), dtype=dtype) for g in evs], axis=-1)

    return stacked, None, direction, terminal


def _odeint_samples(rhs, y0, times, method, rtol, atol, step, max_steps, args, return_info, events,
                    dense_output, coupled, on_failure, verbose):
    dtype = _checks.float_dtype("y0", y0)
    y = np.asarray(y0, dtype=dtype)
    shape = y.shape
    single = coupled or y.ndim <= 1
    if single:
        rows = y.reshape(1, y.size)
        batch_shape = ()
    else:
        batch_shape = shape[:-1]
        rows = y.reshape(int(np.prod(batch_shape, dtype=np.int64)), shape[-1])
    if rtol < 100 * np.finfo(dtype).eps:
        warnings.warn(f"rtol={rtol!r} is below what {dtype} resolves (100 eps = {100 * np.finfo(dtype).eps:.3g}): "
                      "steps will be driven by rounding errors", RuntimeWarning, stacklevel=3)
    evfun, linear, direction, terminal = _event_specs(events, args, dtype)
    record = 2 if dense_output else (1 if return_info else 0)
    with kernel_progress("odeint", verbose) as bar:
        ys, y_last, raw = _core.odeint_samples(
            rhs, rows, times, method=method, rtol=rtol, atol=atol, dt=step, max_steps=max_steps, args=args,
            sample_shape=shape if single else None, events=evfun,
            event_c=None if linear is None else linear[0], event_d=None if linear is None else linear[1],
            direction=direction, terminal=terminal, record=record, progress=bar)
    ys = ys.reshape((len(times),) + shape)
    B = rows.shape[0]
    info = _samples_info(raw, batch_shape, B, single, direction)
    failed = np.flatnonzero(np.asarray(raw["status_code"]) < 0)
    if len(failed) and on_failure == "raise":
        _raise_failed(raw, info, failed, times, ys, y_last.reshape(shape), method, max_steps, batch_shape, single)
    out = [ys]
    if return_info or on_failure == "status":
        out.append(info)
    if dense_output:
        out.append(OdeSolution(method, raw, times, shape, single, dtype))
    return out[0] if len(out) == 1 else tuple(out)


def _samples_info(raw, batch_shape, B, single, direction):
    """The user-facing info dict: per-sample arrays of shape batch_shape (numbers for one sample)."""
    def per_sample(v):
        arr = np.asarray(v)
        return arr.reshape(batch_shape)[()] if single else arr.reshape(batch_shape)

    info = {k: per_sample(raw[k]) for k in ("nfev", "accepted", "rejected")}
    status = np.array(raw["status"], dtype=object if B == 0 else None)
    info["status"] = str(status[0]) if single else status.reshape(batch_shape)
    info["t_reached"] = per_sample(raw["t"])
    info["total"] = {"nfev": int(raw["nfev_total"]), "accepted": int(np.sum(raw["accepted"])),
                     "rejected": int(np.sum(raw["rejected"])), "rhs_calls": int(raw["rhs_calls"]),
                     "rounds": int(raw["rounds"]), "failed": int(raw["n_failed"])}
    if "steps" in raw:
        steps = raw["steps"]
        sample = steps[:, 0].astype(np.int64)
        order = np.argsort(sample, kind="stable")
        bounds = np.searchsorted(sample[order], np.arange(B + 1))
        per = [steps[order[bounds[s]:bounds[s + 1]], 2:4] for s in range(B)]
        if single:
            info["steps"] = per[0]
        else:
            obj = np.empty(B, dtype=object)
            obj[:] = per
            info["steps"] = obj.reshape(batch_shape).tolist()
    if "events" in raw:
        meta, ystates = raw["events"]
        sample, k, te = meta[:, 0].astype(np.int64), meta[:, 1].astype(np.int64), meta[:, 2]
        n_ev = len(direction)
        t_events, y_events = [], []
        for j in range(n_ev):
            sel = k == j
            if single:
                t_events.append(te[sel])
                y_events.append(ystates[sel])
            else:
                tl = np.empty(B, dtype=object)
                yl = np.empty(B, dtype=object)
                for s in range(B):
                    m = sel & (sample == s)
                    tl[s] = te[m]
                    yl[s] = ystates[m]
                t_events.append(tl.reshape(batch_shape).tolist())
                y_events.append(yl.reshape(batch_shape).tolist())
        info["t_events"] = t_events
        info["y_events"] = y_events
    return info


def _raise_failed(raw, info, failed, times, ys, y_last, method, max_steps, batch_shape, single):
    codes = np.asarray(raw["status_code"])
    reasons = []
    for s in failed[:5]:
        key = raw["status"][s]
        reason = f"max_steps={max_steps} steps were used" if key == "max_steps" else {
            "step_underflow": "step size underflow", "nonfinite": "non-finite state or derivative",
            "interrupted": "interrupted"}.get(key, key)
        attempts = raw["accepted"][s] + raw["rejected"][s]
        progress = (raw["t"][s] - times[0]) / (times[-1] - times[0])
        if key in ("max_steps", "step_underflow") and attempts and (raw["rejected"][s] >= 0.1 * attempts
                                                                     or progress < 0.01):
            # Explicit steps held at the stability limit: many rejections, or a whole budget
            # spent on a sliver of the interval.
            reason += (f" ({raw['rejected'][s]} of {attempts} steps rejected, {100 * progress:.2g}% of the "
                       f"interval covered): {_STIFF_HINT}")
        where = "" if single else f"sample {np.unravel_index(s, batch_shape) if len(batch_shape) > 1 else s} "
        reasons.append(f"{where}stopped at t={raw['t'][s]!r} before reaching t={times[-1]!r}: {reason}")
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    if single:
        n = int(raw["n_out"][0])
        msg = f"{method} " + reasons[0]
        err = IntegrationError(msg)
        err.t, err.y, err.ts, err.ys = float(raw["t"][0]), y_last, times[:n], ys[:n]
    else:
        msg = f"{method}: {len(failed)} of {codes.size} samples failed; " + "; ".join(reasons) + more
        err = IntegrationError(msg)
        err.t, err.y, err.ts, err.ys = info["t_reached"], y_last, times, ys
    err.status = info["status"]
    err.failed = failed if single else np.array(
        [np.unravel_index(s, batch_shape) for s in failed]) if len(batch_shape) > 1 else failed
    err.info = info
    raise err


class OdeSolution:
    """Each sample's continuous solution from :func:`odeint` with ``dense_output=True``.

    ``sol(t)`` evaluates every sample at ``t`` (a scalar, or an array of shape ``S[:-1]``: one
    time per sample) with the dense output of the step that covers it, and returns an array of
    the shape of ``y0``. Times outside a sample's interval ``[t[0], t_reached]`` give NaN.

    Returned by :func:`odeint`, which computes the arguments below; not meant to be built by
    hand.

    Parameters
    ----------
    method : str
        The adaptive method whose dense output is evaluated.
    raw : dict
        The kernel's per-sample step records.
    times : ndarray
        The output times of the call.
    shape : tuple
        The shape of ``y0``.
    single : bool
        Whether the call integrated one system (a single sample, or ``coupled=True``).
    dtype : numpy dtype
        The dtype of the solution.
    """

    def __init__(self, method, raw, times, shape, single, dtype):
        steps = raw["steps"]
        self.method, self.shape, self.dtype = method, shape, dtype
        self.t0, self.t_end = float(times[0]), float(times[-1])
        self._dir = 1.0 if len(times) < 2 or times[-1] > times[0] else -1.0
        B = 1 if single else int(np.prod(shape[:-1], dtype=np.int64))
        sample = steps[:, 0].astype(np.int64)
        order = np.lexsort((steps[:, 1], sample))  # by sample, then round: time order
        self._sample, self._t, self._h = sample[order], steps[order, 2], steps[order, 3]
        self._coef = raw["dense"][order]
        self._start = np.searchsorted(self._sample, np.arange(B + 1))
        self._reached = np.asarray(raw["t"], dtype=np.float64)
        self._B = B

    def __call__(self, t):
        B = self._B
        t_arr = np.asarray(t, dtype=np.float64)
        tt = np.full(B, float(t_arr)) if t_arr.ndim == 0 else t_arr.reshape(-1)
        if tt.size != B:
            raise ValueError(f"t must be a scalar or hold one time per sample ({B}), got shape {np.shape(t)}")
        d = self._coef.shape[-1] if self._coef.size else (self.shape[-1] if self.shape else 1)
        out = np.full((B, d), np.nan, dtype=self.dtype)
        idx = np.full(B, -1, dtype=np.int64)
        theta = np.zeros(B)
        for s in range(B):
            lo, hi = self._start[s], self._start[s + 1]
            x = tt[s]
            inside = (x - self.t0) * self._dir >= 0 and (self._reached[s] - x) * self._dir >= 0
            if hi == lo or not inside:
                continue
            ends = self._t[lo:hi] * self._dir
            j = lo + max(0, min(hi - lo - 1, int(np.searchsorted(ends, x * self._dir, side="right")) - 1))
            idx[s] = j
            theta[s] = (x - self._t[j]) / self._h[j]
        ok = idx >= 0
        if np.any(ok):
            out[ok] = _core.ode_dense_eval(theta[ok], self._coef[idx[ok]], self.method)
        return out.reshape(self.shape)
