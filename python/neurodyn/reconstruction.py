"""Measures of how well a generated trajectory reconstructs a chaotic system (docs/models.md §13).

A forecast of a chaotic system fails after a few Lyapunov times whatever the model, so a learned
model is judged by what survives that horizon: how long its forecast stays close (the valid
prediction time), whether it visits the same regions of state space as often (the state-space
divergence), and whether it oscillates on the same time scales (the power-spectrum distance).

Every function takes one trajectory of shape (T, d) or a batch of shape (B, T, d) (float32 or
float64; the arithmetic is float64) and returns a float or an array of B values. Inputs are
never modified.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, nn
from ._typing import Seed

__all__ = ["valid_prediction_time", "state_space_divergence", "power_spectrum_distance", "adaptive_alpha"]

SPACE_METHODS = ("auto", "binned", "gmm")
MAX_BINNED_DIMENSION = 3   # "auto" bins up to this many dimensions (docs/models.md §13.2)
MAX_CELLS = 50_000_000     # a grid beyond this is refused: its histograms would not fit in memory
_CHUNK = 1 << 22           # distances computed per block in the mixture estimator (values)


# ---- argument checks ---------------------------------------------------------------------------


def _trajectories(name: str, value) -> tuple[np.ndarray, bool]:
    """``value`` as a float64 array (B, T, d) and whether it came as a batch."""
    arr = _checks.real_array(name, value)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (T, d) or (B, T, d); got shape {arr.shape}")
    if arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise ValueError(f"{name} must hold at least one time step of at least one dimension; "
                         f"got shape {arr.shape}")
    batched = arr.ndim == 3
    return np.asarray(arr if batched else arr[None], dtype=np.float64), batched


def _pair(y_true, y_pred, *, same_length: bool):
    a, batched = _trajectories("y_true", y_true)
    b, batched_b = _trajectories("y_pred", y_pred)
    if batched != batched_b or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2] or (
            same_length and a.shape[1] != b.shape[1]):
        what = "the same shape" if same_length else "the same batch size and dimension"
        raise ValueError(f"y_true and y_pred must have {what}; got shapes {np.shape(y_true)} "
                         f"and {np.shape(y_pred)}")
    return a, b, batched


def _scale(name: str, value, a: np.ndarray) -> np.ndarray:
    """Per-dimension scale (B, 1, d): ``value`` broadcast, or the standard deviation of each true
    trajectory over time (a constant dimension counts as 1, so that it compares raw)."""
    if value is None:
        sd = a.std(axis=1, keepdims=True)
        return np.where(sd > 0, sd, 1.0)
    sd = _checks.real_array(name, value).astype(np.float64)
    B, _, d = a.shape
    if sd.shape not in ((), (d,), (B, d)):
        raise ValueError(f"{name} must be a scalar or have shape (d,) or (B, d) with B={B}, d={d}; "
                         f"got shape {sd.shape}")
    if np.any(sd <= 0):
        raise ValueError(f"{name} must be > 0")
    return np.broadcast_to(sd.reshape((B, 1, d) if sd.ndim == 2 else (1, 1, -1)), (B, 1, d))


def _result(values: np.ndarray, batched: bool):
    return values if batched else float(values[0])


# ---- valid prediction time ---------------------------------------------------------------------


def valid_prediction_time(y_true: ArrayLike, y_pred: ArrayLike, *, dt: float = 1.0, threshold: float = 0.4,
                          scale: ArrayLike | None = None) -> float | np.ndarray:
    """How long a forecast stays within a normalised error of the truth.

    The error at step k is the root mean square over the d dimensions of the difference
    normalised by the true attractor's standard deviation in each dimension,
    ``e_k = sqrt(mean_i ((y_pred[k, i] - y_true[k, i]) / s_i) ** 2)`` (Pathak et al. 2018;
    Vlachas et al. 2020; Gilpin 2021). The valid prediction time is ``dt`` times the number of
    leading steps whose error does not exceed ``threshold``: ``K * dt`` with K the first step
    where ``e_K > threshold``, or the whole horizon ``T * dt`` when the forecast never fails
    (docs/models.md §13.1). Divide by the Lyapunov time to get it in Lyapunov times.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (T, d) or (B, T, d)
        The true and the forecast trajectories, sampled at the same T times, ``dt`` apart,
        starting from the same state.
    dt : float, default 1.0
        Time between samples (> 0); with 1 the result counts steps.
    threshold : float, default 0.4
        The normalised error that ends the valid forecast (> 0); Pathak et al. use 0.4.
    scale : float or array_like of shape (d,) or (B, d), optional
        The standard deviation of each dimension on the attractor (> 0). Default: each true
        trajectory's own standard deviation over time (a constant dimension counts 1).

    Returns
    -------
    float, or ndarray of shape (B,) for a batch

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> t = np.linspace(0, 20, 201)[:, None]
    >>> nd.valid_prediction_time(np.sin(t), np.sin(1.05 * t), dt=0.1)
    5.9
    """
    a, b, batched = _pair(y_true, y_pred, same_length=True)
    dt = _checks.real("dt", dt, minimum=0.0, strict=True)
    threshold = _checks.real("threshold", threshold, minimum=0.0, strict=True)
    s = _scale("scale", scale, a)
    err = np.sqrt(np.mean(((b - a) / s) ** 2, axis=2))          # (B, T)
    failed = err > threshold
    steps = np.where(failed.any(axis=1), failed.argmax(axis=1), a.shape[1])
    return _result(steps * dt, batched)


# ---- state-space divergence --------------------------------------------------------------------


def _binned_kl(a: np.ndarray, b: np.ndarray, bins: int, smoothing: float) -> np.ndarray:
    """KL(p_true || p_gen) between the occupation histograms of a and b on a grid spanning the
    true trajectory (docs/models.md §13.2)."""
    B, _, d = a.shape
    cells = bins ** d
    out = np.empty(B)
    for j in range(B):
        lo, hi = a[j].min(axis=0), a[j].max(axis=0)
        pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
        lo, width = lo - pad, (hi - lo + 2 * pad) / bins

        def histogram(x):
            idx = np.clip(np.floor((x - lo) / width), 0, bins - 1).astype(np.int64)
            flat = np.ravel_multi_index(tuple(idx.T), (bins,) * d)
            counts = np.bincount(flat, minlength=cells).astype(np.float64)
            p = counts / x.shape[0] + smoothing
            return p / p.sum()

        p, q = histogram(a[j]), histogram(b[j])
        seen = p > 0
        out[j] = float(np.sum(p[seen] * (np.log(p[seen]) - np.log(q[seen]))))
    return out


def _log_mixture(x: np.ndarray, centres: np.ndarray, bandwidth: float) -> np.ndarray:
    """log of the equal-weight isotropic Gaussian mixture on ``centres`` at the points x."""
    n, d = x.shape
    m = centres.shape[0]
    xx = np.einsum("ij,ij->i", x, x)[:, None]
    cc = np.einsum("ij,ij->i", centres, centres)[None, :]
    out = np.empty(n)
    rows = max(1, _CHUNK // max(m, 1))
    for s in range(0, n, rows):
        sq = np.maximum(xx[s:s + rows] + cc - 2.0 * (x[s:s + rows] @ centres.T), 0.0)
        z = -0.5 * sq / bandwidth ** 2
        zmax = z.max(axis=1, keepdims=True)
        out[s:s + rows] = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))
    return out - math.log(m) - 0.5 * d * math.log(2 * math.pi * bandwidth ** 2)


def _gmm_kl(a: np.ndarray, b: np.ndarray, bandwidth: float, n_samples: int, rng) -> np.ndarray:
    """Monte-Carlo KL(p_true || p_gen) between the Gaussian mixtures placed on the points of a
    and of b (docs/models.md §13.2)."""
    B, T, d = a.shape
    out = np.empty(B)
    for j in range(B):
        pick = rng.integers(0, T, size=n_samples)
        x = a[j][pick] + bandwidth * rng.standard_normal((n_samples, d))
        out[j] = float(np.mean(_log_mixture(x, a[j], bandwidth) - _log_mixture(x, b[j], bandwidth)))
    return out


def state_space_divergence(y_true: ArrayLike, y_pred: ArrayLike, *, method: str = "auto", bins: int = 30,
                           smoothing: float = 1e-6, bandwidth: float = 0.5, n_samples: int = 2000, seed: Seed = 0,
                           scale: ArrayLike | None = None) -> float | np.ndarray:
    """KL divergence between the occupation densities of a true and a generated trajectory.

    ``D_stsp = KL(p_true || p_gen) = sum p_true log(p_true / p_gen)`` compares where the two
    trajectories spend their time, whatever the order in which they visit the states
    (Koppe et al. 2019; Brenner et al. 2022; Hess et al. 2023). Both trajectories are first
    divided by ``scale`` (default: the true trajectory's standard deviation per dimension).

    - ``"binned"``: the densities are the fractions of time spent in each cell of a grid of
      ``bins`` cells per dimension spanning the true trajectory's range widened by 5% on each
      side (generated points outside count in the border cells), each plus ``smoothing`` and
      renormalised. Exactly 0 for identical histograms.
    - ``"gmm"``: each density is the equal-weight mixture of isotropic Gaussians of standard
      deviation ``bandwidth`` centred on the trajectory's points; the KL is estimated from
      ``n_samples`` draws from the true mixture (seeded). Meant for more dimensions than a grid
      can hold.
    - ``"auto"``: binned up to 3 dimensions, gmm beyond.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (T, d) or (B, T, d)
        The trajectories; their lengths may differ (a batch must match in B and d).
    method : {"auto", "binned", "gmm"}
    bins : int, default 30
        Cells per dimension of the binned estimate (>= 1; ``bins ** d`` cells in all).
    smoothing : float, default 1e-6
        Probability added to every cell before renormalising (>= 0), so that a cell the
        generated trajectory never visits does not make the divergence infinite.
    bandwidth : float, default 0.5
        Standard deviation of the mixture components, in units of ``scale`` (> 0).
    n_samples : int, default 2000
        Monte-Carlo draws per trajectory of the gmm estimate (>= 1).
    seed : int or numpy.random.Generator, default 0
        The draws of the gmm estimate.
    scale : float or array_like of shape (d,) or (B, d), optional
        Per-dimension scale (> 0); default each true trajectory's standard deviation.

    Returns
    -------
    float, or ndarray of shape (B,) for a batch
        Non-negative up to the Monte-Carlo error of the gmm estimate; 0 for identical inputs.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> y = np.random.default_rng(0).normal(size=(5000, 2))
    >>> nd.state_space_divergence(y, y)
    0.0
    """
    a, b, batched = _pair(y_true, y_pred, same_length=False)
    _checks.choice("method", method, SPACE_METHODS)
    d = a.shape[2]
    if method == "auto":
        method = "binned" if d <= MAX_BINNED_DIMENSION else "gmm"
    # every option is checked whichever estimate runs, so that a mistake never waits for a change of method
    bins = _checks.integer("bins", bins, minimum=1)
    smoothing = _checks.real("smoothing", smoothing, minimum=0.0)
    bandwidth = _checks.real("bandwidth", bandwidth, minimum=0.0, strict=True)
    n_samples = _checks.integer("n_samples", n_samples, minimum=1)
    rng = nn.as_generator(seed)
    s = _scale("scale", scale, a)
    a, b = a / s, b / s
    if method == "binned":
        if bins ** d > MAX_CELLS:
            raise ValueError(f"bins={bins} in d={d} dimensions makes {bins ** d} cells (at most {MAX_CELLS}); "
                             f"use fewer bins or method='gmm'")
        return _result(_binned_kl(a, b, bins, smoothing), batched)
    return _result(_gmm_kl(a, b, bandwidth, n_samples, rng), batched)


# ---- power-spectrum distance -------------------------------------------------------------------


def _spectra(x: np.ndarray, smoothing: float, n_freq: int | None) -> np.ndarray:
    """Normalised, smoothed power spectra (B, d, F) of x (B, T, d): each series standardised,
    |rfft|^2 without the mean's bin, convolved with a Gaussian of ``smoothing`` bins."""
    sd = x.std(axis=1, keepdims=True)
    z = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    power = np.abs(np.fft.rfft(z, axis=1)[:, 1:]) ** 2           # (B, F, d)
    power = np.moveaxis(power, 1, 2)
    if n_freq is not None:
        power = power[..., :n_freq]
    if smoothing > 0:
        r = int(math.ceil(4 * smoothing))
        k = np.arange(-r, r + 1)
        w = np.exp(-0.5 * (k / smoothing) ** 2)
        w /= w.sum()
        F = power.shape[-1]
        padded = np.pad(power, [(0, 0), (0, 0), (r, r)], mode="reflect" if F > r else "edge")
        power = sum(w[i] * padded[..., i:i + F] for i in range(2 * r + 1))
    total = power.sum(axis=-1, keepdims=True)
    flat = total <= 0   # a constant series: no power anywhere, taken as white
    power = np.where(flat, 1.0, power)
    return power / np.where(flat, power.shape[-1], total)


def power_spectrum_distance(y_true: ArrayLike, y_pred: ArrayLike, *, smoothing: float = 2.0,
                            n_freq: int | None = None) -> float | np.ndarray:
    """Hellinger distance between the smoothed, normalised power spectra, averaged over dimensions.

    Each dimension of each trajectory is standardised, its power spectrum ``|rfft|^2`` taken
    (the zero-frequency bin dropped), smoothed by a Gaussian of standard deviation ``smoothing``
    frequency bins and normalised to sum 1; then ``H(p, q) = sqrt(1 - sum sqrt(p q))``, which
    is 0 for equal spectra and 1 for spectra with no overlap, averaged over the d dimensions
    (Mikhaeil et al. 2022; Hess et al. 2023; docs/models.md §13.3).

    Parameters
    ----------
    y_true, y_pred : array_like, shape (T, d) or (B, T, d)
        Trajectories of the same length, sampled at the same rate.
    smoothing : float, default 2.0
        Width of the Gaussian smoothing kernel in frequency bins (>= 0; 0 does not smooth).
    n_freq : int, optional
        Keep only the lowest ``n_freq`` frequencies (>= 1), leaving out the high-frequency
        noise floor.

    Returns
    -------
    float, or ndarray of shape (B,) for a batch

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> t = np.arange(1000)[:, None]
    >>> round(nd.power_spectrum_distance(np.sin(0.2 * np.pi * t), np.sin(0.4 * np.pi * t), smoothing=0), 6)
    1.0
    """
    a, b, batched = _pair(y_true, y_pred, same_length=True)
    if a.shape[1] < 3:
        raise ValueError(f"y_true and y_pred need at least 3 time steps for a spectrum; got {a.shape[1]}")
    smoothing = _checks.real("smoothing", smoothing, minimum=0.0)
    if n_freq is not None:
        n_freq = _checks.integer("n_freq", n_freq, minimum=1)
    p, q = _spectra(a, smoothing, n_freq), _spectra(b, smoothing, n_freq)
    # (1/2) sum (sqrt p - sqrt q)^2 = 1 - sum sqrt(p q) for normalised p, q; this form is exactly 0
    # for equal spectra, where 1 - sum would leave the rounding of the sum
    h2 = 0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1)
    return _result(np.mean(np.sqrt(np.minimum(h2, 1.0)), axis=-1), batched)


