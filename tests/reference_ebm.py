"""Pure-NumPy twins of the energy-based family (docs/models.md §7), written from the papers and the
documented semantics, not from the C kernels.

- Philox4x32-10: Salmon, Moraes, Dror & Shaw (2011), "Parallel random numbers: as easy as
  1, 2, 3", with the Random123 round constants; checked against Random123's published
  known-answer vectors in the tests before anything else relies on it.
- Uniforms: 53 bits from two 32-bit words; normals: Box-Muller (both normals of a block) on the two
  uniforms of block k >> 1, so normal k is a pure function of (seed, stream, k).
- Langevin: x <- x - (eta/2) g + sqrt(eta) s eps (the unadjusted Langevin algorithm, a
  Euler-Maruyama step of dx = -grad(E/s^2) dt + sqrt(2) dW with dt = eta s^2 / 2).
- MALA: Roberts & Tweedie (1996), Metropolis-Hastings with the Gaussian proposal
  N(x - (eta/2) g, eta s^2 I) and target exp(-E/s^2).

Everything is float64 and vectorised over whole arrays (no loops over chains), so the twin
shares no code path with the kernels.
"""
from __future__ import annotations

import math

import numpy as np

# Random123's Philox4x32 multipliers and Weyl key increments (golden ratio, sqrt(3) - 1).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, key):
    """Philox4x32-10 on arrays of counters.

    ctr: four arrays (or ints) c0..c3 of 32-bit words, broadcast together; key: (k0, k1).
    Returns four uint64 arrays holding the 32-bit output words.
    """
    c = [np.asarray(w, dtype=np.uint64) & _MASK32 for w in ctr]
    c = list(np.broadcast_arrays(*c))
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for _ in range(10):
        # 32x32 -> 64-bit products fit exactly in uint64
        p0 = np.uint64(PHILOX_M0) * c[0]
        p1 = np.uint64(PHILOX_M1) * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
        k0 = (k0 + PHILOX_W0) & 0xFFFFFFFF
        k1 = (k1 + PHILOX_W1) & 0xFFFFFFFF
    return c


def uniforms(seed, stream, index):
    """Uniform doubles in [0, 1) at integer indices ``index`` of (seed, stream).

    Index i lives in block i >> 1 (the 64-bit counter split into its low and high words,
    the stream in words 2 and 3, the seed as the key) and is the (i & 1)-th of the block's
    two doubles, each built from 53 bits of a pair of words.
    """
    idx = np.asarray(index, dtype=np.uint64)
    block = idx >> np.uint64(1)
    stream = int(stream)
    w = philox4x32_10((block & _MASK32, block >> np.uint64(32), stream & 0xFFFFFFFF, stream >> 32),
                      (int(seed) & 0xFFFFFFFF, int(seed) >> 32))
    first = idx & np.uint64(1)
    hi = np.where(first == 0, w[0], w[2])
    lo = np.where(first == 0, w[1], w[3])
    bits = ((hi << np.uint64(21)) ^ (lo >> np.uint64(11))) & np.uint64((1 << 53) - 1)
    return bits.astype(np.float64) / 2.0**53


def normals(seed, stream, index):
    """Standard normals at normal indices ``index``: normal k is Box-Muller's cosine (k even)
    or sine (k odd) normal of block k >> 1, whose two uniforms are 2 (k >> 1) and 2 (k >> 1) + 1.

    1 - u keeps the logarithm's argument in (0, 1], so it is finite.
    """
    k = np.asarray(index, dtype=np.uint64)
    block = k >> np.uint64(1)
    u1 = uniforms(seed, stream, np.uint64(2) * block)
    u2 = uniforms(seed, stream, np.uint64(2) * block + np.uint64(1))
    angle = 2.0 * math.pi * u2
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.where(k & np.uint64(1), np.sin(angle), np.cos(angle))


