"""Stiff ODE benchmark cases: neurodyn's implicit methods (radau, bdf) and its automatic
switching (auto: dopri5, radau where stiff) against SciPy's
solve_ivp(BDF) and solve_ivp(Radau) on Hairer & Wanner's Robertson kinetics (t in [0, 1e11],
log-spaced outputs) and Van der Pol's oscillator with mu = 1e3 (t in [0, 3000]), one
trajectory with neurodyn's right-hand side in C (a built-in polynomial field with its exact
Jacobian); and a batch of 1,000 Robertson problems with rates varied +-20% through a
vectorised NumPy right-hand side, against a loop of solve_ivp calls.

Why these peers are the same work: every side solves the same equations from the same
state to the same output times at the same tolerances (rtol 1e-6, SciPy's error norm: RMS of
err / (atol + rtol |y|)), with the exact Jacobian (SciPy gets the NumPy twin of the C one),
and fills the output times from its dense output. SciPy's sides call Python for every
evaluation, as a SciPy user must; neurodyn's single-trajectory sides do not (that is what a
built-in field is for), its batch side calls the Python right-hand side once per round for
every live trajectory's rows. The evaluation counts and the error against a tight reference
are recorded next to each time.
"""
from __future__ import annotations

import numpy as np

from harness import Case, Probe, Side, Skip, Target

RTOL = 1e-6
ND_MAX_STEPS = 1_000_000

ROBER_TERMS = [(0, -0.04, {0: 1}), (0, 1e4, {1: 1, 2: 1}), (1, 0.04, {0: 1}), (1, -1e4, {1: 1, 2: 1}),
               (1, -3e7, {1: 2}), (2, 3e7, {1: 2})]


def vdp_terms(mu):
    return [(0, 1.0, {1: 1}), (1, mu, {1: 1}), (1, -mu, {0: 2, 1: 1}), (1, -1.0, {0: 1})]


def rober(t, y, k1=0.04, k2=3e7, k3=1e4):
    y1, y2, y3 = y
    return np.array([-k1 * y1 + k3 * y2 * y3, k1 * y1 - k3 * y2 * y3 - k2 * y2 * y2, k2 * y2 * y2])


def rober_jac(t, y, k1=0.04, k2=3e7, k3=1e4):
    y1, y2, y3 = y
    return np.array([[-k1, k3 * y3, k3 * y2], [k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2], [0.0, 2 * k2 * y2, 0.0]])


def vdp(mu):
    def f(t, y):
        return np.array([y[1], mu * (1 - y[0] * y[0]) * y[1] - y[0]])

    def jac(t, y):
        return np.array([[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] * y[0])]])
    return f, jac


def rober_rates(t, y):
    """Vectorised Robertson with each row's rates in its state: y (m, 6) = (y1, y2, y3, k1, k2, k3)."""
    y1, y2, y3, k1, k2, k3 = y.T
    a, b, c = k1 * y1, k3 * y2 * y3, k2 * y2 * y2
    z = np.zeros_like(y1)
    return np.stack([-a + b, a - b - c, c, z, z, z], axis=-1)


def rober_rates_jac(t, y):
    y1, y2, y3, k1, k2, k3 = y.T
    J = np.zeros(y.shape + (6,))
    J[:, 0, 0], J[:, 0, 1], J[:, 0, 2], J[:, 0, 3], J[:, 0, 5] = -k1, k3 * y3, k3 * y2, -y1, y2 * y3
    J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2
    J[:, 1, 3], J[:, 1, 4], J[:, 1, 5] = y1, -y2 * y2, -y2 * y3
    J[:, 2, 1], J[:, 2, 4] = 2 * k2 * y2, y2 * y2
    return J


def _solve_ivp():
    try:
        from scipy.integrate import solve_ivp
    except ImportError as exc:
        raise Skip(f"scipy not importable: {exc}") from None
    return solve_ivp


def _counts_note(njev, nlu):
    return f"njev {njev}, nlu {nlu}"


