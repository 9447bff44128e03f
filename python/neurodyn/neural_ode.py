"""Neural ODE (Chen et al. 2018) with Edifice's architecture, integrated and differentiated in C."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn, reconstruction
from .fields import MLP
from ._stiff import STIFF_METHODS
from .ode import ADAPTIVE, FIXED, METHODS, IntegrationError, _failure_reason, _raise_failed
from .training import with_options_doc
from ._typing import Seed
from .optim import Optimizer
from .training import History

if TYPE_CHECKING:
    from typing import Self

GRADIENTS = ("backprop", "adjoint")
READOUTS = ("head", "identity")
_OPTS = _core.DEFAULTS["ode_check_options"]


class NeuralODE(nn.Model):
    """A Neural ODE classifier/regressor.

    ``h0 = input_proj(x)`` (a Dense layer, only when ``input_size != hidden_size``), then
    ``dh/dt = tanh(dynamics_dense2(silu(dynamics_dense1(h))))`` integrated over
    ``[0, num_steps * step_size]``, then a layer norm (``output_norm``) and, when
    ``output_size`` is set and differs from ``hidden_size``, a Dense ``output_proj``.

    Parameters
    ----------
    input_size : int
    hidden_size : int
        Size H of the ODE state.
    num_steps, step_size : int, float
        The integration interval is ``[0, num_steps * step_size]``; the fixed-step solvers take
        exactly ``num_steps`` steps of ``step_size``.
    output_size : int, optional
    solver : {"euler", "midpoint", "rk4", "dopri5", "tsit5", "dop853", "radau", "bdf", "auto"}
        Edifice integrates with Euler only; every solver of :func:`neurodyn.odeint` works here.
        The adaptive ones (dopri5, tsit5, dop853) step every sample of a batch on its own
        (docs/models.md §8) unless ``coupled``. The implicit ``radau`` trains through the
        discrete adjoint of its steps (``gradient="backprop"``); ``bdf`` and ``auto`` integrate
        (prediction) but have no gradient.
    rtol, atol : float
        Tolerances of the adaptive solvers.
    gradient : {"backprop", "adjoint"}
        ``backprop``: exact backpropagation through the solver's steps (each sample's own
        steps; memory grows with the number of steps). Through the explicit solvers
        :meth:`loss_and_grad` keeps every stage's argument and the dynamics' activations from
        the forward solve and its backward pass reads them instead of evaluating the stages
        again: memory O(steps * stages * batch * hidden_size), about 5 * batch * hidden_size
        values per stage, held by the model from one training step to the next (and reused),
        at most ``neurodyn._core.DEFAULTS["odeint"]["kept_budget"]`` bytes (the smaller of
        1 GiB and an eighth of the machine's memory): the steps beyond it are not kept and
        the backward pass evaluates their stages again, the same gradient bits; per sample, each step's first stage (and dop853's rounds with an output inside a step)
        are evaluated again (docs/models.md §2); teacher forcing and radau evaluate the stages
        again from the recorded states. With ``radau`` the adjoint of each
        step's collocation equations, solved with the field's Jacobians at its three stages. ``adjoint``: the continuous adjoint,
        integrated backwards in C, per sample with its own step control (memory independent
        of the number of steps; exact up to the solver's accuracy). Either way the gradient of
        a batch is the sum of its samples' gradients.
    coupled : bool
        Integrate a batch as one system with one step size and one error norm (the behaviour
        before per-sample control), forward and backward. Fixed-step solvers are unaffected.
    readout : {"head", "identity"}
        ``"head"`` (Edifice's): the layer norm and the optional projection above.
        ``"identity"``: the outputs are the first ``output_size`` components of the state
        (all of them without ``output_size``), with no parameters — the observation model of
        dynamical-systems reconstruction, needed by teacher forcing (:meth:`fit`), which puts
        observed values into the state (docs/models.md §13.4).
    seed : int or numpy.random.Generator, optional
        Seeds the glorot-uniform initialisation.
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> model = nd.NeuralODE(2, hidden_size=8, output_size=1, seed=0)
    >>> model(np.zeros((3, 2), dtype=np.float32)).shape
    (3, 1)
    """

    def __init__(self, input_size: int, hidden_size: int = 256, num_steps: int = 10, step_size: float = 0.1,
                 output_size: int | None = None, solver: str = "euler", rtol: float = _OPTS["rtol"],
                 atol: float = _OPTS["atol"], gradient: str = "backprop", coupled: bool = False,
                 readout: str = "head", seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_size=input_size, hidden_size=hidden_size, num_steps=num_steps,
                                        step_size=step_size, output_size=output_size, solver=solver, rtol=rtol,
                                        atol=atol, gradient=gradient, coupled=coupled, readout=readout,
                                        dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, hidden_size=256, num_steps=10, step_size=0.1, output_size=None,
                  solver="euler", rtol=_OPTS["rtol"], atol=_OPTS["atol"], gradient="backprop", coupled=False,
                  readout="head", dtype=np.float32) -> dict:
        _checks.choice("solver", solver, METHODS + STIFF_METHODS)
        implicit = solver in STIFF_METHODS
        # the kernels' rules, at construction (the implicit methods' tolerances follow dopri5's)
        _core.ode_check_options(method="dopri5" if implicit else solver, rtol=rtol, atol=atol)
        if implicit and coupled:
            raise ValueError(f"coupled=True is for the explicit solvers; solver={solver!r} solves each sample "
                             "with its own Jacobian")
        if implicit and gradient == "adjoint":
            raise ValueError(f"gradient='adjoint' integrates the state backwards in time, which a stiff problem "
                             f"does not survive (what decays forwards grows backwards); with solver={solver!r} "
                             "use gradient='backprop'")
        config = {
            "input_size": _checks.integer("input_size", input_size, minimum=1),
            "hidden_size": _checks.integer("hidden_size", hidden_size, minimum=1),
            "num_steps": _checks.integer("num_steps", num_steps, minimum=1),
            "step_size": _checks.real("step_size", step_size, minimum=0.0, strict=True),
            "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
            "readout": readout,
            "solver": solver,
            "rtol": float(rtol),
            "atol": float(atol),
            "gradient": gradient,
            "coupled": bool(coupled),
            "dtype": nn.model_dtype(dtype).name,
        }
        _checks.choice("gradient", gradient, GRADIENTS)
        _checks.choice("readout", readout, READOUTS)
        if readout == "identity" and (config["output_size"] or 0) > config["hidden_size"]:
            raise ValueError(f"with readout='identity', output_size must be <= hidden_size={config['hidden_size']}, "
                             f"got {config['output_size']}")
        return config

    @classmethod
    def _param_specs(cls, config) -> list:
        H = config["hidden_size"]
        specs = []
        if config["input_size"] != H:
            specs += nn.dense_specs("input_proj", config["input_size"], H)
        specs += nn.dense_specs("dynamics_dense1", H, H)
        specs += nn.dense_specs("dynamics_dense2", H, H)
        if config.get("readout", "head") == "identity":
            return specs
        specs += nn.layernorm_specs("output_norm", H)
        if config["output_size"] is not None and config["output_size"] != H:
            specs += nn.dense_specs("output_proj", H, config["output_size"])
        return specs

    # ---- structure ------------------------------------------------------------------------

    @property
    def has_input_proj(self) -> bool:
        return "input_proj.kernel" in self.params

    @property
    def has_output_proj(self) -> bool:
        return "output_proj.kernel" in self.params

    @property
    def output_size(self) -> int:
        if self.has_output_proj or self.config.get("readout", "head") == "identity":
            return self.config["output_size"] or self.config["hidden_size"]
        return self.config["hidden_size"]

    @property
    def t_end(self) -> float:
        return self.config["num_steps"] * self.config["step_size"]

    def dynamics(self) -> MLP:
        """The vector field dh/dt = f(h) as a built-in field.

        Returns
        -------
        neurodyn.fields.MLP
            The model's dynamics, usable with :func:`neurodyn.odeint`.
        """
        return MLP(*self._dynamics_arrays())

    def _dynamics_arrays(self):
        """(weights, biases, activation, final activation) of the dynamics."""
        p = self.params
        return ([p["dynamics_dense1.kernel"], p["dynamics_dense2.kernel"]],
                [p["dynamics_dense1.bias"], p["dynamics_dense2.bias"]], "silu", "tanh")

    def _dynamics_spec(self):
        """The dynamics in the kernels' form, straight from the parameters: building the
        MLP field (a private copy of each array and a check) took about 50 us of every solve,
        and the kernels check the field they are given anyway."""
        return MLP._spec_of(*self._dynamics_arrays())

    # ---- forward --------------------------------------------------------------------------

    def _times(self, t):
        """Integration times: 0 first (prepended when absent), then the requested times."""
        if t is None:
            return np.array([0.0, self.t_end]), 1
        times = _checks.times("t", t)
        if np.any(times < 0) or (times.size > 1 and times[1] < times[0]):
            raise ValueError("t must be non-negative and increasing")
        if times[0] != 0.0:
            return np.concatenate([[0.0], times]), 1
        return times, 0

    def _solver_options(self, times, budget_per_step=1):
        """The solver keywords of the forward and backward solves: fixed-step solvers take
        ``num_steps`` steps of ``step_size`` over the model's interval, the adaptive ones choose
        their first step; the budget covers any fixed-step schedule over these times."""
        c = self.config
        steps = int(np.ceil(abs(times[-1] - times[0]) / c["step_size"])) + times.size
        adaptive = c["solver"] in ADAPTIVE or c["solver"] in STIFF_METHODS
        opts = dict(method=c["solver"], rtol=c["rtol"], atol=c["atol"], dt=0.0 if adaptive else c["step_size"],
                    max_steps=budget_per_step * steps + 10_000)
        if c["solver"] not in STIFF_METHODS:
            opts["coupled"] = c["coupled"]
        return opts

    # odeint's record bit that keeps the stages where the solve can keep them for this field (the
    # binding's rule): backprop then reads them and makes only the VJPs' products
    _keep_stages = 16

    def _solve(self, h0, times, record, kept=None):
        """(ys, raw info): the forward solve from h0, recording its steps (record=4: the tape
        of the backprop gradient; with _keep_stages also its stages in raw["kept"] where the
        solve can keep them, reusing the memory of ``kept``, an earlier solve's; radau's tape
        holds only the states)."""
        opts = self._solver_options(times)
        if opts["method"] in STIFF_METHODS:
            ys, y_last, raw = _core.odeint_stiff(self._dynamics_spec(), h0, times, record=bool(record & 4), **opts)
        else:
            ys, y_last, raw = _core.odeint(self._dynamics_spec(), h0, times, record=record, kept=kept, **opts)
        _raise_failed(raw, None, times, ys, y_last, opts["method"], opts["max_steps"])
        return ys, raw

    def _head(self, hs):
        """Layer norm and output projection on states hs [rows, H] (or the identity readout's
        leading components); returns (out, cache)."""
        if self.config.get("readout", "head") == "identity":
            return hs[:, :self.output_size], (None, None)
        z, ln_cache = nn.layernorm(self.params, "output_norm", hs)
        out = nn.dense(self.params, "output_proj", z) if self.has_output_proj else z
        return out, (z, ln_cache)

    def _forward(self, x, t, record, kept=None):
        x = self._check_batch(x, self.config["input_size"])
        h0 = nn.dense(self.params, "input_proj", x) if self.has_input_proj else x
        times, skip = self._times(t)
        ys, info = self._solve(h0, times, record, kept)
        B, H = h0.shape
        out, cache = self._head(ys[skip:].reshape(-1, H))
        out = out.reshape(times.size - skip, B, self.output_size)
        return out, (x, h0, times, skip, ys, info, cache)

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Output at ``t = num_steps * step_size`` for x of shape (batch, input_size).

        Returns an array (batch, output_size) of the model's dtype.
        """
        out, _ = self._forward(x, None, 0)
        return out[-1]

    def trajectory(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The hidden state h(t) at the requested times.

        Parameters
        ----------
        x : array_like, shape (batch, input_size)
        t : array_like of float, shape (len(t),)
            Non-negative, increasing times (the integration starts at 0 and may go past
            ``num_steps * step_size``).

        Returns
        -------
        ndarray, shape (len(t), batch, hidden_size)
        """
        x = self._check_batch(x, self.config["input_size"])
        h0 = nn.dense(self.params, "input_proj", x) if self.has_input_proj else x
        times, skip = self._times(t)
        ys, _ = self._solve(h0, times, 0)
        return ys[skip:]

    def predict_trajectory(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """The outputs (after the norm and the projection) at the requested times.

        Parameters
        ----------
        x, t
            As for :meth:`trajectory`.

        Returns
        -------
        ndarray, shape (len(t), batch, output_size)
        """
        out, _ = self._forward(x, t, 0)
        return out

    # ---- gradients ------------------------------------------------------------------------

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *, loss: str = "mse", t: ArrayLike | None = None,
                      teacher_forcing: str | None = None, forcing_interval: int | None = None,
                      alpha: float | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and the gradient of every parameter (a dict of the names of ``params``).

        With ``t`` the outputs at those times are compared with ``y`` of shape
        (len(t), batch, output_size); without it, the output at the end time with ``y`` of
        shape (batch, output_size) (or integer labels (batch,) for ``cross_entropy``).
        ``teacher_forcing``, ``forcing_interval`` and ``alpha`` (a number here) are those of
        :meth:`fit`: the loss and gradient of the forced rollout.
        """
        _checks.choice("loss", loss, nn.LOSSES)
        if t is not None and loss != "mse":
            raise ValueError("a trajectory loss (t given) must be 'mse'")
        solver = self.config["solver"]
        if solver in STIFF_METHODS and solver != "radau":
            raise ValueError(f"gradients through solver={solver!r} are not available: radau's are (the discrete "
                             "adjoint of its steps); bdf's would need the adjoint of its variable-order "
                             "difference updates, and auto's of both methods and their switches")
        interval, alpha = reconstruction._forcing_options(teacher_forcing, forcing_interval, alpha, adaptive=False)
        if interval is not None:
            self._check_forcing(t)
            if alpha > 0:  # alpha = 0 leaves every state as it is: the unforced rollout, bit for bit
                return self._forced_loss_and_grad(x, y, t, interval, alpha)[:2]
        backprop = self.config["gradient"] == "backprop"
        record = 4 | self._keep_stages if backprop else 0
        # The kept stages of the last training step lend their memory to this one (taken from the
        # model for the call: a concurrent call makes its own).
        kept = self.__dict__.pop("_kept_stages", None) if backprop else None
        out, (x, h0, times, skip, ys, info, (z, ln_cache)) = self._forward(x, t, record, kept)
        B, H = h0.shape
        pred = out if t is not None else out[-1]
        target = nn.check_targets(loss, y, B, pred.shape, self.dtype)
        value, dpred = nn.loss_and_grad(loss, pred, target)
        dout = dpred.reshape(-1, out.shape[-1])

        grads: dict[str, np.ndarray] = {}
        dh = self._head_grad(z, ln_cache, dout, grads)
        ybar = np.zeros_like(ys)
        ybar[skip:] = dh.reshape(times.size - skip, B, H)
        y0bar, dp = self._ode_grad(times, ys, info, ybar)
        if "kept" in info:
            self._kept_stages = info["kept"]
        self._unflatten_dynamics(dp, grads)
        if self.has_input_proj:
            nn.dense_grad(self.params, "input_proj", x, y0bar, grads, need_dx=False)
        return value, grads

    # ---- teacher forcing (docs/models.md §13.4) ---------------------------------------------

    def _check_forcing(self, t):
        if t is None:
            raise ValueError("teacher forcing needs a trajectory loss: give t and y of shape (len(t), n, output_size)")
        if self.config.get("readout", "head") != "identity":
            raise ValueError("teacher forcing puts observed values into the state: it needs readout='identity'")

    def _forced_loss_and_grad(self, x, y, t, interval, alpha, jacobian_rows=0):
        """(loss, grads, alpha estimate) of the rollout whose observed components are mixed with
        the data, ``h[:, :N] <- (1 - alpha) h[:, :N] + alpha y``, at every ``interval``-th output
        time. The solve runs in C from one forcing time to the next; the blend and its adjoint
        ``dL/dh_model = (1 - alpha) dL/dh_forced`` on the forced components (the others pass
        unchanged) sit between the segments. The loss compares the model's states before the
        blend. With ``jacobian_rows`` > 0 the norms of the flow's Jacobians between forcing
        times are measured at the blended states of that many trajectories, for the adaptive
        alpha (else None)."""
        x = self._check_batch(x, self.config["input_size"])
        h0 = nn.dense(self.params, "input_proj", x) if self.has_input_proj else x
        times, skip = self._times(t)
        B, H = h0.shape
        N = self.output_size
        target = nn.check_targets("mse", y, B, (times.size - skip, B, N), self.dtype)
        record = 4 if self.config["gradient"] == "backprop" else 0
        keep = self.dtype.type(1.0 - alpha)
        mix = self.dtype.type(alpha)
        bounds = [0] + reconstruction._forcing_times(times.size, interval) + [times.size - 1]
        ys = np.empty((times.size, B, H), dtype=self.dtype)
        ys[0] = h0
        segments, h = [], h0
        for a, b in zip(bounds[:-1], bounds[1:]):
            seg, info = self._solve(h, times[a:b + 1], record)
            ys[a + 1:b + 1] = seg[1:]
            segments.append((a, b, seg, info))
            h = seg[-1].copy()
            h[:, :N] = keep * h[:, :N] + mix * target[b - skip]
        out, (z, ln_cache) = self._head(ys[skip:].reshape(-1, H))
        value, dout = nn.loss_and_grad("mse", out.reshape(times.size - skip, B, N), target)
        grads = {}
        ybar_all = np.zeros_like(ys)
        ybar_all[skip:] = self._head_grad(z, ln_cache, dout.reshape(-1, N), grads).reshape(times.size - skip, B, H)
        carry, dp = None, 0
        for a, b, seg, info in reversed(segments):
            ybar = ybar_all[a:b + 1].copy()
            if a > 0:
                ybar[0] = 0  # the loss saw the state before the blend: it is the previous segment's end
            if carry is not None:
                carry[:, :N] *= keep
                ybar[-1] += carry
            carry, dp_seg = self._ode_grad(times[a:b + 1], seg, info, ybar)
            carry = np.array(carry, dtype=self.dtype)
            dp = dp + dp_seg
        self._unflatten_dynamics(dp, grads)
        if self.has_input_proj:
            nn.dense_grad(self.params, "input_proj", x, carry, grads, need_dx=False)
        estimate = None
        if jacobian_rows:
            starts = [(a, b, seg[0][:jacobian_rows]) for a, b, seg, _ in segments]
            estimate = reconstruction.adaptive_alpha(self._flow_jacobians(times, starts))
        return value, grads, estimate

    def _flow_jacobians(self, times, starts, most=8):
        """Jacobians d h(t_b) / d h(t_a) of the model's flow, (segments * rows, H, H), from the
        states h(t_a) of ``starts`` [(a, b, states)], for at most ``most`` evenly spread
        segments: one solve of H copies of each state and the reverse pass with the unit
        vectors as end gradients (row i of a Jacobian is e_i^T J)."""
        H = self.config["hidden_size"]
        pick = np.unique(np.linspace(0, len(starts) - 1, min(most, len(starts))).round().astype(int))
        record = 4 if self.config["gradient"] == "backprop" else 0
        out = []
        for a, b, h in (starts[i] for i in pick):
            rows = np.repeat(h, H, axis=0)
            seg, info = self._solve(rows, times[a:b + 1], record)
            ybar = np.zeros_like(seg)
            ybar[-1] = np.tile(np.eye(H, dtype=self.dtype), (h.shape[0], 1))
            jac, _ = self._ode_grad(times[a:b + 1], seg, info, ybar)
            out.append(np.asarray(jac).reshape(h.shape[0], H, H))
        return np.concatenate(out)

    def _head_grad(self, z, ln_cache, dout, grads):
        """The state gradient [rows, H] from the output gradient dout; the head's parameter
        gradients into grads."""
        if self.config.get("readout", "head") == "identity":
            dh = np.zeros((dout.shape[0], self.config["hidden_size"]), dtype=self.dtype)
            dh[:, :dout.shape[1]] = dout
            return dh
        dz = nn.dense_grad(self.params, "output_proj", z, dout, grads) if self.has_output_proj else dout
        return nn.layernorm_grad(self.params, "output_norm", ln_cache, dz, grads)

    def _ode_grad(self, times, ys, info, ybar):
        """(y0bar, flat parameter gradient) of the solve: backprop through its recorded steps,
        or the continuous adjoint from its end state."""
        c = self.config
        spec = self._dynamics_spec()
        if c["solver"] == "radau":
            steps, outs, states, stages = info["tape"]
            return _core.ode_stiff_backprop(field=spec, t=times, ybar=ybar, steps=steps, outs=outs, states=states,
                                            stages=stages)
        if c["gradient"] == "backprop":
            outs, states = info["tape"]
            return _core.ode_backprop(field=spec, t=times, ybar=ybar, steps=info["steps"], outs=outs, states=states,
                                      method=c["solver"], coupled=c["coupled"], kept=info.get("kept"))
        opts = self._solver_options(times, budget_per_step=4)
        y0bar, dp, raw = _core.ode_adjoint(field=spec, t=times, ybar=ybar, y_end=ys[-1], **opts)
        failed = np.flatnonzero(np.ravel(raw["status_code"]) < 0)
        if len(failed):
            err = IntegrationError(f"the adjoint solve ({c['solver']}) "
                                   + _failure_reason(raw, failed[0], times[::-1], opts["max_steps"]))
            err.t, err.status, err.info = np.ravel(raw["t"])[failed[0]], raw["status"][failed[0]], raw
            raise err
        return y0bar, dp

    def _unflatten_dynamics(self, dp, grads):
        """The field's flat gradient (kernel1, bias1, kernel2, bias2) back to parameter names."""
        H = self.config["hidden_size"]
        k = 0
        for layer in ("dynamics_dense1", "dynamics_dense2"):
            grads[f"{layer}.kernel"] = dp[k:k + H * H].reshape(H, H)
            grads[f"{layer}.bias"] = dp[k + H * H:k + H * H + H]
            k += H * H + H

    # ---- training -------------------------------------------------------------------------

    _task = "regressor"

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, *, return_history: Literal[True], **options: Any) -> History: ...

    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, x: ArrayLike, y: ArrayLike, *, t: ArrayLike | None = None, loss: str = "auto", epochs: int = 10,
            batch_size: int = 32, lr: float = 1e-3, optimizer: str | Optimizer = "adam", seed: Seed = None,
            verbose: bool = True, teacher_forcing: str | None = None, forcing_interval: int | None = None,
            alpha: float | str | None = None, **options: Any) -> Self | History:
        """Minibatch training with shuffling.

        Parameters
        ----------
        x : array_like, shape (n, input_size)
        y : array_like
            Targets (n, output_size) (or (n,) with one output) for ``mse``, integer labels (n,)
            for ``cross_entropy``, or (len(t), n, output_size) with ``t`` for a loss over a
            trajectory.
        t : array_like, optional
            Output times of a trajectory loss.
        loss : {"auto", "mse", "cross_entropy"}
            "auto": cross-entropy for integer labels of shape (n,), mse otherwise.
        teacher_forcing : {None, "sparse", "generalized"}
            Training on trajectories of a chaotic system (docs/models.md §13.4; needs ``t`` and
            ``readout="identity"``): during the training rollout, at every
            ``forcing_interval``-th output time the observed state components are mixed with
            the data, ``h <- (1 - alpha) h + alpha y``, and the gradient flows through the mix
            (``(1 - alpha)`` on the forced components). ``"generalized"``: generalised teacher
            forcing (Hess et al. 2023) with ``alpha``; ``"sparse"``: sparse teacher forcing
            (Mikhaeil et al. 2022), the state replaced (alpha = 1). The loss compares the
            model's states before each mix; validation and prediction run free.
        forcing_interval : int, optional
            Output times between forcings (>= 1); default 1 for ``"generalized"``, required
            for ``"sparse"`` (about the system's predictability time).
        alpha : float in [0, 1] or "adaptive", optional
            The weight of the data in the mix (``"generalized"`` only). ``"adaptive"``: Hess et
            al.'s rule ``alpha = max(0, 1 - 1/G)``, G the geometric mean of the spectral norms
            of the model's flow Jacobians between forcing times, measured before every
            optimiser step on up to 4 trajectories of the minibatch at the forced states of the
            previous step (starting from alpha = 1); the values used are in ``forcing_alpha_``.
        """
        if t is not None and np.ndim(y) != 3:
            raise ValueError(f"with t, y must have shape (len(t), n, output_size); got shape {np.shape(y)}")
        size = self.config["input_size"]
        interval, alpha = reconstruction._forcing_options(teacher_forcing, forcing_interval, alpha)
        batch_loss = lambda xb, yb, rng, loss: self.loss_and_grad(xb, yb, loss=loss, t=t)  # noqa: E731
        if interval is not None:
            self._check_forcing(t)
            batch_loss = self._forced_step(t, interval, alpha)
        return self._fit_supervised(
            x, y, loss=loss, check_x=lambda a, name: self._check_batch(a, size, name),
            y_axis=1 if t is not None else 0,
            batch_loss=batch_loss,
            predict_for=lambda xb, yb: self.predict_trajectory(xb, t) if t is not None else self(xb),
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, verbose=verbose,
            options=options)

    def _forced_step(self, t, interval, alpha):
        """The minibatch loss of a forced fit; with the adaptive alpha, each step measures the
        next step's alpha (docs/models.md §13.4)."""
        adaptive = alpha == reconstruction.ADAPTIVE_ALPHA
        self.forcing_alpha_ = []
        current = [1.0 if adaptive else alpha]

        def step(xb, yb, rng, loss):
            if loss != "mse":
                raise ValueError("teacher forcing trains on a trajectory: the loss must be 'mse'")
            self.forcing_alpha_.append(current[0])
            if current[0] == 0 and not adaptive:
                return self.loss_and_grad(xb, yb, loss=loss, t=t)
            value, grads, estimate = self._forced_loss_and_grad(xb, yb, t, interval, current[0],
                                                                jacobian_rows=4 if adaptive else 0)
            if adaptive:
                current[0] = estimate
            return value, grads
        return step
