"""Neural ODE benchmark cases: ``nd.NeuralODE`` against the same model in PyTorch CPU with
torchdiffeq, forward (inference) and one training step (forward + backward).

The model (Edifice's architecture, as neurodyn builds it for input 2 != hidden 64):
``h0 = input_proj(x)``; ``dh/dt = tanh(dynamics_dense2(silu(dynamics_dense1(h))))`` over
t in [0, num_steps * step_size] = [0, 1]; ``LayerNorm`` (eps 1e-5); ``output_proj``. The torch
twin gets neurodyn's initial parameters (Dense kernels are [in, out], so nn.Linear.weight is
the transpose), so both sides compute the same function of the same numbers.

Same work, and where it is not quite:

* rk4: 10 steps of 0.1 on both sides, 4 evaluations per step. torchdiffeq's "rk4" is the 3/8
  rule (``rk4_alt_step_func``), neurodyn's is the classic RK4: same cost, both 4th order,
  outputs differ by the truncation error (~1e-6 here).
* dopri5: rtol = atol = 1e-5, the same RMS error norm, Hairer's initial step. The step counts
  are recorded next to the times (nfev / accepted / rejected).
* backprop: neurodyn backpropagates through its recorded steps in C (stages recomputed);
  torchdiffeq's ``odeint`` backpropagates through autograd's graph of every operation.
* adjoint: both integrate the continuous adjoint backwards with the forward's method and
  tolerances. Their error norms for the augmented state differ: neurodyn takes one RMS over
  [y, a, g]; torchdiffeq (default ``adjoint_options``) the max of RMS norms over y, a and the
  parameter part. The backward solves may therefore take different steps; the probe records
  the backward solve's counters in the note.

This module also holds the helpers shared by the other neural-network suites
(``liquid_cases.py``, ``snn_cases.py``): outputs and gradients as probes, per-tensor agreement,
the forward/backward split and the extra Markdown.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from harness import Case, Probe, Side, Skip, Target, floors, fmt_time

# --------------------------------------------------------------------------------------
# shared by the neural-network suites


@functools.lru_cache(maxsize=None)
def torch_mod():
    """torch, imported on first use so that a missing torch is a skip, not a crash."""
    try:
        import torch
    except ImportError as exc:
        raise Skip(f"torch not importable: {exc}") from None
    return torch


def import_peer(name: str):
    """A peer package (torchdiffeq, snntorch, ncps) or Skip."""
    torch_mod()
    try:
        return __import__(name)
    except ImportError as exc:
        raise Skip(f"{name} not importable: {exc}") from None


def torch_compile(obj, quick: bool = False, **kw):
    """``torch.compile(obj)`` (inductor, CPU: the C++ code it generates is built with the
    system's compiler), or Skip. The smoke run (--quick) leaves these peers out: compiling
    takes tens of seconds per graph, more than the rest of the run."""
    torch = torch_mod()
    if quick:
        raise Skip("torch.compile peers run in full runs only (compilation takes tens of seconds per graph)")
    import shutil

    if not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")):
        raise Skip("torch.compile (inductor) needs a C++ compiler")
    # Every case compiles a new module of the same class: dynamo keys its cache by the code
    # object, so after 8 variants (shapes, requires_grad) it would fall back to eager silently.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
    torch._dynamo.config.accumulated_recompile_limit = max(torch._dynamo.config.accumulated_recompile_limit, 4096)
    # torchdiffeq's adjoint differentiates the field's output with autograd.grad inside a
    # backward pass, which compiled graphs with donated buffers refuse (torch's error message
    # names this switch)
    torch._functorch.config.donated_buffer = False
    return torch.compile(obj, **kw)


def jax_mod(x64: bool = False, quick: bool = False):
    """jax (CPU), or Skip. With x64, float64 arrays are allowed; without, they are switched off
    again: the flag is process-wide, and a float32 case run after a float64 one in the same
    process (``--suite all``) otherwise got float64 times in diffrax's BacksolveAdjoint.
    Like the torch.compile peers, the jax.jit peers are left out of the smoke run (--quick):
    compiling them takes seconds each, more than the cases themselves."""
    if quick:
        raise Skip("jax.jit peers run in full runs only (compilation takes seconds per case)")
    try:
        import jax
    except ImportError as exc:
        raise Skip(f"jax not importable: {exc}") from None
    jax.config.update("jax_enable_x64", bool(x64))
    return jax


def out_probe(arr, note: str = "", **counts) -> Probe:
    """A probe of one output array (compared as a whole, in float64)."""
    p = Probe(ys=np.asarray(arr, dtype=np.float64)[None], counts_note=note, **counts)
    p.parts = {"output": np.asarray(arr, dtype=np.float64)}
    return p


def grad_probe(loss, grads: dict, names, note: str = "", **counts) -> Probe:
    """A probe of a training step: the loss followed by every gradient (in ``names`` order),
    flattened into one vector for the harness, and kept per tensor for ``agreement``."""
    parts = {"loss": np.asarray([float(loss)])}
    parts.update({n: np.asarray(grads[n], dtype=np.float64) for n in names})
    flat = np.concatenate([v.ravel() for v in parts.values()])
    p = Probe(ys=flat[None], counts_note=note, **counts)
    p.parts = parts
    return p


def agreement(sides: dict) -> dict:
    """Per tensor, each peer against neurodyn: max |diff| and the relative L2 difference
    ||peer - nd|| / ||nd||. (The harness's single max-abs number mixes tensors of very
    different scales; this shows which tensor differs.)"""
    nd = sides.get("neurodyn", {}).get("_probe")
    if nd is None or not hasattr(nd, "parts"):
        return {}
    out = {}
    for name, s in sides.items():
        pr = s.get("_probe")
        if name == "neurodyn" or pr is None or not hasattr(pr, "parts"):
            continue
        rows = {}
        for k, a in nd.parts.items():
            b = pr.parts.get(k)
            if b is None or np.shape(b) != np.shape(a):
                rows[k] = None
                continue
            na = float(np.linalg.norm(a))
            d = float(np.linalg.norm(a - b))
            rows[k] = {"max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
                       "rel_l2_diff": d / na if na > 0 else d}
        worst = max((v["rel_l2_diff"] for k, v in rows.items() if v is not None and k not in ("loss", "output")),
                    default=None)
        out[name] = {"per_tensor": rows, "worst_rel_l2_diff": worst}
    return out


def reference_errors(sides: dict, ref: Probe) -> dict:
    """Relative L2 error of every side against a float64 reference, per tensor."""
    out = {}
    for name, s in sides.items():
        pr = s.get("_probe")
        if pr is None or not hasattr(pr, "parts"):
            continue
        rows = {}
        for k, r in ref.parts.items():
            b = pr.parts.get(k)
            if b is None or np.shape(b) != np.shape(r):
                continue
            nr = float(np.linalg.norm(r))
            rows[k] = float(np.linalg.norm(b - r)) / (nr if nr > 0 else 1.0)
        out[name] = {"per_tensor_rel_l2": rows,
                     "worst_rel_l2": max((v for k, v in rows.items() if k != "loss"), default=None)}
    return out


def cached(fn):
    """A reference computed once, shared by Case.reference and the extras."""
    return functools.lru_cache(maxsize=None)(fn)


def nn_extras(more=None, reference=None):
    """The extras of a neural-network case: agreement per tensor, optional error against a
    float64 reference, and ``more(sides)`` (memory, breakdowns)."""

    def extras(sides):
        out = {"agreement_vs_neurodyn": agreement(sides)}
        if reference is not None:
            try:
                ref = reference()
                out["error_vs_float64_reference"] = reference_errors(sides, ref)
                out["reference_note"] = ref.counts_note
            except Skip as exc:
                out["error_vs_float64_reference"] = {"status": "skipped", "message": str(exc)}
        if more is not None:
            out.update(more(sides))
        return out

    return extras


def quickify(cases, quick):
    if quick:
        for c in cases:
            for tg in c.targets:
                tg.text += " [quick sizes: indicative only]"
    return cases


def time_of(case: dict, side: str):
    s = case.get("sides", {}).get(side, {})
    return s.get("time", {}).get("median_s") if s.get("status") == "ok" else None


def summarize(record: dict) -> dict:
    """The forward / training-step / backward split of every training case whose
    ``params["forward_case"]`` names a forward case of the same run: backward = (forward +
    backward) - forward, per side, and the ratios of each part. Also collects peak memory."""
    by_name = {c["name"]: c for c in record["cases"]}
    rows = []
    for c in record["cases"]:
        fwd_name = c["params"].get("forward_case")
        if c["params"].get("kind") != "train":
            continue
        fwd = by_name.get(fwd_name)
        per_side = {}
        for side in c["sides"]:
            t_train = time_of(c, side)
            t_fwd = time_of(fwd, side) if fwd else None
            t_bwd = None if (t_train is None or t_fwd is None) else t_train - t_fwd
            per_side[side] = {"forward_s": t_fwd, "train_step_s": t_train, "backward_s": t_bwd}
        nd = per_side.get("neurodyn", {})
        for side, v in per_side.items():
            for part in ("forward", "train_step", "backward"):
                a, b = v[f"{part}_s"], nd.get(f"{part}_s")
                v[f"ratio_{part}"] = None if (side == "neurodyn" or a is None or not b or b <= 0) else a / b
            mem = (c.get("extras") or {}).get("peak_memory", {}).get(side)
            if mem:
                v["peak_memory"] = mem
        rows.append({"train_case": c["name"], "forward_case": fwd_name if fwd else None, "sides": per_side})
    return {"split": rows}


def _mb(x):
    return "-" if x is None else f"{x / 2**20:.1f} MiB"


def markdown_extras(record: dict) -> str:
    """Markdown appended to the harness's table: environment, the forward/backward split
    with ratios, agreement per tensor, and peak memory where measured."""
    lines = []
    summ = record.get("summary") or {}
    split = summ.get("split") or []
    if split:
        lines += ["", "Forward, training step (forward + backward) and backward = step - forward; "
                  "ratio = peer / neurodyn (> 1: neurodyn faster).", "",
                  "| training case | side | forward | fwd+bwd | backward | ratio fwd | ratio fwd+bwd | ratio bwd |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in split:
            for side, s in r["sides"].items():
                def rt(k):
                    return "" if s.get(k) is None else f"{s[k]:.3g}x"
                lines.append(f"| {r['train_case']} | {side} | {fmt_time(s['forward_s'])} | {fmt_time(s['train_step_s'])} "
                             f"| {fmt_time(s['backward_s'])} | {rt('ratio_forward')} | {rt('ratio_train_step')} "
                             f"| {rt('ratio_backward')} |")
    mem_rows = []
    for c in record["cases"]:
        for side, m in ((c.get("extras") or {}).get("peak_memory") or {}).items():
            if isinstance(m, dict):
                mem_rows.append((c["name"], side, m))
    if mem_rows:
        lines += ["", "Peak memory of the measured call above the memory held before it, each in a fresh "
                  "subprocess (see the suite's notes for the method):", "",
                  "| case | side | peak RSS increase (VmHWM reset) | allocator peak | allocator method | status |",
                  "|---|---|---:|---:|---|---|"]
        for name, side, m in mem_rows:
            lines.append(f"| {name} | {side} | {_mb(m.get('rss_peak_increase_bytes'))} | "
                         f"{_mb(m.get('allocator_peak_bytes'))} | {m.get('allocator_method', '')} | "
                         f"{m.get('status', 'ok')} |")
    agr = []
    for c in record["cases"]:
        ex = c.get("extras") or {}
        for side, a in (ex.get("agreement_vs_neurodyn") or {}).items():
            ref = (ex.get("error_vs_float64_reference") or {})
            nd_ref = (ref.get("neurodyn") or {}) if isinstance(ref, dict) else {}
            pe_ref = (ref.get(side) or {}) if isinstance(ref, dict) else {}
            loss = (a["per_tensor"].get("loss") or {})
            agr.append((c["name"], side, a.get("worst_rel_l2_diff"), loss.get("rel_l2_diff"),
                        (a["per_tensor"].get("output") or {}).get("rel_l2_diff"),
                        nd_ref.get("worst_rel_l2"), pe_ref.get("worst_rel_l2")))
    if agr:
        def g(x):
            return "-" if x is None else f"{x:.2g}"
        lines += ["", "Agreement with neurodyn (relative L2 difference; for training cases the worst gradient "
                  "tensor) and, where a float64 reference was computed, each side's worst relative error "
                  "against it:", "",
                  "| case | peer | output rel diff | loss rel diff | worst gradient rel diff | neurodyn err vs f64 ref "
                  "| peer err vs f64 ref |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name, side, worst, loss, outd, ndr, per in agr:
            lines.append(f"| {name} | {side} | {g(outd)} | {g(loss)} | {g(worst)} | {g(ndr)} | {g(per)} |")
    return "\n".join(lines) + "\n"


def record_extras() -> dict:
    """Versions of the peers and torch's backend, merged into the record's ``versions``."""
    v = {}
    from importlib.metadata import PackageNotFoundError, version

    for mod in ("torchdiffeq", "snntorch", "ncps"):
        try:  # the installed distribution's version (ncps's __version__ attribute is stale)
            v[mod] = version(mod)
        except PackageNotFoundError:
            v[mod] = None
    try:
        import torch

        v["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        cfg = torch.__config__.show()
        v["torch_blas"] = "MKL" if "BLAS_INFO=mkl" in cfg else ("OpenBLAS" if "openblas" in cfg.lower() else "?")
        v["torch_num_threads"] = torch.get_num_threads()
    except Exception:
        pass
    return {"versions": v}


# --------------------------------------------------------------------------------------
# the Neural ODE problem

PARAM_NAMES = ("input_proj.kernel", "input_proj.bias", "dynamics_dense1.kernel", "dynamics_dense1.bias",
               "dynamics_dense2.kernel", "dynamics_dense2.bias", "output_norm.gamma", "output_norm.beta",
               "output_proj.kernel", "output_proj.bias")


def node_problem(batch, inp=2, hidden=64, out=2, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(batch, inp)).astype(np.float32)
    y = rng.normal(0.0, 1.0, size=(batch, out)).astype(np.float32)
    return x, y


def make_nd_node(solver, gradient, inp, hidden, out, rtol, atol, dtype=np.float32, seed=2024):
    import neurodyn as nd

    # coupled: one step size for the batch, as torchdiffeq integrates it (the same work on both sides)
    return nd.NeuralODE(inp, hidden, output_size=out, num_steps=10, step_size=0.1, solver=solver, rtol=rtol,
                        atol=atol, gradient=gradient, coupled=True, seed=seed, dtype=dtype)


def _torch_node_classes():
    torch = torch_mod()
    nn = torch.nn

    class Field(nn.Module):
        def __init__(self, H, dtype):
            super().__init__()
            self.l1 = nn.Linear(H, H, dtype=dtype)
            self.l2 = nn.Linear(H, H, dtype=dtype)

        def forward(self, t, h):
            return torch.tanh(self.l2(torch.nn.functional.silu(self.l1(h))))

    class Counted(nn.Module):
        """Counts evaluations and torchdiffeq's step callbacks (probe only)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.reset()

        def reset(self):
            self.nfev = self.accepted = self.rejected = 0
            self.adj_accepted = self.adj_rejected = 0

        def forward(self, t, y):
            self.nfev += 1
            return self.inner(t, y)

        def callback_accept_step(self, t0, y0, dt):
            self.accepted += 1

        def callback_reject_step(self, t0, y0, dt):
            self.rejected += 1

        def callback_accept_step_adjoint(self, t0, y0, dt):
            self.adj_accepted += 1

        def callback_reject_step_adjoint(self, t0, y0, dt):
            self.adj_rejected += 1

    class TorchNODE(nn.Module):
        def __init__(self, nd_params, solver, rtol, atol, adjoint, dtype):
            super().__init__()
            import torchdiffeq

            I, H = nd_params["input_proj.kernel"].shape
            O = nd_params["output_proj.kernel"].shape[1]
            self.inp = nn.Linear(I, H, dtype=dtype)
            self.field = Field(H, dtype)
            self.norm = nn.LayerNorm(H, eps=1e-5, dtype=dtype)
            self.out = nn.Linear(H, O, dtype=dtype)
            self.t = torch.tensor([0.0, 1.0], dtype=dtype)
            self.kw = ({"method": "rk4", "options": {"step_size": 0.1}} if solver == "rk4"
                       else {"method": "dopri5", "rtol": rtol, "atol": atol})
            self.solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
            self.func = self.field
            with torch.no_grad():
                for lin, name in ((self.inp, "input_proj"), (self.field.l1, "dynamics_dense1"),
                                  (self.field.l2, "dynamics_dense2"), (self.out, "output_proj")):
                    lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(nd_params[f"{name}.kernel"].T)))
                    lin.bias.copy_(torch.from_numpy(np.asarray(nd_params[f"{name}.bias"])))
                self.norm.weight.copy_(torch.from_numpy(np.asarray(nd_params["output_norm.gamma"])))
                self.norm.bias.copy_(torch.from_numpy(np.asarray(nd_params["output_norm.beta"])))

        def forward(self, x):
            h0 = self.inp(x)
            hs = self.solve(self.func, h0, self.t, **self.kw)
            return self.out(self.norm(hs[-1]))

        def grads(self):
            """Gradients under neurodyn's names (kernels transposed back to [in, out])."""
            g = {}
            for lin, name in ((self.inp, "input_proj"), (self.field.l1, "dynamics_dense1"),
                              (self.field.l2, "dynamics_dense2"), (self.out, "output_proj")):
                g[f"{name}.kernel"] = lin.weight.grad.detach().numpy().T
                g[f"{name}.bias"] = lin.bias.grad.detach().numpy()
            g["output_norm.gamma"] = self.norm.weight.grad.detach().numpy()
            g["output_norm.beta"] = self.norm.bias.grad.detach().numpy()
            return g

    return torch, TorchNODE, Counted


