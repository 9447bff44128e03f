"""Energy-based models: Langevin sampling in C and contrastive-divergence training."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn, optim, training
from .encode import seed_key
from .energies import Energy
from ._typing import Seed
from .training import History, kernel_progress, with_options_doc

if TYPE_CHECKING:
    from typing import Self

#: What the sampler takes as an energy: an EBM, a built-in energy, or ``f(x) -> (E, dE/dx)``.
EnergyLike = Union["EBM", Energy, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]


def contrastive_divergence_loss(e_real: ArrayLike, e_neg: ArrayLike, reg_alpha: float = 0.01) -> float:
    """``mean(E_real) - mean(E_neg) + reg_alpha (mean(E_real^2) + mean(E_neg^2))``.

    Parameters
    ----------
    e_real, e_neg : array_like, shape (B,)
        Energies of data and of negative samples.
    reg_alpha : float, default 0.01
        Weight of the energy-magnitude penalty.

    Returns
    -------
    float
        The loss; lower energies on the data than on the negatives make it negative.

    Examples
    --------
    >>> import neurodyn as nd
    >>> round(nd.contrastive_divergence_loss([1.0, 2.0], [3.0, 4.0]), 10)
    -1.85
    """
    a = _checks.real_array("e_real", e_real, np.float64)
    b = _checks.real_array("e_neg", e_neg, np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("the energies must not be empty")
    alpha = _checks.real("reg_alpha", reg_alpha, minimum=0.0)
    return float(a.mean() - b.mean() + alpha * (np.mean(a * a) + np.mean(b * b)))


def _energy_target(energy):
    """(what the C sampler takes, the state dimension or None)."""
    if isinstance(energy, EBM):
        return energy._spec(), energy.config["input_size"]
    if isinstance(energy, Energy):
        return energy._spec(), energy.dim
    if callable(energy):
        return energy, None  # NaN or inf it returns stops the chains there (bind_ebm.c)
    raise TypeError(f"energy must be an EBM, a neurodyn.energies energy or a callable (x) -> (E, grad); "
                    f"got {type(energy).__name__}")


_LANGEVIN = _core.DEFAULTS["langevin"]


# langevin_sample and EBM.sample return the samples, and with return_info=True a pair (samples, info)
@overload
def langevin_sample(energy: EnergyLike, x0: ArrayLike | int, *, steps: int = ..., step_size: float = ...,
                    noise_scale: float = ..., clamp: tuple[float, float] | None = ..., grad_clip: float | None = ...,
                    mala: bool = ..., seed: Seed = ..., return_info: Literal[False] = ...,
                    dtype: DTypeLike | None = ..., verbose: bool = ...) -> np.ndarray: ...


@overload
def langevin_sample(energy: EnergyLike, x0: ArrayLike | int, *, steps: int = ..., step_size: float = ...,
                    noise_scale: float = ..., clamp: tuple[float, float] | None = ..., grad_clip: float | None = ...,
                    mala: bool = ..., seed: Seed = ..., return_info: Literal[True],
                    dtype: DTypeLike | None = ..., verbose: bool = ...) -> tuple[np.ndarray, dict[str, Any]]: ...


@overload
def langevin_sample(energy: EnergyLike, x0: ArrayLike | int, *, steps: int = ..., step_size: float = ...,
                    noise_scale: float = ..., clamp: tuple[float, float] | None = ..., grad_clip: float | None = ...,
                    mala: bool = ..., seed: Seed = ..., return_info: bool,
                    dtype: DTypeLike | None = ...,
                    verbose: bool = ...) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]: ...


def langevin_sample(energy: EnergyLike, x0: ArrayLike | int, *, steps: int = _LANGEVIN["steps"],
                    step_size: float = _LANGEVIN["step_size"], noise_scale: float = _LANGEVIN["noise_scale"],
                    clamp: tuple[float, float] | None = None, grad_clip: float | None = None, mala: bool = False,
                    seed: Seed = None, return_info: bool = False, dtype: DTypeLike | None = None,
                    verbose: bool = True) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Sample with Langevin dynamics, every step in C.

    ``x <- x - (step_size / 2) dE/dx + sqrt(step_size) noise_scale eps``, eps ~ N(0, I), then
    clamped to ``clamp`` when given. The chains target exp(-E / noise_scale^2) (Edifice's
    defaults, step 10 and noise 0.005, are a cold, fast descent). With ``mala=True`` each move is
    accepted with the Metropolis-Hastings ratio, so that distribution is sampled exactly
    (proposals outside ``clamp`` are rejected rather than clamped).

    Parameters
    ----------
    energy : EBM, nd.energies energy, or callable
        A callable gets x (chains, d) and returns (E (chains,), dE/dx (chains, d)).
    x0 : array_like (chains, d) or int
        Starting states, or a number of chains started from U[-1, 1) (needs an energy that
        knows its dimension).
    steps, step_size, noise_scale : as above (steps >= 0, step_size > 0, noise_scale >= 0).
    clamp : (min, max), optional
    grad_clip : float, optional
        Clip every gradient entry to [-grad_clip, grad_clip].
    mala : bool, default False
        Accept or reject each move by the Metropolis-Hastings ratio (MALA).
    seed : int or numpy.random.Generator
        The same seed gives the same chains whatever the thread count.
    return_info : bool
        Also return a dict: ``acceptance`` (per chain, MALA) and ``acceptance_rate``.
    dtype : numpy dtype, optional
        Compute in this dtype (default: x0's, or the EBM's own).
    verbose : bool
        Show a progress bar (with tqdm installed) once sampling has run for a second;
        ``False`` never does. Ctrl-C stops the chains either way.

    Returns
    -------
    ndarray (chains, d), and the info dict with ``return_info``.
    """
    return _langevin(energy, x0, steps=steps, step_size=step_size, noise_scale=noise_scale, clamp=clamp,
                     grad_clip=grad_clip, mala=mala, seed=seed, return_info=return_info, dtype=dtype,
                     verbose=verbose)


