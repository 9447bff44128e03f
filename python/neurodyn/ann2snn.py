"""ANN-to-SNN conversion (Rueckauer et al., 2017): a ReLU network trained as usual becomes a
network of integrate-and-fire neurons whose firing rates approximate its activations."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core, nn
from ._estimator import RowsFit
from ._typing import Seed
from .snn import _IF, _LIF

if TYPE_CHECKING:
    import nir

NORMALIZATIONS = ("percentile", "max", None)


class ANN(RowsFit, nn.Model):
    """Dense -> ReLU per hidden layer (``dense_{i}``, i from 0), and a Dense ``output`` when
    ``output_size`` is set and differs from the last hidden size (as Edifice).

    Edifice puts a layer norm (``bn_{i}``) after each Dense; a per-sample normalisation has no
    spiking equivalent, so here it is an option (``norm="layer"``) that :func:`ann2snn`
    refuses with a clear error.

    Parameters
    ----------
    input_size : int
        Features per sample.
    hidden_sizes : sequence of int, default (256, 128)
        Widths of the ReLU layers.
    output_size : int or None
        Width of the final linear layer (none when None or equal to the last hidden width).
    norm : {None, "layer"}
        Layer norm after each hidden Dense (not convertible to spikes).
    seed : int or None
        Seed of the initialisation.
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> nd.ANN(4, hidden_sizes=(8, 6), output_size=3, seed=0)(np.zeros((2, 4))).shape
    (2, 3)
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int] = (256, 128), output_size: int | None = None,
                 norm: str | None = None, seed: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(self._validate(input_size=input_size, hidden_sizes=hidden_sizes, output_size=output_size,
                                        norm=norm, dtype=dtype), seed)

    @classmethod
    def _validate(cls, *, input_size, hidden_sizes=(256, 128), output_size=None, norm=None, dtype=np.float32):
        sizes = [_checks.integer(f"hidden_sizes[{i}]", h, minimum=1) for i, h in enumerate(hidden_sizes)]
        if not sizes:
            raise ValueError("hidden_sizes needs at least one layer")
        if norm not in (None, "layer"):
            raise ValueError(f"norm={norm!r} is not one of None, 'layer'")
        return {"input_size": _checks.integer("input_size", input_size, minimum=1), "hidden_sizes": sizes,
                "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
                "norm": norm, "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        specs, width = [], config["input_size"]
        for i, h in enumerate(config["hidden_sizes"]):
            specs += nn.dense_specs(f"dense_{i}", width, h)
            if config["norm"] == "layer":
                specs += nn.layernorm_specs(f"bn_{i}", h)
            width = h
        out = config["output_size"]
        if out is not None and out != width:
            specs += nn.dense_specs("output", width, out)
        return specs

    def activations(self, x: ArrayLike) -> list[np.ndarray]:
        """Each hidden layer's ReLU output.

        Parameters
        ----------
        x : array_like, shape (batch, input_size)

        Returns
        -------
        list of ndarray, shapes (batch, hidden_sizes[i])
        """
        x = self._check_batch(x, self.config["input_size"])
        return self._forward(x)[1]

    def _forward(self, x):
        p, acts, caches, h = self.params, [], [], x
        for i in range(len(self.config["hidden_sizes"])):
            z = nn.dense(p, f"dense_{i}", h)
            ln = None
            if self.config["norm"] == "layer":
                z, ln = nn.layernorm(p, f"bn_{i}", z)
            a = nn.activation("relu", z)
            caches.append((h, z, ln))
            acts.append(a)
            h = a
        out = nn.dense(p, "output", h) if "output.kernel" in p else h
        return out, acts, caches

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self._forward(self._check_batch(x, self.config["input_size"]))[0]

    def loss_and_grad(self, x: ArrayLike, y: ArrayLike, *,
                      loss: str = "cross_entropy") -> tuple[float, dict[str, np.ndarray]]:
        _checks.choice("loss", loss, nn.LOSSES)
        x = self._check_batch(x, self.config["input_size"])
        out, acts, caches = self._forward(x)
        target = nn.check_targets(loss, y, x.shape[0], out.shape, self.dtype)
        value, d = nn.loss_and_grad(loss, out, target)
        p = self.params
        grads: dict[str, np.ndarray] = {}
        if "output.kernel" in p:
            d = nn.dense_grad(p, "output", acts[-1], d, grads)
        for i in reversed(range(len(acts))):
            h, z, ln = caches[i]
            d = nn.activation_grad("relu", z, acts[i], d)
            if ln is not None:
                d = nn.layernorm_grad(p, f"bn_{i}", ln, d, grads)
            dx = nn.dense_grad(p, f"dense_{i}", h, d, grads, need_dx=i > 0)
            if dx is None:  # the first layer: no gradient with respect to the input
                break
            d = dx
        return value, grads

    _task = "classifier"

    @property
    def output_size(self) -> int:
        return self.config["output_size"] or self.config["hidden_sizes"][-1]


class ConvertedSNN(nn.Model):
    """The spiking twin of an :class:`ANN` made by :func:`ann2snn`. Parameters keep the ANN's
    names (rescaled); the analog input drives the first layer at every step, integrate-and-fire
    neurons (V <- V + I; S = [V > theta]; V <- V - S theta) pass spikes layer to layer, and the
    output is the output layer's current accumulated over time, divided by T.

    It saves and loads like every model (``save``, :func:`neurodyn.load`), and is a
    scikit-learn classifier (``predict``, ``predict_proba``, ``score``) without a ``fit``.

    Parameters
    ----------
    params : dict
        ``dense_{i}.kernel`` / ``dense_{i}.bias`` per hidden layer and, optionally,
        ``output.kernel`` / ``output.bias``, as :func:`ann2snn` builds them.
    hidden_sizes : sequence of int
    num_timesteps : int
        Simulation length T.
    threshold : float
        Firing threshold theta.
    scales : sequence of float
        lambda_l of each hidden layer (the activation a spike rate of 1 stands for).
    dtype : float32 or float64
    """

    _task = "classifier"

    def __init__(self, params: dict[str, ArrayLike], hidden_sizes: Sequence[int], num_timesteps: int,
                 threshold: float, scales: Sequence[float], dtype: DTypeLike) -> None:
        if not isinstance(params, dict) or "dense_0.kernel" not in params:
            raise ValueError("params must be a dict with at least 'dense_0.kernel', as ann2snn builds it")
        output = params.get("output.kernel")
        config = self._validate(input_size=np.shape(params["dense_0.kernel"])[0], hidden_sizes=hidden_sizes,
                                output_size=None if output is None else np.shape(output)[1],
                                num_timesteps=num_timesteps, threshold=threshold, scales=scales, dtype=dtype)
        self._check_saved(config, params)  # names, shapes and dtype as the configuration implies them
        self._adopt(config, {name: params[name] for name, _, _ in self._param_specs(config)})

    @classmethod
    def _validate(cls, *, input_size, hidden_sizes, output_size, num_timesteps, threshold, scales, dtype):
        sizes = [_checks.integer(f"hidden_sizes[{i}]", h, minimum=1) for i, h in enumerate(hidden_sizes)]
        if not sizes:
            raise ValueError("hidden_sizes needs at least one layer")
        lams = [_checks.real(f"scales[{i}]", v, minimum=0.0, strict=True) for i, v in enumerate(scales)]
        if len(lams) != len(sizes):
            raise ValueError(f"scales has {len(lams)} entries for {len(sizes)} hidden layers")
        return {"input_size": _checks.integer("input_size", input_size, minimum=1), "hidden_sizes": sizes,
                "output_size": None if output_size is None else _checks.integer("output_size", output_size, minimum=1),
                "num_timesteps": _checks.integer("num_timesteps", num_timesteps, minimum=1),
                "threshold": _checks.real("threshold", threshold, minimum=0.0, strict=True), "scales": lams,
                "dtype": nn.model_dtype(dtype).name}

    @classmethod
    def _param_specs(cls, config):
        specs, width = [], config["input_size"]
        for i, h in enumerate(config["hidden_sizes"]):
            specs += nn.dense_specs(f"dense_{i}", width, h)
            width = h
        if config["output_size"] is not None:
            specs += nn.dense_specs("output", width, config["output_size"])
        return specs

    def _adopt(self, config, params):
        super()._adopt(config, params)
        self.hidden_sizes = list(config["hidden_sizes"])
        self.num_timesteps = config["num_timesteps"]
        self.threshold = config["threshold"]
        self.scales = list(config["scales"])  # lambda_l of each hidden layer

    def _args_from_config(self):
        c = self.config
        return {"params": self.params, "hidden_sizes": c["hidden_sizes"], "num_timesteps": c["num_timesteps"],
                "threshold": c["threshold"], "scales": c["scales"], "dtype": c["dtype"]}

    @property
    def output_size(self) -> int:
        return self.config["output_size"] or self.config["hidden_sizes"][-1]

    def __call__(self, x: ArrayLike, num_timesteps: int | None = None) -> np.ndarray:
        """Output (batch, output_size) after ``num_timesteps`` steps (default: the converted T)."""
        T = self.num_timesteps if num_timesteps is None else _checks.integer("num_timesteps", num_timesteps, minimum=1)
        x = _checks.real_array("x", x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.params["dense_0.kernel"].shape[0]:
            raise ValueError(f"x has shape {x.shape}; expected (batch, {self.params['dense_0.kernel'].shape[0]})")
        p, B = self.params, x.shape[0]
        lif = dict(_IF, threshold=self.threshold)
        one = nn.dense(p, "dense_0", x)
        # the analog input drives the first layer with the same current every step: a view
        spikes = _core.lif_forward(np.broadcast_to(one, (T,) + one.shape), **lif)[0]
        for i in range(1, len(self.hidden_sizes)):
            flat = nn.dense(p, f"dense_{i}", spikes.reshape(T * B, spikes.shape[-1]), spikes=True)
            cur = flat.reshape(T, B, flat.shape[-1])
            spikes = _core.lif_forward(cur, **lif)[0]
        if "output.kernel" in p:
            # the readout integrates its current: the mean over time of W s_t + b
            return nn.dense(p, "output", spikes.mean(axis=0))
        return spikes.mean(axis=0) * self.scales[-1]

    def to_nir(self, *, dt: float = 1e-4) -> nir.NIRGraph:
        """The network as a NIR graph of IF neurons; see :func:`neurodyn.interop.to_nir`."""
        from .interop import to_nir

        return to_nir(self, dt=dt)

    def __repr__(self):
        return (f"ConvertedSNN(hidden_sizes={self.hidden_sizes}, num_timesteps={self.num_timesteps}, "
                f"threshold={self.threshold})")


def ann2snn(ann: ANN, calibration_x: ArrayLike, *, num_timesteps: int = 100, threshold: float = _LIF["threshold"],
            normalization: str | None = "percentile", percentile: float = 99.9) -> ConvertedSNN:
    """Convert a trained :class:`ANN` into a spiking network of integrate-and-fire neurons.

    Data-based normalisation (Rueckauer et al., 2017): lambda_l is the ``percentile`` (or the
    max) of layer l's ReLU activations over ``calibration_x``; the weights become
    ``W_l theta lambda_{l-1} / lambda_l`` and the biases ``b_l theta / lambda_l`` (lambda_0 = 1):
    an IF neuron driven by a current I fires at the rate I / theta, so the rates approximate
    a_l / lambda_l; the output layer gets ``W_out lambda_L``. ``normalization=None`` keeps the weights (times theta).

    Parameters
    ----------
    ann : ANN
        A trained network without layer norm.
    calibration_x : array_like, shape (B, input_size)
        Samples whose activations set the per-layer scales.
    num_timesteps : int, default 100
        Simulation length T of the converted network.
    threshold : float, default 1.0
        Firing threshold theta of the IF neurons.
    normalization : {"percentile", "max", None}
    percentile : float, default 99.9

    Returns
    -------
    ConvertedSNN
        Callable on (batch, input_size); its accuracy approaches the ANN's as T grows.

    Raises
    ------
    ValueError
        The ANN uses layer normalisation (no spiking equivalent), or bad arguments.
    """
    if not isinstance(ann, ANN):
        raise TypeError(f"ann must be a neurodyn.ANN, got {type(ann).__name__}")
    if ann.config["norm"] is not None:
        raise ValueError("ann2snn cannot convert an ANN with layer normalisation (norm='layer'): a per-sample "
                         "normalisation has no integrate-and-fire equivalent; train the ANN with norm=None")
    T = _checks.integer("num_timesteps", num_timesteps, minimum=1)
    _core.lif_check(threshold=threshold, **_IF)  # the kernel states the IF neurons' rules (nd_lif_params_check)
    theta = float(threshold)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r} is not one of 'percentile', 'max', None")
    q = _checks.real("percentile", percentile, minimum=0.0)
    if q > 100:
        raise ValueError(f"percentile must lie in [0, 100], got {q}")
    acts = ann.activations(calibration_x)
    if acts[0].shape[0] == 0:
        raise ValueError("calibration_x has no samples")
    scales = []
    for a in acts:
        if normalization is None:
            lam = 1.0
        else:
            lam = float(np.percentile(a, q)) if normalization == "percentile" else float(a.max())
            lam = lam if lam > 0 else 1.0  # a dead layer: nothing to rescale
        scales.append(lam)
    params, prev = {}, 1.0
    for i, lam in enumerate(scales):
        params[f"dense_{i}.kernel"] = (ann.params[f"dense_{i}.kernel"] * (theta * prev / lam)).astype(ann.dtype)
        params[f"dense_{i}.bias"] = (ann.params[f"dense_{i}.bias"] * (theta / lam)).astype(ann.dtype)
        prev = lam  # layer l's rate r (spikes of size 1) stands for the activation r * lam
    if "output.kernel" in ann.params:
        params["output.kernel"] = (ann.params["output.kernel"] * (scales[-1])).astype(ann.dtype)
        params["output.bias"] = ann.params["output.bias"].copy()
    return ConvertedSNN(params, ann.config["hidden_sizes"], T, theta, scales, ann.dtype)
