"""Slow pure-NumPy twins of the spiking family, written from docs/models.md §5/§6 and the formulas
in csrc/nd_snn.h's comment (not from its code).

- the LIF neuron forward (hard or smooth spike, subtract or zero reset, with or without the
  delayed reset of snntorch's Leaky), optionally with the reset signal frozen from outside:
  the model whose exact gradient a detached-reset backward pass is;
- the backward recursion of BPTT through that neuron with a surrogate spike derivative,
  derived by hand from the forward equations;
- the integrate-and-fire rate, the latency code, and the SNN / ANN forward and backward
  passes built on Dense layers with plain matrix products.

Every loop runs over time steps in Python, so the code reads like the equations. Nothing
here imports neurodyn: a twin that shared code with the library could not catch its bugs.
"""
from __future__ import annotations

import math

import numpy as np

SURROGATES = ("sigmoid", "fast_sigmoid", "atan")


# ---------------------------------------------------------------------------------------
# Spike functions
# ---------------------------------------------------------------------------------------


def _sigmoid(z):
    # 1 / (1 + e^-z) without overflow warnings for large |z|
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def smooth_spike(kind, slope, x):
    """The smooth spike whose derivative is the surrogate, at x = V - theta."""
    k = slope
    if kind == "sigmoid":
        return _sigmoid(k * x)
    if kind == "fast_sigmoid":
        return 0.5 + x / (1.0 + k * np.abs(x))
    if kind == "atan":
        return 0.5 + np.arctan(0.5 * math.pi * k * x) / math.pi
    raise ValueError(kind)


def surrogate(kind, slope, x):
    """dS/dV used by the backward pass, at x = V - theta (the derivative of smooth_spike)."""
    k = slope
    if kind == "sigmoid":
        s = _sigmoid(k * x)
        return k * s * (1.0 - s)
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + k * np.abs(x)) ** 2
    if kind == "atan":
        return (0.5 * k) / (1.0 + (0.5 * math.pi * k * x) ** 2)
    raise ValueError(kind)


def hard_spike(x):
    """Heaviside with H(0) = 0: a neuron fires only when V strictly exceeds theta."""
    return (x > 0).astype(x.dtype)


# ---------------------------------------------------------------------------------------
# LIF forward
# ---------------------------------------------------------------------------------------


def lif_forward(currents, *, beta, threshold=1.0, reset="subtract", v0=None, reset_delay=False, smooth=None,
                slope=10.0, frozen_reset=None):
    """LIF neurons over the time axis of ``currents`` (T, B, n).

    Arithmetic runs in the dtype of ``currents`` (beta and theta rounded to it once), one
    rounding per operation, so a float32 run follows the same sequence of roundings as a C
    loop over floats.

    smooth : None for the hard spike [x > 0], else a surrogate name: every spike (the output
        and the reset signal) is smooth_spike(smooth, slope, .).
    frozen_reset : optional (T, B, n): the reset signal of each step is taken from this array
        instead of from the neuron's own spikes. Evaluated at the reset signal of the unfrozen
        run, it reproduces that run exactly; its derivative with respect to the currents is
        then the gradient with the reset "detached" (treated as a constant).

    Returns (spikes, membrane after each step, reset signals used), each (T, B, n).

    Per step, without delay:  u = beta V + I;  S = spike(u - theta);  R = S;
        V = u - R theta (subtract)  or  V = u (1 - R) (zero).
    With reset_delay (snntorch's Leaky): R = spike(V_prev - theta);
        V = beta V_prev + I - R theta  or  V = beta V_prev (1 - R) + I (snntorch);  S = spike(V - theta).
    """
    cur = np.asarray(currents)
    dt = cur.dtype
    T, B, n = cur.shape
    b, th = dt.type(beta), dt.type(threshold)
    one = dt.type(1)
    v = np.zeros((B, n), dt) if v0 is None else np.array(v0, dtype=dt, copy=True)

    def spike(x):
        return hard_spike(x) if smooth is None else smooth_spike(smooth, slope, x).astype(dt)

    S = np.zeros_like(cur)
    M = np.zeros_like(cur)
    R = np.zeros_like(cur)
    for t in range(T):
        if reset_delay:
            r = spike(v - th) if frozen_reset is None else frozen_reset[t].astype(dt)
            v = b * v + cur[t] - r * th if reset == "subtract" else b * v * (one - r) + cur[t]
            s = spike(v - th)
        else:
            u = b * v + cur[t]
            s = spike(u - th)
            r = s if frozen_reset is None else frozen_reset[t].astype(dt)
            v = u - r * th if reset == "subtract" else u * (one - r)
        S[t], M[t], R[t] = s, v, r
    return S, M, R


