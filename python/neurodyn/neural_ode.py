"""Neural ODE (Chen et al. 2018) with Edifice's architecture, integrated and differentiated in C."""
from __future__ import annotations

import numpy as np

from . import _checks, _core, nn
from .fields import MLP
from .ode import METHODS
from .training import with_options_doc

GRADIENTS = ("backprop", "adjoint")


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
    solver : {"euler", "midpoint", "rk4", "dopri5"}
        Edifice integrates with Euler only; every solver of :func:`neurodyn.odeint` works here.
    rtol, atol : float
        dopri5 tolerances.
    gradient : {"backprop", "adjoint"}
        ``backprop``: exact backpropagation through the solver's steps (memory grows with the
        number of steps). ``adjoint``: the continuous adjoint, integrated backwards in C
        (memory independent of the number of steps; exact up to the solver's accuracy).
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

    def __init__(self, input_size, hidden_size=256, num_steps=10, step_size=0.1, output_size=None,
                 solver="euler", rtol=1e-3, atol=1e-6, gradient="backprop", seed=None, dtype=np.float32):
        super().__init__(self._validate(input_size=input_size, hidden_size=hidden_size, num_steps=num_steps,
                                        step_size=step_size, output_size=output_size, solver=solver, rtol=rtol,
                                        atol=atol, gradient=gradient, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, hidden_size=256, num_steps=10, step_size=0.1, output_size=None,
                  solver="euler", rtol=1e-3, atol=1e-6, gradient="backprop", dtype=np.float32) -> dict:
        _checks.choice("solver", solver, METHODS)
        _core.ode_check_options(method=solver, rtol=rtol, atol=atol)  # the kernels' rules, at construction
        config = {
            "input_size": _checks.integer("input_size", input_size, minimum=1),
            "hidden_size": _checks.integer("hidden_size", hidden_size, minimum=1),
            "num_steps": _checks.integer("num_steps", num_steps, minimum=1),
            "step_size": _checks.real("step_size", step_size, minimum=0.0, strict=True),
            "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
            "solver": solver,
            "rtol": float(rtol),
            "atol": float(atol),
            "gradient": gradient,
            "dtype": nn.model_dtype(dtype).name,
        }
        _checks.choice("solver", solver, METHODS)
        _checks.choice("gradient", gradient, GRADIENTS)
        return config

    @classmethod
    def _param_specs(cls, config) -> list:
        H = config["hidden_size"]
        specs = []
        if config["input_size"] != H:
            specs += nn.dense_specs("input_proj", config["input_size"], H)
        specs += nn.dense_specs("dynamics_dense1", H, H)
        specs += nn.dense_specs("dynamics_dense2", H, H)
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
        return self.config["output_size"] if self.has_output_proj else self.config["hidden_size"]

    @property
    def t_end(self) -> float:
        return self.config["num_steps"] * self.config["step_size"]

    def dynamics(self) -> MLP:
        """The vector field dh/dt = f(h) as a built-in field (usable with ``nd.odeint``)."""
        p = self.params
        return MLP([p["dynamics_dense1.kernel"], p["dynamics_dense2.kernel"]],
                   [p["dynamics_dense1.bias"], p["dynamics_dense2.bias"]],
                   activation="silu", final_activation="tanh")

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

    def _solve(self, h0, times, record):
        c = self.config
        method = METHODS.index(c["solver"])
        dt = c["step_size"] if c["solver"] != "dopri5" else 0.0
        # Enough steps for any fixed-step schedule over these times; dopri5 gets odeint's budget.
        budget = int(np.ceil(abs(times[-1] - times[0]) / c["step_size"])) + times.size + 10_000
        return _core.odeint(self.dynamics()._spec(), h0, times, method, c["rtol"], c["atol"], dt, budget, (), record)

    def _head(self, hs):
        """Layer norm and output projection on states hs [rows, H]; returns (out, cache)."""
        z, ln_cache = nn.layernorm(self.params, "output_norm", hs)
        out = nn.dense(self.params, "output_proj", z) if self.has_output_proj else z
        return out, (z, ln_cache)

    def _forward(self, x, t, record):
        x = self._check_batch(x, self.config["input_size"])
        h0 = nn.dense(self.params, "input_proj", x) if self.has_input_proj else x
        times, skip = self._times(t)
        ys, info = self._solve(h0, times, record)
        B, H = h0.shape
        out, cache = self._head(ys[skip:].reshape(-1, H))
        out = out.reshape(times.size - skip, B, self.output_size)
        return out, (x, h0, times, skip, ys, info, cache)

    def __call__(self, x):
        """Output at ``t = num_steps * step_size`` for x of shape (batch, input_size).

        Returns an array (batch, output_size) of the model's dtype.
        """
        out, _ = self._forward(x, None, 0)
        return out[-1]

    def trajectory(self, x, t):
        """Hidden states h(t) at the requested times, shape (len(t), batch, hidden_size)."""
        x = self._check_batch(x, self.config["input_size"])
        h0 = nn.dense(self.params, "input_proj", x) if self.has_input_proj else x
        times, skip = self._times(t)
        ys, _ = self._solve(h0, times, 0)
        return ys[skip:]

    def predict_trajectory(self, x, t):
        """Outputs (after the norm and projection) at the requested times,
        shape (len(t), batch, output_size)."""
        out, _ = self._forward(x, t, 0)
        return out

    # ---- gradients ------------------------------------------------------------------------

    def loss_and_grad(self, x, y, *, loss="mse", t=None):
        """Loss and the gradient of every parameter (a dict of the names of ``params``).

        With ``t`` the outputs at those times are compared with ``y`` of shape
        (len(t), batch, output_size); without it, the output at the end time with ``y`` of
        shape (batch, output_size) (or integer labels (batch,) for ``cross_entropy``).
        """
        _checks.choice("loss", loss, nn.LOSSES)
        if t is not None and loss != "mse":
            raise ValueError("a trajectory loss (t given) must be 'mse'")
        out, (x, h0, times, skip, ys, info, (z, ln_cache)) = self._forward(x, t, 2 if self.config["gradient"] == "backprop" else 0)
        B, H = h0.shape
        pred = out if t is not None else out[-1]
        target = nn.check_targets(loss, y, B, pred.shape, self.dtype)
        value, dpred = nn.loss_and_grad(loss, pred, target)
        dout = dpred.reshape(-1, out.shape[-1])

        grads = {}
        dz = nn.dense_grad(self.params, "output_proj", z, dout, grads) if self.has_output_proj else dout
        dh = nn.layernorm_grad(self.params, "output_norm", ln_cache, dz, grads)
        ybar = np.zeros_like(ys)
        ybar[skip:] = dh.reshape(times.size - skip, B, H)
        y0bar, dp = self._ode_grad(times, ys, info, ybar)
        self._unflatten_dynamics(dp, grads)
        if self.has_input_proj:
            nn.dense_grad(self.params, "input_proj", x, y0bar, grads, need_dx=False)
        return value, grads

    def _ode_grad(self, times, ys, info, ybar):
        c = self.config
        spec = self.dynamics()._spec()
        method = METHODS.index(c["solver"])
        if c["gradient"] == "backprop":
            outs, states = info["tape"]
            return _core.ode_backprop(spec, times, info["steps"], outs, states, ybar, method)
        dt = c["step_size"] if c["solver"] != "dopri5" else 0.0
        budget = 4 * (int(np.ceil(times[-1] / c["step_size"])) + times.size) + 10_000
        y0bar, dp, _ = _core.ode_adjoint(spec, times, ys[-1], ybar, method, c["rtol"], c["atol"], dt, budget)
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

    @with_options_doc
    def fit(self, x, y, *, t=None, loss="auto", epochs=10, batch_size=32, lr=1e-3, optimizer="adam",
            seed=None, verbose=True, **options):
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
        """
        if t is not None and np.ndim(y) != 3:
            raise ValueError(f"with t, y must have shape (len(t), n, output_size); got shape {np.shape(y)}")
        size = self.config["input_size"]
        return self._fit_supervised(
            x, y, loss=loss, check_x=lambda a, name: self._check_batch(a, size, name),
            y_axis=1 if t is not None else 0,
            batch_loss=lambda xb, yb, rng, loss: self.loss_and_grad(xb, yb, loss=loss, t=t),
            predict_for=lambda xb, yb: self.predict_trajectory(xb, t) if t is not None else self(xb),
            epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, verbose=verbose,
            options=options)
