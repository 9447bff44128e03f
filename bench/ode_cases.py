"""ODE benchmark cases: dopri5 on the Lorenz system (one trajectory, a batch, a Python
right-hand side) and on an MLP vector field, against SciPy's solve_ivp(RK45) and
torchdiffeq's dopri5.

Why these peers are the same work: all three use Dormand–Prince 5(4) with the same error
norm — RMS over the state of err / (atol + rtol * max(|y_old|, |y_new|)), accept when <= 1 —
Hairer's initial step, a 0.9 safety factor with step ratios clamped to [0.2, 10], and output
times filled by dense output (the steps do not stop at output times). The controllers differ
in details (SciPy forbids growth right after a rejection; neurodyn shrinks rejected steps
with exponent 1/4 rather than 1/5), so step counts can differ by a few percent; they are
recorded next to each time so the comparison can be checked.
"""
from __future__ import annotations

import functools

import numpy as np

from harness import Case, Probe, Side, Skip, Target, floors

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
# neurodyn's default budget (10,000 attempted steps) is a safety net for users; the peers
# have none, so it is lifted here to make sure no side stops early.
ND_MAX_STEPS = 1_000_000
TIGHT_LORENZ = (1e-6, 1e-9)
TIGHT_MLP = (1e-5, 1e-7)
DEFAULT = (1e-3, 1e-6)  # neurodyn's defaults, given explicitly to every side


# --------------------------------------------------------------------------------------
# right-hand sides


def lorenz_rhs(t, u):
    """The Lorenz equations in NumPy for one state of shape (3,): the callable given to
    both nd.odeint and solve_ivp in the Python-callable case, and SciPy's rhs elsewhere."""
    x, y, z = u
    return np.array([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])


def lorenz_rhs_batch(t, u):
    """Vectorised over leading axes: u has shape (..., 3)."""
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return np.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z], axis=-1)


@functools.lru_cache(maxsize=None)
def _torch():
    """torch and the torch modules, imported on first use so a missing torch is a skip."""
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch not importable: {exc}") from None

    class TorchLorenz(torch.nn.Module):
        def forward(self, t, u):
            x, y, z = u.unbind(-1)
            return torch.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z], dim=-1)

    class TorchMLP(torch.nn.Module):
        """dy/dt = tanh(y W1 + b1) W2 + b2 with nn.Linear layers (weight stored [out, in])."""

        def __init__(self, W1, b1, W2, b2):
            super().__init__()
            self.l1 = torch.nn.Linear(*W1.shape, dtype=torch.float64)
            self.l2 = torch.nn.Linear(*W2.shape, dtype=torch.float64)
            with torch.no_grad():
                self.l1.weight.copy_(torch.from_numpy(np.ascontiguousarray(W1.T)))
                self.l1.bias.copy_(torch.from_numpy(b1))
                self.l2.weight.copy_(torch.from_numpy(np.ascontiguousarray(W2.T)))
                self.l2.bias.copy_(torch.from_numpy(b2))

        def forward(self, t, y):
            return self.l2(torch.tanh(self.l1(y)))

    class Counted(torch.nn.Module):
        """Counts evaluations and torchdiffeq's accepted/rejected step callbacks (probe only)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.nfev = self.accepted = self.rejected = 0

        def forward(self, t, y):
            self.nfev += 1
            return self.inner(t, y)

        def callback_accept_step(self, t0, y0, dt):
            self.accepted += 1

        def callback_reject_step(self, t0, y0, dt):
            self.rejected += 1

    return torch, TorchLorenz, TorchMLP, Counted


# --------------------------------------------------------------------------------------
# sides


def neurodyn_side(make_f, y0, t, rtol, atol):
    def factory():
        import neurodyn as nd

        f = make_f(nd)

        def run():
            return nd.odeint(f, y0, t, rtol=rtol, atol=atol, max_steps=ND_MAX_STEPS)

        def probe():
            ys, info = nd.odeint(f, y0, t, rtol=rtol, atol=atol, max_steps=ND_MAX_STEPS, return_info=True)
            tot = info.get("total", info)  # a batch: the whole call's counters
            return Probe(ys=ys, nfev=int(tot["nfev"]), accepted=int(tot["accepted"]),
                         rejected=int(tot["rejected"]))

        return Side(run=run, probe=probe)

    return factory


def neurodyn_coupled_side(y0, t, rtol, atol):
    """neurodyn with coupled=True: the batch as one system (one step size, one error norm)."""

    def factory():
        import neurodyn as nd

        f = nd.fields.Lorenz(SIGMA, RHO, BETA)

        def run():
            return nd.odeint(f, y0, t, rtol=rtol, atol=atol, max_steps=ND_MAX_STEPS, coupled=True)

        def probe():
            ys, info = nd.odeint(f, y0, t, rtol=rtol, atol=atol, max_steps=ND_MAX_STEPS, coupled=True,
                                 return_info=True)
            return Probe(ys=ys, nfev=int(info["nfev"]) * y0.shape[0], accepted=int(info["accepted"]),
                         rejected=int(info["rejected"]), counts_note="nfev counts every row of each evaluation")

        return Side(run=run, probe=probe, note="coupled=True: one step size for the whole batch")

    return factory


def torchode_side(y0, t, rtol, atol):
    """torchode's Dopri5 with per-sample step control on the batch (CPU)."""

    def factory():
        try:
            import torch
            import torchode as to
        except ImportError as exc:
            raise Skip(f"torchode not importable: {exc}") from None
        L = _torch()[1]
        term = to.ODETerm(L())
        solver = to.AutoDiffAdjoint(to.Dopri5(term=term), to.IntegralController(atol=atol, rtol=rtol, term=term))
        y = torch.tensor(y0, dtype=torch.float64)
        te = torch.tensor(np.broadcast_to(t, (y0.shape[0], len(t))).copy(), dtype=torch.float64)

        def run():
            with torch.no_grad():
                return solver.solve(to.InitialValueProblem(y0=y, t_eval=te))

        def probe():
            sol = run()
            ys = sol.ys.numpy().transpose(1, 0, 2)
            return Probe(ys=ys, nfev=int(sol.stats["n_f_evals"].sum()),
                         accepted=int(sol.stats["n_accepted"].sum()), rejected=None)

        return Side(run=run, probe=probe, note="torchode Dopri5, IntegralController, per-sample steps")

    return factory


