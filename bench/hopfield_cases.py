"""Hopfield retrieval: neurodyn's fused kernel against NumPy and PyTorch's scaled dot-product
attention on the same work, out = softmax(beta Q Y^T) Y, plus the GEMM limit and memory."""
from __future__ import annotations

import tracemalloc

import numpy as np

from harness import Case, Probe, Side, Skip, Target, floors
from neural_ode_cases import markdown_extras  # noqa: F401  (renders the GEMM floor table)

BETA = 1.0


def problem(B, N, d, seed=2024):
    rng = np.random.default_rng(seed)
    Q = (rng.normal(size=(B, d)) / np.sqrt(d)).astype(np.float32)
    Y = rng.normal(size=(N, d)).astype(np.float32)
    return Q, Y


def neurodyn_side(Q, Y):
    def factory():
        import neurodyn as nd

        run = lambda: nd.hopfield_retrieve(Q, Y, BETA)
        return Side(run=run, probe=lambda: Probe(ys=run()[None]))
    return factory


def numpy_side(Q, Y):
    def factory():
        def run():
            S = BETA * (Q @ Y.T)
            S -= S.max(axis=1, keepdims=True)
            P = np.exp(S)
            P /= P.sum(axis=1, keepdims=True)
            return P @ Y
        return Side(run=run, probe=lambda: Probe(ys=run()[None]), note="softmax(beta Q Y^T) Y, NumPy's OpenBLAS")
    return factory


def torch_side(Q, Y):
    def factory():
        try:
            import torch
            import torch.nn.functional as F
        except ImportError as exc:
            raise Skip(f"torch not installed: {exc}")
        q, k = torch.from_numpy(Q)[None], torch.from_numpy(Y)[None]

        def run():
            with torch.no_grad():
                return F.scaled_dot_product_attention(q, k, k, scale=BETA)[0]
        return Side(run=run, probe=lambda: Probe(ys=run().numpy()[None]), note="scaled_dot_product_attention(scale=beta)")
    return factory


def hopfield_floors(Q, Y):
    """The GEMM floor: the two products alone (scores Q Y^T, then weights x patterns), no
    softmax. The work floor adds the softmax's exp over the B x N scores (its max and sums are
    no transcendental work)."""

    def spec(sides):
        B, d = Q.shape
        N = Y.shape[0]
        return dict(products=[(B, d, N, False, 1), (B, N, d, False, 1)], elementwise=[("exp", B * N)],
                    what=f"scores {B}x{d}x{N}, then {B}x{N}x{d}")

    return floors(spec)


def torch_compile_side(Q, Y, quick):
    """The same three steps in torch, compiled by torch.compile (inductor may fuse the softmax)."""
    def factory():
        from neural_ode_cases import torch_compile, torch_mod

        torch = torch_mod()
        q, k = torch.from_numpy(Q), torch.from_numpy(Y)

        def retrieve(q, k):
            return torch.softmax(BETA * (q @ k.T), dim=1) @ k

        fn = torch_compile(retrieve, quick)

        def run():
            with torch.no_grad():
                return fn(q, k)
        return Side(run=run, probe=lambda: Probe(ys=run().numpy()[None]), note="torch.compile(softmax(beta q k^T) k)")
    return factory


def extras_for(Q, Y):
    def extras(sides):
        import neurodyn as nd

        out = {}
        tracemalloc.start()
        nd.hopfield_retrieve(Q, Y, BETA)
        out["neurodyn_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out["numpy_score_matrix_bytes"] = Q.shape[0] * Y.shape[0] * 4
        return out
    return extras


def build(quick: bool, timer_cfg) -> list:
    B, d = (64, 32) if quick else (1024, 128)
    cases = []
    for N in ((256, 2048) if quick else (1024, 16384)):
        Q, Y = problem(B, N, d)
        cases.append(Case(
            name=f"hopfield_B{B}_N{N}_d{d}",
            description=f"retrieval softmax(beta Q Y^T) Y, B={B}, N={N}, d={d}, float32, beta={BETA}",
            params={"B": B, "N": N, "d": d, "beta": BETA, "dtype": "float32"},
            neurodyn=neurodyn_side(Q, Y), peers={"numpy": numpy_side(Q, Y), "torch_sdpa": torch_side(Q, Y),
                                                 "torch_compile": torch_compile_side(Q, Y, quick)},
            rtol=1e-4, atol=1e-5, extras=extras_for(Q, Y), **hopfield_floors(Q, Y),
            agree=1e-5, agree_why="float32: the same sums in another order",
            targets=[Target("numpy", 2.0, "retrieval >= 2x NumPy"), Target("torch_sdpa", 1.0, "retrieval >= PyTorch SDPA")],
        ))
    return cases
