"""Hopfield retrieval: neurodyn's fused kernel against NumPy and PyTorch's scaled dot-product
attention on the same work, out = softmax(beta Q Y^T) Y, plus the GEMM limit and memory."""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

from harness import Case, Probe, Side, Skip, Target
from neural_ode_cases import floor_record
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


def extras_for(Q, Y):
    def extras(sides):
        import neurodyn as nd
        from neurodyn import _core

        out = {}
        t_nd = sides.get("neurodyn", {}).get("time", {}).get("median_s")
        Yt = np.ascontiguousarray(Y.T)
        P = np.full((Q.shape[0], Y.shape[0]), 1.0 / Y.shape[0], dtype=np.float32)
        _core.dense_forward(Q, Yt, None)
        reps, t0 = 5, time.perf_counter()
        for _ in range(reps):
            _core.dense_forward(Q, Yt, None)
            _core.dense_forward(P, Y, None)
        t_gemm = (time.perf_counter() - t0) / reps
        flops = 4.0 * Q.shape[0] * Y.shape[0] * Q.shape[1]
        # the floor: the two products alone (scores, then scores x patterns), no softmax
        out.update(floor_record(t_gemm, flops, sides))
        if t_nd:
            out["neurodyn_gflops"] = flops / t_nd / 1e9
            out["gemm_efficiency"] = t_gemm / t_nd
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
            neurodyn=neurodyn_side(Q, Y), peers={"numpy": numpy_side(Q, Y), "torch_sdpa": torch_side(Q, Y)},
            rtol=1e-4, atol=1e-5, extras=extras_for(Q, Y),
            targets=[Target("numpy", 2.0, "retrieval >= 2x NumPy"), Target("torch_sdpa", 1.0, "retrieval >= PyTorch SDPA")],
        ))
    return cases
