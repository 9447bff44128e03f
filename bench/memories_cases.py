"""Associative memories as dynamical systems (docs/models.md §9): a firing-rate network's field
evaluation and a recall of many cues, neurodyn against NumPy on the same work.

- field: one evaluation of the rate form ``-r + phi(W r)`` with N = 100,000 and P = 100 (W of
  rank P + 1), neurodyn's C field (byte patterns, two O(NP) passes) against NumPy's
  implementation of the same low-rank product (two products with the float64 pattern matrix).
- recall: 256 cues, N = 1000, P = 14, T = 10 (docs/models.md §9's experiment), neurodyn's
  ``recall`` (dopri5 at rtol 1e-4, per-sample steps, C field) against NumPy Euler loops with
  dt = 0.01 (§9's step), one with the low-rank product and one with W formed as N x N; every
  side's states at t = 0, 1, ..., 10 against a dopri5 solution at rtol 1e-10.
"""
from __future__ import annotations

import numpy as np

from harness import Case, Probe, Side, Target

A, B_LEVEL, GAIN, THRESHOLD = -0.3, 0.95, 4.8, 0.2


def network(P, N, q, seed):
    import neurodyn as nd

    X = nd.memories.bernoulli_patterns(P, N, q, seed=seed)
    return nd.FiringRateMemory(X, a=A, b=B_LEVEL, gain=GAIN, threshold=THRESHOLD, dtype="float64")


def numpy_rate_rhs(net):
    """The rate form with the rank-(P+1) product, in NumPy (float64 patterns)."""
    X = net.params["patterns"].astype(np.float64)
    N = X.shape[1]
    d = net.design
    al, be, ga = d["alpha"] / N, d["beta"], d["gamma"] / N
    k, c0 = 4.0 * GAIN, 4.0 * GAIN * THRESHOLD + 2.0

    def rhs(r):
        c = r @ X.T
        s = r.sum(axis=-1, keepdims=True)
        D = al * (c - be * s)
        h = D @ X + (ga * s - be * D.sum(axis=-1, keepdims=True))
        return 1.0 / (1.0 + np.exp(c0 - k * h)) - r
    return rhs


def field_case(quick):
    N, P = (20_000, 40) if quick else (100_000, 100)
    net = network(P, N, 0.2, seed=1)
    r = np.random.default_rng(2).random(N)
    field = net.field("rate")

    def nd_factory():
        run = lambda: field(0.0, r)
        return Side(run=run, probe=lambda: Probe(ys=run()[None]))

    def np_factory():
        rhs = numpy_rate_rhs(net)
        run = lambda: rhs(r)
        return Side(run=run, probe=lambda: Probe(ys=run()[None]),
                    note="the same rank-(P+1) product: two products with the float64 [P, N] patterns")

    return Case(name=f"memories_field_N{N}_P{P}",
                description=f"one rate-form field evaluation, N={N}, P={P}, float64, batch 1",
                params={"N": N, "P": P, "dtype": "float64"}, neurodyn=nd_factory,
                peers={"numpy_lowrank": np_factory}, rtol=1e-12, atol=1e-12,
                agree=1e-10, agree_why="float64, the same products in another order",
                targets=[Target("numpy_lowrank", 2.0, "field evaluation >= 2x NumPy's low-rank product")])


def recall_case(quick):
    N, P, B = (500, 10, 64) if quick else (1000, 14, 256)
    net = network(P, N, 0.2, seed=1)
    cues = net.cues(np.arange(B) % P, 0.6, seed=2)
    d = net.design
    r0 = d["phi_a"] + (d["phi_b"] - d["phi_a"]) * cues.astype(np.float64)
    T, dt, n_out = 10.0, 0.01, 11
    steps = int(round(T / dt))
    every = steps // (n_out - 1)

    def recall(rtol, atol):
        return net.recall(cues, T, n_times=n_out, rtol=rtol, atol=atol, verbose=False).states

    def nd_factory():
        run = lambda: recall(1e-4, 1e-6)
        return Side(run=run, probe=lambda: Probe(ys=run()),
                    note="recall(): dopri5 per sample (stages in cache-sized blocks of rows), rtol 1e-4, atol 1e-6, "
                         "the C field (phi once per class of units in the same memories)")

    def euler_factory(dense):
        def factory():
            if dense:
                W = net.dense_weights().astype(np.float64)
                k, c0 = 4.0 * GAIN, 4.0 * GAIN * THRESHOLD + 2.0
                rhs = lambda r: 1.0 / (1.0 + np.exp(c0 - k * (r @ W.T))) - r  # noqa: E731
            else:
                rhs = numpy_rate_rhs(net)

            def run():
                out, r = [r0], r0.copy()
                for k in range(1, steps + 1):
                    r += dt * rhs(r)
                    if k % every == 0:
                        out.append(r.copy())
                return np.stack(out)
            return Side(run=run, probe=lambda: Probe(ys=run()),
                        note=f"Euler, dt={dt}, {steps} steps, " + ("W formed as N x N" if dense else "low-rank product"))
        return factory

    return Case(name=f"memories_recall_B{B}_N{N}_P{P}",
                description=f"recall of {B} cues to T={T} (states at t = 0, 1, ..., 10), N={N}, P={P}, float64 "
                            f"(docs/models.md §9's experiment)",
                params={"B": B, "N": N, "P": P, "T": T, "dtype": "float64"}, neurodyn=nd_factory,
                peers={"numpy_euler_lowrank": euler_factory(False), "numpy_euler_dense": euler_factory(True)},
                rtol=1e-4, atol=1e-6, reference=lambda: Probe(ys=recall(1e-10, 1e-12)),
                agree=0.05, agree_why="Euler at dt = 0.01 against dopri5: Euler's O(dt) error (rates in [0, 1])",
                targets=[Target("numpy_euler_lowrank", 20.0, "recall >= 20x a NumPy Euler loop")])


def build(quick: bool, timer_cfg) -> list:
    return [field_case(quick), recall_case(quick)]