def lif_trajectory_margin(currents, **kw):
    """Smallest |V - theta| at which a spike decision is taken in a hard run (float64): a
    bitwise comparison of spikes with another implementation is safe when this exceeds the
    accumulated rounding error by far."""
    cur = np.asarray(currents, dtype=np.float64)
    beta, th = kw["beta"], kw.get("threshold", 1.0)
    reset, delay = kw.get("reset", "subtract"), kw.get("reset_delay", False)
    v = np.zeros(cur.shape[1:]) if kw.get("v0") is None else np.array(kw["v0"], dtype=np.float64)
    margin = np.inf
    for t in range(cur.shape[0]):
        if delay:
            r = (v > th).astype(float)
            margin = min(margin, np.min(np.abs(v - th)))
            a = beta * v + cur[t]
            v = a - r * th if reset == "subtract" else beta * v * (1 - r) + cur[t]
            margin = min(margin, np.min(np.abs(v - th)))
        else:
            u = beta * v + cur[t]
            s = (u > th).astype(float)
            margin = min(margin, np.min(np.abs(u - th)))
            v = u - s * th if reset == "subtract" else u * (1 - s)
    return margin


# ---------------------------------------------------------------------------------------
# LIF backward (BPTT through the surrogate)
# ---------------------------------------------------------------------------------------


def lif_backward(currents, dspikes=None, dmembrane=None, *, beta, threshold=1.0, reset="subtract", v0=None,
                 reset_delay=False, surrogate_kind="sigmoid", slope=10.0, detach_reset=True, smooth=False):
    """(dL/dcurrents (T, B, n), dL/dv0 (B, n)) for cotangents of the spikes and of the
    post-reset membrane, in float64.

    The forward pass is replayed (hard spikes, or smooth ones with ``smooth``), and dS/dV is
    the surrogate f'. Derivation, with g the cotangent of the state V_t flowing in from the
    later steps and from dmembrane:

    no delay: u = beta V_{t-1} + I;  S = f(u - theta);  V_t = u - S theta | u (1 - S)
        dL/du = dS_t f'(u - theta) + g dV_t/du,
        dV_t/du = 1 - theta f'   (subtract)  |  1 - S - u f'  (zero);
        with a detached reset the S inside V_t is a constant: 1 | 1 - S;
        dL/dI_t = dL/du;  dL/dV_{t-1} = beta dL/du.
    delay:    R = f(V_{t-1} - theta);  V_t = beta V_{t-1} + I - R theta | beta V_{t-1} (1 - R) + I;
              S = f(V_t - theta)
        dL/dV_t = g + dS_t f'(V_t - theta);
        subtract: dL/dI_t = dL/dV_t;  dL/dV_{t-1} = dL/dV_t (beta - theta f'(V_{t-1} - theta));
        zero:     dL/dI_t = dL/dV_t;  dL/dV_{t-1} = dL/dV_t beta (1 - R - V_{t-1} f'(V_{t-1} - theta));
        a detached reset drops the f'(V_{t-1} - theta) terms.
    """
    cur = np.asarray(currents, dtype=np.float64)
    T, B, n = cur.shape
    th = float(threshold)
    S, M, _ = lif_forward(cur, beta=beta, threshold=th, reset=reset, v0=v0, reset_delay=reset_delay,
                          smooth=surrogate_kind if smooth else None, slope=slope)
    v_init = np.zeros((B, n)) if v0 is None else np.asarray(v0, dtype=np.float64)
    ds = np.zeros_like(cur) if dspikes is None else np.asarray(dspikes, dtype=np.float64)
    dm = np.zeros_like(cur) if dmembrane is None else np.asarray(dmembrane, dtype=np.float64)

    def fprime(x):
        return surrogate(surrogate_kind, slope, x)

    def spike(x):
        return smooth_spike(surrogate_kind, slope, x) if smooth else hard_spike(x)

    dI = np.zeros_like(cur)
    g = np.zeros((B, n))
    for t in range(T - 1, -1, -1):
        v_prev = M[t - 1] if t > 0 else v_init
        gv = g + dm[t]
        if reset_delay:
            V = M[t]
            gV = gv + ds[t] * fprime(V - th)
            r = spike(v_prev - th)
            rd = 0.0 if detach_reset else fprime(v_prev - th)
            if reset == "subtract":
                dI[t] = gV
                g = gV * (beta - th * rd)
            else:
                dI[t] = gV
                g = gV * beta * (1.0 - r - v_prev * rd)
        else:
            u = beta * v_prev + cur[t]
            s = S[t]
            fp = fprime(u - th)
            if reset == "subtract":
                dvdu = 1.0 if detach_reset else 1.0 - th * fp
            else:
                dvdu = (1.0 - s) if detach_reset else (1.0 - s - u * fp)
            gu = ds[t] * fp + gv * dvdu
            dI[t] = gu
            g = beta * gu
    return dI, g