def neurodyn_side(make_f, y0, t, method, atol, jac=None):
    def factory():
        import neurodyn as nd

        f = make_f(nd)
        kw = dict(method=method, rtol=RTOL, atol=atol, jac=jac, max_steps=ND_MAX_STEPS, verbose=False)

        def run():
            return nd.odeint(f, y0, t, **kw)

        def probe():
            ys, info = nd.odeint(f, y0, t, return_info=True, **kw)
            total = info["total"]
            return Probe(ys=ys, nfev=total["nfev"], accepted=total["accepted"], rejected=total["rejected"],
                         counts_note=_counts_note(total["njev"], total["nlu"]) + f", rhs calls {total['rhs_calls']}")

        return Side(run=run, probe=probe)

    return factory


def scipy_side(fun, jac, y0, t, method, atol):
    def factory():
        solve_ivp = _solve_ivp()
        span = (float(t[0]), float(t[-1]))

        def run():
            return solve_ivp(fun, span, y0, method=method, t_eval=t, rtol=RTOL, atol=atol, jac=jac)

        def probe():
            sol = run()
            if not sol.success:
                raise RuntimeError(sol.message)
            return Probe(ys=sol.y.T, nfev=sol.nfev, counts_note=_counts_note(sol.njev, sol.nlu))

        return Side(run=run, probe=probe, note=f"solve_ivp({method}), analytic jac")

    return factory


def scipy_loop_side(Y0, t, method, atol, rows):
    """One solve_ivp per trajectory with its rates as args: what a SciPy user does with a
    batch. Only ``rows`` are timed; the time is scaled to the whole batch (the trajectories
    are independent and drawn from one distribution)."""

    def factory():
        solve_ivp = _solve_ivp()
        span = (float(t[0]), float(t[-1]))

        def run():
            return [solve_ivp(rober, span, Y0[i, :3], method=method, t_eval=t, rtol=RTOL, atol=atol, jac=rober_jac,
                              args=tuple(Y0[i, 3:])) for i in rows]

        def probe():
            sols = run()
            if not all(s.success for s in sols):
                raise RuntimeError("a trajectory failed")
            ys = np.stack([np.concatenate([s.y.T, np.tile(Y0[i, 3:], (len(t), 1))], axis=1)
                           for s, i in zip(sols, rows)], axis=1)
            return Probe(ys=ys, rows=np.asarray(rows), nfev=sum(s.nfev for s in sols),
                         counts_note=_counts_note(sum(s.njev for s in sols), sum(s.nlu for s in sols))
                         + f", summed over the {len(rows)} timed trajectories")

        scale = Y0.shape[0] / len(rows)
        return Side(run=run, probe=probe, time_scale=scale,
                    note=f"solve_ivp({method}) per trajectory; timed {len(rows)} of {Y0.shape[0]} (seeded), "
                         f"time scaled x{scale:g}")

    return factory


def tight_reference(make_f, y0, t, atol):
    """neurodyn's Radau at rtol 1e-12 on the C field (its end values agree with the Test Set
    for IVP Solvers to 1e-12: tests/test_ode_stiff.py)."""

    def reference():
        import neurodyn as nd

        ys = nd.odeint(make_f(nd), y0, t, method="radau", rtol=1e-12, atol=atol * 1e-6, max_steps=10**7)
        return Probe(ys=ys, counts_note="neurodyn radau rtol=1e-12 on the built-in field")

    return reference


# --------------------------------------------------------------------------------------
# the cases

ROBER_T = np.concatenate([[0.0], np.logspace(-6, 11, 35)])
VDP_T = np.linspace(0.0, 3000.0, 31)


