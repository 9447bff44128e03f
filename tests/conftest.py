"""Shared fixtures and helpers of the test suite.

- ``reference`` (tests/reference.py) is importable from every test module.
- Hypothesis runs a small, deterministic profile: the suite must stay well under a minute on
  two cores, and a property test that flickers between runs is worse than none.
- ``layouts`` turns one array into the memory layouts a caller may hand us (docs/models.md §0: any
  layout in, never written to), each holding the same values.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "neurodyn",
        max_examples=30,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    settings.load_profile("neurodyn")
except ImportError:  # hypothesis is a test extra; the property tests importorskip it
    pass


LAYOUTS = ("C", "F", "strided", "readonly", "byteswapped")


def as_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The values of ``a`` in the given memory layout.

    C: a fresh C-contiguous copy. F: Fortran order. strided: every other element of a
    larger buffer along the last axis (non-contiguous, positive strides). readonly: a
    C-contiguous copy with the write flag off. byteswapped: non-native byte order.
    """
    a = np.asarray(a)
    if layout == "C":
        return np.ascontiguousarray(a).copy()
    if layout == "F":
        out = np.asfortranarray(a.copy())
        return out
    if layout == "strided":
        if a.ndim == 0:
            return a.copy()
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "readonly":
        out = np.array(a, copy=True)
        out.setflags(write=False)
        return out
    if layout == "byteswapped":
        return a.astype(a.dtype.newbyteorder())
    raise ValueError(layout)


@pytest.fixture
def set_threads():
    """nd.set_num_threads for a test to call; the count it found is restored after the test."""
    import neurodyn as nd

    before = nd.get_num_threads()
    yield nd.set_num_threads
    nd.set_num_threads(before)


@pytest.fixture
def rng():
    """A fixed-seed generator: every test sees the same numbers on every run."""
    return np.random.default_rng(20240611)