def diffrax_side(y0, t, rtol, atol, make_vf=None, what="Lorenz", quick=False):
    """diffrax Dopri5 under jax.jit(jax.vmap(...)): each sample its own steps, as neurodyn's
    default (CPU, float64). ``make_vf(jnp)`` gives the vector field of one state (default:
    Lorenz)."""

    def factory():
        try:
            from neural_ode_cases import jax_mod

            jax = jax_mod(x64=True, quick=quick)
            import diffrax
            import jax.numpy as jnp
        except ImportError as exc:
            raise Skip(f"diffrax/jax not importable: {exc}") from None

        def lorenz(tt, u, args):
            x, yv, z = u[0], u[1], u[2]
            return jnp.stack([SIGMA * (yv - x), x * (RHO - z) - yv, x * yv - BETA * z])

        vf = lorenz if make_vf is None else make_vf(jnp)
        ts = jnp.asarray(t)

        def one(u0):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(vf), diffrax.Dopri5(), t0=float(t[0]), t1=float(t[-1]),
                                      dt0=None, y0=u0, saveat=diffrax.SaveAt(ts=ts),
                                      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                                      max_steps=ND_MAX_STEPS)
            return sol.ys, sol.stats["num_steps"], sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"]

        batched = jax.jit(jax.vmap(one))
        yj = jnp.asarray(y0, dtype=jnp.float64)
        jax.block_until_ready(batched(yj))  # compile outside the timing

        def run():
            return jax.block_until_ready(batched(yj))

        def probe():
            ys, steps, acc, rej = run()
            return Probe(ys=np.asarray(ys).transpose(1, 0, 2), nfev=int(np.sum(steps)) * 6 + 2 * len(steps),
                         accepted=int(np.sum(acc)), rejected=int(np.sum(rej)),
                         counts_note="nfev estimated: 6 per attempted step (FSAL) + 2 for the initial step, per sample")

        return Side(run=run, probe=probe, note=f"diffrax Dopri5, PIDController(rtol, atol), jit(vmap) over samples "
                                               f"({what}); XLA on one thread (run.py sets XLA_FLAGS)")

    return factory


