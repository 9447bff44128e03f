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
