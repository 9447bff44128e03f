"""Slow pure-NumPy twin of the SDE solvers, written from the textbooks and docs/models.md §8.

Itô SDEs dy = f(t, y) dt + g(t, y) dW integrated over fixed steps with given Brownian
increments (the ones ``nd.sdeint(..., return_brownian=True)`` returns), so the twin and the C
kernel can be compared on the same path:

- Euler–Maruyama: y + h f + g dW (Kloeden & Platen 1992, §10.2);
- Milstein for diagonal noise: + 1/2 g dg/dy (dW^2 - h) (K&P §10.3), with the derivative
  given, or Platen's derivative-free form (g(ybar) - g) (dW^2 - h) / (2 sqrt h),
  ybar = y + h f + g sqrt h (K&P §11.1);
- Rößler's SRA1 for additive noise (SIAM J. Numer. Anal. 48(3), 2010), which also needs
  I_(1,0) = int (W(s) - W(t)) ds over each step.

Also the tools of the order tests: exact Brownian functionals of fine paths summed to coarse
steps. Nothing here imports neurodyn.
"""
from __future__ import annotations

import math

import numpy as np


def step_grid(t, dt):
    """(ts, te, h) of every step: between consecutive output times
    n = max(1, round_half_away((t1 - t0) / dt)) steps of h = (t1 - t0) / n, the last ending on t1."""
    steps = []
    for j in range(1, len(t)):
        t0, span = float(t[j - 1]), float(t[j]) - float(t[j - 1])
        q = math.floor(abs(span) / dt + 0.5)  # half away from zero for a positive ratio
        n = max(1, int(q))
        h = span / n
        for s in range(n):
            te = float(t[j]) if s == n - 1 else t0 + (s + 1) * h
            steps.append((t0 + s * h, te, h, j if s == n - 1 else None))
    return steps


def sdeint(f, g, y0, t, dt, dW, dZ=None, *, noise="diagonal", method="euler_maruyama", dg=None,
           dtype=np.float64):
    """Integrate over the grid of ``step_grid(t, dt)`` with increments ``dW`` of shape
    ``(steps,) + batch + (m,)`` (``dZ`` the same shape, for sra). Returns ``(len(t),) + y0.shape``.

    ``g(t, y)`` returns ``y.shape`` (diagonal, additive) or ``y.shape + (m,)`` (general);
    ``dg(t, y)`` returns dg_i/dy_i for milstein (None: the derivative-free form).
    """
    y = np.array(y0, dtype=dtype)
    dW = np.asarray(dW, dtype=dtype)
    out = [y.copy()]
    g_start = None
    for k, (ts, te, h, row) in enumerate(step_grid(t, dt)):
        w = dW[k]
        hh = dtype(h)
        fy = f(ts, y)
        if method == "euler_maruyama":
            gy = g(ts, y)
            noise_term = np.einsum("...ij,...j->...i", gy, w) if noise == "general" else gy * w
            y = y + hh * fy + noise_term
        elif method == "milstein":
            gy = g(ts, y)
            if noise == "additive":
                y = y + hh * fy + gy * w
            elif dg is not None:
                y = y + hh * fy + gy * w + dtype(0.5) * gy * dg(ts, y) * (w * w - hh)
            else:
                sh = dtype(math.sqrt(h))
                gbar = g(ts, y + hh * fy + gy * sh)
                y = y + hh * fy + gy * w + (gbar - gy) * (w * w - hh) * dtype(0.5 / math.sqrt(h))
        elif method == "sra":
            chi = np.asarray(dZ[k], dtype=dtype) * dtype(1.0 / h)
            g0 = g(ts, y) if g_start is None else g_start
            g1 = g(te, y)
            y2 = y + dtype(0.75 * h) * fy + dtype(1.5) * chi * g1
            f2 = f(ts + 0.75 * h, y2)
            y = y + (dtype(h / 3) * fy + dtype(2 * h / 3) * f2) + g1 * w + chi * (g0 - g1)
            g_start = g1
        else:
            raise ValueError(method)
        y = np.asarray(y, dtype=dtype)
        if row is not None:
            out.append(y.copy())
    return np.stack(out)


def brownian_pairs(rng, steps, h, shape):
    """Exact (dW, I_(1,0)) of ``steps`` steps of size h: jointly Gaussian with variances h and
    h^3 / 3 and covariance h^2 / 2."""
    xi1 = rng.standard_normal((steps,) + tuple(shape))
    xi2 = rng.standard_normal((steps,) + tuple(shape))
    dW = math.sqrt(h) * xi1
    dZ = 0.5 * h ** 1.5 * (xi1 + xi2 / math.sqrt(3.0))
    return dW, dZ


def coarsen(dW, dZ, h, factor):
    """The (dW, I_(1,0)) of steps ``factor`` times longer on the same path: increments add up,
    and over a coarse step I_(1,0) = sum_i [(W(s_i) - W(t)) h + I_(1,0),i] for its fine steps i."""
    steps = dW.shape[0] // factor
    w = dW[: steps * factor].reshape((steps, factor) + dW.shape[1:])
    z = dZ[: steps * factor].reshape((steps, factor) + dZ.shape[1:])
    before = np.cumsum(w, axis=1) - w  # W(s_i) - W(t) at the start of fine step i
    return w.sum(axis=1), (before * h + z).sum(axis=1)
