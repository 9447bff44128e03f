"""Slow pure-NumPy twins of the two recurrent cells of docs/models.md §3: Hasani et al.'s liquid
time-constant cell (``nd.LTCCell``, Hasani et al. 2021, AAAI) and the closed-form
continuous-time cell (``nd.CfC``, Hasani et al. 2022, Nature Machine Intelligence).

Written from the equations (the headers csrc/nd_liquid_ltccell.h and csrc/nd_liquid_cfc.h state them, the
papers define them), never from the C code: every step is a plain loop over time and unfolds
with broadcasting over the synapse matrix, in float64, so a reader can check each line
against the formula. Nothing here imports neurodyn, so a mistake shared with the library
cannot cancel out. Parameters are passed as the dict ``cell.params`` (raw, stored values).

Also here: the LTC's continuous-time right-hand side (the ODE the fused semi-implicit step
discretises), for checking convergence against an accurate integrator.
"""
from __future__ import annotations

import numpy as np

from reference_nn import ACTIVATIONS, _sigmoid

LECUN_A, LECUN_B = 1.7159, 0.666  # LeCun et al. 1998, "Efficient BackProp" §4.4


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def softplus(x):
    # log(1 + e^x) without overflow for large x and without losing the tail for small x.
    return np.logaddexp(0.0, _f64(x))


def lecun_tanh(x):
    return LECUN_A * np.tanh(LECUN_B * _f64(x))


def cell_activation(name, x):
    """The backbone activations: those of the generic twin plus LeCun's scaled tanh."""
    if name == "lecun_tanh":
        return lecun_tanh(x)
    return ACTIVATIONS[name](_f64(x))


def _timespans(timespans, B, T):
    # None means every step lasts one time unit (both cells' documented default).
    return np.ones((B, T)) if timespans is None else _f64(timespans)


# ---------------------------------------------------------------------------------------
# LTC cell
# ---------------------------------------------------------------------------------------


def ltc_effective(params):
    """The parameters the dynamics use: the four positive ones through softplus."""
    p = {k: _f64(v) for k, v in params.items()}
    for name in ("gleak", "cm", "w", "sensory_w"):
        p[name] = softplus(p[name])
    return p


def ltc_synapses(v, w, sigma, mu):
    """a_ij = w_ij sigmoid(sigma_ij (v_i - mu_ij)) for presynaptic potentials v [B, P]
    against synapse matrices [P, N] -> [B, P, N] (i presynaptic, j postsynaptic)."""
    return w[None] * _sigmoid(sigma[None] * (v[:, :, None] - mu[None]))


def ltc_states(params, x, timespans=None, h0=None, *, ode_unfolds=6, epsilon=1e-8):
    """Potentials after every step, [B, T, N].

    Per step (Hasani et al. 2021, eq. 3 fused with K = ode_unfolds semi-implicit Euler steps of
    dt/K): the sensory synapses are evaluated once at the mapped input x' = x input_w + input_b,
    then K times v <- (c v + g_l v_l + sum_i a_ij E_ij + sum_i a~_ij E~_ij)
                     / (c + g_l + sum_i a_ij + sum_i a~_ij + epsilon), c = C K / dt,
    with a_ij re-evaluated at the current v each unfold."""
    p = ltc_effective(params)
    x = _f64(x)
    B, T, _ = x.shape
    N = p["gleak"].shape[0]
    dt = _timespans(timespans, B, T)
    v = np.zeros((B, N)) if h0 is None else _f64(h0).copy()
    xm = x * p["input_w"] + p["input_b"]
    out = np.empty((B, T, N))
    for t in range(T):
        sa = ltc_synapses(xm[:, t], p["sensory_w"], p["sensory_sigma"], p["sensory_mu"])
        s_num = (sa * p["sensory_erev"][None]).sum(axis=1)
        s_den = sa.sum(axis=1)
        c = p["cm"][None] * ode_unfolds / dt[:, t, None]
        for _ in range(ode_unfolds):
            a = ltc_synapses(v, p["w"], p["sigma"], p["mu"])
            num = c * v + p["gleak"] * p["vleak"] + (a * p["erev"][None]).sum(axis=1) + s_num
            den = c + p["gleak"] + a.sum(axis=1) + s_den + epsilon
            v = num / den
        out[:, t] = v
    return out


