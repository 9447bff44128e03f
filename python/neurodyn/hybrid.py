"""Hybrid energy-based models for stable system identification (docs/models.md §11).

:class:`HybridEBM` learns a vector field that is stable by construction: the gradient flow
``dz/dt = -grad H(z)`` or the port-Hamiltonian field ``dz/dt = (J - R) grad H(z) + G u`` of a
hybrid energy ``H``, whose first hidden activation, when bounded, makes every unforced
trajectory enter a certified ball and stay there (:meth:`HybridEBM.certificate`). Energies,
gradients, Hessian-vector products, the fields, their Jacobians and their parameter gradients
all run in C (csrc/nd_hybrid*), and the fields are built-in fields that :func:`neurodyn.odeint`
integrates with every method.

The target systems of §11 (:class:`MultiWell`, :class:`Ring`, :class:`Duffing`) are built-in
fields too, with trajectory generators.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn, training
from .fields import Field
from .ode import ADAPTIVE, METHODS, _raise_failed, odeint
from .training import with_options_doc
from . import optim
from ._typing import Seed
from .training import History

if TYPE_CHECKING:
    from typing import Self

#: Potential / activation pairs, forms and target systems: the kernels' tables.
ACTIVATIONS = _core.TABLES["hybrid_activations"]
FORMS = _core.TABLES["hybrid_forms"]
SYSTEMS = _core.TABLES["hybrid_systems"]
_DEF = _core.DEFAULTS["hybrid_check"]
LOSSES = ("mse", "huber")
GRADIENTS = ("backprop", "adjoint")

#: The field kind of the models' fields and the target systems (csrc/nd_fields.h's table).
_KIND = "hybrid"


def _rows(z, d, dtype=None, name="z"):
    """z as rows (batch, d) (a single state (d,) as one row), real and finite."""
    arr = _checks.real_array(name, z, dtype)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} has shape {np.shape(z)}; expected (batch, {d}) or ({d},)")
    return arr


class HybridField(Field):
    """The vector field of a :class:`HybridEBM` as a built-in field (from :meth:`HybridEBM.field`).
    Its ``jacobian(t, y)`` is ``-Hess H`` or ``(J - R) Hess H``, analytic (the Hessian of H
    through its tangent recursion)."""

    kind = _KIND

    def __init__(self, spec: tuple[Any, ...], form: str, forced: bool) -> None:
        self._spec_tuple, self.form, self.forced = spec, form, forced
        self._check()  # the kernels' rules (inputs and their times included); sets dim

    def _spec(self):
        return self._spec_tuple

    def __repr__(self):
        return f"HybridField(dim={self.dim}, form={self.form!r}, forced={self.forced})"


class HybridEBM(nn.Model):
    """A hybrid energy-based model of a dynamical system (docs/models.md §11).

    The energy of the visible state ``z`` (d,) with hidden layers ``g_2 = W_21 z``,
    ``g_h = W_{h,h-1} psi_{h-1}(g_{h-1})`` is
    ``H(z) = |z|^2/2 - z.b_1 - sum_h [F_h(g_h) + g_h.b_h]`` with the potential ``F_h`` of each
    layer's activation ``psi_h = grad F_h``. The model's dynamics are the gradient flow
    ``dz/dt = -grad H`` (``form="gradient"``) or the port-Hamiltonian field
    ``dz/dt = (J - R) grad H + G u(t)`` with output ``y = G^T grad H``, ``J = A - A^T`` (A strictly
    upper triangular) and ``R = L L^T`` (L lower triangular with a positive, exponentiated,
    diagonal), so that ``dH/dt = -grad H^T R grad H + y.u``.

    Parameters
    ----------
    d : int
        State dimension.
    hidden_sizes : sequence of int
        Widths of the hidden layers (1 to 8).
    activations : sequence of str
        One per hidden layer, from ``ACTIVATIONS``: ``softmax`` (log-sum-exp potential, beta),
        ``tanh`` (log cosh, beta), ``sigmoid`` (softplus, beta), ``polynomial`` (softplus^p / p),
        ``relu_power`` (relu^p / p), ``quadratic``, ``hardtanh`` and ``relu``.
    form : {"gradient", "port_hamiltonian"}
    inputs : int
        Input size m of the port-Hamiltonian form (0 for none).
    guarantee : bool
        Claim the boundedness guarantee: the first activation must then be bounded (softmax,
        tanh, sigmoid or hardtanh); ReLU and the other unbounded ones are refused.
    beta : float
        Inverse temperature of the softmax, tanh and sigmoid potentials.
    power : float
        Exponent p of the polynomial and relu_power potentials (in [2, 16]).
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (glorot-uniform kernels, zero biases, ``L = 0`` so ``R = I``).
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> model = nd.HybridEBM(2, hidden_sizes=(8, 4), seed=0)
    >>> model.energy(np.zeros((1, 2))).shape
    (1,)
    >>> bool(model.certificate()["bounded"])
    True
    """

    def __init__(self, d: int, hidden_sizes: Sequence[int] = (64, 32),
                 activations: str | Sequence[str] = ("tanh", "polynomial"), form: str = _DEF["form"],
                 inputs: int = _DEF["inputs"], guarantee: bool = _DEF["guarantee"], beta: float = _DEF["beta"],
                 power: float = _DEF["power"], seed: Seed = None, dtype: DTypeLike = np.float64) -> None:
        super().__init__(self._validate(d=d, hidden_sizes=hidden_sizes, activations=activations, form=form,
                                        inputs=inputs, guarantee=guarantee, beta=beta, power=power, dtype=dtype),
                         seed)

    @classmethod
    def _validate(cls, *, d, hidden_sizes=(64, 32), activations=("tanh", "polynomial"), form=_DEF["form"],
                  inputs=_DEF["inputs"], guarantee=_DEF["guarantee"], beta=_DEF["beta"], power=_DEF["power"],
                  dtype=np.float64) -> dict:
        if isinstance(hidden_sizes, (str, bytes)) or not hasattr(hidden_sizes, "__len__"):
            raise TypeError(f"hidden_sizes must be a sequence of ints, got {hidden_sizes!r}")
        if isinstance(activations, str):
            activations = (activations,) * len(hidden_sizes)
        elif isinstance(activations, bytes) or not hasattr(activations, "__len__"):
            raise TypeError(f"activations must be a name or a sequence of names, got {activations!r}")
        if not isinstance(guarantee, (bool, np.bool_)):
            raise TypeError(f"guarantee must be a bool, got {guarantee!r}")
        config = {
            "d": _checks.integer("d", d, minimum=1),
            "hidden_sizes": [_checks.integer(f"hidden_sizes[{i}]", w) for i, w in enumerate(hidden_sizes)],
            "activations": list(activations),
            "form": form,
            "inputs": _checks.integer("inputs", inputs),
            "guarantee": bool(guarantee),
            "beta": _checks.real("beta", beta),
            "power": _checks.real("power", power),
            "dtype": nn.model_dtype(dtype).name,
        }
        _core.hybrid_check(config["d"], config["hidden_sizes"], config["activations"], form=form,
                           inputs=config["inputs"], guarantee=config["guarantee"], beta=config["beta"],
                           power=config["power"])  # the kernel's rules, at construction
        return config

    @classmethod
    def _param_specs(cls, config: dict[str, Any]) -> list[nn.Spec]:
        d, m = config["d"], config["inputs"]
        specs: list[nn.Spec] = [("visible.bias", (d,), "zeros")]
        sizes = [d] + list(config["hidden_sizes"])
        for l in range(len(config["hidden_sizes"])):
            specs += nn.dense_specs(f"hidden{l + 1}", sizes[l], sizes[l + 1])
        if config["form"] == "port_hamiltonian":
            specs += [("port.A", (d * (d - 1) // 2,), "zeros"), ("port.L", (d * (d + 1) // 2,), "zeros")]
            if m > 0:
                specs.append(("port.G", (d, m), "glorot"))
        return specs

    # ---- structure ------------------------------------------------------------------------

    @property
    def d(self) -> int:
        return self.config["d"]

    @property
    def port(self) -> bool:
        return self.config["form"] == "port_hamiltonian"

    def _spec(self, u_t=None, u=None, dtype=None, form=None):
        """The field spec of csrc/binding/bind_hybrid.c; parameters cast to ``dtype``."""
        c, p = self.config, self.params
        cast = (lambda a: a) if dtype is None else (lambda a: np.asarray(a, dtype=dtype))
        params = [cast(p["visible.bias"])]
        for l in range(len(c["hidden_sizes"])):
            params += [cast(p[f"hidden{l + 1}.kernel"]), cast(p[f"hidden{l + 1}.bias"])]
        port = self.port and form != "gradient"
        params += [cast(p["port.A"]) if port else None, cast(p["port.L"]) if port else None,
                   cast(p["port.G"]) if port and c["inputs"] > 0 else None, u_t, u]
        names = ("model", form or c["form"], *c["activations"])
        consts = (c["beta"], c["power"], c["guarantee"], c["inputs"] if port else 0)
        return (_KIND, tuple(params), names, consts)

    def _rows(self, z, name="z") -> np.ndarray:
        return _rows(z, self.d, self.dtype, name)

    # ---- the energy --------------------------------------------------------------------------

    def __call__(self, z: ArrayLike) -> np.ndarray:
        """The unforced vector field ``dz/dt`` at z (batch, d) (or (d,)): ``-grad H(z)``, or
        ``(J - R) grad H(z)`` in the port-Hamiltonian form; shape (batch, d)."""
        return _core.field_eval(field=self._spec(), t=0.0, y=self._rows(z))

    def energy(self, z: ArrayLike) -> np.ndarray:
        """H(z) for z of shape (batch, d) (or (d,)); returns (batch,)."""
        return _core.hybrid_energy(self._spec(), self._rows(z), grad=False)[0]

    def energy_grad(self, z: ArrayLike) -> np.ndarray:
        """grad H(z), shape (batch, d)."""
        return _core.hybrid_energy(self._spec(), self._rows(z))[1]

    def hvp(self, z: ArrayLike, v: ArrayLike) -> np.ndarray:
        """Hessian-vector products ``Hess H(z_i) v_i`` row by row, shape (batch, d)."""
        z = self._rows(z)
        return _core.hybrid_hvp(self._spec(), z, self._rows(v, "v"))

    def hessian(self, z: ArrayLike) -> np.ndarray:
        """Hessians of H, shape (batch, d, d)."""
        return _core.hybrid_hessian(self._spec(), self._rows(z))

    def output(self, z: ArrayLike) -> np.ndarray:
        """The port-Hamiltonian output ``y = G^T grad H(z)``, shape (batch, inputs)."""
        if not self.port:
            raise ValueError("output needs form='port_hamiltonian'")
        return _core.hybrid_output(self._spec(), self._rows(z))

    def port_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """``(J, R)`` of the port-Hamiltonian form as (d, d) arrays."""
        if not self.port:
            raise ValueError("port_matrices needs form='port_hamiltonian'")
        d = self.d
        A = np.zeros((d, d))
        A[np.triu_indices(d, 1)] = self.params["port.A"]
        L = np.zeros((d, d))
        L[np.tril_indices(d)] = self.params["port.L"]
        L[np.diag_indices(d)] = np.exp(np.diag(L))
        return A - A.T, L @ L.T

    # ---- the field ---------------------------------------------------------------------------

    def _inputs(self, u, t_u, rows=None):
        """(u_t, u) for the spec: u of shape (len(t_u), inputs) or (len(t_u), rows, inputs)."""
        if u is None:
            if t_u is not None:
                raise ValueError("t_u is given without u")
            return None, None
        if not self.port or self.config["inputs"] == 0:
            raise ValueError("u needs form='port_hamiltonian' with inputs > 0")
        t_u = _checks.times("t_u", t_u)
        u = _checks.real_array("u", u, self.dtype)
        if u.ndim == 2:
            u = u[:, None, :]
        m = self.config["inputs"]
        if u.ndim != 3 or u.shape[0] != t_u.size or u.shape[2] != m or (rows is not None and u.shape[1] not in (1, rows)):
            raise ValueError(f"u has shape {u.shape}; expected (len(t_u), {m}) or (len(t_u), rows, {m})")
        return t_u, np.ascontiguousarray(u)

    def field(self, u: ArrayLike | None = None, t_u: ArrayLike | None = None) -> HybridField:
        """The model's vector field as a built-in field for :func:`neurodyn.odeint`.

        ``u`` (port-Hamiltonian form with inputs): samples of the input at the increasing
        times ``t_u``, shape (len(t_u), inputs) for one signal or (len(t_u), rows, inputs) for
        one per state row; linear in between, constant outside.
        """
        t_u, u = self._inputs(u, t_u)
        return HybridField(self._spec(t_u, u), self.config["form"], u is not None)

    def simulate(self, z0: ArrayLike, t: ArrayLike, *, u: ArrayLike | None = None, t_u: ArrayLike | None = None,
                 method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9, dt: float | None = None,
                 max_steps: int = _core.DEFAULTS["ode_check_options"]["max_steps"]) -> np.ndarray:
        """Trajectories from z0 (batch, d) at the times t: shape (len(t), batch, d)."""
        z0 = self._rows(z0, "z0")
        return odeint(self.field(u, t_u), z0, t, method=method, rtol=rtol, atol=atol, dt=dt, max_steps=max_steps,
                      coupled=u is not None and np.ndim(u) == 3, verbose=False)

    # ---- the guarantee ----------------------------------------------------------------------

    def certificate(self) -> dict[str, Any]:
        """The boundedness certificate of docs/models.md §11, computed in float64.

        Returns a dict: ``bounded`` (the first activation is bounded), ``c1`` and ``c0`` with
        ``H(z) >= |z|^2/2 - c1 |z| - c0``, ``M2`` (the bound of the first activation),
        ``equilibrium_radius`` (every equilibrium ``grad H = 0`` lies in that ball), ``level``
        (H is at most this on that ball) and ``radius``: the sublevel set ``{H <= level}``, which
        every unforced trajectory enters and never leaves (H decreases along the flow and the
        trajectories approach the equilibria), lies in the ball of this radius. The values are
        None when the first activation is unbounded; ``guarantee`` repeats the configuration.
        """
        cert = _core.hybrid_certificate(self._spec(dtype=np.float64))
        cert["guarantee"] = self.config["guarantee"]
        return cert

    def equilibria(self, n_starts: int = 64, *, radius: float | None = None, seed: Seed = None, t_end: float = 50.0,
                   newton_steps: int = 20, tol: float = 1e-9) -> dict[str, Any]:
        """Minima of H found from ``n_starts`` random starts in the ball of ``radius``
        (default: the certificate's equilibrium radius, else 3).

        Each start follows the gradient flow of H to ``t_end`` (dopri5 in C), then Newton steps
        on ``grad H = 0`` with the analytic Hessian. Distinct points are kept.

        Returns
        -------
        dict
            ``points`` (k, d), ``energy`` (k,), ``grad_norm`` (k,), ``count`` (k,) (starts that
            reached each), ``lambda_min`` (k,): the local stability test
            ``lambda_min(I - W_21^T Q W_21)`` of §11 (Q the first activation's derivative at
            ``W_21 z``; the worst case at a ReLU or hard-tanh kink), ``hessian_lambda_min`` (k,)
            (the smallest eigenvalue of the Hessian of H) and ``stable`` (k,) (both positive).
        """
        n_starts = _checks.integer("n_starts", n_starts, minimum=1)
        rng = nn.as_generator(seed)
        if radius is None:
            cert = self.certificate()
            radius = cert["equilibrium_radius"] if cert["bounded"] else 3.0
        radius = _checks.real("radius", radius, minimum=0.0, strict=True)
        d = self.d
        x = rng.normal(size=(n_starts, d))
        x *= (radius * rng.random((n_starts, 1)) ** (1.0 / d)) / np.linalg.norm(x, axis=1, keepdims=True)
        spec = self._spec(dtype=np.float64, form="gradient")
        flow = HybridField(spec, "gradient", False)
        z = odeint(flow, x, [0.0, t_end], method="dopri5", rtol=1e-8, atol=1e-10, verbose=False)[-1]
        for _ in range(newton_steps):
            g = _core.hybrid_energy(spec, z)[1]
            if np.max(np.abs(g)) < tol:
                break
            hess = _core.hybrid_hessian(spec, z)
            try:
                step = np.linalg.solve(hess, g[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
            # Newton only where the Hessian is positive definite (a minimum nearby)
            ok = np.all(np.linalg.eigvalsh(hess) > 0, axis=1)
            z = np.where(ok[:, None], z - step, z)
        H, g = _core.hybrid_energy(spec, z)
        gn = np.linalg.norm(g, axis=1)
        keep: Any = []  # indices into z: a list, then an index array
        count: list[int] = []
        for i in np.argsort(H):
            for j, k in enumerate(keep):
                if np.linalg.norm(z[i] - z[k]) <= 1e-5 * (1 + np.linalg.norm(z[k])):
                    count[j] += 1
                    break
            else:
                keep.append(i)
                count.append(1)
        keep = np.array(keep, dtype=np.int64)
        pts = z[keep]
        lam1, lamh = _core.hybrid_stability(spec, pts)
        return {"points": pts, "energy": H[keep], "grad_norm": gn[keep], "count": np.array(count),
                "lambda_min": lam1, "hessian_lambda_min": lamh, "stable": (lam1 > 0) & (lamh > 0)}

    # ---- training ---------------------------------------------------------------------------

    def _unflatten(self, dp) -> dict:
        grads, k = {}, 0
        for name, shape, _ in self._param_specs(self.config):
            n = int(np.prod(shape))
            grads[name] = dp[k:k + n].reshape(shape)
            k += n
        return grads

    def _loss(self, kind, delta, pred, target) -> tuple[float, np.ndarray]:
        delta = _checks.real("delta", delta, minimum=0.0, strict=True)
        if kind == "mse":
            return nn.mse_loss(pred, target)
        r = pred - target
        a = np.abs(r)
        value = float(np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))))
        return value, (np.clip(r, -delta, delta) / r.size).astype(pred.dtype)

    def _rollout(self, z0, times, u, method, dt, rtol, atol,
                 record) -> tuple[tuple[Any, ...], np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]:
        """odeint of the model's field from z0 over ``times``; returns (spec, times, ys, raw
        info, the solver options). Inputs per row (one signal per window) make the batch one
        coupled system: per-sample adaptive solves share one input signal. ``record`` 4 records
        the backprop tape; "tape" also keeps the stages where the solve can keep them (a coupled
        solve: the backward pass then reads each stage's primal sweeps instead of evaluating it
        again), in the memory of the last call's kept stages."""
        _checks.choice("method", method, METHODS)
        z0 = self._rows(z0, "z0")
        times = _checks.times("times", times)
        t_u, uu = self._inputs(u, times if u is not None else None, rows=z0.shape[0])
        spec = self._spec(t_u, uu)
        step = 0.0 if dt is None else _checks.real("dt", dt, minimum=0.0, strict=True)
        budget = int(np.ceil((times[-1] - times[0]) / step)) + times.size + 10_000 if step else 100_000
        opts = dict(method=method, rtol=rtol, atol=atol, dt=step, max_steps=budget, coupled=uu is not None)
        kept = None
        if record == "tape":
            # the stages too where the solve can keep them; their memory taken from the model
            # for the call (a concurrent call makes its own)
            record = 20
            kept = self.__dict__.pop("_kept_stages", None)
        ys, y_last, raw = _core.odeint(spec, z0, times, record=record, kept=kept, **opts)
        if kept is not None and "kept" not in raw:  # a solve that keeps none: the memory stays the model's
            self._kept_stages = kept
        _raise_failed(raw, None, times, ys, y_last, method, budget)
        return spec, times, ys, raw, opts

    def _window_target(self, target, n_times, batch) -> np.ndarray:
        target = _checks.real_array("target", target, self.dtype)
        if target.shape != (n_times, batch, self.d):
            raise ValueError(f"target has shape {target.shape}; expected {(n_times, batch, self.d)}")
        return target

    def window_loss(self, z0: ArrayLike, target: ArrayLike, times: ArrayLike, *, u: ArrayLike | None = None,
                    loss: str = "mse", delta: float = 1.0, method: str = "rk4", dt: float | None = None,
                    rtol: float = 1e-6, atol: float = 1e-8) -> float:
        """The loss of :meth:`window_loss_and_grad` alone (forward only)."""
        _checks.choice("loss", loss, LOSSES)
        _, times, ys, _, _ = self._rollout(z0, times, u, method, dt, rtol, atol, 0)
        target = self._window_target(target, times.size, ys.shape[1])
        return self._loss(loss, delta, ys[1:], target[1:])[0]

    def window_loss_and_grad(self, z0: ArrayLike, target: ArrayLike, times: ArrayLike, *, u: ArrayLike | None = None,
                             loss: str = "mse", delta: float = 1.0, method: str = "rk4", dt: float | None = None,
                             gradient: str = "backprop", rtol: float = 1e-6,
                             atol: float = 1e-8) -> tuple[float, dict[str, np.ndarray]]:
        """Loss of the rollouts from z0 (batch, d) against target (len(times), batch, d) at
        every time after the first, and the gradient of every parameter (through the solver:
        ``backprop`` or the continuous ``adjoint``). ``u`` (len(times), batch, inputs) is the
        port-Hamiltonian input sampled at ``times``."""
        _checks.choice("loss", loss, LOSSES)
        _checks.choice("gradient", gradient, GRADIENTS)
        spec, times, ys, raw, opts = self._rollout(z0, times, u, method, dt, rtol, atol,
                                                   "tape" if gradient == "backprop" else 0)
        target = self._window_target(target, times.size, ys.shape[1])
        value, dpred = self._loss(loss, delta, ys[1:], target[1:])
        ybar = np.zeros_like(ys)
        ybar[1:] = dpred
        if gradient == "backprop":
            outs, states = raw["tape"]
            _, dp = _core.ode_backprop(field=spec, t=times, ybar=ybar, steps=raw["steps"], outs=outs, states=states,
                                       method=method, coupled=opts["coupled"], kept=raw.get("kept"))
            if "kept" in raw:
                self._kept_stages = raw["kept"]
        else:
            opts["max_steps"] *= 4
            _, dp, back = _core.ode_adjoint(field=spec, t=times, ybar=ybar, y_end=ys[-1], **opts)
            _raise_failed(back, None, times[::-1], ys[::-1], ys[0], f"the adjoint solve ({method})",
                          opts["max_steps"])
        return value, self._unflatten(dp)

    def _check_trajectories(self, trajectories, t, u, name="trajectories"):
        """(X (n, T, d), times (T,), U (n, T, inputs) or None), checked."""
        X = _checks.real_array(name, trajectories, self.dtype)
        if X.ndim != 3 or X.shape[2] != self.d:
            raise ValueError(f"{name} has shape {X.shape}; expected (n, T, {self.d})")
        times = _checks.times("t", t)
        n, T, _ = X.shape
        if times.size != T:
            raise ValueError(f"t has {times.size} times but {name} has {T} samples per trajectory (axis 1)")
        if T >= 2 and (np.any(np.diff(times) <= 0) or not np.allclose(np.diff(times), times[1] - times[0],
                                                                        rtol=1e-9, atol=0)):
            raise ValueError("t must be increasing and evenly spaced")
        forced = self.port and self.config["inputs"] > 0
        if u is not None and not forced:
            raise ValueError("u needs form='port_hamiltonian' with inputs > 0")
        U = None
        if forced:
            if u is None:
                raise ValueError(f"u (n, T, {self.config['inputs']}) is needed: the model has inputs")
            U = _checks.real_array("u", u, self.dtype)
            if U.shape != (n, T, self.config["inputs"]):
                raise ValueError(f"u has shape {U.shape}; expected {(n, T, self.config['inputs'])}")
        return X, times, U

    @staticmethod
    def _window_starts(n, T, window):
        """Every (trajectory, first sample) of a window, trajectory by trajectory."""
        traj, start = np.divmod(np.arange(n * (T - window + 1), dtype=np.int64), T - window + 1)
        return traj, start

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, trajectories: ArrayLike, t: ArrayLike, *, return_history: Literal[True],
            **options: Any) -> History: ...

    @overload
    def fit(self, trajectories: ArrayLike, t: ArrayLike, **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, trajectories: ArrayLike, t: ArrayLike, *, u: ArrayLike | None = None, window: int = 10,
            loss: str = "mse", delta: float = 1.0, method: str = "rk4", substeps: int = 1, gradient: str = "backprop",
            epochs: int = 50, batch_size: int = 64, lr: float = 1e-2, optimizer: str | optim.Optimizer = "adam",
            seed: Seed = None, verbose: bool = True, **options: Any) -> Self | History:
        """Fit the field to observed trajectories by rolling out over windows.

        Every window of ``window`` consecutive samples of every trajectory is a training
        example: the model starts at the window's first state (the encoder is the identity: the
        observations are the state) and its rollout is compared with the window's states.
        Stability never depends on the loss: the certificate holds for any parameters. The
        samples of ``epochs`` and ``batch_size`` are the windows; validation data are
        ``(trajectories, t)`` or ``(trajectories, t, u)``, and a validation split holds out the
        last windows (those of the last trajectories).

        Parameters
        ----------
        trajectories : array (n, T, d)
            Observed states at the times ``t``; finite.
        t : array (T,)
            Increasing, evenly spaced sample times.
        u : array (n, T, inputs), optional
            The inputs of a port-Hamiltonian model with inputs, sampled at ``t``.
        window : int
            Samples per window (>= 2).
        loss : {"mse", "huber"}
            ``huber`` with threshold ``delta``.
        method : str
            An :func:`neurodyn.odeint` method; fixed-step methods take ``substeps`` steps per
            sample interval.
        gradient : {"backprop", "adjoint"}
            Backpropagation through the solver's steps (exact for the computed rollout), or the
            continuous adjoint (memory independent of the number of steps).
        """
        training.split_options("HybridEBM.fit", options)
        X, times, U = self._check_trajectories(trajectories, t, u)
        n, T, _ = X.shape
        window = _checks.integer("window", window, minimum=2)
        if window > T:
            raise ValueError(f"window={window} is longer than the trajectories ({T} samples)")
        substeps = _checks.integer("substeps", substeps, minimum=1)
        _checks.choice("loss", loss, LOSSES)
        _checks.choice("gradient", gradient, GRADIENTS)
        _checks.choice("method", method, METHODS)
        delta = _checks.real("delta", delta, minimum=0.0, strict=True)
        rel = times[:window] - times[0]
        dt = None if method in ADAPTIVE else (rel[1] - rel[0]) / substeps
        offs = np.arange(window)

        def windows(traj, start, X, U):
            """(first states (b, d), targets (window, b, d), inputs (window, b, m) or None)."""
            take = (traj[:, None], start[:, None] + offs)
            target = np.ascontiguousarray(np.transpose(X[take], (1, 0, 2)))
            uw = None if U is None else np.ascontiguousarray(np.transpose(U[take], (1, 0, 2)))
            return target[0], target, uw

        def batch_loss(arrays, rng):
            z0, target, uw = windows(*arrays)
            return self.window_loss_and_grad(z0, target, rel, u=uw, loss=loss, delta=delta, method=method, dt=dt,
                                             gradient=gradient)

        def eval_loss(arrays):
            z0, target, uw = windows(*arrays)
            return self.window_loss(z0, target, rel, u=uw, loss=loss, delta=delta, method=method, dt=dt)

        def data(X, U):
            traj, start = self._window_starts(X.shape[0], X.shape[1], window)
            return [(traj, 0), (start, 0), (X, None), (U, None)]

        def prepare(*validation):
            if not 2 <= len(validation) <= 3:
                raise ValueError(f"validation_data must be (trajectories, t) or (trajectories, t, u), "
                                 f"got {len(validation)} arrays")
            Xv, tv, Uv = self._check_trajectories(validation[0], validation[1],
                                                  validation[2] if len(validation) == 3 else None,
                                                  "validation trajectories")
            if Xv.shape[1] < window or not np.allclose(np.diff(tv[:window]), rel[1] - rel[0], rtol=1e-9, atol=0):
                raise ValueError("validation trajectories need at least `window` samples with the spacing of t")
            return data(Xv, Uv)

        return training.fit_model(self, data(X, U), batch_loss, eval_loss=eval_loss, prepare=prepare, epochs=epochs,
                                  batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, verbose=verbose,
                                  **options)


