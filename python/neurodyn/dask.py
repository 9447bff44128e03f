"""Scale-out on Dask: the batched kernels over the chunks of a :mod:`dask.array`.

Every function here takes a dask array (or a NumPy array, wrapped into one) chunked along
its batch axis, builds one task per chunk that runs the ordinary single-process kernel on
that chunk, and returns a lazy dask array chunked the same way. Call ``.compute()`` (or
``dask.compute`` on several results at once) to run it; with a ``dask.distributed``
``Client`` the chunks run on the cluster's workers.

Shared inputs (a vector field, an energy or model, a pattern matrix) enter the graph once,
as one key, so each worker receives them once rather than once per chunk.

Results are the bits of the single-process call on the whole batch:

* :func:`odeint` with every method: each trajectory is integrated on its own (the adaptive
  methods control every sample's step separately, docs/models.md §8), so chunking changes
  nothing. (``coupled=True`` makes a chunk one system: then a chunked run is the
  single-process call per chunk.)
* :func:`langevin_sample` with a seed: each chain draws the noise of its index in the whole
  ensemble, so chunking changes nothing.
* :func:`lif_run` and :func:`hopfield_retrieve` (rows are independent).

Kernels built on a matrix product (the ``MLP`` field, an ``EBM`` energy) are the exception:
OpenBLAS may round the last rows of a GEMM call differently from the same rows inside a larger
call, so those rows can differ from the single-process call by an ulp per evaluation (the
chains and trajectories still get the same starts and the same noise). The built-in analytic
fields and energies (``Lorenz``, ``Linear``, ``Quadratic``, ``DoubleWell``, ...) are exact.

Importing this module needs ``dask[array]``; ``import neurodyn`` does not.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import dask
import dask.array as da

from . import _checks
from .ebm import _LANGEVIN, EBM, _energy_target, _langevin
from .encode import seed_key
from ._typing import Seed
from .ebm import EnergyLike
from .fields import Field
from .hopfield import _BETA
from .hopfield import hopfield_retrieve as _hopfield_retrieve
from .ode import odeint as _odeint
from .snn import lif_run as _lif_run

__all__ = ["hopfield_retrieve", "langevin_sample", "lif_run", "odeint"]

#: Chunks of the batch axis: a size, a tuple of sizes or "auto" (None: as the input comes).
Chunks = Union[int, tuple[int, ...], str, None]
#: An array given to the functions: a dask array (its chunks are kept) or anything NumPy takes.
DaskArrayLike = Union[da.Array, ArrayLike]


def _as_dask(x: DaskArrayLike, name: str, ndim: int, batch_axis: int, chunks: Chunks = None) -> da.Array:
    """x as a dask array of ndim axes, split along batch_axis only (other axes one chunk)."""
    if isinstance(x, da.Array):
        arr = x if chunks is None else x.rechunk({batch_axis: chunks})
    else:
        a = np.asarray(x)
        if a.ndim != ndim:
            raise ValueError(f"{name} must have {ndim} axes, got shape {a.shape}")
        spec: list[int | str | tuple[int, ...]] = [-1] * ndim
        spec[batch_axis] = "auto" if chunks is None else chunks
        arr = da.from_array(a, chunks=tuple(spec))
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    if any(np.isnan(s) for s in arr.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call compute_chunk_sizes() first")
    whole = {ax: -1 for ax in range(ndim) if ax != batch_axis and arr.numblocks[ax] != 1}
    return arr.rechunk(whole) if whole else arr


def _float_dtype(dtype):
    """The dtype a kernel computes in for input of this dtype: float32 and float64 stay."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _blocks(arr, batch_axis):
    """The Delayed chunks of arr along batch_axis (the other axes being one chunk each)."""
    index = [0] * arr.ndim
    index[batch_axis] = slice(None)
    return list(arr.to_delayed()[tuple(index)])