def lorenz_samples(tol, batch, loop_rows, t1=10.0, quick=False):
    """(e) The same batch with per-sample step control (neurodyn's default): against
    neurodyn's own coupled mode, a SciPy solve_ivp loop, torchode and diffrax (jit, vmap),
    which all step each sample separately."""
    rtol, atol = tol
    rng = np.random.default_rng(12345)
    Y0 = rng.uniform([-20.0, -25.0, 5.0], [20.0, 25.0, 45.0], size=(batch, 3))
    t = np.linspace(0.0, t1, int(round(10 * t1)) + 1)
    rows = np.sort(np.random.default_rng(777).permutation(batch)[:loop_rows])
    return Case(
        name=f"lorenz_samples{batch}_rtol{rtol:g}",
        description=(f"dopri5 per sample, Lorenz, batch of {batch}, t in [0, {t1:g}], {len(t)} outputs, "
                     f"rtol={rtol:g} atol={atol:g}"),
        params={"batch": batch, "y0": "uniform box [-20,20]x[-25,25]x[5,45], seed 12345", "t0": 0.0, "t1": t1,
                "n_out": len(t), "scipy_loop_rows": int(loop_rows)},
        rtol=rtol, atol=atol,
        neurodyn=neurodyn_side(lambda nd: nd.fields.Lorenz(SIGMA, RHO, BETA), Y0, t, rtol, atol),
        peers={
            "neurodyn_coupled": neurodyn_coupled_side(Y0, t, rtol, atol),
            "scipy_rk45_loop": scipy_loop_side(lorenz_rhs, Y0, t, rtol, atol, rows),
            "torchode": torchode_side(Y0, t, rtol, atol),
            "diffrax": diffrax_side(Y0, t, rtol, atol, quick=quick),
        },
        reference=dop853_reference(lorenz_rhs, Y0, t, rows=rows),
        agree=300 * rtol, agree_window=slice(0, 11),
        agree_why="max |diff| / max |y| <= 300 rtol (global errors of the solvers are tens of tolerance units, and "
                  "Lorenz's divergence grows them about 2.5x per unit time); Lorenz is chaotic: compared on t <= 1 "
                  "(the first 11 outputs), before differences at the tolerance grow by orders of magnitude; the "
                  "whole span is judged against the reference",
        targets=[Target("neurodyn_coupled", 1 / 1.2, "per-sample control no slower than 1.2x the coupled mode"),
                 Target("torchode", 20.0, "neurodyn >= 20x faster than torchode"),
                 Target("diffrax", 3.0, "neurodyn >= 3x faster than diffrax (jit, vmap)"),
                 Target("scipy_rk45_loop", 500.0, "neurodyn >= 500x faster than a SciPy solve_ivp loop")],
    )


def _scipy():
    try:
        from scipy.integrate import RK45, solve_ivp
    except ImportError as exc:
        raise Skip(f"scipy not importable: {exc}") from None
    return RK45, solve_ivp


def _rk45_counts(fun, t, y0, rtol, atol):
    """Accepted and rejected steps of SciPy's RK45 on this problem, by driving the solver
    class step by step (solve_ivp does not report them). t_eval does not change SciPy's
    steps (it interpolates), so these are the steps of the timed call too. SciPy spends
    2 evaluations before the first step (f(t0, y0) and the initial-step probe) and 6 per
    attempted step."""
    RK45, _ = _scipy()
    s = RK45(fun, t[0], y0, t[-1], rtol=rtol, atol=atol)
    accepted = 0
    while s.status == "running":
        s.step()
        accepted += 1
    if s.status != "finished":
        raise RuntimeError(f"RK45 failed: {s.status}")
    attempted, rem = divmod(s.nfev - 2, 6)
    return s.nfev, accepted, (attempted - accepted if rem == 0 else None)


def scipy_side(fun, y0, t, rtol, atol, state_shape, note=""):
    """solve_ivp(RK45) on the state flattened to 1-D (SciPy's requirement)."""

    def factory():
        _, solve_ivp = _scipy()
        flat0 = np.ascontiguousarray(y0, dtype=np.float64).ravel()
        span = (float(t[0]), float(t[-1]))

        def run():
            return solve_ivp(fun, span, flat0, method="RK45", t_eval=t, rtol=rtol, atol=atol)

        def probe():
            sol = run()
            if not sol.success:
                raise RuntimeError(sol.message)
            nfev, acc, rej = _rk45_counts(fun, t, flat0, rtol, atol)
            assert nfev == sol.nfev
            return Probe(ys=sol.y.T.reshape((len(t),) + tuple(state_shape)), nfev=sol.nfev, accepted=acc,
                         rejected=rej)

        return Side(run=run, probe=probe, note=note)

    return factory