# ---- teacher forcing (docs/models.md §13.4) ----------------------------------------------------

FORCING = ("sparse", "generalized")
ADAPTIVE_ALPHA = "adaptive"


def _forcing_options(teacher_forcing, forcing_interval, alpha, *, adaptive: bool = True):
    """The checked forcing options: (interval, alpha), alpha a float in [0, 1] or "adaptive"
    (only where ``adaptive``), or (None, None) without forcing.

    ``"generalized"`` (Hess et al. 2023) mixes ``alpha`` of the data into the state every
    ``forcing_interval`` observations (default 1); ``"sparse"`` (Mikhaeil et al. 2022) replaces
    the observed state (alpha = 1) every ``forcing_interval`` observations, which must be given:
    its best value is about the system's predictability time."""
    if teacher_forcing is None:
        for name, value in (("forcing_interval", forcing_interval), ("alpha", alpha)):
            if value is not None:
                raise ValueError(f"{name} is an option of teacher forcing; give teacher_forcing too")
        return None, None
    _checks.choice("teacher_forcing", teacher_forcing, FORCING)
    if teacher_forcing == "sparse":
        if forcing_interval is None:
            raise ValueError("teacher_forcing='sparse' needs forcing_interval (observations between forcings)")
        if alpha is not None:
            raise ValueError("teacher_forcing='sparse' replaces the state (alpha = 1); use 'generalized' for another alpha")
        return _checks.integer("forcing_interval", forcing_interval, minimum=1), 1.0
    interval = 1 if forcing_interval is None else _checks.integer("forcing_interval", forcing_interval, minimum=1)
    if alpha is None:
        raise ValueError("teacher_forcing='generalized' needs alpha: a number in [0, 1]"
                         + (" or 'adaptive'" if adaptive else ""))
    if isinstance(alpha, str):
        if not adaptive:  # the adaptive rule needs the state of a fit
            raise TypeError(f"alpha must be a number in [0, 1] here, got {alpha!r}")
        if alpha != ADAPTIVE_ALPHA:
            raise ValueError(f"alpha must be a number in [0, 1] or {ADAPTIVE_ALPHA!r}, got {alpha!r}")
        return interval, alpha
    alpha = _checks.real("alpha", alpha, minimum=0.0)
    if alpha > 1:
        raise ValueError(f"alpha must be <= 1, got {alpha}")
    return interval, alpha


