"""Slow pure-NumPy twin of the Liquid family (docs/models.md §1 and §3): the LTC frame solved by
literally stepping each method, the layer scan over a sequence, the backward of the exact
scan in the form docs/models.md §3 states it, and the whole Edifice Liquid forward pass.

Everything computes in float64 with plain loops, so each function reads like the formula it
implements. Nothing here imports neurodyn (a twin that shared code with the library could
not catch the library's mistakes); the generic layers (Dense, LayerNorm, activations,
SwiGLU, losses) and the textbook Dormand–Prince integrator come from the other twins.
"""
from __future__ import annotations

import numpy as np

import reference as ref_ode
import reference_nn as ref_nn

TAU_CLAMP = 20.0  # tau = softplus(min(z, 20)) + 0.1 (docs/models.md §3, as in Edifice)
TAU_MIN = 0.1


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# One frame: dx/ds = (a - x) / tau over s in [0, 1], a and tau held fixed
# ---------------------------------------------------------------------------------------


def frame_exact(x, a, tau):
    """The closed form x(1) = a + (x(0) - a) e^{-1/tau}."""
    x, a, tau = _f64(x), _f64(a), _f64(tau)
    return a + (x - a) * np.exp(-1.0 / tau)


def frame_fixed(x, a, tau, solver, steps):
    """``steps`` substeps of 1/steps of explicit Euler, explicit midpoint or classic RK4,
    stepped one at a time (no closed form for the stepping: this is what a user integrating
    the ODE by hand would get)."""
    x, a, tau = _f64(x).copy(), _f64(a), _f64(tau)
    dt = 1.0 / steps

    def f(y):
        return (a - y) / tau

    for _ in range(steps):
        if solver == "euler":
            x = x + dt * f(x)
        elif solver == "midpoint":
            x = x + dt * f(x + 0.5 * dt * f(x))
        elif solver == "rk4":
            k1 = f(x)
            k2 = f(x + 0.5 * dt * k1)
            k3 = f(x + 0.5 * dt * k2)
            k4 = f(x + dt * k3)
            x = x + dt * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
        else:
            raise ValueError(solver)
    return x


def frame_dopri5(x, a, tau, rtol, atol, max_steps=10_000):
    """The H units of ONE sample's frame as one system, adaptive Dormand–Prince with the
    control law of docs/models.md §1 and a first step of 0.25 (docs/models.md §1, solve_ltc)."""
    a, tau = _f64(a), _f64(tau)
    ys, _ = ref_ode.odeint_dopri5(lambda s, y: (a - y) / tau, _f64(x), [0.0, 1.0], rtol=rtol, atol=atol,
                                  dt=0.25, max_steps=max_steps)
    return ys[-1]


def frame(x, a, tau, solver="exact", steps=1, rtol=1e-2, atol=1e-4, max_steps=10_000):
    """One frame of one sample (vectors of H units) with any solver."""
    if solver == "exact":
        return frame_exact(x, a, tau)
    if solver == "dopri5":
        return frame_dopri5(x, a, tau, rtol, atol, max_steps)
    return frame_fixed(x, a, tau, solver, steps)


# ---------------------------------------------------------------------------------------
# The layer scan
# ---------------------------------------------------------------------------------------


def ltc_scan(a, tau, h0=None, solver="exact", steps=1, rtol=1e-2, atol=1e-4, max_steps=10_000):
    """h_t = frame(h_{t-1}, a_t, tau_t) for each sample b and frame t; a, tau [B, T, H],
    h0 [B, H] (zeros when None). Sample by sample, so dopri5 sees one sample's units only."""
    a, tau = _f64(a), _f64(tau)
    B, T, H = a.shape
    h0 = np.zeros((B, H)) if h0 is None else _f64(h0)
    out = np.empty((B, T, H))
    for b in range(B):
        h = h0[b]
        for t in range(T):
            h = frame(h, a[b, t], tau[b, t], solver, steps, rtol, atol, max_steps)
            out[b, t] = h
    return out


def ltc_scan_exact_backward(a, tau, h0, h, dh):
    """The exact-scan backward as docs/models.md §3 writes it: with d = exp(-1/tau), walking t
    backwards with g = dh_t + carry: da = g (1 - d), dtau = g (h_{t-1} - a) d / tau^2,
    carry = g d; dh0 is the carry left at t = 0."""
    a, tau, h, dh = _f64(a), _f64(tau), _f64(h), _f64(dh)
    B, T, H = a.shape
    h0 = np.zeros((B, H)) if h0 is None else _f64(h0)
    da, dtau, dh0 = np.empty_like(a), np.empty_like(a), np.empty((B, H))
    for b in range(B):
        carry = np.zeros(H)
        for t in reversed(range(T)):
            prev = h[b, t - 1] if t else h0[b]
            d = np.exp(-1.0 / tau[b, t])
            g = dh[b, t] + carry
            da[b, t] = g * (1.0 - d)
            dtau[b, t] = g * (prev - a[b, t]) * d / tau[b, t] ** 2
            carry = g * d
        dh0[b] = carry
    return da, dtau, dh0


# ---------------------------------------------------------------------------------------
# The Liquid model (Edifice.Liquid, docs/models.md §3)
# ---------------------------------------------------------------------------------------


def _dense(p, name, x):
    return ref_nn.dense(x, p[f"{name}.kernel"], p[f"{name}.bias"])


def _ln(p, name, x):
    return ref_nn.layernorm(x, p[f"{name}.gamma"], p[f"{name}.beta"])


