"""Argument checks of meaning shared by every family (names, ranges, options).

Memory-level checks (dtype, layout, sizes) live in the C binding; these turn a bad option
into an exception that names the argument and the value before any kernel runs.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def choice(name: str, value, options: tuple[str, ...]) -> int:
    """Index of ``value`` in ``options``; ValueError naming the options otherwise."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, options))}")
    return options.index(value)


def real(name: str, value, *, minimum: float | None = None, strict: bool = False,
         allow_inf: bool = False) -> float:
    """A finite real number (not a bool), optionally bounded below."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (v < minimum or (strict and v == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value!r}")
    return v


def integer(name: str, value, *, minimum: int | None = None) -> int:
    """An integer (not a bool), optionally bounded below."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if v > 2**62:
        raise ValueError(f"{name}={v} is too large")
    return v


def float_dtype(name: str, *values) -> np.dtype:
    """The computing dtype of one or more inputs: float32 when every array input is float32
    (or a narrower float), float64 otherwise. Python scalars do not widen (as in NumPy);
    integer and bool arrays count as float64; complex, object and other kinds raise a
    TypeError naming the argument."""
    strong: list[np.dtype] = []
    for v in values:
        if isinstance(v, (bool, int, float)) and not isinstance(v, np.generic):
            continue
        dt = np.asarray(v).dtype
        if dt.kind == "f" and dt.itemsize <= 4:
            strong.append(np.dtype(np.float32))
        elif (dt.kind == "f" and dt.itemsize == 8) or dt.kind in "biu":
            strong.append(np.dtype(np.float64))
        else:
            raise TypeError(f"{name} has dtype {dt}; neurodyn computes in float32 or float64")
    if strong and all(d == np.float32 for d in strong):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def real_array(name: str, value, dtype=None, *, finite: bool = True) -> np.ndarray:
    """``value`` as a C-contiguous float array: of ``dtype`` when given, else float32 for
    float16/float32 input and float64 otherwise (integers and bools as in NumPy arithmetic).
    Complex, object and string values raise TypeError; NaN or inf raise ValueError when
    ``finite``. A non-contiguous input is copied, so an absurd broadcast view fails at once
    (MemoryError) rather than being reduced over for minutes. The input is never modified."""
    natural = float_dtype(name, value)  # refuses complex, object and strings before any cast
    target = natural if dtype is None else np.dtype(dtype)
    arr = np.asarray(value, dtype=target, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def times(name: str, t) -> np.ndarray:
    """Output times: a 1-D float64 array, finite, strictly monotonic, at least one entry."""
    arr = np.asarray(t)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a 1-D array with at least one time, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if arr.size > 1:
        d = np.diff(arr)
        if not (np.all(d > 0) or np.all(d < 0)):
            i = int(np.flatnonzero(d * np.sign(d[0]) <= 0)[0]) if d[0] != 0 else 0
            raise ValueError(f"{name} must be strictly increasing or strictly decreasing; "
                             f"{name}[{i + 1}]={arr[i + 1]!r} follows {name}[{i}]={arr[i]!r}")
    return arr


class FrozenArrays:
    """Base of objects whose array attributes are read-only (built-in fields and energies):
    pickle rebuilds arrays writable, so unpickling freezes them again."""

    def __setstate__(self, state):
        self.__dict__.update(state)
        for value in state.values():
            for arr in value if isinstance(value, (list, tuple)) else (value,):  # an MLP's layer lists
                if isinstance(arr, np.ndarray):
                    arr.setflags(write=False)