# --------------------------------------------------------------------------------------
# sides


def _counts(info):
    """The forward solve's totals from odeint's raw info."""
    return dict(nfev=int(info["nfev_total"]), accepted=int(np.sum(info["accepted"])),
                rejected=int(np.sum(info["rejected"])))


def nd_forward_side(solver, rtol, atol, x):
    def factory():
        m = make_nd_node(solver, "backprop", x.shape[1], HIDDEN, OUT, rtol, atol)

        def run():
            return m(x)

        def probe():
            out = m(x)
            _, (_, _, _, _, _, info, _) = m._forward(x, None, 0)  # counters only (untimed)
            return out_probe(out, **_counts(info))

        return Side(run=run, probe=probe)

    return factory


def nd_train_side(solver, gradient, rtol, atol, x, y):
    def factory():
        import neurodyn as nd

        m = make_nd_node(solver, gradient, x.shape[1], HIDDEN, OUT, rtol, atol)

        def run():
            return m.loss_and_grad(x, y, loss="mse")

        def probe():
            loss, grads = m.loss_and_grad(x, y, loss="mse")
            _, (_, _, times, _, ys, info, _) = m._forward(x, None, 0)
            note, back = "forward solve counts", {}
            if gradient == "adjoint":  # the backward solve's counters, from the same C call (untimed)
                try:
                    ybar = np.zeros_like(ys)
                    ybar[-1] = 1.0
                    _, _, binfo = nd._core.ode_adjoint(field=m.dynamics()._spec(), t=times, ybar=ybar, y_end=ys[-1],
                                                       **m._solver_options(times, budget_per_step=4))
                    note += (f"; adjoint backward solve: nfev={int(binfo['nfev_total'])} "
                             f"accepted={int(np.sum(binfo['accepted']))} rejected={int(np.sum(binfo['rejected']))} "
                             "(cotangent of ones)")
                    back = {"nfev_backward": int(binfo["nfev_total"])}
                except Exception as exc:  # counters are informative only
                    note += f"; backward counters unavailable ({type(exc).__name__})"
            return grad_probe(loss, grads, PARAM_NAMES, note=note, **_counts(info), **back)

        return Side(run=run, probe=probe)

    return factory


