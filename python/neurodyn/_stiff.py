"""The implicit methods of :func:`neurodyn.odeint` (``method="radau"`` and ``"bdf"``) and the
automatic switching between dopri5 and radau (``method="auto"``, csrc/nd_ode_auto.h).

Every index over the leading axes of ``y0`` is its own stiff problem with its own step size,
Jacobian, LU factors and counters (docs/models.md §8); the C kernels (csrc/nd_ode_stiff.h)
check the arguments and report which one broke which rule. The info dict and the failures
are those of the explicit per-sample solvers (neurodyn.ode), with the Jacobian and LU counters.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _core
from .training import kernel_progress

#: Names of the implicit methods and of the automatic one, from the kernels' table.
STIFF_METHODS = _core.TABLES["stiff_methods"]


def _coupled(rhs, jac, shape):
    """f and jac over the whole array as one state of n = prod(shape) values."""
    if isinstance(rhs, tuple):
        raise ValueError("coupled=True with a built-in field is for the explicit methods: an implicit method "
                         "solves each field state (the last axis) with its own Jacobian")
    n = int(np.prod(shape, dtype=np.int64))

    def f(t, y, *args):
        return np.reshape(rhs(t, np.reshape(y, shape), *args), n)

    def jac_flat(t, y, *args):
        return np.reshape(jac(t, np.reshape(y, shape), *args), (n, n))

    return f, (None if jac is None else jac_flat), n


def odeint_stiff(rhs, y0, times, *, method, rtol, atol, dt, max_steps, args, jac, return_info, coupled,
                 on_failure, verbose, dense_output=False):
    """:func:`neurodyn.odeint` for ``method`` in :data:`STIFF_METHODS` (``rhs`` a callable or a
    field's description, ``times`` checked); see its docstring."""
    from . import ode

    shape = np.shape(y0)
    y = y0
    if isinstance(rtol, (int, float, np.floating)) and not isinstance(rtol, bool) and rtol >= 0:
        ode._warn_rtol(float(rtol), _checks.float_dtype("y0", y0))  # the kernel raises rtol to 100 eps
    if coupled:
        rhs, jac, n = _coupled(rhs, jac, shape)
        y = np.reshape(np.asarray(y0), n)
    single = coupled or len(shape) <= 1
    batch_shape = () if single else shape[:-1]
    with kernel_progress("odeint", verbose) as bar:
        ys, y_last, raw = _core.odeint_stiff(rhs, y, times, method=method, rtol=rtol, atol=atol, dt=dt,
                                             max_steps=max_steps, jac=jac, args=args, progress=bar,
                                             dense=dense_output)
    ys = ys.reshape((len(times),) + shape)
    # per-sample counters of the samples' shape (0-d for a single state), as odeint's are
    for key in ("nfev", "njev", "nlu", "accepted", "rejected", "n_out", "t", "status_code"):
        raw[key] = np.asarray(raw[key]).reshape(batch_shape)
    info = ode._samples_info(raw, ())
    for key in ("njev", "nlu"):
        info[key] = raw[key][()]
    info["total"].update(njev=int(raw["njev_total"]), nlu=int(raw["nlu_total"]), jac_calls=int(raw["jac_calls"]))
    if method == "auto":
        _auto_info(raw, info, batch_shape)
    if on_failure == "raise":
        ode._raise_failed(raw, info, times, ys, y_last.reshape(shape), method, max_steps)
    out = [ys]
    if return_info or on_failure == "status":
        out.append(info)
    if dense_output:
        out.append(ode.OdeSolution(method, raw, times, shape, ys.dtype))
    return out[0] if len(out) == 1 else tuple(out)


def _auto_info(raw, info, batch_shape):
    """The automatic method's per-sample record: its switches, the method it ended with, and
    the accepted steps and evaluations of each method."""
    explicit, implicit = (str(m) for m in _core.TABLES["ode_auto_methods"])
    for key in ("switches", "accepted_implicit", "nfev_implicit"):
        raw[key] = np.asarray(raw[key]).reshape(batch_shape)
    names = np.array(raw["method"], dtype=object)
    info["switches"] = raw["switches"][()]
    info["method"] = str(names[0]) if not batch_shape else names.reshape(batch_shape)
    info["accepted_by_method"] = {explicit: (raw["accepted"] - raw["accepted_implicit"])[()],
                                  implicit: raw["accepted_implicit"][()]}
    info["nfev_by_method"] = {explicit: (raw["nfev"] - raw["nfev_implicit"])[()], implicit: raw["nfev_implicit"][()]}
    info["total"]["phases"] = int(raw["phases"])