def _gather(parts, rows, shape, dtype, batch_axis):
    """One dask array from Delayed chunk results; shape(r) is the shape of an r-row chunk."""
    arrays = [da.from_delayed(p, shape=shape(r), dtype=dtype) for p, r in zip(parts, rows)]
    return arrays[0] if len(arrays) == 1 else da.concatenate(arrays, axis=batch_axis)


def _shared(obj):
    """obj as one key of the graph (sent to a worker once, not with every chunk)."""
    return dask.delayed(obj, pure=True, traverse=False)


def _ode_block(field, y0, t, kw):
    return _odeint(field, y0, t, verbose=False, **kw)  # no bars on the workers' stderr


def odeint(field: Field | Callable[..., ArrayLike], y0: DaskArrayLike, t: ArrayLike, *, chunks: Chunks = None,
           **kw: Any) -> da.Array:
    """:func:`neurodyn.odeint` over an ensemble, one task per chunk of initial states.

    Parameters
    ----------
    field : neurodyn.fields.Field or callable
        The vector field. A built-in field (``nd.fields.Lorenz``, ``Linear``, ``MLP``) pickles
        in a few hundred bytes plus its parameters and runs entirely in C; a callable must be
        picklable by cloudpickle.
    y0 : dask.array.Array or array_like, shape (batch, dim)
        Initial states, chunked along ``batch`` (the state axis is made one chunk). A NumPy
        array is wrapped with ``chunks`` rows per chunk (default ``"auto"``).
    t : array_like of float, shape (T,)
        Output times, as for :func:`neurodyn.odeint`.
    chunks : int, tuple or "auto", optional
        Rechunk ``y0`` along the batch to this before integrating.
    **kw
        ``method``, ``rtol``, ``atol``, ``dt``, ``max_steps``, ``args`` of
        :func:`neurodyn.odeint` (``return_info``, ``events`` and ``dense_output`` are not
        available here). The result equals the single-process call bit for bit (see the
        module notes).

    Returns
    -------
    ys : dask.array.Array, shape (T, batch, dim)
        Lazy; ``ys[i]`` is the state at ``t[i]``, chunked along ``batch`` as ``y0``. The dtype
        is that of ``y0`` (float32 or float64; others become float64).

    Raises
    ------
    TypeError
        ``return_info`` given. Errors of the integration itself (``IntegrationError``,
        ``ValueError``) are raised by ``compute()``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, neurodyn as nd
    >>> y0 = da.from_array(np.random.default_rng(0).normal(size=(1000, 3)), chunks=(250, 3))
    >>> ys = nd.dask.odeint(nd.fields.Lorenz(), y0, np.linspace(0, 1, 11), method="rk4", dt=0.01)
    >>> ys.shape, ys.chunks[1]
    ((11, 1000, 3), (250, 250, 250, 250))
    >>> bool(np.array_equal(ys.compute(), nd.odeint(nd.fields.Lorenz(), y0.compute(),
    ...                     np.linspace(0, 1, 11), method="rk4", dt=0.01)))
    True
    """
    if kw.pop("return_info", False):
        raise TypeError("return_info is not available with nd.dask.odeint")
    kw.pop("verbose", None)
    if not (isinstance(field, Field) or callable(field)):
        raise TypeError(f"field must be callable or a neurodyn.fields field, got {type(field).__name__}")
    times = _checks.times("t", t)
    y0 = _as_dask(y0, "y0", 2, 0, chunks)
    if isinstance(field, Field) and y0.shape[1] != field.dim:
        raise ValueError(f"y0 has {y0.shape[1]} state variables, the field {field.dim}")
    f, ts, opts = _shared(field), _shared(times), _shared(dict(kw))
    rows = y0.chunks[0]
    parts = [dask.delayed(_ode_block, pure=True)(f, b, ts, opts) for b in _blocks(y0, 0)]
    dim = y0.shape[1]
    return _gather(parts, rows, lambda r: (len(times), r, dim), _float_dtype(y0.dtype), 1)


def _lif_block(currents, v0, kw):
    s, m = _lif_run(currents, v0=v0, **kw)
    return s, m


