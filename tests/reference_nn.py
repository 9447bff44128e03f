"""Slow pure-NumPy twins of the neural-network layers, the optimisers and the NeuralODE
forward pass, written from the formulas in docs/models.md (§0 notation, §2) and the papers.

The C kernels are tested against these. Everything is computed in float64 with the
plainest NumPy that states the formula, so a reader can check the twin against the paper
rather than against the library. Nothing here imports neurodyn: a twin that shared code
with the library could not catch the library's mistakes.
"""
from __future__ import annotations

import numpy as np

LAYERNORM_EPS = 1e-5


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


def dense(x, kernel, bias=None):
    """y = x W + b with W of shape [in, out] (docs/models.md notation)."""
    y = _f64(x) @ _f64(kernel)
    return y if bias is None else y + _f64(bias)


def layernorm(x, gamma, beta, eps=LAYERNORM_EPS):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last axis, biased variance
    (Ba, Kiros & Hinton 2016, eq. 4)."""
    x = _f64(x)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * _f64(gamma) + _f64(beta)


def _sigmoid(x):
    # 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0: no exp overflows, and the tail
    # for large negative x keeps full relative accuracy (0.5 (1 + tanh(x/2)) rounds it to 0).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


ACTIVATIONS = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "silu": lambda x: x * _sigmoid(x),
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "softplus": lambda x: np.logaddexp(0.0, x),  # log(1 + e^x) without overflow
}


def activation(name, x):
    return ACTIVATIONS[name](_f64(x))


def swiglu(gate, up):
    """silu(gate) * up (Shazeer 2020, the GLU variant with the Swish gate)."""
    g = _f64(gate)
    return g * _sigmoid(g) * _f64(up)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def mse(pred, target):
    """Mean of the squared error over every element."""
    return float(np.mean((_f64(pred) - _f64(target)) ** 2))


def cross_entropy(logits, labels):
    """Mean over rows of -log softmax(logits)[label], via log-sum-exp (stable for any
    finite logits)."""
    z = _f64(logits)
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    labels = np.asarray(labels)
    return float(np.mean(lse - z[np.arange(z.shape[0]), labels]))


def cross_entropy_grad(logits, labels):
    """(softmax(z) - onehot(label)) / rows, the analytic gradient of the mean CE."""
    z = _f64(logits)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(z.shape[0]), np.asarray(labels)] -= 1.0
    return p / z.shape[0]


# ---------------------------------------------------------------------------------------
# Optimisers, hand-written from the papers
# ---------------------------------------------------------------------------------------


class AdamRef:
    """Adam (Kingma & Ba 2015, Algorithm 1) with decoupled weight decay (Loshchilov &
    Hutter 2019, Algorithm 2 with the schedule multiplier 1):
    p <- p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)."""

    def __init__(self, lr, beta1, beta2, eps, weight_decay=0.0):
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, beta1, beta2, eps, weight_decay
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        self.t += 1
        for name, g in grads.items():
            g = _f64(g)
            m = self.m.get(name, np.zeros_like(g))
            v = self.v.get(name, np.zeros_like(g))
            m = self.b1 * m + (1 - self.b1) * g
            v = self.b2 * v + (1 - self.b2) * g**2
            self.m[name], self.v[name] = m, v
            m_hat = m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            p = _f64(params[name])
            params[name] = p - self.lr * (m_hat / (np.sqrt(v_hat) + self.eps) + self.wd * p)


class SGDRef:
    """SGD with heavy-ball momentum in the PyTorch convention: v <- mu v + g; p <- p - lr v."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.mu = lr, momentum
        self.vel = {}

    def step(self, params, grads):
        for name, g in grads.items():
            v = self.mu * self.vel.get(name, 0.0) + _f64(g)
            self.vel[name] = v
            params[name] = _f64(params[name]) - self.lr * v


# ---------------------------------------------------------------------------------------
# NeuralODE forward (docs/models.md §2), with its own fixed-step integrators
# ---------------------------------------------------------------------------------------


def node_field(params):
    """f(h) = tanh(Dense2(silu(Dense1(h)))), the autonomous dynamics of docs/models.md §2."""
    w1, b1 = _f64(params["dynamics_dense1.kernel"]), _f64(params["dynamics_dense1.bias"])
    w2, b2 = _f64(params["dynamics_dense2.kernel"]), _f64(params["dynamics_dense2.bias"])

    def f(h):
        a = h @ w1 + b1
        return np.tanh((a * _sigmoid(a)) @ w2 + b2)

    return f


def fixed_step(f, h, solver, n, dt):
    """n steps of size dt of the explicit Euler, explicit midpoint or classic RK4 method
    (Hairer, Nørsett & Wanner I, tables II.1.1-II.1.2) for the autonomous field f."""
    for _ in range(n):
        if solver == "euler":
            h = h + dt * f(h)
        elif solver == "midpoint":
            h = h + dt * f(h + 0.5 * dt * f(h))
        elif solver == "rk4":
            k1 = f(h)
            k2 = f(h + 0.5 * dt * k1)
            k3 = f(h + 0.5 * dt * k2)
            k4 = f(h + dt * k3)
            h = h + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        else:
            raise ValueError(solver)
    return h


def node_project(params, x):
    """h0: input_proj(x) when the model has that layer, x itself otherwise."""
    if "input_proj.kernel" in params:
        return dense(x, params["input_proj.kernel"], params["input_proj.bias"])
    return _f64(x)


def node_head(params, h):
    """output_norm, then output_proj when the model has it."""
    z = layernorm(h, params["output_norm.gamma"], params["output_norm.beta"])
    if "output_proj.kernel" in params:
        z = dense(z, params["output_proj.kernel"], params["output_proj.bias"])
    return z


def node_forward(params, x, solver, num_steps, step_size):
    """The NeuralODE output at t = num_steps * step_size for a fixed-step solver."""
    h = fixed_step(node_field(params), node_project(params, x), solver, num_steps, step_size)
    return node_head(params, h)


# ---------------------------------------------------------------------------------------
# Finite differences and error measures
# ---------------------------------------------------------------------------------------


def central_difference(f, arrays, eps=1e-6):
    """d f / d a for every entry of every array in ``arrays`` (modified in place and
    restored), by the central difference (f(a + eps) - f(a - eps)) / (2 eps): truncation
    error O(eps^2), round-off O(1e-16 / eps), about 1e-10 relative in float64."""
    out = []
    for a in arrays:
        g = np.empty(a.shape, dtype=np.float64)
        flat = a.reshape(-1)  # a view: the arrays are contiguous
        assert np.shares_memory(flat, a)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            fp = f()
            flat[i] = old - eps
            fm = f()
            flat[i] = old
            g.flat[i] = (fp - fm) / (2 * eps)
        out.append(g)
    return out


def rel_err(a, b):
    """Normwise relative difference ||a - b|| / max(||a||, ||b||) (0 when both are 0)."""
    a, b = _f64(a).ravel(), _f64(b).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)