def liquid_sequence(params, config, x, masks=None):
    """Normed hidden states y [B, T, H] of every step.

    ``config`` is the model's configuration dict (num_layers, ffn, solver, integration_steps,
    rtol, atol, max_steps). ``masks``, when given, maps ("ltc", i) / ("ffn", i) to a dropout
    multiplier of shape [B, T, H] applied to that block's residual branch."""
    p = {k: _f64(v) for k, v in params.items()}
    x = _f64(x)
    masks = masks or {}
    u = _dense(p, "input_projection", x) if "input_projection.kernel" in p else x
    for i in range(1, config["num_layers"] + 1):
        name = f"ltc_layer_{i}"
        xl = _ln(p, f"{name}_norm", u)
        z = _dense(p, f"{name}_tau", xl)
        tau = ref_nn.activation("softplus", np.minimum(z, TAU_CLAMP)) + TAU_MIN
        a = _dense(p, f"{name}_f_out", ref_nn.activation("silu", _dense(p, f"{name}_f_hidden", xl)))
        h = ltc_scan(a, tau, None, config["solver"], config["integration_steps"], config["rtol"],
                     config["atol"], max(config["max_steps"], 10_000))
        u = u + h * masks.get(("ltc", i), 1.0)
        if config["ffn"]:
            n = _ln(p, f"ffn_{i}_norm", u)
            inner = ref_nn.swiglu(_dense(p, f"ffn_{i}_gate", n), _dense(p, f"ffn_{i}_up", n))
            u = u + _dense(p, f"ffn_{i}_down", inner) * masks.get(("ffn", i), 1.0)
    return _ln(p, "final_norm", u)


def liquid_output(params, config, x, masks=None):
    """The model's output: the last step's normed state, through the ``output`` head if any."""
    y = liquid_sequence(params, config, x, masks)[:, -1]
    if "output.kernel" in params:
        y = _dense({k: _f64(v) for k, v in params.items()}, "output", y)
    return y


def expected_param_shapes(embed_dim, hidden, num_layers, ffn=False, output_size=None):
    """Parameter names and shapes, in order, as docs/models.md §3 / Edifice name them."""
    H, shapes = hidden, {}

    def dense(name, i, o):
        shapes[f"{name}.kernel"] = (i, o)
        shapes[f"{name}.bias"] = (o,)

    def norm(name):
        shapes[f"{name}.gamma"] = (H,)
        shapes[f"{name}.beta"] = (H,)

    if embed_dim != H:
        dense("input_projection", embed_dim, H)
    for i in range(1, num_layers + 1):
        norm(f"ltc_layer_{i}_norm")
        dense(f"ltc_layer_{i}_tau", H, H)
        dense(f"ltc_layer_{i}_f_hidden", H, 2 * H)
        dense(f"ltc_layer_{i}_f_out", 2 * H, H)
        if ffn:
            norm(f"ffn_{i}_norm")
            dense(f"ffn_{i}_gate", H, 4 * H)
            dense(f"ffn_{i}_up", H, 4 * H)
            dense(f"ffn_{i}_down", 4 * H, H)
    norm("final_norm")
    if output_size is not None:
        dense("output", H, output_size)
    return shapes


# ---------------------------------------------------------------------------------------
# Dormand–Prince with its steps frozen: what the dopri5 backward differentiates
# ---------------------------------------------------------------------------------------


def dopri5_step_sizes(x, a, tau, rtol, atol):
    """The accepted step sizes of one sample's frame, as the adaptive twin chooses them."""
    a, tau = _f64(a), _f64(tau)
    _, info = ref_ode.odeint_dopri5(lambda s, y: (a - y) / tau, _f64(x), [0.0, 1.0], rtol=rtol, atol=atol,
                                    dt=0.25)
    return [float(h) for h in info["steps"][:, 1]]


def dopri5_frozen_frame(x, a, tau, step_sizes):
    """The 5th-order Dormand–Prince solution taken with the given step sizes, no error
    control: a smooth function of (x, a, tau) whose derivative is what "exact backprop
    through the steps taken" must give."""
    a, tau = _f64(a), _f64(tau)
    y = _f64(x).copy()

    def f(v):
        return (a - v) / tau

    for h in step_sizes:
        k = [f(y)]
        for s in range(1, 6):
            k.append(f(y + h * sum(c * kj for c, kj in zip(ref_ode.DP_A[s], k))))
        y = y + h * sum(ref_ode.DP_B5[j] * k[j] for j in range(6))
    return y


def dopri5_scan_step_sizes(a, tau, h0, rtol, atol):
    """Step sizes of every (sample, frame) of the adaptive scan at the given inputs."""
    a, tau = _f64(a), _f64(tau)
    B, T, H = a.shape
    h0 = np.zeros((B, H)) if h0 is None else _f64(h0)
    sizes = {}
    for b in range(B):
        h = h0[b]
        for t in range(T):
            sizes[b, t] = dopri5_step_sizes(h, a[b, t], tau[b, t], rtol, atol)
            h = dopri5_frozen_frame(h, a[b, t], tau[b, t], sizes[b, t])
    return sizes


def dopri5_frozen_scan(a, tau, h0, sizes):
    """The scan with every frame's step sizes frozen to ``sizes``."""
    a, tau = _f64(a), _f64(tau)
    B, T, H = a.shape
    h0 = np.zeros((B, H)) if h0 is None else _f64(h0)
    out = np.empty((B, T, H))
    for b in range(B):
        h = h0[b]
        for t in range(T):
            h = dopri5_frozen_frame(h, a[b, t], tau[b, t], sizes[b, t])
            out[b, t] = h
    return out
