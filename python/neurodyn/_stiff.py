"""The implicit methods of :func:`neurodyn.odeint` (``method="radau"`` and ``"bdf"``).

Every index over the leading axes of ``y0`` is its own stiff problem with its own step size,
Jacobian, LU factors and counters (docs/models.md §8); the C kernels (csrc/nd_ode_stiff.h)
check the arguments and report which one broke which rule.
"""
from __future__ import annotations

from . import _core
from .fields import Field
from .training import kernel_progress

#: Names of the implicit methods, from the kernels' table.
STIFF_METHODS = _core.TABLES["stiff_methods"]
_DEFAULTS = _core.DEFAULTS["odeint_stiff"]


def odeint_stiff(f, y0, t, *, method, rtol, atol, dt, max_steps, jac, args, return_info, verbose):
    """:func:`neurodyn.odeint` for ``method`` in :data:`STIFF_METHODS`; see its docstring."""
    if isinstance(f, Field):
        if args:
            raise TypeError("args are passed to a callable f only; a built-in field takes none")
        rhs = f._spec()
    elif callable(f):
        rhs = f
    else:
        raise TypeError(f"f must be callable or a neurodyn.fields field, got {type(f).__name__}")
    step = _DEFAULTS["dt"] if dt is None else dt
    with kernel_progress("odeint", verbose) as bar:
        ys, info = _core.odeint_stiff(rhs, y0, t, method=method, rtol=rtol, atol=atol, dt=step,
                                      max_steps=max_steps, jac=jac, args=args, progress=bar)
    return (ys, info) if return_info else ys