def single(problem, method, quick):
    if problem == "robertson":
        fun, jac, terms, y0, t, atol = rober, rober_jac, ROBER_TERMS, np.array([1.0, 0.0, 0.0]), ROBER_T, 1e-10
        if quick:
            t = t[t <= 1e5]
        what = "Robertson (0.04, 3e7, 1e4)"
    else:
        (fun, jac), terms, y0, t, atol = vdp(1e3), vdp_terms(1e3), np.array([2.0, 0.0]), VDP_T, 1e-6
        if quick:
            t = t[:4]
        what = "Van der Pol mu = 1e3"
    make = lambda nd: nd.fields.Polynomial.from_terms(len(y0), terms)  # noqa: E731
    return Case(
        name=f"{problem}_{method}_c",
        description=(f"{method}, {what}, one trajectory, C right-hand side, t in [0, {t[-1]:g}], {len(t)} outputs, "
                     f"rtol={RTOL:g} atol={atol:g}"),
        params={"y0": y0.tolist(), "t1": float(t[-1]), "n_out": len(t), "field": "nd.fields.Polynomial",
                "scipy_rhs": "NumPy (unpack + np.array) with its analytic jac"},
        rtol=RTOL, atol=atol,
        neurodyn=neurodyn_side(make, y0, t, method, atol),
        # the same method (accuracy is judged against the best peer), and SciPy's BDF (the target)
        peers={"scipy_bdf": scipy_side(fun, jac, y0, t, "BDF", atol),
               **({"scipy_radau": scipy_side(fun, jac, y0, t, "Radau", atol)} if method == "radau" else {})},
        reference=tight_reference(make, y0, t, atol),
        # Van der Pol at mu = 1e3: SciPy's BDF ends 100 tolerance units from the reference itself
        agree=(100 if problem == "robertson" else 500) * RTOL,
        agree_why="max |diff| / max |y| <= 100 rtol (global errors are tens of tolerance units; 500 rtol on Van der "
                  "Pol, where SciPy's BDF is itself 100 tolerance units from the reference)",
        targets=[Target("scipy_bdf", 50.0, "neurodyn (C rhs) >= 50x faster than SciPy's BDF per trajectory")],
    )


def batch(method, n, loop_rows, quick):
    rng = np.random.default_rng(2026)
    Y0 = np.concatenate([np.tile([1.0, 0.0, 0.0], (n, 1)),
                         np.array([0.04, 3e7, 1e4]) * rng.uniform(0.8, 1.2, size=(n, 3))], axis=1)
    t = ROBER_T if not quick else ROBER_T[ROBER_T <= 1e5]
    atol = 1e-10
    rows = np.sort(np.random.default_rng(777).permutation(n)[:loop_rows])
    def reference():  # the rates differ per row: the Python twin, solved tightly
        import neurodyn as nd

        ys = nd.odeint(rober_rates, Y0[rows], t, method="radau", jac=rober_rates_jac, rtol=1e-12, atol=atol * 1e-6,
                       max_steps=10**7, verbose=False)
        return Probe(ys=ys, rows=np.asarray(rows), counts_note="neurodyn radau rtol=1e-12 on the timed rows")

    return Case(
        name=f"robertson_batch{n}_{method}_python",
        description=(f"{method}, {n} Robertson problems (rates x U(0.8, 1.2), seed 2026) as one batch with a "
                     f"vectorised NumPy rhs and jac, t in [0, {t[-1]:g}], {len(t)} outputs, rtol={RTOL:g} "
                     f"atol={atol:g}"),
        params={"batch": n, "state": "(y1, y2, y3, k1, k2, k3), k' = 0", "n_out": len(t), "scipy_loop_rows": loop_rows,
                "scipy_loop_subset_seed": 777},
        rtol=RTOL, atol=atol,
        neurodyn=neurodyn_side(lambda nd: rober_rates, Y0, t, method, atol, jac=rober_rates_jac),
        peers={"scipy_bdf_loop": scipy_loop_side(Y0, t, "BDF", atol, rows),
               **({"scipy_radau_loop": scipy_loop_side(Y0, t, "Radau", atol, rows)} if method == "radau" else {})},
        reference=reference,
        agree=100 * RTOL, agree_why="max |diff| / max |y| <= 100 rtol (global errors are tens of tolerance units)",
        targets=[Target("scipy_bdf_loop", 10.0, "neurodyn batch (Python rhs) >= 10x faster than a SciPy BDF loop")],
    )


def build(quick: bool, timer_cfg) -> list:
    """All stiff cases; ``quick`` shortens the intervals and the batch."""
    n, loop_rows = (16, 2) if quick else (1000, 10)
    cases = [single(p, m, quick) for p in ("robertson", "vdp1e3") for m in ("bdf", "radau", "auto")]
    cases += [batch(m, n, loop_rows, quick) for m in ("bdf", "radau", "auto")]
    if quick:
        for c in cases:
            for tg in c.targets:
                tg.text += " [quick sizes: indicative only]"
    return cases
