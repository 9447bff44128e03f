"""The minibatch training loop shared by every model's ``fit``."""
from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .optim import NonFiniteError, Optimizer

if TYPE_CHECKING:
    from .nn import Model

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

#: A training history: entry name -> one value per epoch (per step for ``batch_loss``).
History = dict[str, list[float]]
#: A learning-rate schedule: epoch -> multiplier of the base learning rate.
Schedule = Callable[[int], float]
#: What ``fit(callbacks=...)`` takes: callbacks, or callables ``f(epoch, logs) -> bool | None``.
CallbackLike = Union["Callback", Callable[[int, dict[str, float]], Any]]
#: The per-sample arrays of a fit and the axis that indexes the samples (None: shared by every batch).
Data = list[tuple[Any, Union[int, None]]]

BAR_DELAY = 1.0  # seconds a kernel call runs before its progress bar appears


class _Held:
    """The state of the SIGINT handler that holds Ctrl-C back (main thread only): how deep in
    :func:`deferred_interrupts` blocks we are, the signal held back, and the handler it belongs
    to (the one in place before ours)."""

    depth = 0
    pending: tuple | None = None
    previous: Callable[[int, types.FrameType | None], Any] | int | None = None
    guarding = False  # a handler installed for a whole fit by interrupt_guard


def _handle(signum, frame):
    if _Held.depth:
        _Held.pending = (signum, frame)
    else:
        _deliver(_Held.previous, (signum, frame))