def lif_run(currents: DaskArrayLike, *, v0: DaskArrayLike | None = None, chunks: Chunks = None,
            **kw: Any) -> tuple[da.Array, da.Array | None]:
    """:func:`neurodyn.lif_run` over a batch, one task per chunk of the batch axis.

    Parameters
    ----------
    currents : dask.array.Array or array_like, shape (T, B, n)
        Input currents, time first, chunked along ``B`` (time and neurons are made one chunk).
    v0 : dask.array.Array or array_like, shape (B, n), optional
        Initial membranes, rechunked to match ``currents`` along ``B``.
    chunks : int, tuple or "auto", optional
        Rechunk the batch axis to this first.
    **kw
        ``tau``, ``beta``, ``threshold``, ``reset``, ``reset_delay`` of :func:`neurodyn.lif_run`.

    Returns
    -------
    spikes, membrane : dask.array.Array, shape (T, B, n)
        Lazy, chunked along ``B``; equal bit for bit to the single-process call. Both come
        from the same tasks, so compute them together (``dask.compute(spikes, membrane)``).

    Examples
    --------
    >>> import numpy as np, dask, dask.array as da, neurodyn as nd
    >>> I = da.from_array(np.random.default_rng(0).uniform(0, 1, (20, 64, 8)), chunks=(20, 16, 8))
    >>> s, v = nd.dask.lif_run(I, beta=0.9)
    >>> s, v = dask.compute(s, v)
    >>> ref_s, ref_v = nd.lif_run(np.asarray(I), beta=0.9)
    >>> bool(np.array_equal(s, ref_s) and np.array_equal(v, ref_v))
    True
    """
    currents = _as_dask(currents, "currents", 3, 1, chunks)
    T, B, n = currents.shape
    rows = currents.chunks[1]
    blocks = _blocks(currents, 1)
    if v0 is None:
        starts = [None] * len(blocks)
    else:
        start = _as_dask(v0, "v0", 2, 0)
        if start.shape != (B, n):
            raise ValueError(f"v0 must have shape ({B}, {n}), got {start.shape}")
        starts = _blocks(start.rechunk({0: rows}), 0)
    opts = _shared(dict(kw))
    parts = [dask.delayed(_lif_block, pure=True, nout=2)(b, v, opts) for b, v in zip(blocks, starts)]
    dtype = _float_dtype(currents.dtype)
    shape = lambda r: (T, r, n)  # noqa: E731
    spikes = _gather([p[0] for p in parts], rows, shape, dtype, 1)
    membrane = _gather([p[1] for p in parts], rows, shape, dtype, 1)
    return spikes, membrane


_HOPFIELD_ROWS = 128  # the retrieval kernel's row tile (ND_HOPFIELD_ROWS in csrc/nd_hopfield.h)


