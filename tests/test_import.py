"""Importing neurodyn in odd environments."""
from __future__ import annotations

import os
import subprocess
import sys


def _run(code, **env):
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_an_invalid_thread_count_warns_instead_of_failing_the_import():
    """OMP_NUM_THREADS=abc: a RuntimeWarning naming it, one thread, and the next variable still
    counts (OpenBLAS and NumPy carry on over such a value too)."""
    out = _run("import neurodyn as nd; print(nd.get_num_threads())", OMP_NUM_THREADS="abc",
               OPENBLAS_NUM_THREADS="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert "RuntimeWarning" in out.stderr and "OMP_NUM_THREADS='abc'" in out.stderr
    out = _run("import neurodyn as nd; print(nd.get_num_threads())", OMP_NUM_THREADS="many",
               OPENBLAS_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_a_valid_thread_count_is_taken_silently():
    out = _run("import neurodyn as nd; print(nd.get_num_threads())", OMP_NUM_THREADS="2")
    assert out.returncode == 0 and out.stdout.strip() == "2"
    assert "RuntimeWarning" not in out.stderr