def scipy_loop_side(fun, Y0, t, rtol, atol, rows):
    """One solve_ivp(RK45) per trajectory, each with its own step sizes: what a SciPy user
    does with a batch. Only ``rows`` are timed; the time is scaled to the whole batch, which
    is linear because the trajectories are independent and drawn from one distribution."""

    def factory():
        _, solve_ivp = _scipy()
        span = (float(t[0]), float(t[-1]))
        sub = [np.ascontiguousarray(Y0[i], dtype=np.float64) for i in rows]

        def run():
            return [solve_ivp(fun, span, y, method="RK45", t_eval=t, rtol=rtol, atol=atol) for y in sub]

        def probe():
            sols = run()
            if not all(s.success for s in sols):
                raise RuntimeError("a trajectory failed")
            ys = np.stack([s.y.T for s in sols], axis=1)
            counts = [_rk45_counts(fun, t, y, rtol, atol) for y in sub]
            nfev = sum(c[0] for c in counts)
            acc = sum(c[1] for c in counts)
            rej = None if any(c[2] is None for c in counts) else sum(c[2] for c in counts)
            return Probe(ys=ys, rows=np.asarray(rows), nfev=nfev, accepted=acc, rejected=rej,
                         counts_note=f"summed over the {len(rows)} timed trajectories (per-trajectory steps)")

        scale = Y0.shape[0] / len(rows)
        note = (f"timed {len(rows)} of {Y0.shape[0]} trajectories (seeded random subset), time scaled x{scale:g}"
                if scale != 1 else "")
        return Side(run=run, probe=probe, note=note, time_scale=scale)

    return factory


def torchdiffeq_side(make_module, y0, t, rtol, atol, compiled=False, quick=False):
    def factory():
        torch, TorchLorenz, TorchMLP, Counted = _torch()
        try:
            import torchdiffeq
        except ImportError as exc:
            raise Skip(f"torchdiffeq not importable: {exc}") from None
        func = make_module(TorchLorenz, TorchMLP)
        if compiled:
            from neural_ode_cases import torch_compile

            func = torch_compile(func, quick)
        y0t = torch.tensor(np.asarray(y0), dtype=torch.float64)
        tt = torch.tensor(np.asarray(t), dtype=torch.float64)

        def run():
            with torch.no_grad():
                return torchdiffeq.odeint(func, y0t, tt, rtol=rtol, atol=atol, method="dopri5")

        def probe():
            counted = Counted(func)
            with torch.no_grad():
                ys = torchdiffeq.odeint(counted, y0t, tt, rtol=rtol, atol=atol, method="dopri5")
            return Probe(ys=ys.numpy(), nfev=counted.nfev, accepted=counted.accepted, rejected=counted.rejected)

        return Side(run=run, probe=probe, note=("torch.compile(field); " if compiled else "") +
                    "the batch as one system (one step size)")

    return factory


def dop853_reference(fun, Y0, t, rows=None, rtol=1e-12, atol=1e-12):
    """A much tighter solution (SciPy DOP853) to measure each side's actual error. With
    ``rows``, Y0 is a batch and only those trajectories are solved, one at a time."""

    def reference():
        _, solve_ivp = _scipy()
        span = (float(t[0]), float(t[-1]))
        starts = [Y0] if rows is None else [Y0[i] for i in rows]
        out = []
        for y in starts:
            y = np.asarray(y, dtype=np.float64)
            sol = solve_ivp(fun, span, y.ravel(), method="DOP853", t_eval=t, rtol=rtol, atol=atol)
            if not sol.success:
                raise RuntimeError(sol.message)
            out.append(sol.y.T.reshape((len(t),) + y.shape))
        ys = out[0] if rows is None else np.stack(out, axis=1)
        return Probe(ys=ys, rows=None if rows is None else np.asarray(rows),
                     counts_note=f"SciPy DOP853 rtol={rtol:g} atol={atol:g}")

    return reference


# --------------------------------------------------------------------------------------
# the cases


def _tol_name(tol):
    return "tight" if tol in (TIGHT_LORENZ, TIGHT_MLP) else "default"