def _aligned(rows, multiple):
    """Chunk sizes near rows whose boundaries are moved up to multiples of `multiple` (the last
    chunk takes the remainder)."""
    total, ends, end = sum(rows), [], 0
    for r in rows:
        end += r
        cut = min(total, -(-end // multiple) * multiple)
        if not ends or cut > ends[-1]:
            ends.append(cut)
    ends[-1] = total
    return tuple(int(b - a) for a, b in zip([0] + ends[:-1], ends) if b > a)


def _hopfield_block(queries, patterns, beta, values, steps):
    return _hopfield_retrieve(queries, patterns, beta, values, steps=steps)


def hopfield_retrieve(queries: DaskArrayLike, patterns: ArrayLike, beta: float = _BETA,
                      values: ArrayLike | None = None, *, steps: int = 1, chunks: Chunks = None) -> da.Array:
    """:func:`neurodyn.hopfield_retrieve` for a large query set, one task per chunk of rows.

    Parameters
    ----------
    queries : dask.array.Array or array_like, shape (B, d)
        Queries, chunked along ``B`` (the feature axis is made one chunk).
    patterns : array_like, shape (N, d)
        Stored patterns, shared by every chunk (sent once to each worker).
    beta : float
        Inverse temperature (> 0).
    values : array_like, shape (N, dv), optional
        What is read out (default: the patterns).
    steps : int
        Number of updates (``values`` must be None for more than one). The ``tol`` early stop
        of :func:`neurodyn.hopfield_retrieve` looks at every query at once, so it is not
        offered here.
    chunks : int, tuple or "auto", optional
        Rechunk the queries along ``B`` to this first. Chunk boundaries are then moved up to
        a multiple of 128 rows (the kernel's tile), which keeps the result exact.

    Returns
    -------
    dask.array.Array, shape (B, dv)
        Lazy, chunked along ``B`` (on multiples of 128 rows), dtype of the queries; equal bit
        for bit to the single-process call.

    Examples
    --------
    >>> import numpy as np, dask.array as da, neurodyn as nd
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(50, 16))
    >>> Q = da.from_array(Y[rng.integers(0, 50, 4000)] + 0.1 * rng.normal(size=(4000, 16)), chunks=1000)
    >>> out = nd.dask.hopfield_retrieve(Q, Y, beta=8.0)
    >>> out.shape, out.chunks[0]
    ((4000, 16), (1024, 1024, 1024, 928))
    >>> bool(np.array_equal(out.compute(), nd.hopfield_retrieve(Q.compute(), Y, beta=8.0)))
    True
    """
    beta = _checks.real("beta", beta, minimum=0.0, strict=True)
    steps = _checks.integer("steps", steps, minimum=1)
    if values is not None and steps > 1:
        raise ValueError("iterating (steps > 1) needs values=None: the update maps patterns to patterns")
    q = _as_dask(queries, "queries", 2, 0, chunks)
    # The kernel works in tiles of 128 rows, and a row's rounding can depend on its place in a
    # tile: chunk boundaries on multiples of 128 keep every row where the whole-batch call puts it.
    rows = _aligned(q.chunks[0], _HOPFIELD_ROWS)
    if rows != q.chunks[0]:
        q = q.rechunk({0: rows})
    P = np.asarray(patterns)
    if P.ndim != 2 or P.shape[1] != q.shape[1]:
        raise ValueError(f"patterns must have shape (N, {q.shape[1]}), got {P.shape}")
    V = None if values is None else np.asarray(values)
    if V is not None and (V.ndim != 2 or V.shape[0] != P.shape[0]):
        raise ValueError(f"values must have shape ({P.shape[0]}, dv), got {V.shape}")
    dv = P.shape[1] if V is None else V.shape[1]
    Ps, Vs = _shared(P), _shared(V)
    rows = q.chunks[0]
    parts = [dask.delayed(_hopfield_block, pure=True)(b, Ps, beta, Vs, steps) for b in _blocks(q, 0)]
    return _gather(parts, rows, lambda r: (r, dv), _float_dtype(q.dtype), 0)


def _uniform_start(key, first, n, dim, dtype):
    """Rows [first, first + n) of the U[-1, 1) starting states langevin_sample draws for an
    integer x0 (the generator advanced past the rows before them)."""
    gen = np.random.default_rng(key ^ 0x5DEECE66D)
    gen.bit_generator.advance(first * dim)  # one 64-bit draw per double
    return gen.uniform(-1.0, 1.0, size=(n, dim)).astype(dtype)


def _langevin_block(energy, x0, kw, first, total, start):
    if x0 is None:
        x0 = _uniform_start(kw["key"], first, start[0], start[1], start[2])
    return _langevin(energy, x0, **kw, seed=None, return_info=False, chain0=first, chains=total)


def langevin_sample(energy: EnergyLike, x0: DaskArrayLike | int, *, seed: Seed = None, chunks: Chunks = None,
                    steps: int = _LANGEVIN["steps"], step_size: float = _LANGEVIN["step_size"],
                    noise_scale: float = _LANGEVIN["noise_scale"], clamp: tuple[float, float] | None = None,
                    grad_clip: float | None = None, mala: bool = False, dtype: DTypeLike | None = None) -> da.Array:
    """:func:`neurodyn.langevin_sample` over many chains, one task per chunk of chains.

    Each chain draws the noise of its index in the whole ensemble (counter-based Philox keyed
    by the seed), so the result equals the single-process call with the same seed bit for
    bit, however the chains are chunked (for an ``EBM`` energy, up to the GEMM rounding noted
    in the module notes).

    Parameters
    ----------
    energy : EBM or neurodyn.energies energy (or a picklable callable)
        Shared by every chunk (sent once to each worker).
    x0 : dask.array.Array, array_like of shape (chains, d), or int
        Starting states chunked along the chains, or a number of chains started from
        U[-1, 1) exactly as :func:`neurodyn.langevin_sample` draws them (each task draws its
        own rows; nothing of size ``chains`` is made on the client).
    seed : int or numpy.random.Generator
        Drawn from once here, as by the single-process call; ``None`` draws a fresh key,
        still shared by every chunk.
    chunks : int, tuple or "auto", optional
        Chains per chunk; needed when ``x0`` is an int (default ``"auto"``, about 128 MiB).
    steps, step_size, noise_scale, clamp, grad_clip, mala, dtype
        As for :func:`neurodyn.langevin_sample`.

    Returns
    -------
    dask.array.Array, shape (chains, d)
        Lazy, chunked along the chains.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> E = nd.energies.DoubleWell(barrier=2.0, dim=2)
    >>> x = nd.dask.langevin_sample(E, 10_000, chunks=2500, seed=7, steps=50, step_size=0.01, noise_scale=1.0)
    >>> x.shape, x.numblocks
    ((10000, 2), (4, 1))
    >>> ref = nd.langevin_sample(E, 10_000, seed=7, steps=50, step_size=0.01, noise_scale=1.0)
    >>> bool(np.array_equal(x.compute(), ref))
    True
    """
    _, dim = _energy_target(energy)
    key = seed_key(seed)
    kw = {"steps": steps, "step_size": step_size, "noise_scale": noise_scale, "clamp": clamp,
          "grad_clip": grad_clip, "mala": mala, "key": key, "dtype": dtype}
    model_dtype = energy.dtype if isinstance(energy, EBM) else None
    if isinstance(x0, (int, np.integer)) and not isinstance(x0, bool):
        total = _checks.integer("x0", x0, minimum=1)
        if dim is None:
            raise ValueError("x0 as a number of chains needs an energy that knows its dimension")
        out_dtype = np.dtype(dtype if dtype is not None else (model_dtype if model_dtype is not None else np.float64))
        rows = da.core.normalize_chunks(("auto" if chunks is None else chunks, dim), (total, dim),
                                        dtype=out_dtype)[0]
        blocks: list[Any] = [None] * len(rows)  # each chunk's starting states (None: drawn in the task)
        starts: list[tuple[int, int, np.dtype] | None] = [(r, dim, out_dtype) for r in rows]
    else:
        arr = _as_dask(x0, "x0", 2, 0, chunks)
        total, d = arr.shape
        if dim is not None and d != dim:
            raise ValueError(f"x0 has dimension {d}, the energy {dim}")
        dim = d
        if dtype is not None:
            out_dtype = np.dtype(dtype)
        else:
            out_dtype = model_dtype if model_dtype is not None else _float_dtype(arr.dtype)
        rows = arr.chunks[0]
        blocks = _blocks(arr, 0)
        starts = [None] * len(rows)
    firsts = np.concatenate([[0], np.cumsum(rows)[:-1]]).tolist()
    e, opts = _shared(energy), _shared(kw)
    parts = [dask.delayed(_langevin_block, pure=True)(e, b, opts, int(f), total, s)
             for b, f, s in zip(blocks, firsts, starts)]
    return _gather(parts, rows, lambda r: (r, dim), out_dtype, 0)