def step_noise(seed, step, B, d, stream=0):
    """The (B, d) normals of Langevin step ``step``: indices step*B*d + row-major element."""
    base = np.uint64(step) * np.uint64(B * d)
    return normals(seed, stream, base + np.arange(B * d, dtype=np.uint64)).reshape(B, d)


def accept_uniforms(seed, step, B, stream=0):
    """MALA's accept uniforms of step ``step``: stream + 1, indices step*B + chain."""
    return uniforms(seed, stream + 1, np.uint64(step) * np.uint64(B) + np.arange(B, dtype=np.uint64))


# ---- energies (float64, closed forms) ------------------------------------------------------

def quadratic(x, mean, P):
    """E = (x - m)^T P (x - m) / 2, grad = P (x - m) (P symmetric)."""
    x, m, P = (np.asarray(a, np.float64) for a in (x, mean, P))
    r = x - m
    Pr = r @ P.T
    return 0.5 * np.einsum("bi,bi->b", r, Pr), Pr


def gmm(x, means, covs, weights=None):
    """E = -log sum_k w_k N(x; m_k, C_k); grad = sum_k resp_k C_k^-1 (x - m_k)."""
    x = np.asarray(x, np.float64)
    means, covs = np.asarray(means, np.float64), np.asarray(covs, np.float64)
    K, d = means.shape
    w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    logs, pr = [], []
    for k in range(K):
        r = x - means[k]
        sol = np.linalg.solve(covs[k], r.T).T  # C^-1 (x - m) without forming the inverse
        _, logdet = np.linalg.slogdet(covs[k])
        logs.append(math.log(w[k]) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi) - 0.5 * np.sum(r * sol, axis=1))
        pr.append(sol)
    L = np.stack(logs, axis=1)  # (B, K)
    mx = L.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(L - mx).sum(axis=1))
    resp = np.exp(L - lse[:, None])
    grad = np.einsum("bk,kbi->bi", resp, np.stack(pr))
    return -lse, grad


def double_well(x, barrier, tilt):
    """E = sum_i a (x_i^2 - 1)^2 + t x_i; dE/dx_i = 4 a x_i (x_i^2 - 1) + t."""
    x = np.asarray(x, np.float64)
    return np.sum(barrier * (x * x - 1) ** 2 + tilt * x, axis=1), 4 * barrier * x * (x * x - 1) + tilt


def _act(name, z):
    """(activation, derivative) of the pre-activation z."""
    if name == "identity":
        return z, np.ones_like(z)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s)
    if name == "silu":
        s = 1 / (1 + np.exp(-z))
        return z * s, s * (1 + z * (1 - s))
    if name == "softplus":
        return np.logaddexp(0, z), 1 / (1 + np.exp(-z))
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(np.float64)
    raise ValueError(name)


def mlp_energy(params, x, n_hidden, activation):
    """The EBM's energy and input gradient: hidden Dense + activation layers, Dense(1).

    The input gradient is the chain rule run backwards: dE/dh_L = w_out, then
    dE/dz = dE/dh * act'(z), dE/dh_prev = dE/dz W^T.
    """
    h = np.asarray(x, np.float64)
    derivs, kernels = [], []
    for i in range(n_hidden):
        W = np.asarray(params[f"energy_dense_{i}.kernel"], np.float64)
        b = np.asarray(params[f"energy_dense_{i}.bias"], np.float64)
        h, dh = _act(activation, h @ W + b)
        derivs.append(dh)
        kernels.append(W)
    Wo = np.asarray(params["energy_output.kernel"], np.float64)
    bo = np.asarray(params["energy_output.bias"], np.float64)
    E = (h @ Wo + bo)[:, 0]
    g = np.broadcast_to(Wo[:, 0], h.shape)
    for W, dh in zip(reversed(kernels), reversed(derivs)):
        g = (g * dh) @ W.T
    return E, np.array(g)


