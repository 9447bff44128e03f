"""Spike encoders: turn analog inputs into spike trains of shape (T,) + x.shape, in C."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks, _core
from ._typing import Seed
from .nn import as_generator


def seed_key(seed: Seed) -> int:
    """A 63-bit key for the counter-based generator from an int or a numpy Generator (drawn
    from it, so a Generator moves on as with any other use)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    return int(as_generator(seed).integers(0, 2**63)) if seed is None else _checks.integer("seed", seed, minimum=0)


def poisson(x: ArrayLike, num_timesteps: int, seed: Seed = None) -> np.ndarray:
    """Bernoulli spikes: at every step, element i fires with probability clip(x_i, 0, 1).

    Parameters
    ----------
    x : array_like
        Intensities, typically in [0, 1].
    num_timesteps : int
    seed : int or numpy.random.Generator, optional
        The same seed gives the same spikes whatever the thread count (counter-based RNG).

    Returns
    -------
    ndarray, shape (num_timesteps,) + x.shape, of 0.0 and 1.0

    Examples
    --------
    >>> import neurodyn as nd
    >>> s = nd.encode.poisson([0.0, 1.0], 5, seed=0)
    >>> s.sum(axis=0).tolist()
    [0.0, 5.0]
    """
    return _core.encode(x, num_timesteps, "poisson", seed_key(seed))


def latency(x: ArrayLike, num_timesteps: int) -> np.ndarray:
    """One spike per element, earlier for larger inputs: at step round((1 - x)(T - 1)) for x
    in (0, 1] (clipped to 1), none for x <= 0.

    Parameters
    ----------
    x : array_like
        Intensities, any shape.
    num_timesteps : int
        T, the number of steps.

    Returns
    -------
    ndarray, shape (num_timesteps,) + x.shape

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.encode.latency([1.0, 0.5, 0.0], 5).argmax(axis=0).tolist()
    [0, 2, 0]
    """
    return _core.encode(x, num_timesteps, "latency")


def constant(x: ArrayLike, num_timesteps: int) -> np.ndarray:
    """The analog input itself at every step (Edifice's choice).

    Parameters
    ----------
    x : array_like
        The input, any shape.
    num_timesteps : int
        T, the number of steps.

    Returns
    -------
    ndarray, shape (T,) + x.shape
        float32 for float16/float32 input, float64 otherwise.
    """
    return _core.encode(x, num_timesteps, "constant")
