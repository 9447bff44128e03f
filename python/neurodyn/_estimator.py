"""scikit-learn's estimator protocol for every model, without depending on scikit-learn.

``get_params``/``set_params`` speak of the constructor's arguments as they were given (so
``sklearn.base.clone`` rebuilds an equal model); ``fit`` returns the model with its history
in ``history_``; ``predict``, ``predict_proba`` and ``score`` exist where they mean something.
Whether a model classifies or regresses is decided by the loss of its last ``fit``
(``loss_``); before any fit, by the kind of model (``_task``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .training import with_options_doc

if TYPE_CHECKING:
    from typing import Self

    from .optim import Optimizer
    from .training import History

#: Attributes a fit sets, kept by pickling and dropped by set_params.
FITTED = ("history_", "loss_", "_flat_target")


_SIGNATURES: dict[type, inspect.Signature] = {}


def _signature(cls: type[Estimator]) -> inspect.Signature:
    """The signature of ``cls.__init__`` (cached per class)."""
    sig = _SIGNATURES.get(cls)
    if sig is not None:
        return sig
    sig = inspect.signature(cls.__init__)
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{cls.__name__}.__init__ takes *args or **kwargs; get_params needs named arguments")
    _SIGNATURES[cls] = sig
    return sig


def _param_names(cls: type[Estimator]) -> list[str]:
    return list(_signature(cls).parameters)[1:]  # without self


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _r2(y: ArrayLike, pred: ArrayLike, sample_weight: ArrayLike | None) -> float:
    """The coefficient of determination, averaged uniformly over the outputs (as
    ``sklearn.metrics.r2_score``); an output with constant targets scores 1 when predicted
    exactly, else 0."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    if y.shape != pred.shape:
        raise ValueError(f"y has shape {y.shape} but the predictions {pred.shape}")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mean = np.average(y, axis=0, weights=w)
    ss_res = (w[:, None] * (y - pred) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (y - mean) ** 2).sum(axis=0)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res > 0, 0.0, 1.0))
    return float(scores.mean())