def cd_loss(e_real, e_neg, alpha):
    """mean(E+) - mean(E-) + alpha (mean(E+^2) + mean(E-^2)) (docs/models.md §7)."""
    a, b = np.asarray(e_real, np.float64), np.asarray(e_neg, np.float64)
    return a.mean() - b.mean() + alpha * (np.mean(a**2) + np.mean(b**2))


# ---- samplers --------------------------------------------------------------------------------

def _clip(g, grad_clip):
    return g if grad_clip is None else np.clip(g, -grad_clip, grad_clip)


def langevin(energy, x0, steps, step_size, noise_scale, seed, clamp=None, grad_clip=None, trace=False):
    """Unadjusted Langevin with the library's noise; ``energy(x) -> (E, grad)`` in float64.

    With ``trace`` also returns the list of states after every step.
    """
    x = np.array(x0, dtype=np.float64)
    B, d = x.shape
    states = []
    amp = math.sqrt(step_size) * noise_scale
    for t in range(steps):
        g = _clip(energy(x)[1], grad_clip)
        x = x - 0.5 * step_size * g + amp * step_noise(seed, t, B, d)
        if clamp is not None:
            x = np.clip(x, clamp[0], clamp[1])
        states.append(x.copy())
    return (x, states) if trace else x


def mala(energy, x0, steps, step_size, noise_scale, seed, clamp=None, grad_clip=None, trace=False):
    """MALA targeting exp(-E/s^2); returns (x, accepted counts per chain[, per-step decisions]).

    log alpha = -(E(x') - E(x))/T + log q(x | x') - log q(x' | x), with
    q(y | x) = N(y; x - (eta/2) g(x), eta T I) and T = s^2; a proposal outside the clamp box
    is rejected (its density is zero there).
    """
    x = np.array(x0, dtype=np.float64)
    B, d = x.shape
    T = noise_scale**2
    eta = step_size
    amp = math.sqrt(eta) * noise_scale
    E, g = energy(x)
    g = _clip(g, grad_clip)
    acc = np.zeros(B, dtype=np.int64)
    decisions = []
    for t in range(steps):
        xp = x - 0.5 * eta * g + amp * step_noise(seed, t, B, d)
        Ep, gp = energy(xp)
        gp = _clip(gp, grad_clip)
        fwd = np.sum((xp - x + 0.5 * eta * g) ** 2, axis=1)
        bwd = np.sum((x - xp + 0.5 * eta * gp) ** 2, axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            log_alpha = -(Ep - E) / T - (bwd - fwd) / (2 * eta * T)
        u = accept_uniforms(seed, t, B)
        with np.errstate(divide="ignore"):
            ok = np.isfinite(log_alpha) & (np.log(u) < log_alpha)
        if clamp is not None:
            ok &= np.all((xp >= clamp[0]) & (xp <= clamp[1]), axis=1)
        x = np.where(ok[:, None], xp, x)
        g = np.where(ok[:, None], gp, g)
        E = np.where(ok, Ep, E)
        acc += ok
        decisions.append(ok.copy())
    return (x, acc, decisions) if trace else (x, acc)


# ---- statistics ----------------------------------------------------------------------------

def mmd2(X, Y, bandwidth):
    """Unbiased squared MMD with the Gaussian kernel exp(-|x - y|^2 / (2 h^2))
    (Gretton et al. 2012, eq. 3)."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)

    def k(A, C):
        d2 = np.sum(A * A, 1)[:, None] + np.sum(C * C, 1)[None, :] - 2 * A @ C.T
        return np.exp(-np.maximum(d2, 0) / (2 * bandwidth**2))

    m, n = len(X), len(Y)
    kxx, kyy, kxy = k(X, X), k(Y, Y), k(X, Y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def eight_gaussians(n, rng, radius=2.0, std=0.02 ** 0.5):
    """The 2-D eight-Gaussians toy: centres on a circle of ``radius`` at multiples of 45°."""
    ang = rng.integers(0, 8, size=n) * (math.pi / 4)
    centres = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return centres + std * rng.standard_normal((n, 2))
