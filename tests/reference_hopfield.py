"""Pure-NumPy twins of the Hopfield family, written from the papers and docs/models.md §4, not from
the C kernels.

Everything is computed in float64 on whole matrices (no tiling, no online softmax): the
point is an independent route to the same numbers, so a shared mistake is unlikely.

- Modern Hopfield retrieval: Ramsauer et al. (2020), "Hopfield Networks is All You Need",
  eq. (3) update xi <- Y^T softmax(beta Y xi), eq. (2) energy, Theorem 3 separation bound.
- Classical Hopfield network: Hopfield (1982); Hebbian and projection (pseudo-inverse,
  Personnaz et al. 1985 / Kanter & Sompolinsky 1987) storage.
"""
from __future__ import annotations

import math

import numpy as np

LAYERNORM_EPS = 1e-5


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---- softmax and retrieval -----------------------------------------------------------------

def logsumexp_rows(s):
    """log sum_j exp(s_ij) per row, shifted by the row max so that nothing overflows."""
    s = _f64(s)
    m = s.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]


def softmax_rows(s):
    s = _f64(s)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def retrieve(Q, Y, beta, V=None):
    """(softmax(beta Q Y^T) V, logsumexp(beta Q Y^T)) with V = Y by default."""
    Q, Y = _f64(Q), _f64(Y)
    V = Y if V is None else _f64(V)
    S = beta * (Q @ Y.T)
    return softmax_rows(S) @ V, logsumexp_rows(S)


def retrieve_iterated(Q, Y, beta, steps=1, tol=None):
    """``steps`` updates xi <- softmax(beta xi Y^T) Y; with tol, stop after the first update
    whose largest absolute change is below tol (docs/models.md §4)."""
    xi = _f64(Q)
    for _ in range(steps):
        new, _ = retrieve(xi, Y, beta)
        change = np.max(np.abs(new - xi), initial=0.0)
        xi = new
        if tol is not None and change < tol:
            break
    return xi


def retrieve_backward(Q, K, V, beta, dout, dlse=None):
    """Gradients of L = <dout, out> + <dlse, lse> with out = softmax(S) V, lse = logsumexp(S),
    S = beta Q K^T. Returns (dQ, dK, dV, dbeta); with V None the values are K, and dV is folded
    into dK (the kernel's convention) and returned as None.

    Derivation: dL/dP = dout V^T; softmax Jacobian per row gives dS = P * (dP - sum_j P dP);
    the lse term adds dlse_i P_ij; dQ = beta dS K, dK = beta dS^T Q, dbeta = sum dS * (Q K^T).
    """
    Q, K = _f64(Q), _f64(K)
    shared = V is None
    Vm = K if shared else _f64(V)
    G = Q @ K.T
    P = softmax_rows(beta * G)
    dout = _f64(dout)
    dP = dout @ Vm.T
    dS = P * (dP - (P * dP).sum(axis=1, keepdims=True))
    if dlse is not None:
        dS = dS + _f64(dlse)[:, None] * P
    dQ = beta * dS @ K
    dK = beta * dS.T @ Q
    dV = P.T @ dout
    dbeta = float(np.sum(dS * G))
    if shared:
        return dQ, dK + dV, None, dbeta
    return dQ, dK, dV, dbeta


# ---- energies ---------------------------------------------------------------------------

def energy_edifice(Q, Y, beta):
    """Edifice's energy: -logsumexp(beta xi . y_i)."""
    return -logsumexp_rows(beta * (_f64(Q) @ _f64(Y).T))


def energy_full(Q, Y, beta):
    """Ramsauer eq. (2): -lse(beta, Y xi) / beta + xi.xi / 2 + log(N) / beta + M^2 / 2."""
    Q, Y = _f64(Q), _f64(Y)
    M = np.sqrt((Y * Y).sum(axis=1).max())
    return (-logsumexp_rows(beta * (Q @ Y.T)) / beta + 0.5 * (Q * Q).sum(axis=1)
            + math.log(Y.shape[0]) / beta + 0.5 * M * M)


# ---- separation (Theorem 3) ------------------------------------------------------------------

def separation_delta(Y):
    """Delta_i = y_i.y_i - max_{j != i} y_i.y_j, by explicit loops over pairs."""
    Y = _f64(Y)
    N = Y.shape[0]
    delta = np.empty(N)
    for i in range(N):
        others = [Y[i] @ Y[j] for j in range(N) if j != i]
        delta[i] = Y[i] @ Y[i] - max(others)
    return delta


