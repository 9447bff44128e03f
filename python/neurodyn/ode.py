"""ODE integration in C: :func:`odeint`."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core
from . import _stiff
from ._stiff import STIFF_METHODS
from .fields import Field
from .training import kernel_progress
from .fields import LinearEvent

#: What ``odeint(events=...)`` takes: event functions ``g(t, y, *args)`` or LinearEvent specs.
Events = Union[Callable[..., Any], LinearEvent, Sequence[Union[Callable[..., Any], LinearEvent]]]

IntegrationError = _core.IntegrationError

METHODS = _core.TABLES["ode_methods"]
ADAPTIVE = _core.TABLES["ode_adaptive_methods"]
FIXED = tuple(m for m in METHODS if m not in ADAPTIVE)
# The stiff solvers named when an explicit method looks stiff (docs/models.md §8).
_STIFF_HINT = 'the problem looks stiff: try method="radau" or method="bdf"'


_OPTS = _core.DEFAULTS["odeint"]


# What odeint returns follows return_info, dense_output and on_failure="status" (which implies
# return_info): the solution alone, or a tuple (ys, info), (ys, solution) or (ys, info, solution).
@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: Literal[False] = ..., dense_output: Literal[False] = ...,
           on_failure: Literal["raise"] = ...) -> np.ndarray: ...


@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: Literal[True], dense_output: Literal[False] = ...,
           on_failure: str = ...) -> tuple[np.ndarray, dict[str, Any]]: ...


@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: bool = ..., dense_output: Literal[False] = ...,
           on_failure: Literal["status"]) -> tuple[np.ndarray, dict[str, Any]]: ...


@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: Literal[False] = ..., dense_output: Literal[True],
           on_failure: Literal["raise"] = ...) -> tuple[np.ndarray, OdeSolution]: ...


@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: Literal[True], dense_output: Literal[True],
           on_failure: str = ...) -> tuple[np.ndarray, dict[str, Any], OdeSolution]: ...


@overload
def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = ..., rtol: float = ...,
           atol: float = ..., dt: float | None = ..., max_steps: int = ..., args: tuple[Any, ...] = ...,
           events: Events | None = ..., coupled: bool = ..., verbose: bool = ...,
           jac: Callable[..., ArrayLike] | None = ...,
           return_info: bool = ..., dense_output: bool = ...,
           on_failure: str = ...) -> np.ndarray | tuple[Any, ...]: ...


def odeint(f: Field | Callable[..., ArrayLike], y0: ArrayLike, t: ArrayLike, *, method: str = _OPTS["method"],
           rtol: float = _OPTS["rtol"], atol: float = _OPTS["atol"], dt: float | None = None,
           max_steps: int = _OPTS["max_steps"],
           args: tuple[Any, ...] = (), return_info: bool = False, events: Events | None = None,
           dense_output: bool = False, coupled: bool = False,
           on_failure: str = "raise", verbose: bool = True,
           jac: Callable[..., ArrayLike] | None = None) -> np.ndarray | tuple[Any, ...]:
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
    method : {"dopri5", "tsit5", "dop853", "rk4", "midpoint", "euler", "radau", "bdf", "auto"}
        ``dopri5``: Dormand–Prince 5(4) with FSAL (6 evaluations per step) and its 4th-order
        dense output; ``tsit5``: Tsitouras 5(4), FSAL, its own dense output; ``dop853``:
        Dormand–Prince 8(5,3) with Hairer's error estimator and 7th-order dense output (12
        evaluations per step, 3 more on steps whose dense output is used). Output times are
        filled from the dense output. ``rk4``, ``midpoint``, ``euler`` are fixed-step (and always
        coupled). ``radau`` (Radau IIA of order 5) and ``bdf`` (variable-order BDF 1–5) are
        implicit, for stiff problems: each sample also has its own Jacobian and LU factors, and
        a single sample's ``f`` is called once per row it needs (a Radau iteration needs three).
        ``auto`` starts every sample with dopri5 and switches that sample to radau when
        Hairer's stiffness test (``h |lambda|`` from dopri5's last two stages beyond its stability
        boundary, 3.25, on 15 steps) finds it stiff, and back when radau's step times the
        norm of the Jacobian falls within that boundary for 15 steps (csrc/nd_ode_auto.h).
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
        anywhere in its interval (``sol(t)``, ``t`` a scalar or one time per sample). Adaptive
        explicit methods and ``radau`` (its collocation polynomial).
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
    jac : callable, optional
        ``radau`` and ``bdf`` with a callable ``f``: ``jac(t, y, *args)`` is called as ``f`` is
        and returns ``y.shape + (d,)``, ``J[..., r, c] = d f_r / d y_c`` (with ``coupled=True``,
        ``(n, n)`` over the ``n = y0.size`` values). Without it the Jacobian comes from forward
        differences, ``d`` more rows of ``f`` each. A built-in field uses its own, in C.

    Returns
    -------
    ys : ndarray, shape (T,) + S
        ``ys[i]`` is the state at ``t[i]``; ``ys[0] == y0``. Its dtype is that of ``y0``.
    info : dict
        Only with ``return_info=True`` (or ``on_failure="status"``). ``radau`` and ``bdf`` add
        per-sample ``njev`` (Jacobians) and ``nlu`` (LU factorisations; a Radau one is two, the
        real and the complex matrix) and their totals (with ``jac_calls``, batched Jacobian
        calls); their ``nfev`` counts difference-Jacobian rows too. ``auto`` adds per-sample
        ``switches``, ``method`` (the one in use at the end), ``accepted_by_method`` and
        ``nfev_by_method`` (dicts of per-sample counts by method name) and ``total["phases"]``.
    sol : OdeSolution
        Only with ``dense_output=True``; always last.

    Raises
    ------
    neurodyn.IntegrationError
        A sample could not reach ``t[-1]``: ``max_steps`` exhausted, step size underflow, a
        non-finite state or derivative, or (``radau``, ``bdf``) a Newton matrix that stays
        singular as the step is reduced. The message names the failed samples; the error
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
    if on_failure not in ("raise", "status"):
        raise ValueError(f'on_failure must be "raise" or "status", got {on_failure!r}')
    if method not in METHODS and method not in STIFF_METHODS:
        _checks.choice("method", method, METHODS + STIFF_METHODS)
    step = 0.0 if dt is None else _checks.real("dt", dt, minimum=0.0, strict=True)  # 0 is the kernels' "auto"
    if method in STIFF_METHODS:  # the implicit methods check their own rules (csrc/nd_ode_stiff.h)
        if events is not None or (dense_output and method != "radau"):
            raise ValueError(f"{'events are' if events is not None else 'dense_output is'} not available with "
                             f"method={method!r}" + ("" if events is not None else ' (it is with "radau")'))
        if not isinstance(args, tuple):
            raise TypeError(f"args must be a tuple, got {type(args).__name__}")
        if isinstance(f, Field) and args:
            raise TypeError("args are passed to a callable f only; a built-in field takes none")
        if not isinstance(f, Field) and not callable(f):
            raise TypeError(f"f must be callable or a neurodyn.fields field, got {type(f).__name__}")
        return _stiff.odeint_stiff(f._spec() if isinstance(f, Field) else f, y0, _checks.times("t", t), method=method,
                            rtol=rtol, atol=atol, dt=step, max_steps=max_steps, args=args, jac=jac,
                            return_info=return_info, coupled=coupled, on_failure=on_failure, verbose=verbose,
                            dense_output=dense_output)
    if jac is not None:
        raise TypeError(f"jac is used by the implicit methods {STIFF_METHODS}, not by {method!r}")
    dtype = _checks.float_dtype("y0", y0)
    evfun, linear, direction, terminal = _event_specs(events, np.dtype(dtype))
    record = 2 if dense_output else (1 if return_info or on_failure == "status" else 0)
    with kernel_progress("odeint", verbose) as bar:
        ys, y_last, raw = _core.odeint(
            f._spec() if isinstance(f, Field) else f, y0, t, method=method, rtol=rtol, atol=atol, dt=step,
            max_steps=max_steps, args=args, coupled=coupled, events=evfun,
            event_c=None if linear is None else linear[0], event_d=None if linear is None else linear[1],
            direction=direction, terminal=terminal, record=record, progress=bar)
    if method in ADAPTIVE:  # rtol passed the kernel's rules
        _warn_rtol(rtol, dtype)
    times = np.asarray(t, dtype=np.float64)
    info = _samples_info(raw, direction)
    if on_failure == "raise":
        _raise_failed(raw, info, times, ys, y_last, method, max_steps)
    out: list[Any] = [ys]
    if return_info or on_failure == "status":
        out.append(info)
    if dense_output:
        out.append(OdeSolution(method, raw, times, y_last.shape, dtype))
    return out[0] if len(out) == 1 else tuple(out)


def _event_specs(events, dtype):
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
            terminal.append(_checks.integer("terminal", term))  # the kernel's rule: >= 0
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


def _warn_rtol(rtol, dtype):
    """The adaptive solvers cannot resolve tolerances below 100 eps of the state's type."""
    if rtol < 100 * np.finfo(dtype).eps:
        warnings.warn(f"rtol={rtol!r} is below what {dtype} resolves (100 eps = {100 * np.finfo(dtype).eps:.3g}): "
                      "steps will be driven by rounding errors", RuntimeWarning, stacklevel=3)