# ---- target systems ----------------------------------------------------------------------------

class TargetSystem(Field):
    """Base of the target systems of §11: built-in fields (with analytic ``jacobian(t, y)``)
    and a trajectory generator."""

    kind = _KIND
    system: str  # the target system's name in the kernels' table (SYSTEMS)

    def _consts(self):
        return (self.dim, getattr(self, "width", 1.0), getattr(self, "gamma", 0.0), getattr(self, "omega", 0.0),
                getattr(self, "radius", 1.0), getattr(self, "rotation", 0.0), getattr(self, "alpha", 0.0),
                getattr(self, "cubic", 0.0), getattr(self, "delta", 0.0))

    def _params(self):
        return (None, None)

    def _spec(self):
        return (_KIND, self._params(), ("system", self.system), self._consts())

    def _points(self, z) -> np.ndarray:
        """z (..., dim) as float64, real and finite (for :meth:`potential`)."""
        arr = _checks.real_array("z", z, np.float64)
        if arr.ndim < 1 or arr.shape[-1] != self.dim:
            raise ValueError(f"z has shape {arr.shape}; expected (..., {self.dim})")
        return arr

    def initial_states(self, n: int, *, scale: float = 2.0, seed: Seed = None,
                       dtype: DTypeLike = np.float64) -> np.ndarray:
        """n states uniform in the box [-scale, scale]^d, shape (n, d)."""
        n = _checks.integer("n", n, minimum=0)
        scale = _checks.real("scale", scale, minimum=0.0, strict=True)
        rng = nn.as_generator(seed)
        return rng.uniform(-scale, scale, size=(n, self.dim)).astype(nn.model_dtype(dtype))

    def trajectories(self, n: int, t: ArrayLike, *, scale: float = 2.0, seed: Seed = None,
                     dtype: DTypeLike = np.float64, rtol: float = 1e-10, atol: float = 1e-12) -> np.ndarray:
        """n trajectories from random starts (:meth:`initial_states`) sampled at the times t,
        integrated in C with dop853: shape (n, len(t), d)."""
        z0 = self.initial_states(_checks.integer("n", n, minimum=1), scale=scale, seed=seed, dtype=np.float64)
        ys = odeint(self, z0, t, method="dop853", rtol=rtol, atol=atol, verbose=False)
        return np.ascontiguousarray(np.transpose(ys, (1, 0, 2))).astype(nn.model_dtype(dtype))


