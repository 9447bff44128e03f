"""The minibatch training loop shared by every model's ``fit``."""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from . import _checks

BAR_DELAY = 1.0  # seconds a kernel call runs before its progress bar appears


def _tqdm():
    """The tqdm class (its notebook flavour in Jupyter), or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress(iterable, total: int, desc: str, verbose: bool):
    """tqdm over ``iterable`` when installed and ``verbose``; the iterable itself otherwise."""
    tqdm = _tqdm() if verbose else None
    return iterable if tqdm is None else tqdm(iterable, total=total, desc=desc, leave=False)


class _KernelBar:
    """The ``progress(done)`` callable a long C kernel calls about 20 times a second.

    The bar appears only once the call has run ``delay`` seconds, so the many short calls of
    a typical session print nothing and do not pay for importing tqdm.
    """

    def __init__(self, desc: str, delay: float):
        self.desc, self.delay, self.start, self.bar = desc, delay, time.perf_counter(), None

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
def kernel_progress(desc: str, verbose: bool):
    """A ``progress`` callable for a C kernel (None when not ``verbose``), closed on exit."""
    if not verbose:
        yield None
        return
    bar = _KernelBar(desc, BAR_DELAY)
    try:
        yield bar
    finally:
        bar.close()


def fit_loop(step, n_samples: int, *, epochs: int, batch_size: int, rng: np.random.Generator,
             verbose: bool, desc: str) -> dict:
    """Run ``epochs`` passes of shuffled minibatches.

    ``step(indices) -> loss`` computes the loss and gradients of one minibatch and updates the
    parameters. Returns the history: ``loss`` (mean minibatch loss of each epoch, weighted by
    batch size), ``batch_loss`` (every minibatch) and ``time`` (seconds per epoch).
    """
    epochs = _checks.integer("epochs", epochs, minimum=1)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    if n_samples < 1:
        raise ValueError("fit needs at least one sample")
    history = {"loss": [], "batch_loss": [], "time": []}
    n_batches = math.ceil(n_samples / batch_size)
    bar = progress(range(epochs), epochs, desc, verbose)
    for _ in bar:
        start = time.perf_counter()
        order = rng.permutation(n_samples)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss = float(step(idx))
            if not math.isfinite(loss):
                raise FloatingPointError(f"the training loss became {loss}; lower the learning rate")
            history["batch_loss"].append(loss)
            total += loss * idx.size
        history["loss"].append(total / n_samples)
        history["time"].append(time.perf_counter() - start)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history['loss'][-1]:.4g}")
    return history


def matching_targets(n_samples: int, y, name: str = "y", axis: int = 0, unit: str = "samples") -> np.ndarray:
    """y as an array whose ``axis`` holds one entry per sample (or sequence)."""
    arr = np.asarray(y)
    if arr.ndim <= axis or arr.shape[axis] != n_samples:
        raise ValueError(f"x has {n_samples} {unit} but {name} has shape {arr.shape}")
    return arr


def fit_supervised(model, n_samples: int, loss_and_grad, *, epochs, batch_size, lr, optimizer, seed,
                   verbose) -> dict:
    """Minibatch training of ``model.params`` with an optimiser from ``neurodyn.optim``.

    ``loss_and_grad(indices, rng) -> (loss, grads)`` evaluates one minibatch; ``rng`` is the
    training generator (for dropout or encoding noise), seeded from ``seed``."""
    from . import nn, optim  # here, not at import: nn and optim stay free of training code

    opt = optim.make(optimizer, lr)
    rng = nn.as_generator(seed)

    def step(idx):
        value, grads = loss_and_grad(idx, rng)
        opt.step(model.params, grads)
        return value

    return fit_loop(step, n_samples, epochs=epochs, batch_size=batch_size, rng=rng, verbose=verbose,
                    desc=f"{type(model).__name__}.fit")