class Estimator:
    """The scikit-learn estimator protocol (mixed into :class:`neurodyn.nn.Model`).

    The constructor's arguments are recorded as given when the model is created, so a
    subclass's ``__init__`` needs no code for it. ``set_params`` builds the model anew from the
    changed arguments: its parameters are initialised again (from ``seed``) and its fit
    forgotten. ``fit`` continues from the current parameters (call ``set_params()`` or
    ``sklearn.base.clone`` for a fresh start, as scikit-learn's search tools do).
    """

    #: "classifier", "regressor" or None (neither): the model's role before any fit.
    _task: str | None = None

    if TYPE_CHECKING:
        # provided by neurodyn.nn.Model and by each model
        config: dict[str, Any]
        dtype: np.dtype
        _init_args: dict[str, Any]
        loss_: str
        _flat_target: bool
        history_: History

        @property
        def output_size(self) -> int: ...

        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

        def loss_and_grad(self, *args: Any, **kwargs: Any) -> Any: ...

        def _check_batch(self, x: ArrayLike, size: int, name: str = "x") -> np.ndarray: ...

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if args or kwargs:  # not when unpickling or loading, which restore their own state
            try:
                bound = _signature(cls).bind(None, *args, **kwargs)
            except TypeError:
                pass  # __init__ raises the proper error
            else:
                bound.apply_defaults()
                self._init_args = {k: v for k, v in list(bound.arguments.items())[1:]}
        return self

    # ---- parameters ---------------------------------------------------------------------

    def _args_from_config(self) -> dict[str, Any]:
        """Constructor arguments of a model that was not built by its constructor (loaded
        from a file): the configuration's entries, the defaults for the rest."""
        config = getattr(self, "config", {})
        out = {}
        for name, p in list(_signature(type(self)).parameters.items())[1:]:
            out[name] = config.get(name, None if p.default is p.empty else p.default)
        return out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as given (scikit-learn's ``get_params``).

        Parameters
        ----------
        deep : bool
            Accepted for scikit-learn; a model holds no nested estimators.

        Returns
        -------
        dict
            Argument name -> value, for every argument of ``__init__``.
        """
        args = getattr(self, "_init_args", None)
        if args is None:
            args = self._args_from_config()
        return {name: args[name] for name in _param_names(type(self)) if name in args}

    def set_params(self, **params: Any) -> Self:
        """Change constructor arguments and build the model anew (scikit-learn's ``set_params``).

        The parameters are initialised again from the new arguments (and ``seed``); the
        history and anything else a fit set are dropped.

        Returns
        -------
        self
        """
        if not params:
            return self
        current = self.get_params()
        for name in params:
            if name not in current:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(current)}")
        args = {**current, **params}
        type(self).__init__(self, **args)
        self._init_args = args
        for name in FITTED:
            self.__dict__.pop(name, None)
        return self

    # ---- what kind of estimator ---------------------------------------------------------

    def _current_task(self) -> str | None:
        loss = getattr(self, "loss_", None)
        if loss is not None:
            return "classifier" if loss == "cross_entropy" else "regressor"
        return self._task

    @property
    def _estimator_type(self) -> str | None:
        # scikit-learn before 1.6 reads this attribute; later versions read __sklearn_tags__
        return self._current_task()

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        task = self._current_task()
        return Tags(estimator_type=task, target_tags=TargetTags(required=task is not None),
                    input_tags=InputTags(three_d_array=self._sequences),
                    classifier_tags=ClassifierTags() if task == "classifier" else None,
                    regressor_tags=RegressorTags() if task == "regressor" else None)

    _sequences = False  # True for models that take (batch, time, features)

    @property
    def classes_(self) -> np.ndarray:
        """The class labels of a classifier: 0 .. output_size - 1 (integer labels index the
        outputs)."""
        if self._current_task() != "classifier":
            raise AttributeError(f"{type(self).__name__} is not used as a classifier, so it has no classes_")
        return np.arange(self._output_width())

    def _output_width(self) -> int:
        return int(self.output_size)

    # ---- fit ----------------------------------------------------------------------------

    def _targets(self, n: int, y: ArrayLike, loss: str, *, axis: int = 0,
                 unit: str = "samples") -> tuple[str, np.ndarray, bool]:
        """(loss, y as the loss takes it, flat): ``loss="auto"`` is cross-entropy for integer
        labels of shape (n,) when there are several outputs, mse otherwise; 1-D regression
        targets of a one-output model become a column (``flat``)."""
        from . import _checks, nn
        from .training import matching_targets

        _checks.choice("loss", loss, ("auto",) + nn.LOSSES)
        y = matching_targets(n, y, axis=axis, unit=unit)
        width = self._output_width()
        if loss == "auto":
            loss = "cross_entropy" if y.ndim == 1 and y.dtype.kind in "biu" and width > 1 else "mse"
        flat = loss == "mse" and y.ndim == 1
        if flat:
            y = y[:, None]
        elif loss == "cross_entropy" and y.dtype.kind == "b":
            y = y.astype(np.int64)
        return loss, y, flat

    def _fit_supervised(self, x, y, extras=(), *, loss, check_x, batch_loss, predict_for, y_axis=0,
                        unit="samples", epochs, batch_size, lr, optimizer, seed, verbose, options):
        """The shared body of a supervised ``fit``.

        ``check_x(x, name) -> array``; ``extras``: further per-sample arguments as
        ``(value, check(value, x) -> array or None)``; ``batch_loss(x, y, *extras, rng=, loss=)
        -> (loss, grads)`` on a minibatch; ``predict_for(x, y, *extras)`` the outputs the loss
        compares with y (forward only, for the validation loss)."""
        from . import nn, training

        training.split_options(f"{type(self).__name__}.fit", options)
        x = check_x(x, "x")
        loss, y, flat = self._targets(x.shape[0], y, loss, axis=y_axis, unit=unit)
        checks = [check for _, check in extras]
        values = [check(value, x) for value, check in extras]

        def arrays(x, y, values):
            return [(x, 0), (y, y_axis)] + [(v, None if v is None else 0) for v in values]

        def prepare(*data):
            if not 2 <= len(data) <= 2 + len(checks):
                raise ValueError(f"validation_data must be (x, y) or up to {2 + len(checks)} arrays in the form "
                                 f"fit takes, got {len(data)}")
            xv = check_x(data[0], "validation x")
            yv = self._targets(xv.shape[0], data[1], loss, axis=y_axis, unit=unit)[1]
            rest = list(data[2:]) + [None] * (len(checks) - len(data) + 2)
            return arrays(xv, yv, [check(v, xv) for v, check in zip(rest, checks)])

        def step(batch, rng):
            return batch_loss(*batch, rng=rng, loss=loss)

        def evaluate(batch):
            pred = predict_for(*batch)
            target = nn.check_targets(loss, batch[1], pred.shape[0], pred.shape, self.dtype)
            return nn.loss_and_grad(loss, pred, target)[0]

        self.loss_, self._flat_target = loss, flat
        return training.fit_model(self, arrays(x, y, values), step, eval_loss=evaluate, prepare=prepare,
                                  epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                                  verbose=verbose, **options)

    # ---- predict and score --------------------------------------------------------------

    def _decision(self, x: ArrayLike, **kwargs: Any) -> np.ndarray:
        return np.asarray(self(x, **kwargs))

    def _require(self, *tasks: str) -> None:
        task = self._current_task()
        if task not in tasks:
            fitted = f" (its last fit used loss {self.loss_!r})" if getattr(self, "loss_", None) else ""
            raise AttributeError(f"{type(self).__name__} is not used as a {' or '.join(tasks)}{fitted}")

    @property
    def predict(self) -> Callable[..., np.ndarray]:
        """``predict(x, **kw)``: class labels (the arg-max output) of a classifier; outputs of a
        regressor (a 1-D array when it was fitted on 1-D targets). Keywords are those of
        calling the model (``timespans`` for the recurrent cells, ``seed`` for a Poisson SNN)."""
        self._require("classifier", "regressor")
        return self._predict

    def _predict(self, x: ArrayLike, **kwargs: Any) -> np.ndarray:
        out = self._decision(x, **kwargs)
        if self._current_task() == "classifier":
            return out.argmax(axis=-1)
        return out[..., 0] if getattr(self, "_flat_target", False) else out

    @property
    def predict_proba(self) -> Callable[..., np.ndarray]:
        """``predict_proba(x, **kw)``: class probabilities of a classifier, the softmax of its
        outputs, shape (batch, output_size)."""
        self._require("classifier")
        return self._predict_proba

    def _predict_proba(self, x: ArrayLike, **kwargs: Any) -> np.ndarray:
        return _softmax(self._decision(x, **kwargs).astype(np.float64))

    @property
    def score(self) -> Callable[..., float]:
        """``score(x, y, sample_weight=None, **kw)``: accuracy of a classifier, the coefficient
        of determination R^2 of a regressor (as scikit-learn's ``score``)."""
        self._require("classifier", "regressor")
        return self._score

    def _score(self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, **kwargs: Any) -> float:
        pred = self._predict(x, **kwargs)
        if self._current_task() == "classifier":
            hit = (pred == np.asarray(y)).astype(np.float64)
            weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            return float(np.average(hit, weights=weights))
        return _r2(y, pred, sample_weight)


class RowsFit(Estimator):
    """``fit`` for the models whose samples are rows (n, features) with integer-label or real
    targets (SNN, ANN, Hopfield, AssociativeMemory). A model names its input width
    (``_input_key``), how a minibatch's loss and gradients are computed (``_batch_loss``) and
    what it outputs for the validation loss (``_validation_outputs``)."""

    _input_key = "input_size"

    def _batch_loss(self, x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator, loss: str) -> Any:
        return self.loss_and_grad(x, y, loss=loss)

    def _validation_outputs(self, x: np.ndarray) -> np.ndarray:
        return self(x)

    # fit returns the model, or its history with return_history=True
    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, *, return_history: Literal[True], **options: Any) -> History: ...

    @overload
    def fit(self, x: ArrayLike, y: ArrayLike, **options: Any) -> Self: ...

    @with_options_doc
    def fit(self, x: ArrayLike, y: ArrayLike, *, loss: str = "auto", epochs: int = 10, batch_size: int = 32,
            lr: float = 1e-3, optimizer: str | Optimizer = "adam", seed: int | np.random.Generator | None = None,
            verbose: bool = True, **options: Any) -> Self | History:
        """Minibatch training with shuffling (and the model's dropout or input noise).

        Parameters
        ----------
        x : array_like, shape (n, input features)
        y : array_like
            Integer class labels (n,) for ``cross_entropy``, or targets (n, outputs) (or (n,) with
            one output) for ``mse``.
        loss : {"auto", "cross_entropy", "mse"}
            "auto": cross-entropy for integer labels, mse otherwise.
        """
        size = self.config[self._input_key]
        return self._fit_supervised(
            x, y, loss=loss, check_x=lambda a, name: self._check_batch(a, size, name), batch_loss=self._batch_loss,
            predict_for=lambda xb, yb: self._validation_outputs(xb), epochs=epochs, batch_size=batch_size, lr=lr,
            optimizer=optimizer, seed=seed, verbose=verbose, options=options)