def lorenz_single(tol, t1=10.0):
    """(a) One trajectory with the C field, against SciPy RK45 and torchdiffeq."""
    rtol, atol = tol
    y0 = np.array([1.0, 1.0, 1.0])
    t = np.linspace(0.0, t1, int(round(10 * t1)) + 1)
    return Case(
        name=f"lorenz_single_{_tol_name(tol)}",
        description=f"dopri5, Lorenz, one trajectory, t in [0, {t1:g}], {len(t)} outputs, rtol={rtol:g} atol={atol:g}",
        params={"y0": y0.tolist(), "t0": 0.0, "t1": t1, "n_out": len(t), "field": "nd.fields.Lorenz()",
                "scipy_rhs": "lorenz_rhs (NumPy, unpack + np.array)", "torch_rhs": "unbind + stack"},
        rtol=rtol, atol=atol,
        neurodyn=neurodyn_side(lambda nd: nd.fields.Lorenz(SIGMA, RHO, BETA), y0, t, rtol, atol),
        peers={
            "scipy_rk45": scipy_side(lorenz_rhs, y0, t, rtol, atol, (3,)),
            "torchdiffeq": torchdiffeq_side(lambda L, M: L(), y0, t, rtol, atol),
        },
        reference=dop853_reference(lorenz_rhs, y0, t),
        agree=300 * rtol, agree_window=slice(0, 11),
        agree_why="max |diff| / max |y| <= 300 rtol (global errors of the solvers are tens of tolerance units, and "
                  "Lorenz's divergence grows them about 2.5x per unit time); Lorenz is chaotic: compared on t <= 1 "
                  "(the first 11 outputs), before differences at the tolerance grow by orders of magnitude; the "
                  "whole span is judged against the reference",
    )


def shared_norm_bound(factory, rtol):
    """torchdiffeq's side of the shared-step Lorenz batch, with its own bound at loose tolerances.
    One step size for 1000 trajectories, controlled by an RMS error over 3000 components, leaves
    the worst trajectory far off at rtol 1e-3: on t <= 1, 0.67 max|y| from the DOP853 reference
    for neurodyn and 0.74 for torchdiffeq (measured), whose different norm and first step make
    other steps; SciPy's flattened solve takes neurodyn's steps and stays within the case's bound.
    At rtol 1e-6 the case's bound applies to every peer."""
    if rtol < 1e-4:
        return factory

    def wrapped():
        side = factory()
        side.agree = 1.5
        side.agree_why = ("a shared step over 1000 trajectories at rtol 1e-3: the worst trajectory is 0.67 (neurodyn) "
                          "and 0.74 (torchdiffeq) max|y| from the reference on t <= 1, in different directions")
        return side

    return wrapped


def lorenz_batch(tol, batch, loop_rows, t1=10.0):
    """(b) A batch integrated as one system (shared step, like torchdiffeq) against a
    SciPy loop over trajectories, torchdiffeq on the batch tensor, and SciPy on the
    flattened batch (the same shared-step system as neurodyn's)."""
    rtol, atol = tol
    rng = np.random.default_rng(12345)
    # A box around the attractor, so every trajectory does real work from t = 0.
    Y0 = rng.uniform([-20.0, -25.0, 5.0], [20.0, 25.0, 45.0], size=(batch, 3))
    t = np.linspace(0.0, t1, int(round(10 * t1)) + 1)
    rows = np.sort(np.random.default_rng(777).permutation(batch)[:loop_rows])
    flat_rhs = lambda t_, v: lorenz_rhs_batch(t_, v.reshape(-1, 3)).ravel()  # noqa: E731
    return Case(
        name=f"lorenz_batch{batch}_{_tol_name(tol)}",
        description=(f"dopri5, Lorenz, batch of {batch} seeded initial states, t in [0, {t1:g}], {len(t)} outputs, "
                     f"rtol={rtol:g} atol={atol:g}"),
        params={"batch": batch, "y0": "uniform box [-20,20]x[-25,25]x[5,45], seed 12345", "t0": 0.0, "t1": t1,
                "n_out": len(t), "scipy_loop_rows": int(loop_rows), "scipy_loop_subset_seed": 777},
        rtol=rtol, atol=atol,
        # coupled=True: the shared step of torchdiffeq and the flattened SciPy solve (odeint's
        # default, a step size per trajectory, is the lorenz_samples case)
        neurodyn=neurodyn_coupled_side(Y0, t, rtol, atol),
        peers={
            "scipy_rk45_loop": scipy_loop_side(lorenz_rhs, Y0, t, rtol, atol, rows),
            "torchdiffeq": shared_norm_bound(torchdiffeq_side(lambda L, M: L(), Y0, t, rtol, atol), rtol),
            "scipy_rk45_flat": scipy_side(flat_rhs, Y0, t, rtol, atol, Y0.shape,
                                          note="one solve_ivp on the flattened batch (shared step, as neurodyn)"),
        },
        reference=dop853_reference(lorenz_rhs, Y0, t, rows=rows),
        agree=300 * rtol, agree_window=slice(0, 11),
        agree_why="max |diff| / max |y| <= 300 rtol (global errors of the solvers are tens of tolerance units, and "
                  "Lorenz's divergence grows them about 2.5x per unit time); Lorenz is chaotic: compared on t <= 1 "
                  "(the first 11 outputs), before differences at the tolerance grow by orders of magnitude; the "
                  "whole span is judged against the reference",
        targets=[Target("scipy_rk45_loop", 100.0, "neurodyn >= 100x faster than a SciPy solve_ivp loop")],
    )


