"""Pure-NumPy twins of the memories family, written from docs/models.md §9 and §10 and the
papers, not from the C kernels.

Everything is float64 and dense: W is formed as an N x N matrix, eigenvalues come from
numpy.linalg.eigvalsh on N x N matrices, trajectories from a plain Euler loop. That is the
independent route the tests compare the rank-(P+1), byte-pattern C kernels against.

- Firing-rate memories: Betteti, Baggio, Bullo, Zampieri (Neural Computation 2025).
- IDP Hopfield networks: Betteti, Baggio, Bullo, Zampieri (Science Advances 2025).
"""
from __future__ import annotations

import numpy as np


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---- activations ------------------------------------------------------------------------------

def phi(act, gain, thr, x):
    x = _f64(x)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-4.0 * gain * (x - thr - 1.0 / (2.0 * gain))))
    if act == "rectified_tanh":
        return np.where(x >= thr, np.tanh(gain * (x - thr)), 0.0)
    if act == "tanh":
        return np.tanh(gain * x)
    return np.clip(x, -1.0, 1.0)


def dphi(act, gain, thr, x):
    x = _f64(x)
    f = phi(act, gain, thr, x)
    if act == "sigmoid":
        return 4.0 * gain * f * (1.0 - f)
    if act == "rectified_tanh":
        return np.where(x > thr, gain * (1.0 - f * f), 0.0)
    if act == "tanh":
        return gain * (1.0 - f * f)
    return ((x > -1) & (x < 1)).astype(np.float64)


def int_phi_inv(act, gain, thr, r):
    """int_0^r phi^-1(s) ds by adaptive quadrature (scipy.integrate.quad) of phi^-1 written out,
    a route independent of the closed forms: for the sigmoid phi^-1(s) = thr + 1/(2 gain) +
    logit(s)/(4 gain), for the rectified tanh thr + atanh(s)/gain (integrable log singularities
    at the ends)."""
    from scipy.integrate import quad

    def inv(s):
        if act == "sigmoid":
            return thr + 1.0 / (2.0 * gain) + np.log(s / (1 - s)) / (4.0 * gain)
        return thr + np.arctanh(s) / gain

    import warnings

    from scipy.integrate import IntegrationWarning

    warnings.simplefilter("ignore", IntegrationWarning)  # the log singularities; accuracy is checked
    r = _f64(r)
    out = np.empty_like(r)
    for idx, rv in np.ndenumerate(r):
        # split at 1/2 so each piece has one log singularity at an end, which quad's
        # extrapolation handles
        mid = min(rv, 0.5)
        out[idx] = quad(inv, 0.0, mid, epsabs=1e-14, epsrel=1e-13, limit=200)[0] if rv > 0 else 0.0
        if rv > 0.5:
            out[idx] += quad(inv, 0.5, rv, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
    return out


# ---- the firing-rate design (§9) --------------------------------------------------------------

def balanced(N, q):
    """The exactly balanced deterministic set, built from its definition."""
    P = int(np.floor(1 + 1 / q + 1e-9))
    nc, na = round(q * q * N), round(q * N)
    X = np.zeros((P, N))
    X[:, :nc] = 1
    for m in range(P):
        s = nc + m * (na - nc)
        X[m, s:s + na - nc] = 1
    return X


def design(a, b, q, r, act, gain, thr):
    pa, pb = phi(act, gain, thr, a), phi(act, gain, thr, b)
    dp = pb - pa
    alpha = (b - a) / (q * (1 - r) * dp)
    beta = q * ((1 - r) * pa + r * pb) / ((1 - q) * pa + q * pb)
    gamma = ((1 - beta) * a + beta * b) / ((1 - q) * pa + q * pb)
    return float(alpha), float(beta), float(gamma)


def rate_weights(X, alpha, beta, gamma):
    """W = (alpha/N)(Xi - beta)(Xi - beta)^T + (gamma/N) 1 1^T, dense, Xi = X^T (N x P)."""
    X = _f64(X)
    N = X.shape[1]
    Y = X.T - beta
    return alpha / N * (Y @ Y.T) + gamma / N


def lambda_max_dense(X, a, b, q, r, act, gain, thr, mu):
    """The largest eigenvalue of -I + D^1/2 W D^1/2 at memory mu's target, N x N eigvalsh."""
    alpha, beta, gamma = design(a, b, q, r, act, gain, thr)
    W = rate_weights(X, alpha, beta, gamma)
    xs = a + (b - a) * _f64(X[mu])
    d = np.sqrt(dphi(act, gain, thr, xs))
    return float(np.linalg.eigvalsh(d[:, None] * W * d[None, :])[-1] - 1.0)


def rate_rhs(W, act, gain, thr, r, u=0.0, tau=1.0):
    return (-r + phi(act, gain, thr, r @ W.T + u)) / tau


def current_rhs(W, act, gain, thr, x, u=0.0, tau=1.0):
    return (-x + phi(act, gain, thr, x) @ W.T + u) / tau


def rate_energy(W, act, gain, thr, r, u=0.0):
    r = _f64(r)
    return (-0.5 * np.einsum("bi,ij,bj->b", r, W, r) - r @ np.broadcast_to(_f64(u), r.shape[-1:])
            + int_phi_inv(act, gain, thr, r).sum(axis=-1))


# ---- Hopfield networks (§10) --------------------------------------------------------------------

def idp_weights(X, alpha, zero_diagonal=False):
    """W(alpha) = (1/N) Xi diag(alpha) Xi^T, dense."""
    X = _f64(X)
    W = X.T @ np.diag(_f64(alpha)) @ X / X.shape[1]
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W


def hopfield_rhs(W, act, gain, x, u=0.0, tau=1.0):
    return (-x + phi(act, gain, 0.0, x) @ W.T + u) / tau


def hopfield_energy(W, act, gain, x, u=0.0):
    """-1/2 psi^T W psi + x^T psi - sum int_0^x psi - u^T psi, the integrals written out."""
    x = _f64(x)
    p = phi(act, gain, 0.0, x)
    if act == "tanh":
        integral = np.log(np.cosh(gain * x)) / gain
    else:
        integral = np.where(np.abs(x) <= 1, x * x / 2, np.abs(x) - 0.5)
    return (-0.5 * np.einsum("bi,ij,bj->b", p, W, p) + (x * p).sum(-1) - integral.sum(-1)
            - p @ np.broadcast_to(_f64(u), x.shape[-1:]))


def euler(rhs, y0, dt, n_steps):
    """A plain Euler loop."""
    y = _f64(y0).copy()
    for _ in range(n_steps):
        y = y + dt * rhs(y)
    return y


def sylvester(N):
    """The Sylvester-Hadamard matrix of order N (a power of 2), by doubling."""
    H = np.array([[1.0]])
    while H.shape[0] < N:
        H = np.block([[H, H], [H, -H]])
    return H