def torch_forward_side(solver, rtol, atol, x, compiled=False, quick=False):
    def factory():
        import_peer("torchdiffeq")
        torch, TorchNODE, Counted = _torch_node_classes()
        nd_m = make_nd_node(solver, "backprop", x.shape[1], HIDDEN, OUT, rtol, atol)
        model = TorchNODE(nd_m.params, solver, rtol, atol, adjoint=False, dtype=torch.float32)
        if compiled:
            model.func = torch_compile(model.field, quick)
        base = model.func
        xt = torch.from_numpy(x)

        def run():
            with torch.no_grad():
                return model(xt)

        def probe():
            counted = Counted(base)
            model.func = counted
            try:
                with torch.no_grad():
                    out = model(xt).numpy()
            finally:
                model.func = base
            return out_probe(out, nfev=counted.nfev, accepted=counted.accepted or None,
                             rejected=counted.rejected if solver == "dopri5" else None)

        return Side(run=run, probe=probe, note=("torch.compile(field); " if compiled else "") +
                    "torch.no_grad(); torchdiffeq.odeint" + (" (rk4 = 3/8 rule)" if solver == "rk4" else ""))

    return factory


def torch_train_side(solver, gradient, rtol, atol, x, y, compiled=False, quick=False):
    def factory():
        import_peer("torchdiffeq")
        torch, TorchNODE, Counted = _torch_node_classes()
        nd_m = make_nd_node(solver, gradient, x.shape[1], HIDDEN, OUT, rtol, atol)
        model = TorchNODE(nd_m.params, solver, rtol, atol, adjoint=gradient == "adjoint", dtype=torch.float32)
        if compiled:
            model.func = torch_compile(model.field, quick)
        base = model.func
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        params = list(model.parameters())

        def run():
            for p in params:
                p.grad = None
            loss = torch.nn.functional.mse_loss(model(xt), yt)
            loss.backward()
            return loss

        def probe():
            counted = Counted(base)
            model.func = counted
            try:
                for p in params:
                    p.grad = None
                loss = torch.nn.functional.mse_loss(model(xt), yt)
                fwd = (counted.nfev, counted.accepted, counted.rejected)
                counted.nfev = 0
                loss.backward()
                note = f"forward solve counts; backward: {counted.nfev} field calls"
                if gradient == "adjoint" and solver == "dopri5":
                    note += f" (adjoint solve accepted={counted.adj_accepted} rejected={counted.adj_rejected})"
                elif gradient == "adjoint":
                    note += " (fixed grid)"
                else:
                    note = "forward solve counts; backward through autograd's graph"
            finally:
                model.func = base
            return grad_probe(loss.item(), model.grads(), PARAM_NAMES, note=note, nfev=fwd[0],
                              accepted=fwd[1] or None, rejected=fwd[2] if solver == "dopri5" else None)

        api = "odeint_adjoint" if gradient == "adjoint" else "odeint (autograd through the steps)"
        return Side(run=run, probe=probe, note=("torch.compile(field); " if compiled else "") +
                    f"torchdiffeq.{api}; grads zeroed, mse_loss, backward()")

    return factory