def mlp_problem(n, hidden, batch, seed=2024):
    """Glorot-normal weights, small biases, N(0, 1) initial states: |dy/dt| stays O(1), so
    over t in [0, 1] the dynamics are tame (no blow-up, no stiffness)."""
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0.0, np.sqrt(2.0 / (n + hidden)), size=(n, hidden))
    W2 = rng.normal(0.0, np.sqrt(2.0 / (hidden + n)), size=(hidden, n))
    b1 = rng.normal(0.0, 0.1, size=hidden)
    b2 = rng.normal(0.0, 0.1, size=n)
    Y0 = rng.normal(0.0, 1.0, size=(batch, n))
    return W1, b1, W2, b2, Y0


def mlp_field(tol, n, hidden, batch, quick):
    """(c) An MLP vector field, batch through GEMMs, against torchdiffeq with an
    equivalent nn.Module and SciPy on the flattened state with a NumPy rhs."""
    rtol, atol = tol
    W1, b1, W2, b2, Y0 = mlp_problem(n, hidden, batch)
    t = np.linspace(0.0, 1.0, 11)

    def numpy_rhs(t_, v):
        return (np.tanh(v.reshape(batch, n) @ W1 + b1) @ W2 + b2).ravel()

    return Case(
        name=f"mlp{n}_h{hidden}_b{batch}_{_tol_name(tol)}",
        description=(f"dopri5, MLP field {n}-{hidden}(tanh)-{n}, batch {batch}, t in [0, 1], {len(t)} outputs, "
                     f"rtol={rtol:g} atol={atol:g}"),
        params={"n": n, "hidden": hidden, "batch": batch, "activation": "tanh", "final_activation": "identity",
                "weights": "glorot normal, biases N(0, 0.1), y0 N(0, 1), seed 2024", "t0": 0.0, "t1": 1.0,
                "n_out": len(t)},
        rtol=rtol, atol=atol,
        neurodyn=neurodyn_side(lambda nd: nd.fields.MLP([W1, W2], [b1, b2], activation="tanh"), Y0, t, rtol, atol),
        peers={
            "torchdiffeq": torchdiffeq_side(lambda L, M: M(W1, b1, W2, b2), Y0, t, rtol, atol),
            "torchdiffeq_compile": torchdiffeq_side(lambda L, M: M(W1, b1, W2, b2), Y0, t, rtol, atol, True, quick),
            "diffrax_jit": diffrax_side(Y0, t, rtol, atol, make_vf=lambda jnp: (
                lambda tt, u, args: jnp.tanh(u @ W1 + b1) @ W2 + b2), what="MLP field", quick=quick),
            "scipy_rk45_flat": scipy_side(numpy_rhs, Y0, t, rtol, atol, Y0.shape),
        },
        agree=100 * rtol,
        agree_why="max |diff| / max |y| <= 100 rtol: global errors of dopri5 are tens of tolerance units (per-sample "
                  "against whole-batch step control)",
        reference=dop853_reference(numpy_rhs, Y0, t, rtol=1e-11, atol=1e-12),
        targets=[Target("torchdiffeq", 5.0, "neurodyn >= 5x faster than torchdiffeq")],
        **mlp_floors(batch, n, hidden),
    )


