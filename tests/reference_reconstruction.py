"""Pure-NumPy twins for the reconstruction tests: the NeuralODE field and its Jacobian-vector
product, and Benettin's estimate of the largest Lyapunov exponent (docs/models.md §13)."""
from __future__ import annotations

import numpy as np


def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))


class MLPField:
    """``f(h) = tanh(silu(h W1 + b1) W2 + b2)``, the NeuralODE's dynamics, in float64."""

    def __init__(self, model):
        p = model.params
        self.W1, self.b1 = p["dynamics_dense1.kernel"].astype(float), p["dynamics_dense1.bias"].astype(float)
        self.W2, self.b2 = p["dynamics_dense2.kernel"].astype(float), p["dynamics_dense2.bias"].astype(float)

    def __call__(self, h):
        u = h @ self.W1 + self.b1
        return np.tanh((u * _sigmoid(u)) @ self.W2 + self.b2)

    def jvp(self, h, v):
        """f(h) and J(h) v, analytically: silu'(u) = s (1 + u (1 - s)), tanh' = 1 - tanh^2."""
        u = h @ self.W1 + self.b1
        s = _sigmoid(u)
        f = np.tanh((u * s) @ self.W2 + self.b2)
        return f, (1.0 - f ** 2) * (((s * (1.0 + u * (1.0 - s))) * (v @ self.W1)) @ self.W2)


def largest_lyapunov(field, h0, *, dt, n_steps, n_transient=0, renorm_every=10, seed=0):
    """Benettin et al. (1980): the mean log growth rate of one tangent vector carried with the
    variational equation dv/dt = J(h) v (RK4 on the joint system), renormalised every
    ``renorm_every`` steps. ``field.jvp(h, v) -> (f(h), J(h) v)``; h0 of shape (..., n) gives
    one estimate per state."""
    h = np.array(h0, dtype=float)
    f = lambda h: field.jvp(h, np.zeros_like(h))[0]  # noqa: E731
    for _ in range(n_transient):
        k1 = f(h); k2 = f(h + 0.5 * dt * k1); k3 = f(h + 0.5 * dt * k2); k4 = f(h + dt * k3)
        h = h + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    v = np.random.default_rng(seed).normal(size=h.shape)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    total = np.zeros(h.shape[:-1])
    for step in range(1, n_steps + 1):
        f1, g1 = field.jvp(h, v)
        f2, g2 = field.jvp(h + 0.5 * dt * f1, v + 0.5 * dt * g1)
        f3, g3 = field.jvp(h + 0.5 * dt * f2, v + 0.5 * dt * g2)
        f4, g4 = field.jvp(h + dt * f3, v + dt * g3)
        h = h + dt / 6 * (f1 + 2 * f2 + 2 * f3 + f4)
        v = v + dt / 6 * (g1 + 2 * g2 + 2 * g3 + g4)
        if step % renorm_every == 0 or step == n_steps:
            norm = np.linalg.norm(v, axis=-1)
            total += np.log(norm)
            v /= norm[..., None]
    return total / (n_steps * dt)


class LorenzField:
    """Lorenz (1963) with its Jacobian-vector product, for checking the estimator."""

    def __init__(self, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
        self.sigma, self.rho, self.beta = sigma, rho, beta

    def jvp(self, y, v):
        x, yy, z = y[..., 0], y[..., 1], y[..., 2]
        a, b, c = v[..., 0], v[..., 1], v[..., 2]
        f = np.stack([self.sigma * (yy - x), x * (self.rho - z) - yy, x * yy - self.beta * z], axis=-1)
        jv = np.stack([self.sigma * (b - a), (self.rho - z) * a - b - x * c, yy * a + x * b - self.beta * c], axis=-1)
        return f, jv


# ---- the measures, one trajectory at a time (docs/models.md §13.1-13.3) --------------------------


def _batch(a):
    a = np.asarray(a, dtype=float)
    return (a, True) if a.ndim == 3 else (a[None], False)


def valid_prediction_time(y_true, y_pred, *, dt=1.0, threshold=0.4):
    a, batched = _batch(y_true)
    b, _ = _batch(y_pred)
    out = []
    for u, v in zip(a, b):
        s = u.std(axis=0)
        s[s == 0] = 1.0
        k = 0
        while k < len(u) and np.sqrt(np.mean(((v[k] - u[k]) / s) ** 2)) <= threshold:
            k += 1
        out.append(k * dt)
    return np.array(out) if batched else out[0]


def binned_kl(y_true, y_pred, *, bins=30, smoothing=1e-6):
    a, batched = _batch(y_true)
    b, _ = _batch(y_pred)
    out = []
    for u, v in zip(a, b):
        s = u.std(axis=0)
        s[s == 0] = 1.0
        u, v = u / s, v / s
        lo, hi = u.min(axis=0), u.max(axis=0)
        pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
        width = (hi - lo + 2 * pad) / bins
        lo = lo - pad

        def density(x):
            counts = {}
            for point in x:
                cell = tuple(int(min(max(np.floor((point[i] - lo[i]) / width[i]), 0), bins - 1))
                             for i in range(len(point)))
                counts[cell] = counts.get(cell, 0) + 1
            n_cells = bins ** x.shape[1]
            total = 1.0 + smoothing * n_cells
            return {c: (n / len(x) + smoothing) / total for c, n in counts.items()}, smoothing / total

        p, p_empty = density(u)
        q, q_empty = density(v)
        # cells neither visits add p_empty log(p_empty / q_empty) = 0
        out.append(sum(p.get(c, p_empty) * np.log(p.get(c, p_empty) / q.get(c, q_empty)) for c in set(p) | set(q)))
    return np.array(out) if batched else out[0]


def power_spectrum_distance(y_true, y_pred, *, smoothing=2.0):
    a, batched = _batch(y_true)
    b, _ = _batch(y_pred)

    def spectrum(x):
        sd = x.std()
        z = (x - x.mean()) / (sd if sd > 0 else 1.0)
        power = np.abs(np.fft.rfft(z)[1:]) ** 2
        if smoothing > 0:
            r = int(np.ceil(4 * smoothing))
            kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / smoothing) ** 2)
            kernel /= kernel.sum()
            padded = np.pad(power, r, mode="reflect" if len(power) > r else "edge")
            power = np.convolve(padded, kernel, mode="valid")
        return power / power.sum() if power.sum() > 0 else np.full(len(power), 1.0 / len(power))

    out = []
    for u, v in zip(a, b):
        h = [np.sqrt(min(0.5 * np.sum((np.sqrt(spectrum(u[:, i])) - np.sqrt(spectrum(v[:, i]))) ** 2), 1.0))
             for i in range(u.shape[1])]
        out.append(np.mean(h))
    return np.array(out) if batched else out[0]