# ---------------------------------------------------------------------------------------
# Integrate-and-fire, encoders
# ---------------------------------------------------------------------------------------


def if_count(current, T, threshold=1.0, v0=0.0):
    """Spike count of one integrate-and-fire neuron (beta 1, subtract reset) under a constant
    current, by stepping it in float64."""
    v, count = float(v0), 0
    for _ in range(T):
        v += current
        if v > threshold:
            count += 1
            v -= threshold
    return count


def latency_step(x, T):
    """The step of the single latency spike, or None: round((1 - x)(T - 1)) for x in (0, 1]
    (x clipped to 1), with C's round (halves away from zero); no spike for x <= 0."""
    if not x > 0:
        return None
    v = min(float(x), 1.0)
    return int(math.floor((1.0 - v) * (T - 1) + 0.5))


# ---------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------


def dense(x, params, name):
    return x @ params[f"{name}.kernel"] + params[f"{name}.bias"]


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy over rows and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    value = -logp[rows, labels].mean()
    grad = np.exp(logp)
    grad[rows, labels] -= 1.0
    return value, grad / len(labels)


def mse(pred, target):
    """Mean over every element of (pred - target)^2, and its gradient."""
    d = pred - target
    return np.mean(d * d), 2.0 * d / d.size


def snn_loss_and_grad(params, x, y, *, hidden_sizes, num_timesteps, beta, threshold, reset, surrogate_kind, slope,
                      loss="cross_entropy", encoded=None):
    """The SNN's loss and the gradient of every parameter, in float64.

    Forward (hard spikes): layer 0's currents are Dense(x) at every step (constant encoding,
    ``encoded`` None) or Dense(encoded_t); each hidden layer is LIF over T with v0 = 0 and its
    spikes feed the next layer's Dense at every step; the readout is Dense(mean_t spikes).
    Backward: BPTT through lif_backward above with the surrogate and a detached reset.
    """
    T, B = num_timesteps, x.shape[0]
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    lif = dict(beta=beta, threshold=threshold, reset=reset)
    inputs = None if encoded is None else np.asarray(encoded, dtype=np.float64)
    layer_inputs, layer_currents = [], []
    for i in range(len(hidden_sizes)):
        name = f"snn_layer_{i}_dense"
        if inputs is None:
            cur = np.broadcast_to(dense(x, p, name), (T, B, hidden_sizes[i])).copy()
        else:
            cur = dense(inputs, p, name)  # (T, B, m) @ (m, n): every step at once
        layer_inputs.append(inputs)
        layer_currents.append(cur)
        inputs, _, _ = lif_forward(cur, **lif)
    rate = inputs.mean(axis=0)
    out = dense(rate, p, "snn_output")
    value, dout = cross_entropy(out, y) if loss == "cross_entropy" else mse(out, np.asarray(y, np.float64))
    grads = {"snn_output.kernel": rate.T @ dout, "snn_output.bias": dout.sum(axis=0)}
    dspikes = np.broadcast_to((dout @ p["snn_output.kernel"].T) / T, inputs.shape)
    for i in reversed(range(len(hidden_sizes))):
        name = f"snn_layer_{i}_dense"
        dcur, _ = lif_backward(layer_currents[i], dspikes, **lif, surrogate_kind=surrogate_kind, slope=slope,
                               detach_reset=True)
        below = layer_inputs[i]
        if below is None:
            # the same x drives every step: its kernel collects the currents' gradient of all steps
            grads[f"{name}.kernel"] = x.T @ dcur.sum(axis=0)
        else:
            grads[f"{name}.kernel"] = np.einsum("tbm,tbn->mn", below, dcur)
            dspikes = dcur @ p[f"{name}.kernel"].T
        grads[f"{name}.bias"] = dcur.sum(axis=(0, 1))
    return value, grads, out


def ann_activations(params, x, num_hidden):
    """Each hidden layer's ReLU(Dense) output of an ANN without layer norm, in float64."""
    h, acts = np.asarray(x, dtype=np.float64), []
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    for i in range(num_hidden):
        h = np.maximum(dense(h, p, f"dense_{i}"), 0.0)
        acts.append(h)
    return acts