class MultiWell(TargetSystem):
    """A metric-deformed multi-well system ``dz/dt = -M(z) grad V(z)``:
    ``V(z) = |z|^2/2 - sum_k depth_k exp(-|z - c_k|^2 / (2 width^2))`` and the position-dependent
    metric ``M(z) = I + gamma s s^T``, ``s = sin(omega z)`` (positive definite).

    Parameters
    ----------
    centres : array_like, shape (wells, d)
        Centres of the Gaussian wells.
    depths : array_like, shape (wells,)
    width : float
        Width of every well (> 0).
    gamma : float
        Strength of the metric's deformation (>= 0).
    omega : float
        Spatial frequency of the deformation.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.hybrid.MultiWell()(0.0, np.zeros(2)).shape
    (2,)
    """

    system = "multiwell"

    def __init__(self, centres: ArrayLike = ((1.5, 0.0), (-1.0, 1.2), (-0.8, -1.3)),
                 depths: ArrayLike = (2.0, 1.8, 1.6), width: float = 0.6, gamma: float = 0.8,
                 omega: float = 1.2) -> None:
        self.centres = np.array(_checks.real_array("centres", centres, np.float64), copy=True)
        self.depths = np.array(_checks.real_array("depths", depths, np.float64), copy=True)
        if self.centres.ndim != 2 or self.depths.shape != (self.centres.shape[0],):
            raise ValueError(f"centres (wells, d) and depths (wells,) must agree, got shapes {self.centres.shape} "
                             f"and {self.depths.shape}")
        self.centres.setflags(write=False)
        self.depths.setflags(write=False)
        self.dim = self.centres.shape[1]
        self.width, self.gamma, self.omega = (_checks.real(k, v) for k, v in
                                              (("width", width), ("gamma", gamma), ("omega", omega)))
        self._check()

    def _params(self):
        return (self.centres, self.depths)

    def potential(self, z: ArrayLike) -> np.ndarray:
        """V(z) over the last axis of z (..., d) (for plots)."""
        z = self._points(z)
        r2 = np.sum((z[..., None, :] - self.centres) ** 2, axis=-1)
        return 0.5 * np.sum(z * z, axis=-1) - np.exp(-r2 / (2 * self.width ** 2)) @ self.depths

    def __repr__(self):
        return f"MultiWell(dim={self.dim}, wells={len(self.depths)}, width={self.width}, gamma={self.gamma})"


