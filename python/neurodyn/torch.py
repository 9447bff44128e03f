"""PyTorch bridge: neurodyn's fused C kernels as ``torch.autograd.Function`` s and
``torch.nn.Module`` s, so that they can sit inside a PyTorch model and be trained by its
optimisers.

Imported only when asked (``import neurodyn.torch``); ``import neurodyn`` never imports torch.
Install the extra with ``pip install "neurodyn[torch]"``.

Conventions shared by every function here:

* Tensors must live on the CPU; a CUDA (or other device) tensor raises a ``ValueError`` that
  says to move it with ``.cpu()``. They must be float32 or float64, all of one dtype per call
  (the result has that dtype).
* Inputs reach the kernels without a copy: ``tensor.numpy()`` shares the tensor's memory, and
  the kernels read contiguous data in place (a non-contiguous tensor is copied once, by the
  binding). Outputs come back with ``torch.from_numpy``, sharing the kernel's result buffer.
* Gradients come from neurodyn's hand-written backward kernels (the same ones the NumPy models
  train with). Under ``torch.no_grad()`` (or when no input requires a gradient) the forward
  kernel runs alone and nothing is kept for a backward pass.
* Non-differentiable arguments (time points, elapsed times, solver options) raise a
  ``ValueError`` when passed as tensors that require a gradient, rather than silently
  returning none.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch
from numpy.typing import ArrayLike

from . import _core, nn
from ._typing import Seed
from .fields import MLP as _MLPField
from .hopfield import _BETA
from .liquid import _LTC, _LTC_POSITIVE, CFC_MODES, TAU_CLAMP, TAU_MIN
from .nn import ACTIVATIONS
from .ode import FIXED, IntegrationError
from .snn import _LIF, _decay

if TYPE_CHECKING:
    from typing import Self

    from .hopfield import Hopfield as NDHopfieldModel
    from .liquid import Liquid

_ODE = _core.DEFAULTS["odeint"]  # the solvers' defaults (nd_ode_samples_opts_default)

__all__ = [
    "lif", "lif_rate", "LIF", "spike_linear", "SpikeLinear",
    "hopfield_retrieve", "Hopfield",
    "odeint_mlp", "MLPODE",
    "ltc_cell", "LTCCell",
    "cfc", "CfC",
    "ltc_scan", "LiquidLayer",
]

_FLOATS = (torch.float32, torch.float64)


# ---- tensors in and out -----------------------------------------------------------------------

def _array(t, name: str, dtype=None) -> np.ndarray:
    """The NumPy view of a CPU float tensor (no copy; gradients are not tracked through it)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on device '{t.device}'; neurodyn's kernels run on the CPU: pass "
                         f"{name}.cpu() and move the result back with .to('{t.device}')")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} has dtype {t.dtype}; neurodyn computes in torch.float32 or torch.float64")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but the call computes in {dtype} (the dtype of its main "
                        f"input): convert it with .to({dtype})")
    if t.is_sparse or t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    return t.detach().numpy()


def _optional(t, name: str, dtype) -> np.ndarray | None:
    return None if t is None else _array(t, name, dtype)


def _tensor(a):
    """A kernel's result as a tensor sharing its memory (None stays None)."""
    return None if a is None else torch.from_numpy(np.asarray(a))


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def _constant(t, name: str) -> None:
    """Refuses a gradient the kernels do not compute."""
    if isinstance(t, torch.Tensor) and t.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{name} requires a gradient, which neurodyn does not compute for it: pass {name}.detach()")


def _grad_like(g, like):
    """A cotangent as a NumPy array of ``like`` 's dtype (zeros when autograd passed None)."""
    return np.zeros(like.shape, dtype=like.dtype) if g is None else _array(g, "grad")


# ---- LIF neurons over time (docs/models.md §5) -----------------------------------------------

def _lif_options(tau, beta, threshold, reset, reset_delay, surrogate, slope, detach_reset, smooth) -> dict:
    opts = dict(_decay(tau, beta), threshold=threshold, reset=reset, reset_delay=reset_delay, surrogate=surrogate,
                slope=slope, detach_reset=detach_reset, smooth=smooth)
    _core.lif_check(**opts)  # the kernels' rules, before any tensor is touched
    return opts


def _lif_currents(currents, v0, num_steps):
    """The kernels' currents (T, B, n): a (B, n) current held for ``num_steps`` steps is a
    broadcast view (read once per step, never copied)."""
    cur = _array(currents, "currents")
    if num_steps is None:
        if cur.ndim != 3:
            raise ValueError(f"currents must have shape (time, batch, neurons), got {tuple(cur.shape)}; a constant "
                             f"(batch, neurons) current needs num_steps")
    else:
        from ._checks import integer

        T = integer("num_steps", num_steps, minimum=1)
        if cur.ndim != 2:
            raise ValueError(f"with num_steps, currents is the constant current of shape (batch, neurons), got "
                             f"{tuple(cur.shape)}")
        cur = np.broadcast_to(cur, (T,) + cur.shape)
    return cur, _optional(v0, "v0", currents.dtype)


def _lif_forward(currents, v0, opts, num_steps, what):
    """The forward kernel's outputs as tensors: spikes, (spikes, membrane) or rates."""
    cur, v = _lif_currents(currents, v0, num_steps)
    s, m, _, _, r = _core.lif_forward(cur, v, spikes=what != "rate", membrane=what == "both", rate=what == "rate",
                                      **opts)
    if what == "rate":
        return _tensor(r)
    return (_tensor(s), _tensor(m)) if what == "both" else _tensor(s)