def _diffrax_rk4(diffrax):
    """The classic RK4 tableau as a diffrax solver (diffrax ships none): the same 4 stages and
    weights as neurodyn's rk4, fixed steps (no error estimate: b_error = 0)."""
    rk4_tableau = diffrax.ButcherTableau(c=np.array([0.5, 0.5, 1.0]), b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
                                     b_error=np.zeros(4),
                                     a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])))

    class RK4(diffrax.AbstractERK):
        # plain class attributes (not dataclass fields): the abstract class declares them as class variables
        tableau = rk4_tableau
        interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    return RK4()


def diffrax_node_side(kind, solver, gradient, rtol, atol, x, y, quick=False):
    """The same model in JAX: diffrax.diffeqsolve under jax.jit (forward), or jax.value_and_grad
    of the mse under jax.jit (training step): backprop = RecursiveCheckpointAdjoint (diffrax's
    default, reverse mode through the steps), adjoint = BacksolveAdjoint (the continuous adjoint
    solved backwards with the forward's method and tolerances). float32, XLA on one thread."""

    def factory():
        jax = jax_mod(quick=quick)
        try:
            import diffrax
            import jax.numpy as jnp
        except ImportError as exc:
            raise Skip(f"diffrax not importable: {exc}") from None
        nd_m = make_nd_node(solver, gradient, x.shape[1], HIDDEN, OUT, rtol, atol)
        params = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in nd_m.params.items()}
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        if solver == "rk4":
            method, control, dt0 = _diffrax_rk4(diffrax), diffrax.ConstantStepSize(), 0.1
        else:
            method, control, dt0 = diffrax.Dopri5(), diffrax.PIDController(rtol=rtol, atol=atol), None
        adjoint = diffrax.BacksolveAdjoint() if gradient == "adjoint" else diffrax.RecursiveCheckpointAdjoint()

        def field(t, h, p):
            z = h @ p["dynamics_dense1.kernel"] + p["dynamics_dense1.bias"]
            return jnp.tanh((z * jax.nn.sigmoid(z)) @ p["dynamics_dense2.kernel"] + p["dynamics_dense2.bias"])

        def model(p, xs):
            h0 = xs @ p["input_proj.kernel"] + p["input_proj.bias"]
            sol = diffrax.diffeqsolve(diffrax.ODETerm(field), method, t0=0.0, t1=1.0, dt0=dt0, y0=h0, args=p,
                                      stepsize_controller=control, adjoint=adjoint, max_steps=4096)
            h = sol.ys[-1]
            mu = h.mean(-1, keepdims=True)
            var = ((h - mu) ** 2).mean(-1, keepdims=True)
            hn = (h - mu) / jnp.sqrt(var + 1e-5) * p["output_norm.gamma"] + p["output_norm.beta"]
            return hn @ p["output_proj.kernel"] + p["output_proj.bias"], sol.stats

        if kind == "forward":
            fn = jax.jit(lambda p, xs: model(p, xs))

            def probe():
                out, st = fn(params, xj)
                return out_probe(np.asarray(out), nfev=None, accepted=int(st["num_accepted_steps"]),
                                 rejected=int(st["num_rejected_steps"]))
        else:
            def loss(p):
                out, st = model(p, xj)
                return jnp.mean((out - yj) ** 2), st

            fn = jax.jit(jax.value_and_grad(loss, has_aux=True))

            def probe():
                (val, st), g = fn(params)
                return grad_probe(float(val), {k: np.asarray(v) for k, v in g.items()}, PARAM_NAMES,
                                  note="forward solve counts", accepted=int(st["num_accepted_steps"]),
                                  rejected=int(st["num_rejected_steps"]))

        args = (params, xj) if kind == "forward" else (params,)
        jax.block_until_ready(fn(*args))  # compile outside the timing

        def run():
            return jax.block_until_ready(fn(*args))

        what = ("classic RK4 tableau, 10 steps" if solver == "rk4" else "Dopri5, PIDController") + \
            ("" if kind == "forward" else f", {type(adjoint).__name__}")
        return Side(run=run, probe=probe, note=f"diffrax {what}; jax.jit" + ("" if kind == "forward" else
                                                                              "(value_and_grad)"))

    return factory


