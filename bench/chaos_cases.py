"""Lyapunov spectra (docs/models.md §12): neurodyn's QR method in C against the same method
written in vectorised NumPy, and against nolds' estimators from a time series.

    python bench/run.py --suite chaos [--quick]

The Lorenz system (10, 28, 8/3). neurodyn: ``nd.lyapunov_spectrum`` on the built-in field,
RK4 with dt = 0.01 on the state and its three tangent vectors (the variational equations, the
Jacobian in C), re-orthonormalised after every step (modified Gram-Schmidt), 10 time units of
transient and ``T`` of accumulation. NumPy: the same algorithm, step for step (the same RK4 on
the same augmented system, ``np.linalg.qr`` after every step, the same transient), vectorised
over the batch of initial states: every stage is a handful of array operations on ``(B, 3)``
and ``(B, 3, 3)`` arrays and one batched ``J @ V`` — what a NumPy user writes. Its time is
measured on a shorter run and scaled by the ratio of steps (the steps cost the same all
along); its probe runs the full length, so its accuracy is the full run's. Accuracy is judged
against the published spectrum (0.9056, 0, -14.5723) with atol = 0.02 (0.1 for the batch's
shorter runs).

One state is the common use and the target (>= 100x). A batch is NumPy's best case: its
per-operation overhead is shared by the B states, so the ratio falls as B grows (recorded, no
target).

nolds (the package's ``lyap_r``, Rosenstein et al. 1993, and ``lyap_e``, Eckmann et al.
1986) estimates exponents from a scalar time series by delay embedding: a different estimator,
with no access to the equations. It gets the x component of a long Lorenz trajectory (made by
neurodyn beforehand, not timed), sampled every 0.02 time units; its estimates are per sample
and are divided by the sampling step. Its cost grows with the series (neighbour searches), so
the series length is the one where the estimate settles, and its accuracy is what it is.
"""
from __future__ import annotations

import numpy as np

from harness import Case, Probe, Side, Skip, Target

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
PUBLISHED = np.array([0.9056, 0.0, -14.5723])
DT, T_TRANS = 0.01, 10.0


def lorenz_np(y):
    x, v, z = y[:, 0], y[:, 1], y[:, 2]
    out = np.empty_like(y)
    out[:, 0] = SIGMA * (v - x)
    out[:, 1] = x * (RHO - z) - v
    out[:, 2] = x * v - BETA * z
    return out


def lorenz_jac_np(y, J):
    J[:, 1, 0] = RHO - y[:, 2]
    J[:, 1, 2] = -y[:, 0]
    J[:, 2, 0] = y[:, 1]
    J[:, 2, 1] = y[:, 0]
    return J