class _LIFFunction(torch.autograd.Function):
    """LIF over time; ``what``: "spikes", "both" (spikes and membrane) or "rate"."""

    @staticmethod
    def forward(ctx, currents, v0, opts, num_steps, what):
        ctx.save_for_backward(currents, v0)
        ctx.opts, ctx.num_steps, ctx.what = opts, num_steps, what
        return _lif_forward(currents, v0, opts, num_steps, what)

    @staticmethod
    def backward(ctx, *grads):
        currents, v0 = ctx.saved_tensors
        cur, v = _lif_currents(currents, v0, ctx.num_steps)
        if ctx.what == "rate":
            # d rate / d spikes_t = 1/T: one (B, n) cotangent the kernel reads at every step
            dspikes, dmembrane = _array(grads[0], "grad") / cur.shape[0], None
        else:
            dspikes = None if grads[0] is None else _array(grads[0], "grad")
            dmembrane = None if ctx.what != "both" or grads[1] is None else _array(grads[1], "grad")
        dcur, dv0 = _core.lif_backward(cur, v, dspikes, dmembrane, sum_time=ctx.num_steps is not None, **ctx.opts)
        return _tensor(dcur), (None if v0 is None else _tensor(dv0)), None, None, None


def _lif_apply(currents, v0, opts, num_steps, what):
    if _needs_grad(currents, v0):
        return _LIFFunction.apply(currents, v0, opts, num_steps, what)
    return _lif_forward(currents, v0, opts, num_steps, what)


# lif returns the spikes, and with membrane=True the pair (spikes, membrane)
@overload
def lif(currents: torch.Tensor, v0: torch.Tensor | None = ..., *, num_steps: int | None = ...,
        tau: float | None = ..., beta: float | None = ..., threshold: float = ..., reset: str = ...,
        reset_delay: bool = ..., surrogate: str = ..., slope: float = ..., detach_reset: bool = ...,
        smooth: bool = ..., membrane: Literal[False] = ...) -> torch.Tensor: ...


