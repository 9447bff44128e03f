"""Slow pure-NumPy twins of the ODE kernels, written from the textbooks and docs/models.md §1.

The C core is tested against these: the fixed-step integrators (euler, midpoint, classic
rk4 with the round-half-away step rule), Dormand–Prince 5(4) with the step-size rules of
the spec, and the three built-in vector fields. Everything computes in float64 (or the dtype
asked for) with plain loops over steps, so the code reads like the formulas it implements.

Nothing here imports neurodyn: a twin that shared code with the library could not catch
the library's mistakes.
"""
from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------
# Vector fields: f(t, y) on the last axis of y, any leading axes a batch.
# ---------------------------------------------------------------------------------------


def linear(A, b=None):
    """dy/dt = A y + b, acting on the last axis (rows of a batch are states)."""
    A = np.asarray(A, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)

    def f(t, y):
        dy = np.einsum("ij,...j->...i", A, y)
        return dy if b is None else dy + b

    return f


def lorenz(sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """The Lorenz (1963) system on states of shape (..., 3)."""

    def f(t, y):
        x0, x1, x2 = y[..., 0], y[..., 1], y[..., 2]
        return np.stack([sigma * (x1 - x0), x0 * (rho - x2) - x1, x0 * x1 - beta * x2], axis=-1)

    return f


def _softplus(x):
    # log(1 + e^x) without overflow for large x.
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # the identity avoids exp overflow


ACTIVATIONS = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "silu": lambda x: x * _sigmoid(x),
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "softplus": _softplus,
}


def mlp(weights, biases=None, activation="tanh", final_activation="identity"):
    """Dense layers y = x W + b (W of shape [in, out]) with an activation after each."""
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    if biases is None:
        biases = [None] * len(weights)
    biases = [None if b is None else np.asarray(b, dtype=np.float64) for b in biases]
    acts = [ACTIVATIONS[activation]] * (len(weights) - 1) + [ACTIVATIONS[final_activation]]

    def f(t, y):
        h = np.asarray(y, dtype=np.float64)
        for w, b, act in zip(weights, biases, acts):
            h = h @ w
            if b is not None:
                h = h + b
            h = act(h)
        return h

    return f


# ---------------------------------------------------------------------------------------
# Fixed-step integrators
# ---------------------------------------------------------------------------------------


def round_half_away(q: float) -> int:
    """Round to nearest, ties away from zero (Python's round() ties to even: 2.5 -> 2)."""
    fl = math.floor(q)
    return int(fl) + (1 if q - fl >= 0.5 else 0)


def substeps(span: float, dt: float | None) -> int:
    """Steps between two output times: max(1, round-half-away(|span| / dt)); docs/models.md §1."""
    if dt is None:
        return 1
    return max(1, round_half_away(abs(span) / dt))


def euler_step(f, t, y, h, args=()):
    return y + h * f(t, y, *args)


def midpoint_step(f, t, y, h, args=()):
    k1 = f(t, y, *args)
    k2 = f(t + 0.5 * h, y + h * (0.5 * k1), *args)
    return y + h * k2


def rk4_step(f, t, y, h, args=()):
    """Classic Runge–Kutta (Kutta 1901): weights 1/6, 2/6, 2/6, 1/6."""
    k1 = f(t, y, *args)
    k2 = f(t + 0.5 * h, y + h * (0.5 * k1), *args)
    k3 = f(t + 0.5 * h, y + h * (0.5 * k2), *args)
    k4 = f(t + h, y + h * k3, *args)
    return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


FIXED_STEPS = {"euler": euler_step, "midpoint": midpoint_step, "rk4": rk4_step}
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}


def odeint_fixed(f, y0, t, method, dt=None, args=(), dtype=np.float64):
    """Integrate with a fixed-step method; returns (ys, steps) with steps a list of (t, h).

    Stage times are t0 + s * h (not accumulated), as the spec asks, so a time-dependent f
    sees the same times as in the C core.
    """
    step = FIXED_STEPS[method]
    t = np.asarray(t, dtype=np.float64)
    y = np.array(y0, dtype=dtype, copy=True)
    ys = [y.copy()]
    taken = []
    for j in range(1, len(t)):
        t0, span = float(t[j - 1]), float(t[j] - t[j - 1])
        m = substeps(span, dt)
        h = span / m
        for s in range(m):
            ts = t0 + s * h
            y = np.asarray(step(f, ts, y, h, args), dtype=dtype)
            taken.append((ts, h))
        ys.append(y.copy())
    return np.stack(ys), np.array(taken, dtype=np.float64).reshape(-1, 2)


# ---------------------------------------------------------------------------------------
# Dormand–Prince 5(4)
# ---------------------------------------------------------------------------------------