def mlp_floors(B, n, h):
    """The physical limit of the MLP case: the field's two products per evaluation, times
    neurodyn's evaluation count (the peers take the same steps or more), on neurodyn's
    OpenBLAS, float64; no tanh, bias or solver arithmetic (the GEMM floor). The work floor adds
    the hidden layer's tanh over the batch x h elements of every evaluation."""

    def spec(sides):
        nfev = ((sides.get("neurodyn") or {}).get("counts") or {}).get("nfev")
        if not nfev:
            raise Skip("neurodyn's evaluation count is unknown")
        # nfev counts row evaluations (each sample its own steps): nfev / B whole-batch products
        return dict(products=[(B, n, h, False, 1), (B, h, n, False, 1)], elementwise=[("tanh", B * h)],
                    what=f"{nfev} row evaluations = {nfev / B:.4g} x the batch's products {B}x{n}x{h} and "
                         f"{B}x{h}x{n}", time_scale=nfev / B, dtype=np.float64)

    return floors(spec)


def lorenz_pycallable(tol, t1=10.0):
    """(d) A Python right-hand side: nd.odeint and solve_ivp call the same NumPy function,
    so this measures each solver's own per-step overhead around the callback."""
    rtol, atol = tol
    y0 = np.array([1.0, 1.0, 1.0])
    t = np.linspace(0.0, t1, int(round(10 * t1)) + 1)
    return Case(
        name=f"lorenz_pycallable_{_tol_name(tol)}",
        description=(f"dopri5, Lorenz as a Python/NumPy callable, one trajectory, t in [0, {t1:g}], {len(t)} outputs, "
                     f"rtol={rtol:g} atol={atol:g}"),
        params={"y0": y0.tolist(), "t0": 0.0, "t1": t1, "n_out": len(t), "rhs": "lorenz_rhs on both sides"},
        rtol=rtol, atol=atol,
        neurodyn=neurodyn_side(lambda nd: lorenz_rhs, y0, t, rtol, atol),
        peers={"scipy_rk45": scipy_side(lorenz_rhs, y0, t, rtol, atol, (3,))},
        reference=dop853_reference(lorenz_rhs, y0, t),
        agree=300 * rtol, agree_window=slice(0, 11),
        agree_why="max |diff| / max |y| <= 300 rtol (global errors of the solvers are tens of tolerance units, and "
                  "Lorenz's divergence grows them about 2.5x per unit time); Lorenz is chaotic: compared on t <= 1 "
                  "(the first 11 outputs), before differences at the tolerance grow by orders of magnitude; the "
                  "whole span is judged against the reference",
        targets=[Target("scipy_rk45", 1.0, "neurodyn (Python rhs) no slower than solve_ivp")],
    )


def build(quick: bool, timer_cfg) -> list:
    """All ODE cases. ``quick`` shrinks the batches so the whole set runs in seconds."""
    if quick:
        batch, loop_rows, mlp_batch, t1 = 16, 4, 8, 2.0
    else:
        batch, loop_rows, mlp_batch, t1 = 1000, 100, 256, 10.0
    cases = [
        lorenz_single(TIGHT_LORENZ, t1),
        lorenz_single(DEFAULT, t1),
        lorenz_batch(TIGHT_LORENZ, batch, loop_rows, t1),
        lorenz_batch(DEFAULT, batch, loop_rows, t1),
        mlp_field(TIGHT_MLP, 64, 64, mlp_batch, quick),
        mlp_field(DEFAULT, 64, 64, mlp_batch, quick),
        # the other reading of "batch 256, hidden 64": a 2-D state through a 64-wide hidden
        # layer (a spiral-style field, as in the Neural ODE cases), where per-step overhead
        # rather than GEMM throughput decides
        mlp_field(TIGHT_MLP, 2, 64, mlp_batch, quick),
        mlp_field(DEFAULT, 2, 64, mlp_batch, quick),
        lorenz_pycallable(TIGHT_LORENZ, t1),
        lorenz_pycallable(DEFAULT, t1),
        # at rtol 1e-8 a SciPy trajectory takes ~5x longer: a fifth of the rows is timed (then scaled)
        lorenz_samples((1e-8, 1e-8), batch, max(loop_rows // 5, 2), t1, quick),
    ]
    if quick:  # the targets are stated for the full sizes; at smoke-test sizes they only indicate
        for c in cases:
            for tg in c.targets:
                tg.text += " [quick sizes: indicative only]"
    return cases
