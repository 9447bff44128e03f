"""Speed-up of neurodyn's batched kernels from 1 to 2 threads, in one run.

    python bench/threads.py [--quick] [--out PATH]

Each case runs the same call with ``nd.set_num_threads(1)`` and ``(2)``, sampled
round-robin (1, 2, 1, 2, ...) so load from other processes hits both counts alike, and
checks that both counts give the same bits. Writes bench/results/threads.json and a
Markdown table next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import neurodyn as nd  # noqa: E402


def _at(threads, fn):
    def call():
        nd.set_num_threads(threads)
        return fn()
    return call


def _arrays(result):
    return [result] if isinstance(result, np.ndarray) else list(result)


def cases(quick: bool):
    """name -> (description, fn) on inputs made once here."""
    rng = np.random.default_rng(0)
    s = 8 if quick else 1
    cur = rng.standard_normal((25, 256 // s, 2048 // s)).astype(np.float32)
    ones = np.ones_like(cur)
    gmm = nd.energies.GaussianMixture(rng.standard_normal((4, 16)), np.stack([np.eye(16)] * 4))
    chains = rng.uniform(-1, 1, (4096 // s, 16))
    ebm = nd.EBM(64, hidden_sizes=(256, 128), seed=0)
    q = rng.standard_normal((1024 // s, 128)).astype(np.float32)
    pats = rng.standard_normal((16384 // s, 128)).astype(np.float32)
    mlp = nd.fields.MLP([rng.standard_normal((64, 256)) * 0.1, rng.standard_normal((256, 64)) * 0.1])
    y0 = rng.standard_normal((4096 // s, 64))
    x0 = rng.uniform(-1, 1, (128, 64)).astype(np.float32)
    ltc = nd.LTCCell(8, 32, ode_unfolds=6, seed=2024)
    seq = rng.standard_normal((64, 100 // s, 8)).astype(np.float32)
    target = rng.standard_normal((64, 32)).astype(np.float32)
    node = nd.NeuralODE(2, 64, output_size=2, num_steps=10, step_size=0.1, solver="rk4", seed=2024,
                        dtype=np.float32)
    xn, yn = (rng.standard_normal((256 // s, 2)).astype(np.float32) for _ in range(2))
    field = nd.fields.MLP([rng.standard_normal((64, 64)) * 0.15, rng.standard_normal((64, 64)) * 0.15],
                          [rng.standard_normal(64) * 0.1, rng.standard_normal(64) * 0.1])
    yf = rng.standard_normal((256 // s, 64))
    return {
        "lif_run": (f"lif_run, currents {cur.shape} float32", lambda: nd.lif_run(cur)),
        "lif_backward": (f"lif_backward, {cur.shape} float32, spike cotangents",
                         lambda: nd.lif_backward(cur, ones)),
        "hopfield": (f"hopfield_retrieve, {q.shape[0]} queries, {pats.shape[0]} patterns of 128, float32",
                     lambda: nd.hopfield_retrieve(q, pats, 1 / np.sqrt(128))),
        "odeint_mlp": (f"odeint, MLP field 64-256-64 (tanh), batch {y0.shape[0]}, rk4, 20 steps, float64",
                       lambda: nd.odeint(mlp, y0, [0.0, 1.0], method="rk4", dt=0.05, verbose=False)),
        "langevin_gmm": (f"langevin_sample, GaussianMixture K=4 d=16, {chains.shape[0]} chains, 100 steps",
                         lambda: nd.langevin_sample(gmm, chains, steps=100 // s, step_size=1e-2, noise_scale=1.0,
                                                    seed=0, verbose=False)),
        "langevin_ebm": ("langevin_sample, EBM 64-256-128 float32, 128 chains, 60 steps (products too small "
                         "to split)",
                         lambda: nd.langevin_sample(ebm, x0, steps=60 // s, seed=0, verbose=False)),
        "ltccell_train": (f"LTCCell 8-32 (6 unfolds) training step, batch 64, {seq.shape[1]} steps, float32",
                          lambda: _grads(ltc.loss_and_grad(seq, target, loss="mse"))),
        # many small products and loops a step: the pool's wake-up shows here
        "neural_ode_train": (f"NeuralODE 2-64-2 rk4 training step (backprop), batch {xn.shape[0]}, float32",
                             lambda: _grads(node.loss_and_grad(xn, yn, loss="mse"))),
        "odeint_mlp_dopri5": (f"odeint, MLP field 64-64-64 (tanh), batch {yf.shape[0]}, dopri5 rtol 1e-5, each "
                              "sample its own steps, float64",
                              lambda: nd.odeint(field, yf, np.linspace(0.0, 1.0, 11), method="dopri5", rtol=1e-5,
                                                atol=1e-7, verbose=False)),
    }


def _grads(loss_and_grads):
    loss, grads = loss_and_grads
    return [np.asarray(loss)] + [grads[k] for k in sorted(grads)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", "threads-quick.json" if args.quick else "threads.json")
    cfg = harness.TimerConfig(repeats=3 if args.quick else 9, budget=2.0 if args.quick else 20.0)
    before = nd.get_num_threads()
    record = {"suite": "threads", "started": harness.now_iso(), "machine": harness.machine(),
              "versions": harness.versions(), "cases": []}
    try:
        for name, (what, fn) in cases(args.quick).items():
            one, two = _at(1, fn)(), _at(2, fn)()
            same = all(np.array_equal(a, b) for a, b in zip(_arrays(one), _arrays(two)))
            t = harness.measure_interleaved({"1": _at(1, fn), "2": _at(2, fn)}, cfg)
            row = {"name": name, "what": what, "threads1": t["1"].as_dict(), "threads2": t["2"].as_dict(),
                   "speedup": t["1"].median / t["2"].median, "identical": bool(same)}
            record["cases"].append(row)
            print(f"{name}: 1 thread {harness.fmt_time(t['1'].median)}, 2 threads "
                  f"{harness.fmt_time(t['2'].median)}: {row['speedup']:.2f}x, identical={same}", flush=True)
    finally:
        nd.set_num_threads(before)
    record["finished"] = harness.now_iso()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1)
    with open(out[:-5] + ".md", "w") as fh:
        fh.write(markdown(record))
    print(f"wrote {out}")
    return 0 if all(c["identical"] for c in record["cases"]) else 1


def markdown(record) -> str:
    m = record["machine"]
    lines = [f"Machine: {m.get('cpu_model')}, {m.get('physical_cores')} cores, load average at start "
             f"{m.get('loadavg')}. Run {record['started']}.", "",
             "| case | 1 thread | 2 threads | speed-up | same bits |", "|---|---:|---:|---:|---|"]
    for c in record["cases"]:
        lines.append(f"| {c['what']} | {harness.fmt_time(c['threads1']['median_s'])} | "
                     f"{harness.fmt_time(c['threads2']['median_s'])} | {c['speedup']:.2f}x | "
                     f"{'yes' if c['identical'] else 'NO'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