def separation_bound(beta, N, M):
    """Right-hand side of Theorem 3: 2 / (beta N) + log(2 (N - 1) N beta M^2) / beta."""
    return 2.0 / (beta * N) + math.log(2.0 * (N - 1) * N * beta * M * M) / beta


def separation_beta_min(delta_min, N, M):
    """The beta above which Theorem 3 holds for good.

    Write the bound as g(b) = (a + log(c b)) / b with a = 2/N, c = 2 (N-1) N M^2. It tends to
    -inf as b -> 0 (the log goes negative: an artefact, no retrieval happens there), peaks at
    b* = e^(1-a) / c with g(b*) = c e^(a-1) > 2 M^2 >= Delta, then falls to 0. So the inequality
    holds on [beta_min, inf) with beta_min the crossing on the falling branch, found here by
    bisection in log space.
    """
    if not delta_min > 0 or M == 0:
        return math.inf
    a, c = 2.0 / N, 2.0 * (N - 1) * N * M * M
    lo = math.exp(1 - a) / c
    hi = lo
    while separation_bound(hi, N, M) > delta_min:
        hi *= 2.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if separation_bound(mid, N, M) > delta_min:
            lo = mid
        else:
            hi = mid
    return hi


# ---- models ----------------------------------------------------------------------------

def dense(x, params, name):
    return _f64(x) @ _f64(params[f"{name}.kernel"]) + _f64(params[f"{name}.bias"])


def layernorm(x, params, name, eps=LAYERNORM_EPS):
    x = _f64(x)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * _f64(params[f"{name}.gamma"]) + _f64(params[f"{name}.beta"])


def hopfield_layer(x, params, prefix, beta):
    """Dense query projection, then retrieval from the layer's own patterns."""
    q = dense(x, params, f"{prefix}_query_proj")
    return retrieve(q, params[f"{prefix}_patterns"], beta)[0]


def hopfield_model(x, params, beta):
    return hopfield_layer(x, params, "hopfield", beta)


def associative_memory(x, params, *, beta, num_heads, num_layers):
    """Eval-mode forward (no dropout) of docs/models.md §4's AssociativeMemory."""
    h = layernorm(dense(x, params, "input_proj"), params, "input_norm")
    for l in range(1, num_layers + 1):
        heads = []
        for k in range(1, num_heads + 1):
            name = f"layer_{l}_head_{k}"
            heads.append(hopfield_layer(dense(h, params, f"{name}_proj"), params, name, beta))
        o = dense(np.concatenate(heads, axis=1), params, f"layer_{l}_out_proj")
        h = layernorm(h + o, params, f"layer_{l}_norm")
    if "output.kernel" in params:
        return dense(h, params, "output")
    return h


# ---- classical network -------------------------------------------------------------------

def hebbian_weights(P):
    """W_ij = (1/n) sum_mu p_i^mu p_j^mu, W_ii = 0."""
    P = _f64(P)
    n = P.shape[1]
    W = np.zeros((n, n))
    for p in P:
        W += np.outer(p, p)
    W /= n
    np.fill_diagonal(W, 0.0)
    return W


def pseudoinverse_weights(P):
    """Projection onto the span of the patterns (via an SVD), diagonal zeroed."""
    P = _f64(P)
    U, s, _ = np.linalg.svd(P.T, full_matrices=False)
    U = U[:, s > s.max() * max(P.shape) * np.finfo(float).eps]
    W = U @ U.T
    np.fill_diagonal(W, 0.0)
    return W


def classical_energy(W, X):
    X = _f64(np.atleast_2d(X))
    return -0.5 * np.array([x @ W @ x for x in X])


def _sign_keep(h, x):
    # the documented tie-break: a field of exactly 0 leaves the neuron as it is
    return 1.0 if h > 0 else (-1.0 if h < 0 else x)


def sync_step(W, X):
    X = _f64(X)
    H = X @ W.T
    return np.where(H > 0, 1.0, np.where(H < 0, -1.0, X))


def async_sweep(W, x, order, energies=None):
    """One asynchronous sweep of a single state in the given neuron order; when ``energies``
    is a list, the energy after every single-neuron update is appended to it."""
    x = _f64(x).copy()
    for i in order:
        x[i] = _sign_keep(float(W[i] @ x), x[i])
        if energies is not None:
            energies.append(-0.5 * x @ W @ x)
    return x
