"""Liquid time-constant networks: the LTC relaxation :func:`solve_ltc`, the layer scan
:func:`ltc_scan` under Edifice's ``Liquid`` model, and the recurrent cells ``LTCCell`` and ``CfC``."""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn, reconstruction
from .training import with_options_doc
from ._typing import Seed
from .optim import Optimizer
from .training import History

if TYPE_CHECKING:
    from typing import Self

    import torch

# tau = softplus(min(z, TAU_CLAMP)) + TAU_MIN (as in Edifice), the kernel's defaults
TAU_CLAMP = _core.DEFAULTS["liquid_tau_forward"]["clamp"]
TAU_MIN = _core.DEFAULTS["liquid_tau_forward"]["tau_min"]

LTC_SOLVERS = _core.TABLES["ltc_solvers"]
CFC_MODES = _core.TABLES["cfc_modes"]
_LTC = _core.DEFAULTS["ltc_check_options"]  # the kernels' defaults of solver, steps, rtol, atol, max_steps


def solve_ltc(x: ArrayLike, a: ArrayLike, tau: ArrayLike, *, solver: str = _LTC["solver"], steps: int = _LTC["steps"],
              rtol: float = _LTC["rtol"], atol: float = _LTC["atol"], max_steps: int = _LTC["max_steps"]) -> np.ndarray:
    """Relax ``x`` toward ``a`` with time constant ``tau`` over one frame, elementwise.

    Integrates ``dx/ds = (a - x) / tau`` for ``s`` from 0 to 1 with ``a`` and ``tau`` held
    fixed: the update of a liquid time-constant layer (docs/models.md §1).

    Parameters
    ----------
    x, a, tau : array_like
        Broadcast together. ``tau`` must be positive and finite. float32 inputs give float32
        (Python scalars do not widen).
    solver : {"exact", "euler", "midpoint", "rk4", "dopri5"}
        ``exact``: ``a + (x - a) * exp(-1 / tau)``. The fixed-step solvers take ``steps``
        substeps of ``1 / steps``. ``dopri5`` treats the whole array as one system with the
        error control of :func:`neurodyn.odeint`, a first step of 0.25, and ``rtol``, ``atol``,
        ``max_steps``.
    steps : int
        Substeps of the fixed-step solvers (>= 1).
    rtol, atol, max_steps
        dopri5's tolerances (>= 0, not both 0) and step budget; checked as :func:`neurodyn.odeint`
        checks them.

    Returns
    -------
    ndarray
        ``x(1)``, of the broadcast shape.

    Raises
    ------
    neurodyn.IntegrationError
        dopri5 could not finish the frame (``max_steps`` used, step underflow, non-finite state).

    Examples
    --------
    >>> import neurodyn as nd
    >>> float(nd.solve_ltc(1.0, 0.5, 1.0, solver="rk4"))
    0.6875
    """
    return _core.solve_ltc(x, a, tau, solver=solver, steps=steps, rtol=rtol, atol=atol, max_steps=max_steps)


def ltc_scan(a: ArrayLike, tau: ArrayLike, h0: ArrayLike | None = None, *, solver: str = _LTC["solver"],
             steps: int = _LTC["steps"], rtol: float = _LTC["rtol"], atol: float = _LTC["atol"],
             max_steps: int = _LTC["max_steps"]) -> np.ndarray:
    """Run the liquid time-constant recurrence over a sequence, in C.

    ``h_t = solve_ltc(h_{t-1}, a_t, tau_t)`` for t = 0..T-1 from ``h_{-1} = h0`` (zeros by
    default): each frame integrates ``dh/ds = (a_t - h) / tau_t`` over ``s`` in [0, 1].

    Parameters
    ----------
    a, tau : array_like, shape (B, T, H)
        Targets and (positive, finite) time constants of every frame.
    h0 : array_like, shape (B, H), optional
    solver : {"exact", "euler", "midpoint", "rk4", "dopri5"}
        The fixed-step solvers take ``steps`` substeps per frame. On this linear equation they
        amount to ``h = a + R(-1/(steps tau))**steps (h - a)`` with ``R`` the method's stability
        polynomial, which is how they are computed (exactly what stepping gives). ``dopri5``
        integrates each sample's frame (its H units) as one system with error control
        (``rtol``, ``atol``, ``max_steps``, first step 0.25), so a sample's result never depends
        on the rest of the batch.
    steps : int, default 1
        Substeps per frame of the fixed-step solvers.
    rtol, atol : float
        dopri5 tolerances.
    max_steps : int, default 100
        dopri5's budget of steps per frame.

    Returns
    -------
    ndarray, shape (B, T, H)

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> h = nd.ltc_scan(np.full((1, 2, 1), 0.5), np.ones((1, 2, 1)))
    >>> np.round(h.ravel(), 6).tolist()
    [0.31606, 0.432332]
    """
    return _core.ltc_scan(a, tau, h0, solver=solver, steps=steps, rtol=rtol, atol=atol, max_steps=max_steps)


def _kernel_check(check, renamed=None, **options):
    """Runs a kernel's rules on a model's options; ``renamed`` maps a kernel argument to the
    model's name for it, so that the message names what the user passed."""
    try:
        check(**options)
    except (ValueError, TypeError) as err:
        text = str(err)
        for kernel_name, model_name in (renamed or {}).items():
            if text.startswith(kernel_name + " ") or text.startswith(kernel_name + "="):
                raise type(err)(model_name + text[len(kernel_name):]) from None
        raise


def _sequence(x, size_name: str, size: int, dtype) -> np.ndarray:
    """x as a contiguous (batch, time, size) array of ``dtype``: real, T > 0, finite."""
    arr = _checks.real_array("x", x, dtype)
    if arr.ndim != 3 or arr.shape[2] != size:
        raise ValueError(f"x has shape {arr.shape}; expected (batch, time, {size_name}={size})")
    if arr.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    return arr


