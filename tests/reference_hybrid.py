"""Pure-NumPy twin of the hybrid energy models and target systems (docs/models.md §11).

Written from the definitions, not from the kernels: the energy by its formula, its gradient
by forward accumulation of the layers' Jacobians (the kernels use a reverse recursion), the
port matrices by their definitions, the systems by their equations. float64 throughout.
"""
import numpy as np


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def potential(act, g, beta, p):
    """F(g) summed over the last axis."""
    if act == "softmax":
        m = np.max(beta * g, axis=-1, keepdims=True)
        return (m[..., 0] + np.log(np.sum(np.exp(beta * g - m), axis=-1))) / beta
    if act == "tanh":
        return np.sum(np.log(np.cosh(beta * g)), axis=-1) / beta
    if act == "sigmoid":
        return np.sum(_softplus(beta * g), axis=-1) / beta
    if act == "polynomial":
        return np.sum(_softplus(g) ** p, axis=-1) / p
    if act == "relu_power":
        return np.sum(np.maximum(g, 0) ** p, axis=-1) / p
    if act == "quadratic":
        return 0.5 * np.sum(g * g, axis=-1)
    if act == "hardtanh":
        a = np.abs(g)
        return np.sum(np.where(a <= 1, 0.5 * g * g, a - 0.5), axis=-1)
    if act == "relu":
        return 0.5 * np.sum(np.maximum(g, 0) ** 2, axis=-1)
    raise ValueError(act)


def activation(act, g, beta, p):
    """psi(g) = grad F(g) and its Jacobian d psi / d g, shape (..., n, n)."""
    n = g.shape[-1]
    eye = np.eye(n)
    if act == "softmax":
        e = np.exp(beta * g - np.max(beta * g, axis=-1, keepdims=True))
        s = e / np.sum(e, axis=-1, keepdims=True)
        return s, beta * (s[..., :, None] * eye - s[..., :, None] * s[..., None, :])
    if act == "tanh":
        t = np.tanh(beta * g)
        psi, d = t, beta * (1 - t * t)
    elif act == "sigmoid":
        s = _sigmoid(beta * g)
        psi, d = s, beta * s * (1 - s)
    elif act == "polynomial":
        sp, sg = _softplus(g), _sigmoid(g)
        psi = sp ** (p - 1) * sg
        d = (p - 1) * sp ** (p - 2) * sg * sg + sp ** (p - 1) * sg * (1 - sg)
    elif act == "relu_power":
        r = np.maximum(g, 0)
        psi, d = r ** (p - 1), np.where(g > 0, (p - 1) * r ** (p - 2), 0.0)
    elif act == "quadratic":
        psi, d = g, np.ones_like(g)
    elif act == "hardtanh":
        psi, d = np.clip(g, -1, 1), (np.abs(g) < 1).astype(float)
    elif act == "relu":
        psi, d = np.maximum(g, 0), (g > 0).astype(float)
    else:
        raise ValueError(act)
    return psi, d[..., :, None] * eye


def _layers(params, config):
    L = len(config["hidden_sizes"])
    return [(np.asarray(params[f"hidden{l + 1}.kernel"], float), np.asarray(params[f"hidden{l + 1}.bias"], float),
             config["activations"][l]) for l in range(L)]


def energy(params, config, z):
    """H(z) for rows z (B, d)."""
    z = np.asarray(z, float)
    beta, p = config["beta"], config["power"]
    H = 0.5 * np.sum(z * z, axis=-1) - z @ np.asarray(params["visible.bias"], float)
    a = z
    for K, b, act in _layers(params, config):
        g = a @ K
        H -= potential(act, g, beta, p) + g @ b
        a, _ = activation(act, g, beta, p)
    return H


def energy_grad(params, config, z):
    """grad H by forward accumulation: dg_h/dz = dg_{h-1}/dz . D_{h-1} . K_h."""
    z = np.asarray(z, float)
    beta, p = config["beta"], config["power"]
    B, d = z.shape
    grad = z - np.asarray(params["visible.bias"], float)
    a, da = z, np.broadcast_to(np.eye(d), (B, d, d))  # da[b] = d a / d z, (d, n)
    for K, b, act in _layers(params, config):
        g = a @ K
        dg = da @ K  # (B, d, n): column j is d g_j / d z
        psi, D = activation(act, g, beta, p)
        grad -= np.einsum("bdn,bn->bd", dg, psi + b)
        a, da = psi, dg @ D
    return grad


def port_matrices(params, d):
    A = np.zeros((d, d))
    A[np.triu_indices(d, 1)] = params["port.A"]
    L = np.zeros((d, d))
    L[np.tril_indices(d)] = params["port.L"]
    L[np.diag_indices(d)] = np.exp(np.diag(L))
    return A - A.T, L @ L.T


def field(params, config, z, u=None):
    """The model's field at rows z; u (B, m) or None."""
    g = energy_grad(params, config, z)
    if config["form"] == "gradient":
        return -g
    J, R = port_matrices(params, config["d"])
    out = g @ (J - R).T
    if u is not None:
        out = out + np.asarray(u, float) @ np.asarray(params["port.G"], float).T
    return out


# ---- target systems --------------------------------------------------------------------------

def multiwell(z, centres, depths, width, gamma, omega):
    z = np.asarray(z, float)
    diff = z[:, None, :] - centres[None]
    e = depths * np.exp(-np.sum(diff ** 2, axis=-1) / (2 * width ** 2))
    gv = z + np.einsum("bk,bkd->bd", e, diff) / width ** 2
    s = np.sin(omega * z)
    return -(gv + gamma * s * np.sum(s * gv, axis=-1, keepdims=True))


def ring(z, radius, rotation):
    z = np.asarray(z, float)
    out = -(np.sum(z * z, axis=-1, keepdims=True) - radius ** 2) * z
    out[:, 0] -= rotation * z[:, 1]
    out[:, 1] += rotation * z[:, 0]
    return out


def duffing(z, alpha, cubic, delta):
    q, p = z[:, 0], z[:, 1]
    return np.stack([p, -delta * p - alpha * q - cubic * q ** 3], axis=-1)