def _deliver(previous, pending) -> None:
    """Hand a SIGINT to the handler that was in place: default_int_handler raises
    KeyboardInterrupt; SIG_DFL ends the process as Ctrl-C would; SIG_IGN ignores it."""
    if callable(previous):
        previous(*pending)
    elif previous == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interrupt_guard() -> Iterator[None]:
    """Install, for the duration of the block, the SIGINT handler that
    :func:`deferred_interrupts` relies on; outside deferred blocks it acts as the handler it
    replaces. A fit runs inside one guard, so its many short deferred blocks only flip a
    counter (installing a handler is a system call, tens of microseconds in some sandboxes)."""
    previous = signal.getsignal(signal.SIGINT) if _in_main_thread() and not _Held.guarding else None
    if previous is None:  # another thread, a guard already in place, or a handler Python cannot put back
        yield
        return
    _Held.previous, _Held.pending, _Held.guarding = previous, None, True
    signal.signal(signal.SIGINT, _handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _Held.guarding = False


def _guarded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` run inside :func:`interrupt_guard` (one SIGINT handler for the whole call, so that
    each step's hold-back is a counter)."""
    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with interrupt_guard():
            return fn(*args, **kwargs)
    return run


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration of the block, then deliver it.

    A training step's update is a sequence of in-place copies; a KeyboardInterrupt between two
    of them would leave parameters that match no step. Inside this block a SIGINT is recorded
    instead, and handed to the handler that was in place once the block is over (so the
    KeyboardInterrupt arrives at the step boundary). Blocks nest; outside the main thread, where
    Python never delivers signals, the block changes nothing. Keep the block short: it is meant
    for copies, not for computing.
    """
    if not _in_main_thread():
        yield
        return
    guard = contextlib.nullcontext() if _Held.guarding or _Held.depth else interrupt_guard()
    with guard:
        _Held.depth += 1
        try:
            yield
        finally:
            _Held.depth -= 1
            pending = _Held.pending if _Held.depth == 0 else None
            if pending is not None:
                _Held.pending = None
                _deliver(_Held.previous, pending)  # the KeyboardInterrupt arrives here


def _tqdm() -> Any:
    """The tqdm class to draw a bar with, or None when tqdm is not installed.

    In a Jupyter kernel with ipywidgets: the notebook widget. Everywhere else, a Jupyter kernel
    without ipywidgets included: the text bar, whose carriage returns Jupyter redraws in place.
    Chosen here rather than by tqdm.auto, which warns (TqdmWarning) when ipywidgets is missing,
    and whose older versions then left a widget-less bar frozen at its first state."""
    try:
        from tqdm.std import tqdm
    except ImportError:
        return None
    if "ipykernel" in sys.modules:
        try:
            from tqdm.notebook import IProgress, tqdm as notebook_tqdm
        except ImportError:
            IProgress = None
        if IProgress is not None:
            return notebook_tqdm
    return tqdm


def progress(iterable: Iterable[_T], total: int, desc: str, verbose: bool) -> Iterable[_T]:
    """tqdm over ``iterable`` when installed and ``verbose``; the iterable itself otherwise."""
    tqdm = _tqdm() if verbose else None
    return iterable if tqdm is None else tqdm(iterable, total=total, desc=desc, leave=False)


class _KernelBar:
    """The ``progress(done)`` callable a long C kernel calls about 20 times a second.

    The bar appears only once the call has run ``delay`` seconds, so the many short calls of
    a typical session print nothing and do not pay for importing tqdm.
    """

    def __init__(self, desc: str, delay: float):
        self.desc, self.delay, self.start = desc, delay, time.perf_counter()
        self.bar: Any = None  # the tqdm bar, once shown

    def __call__(self, done: float) -> None:
        if self.bar is None:
            if time.perf_counter() - self.start < self.delay:
                return
            tqdm = _tqdm()
            if tqdm is None:
                self.delay = math.inf  # never look again during this call
                return
            self.bar = tqdm(total=100, desc=self.desc, leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self.bar.n = int(100 * done)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def kernel_progress(desc: str, verbose: bool) -> Iterator[Callable[[float], None] | None]:
    """A ``progress`` callable for a C kernel (None when not ``verbose``), closed on exit."""
    if not verbose:
        yield None
        return
    bar = _KernelBar(desc, BAR_DELAY)
    try:
        yield bar
    finally:
        bar.close()


# ---- callbacks, schedules, clipping --------------------------------------------------------


class FitState:
    """What a :class:`Callback` sees of a running ``fit``.

    Attributes
    ----------
    model : the model being trained (its ``params`` are updated in place).
    optimizer : the :mod:`neurodyn.optim` optimiser.
    history : dict of lists, the same object as ``model.history_``: ``loss`` (mean minibatch
        loss of each epoch), ``batch_loss`` (every minibatch), ``lr`` (learning rate of each
        epoch), ``time`` (seconds per epoch) and, with validation data, ``val_loss``.
    epoch : int, epochs completed.
    step : int, optimiser steps completed.
    logs : dict, the last epoch's entries of the history.
    stop : bool, set it to end training after the current epoch.
    """

    def __init__(self, model: Model, optimizer: Optimizer, history: History) -> None:
        self.model, self.optimizer, self.history = model, optimizer, history
        self.epoch = self.step = 0
        self.logs: dict[str, float] = {}
        self.stop = False


class Callback:
    """Base of the objects ``fit(callbacks=[...])`` calls; override any of the hooks.

    Each hook gets the :class:`FitState`. ``on_batch_end`` runs after every completed step,
    ``on_epoch_end`` after every epoch (its logs and validation loss included), ``on_train_end``
    once training ends without an error. A callback that carries state across epochs returns
    it from :meth:`get_state` so that a checkpoint can resume it exactly.
    """

    def on_train_begin(self, state: FitState) -> None:
        pass

    def on_batch_end(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState) -> None:
        pass

    def on_train_end(self, state: FitState) -> None:
        pass

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-serialisable dict, {parameter name: array shaped like that parameter})."""
        return {}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Take the state :meth:`get_state` returned (when resuming from a checkpoint)."""


class _EpochFunction(Callback):
    """A plain callable ``f(epoch, logs)`` as a callback: returning True stops training."""

    def __init__(self, f: Callable[[int, dict[str, float]], Any]) -> None:
        self.f = f

    def on_epoch_end(self, state: FitState) -> None:
        answer = self.f(state.epoch - 1, dict(state.logs))
        if answer is not None and not isinstance(answer, (bool, np.bool_)):
            raise TypeError(f"the callback {self.f!r} returned {answer!r}; it must return None, True or False")
        state.stop = state.stop or bool(answer)


class EarlyStopping(Callback):
    """Stop when a monitored loss has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : {"val_loss", "loss"} or None
        The history entry watched; None: ``val_loss`` when there is validation data, else
        ``loss``.
    patience : int, default 5
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        An improvement must lower the best value by more than this.
    restore_best : bool, default True
        End training with the parameters of the best epoch (the optimiser's moments stay
        those of the last epoch).
    """

    def __init__(self, monitor: str | None = None, patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be a history key or None, got {monitor!r}")
        self.monitor = monitor
        self.patience = _checks.integer("patience", patience, minimum=1)
        self.min_delta = _checks.real("min_delta", min_delta, minimum=0.0)
        self.restore_best = bool(restore_best)
        self._reset()

    def _reset(self) -> None:
        self.best, self.best_epoch, self.wait = math.inf, -1, 0
        self.best_params: dict[str, np.ndarray] = {}

    def on_train_begin(self, state: FitState) -> None:
        self._reset()
        self.key = self.monitor or ("val_loss" if "val_loss" in state.history else "loss")
        if self.key not in state.history:
            raise ValueError(f"EarlyStopping monitors {self.key!r}, which this fit does not record "
                             f"(val_loss needs validation_data or validation_split)")

    def on_epoch_end(self, state: FitState) -> None:
        value = state.history[self.key][-1]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, state.epoch - 1, 0
            if self.restore_best:
                self.best_params = {k: v.copy() for k, v in state.model.params.items()}
        else:
            self.wait += 1
            if self.wait >= self.patience or not math.isfinite(value):
                state.stop = True

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best and self.best_params and self.best_epoch != state.epoch - 1:
            with deferred_interrupts():
                for name, value in self.best_params.items():
                    np.copyto(state.model.params[name], value)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        best = self.best if math.isfinite(self.best) else None
        return {"best": best, "best_epoch": self.best_epoch, "wait": self.wait}, dict(self.best_params)

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        best = meta.get("best")
        self.best = math.inf if best is None else _checks.real("the checkpoint's best value", best)
        self.best_epoch = _checks.integer("the checkpoint's best epoch", meta.get("best_epoch"), minimum=-1)
        self.wait = _checks.integer("the checkpoint's patience count", meta.get("wait"), minimum=0)
        self.best_params = dict(arrays)

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
                f"restore_best={self.restore_best})")


class StepDecay:
    """Learning-rate multiplier ``gamma ** (epoch // every)``: divide by 1/gamma every ``every`` epochs."""

    def __init__(self, every: int, gamma: float = 0.1) -> None:
        self.every = _checks.integer("every", every, minimum=1)
        self.gamma = _checks.real("gamma", gamma, minimum=0.0, strict=True)

    def __call__(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.every)

    def __repr__(self) -> str:
        return f"StepDecay(every={self.every}, gamma={self.gamma})"


class ExponentialDecay:
    """Learning-rate multiplier ``gamma ** epoch``."""

    def __init__(self, gamma: float) -> None:
        self.gamma = _checks.real("gamma", gamma, minimum=0.0, strict=True)

    def __call__(self, epoch: int) -> float:
        return self.gamma**epoch

    def __repr__(self) -> str:
        return f"ExponentialDecay(gamma={self.gamma})"


class CosineDecay:
    """Learning-rate multiplier falling from 1 to ``floor`` over ``epochs`` epochs along half a
    cosine (Loshchilov & Hutter, 2017, without restarts), then staying at ``floor``."""

    def __init__(self, epochs: int, floor: float = 0.0) -> None:
        self.epochs = _checks.integer("epochs", epochs, minimum=1)
        self.floor = _checks.real("floor", floor, minimum=0.0)

    def __call__(self, epoch: int) -> float:
        frac = min(epoch, self.epochs) / self.epochs
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def __repr__(self) -> str:
        return f"CosineDecay(epochs={self.epochs}, floor={self.floor})"


def _learning_rate(schedule: Schedule | None, epoch: int, base: float) -> float:
    """The learning rate of ``epoch``: ``base`` times the schedule's multiplier, which must be a
    positive finite number (refused at the epoch it goes wrong, before any step uses it)."""
    if schedule is None:
        return base
    factor = schedule(epoch)
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.floating, np.integer)):
        raise TypeError(f"lr_schedule({epoch}) returned {factor!r}; it must return a number (a multiplier of lr)")
    lr = base * float(factor)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr_schedule({epoch}) returned {factor!r}: the learning rate must stay positive and finite")
    return lr


def clip_gradients(grads: dict[str, np.ndarray], clip_norm: float | None = None,
                   clip_value: float | None = None) -> dict[str, np.ndarray]:
    """Gradients clipped elementwise to [-clip_value, clip_value], then scaled down so that
    their global L2 norm (over every parameter) is at most ``clip_norm`` (Pascanu et al.,
    2013). Returns new arrays; a non-finite norm is refused."""
    if clip_value is not None:
        grads = {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}
    if clip_norm is not None:
        norm = math.sqrt(math.fsum(float(np.linalg.norm(np.ravel(g))) ** 2 for g in grads.values()))
        if not math.isfinite(norm):
            raise NonFiniteError("a gradient is NaN or inf; nothing was changed")
        if norm > clip_norm:
            scale = clip_norm / norm
            grads = {k: g * np.asarray(scale, dtype=np.asarray(g).dtype) for k, g in grads.items()}
    return grads


# ---- the loop --------------------------------------------------------------------------------

#: Keyword arguments every ``fit`` accepts besides its own (see :func:`fit_model`).
OPTIONS = ("validation_data", "validation_split", "callbacks", "early_stopping", "lr_schedule", "clip_norm",
           "clip_value", "checkpoint", "checkpoint_every", "resume", "return_history")

OPTIONS_DOC = """
        epochs : int
            Passes over the data (the total, when resuming).
        batch_size : int
            Samples per optimiser step.
        lr : float
            Learning rate of an optimiser given by name.
        optimizer : {"adam", "sgd"} or a :mod:`neurodyn.optim` optimiser
        seed : int, numpy.random.Generator or None
            Shuffling and the fit's other randomness (dropout, Poisson input, Langevin noise).
            None: drawn from the model's own ``seed``, so a seeded model fits reproducibly.
        verbose : bool
            A progress bar over the epochs (tqdm, when installed).
        validation_data : tuple, optional
            Held-out data in the form ``fit`` takes (``(x, y)``; with the extra per-sample
            arrays of the model, e.g. ``(x, y, timespans)``). Its loss is recorded each epoch as
            ``history_["val_loss"]`` (no dropout, no parameter change).
        validation_split : float in (0, 1), optional
            Hold out this fraction of the samples (the last ones, before shuffling) instead.
        callbacks : list of Callback or callable, optional
            :class:`neurodyn.training.Callback` objects, or callables ``f(epoch, logs)`` run
            after each epoch (returning True stops training).
        early_stopping : int or EarlyStopping, optional
            Stop when the validation loss (else the training loss) has not improved for this
            many epochs, and keep the best epoch's parameters.
        lr_schedule : callable, optional
            ``f(epoch) -> multiplier`` of ``lr`` for each epoch (``StepDecay``,
            ``ExponentialDecay``, ``CosineDecay`` in :mod:`neurodyn.training`).
        clip_norm, clip_value : float, optional
            Scale the gradients to a global L2 norm of at most ``clip_norm``; clip each entry to
            [-clip_value, clip_value].
        checkpoint : str or os.PathLike, optional
            Write the model, the optimiser's state, the random state and the history there every
            ``checkpoint_every`` epochs (default 1; atomically replaced). ``nd.load`` reads it as
            a model.
        resume : str, os.PathLike or True, optional
            Continue a fit from a checkpoint (True: from ``checkpoint`` if that file exists):
            the result equals an uninterrupted fit bit for bit.
        return_history : bool, default False
            Return the history dict instead of the model.

        Returns
        -------
        self
            The model, with the history (``loss`` per epoch, ``batch_loss``, ``lr`` and ``time``
            per epoch, and ``val_loss`` with validation data) in ``history_``; the history
            itself with ``return_history=True``. Each step is atomic: after Ctrl-C the model
            and its optimiser are as they were after the last completed step.
"""


def with_options_doc(fit: _F) -> _F:
    """Append :data:`OPTIONS_DOC` to a ``fit`` docstring (one text for every model): the docstring
    ends inside its Parameters section, after the model's own arguments."""
    fit.__doc__ = (fit.__doc__ or "").rstrip() + "\n" + OPTIONS_DOC.lstrip("\n")
    return fit


def split_options(owner: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against :data:`OPTIONS` (a TypeError names the unknown one)."""
    for key in options:
        if key not in OPTIONS:
            raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}")
    return options


def _callbacks(callbacks: CallbackLike | Sequence[CallbackLike] | None,
               early_stopping: int | EarlyStopping | None) -> list[Callback]:
    if callbacks is None:
        callbacks = []
    elif isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out: list[Callback] = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_EpochFunction(cb))
        else:
            raise TypeError(f"a callback must be a neurodyn.training.Callback or a callable, got {cb!r}")
    if early_stopping is not None:
        out.append(early_stopping if isinstance(early_stopping, EarlyStopping)
                   else EarlyStopping(patience=early_stopping))
    return out


def _rng_state(rng: np.random.Generator) -> dict:
    """The generator's state as JSON (arrays as lists with their dtype)."""
    def enc(v):
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return {"__array__": v.tolist(), "dtype": v.dtype.str}
        return int(v) if isinstance(v, np.integer) else v
    return enc(rng.bit_generator.state)


def _rng_from_state(state) -> np.random.Generator:
    def dec(v):
        if isinstance(v, dict):
            if "__array__" in v:
                return np.asarray(v["__array__"], dtype=np.dtype(v["dtype"]))
            return {k: dec(x) for k, x in v.items()}
        return v
    if not isinstance(state, dict) or state.get("bit_generator") not in ("PCG64", "PCG64DXSM", "MT19937", "Philox",
                                                                           "SFC64"):
        raise ValueError("the checkpoint's random state is malformed")
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = dec(state)
    return np.random.Generator(bit_generator)


def _stateful(cb) -> bool:
    return type(cb).get_state is not Callback.get_state


def _match_callbacks(callbacks, saved) -> list:
    """(callback, index in the checkpoint, its saved state) for every callback that keeps
    state, matched to the checkpoint's entries class by class in order; stateless callbacks
    may come and go."""
    if not isinstance(saved, list) or not all(isinstance(e, dict) and isinstance(e.get("state"), dict)
                                              for e in saved):
        raise ValueError("its callback states are malformed")
    pairs, used = [], set()
    for cb in filter(_stateful, callbacks):
        name = type(cb).__name__
        i = next((i for i, e in enumerate(saved) if i not in used and e.get("class") == name), None)
        if i is None:
            raise ValueError(f"it was written without the {name} callback this fit has")
        used.add(i)
        pairs.append((cb, i, saved[i]["state"]))
    left = [saved[i].get("class") for i in range(len(saved)) if i not in used]
    if left:
        raise ValueError(f"it was written with callbacks this fit does not have: {left}")
    return pairs


class _Checkpoint:
    """Writing and reading the training section of a checkpoint."""

    VERSION = 1

    def __init__(self, path, every):
        self.path = None if path is None else os.fspath(path)
        self.every = _checks.integer("checkpoint_every", every, minimum=1)

    def write(self, state: FitState, rng, callbacks, extra: dict, base_lr: float, n_samples: int,
              batch_size: int) -> None:
        from . import io

        opt_meta, opt_arrays = state.optimizer.state()
        arrays = {f"opt:{k}": v for k, v in opt_arrays.items()}
        arrays.update({f"train:extra:{k}": v for k, v in extra.items()})
        cb_meta: list[dict[str, Any]] = []
        for cb in filter(_stateful, callbacks):
            meta, cb_arrays = cb.get_state()
            arrays.update({f"train:cb{len(cb_meta)}:{k}": v for k, v in cb_arrays.items()})
            cb_meta.append({"class": type(cb).__name__, "state": meta})
        info = {"version": self.VERSION, "epoch": state.epoch, "step": state.step, "stop": state.stop,
                "n_samples": n_samples, "batch_size": batch_size, "base_lr": base_lr, "rng": _rng_state(rng),
                "optimizer": opt_meta, "callbacks": cb_meta, "extra": sorted(extra),
                "history": {k: v for k, v in state.history.items()}}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            io.save(state.model, tmp, training=(info, arrays))
            os.replace(tmp, self.path)  # atomic: an interrupted write leaves the last checkpoint whole
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @staticmethod
    def read(path, state: FitState, callbacks, extra: dict, n_samples: int, batch_size: int):
        """Everything a resumed fit needs, read and checked before anything changes. Returns
        ``(install, install_callbacks, rng, base_lr)``: ``install()`` writes the parameters,
        optimiser, extra state and history (run it with Ctrl-C held back), ``install_callbacks()``
        restores the callbacks' state after their ``on_train_begin``, ``rng`` is the generator
        to continue with and ``base_lr`` the learning rate the schedule multiplies."""
        from . import io

        model, params = state.model, state.model.params
        slots = state.optimizer.SLOTS

        def expected(key):
            kind, _, rest = key.partition(":")
            if kind == "opt":
                slot, _, name = rest.partition(":")
                if slot not in slots:
                    raise ValueError(f"cannot resume from {os.fspath(path)!r}: it holds the moment {slot!r} of "
                                     f"another optimiser than this fit's {type(state.optimizer).__name__}")
                return (params[name].shape, params[name].dtype) if name in params else None
            sub, _, name = rest.partition(":")
            if sub == "extra":
                return (extra[name].shape, extra[name].dtype) if name in extra else None
            if sub.startswith("cb") and name in params:
                return params[name].shape, params[name].dtype
            return None

        saved, info, arrays = io.read_checkpoint(path, model, expected)
        try:
            if info.get("version") != _Checkpoint.VERSION:
                raise ValueError(f"training section version {info.get('version')!r}")
            if info.get("n_samples") != n_samples or info.get("batch_size") != batch_size:
                raise ValueError(f"it was written for {info.get('n_samples')} samples in batches of "
                                 f"{info.get('batch_size')}, this fit has {n_samples} in batches of {batch_size}")
            if sorted(extra) != info.get("extra") or any(f"train:extra:{k}" not in arrays for k in extra):
                raise ValueError("its training state does not match this model's fit")
            epoch = _checks.integer("epoch", info.get("epoch"), minimum=0)
            step = _checks.integer("step", info.get("step"), minimum=0)
            base_lr = _checks.real("base_lr", info.get("base_lr"), minimum=0.0, strict=True)
            history = info.get("history")
            if (not isinstance(history, dict) or set(history) != set(state.history)
                    or not all(isinstance(v, list) for v in history.values())):
                raise ValueError("its history does not match this fit's (validation data on one side only?)")
            if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for v in history.values() for e in v):
                raise ValueError("its history holds entries that are not numbers")
            rng = _rng_from_state(info.get("rng"))
            pairs = _match_callbacks(callbacks, info.get("callbacks"))
            optimizer = copy.copy(state.optimizer)  # restored aside, installed with the rest
            optimizer.restore(info.get("optimizer") or {}, {k[4:]: v for k, v in arrays.items()
                                                             if k.startswith("opt:")}, params)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise ValueError(f"cannot resume from {os.fspath(path)!r}: {err}") from err

        def install():
            for name, value in saved.items():
                np.copyto(params[name], value)
            state.optimizer.__dict__.update(optimizer.__dict__)
            for key in extra:
                np.copyto(extra[key], arrays[f"train:extra:{key}"])
            for key, values in history.items():
                state.history[key][:] = values
            state.epoch, state.step, state.stop = epoch, step, bool(info.get("stop"))
            state.logs = {k: v[-1] for k, v in history.items() if k != "batch_loss" and v}

        def install_callbacks():
            for cb, i, meta in pairs:
                prefix = f"train:cb{i}:"
                cb.set_state(meta, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})

        return install, install_callbacks, rng, base_lr


@_guarded
def fit_loop(step: Callable[[np.ndarray, np.random.Generator], tuple[float, dict[str, np.ndarray],
                                                                      Callable[[], None] | None]],
             n_samples: int, *, model: Model, optimizer: Optimizer, rng: np.random.Generator, epochs: int,
             batch_size: int, verbose: bool, desc: str, evaluate: Callable[[], dict[str, float]] | None = None,
             extra_state: dict[str, np.ndarray] | None = None,
             callbacks: CallbackLike | Sequence[CallbackLike] | None = None,
             early_stopping: int | EarlyStopping | None = None, lr_schedule: Schedule | None = None,
             clip_norm: float | None = None, clip_value: float | None = None,
             checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
             resume: str | os.PathLike[str] | bool | None = None) -> History:
    """Run ``epochs`` passes of shuffled minibatches, each step atomic.

    ``step(indices, rng) -> (loss, grads, on_commit)`` computes the loss and gradients of one
    minibatch without modifying the model (it may draw from ``rng``); ``on_commit`` (or None)
    writes whatever else the step changes (arrays listed in ``extra_state``, so that a
    checkpoint holds them). The optimiser's update of ``model.params``, ``on_commit`` and the
    history entry are written together with Ctrl-C held back, so an interrupt leaves the model
    and the optimiser as they were after the last completed step. ``evaluate() -> {name: value}``
    gives the validation entries of each epoch. The other keywords are the training options of
    :data:`OPTIONS_DOC`. Returns the history, also set as ``model.history_``.
    """
    epochs = _checks.integer("epochs", epochs, minimum=1)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    if n_samples < 1:
        raise ValueError("fit needs at least one sample")
    if lr_schedule is not None and not callable(lr_schedule):
        raise TypeError(f"lr_schedule must be callable (epoch -> multiplier of lr), got {lr_schedule!r}")
    clip_norm = None if clip_norm is None else _checks.real("clip_norm", clip_norm, minimum=0.0, strict=True)
    clip_value = None if clip_value is None else _checks.real("clip_value", clip_value, minimum=0.0, strict=True)
    callbacks = _callbacks(callbacks, early_stopping)
    ckpt = _Checkpoint(checkpoint, checkpoint_every)
    extra = dict(extra_state or {})
    history: History = {"loss": [], "batch_loss": [], "lr": [], "time": []}
    if evaluate is not None:
        history["val_loss"] = []
    state = FitState(model, optimizer, history)
    base_lr = optimizer.lr
    source = ckpt.path if resume is True else (None if resume is None or resume is False else os.fspath(resume))
    if resume is True and ckpt.path is None:
        raise ValueError("resume=True continues from checkpoint=..., which is not given")
    restored = None
    if source is not None and (resume is not True or os.path.exists(source)):
        if not os.path.exists(source):
            raise FileNotFoundError(f"no checkpoint at {source!r}")
        restored = _Checkpoint.read(source, state, callbacks, extra, n_samples, batch_size)
        with deferred_interrupts():
            restored[0]()
        rng, base_lr = restored[2], restored[3]
    model.history_ = history
    for cb in callbacks:
        cb.on_train_begin(state)
    if restored is not None:
        restored[1]()

    n_batches = math.ceil(n_samples / batch_size)
    bar = progress(range(state.epoch, epochs), epochs - state.epoch, desc, verbose)
    try:
        for epoch in bar:
            if state.stop:
                break
            optimizer.lr = lr = _learning_rate(lr_schedule, epoch, base_lr)
            start = time.perf_counter()
            order = rng.permutation(n_samples)
            total = 0.0
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                value, grads, on_commit = step(idx, rng)
                loss = float(value)
                if not math.isfinite(loss):
                    raise NonFiniteError(f"the training loss became {loss}; lower the learning rate")
                if clip_norm is not None or clip_value is not None:
                    grads = clip_gradients(grads, clip_norm, clip_value)
                update = optimizer.prepare(model.params, grads)
                with deferred_interrupts():
                    optimizer.commit(model.params, update)
                    if on_commit is not None:
                        on_commit()
                    history["batch_loss"].append(loss)
                    state.step += 1
                total += loss * idx.size
                for cb in callbacks:
                    cb.on_batch_end(state)
            logs = {"loss": total / n_samples, "lr": lr}
            if evaluate is not None:
                logs.update(evaluate())
            logs["time"] = time.perf_counter() - start
            with deferred_interrupts():
                for key, value in logs.items():
                    history[key].append(value)
                state.epoch, state.logs = epoch + 1, logs
            for cb in callbacks:
                cb.on_epoch_end(state)
            if ckpt.path is not None and (state.epoch % ckpt.every == 0 or state.epoch == epochs or state.stop):
                ckpt.write(state, rng, callbacks, extra, base_lr, n_samples, batch_size)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k.endswith("loss")})
    finally:
        optimizer.lr = base_lr
    for cb in callbacks:
        cb.on_train_end(state)
    return history


def matching_targets(n_samples: int, y: ArrayLike, name: str = "y", axis: int = 0,
                     unit: str = "samples") -> np.ndarray:
    """y as an array whose ``axis`` holds one entry per sample (or sequence)."""
    arr = np.asarray(y)
    if arr.ndim <= axis or arr.shape[axis] != n_samples:
        raise ValueError(f"x has {n_samples} {unit} but {name} has shape {arr.shape}")
    return arr


def training_generator(model: Model, seed: int | np.random.Generator | None) -> np.random.Generator:
    """The generator of a fit: from ``seed`` when given, else from the model's own ``seed``
    (the one that initialised it: an int gives the same shuffles every fit, a Generator goes
    on drawing, None is fresh entropy)."""
    from . import nn

    if seed is not None:
        return nn.as_generator(seed)
    own = getattr(model, "_init_args", {}).get("seed")
    if isinstance(own, np.random.Generator):
        return own
    if own is None:
        return np.random.default_rng()
    nn.as_generator(own)  # the seed's own checks
    # a stream of its own, independent of the one that drew the initial parameters
    return np.random.default_rng(np.random.SeedSequence(int(own), spawn_key=(1,)))


def _take(arrays: Data, idx: np.ndarray) -> list[Any]:
    return [a if axis is None else np.take(a, idx, axis=axis) for a, axis in arrays]


def fit_model(model: Model, data: Data, batch_loss: Callable[[list[Any], np.random.Generator], tuple[float, Any]], *,
              eval_loss: Callable[[list[Any]], float] | None = None, prepare: Callable[..., Data] | None = None,
              epochs: int, batch_size: int, lr: float, optimizer: str | Optimizer,
              seed: int | np.random.Generator | None, verbose: bool,
              validation_data: Sequence[ArrayLike] | None = None, validation_split: float | None = None,
              return_history: bool = False, **options: Any) -> Any:
    """Minibatch training of ``model.params`` with an optimiser from ``neurodyn.optim``.

    ``data`` lists the per-sample arrays as ``(array, axis)`` (axis None: the same for every
    batch); ``batch_loss(arrays, rng) -> (loss, grads)`` evaluates one minibatch of them, ``rng``
    being the training generator (for dropout or encoding noise). ``eval_loss(arrays) -> loss``
    (forward only) and ``prepare(*validation_data) -> data`` serve the validation data. Returns
    the model, or the history with ``return_history``; the history is ``model.history_``.
    """
    from . import optim

    opt = optim.make(optimizer, lr)
    rng = training_generator(model, seed)
    n = next(a.shape[axis] for a, axis in data if axis is not None)
    val: Data | None = None
    if validation_split is not None:
        if validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        frac = _checks.real("validation_split", validation_split, minimum=0.0, strict=True)
        cut = int(n * (1.0 - frac)) if frac < 1 else 0
        if not 0 < cut < n:
            raise ValueError(f"validation_split={validation_split} leaves no training or no validation sample "
                             f"of {n}")
        index = np.arange(n)
        val = [(a, axis) if axis is None else (np.take(a, index[cut:], axis=axis), axis) for a, axis in data]
        data = [(a, axis) if axis is None else (np.take(a, index[:cut], axis=axis), axis) for a, axis in data]
        n = cut
    elif validation_data is not None:
        if prepare is None or eval_loss is None:
            raise ValueError(f"{type(model).__name__}.fit has no validation loss")
        if not isinstance(validation_data, (tuple, list)):
            raise TypeError("validation_data must be a tuple (x, y, ...) in the form fit takes")
        val = prepare(*validation_data)
    evaluate = None
    if val is not None:
        if eval_loss is None:
            raise ValueError(f"{type(model).__name__}.fit has no validation loss")
        evaluate = _validation(val, eval_loss, batch_size)

    def step(idx: np.ndarray, rng: np.random.Generator) -> tuple[float, Any, None]:
        value, grads = batch_loss(_take(data, idx), rng)
        return value, grads, None

    history = fit_loop(step, n, model=model, optimizer=opt, rng=rng, epochs=epochs, batch_size=batch_size,
                       verbose=verbose, desc=f"{type(model).__name__}.fit", evaluate=evaluate, **options)
    return history if return_history else model


def _validation(data: Data, eval_loss: Callable[[list[Any]], float],
                batch_size: int) -> Callable[[], dict[str, float]]:
    """evaluate() -> {"val_loss": mean loss over the validation samples}, in batches."""
    n = next(a.shape[axis] for a, axis in data if axis is not None)

    def evaluate() -> dict[str, float]:
        total = 0.0
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            total += float(eval_loss(_take(data, idx))) * idx.size
        return {"val_loss": total / n}

    return evaluate