class Liquid(nn.Model):
    """Edifice's Liquid model: a stack of pre-norm liquid time-constant layers.

    ``u = input_projection(x)`` (Dense, only when ``embed_dim != hidden_size``); each layer
    ``ltc_layer_{i}`` (i = 1..num_layers) computes, with ``x = LN(u)`` (``ltc_layer_{i}_norm``):
    ``tau = softplus(min(Dense(x), 20)) + 0.1`` (``_tau``),
    ``a = Dense(silu(Dense_2H(x)))`` (``_f_hidden``, ``_f_out``), then the scan
    ``h_t = solve_ltc(h_{t-1}, a_t, tau_t)`` from ``h = 0`` with the chosen solver, and
    ``u = u + Dropout(h)``. With ``ffn=True`` each layer is followed by a pre-norm SwiGLU block
    (``ffn_{i}_norm``, ``ffn_{i}_gate``, ``ffn_{i}_up``, ``ffn_{i}_down``; inner size 4H) with a
    residual. Finally a layer norm (``final_norm``) and the last time step.

    Parameters
    ----------
    embed_dim : int
        Features per input frame.
    hidden_size, num_layers, dropout, integration_steps, solver, ffn
        As in Edifice (defaults 256, 4, 0.1, 1, "exact", False). Dropout acts only in ``fit``.
        ``solver="dopri5"`` works here (it does not inside an Edifice model). tau can be as small
        as 0.1, so the fixed-step solvers need enough substeps to stay stable (euler and
        midpoint 6, rk4 4); fewer raise :class:`neurodyn.IntegrationError` when a tau is too small.
    output_size : int, optional
        Beyond Edifice: a Dense head (``output``) on the last step, for training on a task.
    rtol, atol, max_steps : dopri5's tolerances and step budget per frame.
    seed, dtype

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> model = nd.Liquid(3, hidden_size=8, num_layers=2, seed=0)
    >>> model(np.zeros((4, 5, 3), dtype=np.float32)).shape
    (4, 8)
    """

    def __init__(self, embed_dim: int, hidden_size: int = 256, num_layers: int = 4, dropout: float = 0.1,
                 integration_steps: int = _LTC["steps"], solver: str = _LTC["solver"], ffn: bool = False,
                 output_size: int | None = None, rtol: float = _LTC["rtol"], atol: float = _LTC["atol"],
                 max_steps: int = _LTC["max_steps"], seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(
            embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
            integration_steps=integration_steps, solver=solver, ffn=ffn, output_size=output_size, rtol=rtol,
            atol=atol, max_steps=max_steps, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, embed_dim, hidden_size=256, num_layers=4, dropout=0.1, integration_steps=_LTC["steps"],
                  solver=_LTC["solver"], ffn=False, output_size=None, rtol=_LTC["rtol"], atol=_LTC["atol"],
                  max_steps=_LTC["max_steps"], dtype=np.float32) -> dict:
        _kernel_check(_core.ltc_check_options, {"steps": "integration_steps"}, solver=solver,
                      steps=integration_steps, rtol=rtol, atol=atol, max_steps=max_steps)
        dropout = _checks.real("dropout", dropout, minimum=0.0)
        if dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {dropout}")
        if not isinstance(ffn, (bool, np.bool_)):
            raise TypeError(f"ffn must be True or False, got {ffn!r}")
        return {
            "embed_dim": _checks.integer("embed_dim", embed_dim, minimum=1),
            "hidden_size": _checks.integer("hidden_size", hidden_size, minimum=1),
            "num_layers": _checks.integer("num_layers", num_layers, minimum=1),
            "dropout": dropout, "integration_steps": operator.index(integration_steps), "solver": solver,
            "ffn": bool(ffn),
            "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
            "rtol": float(rtol), "atol": float(atol), "max_steps": operator.index(max_steps),
            "dtype": nn.model_dtype(dtype).name,
        }

    @classmethod
    def _param_specs(cls, config) -> list:
        H, specs = config["hidden_size"], []
        if config["embed_dim"] != H:
            specs += nn.dense_specs("input_projection", config["embed_dim"], H)
        for i in range(1, config["num_layers"] + 1):
            name = f"ltc_layer_{i}"
            specs += nn.layernorm_specs(f"{name}_norm", H)
            specs += nn.dense_specs(f"{name}_tau", H, H)
            specs += nn.dense_specs(f"{name}_f_hidden", H, 2 * H)
            specs += nn.dense_specs(f"{name}_f_out", 2 * H, H)
            if config["ffn"]:
                specs += nn.layernorm_specs(f"ffn_{i}_norm", H)
                specs += nn.dense_specs(f"ffn_{i}_gate", H, 4 * H)
                specs += nn.dense_specs(f"ffn_{i}_up", H, 4 * H)
                specs += nn.dense_specs(f"ffn_{i}_down", 4 * H, H)
        specs += nn.layernorm_specs("final_norm", H)
        if config["output_size"] is not None:
            specs += nn.dense_specs("output", H, config["output_size"])
        return specs

    @staticmethod
    def recommended_defaults() -> dict:
        """Edifice's recommended configuration (solver rk4), with 4 substeps instead of its 1:
        tau can go down to 0.1, and one rk4 substep is unstable below tau = 0.359.

        Returns
        -------
        dict
            Keyword arguments for :class:`Liquid` (all but ``embed_dim``).
        """
        return {"hidden_size": 256, "num_layers": 4, "dropout": 0.1, "integration_steps": 4, "solver": "rk4"}

    @staticmethod
    def high_accuracy_defaults() -> dict:
        """Edifice's high-accuracy configuration: adaptive Dormand-Prince (works here).

        Returns
        -------
        dict
            Keyword arguments for :class:`Liquid` (all but ``embed_dim``).
        """
        return {"hidden_size": 256, "num_layers": 4, "dropout": 0.1, "integration_steps": 1, "solver": "dopri5"}

    @property
    def output_size(self) -> int:
        return self.config["output_size"] or self.config["hidden_size"]

    # ---- forward --------------------------------------------------------------------------

    def _check_sequence(self, x) -> np.ndarray:
        return _sequence(x, "embed_dim", self.config["embed_dim"], self.dtype)

    def _scan_options(self) -> dict:
        c = self.config
        return {"solver": c["solver"], "steps": c["integration_steps"], "rtol": c["rtol"], "atol": c["atol"],
                "max_steps": c["max_steps"]}

    def _ltc_layer(self, i, u, h0, rng, caches):
        """One LTC layer on u [B, T, H] from the states h0 [B, H] (or None). Returns u + drop(h)."""
        p, name = self.params, f"ltc_layer_{i}"
        B, T, H = u.shape
        rows = u.reshape(B * T, H)
        x, ln = nn.layernorm(p, f"{name}_norm", rows)
        z = nn.dense(p, f"{name}_tau", x)
        tau = _core.liquid_tau_forward(z)
        f1 = nn.dense(p, f"{name}_f_hidden", x)
        s = nn.activation("silu", f1)
        a = nn.dense(p, f"{name}_f_out", s)
        a3, tau3 = a.reshape(B, T, H), tau.reshape(B, T, H)
        h = _core.ltc_scan(a3, tau3, h0, **self._scan_options())
        mask = self._dropout_mask(rng, h.shape)
        if caches is not None:
            caches.append(("ltc", i, rows, ln, x, z, f1, s, a3, tau3, h, mask))
        return u + (h if mask is None else h * mask), h

    def _ffn_block(self, i, u, rng, caches):
        p = self.params
        B, T, H = u.shape
        rows = u.reshape(B * T, H)
        n, ln = nn.layernorm(p, f"ffn_{i}_norm", rows)
        g = nn.dense(p, f"ffn_{i}_gate", n)
        up = nn.dense(p, f"ffn_{i}_up", n)
        m = _core.swiglu_forward(g, up)
        d = nn.dense(p, f"ffn_{i}_down", m).reshape(B, T, H)
        mask = self._dropout_mask(rng, d.shape)
        if caches is not None:
            caches.append(("ffn", i, rows, ln, n, g, up, m, mask))
        return u + (d if mask is None else d * mask)

    def _dropout_mask(self, rng, shape):
        rate = self.config["dropout"]
        if rng is None or rate == 0:
            return None
        keep = rng.random(shape) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    def _forward(self, x, rng=None, caches=None, states=None):
        """Whole-sequence forward. rng enables dropout (training); caches collects what the
        backward pass needs; states holds per-layer initial states and receives the last ones."""
        p, c = self.params, self.config
        B, T, _ = x.shape
        H = c["hidden_size"]
        u = (nn.dense(p, "input_projection", x.reshape(B * T, x.shape[-1])).reshape(B, T, H)
             if "input_projection.kernel" in p else x)
        for i in range(1, c["num_layers"] + 1):
            h0 = None if states is None else states[i - 1]
            u, h = self._ltc_layer(i, u, h0, rng, caches)
            if states is not None:
                states[i - 1] = np.ascontiguousarray(h[:, -1])
            if c["ffn"]:
                u = self._ffn_block(i, u, rng, caches)
        y, ln = nn.layernorm(p, "final_norm", u.reshape(B * T, H))
        y = y.reshape(B, T, H)
        if caches is not None:
            caches.append(("final", ln))
        return y

    def forward_sequence(self, x: ArrayLike) -> np.ndarray:
        """The hidden states of every step, after the final layer norm.

        Parameters
        ----------
        x : array_like, shape (batch, time, embed_dim)

        Returns
        -------
        ndarray, shape (batch, time, hidden_size)
        """
        return self._forward(self._check_sequence(x))

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Output at the last time step: (batch, hidden_size), or (batch, output_size) with a head."""
        y = self._forward(self._check_sequence(x))[:, -1]
        return nn.dense(self.params, "output", y) if "output.kernel" in self.params else y

    # ---- streaming ------------------------------------------------------------------------

    def init_cache(self, batch_size: int) -> dict:
        """The initial state for :meth:`step`.

        Parameters
        ----------
        batch_size : int

        Returns
        -------
        dict
            Per-layer states, zeros of shape (batch_size, hidden_size).
        """
        batch_size = _checks.integer("batch_size", batch_size, minimum=1)
        H = self.config["hidden_size"]
        return {"h": [np.zeros((batch_size, H), dtype=self.dtype) for _ in range(self.config["num_layers"])],
                "step": 0}

    def step(self, x_t: ArrayLike, cache: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Advance the model by one frame, in O(1) memory.

        Stepping through a sequence gives the outputs of the whole-sequence call.

        Parameters
        ----------
        x_t : array_like, shape (batch, embed_dim)
            The frame.
        cache : dict
            From :meth:`init_cache` or the previous step (not modified).

        Returns
        -------
        y_t : ndarray, shape (batch, hidden_size), or (batch, output_size) with a head
            The output after this frame, as :meth:`__call__` would give for the sequence so far.
        cache : dict
            The new state.
        """
        frame = np.asarray(x_t)
        if frame.ndim != 2:
            raise ValueError(f"x_t has shape {frame.shape}; expected one frame (batch, embed_dim="
                             f"{self.config['embed_dim']})")
        states = self._check_cache(cache, frame.shape[0])
        try:
            x = self._check_sequence(frame[:, None, :])
        except ValueError as err:
            raise ValueError(f"x_t: {err}") from None
        y = self._forward(x, states=states)[:, 0]
        if "output.kernel" in self.params:
            y = nn.dense(self.params, "output", y)
        return y, {"h": states, "step": cache["step"] + 1}

    def _check_cache(self, cache, batch: int) -> list:
        """The per-layer states of a cache from init_cache() / step(), checked and copied."""
        L, H = self.config["num_layers"], self.config["hidden_size"]
        if not isinstance(cache, dict) or not isinstance(cache.get("h"), (list, tuple)) or len(cache["h"]) != L:
            raise ValueError(f"cache must be a dict from init_cache() with {L} layer states under 'h'")
        if not isinstance(cache.get("step"), (int, np.integer)):
            raise ValueError("cache has no integer 'step' counter; use init_cache()")
        states = []
        for i, h in enumerate(cache["h"]):
            if not isinstance(h, np.ndarray) or h.shape != (batch, H):
                raise ValueError(f"cache['h'][{i}] must be an array of shape {(batch, H)} (the batch of x_t)")
            states.append(_checks.real_array(f"cache['h'][{i}]", h, self.dtype))
        return states

    # ---- gradients and training -----------------------------------------------------------

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *, loss: str = "mse", seed: Seed = None,
                      training: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Loss on the last step's output and the gradient of every parameter.

        ``training=True`` applies dropout (drawn from ``seed``)."""
        _checks.choice("loss", loss, nn.LOSSES)
        x = self._check_sequence(x)
        rng = nn.as_generator(seed) if training else None
        caches: list[Any] = []
        seq = self._forward(x, rng=rng, caches=caches)
        B, T, H = seq.shape
        last = np.ascontiguousarray(seq[:, -1])
        grads: dict[str, np.ndarray]
        p, grads = self.params, {}
        out = nn.dense(p, "output", last) if "output.kernel" in p else last
        target = nn.check_targets(loss, y, B, out.shape, self.dtype)
        value, dout = nn.loss_and_grad(loss, out, target)
        dlast = nn.dense_grad(p, "output", last, dout, grads) if "output.kernel" in p else dout
        dseq = np.zeros((B, T, H), dtype=self.dtype)
        dseq[:, -1] = dlast
        du = self._backward(x, caches, dseq, grads)
        if "input_projection.kernel" in p:
            nn.dense_grad(p, "input_projection", x.reshape(B * T, x.shape[-1]), du.reshape(B * T, H), grads, need_dx=False)
        return value, grads

    def _backward(self, x, caches, dseq, grads, h0s=None, dlast=None):
        """dL/du of the stack from dL/d(output sequence) dseq; parameter gradients into grads.
        With the layers' initial states h0s (list, or None for zeros) and dlast, the gradients
        of each layer's last state from later on, also returns the gradients of the h0s."""
        p = self.params
        B, T, H = dseq.shape
        dh0s = [None] * self.config["num_layers"]
        (_, ln_final), caches = caches[-1], caches[:-1]
        # a fresh array, which the residual connections below add to in place
        du = nn.layernorm_grad(p, "final_norm", ln_final, dseq.reshape(B * T, H), grads).reshape(B, T, H)
        for entry in reversed(caches):
            if entry[0] == "ffn":
                _, i, rows, ln, n, g, up, m, mask = entry
                dd = du if mask is None else du * mask
                dm = nn.dense_grad(p, f"ffn_{i}_down", m, dd.reshape(B * T, H), grads)
                dg, dup = _core.swiglu_backward(g, up, dm)
                dn = nn.dense_grad(p, f"ffn_{i}_gate", n, dg, grads)
                dn += nn.dense_grad(p, f"ffn_{i}_up", n, dup, grads)
                du += nn.layernorm_grad(p, f"ffn_{i}_norm", ln, dn, grads).reshape(B, T, H)
                continue
            _, i, rows, ln, x_ln, z, f1, s, a3, tau3, h, mask = entry
            name = f"ltc_layer_{i}"
            dh = du if mask is None else du * mask
            h0 = None if h0s is None else h0s[i - 1]
            if dlast is not None:
                dh = dh.copy()
                dh[:, -1] += dlast[i - 1]
            da, dtau, dh0s[i - 1] = _core.ltc_scan_backward(a3, tau3, h0, h, dh, **self._scan_options())
            ds = nn.dense_grad(p, f"{name}_f_out", s, da.reshape(B * T, H), grads)
            df1 = nn.activation_grad("silu", f1, s, ds)
            dx = nn.dense_grad(p, f"{name}_f_hidden", x_ln, df1, grads)
            dz = _core.liquid_tau_backward(z, dtau.reshape(B * T, H))
            dx += nn.dense_grad(p, f"{name}_tau", x_ln, dz, grads)
            du += nn.layernorm_grad(p, f"{name}_norm", ln, dx, grads).reshape(B, T, H)
        return du if h0s is None else (du, dh0s)

    # ---- teacher forcing (docs/models.md §13.4) ---------------------------------------------

    def _check_forecaster(self):
        if self.config["output_size"] != self.config["embed_dim"]:
            raise ValueError(f"teacher forcing trains a forecaster, whose outputs are the next frames: it needs "
                             f"output_size = embed_dim = {self.config['embed_dim']}, got {self.config['output_size']}")

    def _closed_loop(self, x, y, interval, alpha, rng=None, grad=True):
        """The forecaster's rollout on x [B, T, E]: step 0 reads x_0, step t > 0 reads
        u_t = (1 - a_t) yhat_{t-1} + a_t x_t (a_t = alpha at every interval-th step, else 0;
        yhat the head's output), one frame at a time with the layers' states carried. Returns
        (loss, grads) of the MSE of yhat against y [B, T, E], or the outputs without grad."""
        p, L = self.params, self.config["num_layers"]
        B, T, E = x.shape
        H = self.config["hidden_size"]
        a = np.zeros(T)
        a[reconstruction._forcing_times(T + 1, interval)] = alpha
        keep, mix = self.dtype.type(1.0) - a.astype(self.dtype), a.astype(self.dtype)
        states = [np.zeros((B, H), dtype=self.dtype) for _ in range(L)]
        tape, out = [], np.empty((B, T, E), dtype=self.dtype)
        u = x[:, 0]
        for t in range(T):
            if t > 0:
                u = keep[t] * out[:, t - 1] + mix[t] * x[:, t]
            h0s = [s.copy() for s in states]
            caches = [] if grad else None
            last = np.ascontiguousarray(self._forward(u[:, None, :], rng=rng, caches=caches, states=states)[:, 0])
            out[:, t] = nn.dense(p, "output", last)
            tape.append((u, h0s, caches, last))
        if not grad:
            return out
        value, dout = nn.loss_and_grad("mse", out, nn.check_targets("mse", y, B, out.shape, self.dtype))
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        dlast, du_next = None, None
        for t in reversed(range(T)):
            u, h0s, caches, last = tape[t]
            step_grads = {}
            d = dout[:, t] if du_next is None else dout[:, t] + keep[t + 1] * du_next
            dl = nn.dense_grad(p, "output", last, np.ascontiguousarray(d), step_grads)
            dseq = dl[:, None, :]
            du, dlast = self._backward(u[:, None, :], caches, dseq, step_grads, h0s=h0s, dlast=dlast)
            if "input_projection.kernel" in p:
                du_next = nn.dense_grad(p, "input_projection", u, np.ascontiguousarray(du[:, 0]), step_grads)
            else:
                du_next = du[:, 0]
            for k, g in step_grads.items():
                grads[k] += g
        return value, grads

    _task = "classifier"
    _sequences = True

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, *, return_history: Literal[True], **options: Any) -> History: ...

    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, x: ArrayLike, y: ArrayLike, *, loss: str = "auto", epochs: int = 10, batch_size: int = 32,
            lr: float = 1e-3, optimizer: str | Optimizer = "adam", seed: Seed = None, verbose: bool = True,
            teacher_forcing: str | None = None, forcing_interval: int | None = None,
            alpha: float | str | None = None, **options: Any) -> Self | History:
        """Minibatch training on the last step's output, with dropout and shuffling; or, with
        ``teacher_forcing``, of a forecaster on every step.

        Parameters
        ----------
        x : array_like, shape (n, time, embed_dim)
        y : array_like
            Integer class labels (n,) for ``cross_entropy``, or targets (n, output_size) (or (n,)
            with one output) for ``mse``.
        loss : {"auto", "cross_entropy", "mse"}
            "auto": cross-entropy for integer labels, mse otherwise.
        teacher_forcing : {None, "sparse", "generalized"}
            Train a forecaster of a (chaotic) sequence (docs/models.md §13.4; needs
            ``output_size = embed_dim``): the model runs in closed loop, its output at each step
            (the head on every step) predicting the next frame and read back as the next input,
            mixed with the observed frame at every ``forcing_interval``-th step,
            ``u_t = (1 - alpha) yhat_{t-1} + alpha x_t``; the loss is the MSE of every step's
            output against ``y`` (n, time, embed_dim), normally ``y[:, t] = x[:, t + 1]``. The
            gradient flows through the feedback (a factor ``1 - alpha`` at the forced steps).
            ``"generalized"``: ``alpha`` a number in [0, 1] (Hess et al. 2023), every step by
            default; ``"sparse"``: alpha = 1 every ``forcing_interval`` steps (Mikhaeil et al.
            2022). With alpha = 1 at every step this is ordinary (one-step) teacher forcing;
            with alpha = 0, free-running training. Validation runs free.
        forcing_interval : int, optional
            Steps between forcings (>= 1; default 1 for ``"generalized"``, required for
            ``"sparse"``).
        alpha : float in [0, 1], optional
            The weight of the observed frame (``"generalized"`` only).
        """
        interval, alpha = reconstruction._forcing_options(teacher_forcing, forcing_interval, alpha, adaptive=False)
        if interval is not None:
            self._check_forecaster()

            def forced(xb, yb, rng, loss):
                if loss != "mse":
                    raise ValueError("teacher forcing trains a forecaster: the loss must be 'mse'")
                return self._closed_loop(xb, yb, interval, alpha, rng=rng)
            return self._fit_supervised(
                x, y, loss=loss, check_x=lambda a, name: self._check_sequence(a), unit="sequences",
                batch_loss=forced, predict_for=lambda xb, yb: self._closed_loop(xb, yb, 1, 0.0, grad=False),
                epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, verbose=verbose,
                options=options)
        return self._fit_supervised(
            x, y, loss=loss, check_x=lambda a, name: self._check_sequence(a), unit="sequences",
            batch_loss=lambda xb, yb, rng, loss: self.loss_and_grad(xb, yb, loss=loss, seed=rng, training=True),
            predict_for=lambda xb, yb: self(xb), epochs=epochs, batch_size=batch_size, lr=lr,
            optimizer=optimizer, seed=seed, verbose=verbose, options=options)