def _samples_info(raw, direction):
    """The user-facing info dict: per-sample values of the samples' shape (numbers for a
    single sample, whose counters come as 0-d arrays)."""
    batch_shape = np.shape(raw["nfev"])
    single = not batch_shape
    B = int(np.prod(batch_shape, dtype=np.int64))
    info = {k: raw[k][()] for k in ("nfev", "accepted", "rejected")}
    status = np.array(raw["status"], dtype=object if B == 0 else None)
    info["status"] = str(status[0]) if single else status.reshape(batch_shape)
    info["t_reached"] = raw["t"][()]
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
        t_events, y_events = [], []
        for j in range(len(direction)):
            sel = k == j
            if single:
                t_events.append(te[sel])
                y_events.append(ystates[sel])
                continue
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


def _failure_reason(raw, s, times, max_steps, method=None):
    """Why flat sample s stopped, with a stiffness hint when an explicit method's steps kept
    shrinking."""
    key = raw["status"][s]
    reason = f"max_steps={max_steps} steps were used" if key == "max_steps" else {
        "step_underflow": "step size underflow", "nonfinite": "non-finite state or derivative",
        "interrupted": "interrupted",
        "singular": "the Newton matrix stayed singular as the step was reduced"}.get(key, key)
    rejected, t_reached = int(np.ravel(raw["rejected"])[s]), float(np.ravel(raw["t"])[s])
    attempts = int(np.ravel(raw["accepted"])[s]) + rejected
    progress = (t_reached - times[0]) / (times[-1] - times[0]) if len(times) > 1 else 1.0
    if method not in STIFF_METHODS and key in ("max_steps", "step_underflow") and attempts and (
            rejected >= 0.1 * attempts or progress < 0.01):
        # Explicit steps held at the stability limit: many rejections, or a whole budget
        # spent on a sliver of the interval.
        reason += (f" ({rejected} of {attempts} steps rejected, {100 * progress:.2g}% of the "
                   f"interval covered): {_STIFF_HINT}")
    return f"stopped at t={t_reached!r} before reaching t={float(times[-1])!r}: {reason}"


