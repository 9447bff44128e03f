"""The minibatch training loop shared by every model's ``fit``."""
from __future__ import annotations

import math
import time

import numpy as np

from . import _checks


def progress(iterable, total: int, desc: str, verbose: bool):
    """tqdm over ``iterable`` when installed and ``verbose``; the iterable itself otherwise."""
    if not verbose:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


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
