"""Spiking networks of leaky integrate-and-fire neurons, trained with surrogate gradients."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, encode, nn
from ._estimator import RowsFit
from ._typing import Seed

if TYPE_CHECKING:
    import nir
    import torch

# The kernel's defaults (nd_lif_params_default) and code tables (nd_snn.h), read from _core.
_LIF = _core.DEFAULTS["lif_backward"]
SURROGATES = _core.TABLES["lif_surrogates"]
RESETS = _core.TABLES["lif_resets"]
ENCODINGS = _core.TABLES["spike_encodings"]
# beta = 1 (no leak) with the subtractive reset: the integrate-and-fire neuron (docs/models.md §6)
_IF: dict[str, Any] = {"beta": 1.0, "reset": "subtract"}


def _decay(tau, beta) -> dict:
    """The membrane decay as the kernels take it: tau or beta, whichever was given (None: not
    given; neither gives the kernel's default tau, and both are refused by its check)."""
    return {k: v for k, v in (("tau", tau), ("beta", beta)) if v is not None}


@overload
def lif_run(currents: ArrayLike, *, tau: float | None = ..., beta: float | None = ..., threshold: float = ...,
            reset: str = ..., v0: ArrayLike | None = ..., reset_delay: bool = ...,
            membrane: Literal[True] = ...) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def lif_run(currents: ArrayLike, *, tau: float | None = ..., beta: float | None = ..., threshold: float = ...,
            reset: str = ..., v0: ArrayLike | None = ..., reset_delay: bool = ...,
            membrane: bool) -> tuple[np.ndarray, np.ndarray | None]: ...


def lif_run(currents: ArrayLike, *, tau: float | None = None, beta: float | None = None,
            threshold: float = _LIF["threshold"], reset: str = _LIF["reset"], v0: ArrayLike | None = None,
            reset_delay: bool = _LIF["reset_delay"], membrane: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Run leaky integrate-and-fire neurons over time, in one C loop.

    Per step: ``V <- beta V + I_t``; ``S_t = [V > threshold]``; then reset by subtraction
    ``V <- V - S_t threshold`` (default) or to zero ``V <- V (1 - S_t)``. With
    ``reset_delay=True`` the reset of a spike applies at the next step, as in snntorch's Leaky:
    ``V <- beta V + I - R threshold`` or ``V <- beta (1 - R) V + I`` with R = [V_prev > threshold].

    Parameters
    ----------
    currents : array_like, shape (T, B, n)
        Input current of every step (time first).
    tau, beta : float
        Membrane time constant (beta = exp(-1/tau); tau 2 when neither is given) or the decay
        itself; not both.
    threshold : float
    reset : {"subtract", "zero"}
    v0 : array_like, shape (B, n), optional
    reset_delay : bool, default False
    membrane : bool, default True
        Also return the membrane; ``False`` returns None in its place and saves a (T, B, n)
        array (:func:`lif_backward` recomputes the membrane from the currents anyway).

    Returns
    -------
    spikes, membrane : ndarray, shape (T, B, n)
        Spikes (0/1) and the membrane after each step's reset (None with ``membrane=False``).

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> s, v = nd.lif_run(np.full((4, 1, 1), 0.75), beta=0.5)
    >>> s.ravel().tolist(), v.ravel().tolist()
    ([0.0, 1.0, 0.0, 1.0], [0.75, 0.125, 0.8125, 0.15625])
    """
    if not isinstance(membrane, (bool, np.bool_)):
        raise TypeError(f"membrane must be True or False, got {membrane!r}")
    s, m, _, _, _ = _core.lif_forward(currents, v0, threshold=threshold, reset=reset, reset_delay=reset_delay,
                                      membrane=bool(membrane), **_decay(tau, beta))
    return s, m


def lif_backward(currents: ArrayLike, dspikes: ArrayLike | None = None, dmembrane: ArrayLike | None = None, *,
                 tau: float | None = None, beta: float | None = None, threshold: float = _LIF["threshold"],
                 reset: str = _LIF["reset"], v0: ArrayLike | None = None, reset_delay: bool = _LIF["reset_delay"],
                 surrogate: str = _LIF["surrogate"], slope: float = _LIF["slope"],
                 detach_reset: bool = _LIF["detach_reset"], smooth: bool = _LIF["smooth"],
                 out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of a loss through :func:`lif_run` with a surrogate spike derivative.

    Given the cotangents of the spikes and/or of the membrane, returns
    ``(dcurrents (T, B, n), dv0 (B, n))``. The membrane is recomputed from the currents rather
    than stored. ``smooth=True`` evaluates the smooth model (spikes replaced by the surrogate's
    antiderivative in the forward pass too), whose exact gradient this is.

    Parameters
    ----------
    currents : array_like, shape (T, B, n)
        The inputs of the forward run.
    dspikes : array_like, shape (T, B, n) or (B, n), or None
        Cotangent of the spike trains (None means zero). A (B, n) array is the same cotangent
        at every step, as for a loss on the mean rate, without a T-fold copy.
    dmembrane : array_like, shape (T, B, n), or None
        Cotangent of the membrane (None means zero).
    tau, beta, threshold, reset, v0, reset_delay
        As for :func:`lif_run`.
    surrogate : {"sigmoid", "fast_sigmoid", "atan"}, default "sigmoid"
        Surrogate derivative of the spike function.
    slope : float, default 10.0
        Steepness of the surrogate.
    detach_reset : bool, default True
        Treat the reset term as a constant in the backward pass (as snntorch).
    smooth : bool, default False
        Differentiate the smooth model exactly instead of using the surrogate.
    out : ndarray or None
        ``currents`` itself (C-contiguous, writeable, float32 or float64) to write dcurrents over
        the currents instead of allocating a second (T, B, n) array: the backward pass of a large
        layer then holds one raster, not two. Any other array is refused.

    Returns
    -------
    dcurrents : ndarray, shape (T, B, n)
        Gradient over the currents (``out`` itself when given).
    dv0 : ndarray, shape (B, n)
        Gradient over the initial membrane.
    """
    return _core.lif_backward(currents, v0, dspikes, dmembrane, threshold=threshold, reset=reset,
                              reset_delay=reset_delay, surrogate=surrogate, slope=slope, detach_reset=detach_reset,
                              smooth=smooth, out=out, **_decay(tau, beta))


def lif_rate(currents: ArrayLike, *, tau: float | None = None, beta: float | None = None,
             threshold: float = _LIF["threshold"], reset: str = _LIF["reset"], v0: ArrayLike | None = None,
             reset_delay: bool = _LIF["reset_delay"]) -> np.ndarray:
    """Firing rates of :func:`lif_run`'s neurons, the mean of their spikes over time, (B, n),
    counted in the C loop without the (T, B, n) spike raster.

    Equal to ``lif_run(currents, ...)[0].mean(axis=0)`` bit for bit (the counts are exact), with
    the same parameters, for a rate-coded readout or loss; :func:`lif_backward` takes the rate's
    cotangent as a (B, n) ``dspikes`` divided by T.

    Parameters
    ----------
    currents : array_like, shape (T, B, n)
        Input current of every step (time first), T >= 1.
    tau, beta, threshold, reset, v0, reset_delay
        As for :func:`lif_run`.

    Returns
    -------
    rate : ndarray, shape (B, n)
        Spike count / T of every neuron.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.lif_rate(np.full((4, 1, 1), 0.75), beta=0.5).tolist()
    [[0.5]]
    """
    return _core.lif_forward(currents, v0, threshold=threshold, reset=reset, reset_delay=reset_delay, spikes=False,
                             rate=True, **_decay(tau, beta))[4]


def lif_step(current: ArrayLike, v: ArrayLike, *, tau: float | None = None, beta: float | None = None,
             threshold: float = _LIF["threshold"], reset: str = _LIF["reset"]) -> tuple[np.ndarray, np.ndarray]:
    """One LIF step for currents and membranes of shape (B, n): returns (spikes, new membrane).

    Parameters
    ----------
    current, v : array_like, shape (B, n)
        Input currents and membranes before the step.
    tau : float or None
        Membrane time constant; the decay is ``beta = exp(-1/tau)``.
    beta : float or None
        Decay per step, instead of ``tau`` (default ``exp(-1/2)``).
    threshold : float, default 1.0
    reset : {"subtract", "zero"}, default "subtract"

    Returns
    -------
    spikes, v : ndarray, shape (B, n)
        The step's spikes (0/1) and the membranes after the reset.
    """
    cur = np.asarray(current)
    if cur.ndim != 2:
        raise ValueError(f"current must have shape (batch, neurons), got {cur.shape}")
    s, _, _, v_end, _ = _core.lif_forward(cur[None], v, threshold=threshold, reset=reset, **_decay(tau, beta))
    return s[0], v_end


def if_neuron(current: ArrayLike, num_timesteps: int = 10, threshold: float = _LIF["threshold"],
              v0: ArrayLike | None = None) -> np.ndarray:
    """Firing rate (spike count / T) of integrate-and-fire neurons under a constant current.

    ``V <- V + I``; ``S = [V > threshold]``; ``V <- V - S threshold``. For 0 < I <= threshold
    the count is ceil(T I / threshold) - 1; above the threshold the rate saturates at 1.

    Parameters
    ----------
    current : array_like
        Constant input current per neuron (any shape).
    num_timesteps : int, default 10
    threshold : float, default 1.0
    v0 : array_like or None
        Initial membrane (zeros by default), broadcast to ``current``.

    Returns
    -------
    ndarray
        The rate of each neuron, in [0, 1], of the shape of ``current``.

    Examples
    --------
    >>> import neurodyn as nd
    >>> float(nd.if_neuron(0.35, num_timesteps=10)), float(nd.if_neuron(1.0, num_timesteps=100))
    (0.3, 0.99)
    """
    T = _checks.integer("num_timesteps", num_timesteps, minimum=1)
    arr = _checks.real_array("current", current)
    flat = arr.reshape(1, 1, -1)
    cur = np.broadcast_to(flat, (T, 1, flat.shape[2]))  # read once per step, not copied
    v = None if v0 is None else _checks.real_array("v0", v0, arr.dtype).reshape(1, -1)
    rate = _core.lif_forward(cur, v, threshold=threshold, spikes=False, rate=True, **_IF)[4]
    return rate.reshape(arr.shape)


def rate_decode(spikes: ArrayLike, axis: int = 0) -> np.ndarray:
    """Firing rates: the mean of a spike train over its time axis.

    Parameters
    ----------
    spikes : array_like
        Spike trains, time along ``axis``.
    axis : int, default 0

    Returns
    -------
    ndarray
        ``spikes`` averaged over ``axis`` (which is removed).
    """
    arr = _checks.real_array("spikes", spikes)
    if arr.ndim == 0:
        raise ValueError("spikes must have a time axis")
    return arr.mean(axis=axis)


class SNN(RowsFit, nn.Model):
    """A spiking network (Edifice's SNN): Dense -> LIF per hidden layer, spikes propagating
    layer to layer every time step, and a Dense readout of the last layer's firing rates.

    Trained by backpropagation through time with a surrogate spike derivative; every layer's
    Dense runs as one GEMM over all T * B rows, and the LIF loops and their backward run in C.
    Training keeps each layer's spikes as bits and recomputes currents and membranes in the
    backward pass.

    Parameters
    ----------
    input_size, output_size : int
    hidden_sizes : sequence of int
        Default (256, 128). Layers ``snn_layer_{i}_dense`` (i from 0) and ``snn_output``.
    num_timesteps, tau, threshold : as Edifice (25, 2.0, 1.0); beta = exp(-1/tau).
    beta : float, optional
        The decay per step itself, in [0, 1], instead of ``tau`` (not both): a decay taken from
        another library (snntorch's ``Leaky(beta=...)``, a NIR graph) is then kept bit for bit.
    surrogate : {"sigmoid", "fast_sigmoid", "atan"}
        Surrogate derivative of the spike in the backward pass.
    slope : float, default 10.0
        Its steepness.
    encoding : {"constant", "poisson", "latency"}
        How the input drives the first layer: the analog input as a constant current (Edifice),
        Bernoulli spikes, or latency spikes.
    reset : {"subtract", "zero"}
    reset_delay : bool, default False
        Apply a spike's reset at the next step, as snntorch's ``Leaky`` does by default (see
        :func:`lif_run`).
    seed : int or numpy.random.Generator, optional
        Seeds the glorot-uniform initialisation.
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> net = nd.SNN(4, 3, hidden_sizes=(8,), num_timesteps=5, seed=0)
    >>> net(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, input_size: int, output_size: int, hidden_sizes: Sequence[int] = (256, 128),
                 num_timesteps: int = 25, tau: float | None = None, threshold: float = _LIF["threshold"],
                 surrogate: str = _LIF["surrogate"], slope: float = _LIF["slope"], encoding: str = "constant",
                 reset: str = _LIF["reset"], seed: Seed = None, dtype: DTypeLike = np.float32,
                 beta: float | None = None, reset_delay: bool = _LIF["reset_delay"]) -> None:
        super().__init__(self._validate(input_size=input_size, output_size=output_size, hidden_sizes=hidden_sizes,
                                        num_timesteps=num_timesteps, tau=tau, threshold=threshold,
                                        surrogate=surrogate, slope=slope, encoding=encoding, reset=reset,
                                        dtype=dtype, beta=beta, reset_delay=reset_delay), seed)

    @classmethod
    def _validate(cls, *, input_size, output_size, hidden_sizes=(256, 128), num_timesteps=25, tau=None,
                  threshold=_LIF["threshold"], surrogate=_LIF["surrogate"], slope=_LIF["slope"], encoding="constant",
                  reset=_LIF["reset"], dtype=np.float32, beta=None, reset_delay=_LIF["reset_delay"]):
        sizes = [_checks.integer(f"hidden_sizes[{i}]", h, minimum=1) for i, h in enumerate(hidden_sizes)]
        if not sizes:
            raise ValueError("hidden_sizes needs at least one layer")
        if tau is None and beta is None:
            tau = _LIF["tau"]
        _core.lif_check(**_decay(tau, beta), threshold=threshold, reset=reset, reset_delay=reset_delay,
                        surrogate=surrogate, slope=slope)
        _checks.choice("encoding", encoding, ENCODINGS)
        return {"input_size": _checks.integer("input_size", input_size, minimum=1),
                "output_size": _checks.integer("output_size", output_size, minimum=1), "hidden_sizes": sizes,
                "num_timesteps": _checks.integer("num_timesteps", num_timesteps, minimum=1),
                "tau": None if tau is None else float(tau), "threshold": float(threshold), "surrogate": surrogate,
                "slope": float(slope), "encoding": encoding, "reset": reset, "dtype": nn.model_dtype(dtype).name,
                "beta": None if beta is None else float(beta), "reset_delay": bool(reset_delay)}

    @classmethod
    def _param_specs(cls, config):
        specs, width = [], config["input_size"]
        for i, h in enumerate(config["hidden_sizes"]):
            specs += nn.dense_specs(f"snn_layer_{i}_dense", width, h)
            width = h
        return specs + nn.dense_specs("snn_output", width, config["output_size"])

    def _lif(self):
        """The LIF parameters of every layer, as keyword arguments of the kernels."""
        c = self.config
        return dict(_decay(c["tau"], c["beta"]), **{k: c[k] for k in ("threshold", "reset", "reset_delay",
                                                                      "surrogate", "slope")})

    def _encode(self, x, seed):
        T, enc = self.config["num_timesteps"], self.config["encoding"]
        if enc == "poisson":
            return encode.poisson(x, T, seed)
        if enc == "latency":
            return encode.latency(x, T)
        return None  # constant: the same current every step, computed once

    def _currents(self, i, inputs, x):
        """Layer i's currents (T, B, n) from its input spikes (T, B, m), or from x for layer 0
        under constant encoding: one GEMM, its (B, n) result broadcast over time as a view (the
        LIF kernels read it once per step, without a T-fold copy)."""
        T, B = self.config["num_timesteps"], x.shape[0]
        name = f"snn_layer_{i}_dense"
        if inputs is None:
            one = nn.dense(self.params, name, x)
            return np.broadcast_to(one, (T,) + one.shape)
        # spikes in (encoded input or the layer below): event-driven, work ~ the spike count
        flat = nn.dense(self.params, name, inputs.reshape(T * B, inputs.shape[-1]), spikes=True)
        return flat.reshape(T, B, flat.shape[-1])

    def _forward(self, x, seed=None, keep=False):
        """Rates of the last layer and, with keep, what the backward pass needs: the encoded
        input, each layer's spikes as bits (the next layer's input, 1 bit a spike) and each
        layer's currents (the membrane is recomputed from them)."""
        inputs = self._encode(x, seed)
        first_inputs = inputs
        bits, currents = [], []
        p, layers = self._lif(), len(self.config["hidden_sizes"])
        for i in range(layers):
            cur = self._currents(i, inputs, x)
            # the last layer's spikes reach the loss only through its rate: the kernel counts
            # it, with no raster and no bits
            last = i == layers - 1
            s, _, b, _, rate = _core.lif_forward(cur, spikes=not last, bits=keep and not last, rate=last, **p)
            bits.append(b)
            currents.append(cur if keep else None)
            inputs = s
        return rate, (first_inputs, bits, currents)

    def __call__(self, x: ArrayLike, seed: Seed = None) -> np.ndarray:
        """Readout of the last layer's rates, (batch, output_size). ``seed`` drives Poisson input."""
        x = self._check_batch(x, self.config["input_size"])
        rate, _ = self._forward(x, seed)
        return nn.dense(self.params, "snn_output", rate)

    def spikes(self, x: ArrayLike, seed: Seed = None) -> list[np.ndarray]:
        """Every hidden layer's spike raster.

        Parameters
        ----------
        x : array_like, shape (B, input_size)
        seed : int or numpy.random.Generator, optional
            Drives Poisson input encoding.

        Returns
        -------
        list of ndarray, shapes (T, B, n_i)
            One raster of 0/1 spikes per hidden layer.
        """
        x = self._check_batch(x, self.config["input_size"])
        inputs, out, p = self._encode(x, seed), [], self._lif()
        for i in range(len(self.config["hidden_sizes"])):
            s = _core.lif_forward(self._currents(i, inputs, x), **p)[0]
            out.append(s)
            inputs = s
        return out

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *, loss: str = "cross_entropy",
                      seed: Seed = None) -> tuple[float, dict[str, np.ndarray]]:
        """Loss of the readout and the gradient of every parameter (BPTT through the surrogate)."""
        _checks.choice("loss", loss, nn.LOSSES)
        x = self._check_batch(x, self.config["input_size"])
        rate, (enc, bits, currents) = self._forward(x, seed, keep=True)
        p, c = self.params, self.config
        grads: dict[str, np.ndarray] = {}
        out = nn.dense(p, "snn_output", rate)
        target = nn.check_targets(loss, y, x.shape[0], out.shape, self.dtype)
        value, dout = nn.loss_and_grad(loss, out, target)
        drate = nn.dense_grad(p, "snn_output", rate, dout, grads)
        T, B = c["num_timesteps"], x.shape[0]
        sizes = c["hidden_sizes"]
        lif = self._lif()
        # d rate / d spikes_t = 1/T at every step: one (B, n) row the kernel reads for every step
        dspikes = np.ascontiguousarray(drate / T, dtype=self.dtype)
        for i in reversed(range(len(sizes))):
            below = None if i == 0 else _core.spike_bits_unpack(bits[i - 1], T, B, sizes[i - 1], rate)
            layer_in = enc if i == 0 else below
            constant = layer_in is None  # only the encoded input can be (below never is)
            # constant input: the same x feeds every step, so its current's gradient is the sum
            # over steps, which the kernel returns as (B, n)
            dcur, _ = _core.lif_backward(currents[i], dspikes=dspikes, sum_time=constant, **lif)
            name = f"snn_layer_{i}_dense"
            if layer_in is None:
                nn.dense_grad(p, name, x, dcur, grads, need_dx=False)
            else:
                din = nn.dense_grad(p, name, layer_in.reshape(T * B, layer_in.shape[-1]),
                                    dcur.reshape(T * B, dcur.shape[-1]), grads,
                                    need_dx=i > 0, spikes=True)  # encoded input spikes need no gradient
                if din is not None:  # i > 0
                    dspikes = din.reshape(T, B, din.shape[-1])
        return value, grads

    _task = "classifier"

    @property
    def output_size(self) -> int:
        return self.config["output_size"]

    def to_nir(self, *, dt: float = 1e-4) -> nir.NIRGraph:
        """The network as a NIR graph; see :func:`neurodyn.interop.to_nir` (needs the nir package)."""
        from .interop import to_nir

        return to_nir(self, dt=dt)

    @classmethod
    def from_snntorch(cls, net: torch.nn.Module, **options: Any) -> SNN:
        """The SNN of a feed-forward snntorch net (Linear and Leaky layers); see
        :func:`neurodyn.interop.snn_from_snntorch` for the options and what cannot be mapped."""
        from .interop import snn_from_snntorch

        return snn_from_snntorch(net, **options)

    def to_snntorch(self) -> torch.nn.Sequential:
        """The network as a ``torch.nn.Sequential`` of Linear and snntorch Leaky layers; see
        :func:`neurodyn.interop.snn_to_snntorch`."""
        from .interop import snn_to_snntorch

        return snn_to_snntorch(self)

    def _batch_loss(self, x, y, *, rng, loss):
        return self.loss_and_grad(x, y, loss=loss, seed=rng)

    def _validation_outputs(self, x):
        return self(x, seed=0)  # fixed Poisson input: the same validation loss every epoch