# ---- recurrent cells ---------------------------------------------------------------------------

def _check_timespans(timespans, B, T):
    """Elapsed time of every step, (B, T) as x has them; None means 1 everywhere. Their dtype,
    and the kernels' rule (positive and finite), are checked by the kernels' binding."""
    if timespans is not None and np.shape(timespans) != (B, T):
        raise ValueError(f"timespans has shape {np.shape(timespans)}; expected (batch, time) = {(B, T)}")
    return timespans


class _RecurrentCell(nn.Model):
    """Shared by LTCCell and CfC: sequence inputs (B, T, input_size) with per-sample elapsed
    times, an optional Dense head ``output`` on every step, losses on the last step or on every
    step, and ``fit``. Subclasses provide ``_run(x, ts, h0, keep) -> (h, cache)``,
    ``_run_grad(x, ts, cache, dh) -> (dx, dh0, grads)`` and ``_readout`` / ``_readout_grad``."""

    if TYPE_CHECKING:  # what the subclasses provide
        def _run(self, x: np.ndarray, ts: np.ndarray | None, h0: ArrayLike | None,
                 keep: bool) -> tuple[np.ndarray, Any]: ...

        def _run_grad(self, x: np.ndarray, ts: np.ndarray | None, cache: Any,
                      dh: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]: ...

        def _readout(self, h: np.ndarray) -> np.ndarray: ...

        def _readout_grad(self, h: np.ndarray, dout: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray: ...

    def _check_sequence(self, x) -> np.ndarray:
        return _sequence(x, "input_size", self.config["input_size"], self.dtype)

    def _inputs(self, x: ArrayLike, timespans: ArrayLike | None,
                h0: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None, ArrayLike | None]:
        """x checked against the model; h0 (batch, state_size) is checked by the kernels' binding."""
        x = self._check_sequence(x)
        return x, _check_timespans(timespans, x.shape[0], x.shape[1]), h0

    def forward_sequence(self, x: ArrayLike, timespans: ArrayLike | None = None,
                         h0: ArrayLike | None = None) -> np.ndarray:
        """The outputs of every step.

        Parameters
        ----------
        x : array_like, shape (batch, time, input_size)
        timespans : array_like, shape (batch, time), optional
            Elapsed time of every step, per sample (irregular sampling); 1 by default.
        h0 : array_like, shape (batch, hidden state size), optional
            Initial state (zeros by default).

        Returns
        -------
        ndarray, shape (batch, time, output_size)
        """
        x, ts, h0 = self._inputs(x, timespans, h0)
        h, _ = self._run(x, ts, h0, keep=False)
        return self._readout(h)

    def states(self, x: ArrayLike, timespans: ArrayLike | None = None, h0: ArrayLike | None = None) -> np.ndarray:
        """The cell's state after every step, (batch, time, state_size)."""
        x, ts, h0 = self._inputs(x, timespans, h0)
        return self._run(x, ts, h0, keep=False)[0]

    def __call__(self, x: ArrayLike, timespans: ArrayLike | None = None, h0: ArrayLike | None = None) -> np.ndarray:
        """Output of the last step, (batch, output_size)."""
        return self.forward_sequence(x, timespans, h0)[:, -1]

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *, timespans: ArrayLike | None = None,
                      loss: str = "mse") -> tuple[float, dict[str, np.ndarray]]:
        """Loss and parameter gradients. ``y`` of shape (batch, time, output_size) compares every
        step (mse); (batch, output_size) or labels (batch,) compare the last step."""
        _checks.choice("loss", loss, nn.LOSSES)
        x, ts, _ = self._inputs(x, timespans, None)
        h, cache = self._run(x, ts, None, keep=True)
        out = self._readout(h)
        B, T = x.shape[:2]
        y = np.asarray(y)
        every_step = loss == "mse" and y.ndim == 3
        pred = out if every_step else np.ascontiguousarray(out[:, -1])
        target = nn.check_targets(loss, y, B, pred.shape, self.dtype)
        value, dpred = nn.loss_and_grad(loss, pred, target)
        dout = dpred if every_step else np.zeros_like(out)
        if not every_step:
            dout[:, -1] = dpred
        grads: dict[str, np.ndarray] = {}
        dh = self._readout_grad(h, dout, grads)
        _, _, cell_grads = self._run_grad(x, ts, cache, dh)
        grads.update(cell_grads)
        return value, grads

    _task = "classifier"
    _sequences = True

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, *, return_history: Literal[True], **options: Any) -> History: ...

    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, x: ArrayLike, y: ArrayLike, *, timespans: ArrayLike | None = None, loss: str = "auto",
            epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, optimizer: str | Optimizer = "adam",
            seed: Seed = None, verbose: bool = True, **options: Any) -> Self | History:
        """Minibatch training with shuffling; see :meth:`loss_and_grad` for the shapes of y.

        Parameters
        ----------
        x : array_like, shape (n, time, input_size)
        y : array_like
            Integer class labels (n,) (``cross_entropy`` on the last step), targets
            (n, output_size) for the last step or (n, time, output_size) for every step
            (``mse``).
        timespans : array_like, shape (n, time), optional
            Elapsed time of every step (1 by default); ``validation_data`` may carry its own as
            ``(x, y, timespans)``.
        loss : {"auto", "cross_entropy", "mse"}
            "auto": cross-entropy for integer labels, mse otherwise.
        """

        def check_ts(ts, x):
            ts = _check_timespans(ts, x.shape[0], x.shape[1])
            return None if ts is None else np.asarray(ts)  # an array, to take minibatches of

        def predict_for(xb, yb, tsb):
            out = self.forward_sequence(xb, tsb)
            return out if yb.ndim == 3 else np.ascontiguousarray(out[:, -1])

        return self._fit_supervised(
            x, y, [(timespans, check_ts)], loss=loss, check_x=lambda a, name: self._check_sequence(a),
            unit="sequences",
            batch_loss=lambda xb, yb, tsb, rng, loss: self.loss_and_grad(xb, yb, timespans=tsb, loss=loss),
            predict_for=predict_for, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
            verbose=verbose, options=options)

    def _decision(self, x, timespans=None, h0=None):
        return self(x, timespans, h0)