def _forcing_times(n_times: int, interval: int) -> list:
    """Indices of the forced output times among ``n_times`` (the first is the initial state,
    never forced; forcing the last would change nothing)."""
    return list(range(interval, n_times - 1, interval))


def adaptive_alpha(jacobians: ArrayLike) -> float:
    """The generalised-teacher-forcing weight of Hess et al. (2023): with G the geometric mean of
    the spectral norms of the model's Jacobians between consecutive forcing times,
    ``alpha = max(0, 1 - 1/G)``, so that the forced Jacobians ``(1 - alpha) J`` have a mean
    norm of at most 1 and the gradients cannot explode along the rollout.

    Parameters
    ----------
    jacobians : array_like, shape (K, n, n)

    Returns
    -------
    float in [0, 1)
    """
    J = _checks.real_array("jacobians", jacobians).astype(np.float64)
    if J.ndim != 3 or J.shape[1] != J.shape[2] or J.size == 0:
        raise ValueError(f"jacobians must have shape (K, n, n) with K, n >= 1; got shape {J.shape}")
    norms = np.linalg.norm(J, ord=2, axis=(1, 2))
    log_g = float(np.mean(np.log(np.maximum(norms, np.finfo(np.float64).tiny))))
    return max(0.0, 1.0 - math.exp(-log_g))
