"""neurodyn: neural models that compute by dynamics, with a C core.

Functions take and return NumPy arrays (float32 or float64, following the input).

ODE integration
    :func:`odeint`, :func:`solve_ltc`, :mod:`neurodyn.fields`, :class:`IntegrationError`
Neural ODE
    :class:`NeuralODE`; building blocks in :mod:`neurodyn.nn` and :mod:`neurodyn.optim`;
    :func:`load` for saved models
Liquid time-constant networks
    :class:`Liquid`, :func:`ltc_scan`, :class:`LTCCell`, :class:`CfC`
Hopfield memories
    :func:`hopfield_retrieve`, :func:`hopfield_energy`, :func:`hopfield_separation`,
    :class:`Hopfield`, :class:`AssociativeMemory`, :class:`ClassicalHopfield`
Energy-based models
    :class:`EBM`, :func:`langevin_sample`, :func:`contrastive_divergence_loss`,
    :mod:`neurodyn.energies`
Spiking networks
    :func:`lif_run`, :func:`lif_step`, :func:`if_neuron`, :func:`rate_decode`,
    :mod:`neurodyn.encode`, :class:`SNN`, :class:`ANN`, :func:`ann2snn`
"""
from . import _core, encode, energies, fields, nn, optim
from .ann2snn import ANN, ConvertedSNN, ann2snn
from .ebm import EBM, contrastive_divergence_loss, langevin_sample
from .hopfield import (AssociativeMemory, ClassicalHopfield, Hopfield, hopfield_energy, hopfield_retrieve,
                       hopfield_separation)
from .io import load
from .liquid import CfC, Liquid, LTCCell, ltc_scan
from .neural_ode import NeuralODE
from .ode import IntegrationError, odeint, solve_ltc
from .snn import SNN, if_neuron, lif_backward, lif_run, lif_step, rate_decode

__version__ = "0.1.0"


def __getattr__(name):
    # neurodyn.dask needs dask, which ``import neurodyn`` does not: load it on first use.
    if name == "dask":
        import importlib

        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ANN",
    "ann2snn",
    "AssociativeMemory",
    "CfC",
    "ClassicalHopfield",
    "contrastive_divergence_loss",
    "ConvertedSNN",
    "EBM",
    "encode",
    "energies",
    "fields",
    "get_num_threads",
    "Hopfield",
    "hopfield_energy",
    "hopfield_retrieve",
    "hopfield_separation",
    "if_neuron",
    "IntegrationError",
    "langevin_sample",
    "lif_backward",
    "lif_run",
    "lif_step",
    "Liquid",
    "load",
    "ltc_scan",
    "LTCCell",
    "NeuralODE",
    "nn",
    "odeint",
    "optim",
    "rate_decode",
    "set_num_threads",
    "show_config",
    "SNN",
    "solve_ltc",
]


def _default_threads() -> None:
    """One BLAS thread unless the environment asks for more.

    neurodyn's kernels run many small matrix products inside loops over time steps, where
    OpenBLAS's threads cost more than they give (and spin against other work on a busy
    machine: 8x slower Langevin sampling was measured with two threads under load). Set
    OMP_NUM_THREADS or OPENBLAS_NUM_THREADS, or call set_num_threads, to use more."""
    import os

    if not any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")):
        _core.blas_set_num_threads(1)


_default_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads of the BLAS library (OpenBLAS) used by the kernels. The
    default is 1, or what OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say.

    Parameters
    ----------
    n : int
        Threads, at least 1.
    """
    from ._checks import integer

    _core.blas_set_num_threads(integer("n", n, minimum=1))


def get_num_threads() -> int:
    """The number of threads of the BLAS library (OpenBLAS)."""
    return int(_core.blas_info()["num_threads"])


def show_config() -> dict:
    """Build facts: the OpenBLAS configuration and thread count, and the versions."""
    import numpy

    info = dict(_core.blas_info())
    info["neurodyn"] = __version__
    info["numpy"] = numpy.__version__
    return info