class CfC(_RecurrentCell):
    """Closed-form continuous-time cell (Hasani et al., 2022) as a recurrent layer, in C.

    Per step, ``z = [x_t, h]`` goes through a backbone (``backbone_{l}``: Dense + activation),
    then ``f1 = tanh(ff1(b))``, ``f2 = tanh(ff2(b))``,
    ``g = sigmoid(time_a(b) * dt + time_b(b))`` with ``dt`` the step's elapsed time, and
    ``h = f1 (1 - g) + g f2`` (``mode="default"``) or ``h = f1 + g f2`` (``"no_gate"``).
    ``mode="pure"`` is the direct closed-form solution (Hasani et al. 2022, eq. 3, as ncps
    computes it): with the one head ``f = ff1(b)`` (no tanh) and learnable per-unit ``w_tau``
    (zeros at first) and ``A`` (ones), ``h = A - A exp(-dt (|w_tau| + |f|)) f``.

    Parameters
    ----------
    input_size, hidden_size : int
    backbone_units, backbone_layers, backbone_activation
        Width, depth (0 allowed) and activation of the backbone (defaults 128, 1, "lecun_tanh").
    mode : {"default", "no_gate", "pure"}
    output_size : int, optional
        A Dense head ``output`` applied to every step's state.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation.
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> cell = nd.CfC(2, 8, backbone_units=16, seed=0)
    >>> x, dt = np.zeros((3, 5, 2), np.float32), np.ones((3, 5), np.float32)
    >>> cell.forward_sequence(x, timespans=dt).shape
    (3, 5, 8)
    """

    def __init__(self, input_size: int, hidden_size: int, *, backbone_units: int = 128, backbone_layers: int = 1,
                 backbone_activation: str = "lecun_tanh", mode: str = "default", output_size: int | None = None,
                 seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_size=input_size, hidden_size=hidden_size, backbone_units=backbone_units,
                                        backbone_layers=backbone_layers, backbone_activation=backbone_activation,
                                        mode=mode, output_size=output_size, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, hidden_size, backbone_units=128, backbone_layers=1,
                  backbone_activation="lecun_tanh", mode="default", output_size=None, dtype=np.float32):
        _kernel_check(_core.cfc_check, input_size=input_size, hidden_size=hidden_size, backbone_units=backbone_units,
                      backbone_layers=backbone_layers, backbone_activation=backbone_activation, mode=mode)
        return {"input_size": operator.index(input_size), "hidden_size": operator.index(hidden_size),
                "backbone_units": operator.index(backbone_units), "backbone_layers": operator.index(backbone_layers),
                "backbone_activation": backbone_activation, "mode": mode,
                "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
                "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        I, H, U, L = config["input_size"], config["hidden_size"], config["backbone_units"], config["backbone_layers"]
        specs, width = [], I + H
        for l in range(L):
            specs += nn.dense_specs(f"backbone_{l}", width, U)
            width = U
        for head in cls._heads(config["mode"]):
            specs += nn.dense_specs(head, width, H)
        if config["mode"] == "pure":
            specs += [("w_tau", (H,), "zeros"), ("A", (H,), "ones")]
        if config["output_size"] is not None:
            specs += nn.dense_specs("output", H, config["output_size"])
        return specs

    @property
    def state_size(self) -> int:
        return self.config["hidden_size"]

    @property
    def output_size(self) -> int:
        return self.config["output_size"] or self.config["hidden_size"]

    @classmethod
    def from_ncps(cls, module: torch.nn.Module, *, dtype: DTypeLike | None = None) -> CfC:
        """The cell of an ncps ``CfC`` / ``CfCCell``; see :func:`neurodyn.interop.cfc_from_ncps`."""
        from .interop import cfc_from_ncps

        return cfc_from_ncps(module, dtype=dtype)

    def to_ncps(self) -> torch.nn.Module:
        """The cell as an ncps ``CfC``; see :func:`neurodyn.interop.cfc_to_ncps`."""
        from .interop import cfc_to_ncps

        return cfc_to_ncps(self)

    @staticmethod
    def _heads(mode):
        return ("ff1",) if mode == "pure" else ("ff1", "ff2", "time_a", "time_b")

    def _cell_names(self):
        """The cell's parameters in the kernels' order (everything but the ``output`` head)."""
        return [name for name, _, _ in self._param_specs(self.config) if not name.startswith("output.")]

    def _codes(self) -> dict:
        return {"backbone_activation": self.config["backbone_activation"], "mode": self.config["mode"]}

    def _run(self, x, ts, h0, keep):
        params = tuple(self.params[n] for n in self._cell_names())
        return _core.cfc_forward(x, ts, h0, params, hidden_size=self.config["hidden_size"], keep_cache=keep,
                                 **self._codes())

    def _run_grad(self, x, ts, cache, dh):
        params = tuple(self.params[n] for n in self._cell_names())
        dx, dh0, flat = _core.cfc_backward(ts, cache, dh, params, input_size=self.config["input_size"],
                                           **self._codes())
        grads, k = {}, 0
        for name in self._cell_names():
            size = self.params[name].size
            grads[name] = flat[k:k + size].reshape(self.params[name].shape)
            k += size
        return dx, dh0, grads

    def _readout(self, h):
        if "output.kernel" not in self.params:
            return h
        B, T, H = h.shape
        out = nn.dense(self.params, "output", h.reshape(B * T, H))
        return out.reshape(B, T, out.shape[-1])  # explicit: -1 is ambiguous for an empty batch

    def _readout_grad(self, h, dout, grads):
        if "output.kernel" not in self.params:
            return np.ascontiguousarray(dout)
        B, T, H = h.shape
        return nn.dense_grad(self.params, "output", h.reshape(B * T, H), dout.reshape(B * T, dout.shape[-1]), grads).reshape(B, T, H)


# The initial ranges of Hasani et al.'s reference implementation.
_LTC_INIT = {
    "gleak": ("softplus_uniform", 0.001, 1.0), "vleak": ("uniform", -0.2, 0.2), "cm": ("softplus_uniform", 0.4, 0.6),
    "w": ("softplus_uniform", 0.001, 1.0), "sigma": ("uniform", 3.0, 8.0), "mu": ("uniform", 0.3, 0.8), "erev": "sign",
}
_LTC_POSITIVE = ("gleak", "cm", "w", "sensory_w")


class LTCCell(_RecurrentCell):
    """The liquid time-constant cell of Hasani et al. (2021) as a recurrent layer, in C.

    ``units`` neurons with potentials v follow
    ``C dv/dt = g_leak (v_leak - v) + sum_i w_ij s(sigma_ij (v_i - mu_ij)) (E_ij - v)`` plus the
    same synapses from the (affinely mapped) inputs, i.e. ``dv/dt = -[1/tau + f(v, I)] v +
    f(v, I) A``. Each step of elapsed time ``dt`` takes ``ode_unfolds`` fused semi-implicit
    Euler steps ``v <- (c v + g_leak v_leak + sum a E) / (c + g_leak + sum a)``, c = C K / dt.
    Conductances and capacitance stay positive through a softplus of the stored parameters
    (``gleak``, ``cm``, ``w``, ``sensory_w`` hold the raw values). The output is the first
    ``output_size`` neurons (the motor neurons) through an affine map (``output_w``,
    ``output_b``).

    Parameters
    ----------
    input_size : int
        Features per time step.
    units : int
        Neurons in the cell.
    output_size : int or None
        Motor neurons read out (default: all ``units``).
    ode_unfolds : int, default 6
        Semi-implicit Euler steps per time step.
    epsilon : float, default 1e-8
        Added to the denominator of the fused step.
    seed : int or None
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> cell = nd.LTCCell(2, 6, output_size=1, seed=0)
    >>> cell(np.zeros((4, 3, 2))).shape
    (4, 1)
    """

    def __init__(self, input_size: int, units: int, *, output_size: int | None = None, ode_unfolds: int = 6,
                 epsilon: float = 1e-8, seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_size=input_size, units=units, output_size=output_size,
                                        ode_unfolds=ode_unfolds, epsilon=epsilon, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, units, output_size=None, ode_unfolds=6, epsilon=1e-8, dtype=np.float32):
        _kernel_check(_core.ltccell_check, input_size=input_size, units=units, ode_unfolds=ode_unfolds, epsilon=epsilon)
        units = operator.index(units)
        out = units if output_size is None else _checks.integer("output_size", output_size, minimum=1)
        if out > units:
            raise ValueError(f"output_size={out} exceeds units={units} (the outputs are motor neurons)")
        return {"input_size": operator.index(input_size), "units": units, "output_size": out,
                "ode_unfolds": operator.index(ode_unfolds), "epsilon": float(epsilon),
                "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        S, N, M = config["input_size"], config["units"], config["output_size"]
        specs = [(name, (N,), _LTC_INIT[name]) for name in ("gleak", "vleak", "cm")]
        specs += [(name, (N, N), _LTC_INIT[name]) for name in ("w", "sigma", "mu", "erev")]
        specs += [(f"sensory_{name}", (S, N), _LTC_INIT[name]) for name in ("w", "sigma", "mu", "erev")]
        specs += [("input_w", (S,), "ones"), ("input_b", (S,), "zeros"),
                  ("output_w", (M,), "ones"), ("output_b", (M,), "zeros")]
        return specs

    _CELL = ("gleak", "vleak", "cm", "w", "sigma", "mu", "erev", "sensory_w", "sensory_sigma", "sensory_mu",
             "sensory_erev")

    @classmethod
    def from_ncps(cls, module: torch.nn.Module, *, dtype: DTypeLike | None = None) -> LTCCell:
        """The cell of an ncps ``LTC`` / ``LTCCell``; see :func:`neurodyn.interop.ltccell_from_ncps`."""
        from .interop import ltccell_from_ncps

        return ltccell_from_ncps(module, dtype=dtype)

    def to_ncps(self, *, implicit_param_constraints: bool = True) -> torch.nn.Module:
        """The cell as an ncps ``LTC``; see :func:`neurodyn.interop.ltccell_to_ncps`."""
        from .interop import ltccell_to_ncps

        return ltccell_to_ncps(self, implicit_param_constraints=implicit_param_constraints)

    @property
    def state_size(self) -> int:
        return self.config["units"]

    @property
    def output_size(self) -> int:
        return self.config["output_size"]

    def _effective(self):
        """The cell's parameters as the kernel uses them (softplus on the positive ones)."""
        return tuple(nn.activation("softplus", self.params[n]) if n in _LTC_POSITIVE else self.params[n]
                     for n in self._CELL)

    def _mapped(self, x):
        S, M = self.config["input_size"], self.config["output_size"]
        for name, size in (("input_w", S), ("input_b", S), ("output_w", M), ("output_b", M)):
            if self.params[name].shape != (size,):
                raise ValueError(f"parameter {name!r} has shape {self.params[name].shape}, expected ({size},)")
        return np.ascontiguousarray(x * self.params["input_w"] + self.params["input_b"], dtype=self.dtype)

    def _run(self, x, ts, h0, keep):
        c = self.config
        return _core.ltccell_forward(self._mapped(x), ts, h0, *self._effective(), ode_unfolds=c["ode_unfolds"],
                                     epsilon=c["epsilon"], keep_cache=keep)

    def _run_grad(self, x, ts, cache, dh):
        c = self.config
        xm = self._mapped(x)
        dxm, dh0, flat = _core.ltccell_backward(xm, ts, cache, dh, *self._effective(), ode_unfolds=c["ode_unfolds"],
                                                epsilon=c["epsilon"])
        grads, k = {}, 0
        for name in self._CELL:
            p = self.params[name]
            g = flat[k:k + p.size].reshape(p.shape)
            k += p.size
            if name in _LTC_POSITIVE:  # d softplus(r)/dr = sigmoid(r)
                g = g * nn.activation("sigmoid", p)
            grads[name] = g
        grads["input_w"] = np.einsum("bts,bts->s", dxm, x).astype(self.dtype)
        grads["input_b"] = dxm.sum(axis=(0, 1)).astype(self.dtype)
        return dxm * self.params["input_w"], dh0, grads

    def _readout(self, h):
        M = self.config["output_size"]
        return h[:, :, :M] * self.params["output_w"] + self.params["output_b"]

    def _readout_grad(self, h, dout, grads):
        M = self.config["output_size"]
        grads["output_w"] = np.einsum("btm,btm->m", dout, h[:, :, :M]).astype(self.dtype)
        grads["output_b"] = dout.sum(axis=(0, 1)).astype(self.dtype)
        dh = np.zeros(h.shape, dtype=self.dtype)
        dh[:, :, :M] = dout * self.params["output_w"]
        return dh
