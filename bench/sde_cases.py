"""Stochastic differential equations: an Euler-Maruyama batch of Ornstein-Uhlenbeck paths,
neurodyn (built-in drift and diffusion, every step in C) against torchsde (CPU) and diffrax
(jax.jit of a vmap over the paths).

The sides draw different Brownian paths, so their answers are compared by the moments of the
final state (mean and variance over the batch) against the exact ones of the OU process: every
side should land within the sampling error (about 1% for 10,000 paths) plus Euler-Maruyama's
O(dt) bias.
"""
from __future__ import annotations

import math

import numpy as np

from harness import Case, Probe, Side, Skip, Target

THETA, MU, SIGMA = 1.0, 0.5, 0.3


def sizes(quick):
    return {"B": 500, "dt": 1e-2} if quick else {"B": 10_000, "dt": 1e-3}


def _moments(final):
    """[[mean, variance]] of the final states over the batch: what the sides are compared by."""
    x = np.asarray(final, dtype=np.float64).ravel()
    return np.array([[x.mean(), x.var(ddof=1)]])


def _exact_moments(y0):
    """Mean and variance at t = 1 of the OU process started from the empirical law of y0."""
    e = math.exp(-THETA)
    mean = MU + (y0.mean() - MU) * e
    var = e * e * y0.var() + SIGMA**2 / (2 * THETA) * (1 - e * e)
    return np.array([[mean, var]])


def ou_case(quick):
    sz = sizes(quick)
    B, dt = sz["B"], sz["dt"]
    steps = round(1.0 / dt)
    y0 = np.linspace(-1.0, 1.0, B, dtype=np.float32)[:, None]

    def nd_factory():
        import neurodyn as nd

        f = nd.fields.Linear([[-THETA]], [THETA * MU])
        g = nd.sde.Constant(SIGMA)

        def run(seed=0):
            return nd.sdeint(f, g, y0, [0.0, 1.0], dt=dt, noise="additive", seed=seed, verbose=False)

        return Side(run=run, probe=lambda: Probe(ys=_moments(run(1)[-1]), nfev=steps, accepted=steps),
                    note="nd.fields.Linear drift, nd.sde.Constant diffusion, float32")

    def torchsde_factory():
        try:
            import torch
            import torchsde
        except ImportError as exc:
            raise Skip(f"torchsde not installed: {exc}")

        class OU(torch.nn.Module):
            noise_type, sde_type = "diagonal", "ito"

            def f(self, t, y):
                return THETA * (MU - y)

            def g(self, t, y):
                return torch.full_like(y, SIGMA)

        sde, x0, ts = OU(), torch.tensor(y0), torch.tensor([0.0, 1.0])

        def run():
            # A Brownian interval told the step: without dt, sdeint's default one builds a tree
            # of ~1e5 points for this grid (7.9 s instead of 0.09 s for 500 paths); a fresh one
            # per call, as a new batch of paths needs.
            bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=tuple(x0.shape), dt=dt)
            with torch.no_grad():
                return torchsde.sdeint(sde, x0, ts, method="euler", dt=dt, bm=bm)

        return Side(run=run, probe=lambda: Probe(ys=_moments(run()[-1].numpy()), nfev=steps, accepted=steps),
                    note="torchsde.sdeint(method='euler') with a BrownianInterval(dt=dt) per call, float32")

    def diffrax_factory():
        try:
            import diffrax
            import jax
            import jax.numpy as jnp
        except ImportError as exc:
            raise Skip(f"diffrax not installed: {exc}")

        def drift(t, y, args):
            return THETA * (MU - y)

        def diffusion(t, y, args):
            return jnp.full((1, 1), SIGMA, dtype=y.dtype)

        def solve(x, key):
            bm = diffrax.UnsafeBrownianPath(shape=(1,), key=key)
            terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
            sol = diffrax.diffeqsolve(terms, diffrax.Euler(), t0=0.0, t1=1.0, dt0=dt, y0=x,
                                      saveat=diffrax.SaveAt(t1=True), max_steps=steps + 16,
                                      adjoint=diffrax.ForwardMode())  # what UnsafeBrownianPath allows
            return sol.ys[0]

        solve_all = jax.jit(jax.vmap(solve))
        x0 = jnp.asarray(y0)
        keys = jax.random.split(jax.random.key(0), B)

        def run():
            return solve_all(x0, keys).block_until_ready()

        return Side(run=run, probe=lambda: Probe(ys=_moments(np.asarray(run())), nfev=steps, accepted=steps),
                    note="jax.jit(jax.vmap(diffeqsolve)), Euler, an UnsafeBrownianPath per path (its fastest Brownian "
                         "motion), float32")

    return Case(
        name=f"ou_euler_maruyama_B{B}",
        description=f"Euler-Maruyama on {B} Ornstein-Uhlenbeck paths dX = {THETA} ({MU} - X) dt + {SIGMA} dW, "
                    f"t in [0, 1], dt {dt} ({steps} steps), float32",
        params={**sz, "theta": THETA, "mu": MU, "sigma": SIGMA, "steps": steps,
                "compare": "mean and variance of X(1) over the batch against the exact OU moments"},
        neurodyn=nd_factory, peers={"torchsde": torchsde_factory, "diffrax_jit": diffrax_factory},
        rtol=0.05, atol=5e-3, reference=lambda: Probe(ys=_exact_moments(y0.astype(np.float64))),
        agree=0.1, agree_why="different Brownian paths: the mean and variance of X(1) agree within the sampling "
                             "error (max |diff| / max |moment| <= 0.1)",
        targets=[Target("torchsde", 10.0, "Euler-Maruyama OU batch >= 10x faster than torchsde (CPU)"),
                 Target("diffrax_jit", 1.0, "faster than diffrax under jax.jit")],
    )


def record_extras() -> dict:
    """The peers' versions (the harness records NumPy, SciPy and torch itself)."""
    import importlib.metadata as md

    found = {}
    for name in ("torchsde", "jax", "jaxlib", "diffrax", "equinox"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return {"versions": found}


def build(quick: bool, timer_cfg) -> list:
    return [ou_case(quick)]