def numpy_qr_spectrum(y0, dt, n_trans, n_steps):
    """The QR method with RK4 on (y, V) for a batch y0 [B, 3], np.linalg.qr after every step."""
    y = np.array(y0, dtype=np.float64)
    B = y.shape[0]
    J = np.zeros((B, 3, 3))
    J[:, 0, 0], J[:, 0, 1], J[:, 1, 1], J[:, 2, 2] = -SIGMA, SIGMA, -1.0, -BETA
    V = np.broadcast_to(np.eye(3), (B, 3, 3)).copy()
    logs = np.zeros((B, 3))
    for step in range(n_trans + n_steps):
        k1 = lorenz_np(y)
        K1 = lorenz_jac_np(y, J) @ V
        y2 = y + 0.5 * dt * k1
        k2 = lorenz_np(y2)
        K2 = lorenz_jac_np(y2, J) @ (V + 0.5 * dt * K1)
        y3 = y + 0.5 * dt * k2
        k3 = lorenz_np(y3)
        K3 = lorenz_jac_np(y3, J) @ (V + 0.5 * dt * K2)
        y4 = y + dt * k3
        k4 = lorenz_np(y4)
        K4 = lorenz_jac_np(y4, J) @ (V + dt * K3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        V = V + dt / 6 * (K1 + 2 * K2 + 2 * K3 + K4)
        Q, R = np.linalg.qr(V)
        V = Q
        if step >= n_trans:
            logs += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    return -np.sort(-logs / (n_steps * dt), axis=1)


def _y0(B):
    rng = np.random.default_rng(2026)
    return np.array([1.0, 1.0, 20.0]) + rng.normal(size=(B, 3))


def nd_side(B, T, k=3):
    def factory():
        import neurodyn as nd

        field, y0 = nd.fields.Lorenz(SIGMA, RHO, BETA), _y0(B)
        kw = dict(n_exponents=k, t_transient=T_TRANS, t_total=T, dt=DT)

        def run():
            return nd.lyapunov_spectrum(field, y0, **kw)

        def probe():
            lam, info = nd.lyapunov_spectrum(field, y0, return_info=True, **kw)
            return Probe(ys=lam[None], nfev=int(info["nfev"]), accepted=int(info["steps"]),
                         counts_note=f"{int(info['nfev'])} batched f and J calls, sum - divergence "
                                     f"{float(np.max(np.abs(lam.sum(axis=1) - info['divergence']))) if k == 3 else 0:.1e}")

        return Side(run=run, probe=probe, note="nd.lyapunov_spectrum, RK4 + modified Gram-Schmidt, in C")

    return factory


def numpy_side(B, T, T_timed):
    def factory():
        y0 = _y0(B)
        n_trans, n_steps = round(T_TRANS / DT), round(T / DT)
        short = round(T_timed / DT)
        scale = (n_trans + n_steps) / (n_trans + short)

        def run():
            return numpy_qr_spectrum(y0, DT, n_trans, short)

        def probe():
            return Probe(ys=numpy_qr_spectrum(y0, DT, n_trans, n_steps)[None], accepted=n_steps,
                         counts_note="the full run (timing on a shorter one, scaled)")

        return Side(run=run, probe=probe, time_scale=scale,
                    note=f"vectorised NumPy over the batch, np.linalg.qr per step; timed on T = {T_timed:g}, "
                         f"scaled x{scale:.3g}")

    return factory


def _nolds():
    try:
        import nolds
    except Exception as exc:  # nolds 0.6.3 fails at import (its data files); 0.5.2 works
        raise Skip(f"nolds not importable: {type(exc).__name__}: {exc}") from None
    return nolds


def _series(n, every):
    import neurodyn as nd

    t = np.arange(n + 500) * every
    ys = nd.odeint(nd.fields.Lorenz(SIGMA, RHO, BETA), np.array([1.0, 1.0, 20.0]), t, method="dop853", rtol=1e-10,
                   atol=1e-10, max_steps=10**7)
    return ys[500:, 0]  # the transient dropped


def nolds_side(which, n, every):
    def factory():
        nolds = _nolds()
        x = _series(n, every)
        if which == "lyap_r":
            def run():
                return nolds.lyap_r(x, emb_dim=10, lag=None, min_tsep=None, trajectory_len=20)
        else:
            def run():
                return nolds.lyap_e(x, emb_dim=5, matrix_dim=3)

        def probe():
            lam = np.atleast_1d(np.asarray(run(), dtype=np.float64)) / every
            return Probe(ys=lam[None, None, :], counts_note=f"{n} samples every {every:g}")

        return Side(run=run, probe=probe, note=f"nolds.{which}, x(t) only, {n} samples every {every:g} "
                                               "(a time-series estimator)")

    return factory


SAME_QR = "the same QR method on the same orbit in float64: rounding only"
OTHER_ESTIMATOR = ("a different estimator (from a time series of x): not the same work, so no bound; both sides are "
                   "scored against the published exponents instead")


def published(B, k=3):
    def reference():
        return Probe(ys=np.broadcast_to(PUBLISHED[:k], (1, B, k)).copy(), counts_note="published (Sprott)")

    return reference


def build(quick: bool, timer_cfg) -> list:
    T1, T1_np, TB, TB_np, B = (50.0, 2.0, 10.0, 1.0, 8) if quick else (500.0, 20.0, 200.0, 5.0, 100)
    n_series = 2000 if quick else 10000
    cases = [
        Case(name="lorenz_spectrum_one",
             description=(f"Lorenz (10, 28, 8/3) spectrum from one state: RK4 dt = {DT}, transient {T_TRANS:g}, "
                          f"T = {T1:g} ({round((T1 + T_TRANS) / DT)} steps), QR after every step"),
             params={"B": 1, "dt": DT, "t_transient": T_TRANS, "t_total": T1, "orth_every": 1},
             neurodyn=nd_side(1, T1), peers={"numpy_qr": numpy_side(1, T1, T1_np)},
             rtol=0.0, atol=0.02, reference=published(1), agree=1e-8, agree_metric="max_abs",
             agree_why=SAME_QR,
             targets=[Target("numpy_qr", 100.0, "neurodyn >= 100x faster than the same QR method in NumPy")]),
        Case(name=f"lorenz_spectrum_batch{B}",
             description=(f"Lorenz spectra from {B} states at once: RK4 dt = {DT}, transient {T_TRANS:g}, "
                          f"T = {TB:g}, QR after every step (NumPy vectorised over the batch: its best case)"),
             params={"B": B, "dt": DT, "t_transient": T_TRANS, "t_total": TB, "orth_every": 1},
             neurodyn=nd_side(B, TB), peers={"numpy_qr": numpy_side(B, TB, TB_np)},
             rtol=0.0, atol=0.1, reference=published(B), agree=1e-8, agree_metric="max_abs",
             agree_why=SAME_QR),
        Case(name="lorenz_largest_vs_nolds_lyap_r",
             description=(f"Lorenz largest exponent: neurodyn's QR method (k = 1, T = {T1:g}) against nolds.lyap_r "
                          f"(Rosenstein) on {n_series} samples of x(t); different estimators"),
             params={"t_total": T1, "series": n_series, "sample_every": 0.02},
             neurodyn=nd_side(1, T1, k=1), peers={"nolds_lyap_r": nolds_side("lyap_r", n_series, 0.02)},
             rtol=0.0, atol=0.02, reference=published(1, 1), agree=float("inf"), agree_metric="max_abs",
             agree_why=OTHER_ESTIMATOR),
        Case(name="lorenz_spectrum_vs_nolds_lyap_e",
             description=(f"Lorenz spectrum: neurodyn's QR method (T = {T1:g}) against nolds.lyap_e (Eckmann, "
                          f"embedding 5, matrix 3) on {n_series} samples of x(t); different estimators"),
             params={"t_total": T1, "series": n_series, "sample_every": 0.02},
             neurodyn=nd_side(1, T1), peers={"nolds_lyap_e": nolds_side("lyap_e", n_series, 0.02)},
             rtol=0.0, atol=0.02, reference=published(1), agree=float("inf"), agree_metric="max_abs",
             agree_why=OTHER_ESTIMATOR),
    ]
    if quick:
        for c in cases:
            for tg in c.targets:
                tg.text += " [quick sizes: indicative only]"
    return cases