@overload
def lif(currents: torch.Tensor, v0: torch.Tensor | None = ..., *, num_steps: int | None = ...,
        tau: float | None = ..., beta: float | None = ..., threshold: float = ..., reset: str = ...,
        reset_delay: bool = ..., surrogate: str = ..., slope: float = ..., detach_reset: bool = ...,
        smooth: bool = ..., membrane: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def lif(currents: torch.Tensor, v0: torch.Tensor | None = ..., *, num_steps: int | None = ...,
        tau: float | None = ..., beta: float | None = ..., threshold: float = ..., reset: str = ...,
        reset_delay: bool = ..., surrogate: str = ..., slope: float = ..., detach_reset: bool = ...,
        smooth: bool = ..., membrane: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


def lif(currents: torch.Tensor, v0: torch.Tensor | None = None, *, num_steps: int | None = None,
        tau: float | None = None, beta: float | None = None, threshold: float = _LIF["threshold"],
        reset: str = _LIF["reset"], reset_delay: bool = _LIF["reset_delay"], surrogate: str = _LIF["surrogate"],
        slope: float = _LIF["slope"], detach_reset: bool = _LIF["detach_reset"], smooth: bool = _LIF["smooth"],
        membrane: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Leaky integrate-and-fire neurons over time (:func:`neurodyn.lif_run`) with a surrogate
    gradient (:func:`neurodyn.lif_backward`): one C loop forward, one backward.

    Parameters
    ----------
    currents : Tensor, shape (T, B, n), or (B, n) with ``num_steps``
        Input current of every step (time first), or one current held for ``num_steps`` steps
        (its gradient is the sum over the steps, computed by the kernel without a T-fold copy).
    v0 : Tensor, shape (B, n), optional
        Initial membrane (zeros by default); differentiable.
    num_steps : int, optional
    tau, beta, threshold, reset, reset_delay
        The neuron, as :func:`neurodyn.lif_run` (``beta = exp(-1/tau)``; tau 2 when neither is given).
    surrogate, slope, detach_reset
        The backward pass, as :func:`neurodyn.lif_backward`.
    smooth : bool, default False
        Replace the hard spike by the surrogate's antiderivative in the forward pass too: the
        smooth model whose exact gradient the backward pass computes (for gradient checks).
    membrane : bool, default False
        Also return the membrane after each step's reset (differentiable too).

    Returns
    -------
    spikes : Tensor, shape (T, B, n)
        0/1 spikes (surrogate values with ``smooth=True``); ``(spikes, membrane)`` with
        ``membrane=True``.
    """
    opts = _lif_options(tau, beta, threshold, reset, reset_delay, surrogate, slope, detach_reset, smooth)
    return _lif_apply(currents, v0, opts, num_steps, "both" if membrane else "spikes")


def lif_rate(currents: torch.Tensor, v0: torch.Tensor | None = None, *, num_steps: int | None = None,
             tau: float | None = None, beta: float | None = None, threshold: float = _LIF["threshold"],
             reset: str = _LIF["reset"], reset_delay: bool = _LIF["reset_delay"], surrogate: str = _LIF["surrogate"],
             slope: float = _LIF["slope"], detach_reset: bool = _LIF["detach_reset"],
             smooth: bool = _LIF["smooth"]) -> torch.Tensor:
    """Firing rates (spike count / T, shape (B, n)) of :func:`lif`'s neurons, counted in the C
    loop without a spike raster (:func:`neurodyn.lif_rate`); the backward pass reads the rate's
    cotangent / T as the cotangent of every step's spikes. Arguments as :func:`lif`."""
    opts = _lif_options(tau, beta, threshold, reset, reset_delay, surrogate, slope, detach_reset, smooth)
    return _lif_apply(currents, v0, opts, num_steps, "rate")


class LIF(torch.nn.Module):
    """A layer of leaky integrate-and-fire neurons run over a whole sequence in C.

    ``forward(currents, v0=None)`` takes currents of shape (T, B, n) (or (B, n) held for
    ``num_steps`` steps) and returns the spikes (T, B, n), or the rates (B, n) with
    ``output="rate"``, or (spikes, membrane) with ``output="membrane"``. The neuron and its
    surrogate gradient are :func:`lif` 's. No learnable parameters: put ``torch.nn.Linear``
    layers around it (a Linear over a (T, B, m) tensor is one matrix product over all steps).

    Examples
    --------
    >>> import torch, neurodyn.torch as ndt
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), ndt.LIF(beta=0.9))
    >>> net(torch.rand(10, 2, 4)).shape
    torch.Size([10, 2, 8])
    """

    _OUTPUTS = ("spikes", "rate", "membrane")

    def __init__(self, tau: float | None = None, beta: float | None = None, threshold: float = _LIF["threshold"],
                 reset: str = _LIF["reset"], reset_delay: bool = _LIF["reset_delay"],
                 surrogate: str = _LIF["surrogate"], slope: float = _LIF["slope"],
                 detach_reset: bool = _LIF["detach_reset"], output: str = "spikes",
                 num_steps: int | None = None) -> None:
        super().__init__()
        if output not in self._OUTPUTS:
            raise ValueError(f"output={output!r} is not one of 'spikes', 'rate', 'membrane'")
        self.opts = _lif_options(tau, beta, threshold, reset, reset_delay, surrogate, slope, detach_reset, False)
        self.output, self.num_steps = output, num_steps

    def forward(self, currents: torch.Tensor, v0: torch.Tensor | None = None) -> Any:
        what = {"spikes": "spikes", "rate": "rate", "membrane": "both"}[self.output]
        return _lif_apply(currents, v0, self.opts, self.num_steps, what)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.opts.items() if k != "smooth") + f", output={self.output!r}"


class _SpikeLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spikes, weight, bias):
        rows = _array(spikes, "spikes").reshape(-1, spikes.shape[-1])
        kernel = _array(weight, "weight", spikes.dtype).T  # neurodyn's (in, out) layout, a view
        y = _core.dense_forward(rows, kernel, _optional(bias, "bias", spikes.dtype), spikes=True)
        ctx.save_for_backward(spikes, weight)
        ctx.has_bias = bias is not None
        return _tensor(y).reshape(spikes.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, dy):
        spikes, weight = ctx.saved_tensors
        rows = _array(spikes, "spikes").reshape(-1, spikes.shape[-1])
        g = _array(dy, "grad").reshape(rows.shape[0], weight.shape[0])
        dx, dw, db = _core.dense_backward(rows, _array(weight, "weight").T, g, has_bias=ctx.has_bias,
                                          need_dx=ctx.needs_input_grad[0], spikes=True)
        dx_t = None if dx is None else _tensor(dx).reshape(spikes.shape)
        return dx_t, _tensor(dw).T, (_tensor(db) if ctx.has_bias else None)


def spike_linear(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.linear`` for 0/1 spike inputs, event-driven
    (:func:`neurodyn.nn.dense` with ``spikes=True``): each output row adds the weight columns
    its spikes select, so the work follows the number of spikes rather than rows x inputs
    (the kernel takes the dense product when a quarter or more of the inputs are on). The weight
    gradient is summed spike by spike as well; the input's gradient is ``dy @ weight``.

    Parameters
    ----------
    spikes : Tensor, shape (..., in)
        Every value 0 or 1 (ValueError otherwise), e.g. the output of :func:`lif`.
    weight : Tensor, shape (out, in)
        As ``torch.nn.Linear.weight``.
    bias : Tensor, shape (out,), optional

    Returns
    -------
    Tensor, shape (..., out). The sums run in a fixed order, so they may differ from the
    dense product's in the last bits.
    """
    if _needs_grad(spikes, weight, bias):
        return _SpikeLinearFunction.apply(spikes, weight, bias)
    rows = _array(spikes, "spikes").reshape(-1, spikes.shape[-1])
    y = _core.dense_forward(rows, _array(weight, "weight", spikes.dtype).T, _optional(bias, "bias", spikes.dtype),
                            spikes=True)
    return _tensor(y).reshape(spikes.shape[:-1] + (weight.shape[0],))


class SpikeLinear(torch.nn.Linear):
    """A ``torch.nn.Linear`` whose input is 0/1 spikes, computed event by event by
    :func:`spike_linear` (same parameters, same results up to the order of the sums)."""

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spike_linear(spikes, self.weight, self.bias)


# ---- modern Hopfield retrieval (docs/models.md §4) --------------------------------------------

class _HopfieldFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, queries, patterns, values, beta_t, beta):
        q = _array(queries, "queries")
        Y = _array(patterns, "patterns", queries.dtype)
        V = _optional(values, "values", queries.dtype)
        out, lse = _core.hopfield_forward(q, Y, V, beta)
        out_t, lse_t = _tensor(out), _tensor(lse)
        ctx.save_for_backward(queries, patterns, values, out_t, lse_t)
        ctx.beta = beta
        return out_t, lse_t

    @staticmethod
    def backward(ctx, dout, dlse):
        queries, patterns, values, out, lse = ctx.saved_tensors
        q, Y = _array(queries, "queries"), _array(patterns, "patterns")
        V = None if values is None else _array(values, "values")
        o = _array(out, "out")
        dq, dY, dV, dbeta = _core.hopfield_backward(q, Y, V, ctx.beta, o, _array(lse, "lse"), _grad_like(dout, o),
                                                    None if dlse is None else _array(dlse, "grad"))
        dbeta_t = None if not ctx.needs_input_grad[3] else torch.tensor(dbeta, dtype=queries.dtype)
        return _tensor(dq), _tensor(dY), (None if values is None else _tensor(dV)), dbeta_t, None


# hopfield_retrieve returns the retrieved values, and with return_lse=True the pair (values, lse)
@overload
def hopfield_retrieve(queries: torch.Tensor, patterns: torch.Tensor, beta: float | torch.Tensor = ...,
                      values: torch.Tensor | None = ..., *, return_lse: Literal[False] = ...) -> torch.Tensor: ...


@overload
def hopfield_retrieve(queries: torch.Tensor, patterns: torch.Tensor, beta: float | torch.Tensor = ...,
                      values: torch.Tensor | None = ..., *,
                      return_lse: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def hopfield_retrieve(queries: torch.Tensor, patterns: torch.Tensor, beta: float | torch.Tensor = ...,
                      values: torch.Tensor | None = ..., *,
                      return_lse: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


def hopfield_retrieve(queries: torch.Tensor, patterns: torch.Tensor, beta: float | torch.Tensor = _BETA,
                      values: torch.Tensor | None = None, *,
                      return_lse: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Modern Hopfield retrieval ``softmax(beta Q Y^T) V`` (:func:`neurodyn.hopfield_retrieve`,
    one step) in one fused kernel, with gradients for the queries, patterns, values and beta.

    Parameters
    ----------
    queries : Tensor, shape (B, d) or (d,)
    patterns : Tensor, shape (N, d)
        Stored patterns (keys).
    beta : float or 0-d Tensor, default 1.0
        Inverse temperature (> 0); a tensor that requires a gradient gets one.
    values : Tensor, shape (N, dv), optional
        What is read out (default: the patterns).
    return_lse : bool, default False
        Also return ``logsumexp(beta Q Y^T)`` per query (B,), whose negative is the energy of
        :func:`neurodyn.hopfield_energy` (differentiable too).

    Returns
    -------
    Tensor, shape (B, dv) (or (dv,) for a single query); with ``return_lse``, (out, lse).
    """
    beta_t = beta if isinstance(beta, torch.Tensor) else None
    if beta_t is not None:
        if beta_t.numel() != 1:
            raise ValueError(f"beta must be a scalar, got a tensor of shape {tuple(beta_t.shape)}")
        _array(beta_t, "beta")
    b = _core.hopfield_check(float(beta_t.detach().reshape(())) if beta_t is not None else beta)
    single = isinstance(queries, torch.Tensor) and queries.dim() == 1
    q = queries.unsqueeze(0) if single else queries
    if _needs_grad(q, patterns, values, beta_t):
        out, lse = _HopfieldFunction.apply(q, patterns, values, beta_t, b)
    else:
        qa = _array(q, "queries")
        out, lse = map(_tensor, _core.hopfield_forward(qa, _array(patterns, "patterns", q.dtype),
                                                       _optional(values, "values", q.dtype), b))
    if single:
        out, lse = out[0], lse[0]
    return (out, lse) if return_lse else out


class Hopfield(torch.nn.Module):
    """A modern Hopfield layer as :class:`neurodyn.Hopfield`: ``q = query_proj(x)`` and
    ``softmax(beta q Y^T) Y`` with learnable stored patterns ``Y`` (N, pattern_dim).

    ``from_model(nd.Hopfield)`` copies a neurodyn model's parameters in and ``to_model()`` back
    (``hopfield_query_proj.kernel`` is the transpose of ``query_proj.weight``).
    """

    def __init__(self, input_dim: int, num_patterns: int = 64, pattern_dim: int = 128, beta: float = _BETA,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.beta = _core.hopfield_check(beta)
        self.query_proj = torch.nn.Linear(input_dim, pattern_dim, dtype=dtype)
        limit = math.sqrt(6.0 / (num_patterns + pattern_dim))
        self.patterns = torch.nn.Parameter(torch.empty(num_patterns, pattern_dim, dtype=dtype).uniform_(-limit, limit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hopfield_retrieve(self.query_proj(x), self.patterns, self.beta)

    @classmethod
    def from_model(cls, model: NDHopfieldModel) -> Hopfield:
        """A module with the parameters of a :class:`neurodyn.Hopfield` (copied)."""
        c = model.config
        mod = cls(c["input_dim"], c["num_patterns"], c["pattern_dim"], c["beta"], dtype=_torch_dtype(model.dtype))
        p = model.params
        with torch.no_grad():
            mod.query_proj.weight.copy_(torch.from_numpy(p["hopfield_query_proj.kernel"].T))
            mod.query_proj.bias.copy_(torch.from_numpy(p["hopfield_query_proj.bias"]))
            mod.patterns.copy_(torch.from_numpy(p["hopfield_patterns"]))
        return mod

    def to_model(self) -> NDHopfieldModel:
        """The same layer as a :class:`neurodyn.Hopfield` (parameters copied)."""
        from .hopfield import Hopfield as NDHopfield

        N, M = self.patterns.shape
        dtype = _numpy_dtype(self.patterns.dtype)
        params = {"hopfield_query_proj.kernel": _copy(self.query_proj.weight.T, dtype),
                  "hopfield_query_proj.bias": _copy(self.query_proj.bias, dtype),
                  "hopfield_patterns": _copy(self.patterns, dtype)}
        config = NDHopfield._validate(input_dim=self.query_proj.in_features, num_patterns=N, pattern_dim=M,
                                      beta=self.beta, dtype=dtype)
        return NDHopfield._from_saved(config, params, copy=False)


def _torch_dtype(dtype):
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _numpy_dtype(dtype):
    return np.dtype(np.float64) if dtype == torch.float64 else np.dtype(np.float32)


def _copy(t, dtype=None) -> np.ndarray:
    """A fresh C-contiguous NumPy copy of a tensor's values."""
    return np.array(t.detach().cpu().numpy(), dtype=dtype, order="C", copy=True)


# ---- Neural ODE with an MLP field (docs/models.md §1-2) ------------------------------------------
# Every call of the ODE kernels' binding sits in these three functions, so that a change of its
# signatures is made here alone.

def _ode_solve(spec, y0, times, method, rtol, atol, dt, max_steps, tape):
    """ys (len(t),) + y0.shape and the raw info dict of the batch as one system (``tape``:
    record what backprop needs); a failure raises IntegrationError as odeint does."""
    from .ode import _raise_failed

    ys, y_last, info = _core.odeint(spec, y0, times, method=method, rtol=rtol, atol=atol, dt=dt,
                                    max_steps=max_steps, coupled=True, record=4 if tape else 0)
    _raise_failed(info, None, times, ys, y_last, method, max_steps)
    return ys, info


def _ode_backprop(spec, times, info, ybar, method):
    outs, states = info["tape"]
    return _core.ode_backprop(field=spec, t=times, ybar=ybar, steps=info["steps"], outs=outs, states=states,
                              method=method, coupled=True)


def _ode_adjoint(spec, times, y_end, ybar, method, rtol, atol, dt, max_steps):
    from .ode import _failure_reason

    y0bar, dp, raw = _core.ode_adjoint(field=spec, t=times, ybar=ybar, y_end=y_end, method=method, coupled=True,
                                       rtol=rtol, atol=atol, dt=dt, max_steps=max_steps)
    if np.ravel(raw["status_code"])[0] < 0:
        err = IntegrationError(f"the adjoint solve ({method}) " + _failure_reason(raw, 0, times[::-1], max_steps))
        err.t, err.status, err.info = float(raw["t"]), raw["status"][0], raw
        raise err
    return y0bar, dp


_GRADIENTS = ("backprop", "adjoint")


def _ode_options(method, rtol, atol, dt, max_steps, gradient):
    from ._checks import choice, real

    _core.ode_check_options(method=method, rtol=rtol, atol=atol, max_steps=max_steps)
    choice("gradient", gradient, _GRADIENTS)
    if method not in FIXED and method != "dopri5":
        raise ValueError(f"method={method!r}: odeint_mlp differentiates euler, midpoint, rk4 and dopri5")
    if method in FIXED and dt is None:
        raise ValueError(f"method={method!r} is fixed-step: give dt")
    step = 0.0 if dt is None else real("dt", dt, minimum=0.0, strict=True)
    return {"method": method, "rtol": float(rtol), "atol": float(atol), "dt": step, "max_steps": int(max_steps),
            "gradient": gradient}


def _mlp_spec(weights, biases, activation, final_activation):
    W = [_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
    b = None if biases is None else [None if v is None else _array(v, f"biases[{i}]") for i, v in enumerate(biases)]
    return _MLPField(W, b, activation=activation, final_activation=final_activation)._spec()


class _ODEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y0, times, opts, acts, nw, *params):
        weights, biases = params[:nw], params[nw:]
        spec = _mlp_spec(weights, biases if biases else None, *acts)
        tape = opts["gradient"] == "backprop"
        ys, info = _ode_solve(spec, _array(y0, "y0", weights[0].dtype), times, opts["method"], opts["rtol"],
                              opts["atol"], opts["dt"], opts["max_steps"], tape)
        ys_t = _tensor(ys)
        ctx.save_for_backward(ys_t, *params)
        ctx.opts, ctx.acts, ctx.nw, ctx.times, ctx.info = opts, acts, nw, times, info if tape else None
        return ys_t

    @staticmethod
    def backward(ctx, dys):
        ys_t, *params = ctx.saved_tensors
        weights, biases = params[:ctx.nw], params[ctx.nw:]
        spec = _mlp_spec(weights, biases if biases else None, *ctx.acts)
        ys = _array(ys_t, "ys")
        ybar = np.ascontiguousarray(_grad_like(dys, ys))
        o = ctx.opts
        if o["gradient"] == "backprop":
            y0bar, dp = _ode_backprop(spec, ctx.times, ctx.info, ybar, o["method"])
        else:
            budget = 4 * o["max_steps"] + 10_000  # the backward solve also reconstructs the state
            y0bar, dp = _ode_adjoint(spec, ctx.times, ys[-1], ybar, o["method"], o["rtol"], o["atol"], o["dt"],
                                     budget)
        grads, k = [], 0
        for w, b in zip(weights, biases if biases else [None] * len(weights)):
            grads.append((w, dp[k:k + w.numel()].reshape(tuple(w.shape))))
            k += w.numel()
            if b is not None:
                grads.append((b, dp[k:k + b.numel()].reshape(tuple(b.shape))))
                k += b.numel()
        by_param = {id(p): g for p, g in grads}
        return (_tensor(y0bar), None, None, None, None) + tuple(_tensor(by_param[id(p)]) for p in params)


def odeint_mlp(y0: torch.Tensor, t: ArrayLike | torch.Tensor, weights: Sequence[torch.Tensor],
               biases: Sequence[torch.Tensor | None] | None = None, *, activation: str = "tanh",
               final_activation: str = "identity", method: str = "rk4", dt: float | None = None,
               rtol: float = _ODE["rtol"], atol: float = _ODE["atol"], max_steps: int = _ODE["max_steps"],
               gradient: str = "backprop") -> torch.Tensor:
    """Integrate ``dy/dt = MLP(y)`` (:class:`neurodyn.fields.MLP`) in C and differentiate it with
    respect to ``y0`` and every weight and bias.

    The batch is integrated as one system (one step size for all of it, as :class:`neurodyn.NeuralODE`
    does), so gradients are exact for the steps taken.

    Parameters
    ----------
    y0 : Tensor, shape (..., n)
    t : sequence of float or Tensor, shape (K,)
        Output times, strictly monotonic; the first is the start (not differentiable).
    weights : sequence of Tensor, shapes (n, h1), ..., (hk, n)
        Layer weights in neurodyn's layout ``y = x W + b`` (the transpose of ``torch.nn.Linear.weight``).
    biases : sequence of Tensor, optional
        One per layer (all or none).
    activation, final_activation : str
        As :class:`neurodyn.fields.MLP`.
    method : {"euler", "midpoint", "rk4", "dopri5"}
    dt : float
        Step of the fixed-step methods (required for them); dopri5's first step (auto when None).
    rtol, atol, max_steps
        dopri5's tolerances and step budget.
    gradient : {"backprop", "adjoint"}
        ``backprop``: exact backpropagation through the recorded steps (memory grows with them);
        ``adjoint``: the continuous adjoint (Chen et al. 2018) integrated backwards in C, with
        memory independent of the number of steps, exact up to the solver's accuracy.

    Returns
    -------
    Tensor, shape (K, ...) + (n,)
    """
    opts = _ode_options(method, rtol, atol, dt, max_steps, gradient)
    _constant(t, "t")
    from ._checks import times as check_times

    times = check_times("t", t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t)
    weights = list(weights)
    biases = None if biases is None else list(biases)
    if biases is not None and (len(biases) != len(weights) or any(b is None for b in biases)):
        raise ValueError("biases must hold one tensor per layer (or be None)")
    dtype = y0.dtype if isinstance(y0, torch.Tensor) else None
    for i, p in enumerate(weights + (biases or [])):
        _array(p, f"weights[{i}]" if i < len(weights) else f"biases[{i - len(weights)}]", dtype)
    params = weights + (biases or [])
    acts = (activation, final_activation)
    if _needs_grad(y0, *params):
        return _ODEFunction.apply(y0, times, opts, acts, len(weights), *params)
    spec = _mlp_spec(weights, biases, *acts)
    ys, _ = _ode_solve(spec, _array(y0, "y0"), times, opts["method"], opts["rtol"], opts["atol"], opts["dt"],
                       opts["max_steps"], False)
    return _tensor(ys)


class MLPODE(torch.nn.Module):
    """A neural ODE block: ``dy/dt = MLP(y)`` with learnable weights, integrated and
    differentiated by :func:`odeint_mlp`. ``forward(y0, t)`` returns the states at the times
    ``t`` (K, ..., n).

    Parameters
    ----------
    sizes : sequence of int
        ``(n, h1, ..., hk, n)``: the state size, the hidden widths, the state size again.
    activation, final_activation, method, dt, rtol, atol, max_steps, gradient
        As :func:`odeint_mlp`.
    dtype : torch.float32 or torch.float64
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", final_activation: str = "identity",
                 method: str = "rk4", dt: float = 0.1, rtol: float = _ODE["rtol"], atol: float = _ODE["atol"],
                 max_steps: int = _ODE["max_steps"],
                 gradient: str = "backprop", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or sizes[0] != sizes[-1]:
            raise ValueError(f"sizes must start and end with the state size, got {sizes}")
        self.opts = _ode_options(method, rtol, atol, dt, max_steps, gradient)
        self.activation, self.final_activation = activation, final_activation
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            self.weights.append(torch.nn.Parameter(torch.empty(fan_in, fan_out, dtype=dtype).uniform_(-limit, limit)))
            self.biases.append(torch.nn.Parameter(torch.zeros(fan_out, dtype=dtype)))

    def forward(self, y0: torch.Tensor, t: ArrayLike | torch.Tensor) -> torch.Tensor:
        o = self.opts
        return odeint_mlp(y0, t, list(self.weights), list(self.biases), activation=self.activation,
                          final_activation=self.final_activation, method=o["method"], dt=o["dt"] or None,
                          rtol=o["rtol"], atol=o["atol"], max_steps=o["max_steps"], gradient=o["gradient"])


# ---- liquid time-constant cell (Hasani et al. 2021; python/neurodyn/liquid.py) -------------------

_LTC_CELL = ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
             "sensory_erev")


def _timespans(timespans, dtype):
    _constant(timespans, "timespans")
    return _optional(timespans, "timespans", dtype)


class _LTCCellFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, timespans, h0, opts, *params):
        xa = _array(x, "x")
        ts = _timespans(timespans, x.dtype)
        arrays = [_array(p, name, x.dtype) for p, name in zip(params, _LTC_CELL)]
        h, cache = _core.ltccell_forward(xa, ts, _optional(h0, "h0", x.dtype), *arrays, keep_cache=True, **opts)
        ctx.save_for_backward(x, timespans, *params)
        ctx.cache, ctx.opts, ctx.has_h0 = cache, opts, h0 is not None
        return _tensor(h)

    @staticmethod
    def backward(ctx, dh):
        x, timespans, *params = ctx.saved_tensors
        xa = _array(x, "x")
        arrays = [_array(p, name) for p, name in zip(params, _LTC_CELL)]
        dx, dh0, flat = _core.ltccell_backward(xa, None if timespans is None else _array(timespans, "timespans"),
                                               ctx.cache, np.ascontiguousarray(_array(dh, "grad")), *arrays,
                                               **ctx.opts)
        return (_tensor(dx), None, _tensor(dh0) if ctx.has_h0 else None, None) + _split(flat, params)


def _split(flat, params) -> tuple:
    """A kernel's flat parameter gradient cut into tensors shaped as ``params``."""
    out, k = [], 0
    for p in params:
        out.append(_tensor(flat[k:k + p.numel()].reshape(tuple(p.shape))))
        k += p.numel()
    return tuple(out)


def ltc_cell(x: torch.Tensor, params: Mapping[str, torch.Tensor], timespans: torch.Tensor | None = None,
             h0: torch.Tensor | None = None, *, ode_unfolds: int = 6, epsilon: float = 1e-8) -> torch.Tensor:
    """The liquid time-constant cell's state over a sequence (the kernel under
    :class:`neurodyn.LTCCell`), with gradients for the inputs, the initial state and every
    parameter.

    Parameters
    ----------
    x : Tensor, shape (B, T, S)
        Inputs after the cell's input mapping.
    params : dict of Tensor
        ``gleak``, ``vleak``, ``cm`` (N,); ``w``, ``sigma``, ``mu``, ``erev`` (N, N);
        ``sensory_w``, ``sensory_sigma``, ``sensory_mu``, ``sensory_erev`` (S, N): the values the
        equations use (conductances and capacitance positive; :class:`LTCCell` applies a
        softplus to its raw parameters before calling this).
    timespans : Tensor, shape (B, T), optional
        Elapsed time of every step (1 by default; not differentiable).
    h0 : Tensor, shape (B, N), optional
    ode_unfolds, epsilon
        As :class:`neurodyn.LTCCell`.

    Returns
    -------
    Tensor, shape (B, T, N): the state after every step.
    """
    missing = [n for n in _LTC_CELL if n not in params]
    if missing:
        raise ValueError(f"params is missing {missing}")
    ordered = [params[n] for n in _LTC_CELL]
    opts: dict[str, Any] = {"ode_unfolds": ode_unfolds, "epsilon": epsilon}
    if _needs_grad(x, h0, *ordered):
        return _LTCCellFunction.apply(x, timespans, h0, opts, *ordered)
    arrays = [_array(p, name, x.dtype) for p, name in zip(ordered, _LTC_CELL)]
    # (type: ignore: mypy cannot count the list; it holds exactly the 10 arrays of _LTC_CELL, so
    # ode_unfolds and epsilon come from opts)
    h, _ = _core.ltccell_forward(_array(x, "x"), _timespans(timespans, x.dtype), _optional(h0, "h0", x.dtype),
                                 *arrays, **opts)  # type: ignore[arg-type]
    return _tensor(h)


class _Sequence(torch.nn.Module):
    """from_model / to_model for the modules mirroring a neurodyn model parameter for parameter
    (same names, with '.' written '__' in PyTorch's attribute names)."""

    _model: type[nn.Model]  # the neurodyn class, set on each subclass by _set_model

    def _register(self, params: dict, dtype) -> None:
        self._names = list(params)
        for name, value in params.items():
            self.register_parameter(name.replace(".", "__"), torch.nn.Parameter(torch.as_tensor(value, dtype=dtype)))

    def p(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace(".", "__"))

    @classmethod
    def from_model(cls, model: nn.Model) -> Self:
        """A module with a copy of the neurodyn model's configuration and parameters."""
        mod = cls.__new__(cls)
        torch.nn.Module.__init__(mod)
        mod.config = dict(model.config)
        mod._register({k: np.array(v, copy=True) for k, v in model.params.items()}, _torch_dtype(model.dtype))
        return mod

    def to_model(self) -> nn.Model:
        """The neurodyn model with this module's configuration and (copied) parameters."""
        params = {name: _copy(self.p(name), self.config["dtype"]) for name in self._names}
        return self._model._from_saved(self.config, params, copy=False)


class LTCCell(_Sequence):
    """:class:`neurodyn.LTCCell` as a PyTorch module: the same parameters (raw values, with a
    softplus making ``gleak``, ``cm``, ``w`` and ``sensory_w`` positive), the affine input and
    output maps, and the cell's C kernels forward and backward.

    ``forward(x, timespans=None, h0=None)`` maps x (B, T, input_size) to
    ``(outputs (B, T, output_size), h_last (B, units))``. Build it with the constructor's
    arguments of :class:`neurodyn.LTCCell`, or with :meth:`from_model`.
    """

    def __init__(self, input_size: int, units: int, *, output_size: int | None = None, ode_unfolds: int = 6,
                 epsilon: float = 1e-8, seed: Seed = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        from .liquid import LTCCell as NDLTCCell

        model = NDLTCCell(input_size, units, output_size=output_size, ode_unfolds=ode_unfolds, epsilon=epsilon,
                          seed=seed, dtype=_numpy_dtype(dtype))
        self.config = dict(model.config)
        self._register(model.params, dtype)

    def forward(self, x: torch.Tensor, timespans: torch.Tensor | None = None,
                h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        xm = x * self.p("input_w") + self.p("input_b")
        params = {n: torch.nn.functional.softplus(self.p(n)) if n in _LTC_POSITIVE else self.p(n) for n in _LTC_CELL}
        h = ltc_cell(xm, params, timespans, h0, ode_unfolds=c["ode_unfolds"], epsilon=c["epsilon"])
        M = c["output_size"]
        return h[:, :, :M] * self.p("output_w") + self.p("output_b"), h[:, -1]


def _set_model(cls, module_name, class_name):
    import importlib

    cls._model = getattr(importlib.import_module(module_name, __package__), class_name)


_set_model(LTCCell, ".liquid", "LTCCell")


# ---- closed-form continuous-time cell (Hasani et al. 2022) -------------------------------------

def _cfc_check(mode, backbone_activation):
    from ._checks import choice

    choice("mode", mode, CFC_MODES)
    choice("backbone_activation", backbone_activation, ACTIVATIONS)


class _CfCFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, timespans, h0, opts, *params):
        arrays = tuple(_array(p, f"params[{i}]", x.dtype) for i, p in enumerate(params))
        h, cache = _core.cfc_forward(_array(x, "x"), _timespans(timespans, x.dtype), _optional(h0, "h0", x.dtype),
                                     arrays, keep_cache=True, **opts)
        ctx.save_for_backward(timespans, *params)
        ctx.cache, ctx.opts, ctx.has_h0, ctx.input_size = cache, opts, h0 is not None, x.shape[2]
        return _tensor(h)

    @staticmethod
    def backward(ctx, dh):
        timespans, *params = ctx.saved_tensors
        arrays = tuple(_array(p, "param") for p in params)
        o = {k: v for k, v in ctx.opts.items() if k != "hidden_size"}
        dx, dh0, flat = _core.cfc_backward(None if timespans is None else _array(timespans, "timespans"), ctx.cache,
                                           np.ascontiguousarray(_array(dh, "grad")), arrays,
                                           input_size=ctx.input_size, **o)
        return (_tensor(dx), None, _tensor(dh0) if ctx.has_h0 else None, None) + _split(flat, params)


def cfc(x: torch.Tensor, params: Sequence[torch.Tensor], hidden_size: int, timespans: torch.Tensor | None = None,
        h0: torch.Tensor | None = None, *, backbone_activation: str = "lecun_tanh",
        mode: str = "default") -> torch.Tensor:
    """The closed-form continuous-time cell's state over a sequence (the kernel under
    :class:`neurodyn.CfC`), with gradients for the inputs, the initial state and every parameter.

    Parameters
    ----------
    x : Tensor, shape (B, T, I)
    params : sequence of Tensor
        (W, b) of each backbone layer, then of the heads in neurodyn's layout ``y = x W + b``:
        ``ff1, ff2, time_a, time_b`` (modes "default" and "no_gate") or ``ff1`` then ``w_tau``
        and ``A`` (H,) (mode "pure"); as :class:`neurodyn.CfC` names them.
    hidden_size : int
    timespans : Tensor, shape (B, T), optional
        Elapsed time of every step (1 by default; not differentiable).
    h0 : Tensor, shape (B, H), optional
    backbone_activation, mode
        As :class:`neurodyn.CfC`.

    Returns
    -------
    Tensor, shape (B, T, H): the state after every step.
    """
    _cfc_check(mode, backbone_activation)
    params = tuple(params)
    opts: dict[str, Any] = {"hidden_size": int(hidden_size), "backbone_activation": backbone_activation, "mode": mode}
    if _needs_grad(x, h0, *params):
        return _CfCFunction.apply(x, timespans, h0, opts, *params)
    arrays = tuple(_array(p, f"params[{i}]", x.dtype) for i, p in enumerate(params))
    h, _ = _core.cfc_forward(_array(x, "x"), _timespans(timespans, x.dtype), _optional(h0, "h0", x.dtype), arrays,
                             **opts)
    return _tensor(h)


class CfC(_Sequence):
    """:class:`neurodyn.CfC` as a PyTorch module (the same parameters and kernels).

    ``forward(x, timespans=None, h0=None)`` maps x (B, T, input_size) to
    ``(outputs (B, T, output_size), h_last (B, hidden_size))``. Build it with the constructor's
    arguments of :class:`neurodyn.CfC`, or with :meth:`from_model`.
    """

    def __init__(self, input_size: int, hidden_size: int, *, backbone_units: int = 128, backbone_layers: int = 1,
                 backbone_activation: str = "lecun_tanh", mode: str = "default", output_size: int | None = None,
                 seed: Seed = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        from .liquid import CfC as NDCfC

        model = NDCfC(input_size, hidden_size, backbone_units=backbone_units, backbone_layers=backbone_layers,
                      backbone_activation=backbone_activation, mode=mode, output_size=output_size, seed=seed,
                      dtype=_numpy_dtype(dtype))
        self.config = dict(model.config)
        self._register(model.params, dtype)

    def forward(self, x: torch.Tensor, timespans: torch.Tensor | None = None,
                h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        cell = [self.p(n) for n in self._names if not n.startswith("output.")]
        h = cfc(x, cell, c["hidden_size"], timespans, h0, backbone_activation=c["backbone_activation"],
                mode=c["mode"])
        out = h
        if c["output_size"] is not None:
            out = h @ self.p("output.kernel") + self.p("output.bias")
        return out, h[:, -1]


_set_model(CfC, ".liquid", "CfC")


# ---- the Liquid model's scan (docs/models.md §3) ------------------------------------------------

def _scan_options(solver, steps, rtol, atol, max_steps) -> dict:
    opts = {"solver": solver, "steps": steps, "rtol": rtol, "atol": atol, "max_steps": max_steps}
    _core.ltc_check_options(**opts)
    return opts


class _ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, tau, h0, opts):
        h = _core.ltc_scan(_array(a, "a"), _array(tau, "tau", a.dtype), _optional(h0, "h0", a.dtype), **opts)
        h_t = _tensor(h)
        ctx.save_for_backward(a, tau, h0, h_t)
        ctx.opts = opts
        return h_t

    @staticmethod
    def backward(ctx, dh):
        a, tau, h0, h = ctx.saved_tensors
        da, dtau, dh0 = _core.ltc_scan_backward(_array(a, "a"), _array(tau, "tau"),
                                                None if h0 is None else _array(h0, "h0"), _array(h, "h"),
                                                _array(dh, "grad"), **ctx.opts)
        return _tensor(da), _tensor(dtau), (None if h0 is None else _tensor(dh0)), None


def ltc_scan(a: torch.Tensor, tau: torch.Tensor, h0: torch.Tensor | None = None, *, solver: str = _LTC["solver"],
             steps: int = _LTC["steps"], rtol: float = _LTC["rtol"], atol: float = _LTC["atol"],
             max_steps: int = _LTC["max_steps"]) -> torch.Tensor:
    """The liquid time-constant recurrence ``h_t = solve_ltc(h_{t-1}, a_t, tau_t)`` over a
    sequence (:func:`neurodyn.ltc_scan`), with gradients for ``a``, ``tau`` and ``h0``.

    Parameters
    ----------
    a, tau : Tensor, shape (B, T, H)
        Targets and (positive) time constants of every frame.
    h0 : Tensor, shape (B, H), optional
    solver, steps, rtol, atol, max_steps
        As :func:`neurodyn.ltc_scan`.

    Returns
    -------
    Tensor, shape (B, T, H)
    """
    opts = _scan_options(solver, steps, rtol, atol, max_steps)
    if _needs_grad(a, tau, h0):
        return _ScanFunction.apply(a, tau, h0, opts)
    return _tensor(_core.ltc_scan(_array(a, "a"), _array(tau, "tau", a.dtype), _optional(h0, "h0", a.dtype), **opts))


class LiquidLayer(torch.nn.Module):
    """One liquid time-constant layer of :class:`neurodyn.Liquid` (without dropout): with
    ``x = LN(u)``, ``tau = softplus(min(Dense(x), 20)) + 0.1``, ``a = Dense(silu(Dense_2H(x)))``,
    ``h = ltc_scan(a, tau)``, and the output ``u + h`` (B, T, H). The scan runs in C
    (:func:`ltc_scan`), the dense layers in PyTorch.
    """

    def __init__(self, hidden_size: int, solver: str = _LTC["solver"], steps: int = _LTC["steps"],
                 rtol: float = _LTC["rtol"], atol: float = _LTC["atol"], max_steps: int = _LTC["max_steps"],
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        H = int(hidden_size)
        self.opts = _scan_options(solver, steps, rtol, atol, max_steps)
        self.norm = torch.nn.LayerNorm(H, eps=_core.DEFAULTS["layernorm_forward"]["eps"], dtype=dtype)
        self.tau = torch.nn.Linear(H, H, dtype=dtype)
        self.f_hidden = torch.nn.Linear(H, 2 * H, dtype=dtype)
        self.f_out = torch.nn.Linear(2 * H, H, dtype=dtype)

    def forward(self, u: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(u)
        tau = torch.nn.functional.softplus(torch.clamp(self.tau(x), max=TAU_CLAMP)) + TAU_MIN
        a = self.f_out(torch.nn.functional.silu(self.f_hidden(x)))
        return u + ltc_scan(a, tau, h0, **self.opts)

    @classmethod
    def from_model(cls, model: Liquid, layer: int = 1) -> LiquidLayer:
        """Layer ``layer`` (1-based) of a :class:`neurodyn.Liquid`, its parameters copied."""
        c, p, name = model.config, model.params, f"ltc_layer_{layer}"
        if f"{name}_tau.kernel" not in p:
            raise ValueError(f"the model has no layer {layer} (it has {c['num_layers']})")
        mod = cls(c["hidden_size"], c["solver"], c["integration_steps"], c["rtol"], c["atol"], c["max_steps"],
                  dtype=_torch_dtype(model.dtype))
        with torch.no_grad():
            mod.norm.weight.copy_(torch.from_numpy(p[f"{name}_norm.gamma"]))
            mod.norm.bias.copy_(torch.from_numpy(p[f"{name}_norm.beta"]))
            for part in ("tau", "f_hidden", "f_out"):
                lin = getattr(mod, part)
                lin.weight.copy_(torch.from_numpy(p[f"{name}_{part}.kernel"].T))
                lin.bias.copy_(torch.from_numpy(p[f"{name}_{part}.bias"]))
        return mod