def torch_reference(kind, x, y, solver, rtol, atol):
    """The same model in float64 with torchdiffeq dopri5 at rtol = atol = 1e-10 (the exact
    solution of the model's ODE, to measure each side's actual error)."""

    def reference():
        import_peer("torchdiffeq")
        torch, TorchNODE, _ = _torch_node_classes()
        nd_m = make_nd_node(solver, "backprop", x.shape[1], HIDDEN, OUT, rtol, atol)
        p64 = {k: v.astype(np.float64) for k, v in nd_m.params.items()}
        model = TorchNODE(p64, "dopri5", 1e-10, 1e-10, adjoint=False, dtype=torch.float64)
        xt = torch.from_numpy(x.astype(np.float64))
        note = "float64, torchdiffeq dopri5 rtol=atol=1e-10, autograd"
        if kind == "forward":
            with torch.no_grad():
                return out_probe(model(xt).numpy(), note=note)
        loss = torch.nn.functional.mse_loss(model(xt), torch.from_numpy(y.astype(np.float64)))
        loss.backward()
        return grad_probe(loss.item(), model.grads(), PARAM_NAMES, note=note)

    return reference


# --------------------------------------------------------------------------------------
# the cases

HIDDEN, OUT = 64, 2
DOPRI_TOL = 1e-5
# Tolerance units for the harness's "tol units" column (float32 models).
CMP_RTOL, CMP_ATOL = 1e-4, 1e-5