def _langevin(energy, x0, *, steps, step_size, noise_scale, clamp, grad_clip, mala, seed, return_info, dtype,
              chain0=_LANGEVIN["chain0"], chains=_LANGEVIN["chains"], key=None, verbose=False):
    """:func:`langevin_sample` on chains ``[chain0, chain0 + len(x0))`` of a run of ``chains``
    (0: just these): each chain draws the noise of its index in the run, so a run sampled in
    parts, each with the same key (``seed_key(seed)``, given in place of the seed), gives the
    bits of the run sampled at once."""
    target, dim = _energy_target(energy)
    # steps, step_size, noise_scale, clamp and grad_clip are checked by the sampler (nd_langevin_check)
    if key is None:
        key = seed_key(seed)
    if isinstance(x0, (int, np.integer)) and not isinstance(x0, bool):
        n = _checks.integer("x0", x0, minimum=1)
        if dim is None:
            raise ValueError("x0 as a number of chains needs an energy that knows its dimension")
        dt = np.dtype(dtype or (energy.dtype if isinstance(energy, EBM) else np.float64))
        x0 = np.random.default_rng(key ^ 0x5DEECE66D).uniform(-1.0, 1.0, size=(n, dim)).astype(dt)
    else:
        _checks.float_dtype("x0", x0)  # complex, object and strings are refused, not cast
        x0 = np.asarray(x0)
        if x0.ndim != 2:
            raise ValueError(f"x0 must have shape (chains, dim), got {x0.shape}")
        if dim is not None and x0.shape[1] != dim:
            raise ValueError(f"x0 has dimension {x0.shape[1]}, the energy {dim}")
        if dtype is not None:
            x0 = x0.astype(dtype)
        elif isinstance(energy, EBM):
            x0 = x0.astype(energy.dtype, copy=False)  # a model computes in its own dtype
    with kernel_progress("langevin", verbose) as bar:
        x, acc = _core.langevin(target, x0, steps=steps, step_size=step_size, noise_scale=noise_scale, clamp=clamp,
                                grad_clip=grad_clip, mala=bool(mala), seed=key, chain0=chain0, chains=chains,
                                progress=bar)
    if not return_info:
        return x
    info = {"steps": steps}
    if acc is not None:
        info["acceptance"] = acc / max(steps, 1)
        info["acceptance_rate"] = float(acc.sum() / max(steps * len(acc), 1))
    return x, info