def ltc_readout(params, states):
    """The motor neurons (the first M = len(output_w)) through their affine map."""
    w, b = _f64(params["output_w"]), _f64(params["output_b"])
    return states[..., : w.shape[0]] * w + b


def ltc_forward(params, x, timespans=None, h0=None, *, ode_unfolds=6, epsilon=1e-8):
    """Outputs of every step, [B, T, M]."""
    h = ltc_states(params, x, timespans, h0, ode_unfolds=ode_unfolds, epsilon=epsilon)
    return ltc_readout(params, h)


def ltc_rhs(params, x_const):
    """dv/dt of the LTC dynamics for one sample with a constant raw input x_const [S]:
    C dv_j/dt = g_l (v_l - v_j) + sum_i a_ij(v) (E_ij - v_j) + sum_i a~_ij (E~_ij - v_j).
    Returns f(t, v) for v of shape [N] (or [..., N])."""
    p = ltc_effective(params)
    xm = _f64(x_const) * p["input_w"] + p["input_b"]
    sa = ltc_synapses(xm[None], p["sensory_w"], p["sensory_sigma"], p["sensory_mu"])[0]  # [S, N]

    def f(t, v):
        v = _f64(v)
        flat = v.reshape(-1, v.shape[-1])
        a = ltc_synapses(flat, p["w"], p["sigma"], p["mu"])  # [B, N, N]
        current = (p["gleak"] * (p["vleak"] - flat)
                   + (a * (p["erev"][None] - flat[:, None, :])).sum(axis=1)
                   + (sa[None] * (p["sensory_erev"][None] - flat[:, None, :])).sum(axis=1))
        return (current / p["cm"]).reshape(v.shape)

    return f


# ---------------------------------------------------------------------------------------
# CfC cell
# ---------------------------------------------------------------------------------------


def cfc_states(params, x, timespans=None, h0=None, *, hidden_size, backbone_layers, activation="lecun_tanh",
               mode="default"):
    """Hidden states after every step, [B, T, H] (Hasani et al. 2022, eq. 10 with the shared
    backbone of their reference implementation):
        b = backbone([x_t, h_{t-1}]), f1 = tanh(ff1 b), f2 = tanh(ff2 b),
        g = sigmoid(time_a(b) dt + time_b(b)),
        h = f1 (1 - g) + g f2 ("default") or f1 + g f2 ("no_gate");
    or ("pure", the closed-form solution, eq. 3) f = ff1 b, h = A - A exp(-dt (|w_tau| + |f|)) f."""
    p = {k: _f64(v) for k, v in params.items()}
    x = _f64(x)
    B, T, _ = x.shape
    dt = _timespans(timespans, B, T)
    h = np.zeros((B, hidden_size)) if h0 is None else _f64(h0).copy()

    def dense(name, z):
        return z @ p[f"{name}.kernel"] + p[f"{name}.bias"]

    out = np.empty((B, T, hidden_size))
    for t in range(T):
        z = np.concatenate([x[:, t], h], axis=1)
        for l in range(backbone_layers):
            z = cell_activation(activation, dense(f"backbone_{l}", z))
        if mode == "pure":
            f = dense("ff1", z)
            h = p["A"] - p["A"] * np.exp(-dt[:, t, None] * (np.abs(p["w_tau"]) + np.abs(f))) * f
            out[:, t] = h
            continue
        f1 = np.tanh(dense("ff1", z))
        f2 = np.tanh(dense("ff2", z))
        g = _sigmoid(dense("time_a", z) * dt[:, t, None] + dense("time_b", z))
        if mode == "default":
            h = f1 * (1.0 - g) + g * f2
        elif mode == "no_gate":
            h = f1 + g * f2
        else:
            raise ValueError(mode)
        out[:, t] = h
    return out


def cfc_forward(params, x, timespans=None, h0=None, **kw):
    """Outputs of every step: the states, through the Dense head ``output`` when present."""
    h = cfc_states(params, x, timespans, h0, **kw)
    if "output.kernel" in params:
        return h @ _f64(params["output.kernel"]) + _f64(params["output.bias"])
    return h