def node_floors(kind, batch, gradient=None):
    """The physical limit of a NeuralODE case: every field evaluation of the forward solve (the
    neurodyn side's count, the same on both sides: same solver, same steps) does the two H x H
    products of the dynamics; a backprop training step also does each one's input and weight
    gradient once (the VJPs). The continuous adjoint's backward solve integrates the state back
    with the cotangent: each of its evaluations is the field's two products and their VJP, so
    its floor adds, per backward evaluation (its count from neurodyn's backward solve, which the
    peers take too: the same method), the two products once more. On neurodyn's OpenBLAS at the
    case's shapes; no activation, solver arithmetic, projection or norm is included, so no
    implementation of the algorithm can beat this floor (the GEMM floor). The work floor adds
    each evaluation's transcendental functions: silu's sigmoid and the output tanh over the
    batch x H elements; their derivatives (s (1 + z (1 - s)), 1 - tanh^2) reuse those values,
    so a VJP at a point just evaluated needs no more."""

    def spec(sides):
        counts = (sides.get("neurodyn") or {}).get("counts") or {}
        nfev, back = counts.get("nfev"), counts.get("nfev_backward")
        if not nfev or (gradient == "adjoint" and not back):
            raise Skip("neurodyn's evaluation count is unknown")
        prods = f"2 products {batch}x{HIDDEN}x{HIDDEN}"
        if gradient != "adjoint":
            return dict(products=[(batch, HIDDEN, HIDDEN, kind == "train", 2)],
                        elementwise=[("sigmoid", batch * HIDDEN), ("tanh", batch * HIDDEN)],
                        what=f"{nfev} evaluations x {prods}"
                        + (" with their input and weight gradients" if kind == "train" else ""), time_scale=nfev)
        # the forward solve's products, then the backward solve's with their gradients; the
        # elementwise work of every evaluation
        evals = nfev + back
        return dict(products=[(batch, HIDDEN, HIDDEN, False, 2 * nfev), (batch, HIDDEN, HIDDEN, True, 2 * back)],
                    elementwise=[("sigmoid", evals * batch * HIDDEN), ("tanh", evals * batch * HIDDEN)],
                    what=f"{nfev} forward and {back} backward evaluations x {prods}, the backward ones with their "
                    "input and weight gradients")

    return floors(spec)