def _raise_failed(raw, info, times, ys, y_last, method, max_steps):
    """IntegrationError naming the failed samples, unless every sample succeeded. ``info`` is
    the user-facing info dict, built from ``raw`` when None (only on failure)."""
    codes = np.ravel(raw["status_code"])
    failed = np.flatnonzero(codes < 0)
    if not len(failed):
        return
    if info is None:
        info = _samples_info(raw, ())
    batch_shape = np.shape(raw["nfev"])
    if not batch_shape:
        n = int(raw["n_out"])
        err = IntegrationError(f"{method} " + _failure_reason(raw, 0, times, max_steps, method))
        err.t, err.y, err.ts, err.ys = float(raw["t"]), y_last, times[:n], ys[:n]
        err.failed = failed
    else:
        def where(s):
            return np.unravel_index(s, batch_shape) if len(batch_shape) > 1 else s
        reasons = [f"sample {where(s)} " + _failure_reason(raw, s, times, max_steps, method) for s in failed[:5]]
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        err = IntegrationError(f"{method}: {len(failed)} of {codes.size} samples failed; " + "; ".join(reasons) + more)
        err.t, err.y, err.ts, err.ys = info["t_reached"], y_last, times, ys
        err.failed = np.array([where(s) for s in failed]) if len(batch_shape) > 1 else failed
    err.status = info["status"]
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

    def __init__(self, method: str, raw: dict[str, Any], times: np.ndarray, shape: tuple[int, ...],
                 dtype: DTypeLike) -> None:
        steps = raw["steps"]
        self.method, self.shape, self.dtype = method, shape, dtype
        # radau's collocation polynomial comes in dopri5's power form (csrc/nd_ode_stiff.h)
        self._form = "dopri5" if method == "radau" else method
        self.t0, self.t_end = float(times[0]), float(times[-1])
        self._dir = 1.0 if len(times) < 2 or times[-1] > times[0] else -1.0
        B = int(np.size(raw["nfev"]))
        sample = steps[:, 0].astype(np.int64)
        order = np.lexsort((steps[:, 1], sample))  # by sample, then round: time order
        self._sample, self._t, self._h = sample[order], steps[order, 2], steps[order, 3]
        self._coef = raw["dense"][order]
        self._start = np.searchsorted(self._sample, np.arange(B + 1))
        self._reached = np.ravel(raw["t"]).astype(np.float64)
        self._B = B

    def __call__(self, t: ArrayLike) -> np.ndarray:
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
            out[ok] = _core.ode_dense_eval(theta[ok], self._coef[idx[ok]], self._form)
        return out.reshape(self.shape)