class EBM(nn.Model):
    """Edifice's energy-based model: per hidden layer Dense (``energy_dense_{i}``, i from 0) and
    an activation, then ``energy_output`` Dense(1). The energy of x (batch, input_size) is
    (batch,); lower means more likely.

    Parameters
    ----------
    input_size : int
        Dimension of x.
    hidden_sizes : sequence of int, default (256, 128)
    activation : str, default "silu"
        Hidden activation (``tanh``, ``silu``, ``relu``, ``sigmoid``, ``softplus``, ...).
    dropout : float in [0, 1), default 0.0
    seed : int or None
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> ebm = nd.EBM(2, hidden_sizes=(16, 16), seed=0)
    >>> ebm.energy(np.zeros((3, 2))).shape, ebm.energy_grad(np.zeros((3, 2))).shape
    ((3,), (3, 2))
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int] = (256, 128), activation: str = "silu",
                 dropout: float = 0.0, seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_size=input_size, hidden_sizes=hidden_sizes, activation=activation,
                                        dropout=dropout, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, hidden_sizes=(256, 128), activation="silu", dropout=0.0, dtype=np.float32):
        sizes = [_checks.integer(f"hidden_sizes[{i}]", h, minimum=1) for i, h in enumerate(hidden_sizes)]
        _checks.choice("activation", activation, nn.ACTIVATIONS)
        dropout = _checks.real("dropout", dropout, minimum=0.0)
        if dropout != 0.0:
            raise ValueError("dropout must be 0: a random energy would make Langevin sampling meaningless "
                             "(Edifice's default is 0 too)")
        return {"input_size": _checks.integer("input_size", input_size, minimum=1), "hidden_sizes": sizes,
                "activation": activation, "dropout": dropout, "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        specs, width = [], config["input_size"]
        for i, h in enumerate(config["hidden_sizes"]):
            specs += nn.dense_specs(f"energy_dense_{i}", width, h)
            width = h
        return specs + nn.dense_specs("energy_output", width, 1)

    def _spec(self):
        p = self.params
        params = []
        for i in range(len(self.config["hidden_sizes"])):
            params += [p[f"energy_dense_{i}.kernel"], p[f"energy_dense_{i}.bias"]]
        params += [p["energy_output.kernel"], p["energy_output.bias"]]
        return ("mlp", tuple(params), self.config["activation"], (0.0, 0.0))

    def energy(self, x: ArrayLike) -> np.ndarray:
        """The energy of each sample (lower = more likely).

        Parameters
        ----------
        x : array_like, shape (batch, input_size)

        Returns
        -------
        ndarray, shape (batch,)
        """
        return _core.energy_eval(self._spec(), self._check_batch(x, self.config["input_size"]))[0]

    def energy_grad(self, x: ArrayLike) -> np.ndarray:
        """The gradient of the energy with respect to the input, computed in C.

        Parameters
        ----------
        x : array_like, shape (batch, input_size)

        Returns
        -------
        ndarray, shape (batch, input_size)
        """
        return _core.energy_eval(self._spec(), self._check_batch(x, self.config["input_size"]))[1]

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self.energy(x)

    def _forward_cached(self, x):
        """E(x) (batch,) and the layer inputs and pre-activations the backward pass needs."""
        p, act = self.params, self.config["activation"]
        hs, zs, h = [x], [], x
        for i in range(len(self.config["hidden_sizes"])):
            z = nn.dense(p, f"energy_dense_{i}", h)
            h = nn.activation(act, z)
            zs.append(z)
            hs.append(h)
        return nn.dense(p, "energy_output", h)[:, 0], hs, zs

    def _param_grad(self, hs, zs, dE):
        """The parameter gradient of sum(dE * E) from a cached forward pass (no dE/dx)."""
        p, act, grads = self.params, self.config["activation"], {}
        g = nn.dense_grad(p, "energy_output", hs[-1], np.ascontiguousarray(dE[:, None], dtype=self.dtype), grads)
        for i in reversed(range(len(zs))):
            g = nn.activation_grad(act, zs[i], hs[i + 1], g)
            g = nn.dense_grad(p, f"energy_dense_{i}", hs[i], g, grads, need_dx=i > 0)
        return grads

    def cd_loss_and_grad(self, x_real: ArrayLike, x_neg: ArrayLike,
                         reg_alpha: float = 0.01) -> tuple[float, dict[str, np.ndarray]]:
        """The contrastive-divergence loss of real and negative samples and its parameter
        gradient (the negatives are constants)."""
        x_real = self._check_batch(x_real, self.config["input_size"], "x_real")
        x_neg = self._check_batch(x_neg, self.config["input_size"], "x_neg")
        nr, nn_ = len(x_real), len(x_neg)
        # one forward and one backward pass over both batches stacked: half the calls, and the
        # forward's activations serve the backward pass
        E, hs, zs = self._forward_cached(np.concatenate([x_real, x_neg]))
        e_real, e_neg = E[:nr], E[nr:]
        loss = contrastive_divergence_loss(e_real, e_neg, reg_alpha)
        dE = np.concatenate([(1.0 + 2 * reg_alpha * e_real) / nr, (-1.0 + 2 * reg_alpha * e_neg) / nn_])
        return loss, self._param_grad(hs, zs, dE)

    @overload
    def sample(self, n: int, *, steps: int = ..., step_size: float = ..., noise_scale: float = ...,
               clamp: tuple[float, float] | None = ..., grad_clip: float | None = ..., mala: bool = ...,
               seed: Seed = ..., x0: ArrayLike | None = ..., return_info: Literal[False] = ...,
               verbose: bool = ...) -> np.ndarray: ...

    @overload
    def sample(self, n: int, *, steps: int = ..., step_size: float = ..., noise_scale: float = ...,
               clamp: tuple[float, float] | None = ..., grad_clip: float | None = ..., mala: bool = ...,
               seed: Seed = ..., x0: ArrayLike | None = ..., return_info: Literal[True],
               verbose: bool = ...) -> tuple[np.ndarray, dict[str, Any]]: ...

    @overload
    def sample(self, n: int, *, steps: int = ..., step_size: float = ..., noise_scale: float = ...,
               clamp: tuple[float, float] | None = ..., grad_clip: float | None = ..., mala: bool = ...,
               seed: Seed = ..., x0: ArrayLike | None = ..., return_info: bool,
               verbose: bool = ...) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]: ...

    def sample(self, n: int, *, steps: int = _LANGEVIN["steps"], step_size: float = _LANGEVIN["step_size"],
               noise_scale: float = _LANGEVIN["noise_scale"], clamp: tuple[float, float] | None = None,
               grad_clip: float | None = None, mala: bool = False, seed: Seed = None, x0: ArrayLike | None = None,
               return_info: bool = False, verbose: bool = True) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
        """Draw samples from the model by Langevin dynamics, every step in C.

        Parameters
        ----------
        n : int
            Number of chains, started from U[-1, 1) unless ``x0`` is given.
        steps, step_size, noise_scale, clamp, grad_clip, mala, seed, return_info, verbose
            As for :func:`langevin_sample` (``verbose``: a progress bar once sampling has run
            for a second).
        x0 : array_like, shape (n, input_size), optional
            Starting states instead of uniform noise.

        Returns
        -------
        ndarray, shape (n, input_size)
            The final states of the chains, and the info dict of :func:`langevin_sample` with
            ``return_info``.
        """
        start = n if x0 is None else x0
        return langevin_sample(self, start, steps=steps, step_size=step_size, noise_scale=noise_scale, clamp=clamp,
                               grad_clip=grad_clip, mala=mala, seed=seed, return_info=return_info, verbose=verbose)

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, x: ArrayLike, y: object = ..., *, return_history: Literal[True], **options: Any) -> History: ...

    @overload
    def fit(self, x: ArrayLike, y: object = ..., **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, x: ArrayLike, y: object = None, *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 64,
            reg_alpha: float = 0.01, langevin: dict[str, Any] | None = None, replay_buffer: int = 10_000,
            reinit_prob: float = 0.05, optimizer: str | optim.Optimizer = "adam", seed: Seed = None,
            verbose: bool = True, **options: Any) -> Self | History:
        """Contrastive divergence with a replay buffer of past negatives (Du & Mordatch, 2019).

        Each minibatch draws its negative chains from the buffer, restarting ``reinit_prob`` of
        them from U[-1, 1); runs Langevin on them (``langevin``: keyword arguments of
        :func:`langevin_sample`; by default Edifice's steps 60, step_size 10, noise 0.005, and no
        clamp); takes an optimiser step on the CD loss; and puts the chains back (with the
        step, so that an interrupted fit leaves buffer and parameters of the same step). The
        validation options do not apply: contrastive divergence has no held-out loss.

        Parameters
        ----------
        x : array_like, shape (n, input_size)
            Data samples.
        y : None
            Ignored (the scikit-learn convention for unsupervised models).
        reg_alpha : float
            Weight of the energy-magnitude penalty of :func:`contrastive_divergence_loss`.
        langevin : dict, optional
            Keyword arguments of :func:`langevin_sample` for the negatives.
        replay_buffer : int
            Chains kept between minibatches (in a checkpoint too, so a resumed fit is exact).
        reinit_prob : float in [0, 1]
            Share of the chains restarted from U[-1, 1) each minibatch.
        """
        training.split_options("EBM.fit", options)
        if options.get("validation_data") is not None or options.get("validation_split") is not None:
            raise ValueError("EBM.fit has no validation loss: contrastive divergence needs negatives of its own")
        return_history = options.pop("return_history", False)
        options.pop("validation_data", None)
        options.pop("validation_split", None)
        x = self._check_batch(x, self.config["input_size"])
        size = _checks.integer("replay_buffer", replay_buffer, minimum=1)
        p_re = _checks.real("reinit_prob", reinit_prob, minimum=0.0)
        if p_re > 1:
            raise ValueError(f"reinit_prob must lie in [0, 1], got {p_re}")
        kw = {k: _LANGEVIN[k] for k in ("steps", "step_size", "noise_scale")}
        kw.update(langevin or {})
        rng = training.training_generator(self, seed)
        opt = optim.make(optimizer, lr)
        d = self.config["input_size"]
        buffer = rng.uniform(-1, 1, size=(size, d)).astype(self.dtype)

        def step(idx, rng):
            slots = rng.integers(0, size, size=len(idx))
            start = buffer[slots].copy()
            fresh = rng.random(len(idx)) < p_re
            start[fresh] = rng.uniform(-1, 1, size=(int(fresh.sum()), d))
            neg = langevin_sample(self, start, seed=rng, **{**kw, "verbose": False})  # fit has its own bar
            loss, grads = self.cd_loss_and_grad(x[idx], neg, reg_alpha)

            def keep_negatives():  # written with the parameters, so the buffer matches the step
                buffer[slots] = neg

            return loss, grads, keep_negatives

        history = training.fit_loop(step, x.shape[0], model=self, optimizer=opt, rng=rng, epochs=epochs,
                                    batch_size=batch_size, verbose=verbose, desc="EBM.fit",
                                    extra_state={"replay_buffer": buffer}, **options)
        return history if return_history else self