def node_cases(batch, quick):
    x, y = node_problem(batch, 2, HIDDEN, OUT)
    cases = []
    for solver in ("rk4", "dopri5"):
        rtol = atol = DOPRI_TOL
        solver_desc = "rk4, 10 steps of 0.1" if solver == "rk4" else f"dopri5 rtol=atol={DOPRI_TOL:g}"
        params = {"input": 2, "hidden": HIDDEN, "output": OUT, "batch": batch, "t": [0.0, 1.0], "solver": solver,
                  "dtype": "float32", "init": "nd.NeuralODE(seed=2024), copied into torch", "data_seed": 7}
        fwd_name = f"node_{solver}_forward"
        # float32 on every side; rk4: torchdiffeq's is the 3/8 rule (truncation error ~1e-6);
        # dopri5: the step controllers may differ by a step (differences at the tolerance)
        agree = 1e-4 if solver == "rk4" else 5e-3
        why = ("float32; torchdiffeq's rk4 is the 3/8 rule" if solver == "rk4" else
               "dopri5 at rtol = atol = 1e-5: the peers' step controllers and adjoint norms differ (module docstring)")
        ref_fwd = cached(torch_reference("forward", x, y, solver, rtol, atol))
        cases.append(Case(
            name=fwd_name,
            description=f"NeuralODE forward 2-{HIDDEN}-{OUT}, batch {batch}, {solver_desc}, float32",
            params=dict(params, kind="forward"),
            rtol=CMP_RTOL, atol=CMP_ATOL,
            neurodyn=nd_forward_side(solver, rtol, atol, x),
            peers={"torchdiffeq": torch_forward_side(solver, rtol, atol, x),
                   "torchdiffeq_compile": torch_forward_side(solver, rtol, atol, x, True, quick),
                   "diffrax_jit": diffrax_node_side("forward", solver, "backprop", rtol, atol, x, y, quick)},
            agree=agree, agree_why=why,
            reference=ref_fwd,
            extras=nn_extras(reference=ref_fwd), **node_floors("forward", batch),
        ))
        for gradient in ("backprop", "adjoint"):
            ref = cached(torch_reference("train", x, y, solver, rtol, atol))
            cases.append(Case(
                name=f"node_{solver}_{gradient}_train",
                description=(f"NeuralODE training step (mse, forward + backward), {gradient}, 2-{HIDDEN}-{OUT}, "
                             f"batch {batch}, {solver_desc}, float32"),
                params=dict(params, kind="train", gradient=gradient, loss="mse", forward_case=fwd_name),
                rtol=CMP_RTOL, atol=CMP_ATOL,
                neurodyn=nd_train_side(solver, gradient, rtol, atol, x, y),
                peers={"torchdiffeq": torch_train_side(solver, gradient, rtol, atol, x, y),
                       "torchdiffeq_compile": torch_train_side(solver, gradient, rtol, atol, x, y, True, quick),
                       "diffrax_jit": diffrax_node_side("train", solver, gradient, rtol, atol, x, y, quick)},
                agree=agree, agree_why=why, agree_metric="rel_l2",
                reference=ref,
                extras=nn_extras(reference=ref), **node_floors("train", batch, gradient),
            ))
    return cases


def build(quick: bool, timer_cfg) -> list:
    batch = 16 if quick else 256
    return quickify(node_cases(batch, quick), quick)