class Ring(TargetSystem):
    """The ring system ``dz/dt = -grad V + rotation (-z_1, z_0, 0, ...)`` with
    ``V = (|z|^2 - radius^2)^2 / 4``: a limit cycle on the circle of that radius.

    Parameters
    ----------
    dim : int
        State dimension (2 to 64); the rotation acts on the first two coordinates.
    radius : float
        Radius of the limit cycle (> 0).
    rotation : float
        Angular speed on the cycle.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.hybrid.Ring()(0.0, np.array([1.0, 0.0])) + 0.0  # on the cycle: a pure rotation
    array([0., 1.])
    """

    system = "ring"

    def __init__(self, dim: int = 2, radius: float = 1.0, rotation: float = 1.0) -> None:
        self.dim = _checks.integer("dim", dim, minimum=2)
        self.radius, self.rotation = _checks.real("radius", radius), _checks.real("rotation", rotation)
        self._check()

    def potential(self, z: ArrayLike) -> np.ndarray:
        """V(z) over the last axis of z (..., dim)."""
        z = self._points(z)
        return 0.25 * (np.sum(z * z, axis=-1) - self.radius ** 2) ** 2

    def __repr__(self):
        return f"Ring(dim={self.dim}, radius={self.radius}, rotation={self.rotation})"