# Dormand & Prince (1980), RK5(4)7M; the 7th stage is the slope at the 5th-order solution
# (first same as last).
DP_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1])
DP_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
DP_B5 = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
DP_B4 = np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])
# Hairer's continuous extension (dopri5.f, CONTD5): the coefficients of the 4th-order
# dense output, used in Hairer's nested form rather than as Shampine's polynomial matrix so
# that the library's interpolant is checked against a different formulation.
DP_D = np.array([-12715105075 / 11282082432, 0, 87487479700 / 32700410799,
                 -10690763975 / 1880347072, 701980252875 / 199316789632,
                 -1453857185 / 822651844, 69997945 / 29380423])


def _rms(v):
    v = np.asarray(v, dtype=np.float64).ravel()
    return float(np.sqrt(np.mean(v * v))) if v.size else 0.0


def initial_step(f, t0, y0, f0, direction, span, rtol, atol, args=()):
    """Hairer, Nørsett & Wanner, Solving ODEs I, §II.4 (the RMS form, order 4 + 1)."""
    scale = atol + rtol * np.abs(y0)
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = f(t0 + direction * h0, y0 + direction * h0 * f0, *args)
    d2 = _rms((f1 - f0) / scale) / h0
    dmax = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if dmax <= 1e-15 else (0.01 / dmax) ** (1 / 5)
    return min(100 * h0, h1, span)


def dense_output(y, y_new, k, h, theta):
    """Hairer's CONTD5 at fraction theta of a step from y (slopes k[0..6], signed h)."""
    r1 = y
    r2 = y_new - y
    r3 = h * k[0] - r2
    r4 = r2 - h * k[6] - r3
    r5 = h * sum(DP_D[j] * k[j] for j in range(7))
    th1 = 1.0 - theta
    return r1 + theta * (r2 + th1 * (r3 + theta * (r4 + th1 * r5)))


def odeint_dopri5(f, y0, t, rtol=1e-3, atol=1e-6, dt=None, args=(), max_steps=10_000):
    """Adaptive DOPRI5 with the control law of docs/models.md §1; returns (ys, info).

    info holds nfev, accepted, rejected and steps [(t, signed h)], so the library's step
    sequence can be compared with this one step by step.
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.array(y0, dtype=np.float64, copy=True)
    ys = np.empty((len(t),) + y.shape)
    ys[0] = y
    info = {"nfev": 0, "accepted": 0, "rejected": 0, "steps": []}
    if len(t) == 1:
        return ys, info

    def fe(tt, yy):
        info["nfev"] += 1
        return np.asarray(f(tt, yy, *args), dtype=np.float64)

    t_end = float(t[-1])
    direction = 1.0 if t_end > t[0] else -1.0
    tc = float(t[0])
    k0 = fe(tc, y)
    if dt is None:
        h = initial_step(fe, tc, y, k0, direction, abs(t_end - tc), rtol, atol)
    else:
        h = float(dt)
    n_out = 1
    while n_out < len(t):
        if info["accepted"] + info["rejected"] >= max_steps:
            raise RuntimeError("max_steps")
        last = h >= abs(t_end - tc)
        if last:
            h = abs(t_end - tc)
        hs = direction * h
        k = [k0]
        for s in range(1, 6):
            ys_arg = y + hs * sum(a * kj for a, kj in zip(DP_A[s], k))
            ts = t_end if (last and s == 5) else tc + DP_C[s] * hs
            k.append(fe(ts, ys_arg))
        y5 = y + hs * sum(DP_B5[j] * k[j] for j in range(6))
        t_new = t_end if last else tc + hs
        k.append(fe(t_new, y5))
        err_vec = hs * sum((DP_B5[j] - DP_B4[j]) * k[j] for j in range(7))
        err = _rms(err_vec / (atol + rtol * np.maximum(np.abs(y), np.abs(y5))))
        if err <= 1.0:
            while n_out < len(t) and (t[n_out] - (tc + hs)) * direction <= 0:
                theta = (t[n_out] - tc) / hs
                ys[n_out] = y5 if theta >= 1 else dense_output(y, y5, k, hs, theta)
                n_out += 1
            info["steps"].append((tc, hs))
            info["accepted"] += 1
            tc, y, k0 = t_new, y5, k[6]
            h *= 10.0 if err == 0 else min(10.0, max(0.2, 0.9 * err ** -0.2))
        else:
            info["rejected"] += 1
            h *= max(0.2, 0.9 * err ** -0.25)
    info["steps"] = np.array(info["steps"], dtype=np.float64).reshape(-1, 2)
    return ys, info


# ---------------------------------------------------------------------------------------
# LTC relaxation
# ---------------------------------------------------------------------------------------


def solve_ltc(x, a, tau, solver="exact", steps=1):
    """dx/ds = (a - x) / tau over s in [0, 1], elementwise (the fixed-step solvers only)."""
    x, a, tau = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, a, tau)))
    if solver == "exact":
        return a + (x - a) * np.exp(-1.0 / tau)
    f = lambda s, y: (a - y) / tau  # noqa: E731
    ys, _ = odeint_fixed(f, x, [0.0, 1.0], solver, dt=1.0 / steps)
    return ys[-1]
