"""Parameters and layers shared by every model: glorot-uniform init, Dense, LayerNorm,
activations, SwiGLU, losses, and the :class:`Model` base class.

Layers are functions on a parameter dict (names follow Edifice: ``"<layer>.kernel"``,
``"<layer>.bias"``, ``"<layer>.gamma"``, ``"<layer>.beta"``); each forward returns what its
backward needs. Every computation runs in the C kernels.
"""
from __future__ import annotations

import contextlib
import contextvars
import numbers
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _checks, _core
from ._estimator import FITTED, Estimator

if TYPE_CHECKING:
    from typing import Self

#: A parameter spec: (name, shape, initialiser), see :func:`initialise`.
Spec = tuple[str, tuple[int, ...], Union[str, tuple[str, float, float]]]
#: What :func:`layernorm` keeps for :func:`layernorm_grad`: (x, mean, rstd).
LayerNormCache = tuple[np.ndarray, np.ndarray, np.ndarray]

#: The activations the kernels know (their table in csrc/nd_nn.c).
ACTIVATIONS = _core.TABLES["activations"]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from ``seed``: None (fresh entropy), an int, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng(int(seed))


def model_dtype(dtype: DTypeLike) -> np.dtype:
    """float32 or float64; anything else is refused."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: DTypeLike) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), shape (fan_in, fan_out)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


# ---- layers --------------------------------------------------------------------------------

# While a saved file is checked, the parameters its configuration may imply are bounded by the
# parameters the file holds: a configuration asking for 2**62 layers must be refused after a
# few specs, not after building a list of 2**62 of them.
_SPEC_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("neurodyn_spec_budget", default=None)


@contextlib.contextmanager
def _spec_budget(n: int) -> Iterator[None]:
    """Within the block, building more than ``n`` parameter specs raises ValueError."""
    token = _SPEC_BUDGET.set([n])
    try:
        yield
    finally:
        _SPEC_BUDGET.reset(token)


def _spend(count: int) -> None:
    budget = _SPEC_BUDGET.get()
    if budget is not None:
        budget[0] -= count
        if budget[0] < 0:
            raise ValueError("the configuration implies more parameters than the file holds")


def dense_specs(name: str, fan_in: int, fan_out: int) -> list[Spec]:
    """Parameter specs of a Dense layer: ``name.kernel`` [fan_in, fan_out] (glorot uniform)
    and ``name.bias`` (zeros). A spec is (name, shape, initialiser)."""
    _spend(2)
    return [(f"{name}.kernel", (fan_in, fan_out), "glorot"), (f"{name}.bias", (fan_out,), "zeros")]


def layernorm_specs(name: str, size: int) -> list[Spec]:
    """Parameter specs of a layer norm: ``name.gamma`` (ones) and ``name.beta`` (zeros)."""
    _spend(2)
    return [(f"{name}.gamma", (size,), "ones"), (f"{name}.beta", (size,), "zeros")]


def inverse_softplus(y: ArrayLike) -> np.ndarray:
    """x with softplus(x) = y, for y > 0 (exact for large y, log(expm1(y)) otherwise)."""
    y = _checks.real_array("y", y, np.float64, finite=False)
    return np.where(y > 30, y, np.log(np.expm1(np.minimum(y, 30))))


def initialise(specs: list[Spec], rng: np.random.Generator, dtype: DTypeLike) -> dict[str, np.ndarray]:
    """Parameters from specs, drawn in order from ``rng`` (so a seed fixes them all).

    An initialiser is "glorot", "zeros", "ones", "sign" (+1 or -1 at random),
    ("uniform", lo, hi), or ("softplus_uniform", lo, hi): a raw value whose softplus is
    uniform in [lo, hi) (for parameters kept positive by a softplus)."""
    params: dict[str, np.ndarray] = {}
    for name, shape, init in specs:
        kind, lo, hi = init if isinstance(init, tuple) else (init, 0.0, 1.0)
        if kind == "glorot":
            value = glorot_uniform(rng, shape[0], shape[1], dtype)
        elif kind == "ones":
            value = np.ones(shape)
        elif kind == "zeros":
            value = np.zeros(shape)
        elif kind == "sign":
            value = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        elif kind == "uniform":
            value = rng.uniform(lo, hi, size=shape)
        elif kind == "softplus_uniform":
            value = inverse_softplus(rng.uniform(lo, hi, size=shape))
        else:
            raise ValueError(f"unknown initialiser {init!r} for {name}")
        params[name] = np.asarray(value, dtype=dtype)
    return params


def init_dense(params: dict[str, np.ndarray], name: str, fan_in: int, fan_out: int, rng: np.random.Generator,
               dtype: DTypeLike) -> None:
    """Adds ``name.kernel`` [fan_in, fan_out] (glorot uniform) and ``name.bias`` (zeros)."""
    params.update(initialise(dense_specs(name, fan_in, fan_out), rng, dtype))


def init_layernorm(params: dict[str, np.ndarray], name: str, size: int, dtype: DTypeLike) -> None:
    """Adds ``name.gamma`` (ones) and ``name.beta`` (zeros)."""
    # ones and zeros: the generator is never drawn from
    params.update(initialise(layernorm_specs(name, size), rng=np.random.default_rng(0), dtype=dtype))


_DENSE = _core.DEFAULTS["dense_backward"]  # the kernels' options: spikes, need_dx


def dense(params: dict[str, np.ndarray], name: str, x: np.ndarray, spikes: bool = _DENSE["spikes"]) -> np.ndarray:
    """y = x W + b for x of shape (rows, in).

    With ``spikes=True`` x must hold spikes (every value 0 or 1, else ValueError) and the
    product is event-driven: each row adds the rows of W its spikes select, so the work
    scales with the number of spikes rather than rows x in (with a quarter or more of the
    entries on, the GEMM is used). The sum runs in a fixed order, so the result does not
    depend on the thread count; it may differ from the GEMM's in the last bits.

    Examples
    --------
    >>> import numpy as np, neurodyn as nd
    >>> p = {"fc.kernel": np.arange(6.0).reshape(3, 2), "fc.bias": np.array([0.5, 0.5])}
    >>> nd.nn.dense(p, "fc", np.array([[1.0, 0.0, 1.0]]), spikes=True).tolist()
    [[4.5, 6.5]]
    """
    return _core.dense_forward(x, params[f"{name}.kernel"], params.get(f"{name}.bias"), spikes=spikes)


@overload
def dense_grad(params: dict[str, np.ndarray], name: str, x: ArrayLike, dy: np.ndarray, grads: dict[str, np.ndarray],
               need_dx: Literal[True] = ..., spikes: bool = ...) -> np.ndarray: ...


@overload
def dense_grad(params: dict[str, np.ndarray], name: str, x: ArrayLike, dy: np.ndarray, grads: dict[str, np.ndarray],
               need_dx: Literal[False], spikes: bool = ...) -> None: ...


@overload
def dense_grad(params: dict[str, np.ndarray], name: str, x: ArrayLike, dy: np.ndarray, grads: dict[str, np.ndarray],
               need_dx: bool, spikes: bool = ...) -> np.ndarray | None: ...


def dense_grad(params: dict[str, np.ndarray], name: str, x: ArrayLike, dy: np.ndarray, grads: dict[str, np.ndarray],
               need_dx: bool = _DENSE["need_dx"], spikes: bool = _DENSE["spikes"]) -> np.ndarray | None:
    """Stores the kernel and bias gradients in ``grads`` and returns dL/dx (None when not
    ``need_dx``: a model's first layer skips that product). ``spikes=True``: x holds 0/1
    spikes and dW = x^T dy is summed event by event, as in :func:`dense`."""
    has_bias = f"{name}.bias" in params
    dx, dw, db = _core.dense_backward(x, params[f"{name}.kernel"], dy, has_bias=has_bias, need_dx=need_dx,
                                      spikes=spikes)
    grads[f"{name}.kernel"] = dw
    if db is not None:
        grads[f"{name}.bias"] = db
    return dx


def layernorm(params: dict[str, np.ndarray], name: str, x: np.ndarray) -> tuple[np.ndarray, LayerNormCache]:
    """Layer norm over the last axis of x (rows, n), with the kernel's epsilon
    (``_core.DEFAULTS["layernorm_forward"]["eps"]``); returns (y, cache)."""
    y, mean, rstd = _core.layernorm_forward(x, params[f"{name}.gamma"], params[f"{name}.beta"])
    return y, (x, mean, rstd)


def layernorm_grad(params: dict[str, np.ndarray], name: str, cache: LayerNormCache, dy: np.ndarray,
                   grads: dict[str, np.ndarray]) -> np.ndarray:
    """Stores the gamma and beta gradients in ``grads`` and returns dL/dx, from the cache of
    :func:`layernorm`."""
    x, mean, rstd = cache
    dx, dg, db = _core.layernorm_backward(x, params[f"{name}.gamma"], mean, rstd, dy)
    grads[f"{name}.gamma"] = dg
    grads[f"{name}.beta"] = db
    return dx


def activation(name: str, x: np.ndarray) -> np.ndarray:
    """``name`` (one of ACTIVATIONS) applied elementwise."""
    return _core.act_forward(name, x)


def activation_grad(name: str, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/dx given x, y = activation(name, x) and dL/dy."""
    return _core.act_backward(name, x, y, dy)


# ---- losses ---------------------------------------------------------------------------------

#: The losses of the models' ``loss=`` option; each name selects the kernel loss_and_grad calls.
LOSSES = ("mse", "cross_entropy")


def mse_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element, and its gradient with respect to ``pred``,
    computed in pred's float dtype (float32 for float16/float32 pred, float64 otherwise)."""
    return _core.mse(pred, target)


def cross_entropy_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over rows for integer labels in [0, classes), and
    dL/dlogits."""
    return _core.softmax_xent(logits, labels)


def loss_and_grad(kind: str, pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss ``kind`` ("mse" or "cross_entropy") and its gradient with respect to pred."""
    _checks.choice("loss", kind, LOSSES)
    return mse_loss(pred, target) if kind == "mse" else cross_entropy_loss(pred, target)


def check_targets(kind: str, y: ArrayLike, rows: int, out_shape: tuple[int, ...], dtype: DTypeLike,
                  name: str = "y") -> np.ndarray:
    """Targets for a loss: class labels (ints in range) or an array of the output's shape."""
    if kind == "cross_entropy":
        arr = np.asarray(y)
        if arr.dtype.kind not in "iu" or arr.shape != (rows,):
            raise ValueError(f"{name}: cross_entropy targets must be integer labels of shape ({rows},), "
                             f"got dtype {arr.dtype} and shape {arr.shape}")
        _core.check_labels(arr, out_shape[-1])  # before the forward pass is paid for
        return arr.astype(np.int64)
    arr = _checks.real_array(name, y, dtype)
    if arr.shape != out_shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {out_shape}")
    return arr


# ---- models ---------------------------------------------------------------------------------

class Model(Estimator):
    """Base of every neurodyn model: ``params`` (an ordered dict name -> ndarray), ``config``
    (the constructor's arguments, JSON-serialisable), save/load, pickling, a readable repr, and
    scikit-learn's estimator protocol (:class:`neurodyn._estimator.Estimator`).

    A subclass provides ``_validate(**kwargs) -> config`` (checks and normalises the
    constructor's arguments) and ``_param_specs(config) -> [(name, shape, initialiser)]``, so
    that a saved file can be checked against its configuration before anything is allocated.
    """

    def __init__(self, config: dict[str, Any], seed: int | np.random.Generator | None = None) -> None:
        self._adopt(config, initialise(self._param_specs(config), as_generator(seed), config["dtype"]))

    @classmethod
    def _validate(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # (*args, **kwargs): each model's override names its own constructor arguments
        raise NotImplementedError

    @classmethod
    def _param_specs(cls, config: dict[str, Any]) -> list[Spec]:
        raise NotImplementedError

    def _adopt(self, config: dict, params: dict) -> None:
        self.config = dict(config)
        self.dtype = np.dtype(self.config["dtype"])
        self.params = params

    @classmethod
    def _check_saved(cls, config: dict, params: dict, budget: int | None = None) -> dict:
        """The validated configuration, after checking that the parameters it implies are
        exactly ``params`` (anything with ``shape`` and ``dtype``: arrays, or the headers of a
        file's members before their data is read), name for name, shape for shape, dtype for
        dtype. Building the specs stops at ``budget`` of them (default: as many as ``params``),
        the number of parameters a file holds."""
        config = cls._validate(**config)
        with _spec_budget(len(params) if budget is None else budget):
            specs = cls._param_specs(config)
        expected = {name: shape for name, shape, _ in specs}
        if set(params) != set(expected):
            missing, extra = set(expected) - set(params), set(params) - set(expected)
            raise ValueError(f"parameter names differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for name, shape, _ in specs:
            arr = params[name]
            if tuple(arr.shape) != tuple(shape):
                raise ValueError(f"parameter {name!r} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
            if arr.dtype != np.dtype(config["dtype"]):
                raise ValueError(f"parameter {name!r} has dtype {arr.dtype}, expected {config['dtype']}")
        return config

    @classmethod
    def _from_saved(cls, config: dict[str, Any], params: dict[str, Any], copy: bool = True) -> Self:
        """A model from a configuration and stored parameters whose names, shapes and dtype
        must match the configuration exactly (checked before anything is allocated). With
        ``copy=False`` the arrays are adopted as they are (they must be fresh and writeable)."""
        config = cls._check_saved(config, params)
        model = cls.__new__(cls)
        names = [name for name, _, _ in cls._param_specs(config)]
        model._adopt(config, {name: np.array(params[name], copy=True) if copy else params[name] for name in names})
        return model

    def param_count(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the configuration and every parameter to ``path`` (an .npz with a JSON config;
        no pickled objects), or, for a path ending in ``.safetensors``, a safetensors file
        whose tensors are the parameters under their names (readable without neurodyn, e.g.
        by ``safetensors.torch.load_file``). ``nd.load(path)`` restores the model bit for bit."""
        from .io import save

        save(self, path)

    def __getstate__(self) -> dict[str, Any]:
        state = {"config": self.config, "params": self.params}
        kept = {k: self.__dict__[k] for k in ("_init_args",) + FITTED if k in self.__dict__}
        if kept:
            state["attributes"] = kept
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._adopt(state["config"], {k: np.array(v, copy=True) for k, v in state["params"].items()})
        self.__dict__.update(state.get("attributes", {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args}) with {self.param_count():,} parameters"

    def _check_batch(self, x: ArrayLike, size: int, name: str = "x") -> np.ndarray:
        """x as a [batch, size] array of the model's dtype, finite."""
        arr = _checks.real_array(name, x, self.dtype)
        if arr.ndim != 2 or arr.shape[1] != size:
            raise ValueError(f"{name} has shape {arr.shape}; expected (batch, {size})")
        return arr