class Duffing(TargetSystem):
    """The damped Duffing oscillator on (q, p): ``dq = p``, ``dp = -delta p - alpha q - cubic q^3``;
    with ``alpha < 0`` a double well ``V(q) = alpha q^2/2 + cubic q^4/4``.

    Parameters
    ----------
    alpha : float
        Linear stiffness (negative: two wells at ``q = +-sqrt(-alpha / cubic)``).
    cubic : float
        Cubic stiffness (>= 0).
    delta : float
        Damping (>= 0).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.hybrid.Duffing()(0.0, np.array([1.0, 0.0])).tolist()
    [0.0, 0.0]
    """

    system = "duffing"
    dim = 2

    def __init__(self, alpha: float = -1.0, cubic: float = 1.0, delta: float = 0.3) -> None:
        self.alpha, self.cubic, self.delta = (_checks.real(k, v) for k, v in
                                              (("alpha", alpha), ("cubic", cubic), ("delta", delta)))
        self._check()

    def potential(self, z: ArrayLike) -> np.ndarray:
        """The energy p^2/2 + V(q) over the last axis of z (..., 2)."""
        z = self._points(z)
        q, p = z[..., 0], z[..., 1]
        return 0.5 * p * p + 0.5 * self.alpha * q * q + 0.25 * self.cubic * q ** 4

    def __repr__(self):
        return f"Duffing(alpha={self.alpha}, cubic={self.cubic}, delta={self.delta})"
