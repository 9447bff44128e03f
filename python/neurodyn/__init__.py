"""neurodyn: neural models that compute by dynamics, with a C core.

Functions take and return NumPy arrays (float32 or float64, following the input).

ODE integration
    :func:`odeint`, :mod:`neurodyn.fields`, :class:`IntegrationError`
Stochastic differential equations
    :func:`sdeint`, built-in diffusions in :mod:`neurodyn.sde`
Neural ODE
    :class:`NeuralODE`; building blocks in :mod:`neurodyn.nn` and :mod:`neurodyn.optim`;
    :func:`load` for saved models and checkpoints
Training
    every model's ``fit`` (the loop, callbacks, schedules and checkpoints of
    :mod:`neurodyn.training`); models are scikit-learn estimators
Liquid time-constant networks
    :class:`Liquid`, :func:`solve_ltc`, :func:`ltc_scan`, :class:`LTCCell`, :class:`CfC`
Hopfield memories
    :func:`hopfield_retrieve`, :func:`hopfield_energy`, :func:`hopfield_separation`,
    :class:`Hopfield`, :class:`AssociativeMemory`, :class:`ClassicalHopfield`
Energy-based models
    :class:`EBM`, :func:`langevin_sample`, :func:`contrastive_divergence_loss`,
    :mod:`neurodyn.energies`
Associative memories as dynamical systems
    :class:`FiringRateMemory`, :class:`IDPHopfield`, :class:`SequentialHopfield`,
    :mod:`neurodyn.memories`
Stable system identification
    :class:`HybridEBM`; target systems in :mod:`neurodyn.hybrid`
Spiking networks
    :func:`lif_run`, :func:`lif_rate`, :func:`lif_step`, :func:`if_neuron`, :func:`rate_decode`,
    :mod:`neurodyn.encode`, :class:`SNN`, :class:`ANN`, :func:`ann2snn`
Chaotic dynamics
    :func:`lyapunov_spectrum`, :func:`lyapunov_spectrum_map`, :func:`kaplan_yorke_dimension`,
    :mod:`neurodyn.chaos`; the catalogue of chaotic flows in :mod:`neurodyn.fields`
Reconstruction of chaotic systems
    :func:`valid_prediction_time`, :func:`state_space_divergence`,
    :func:`power_spectrum_distance` (:mod:`neurodyn.reconstruction`); teacher forcing in
    :meth:`NeuralODE.fit`
Interoperability
    :mod:`neurodyn.torch` (PyTorch autograd functions and modules, imported when asked),
    :func:`from_nir` and ``to_nir`` (NIR graphs), ``from_ncps`` / ``to_ncps`` and
    ``from_snntorch`` / ``to_snntorch`` (peer libraries' weights), in :mod:`neurodyn.interop`;
    ``save("model.safetensors")`` (safetensors files)
"""
from . import _core, chaos, encode, energies, fields, hybrid, memories, nn, optim, reconstruction, sde, training
from .ann2snn import ANN, ConvertedSNN, ann2snn
from .chaos import kaplan_yorke_dimension, lyapunov_spectrum, lyapunov_spectrum_map
from .ebm import EBM, contrastive_divergence_loss, langevin_sample
from .hybrid import HybridEBM
from .hopfield import (AssociativeMemory, ClassicalHopfield, Hopfield, hopfield_energy, hopfield_retrieve,
                       hopfield_separation)
from .interop import from_nir
from .io import load
from .liquid import CfC, Liquid, LTCCell, ltc_scan, solve_ltc
from .memories import FiringRateMemory, IDPHopfield, SequentialHopfield
from .neural_ode import NeuralODE
from .ode import IntegrationError, odeint
from .sde import sdeint
from .reconstruction import power_spectrum_distance, state_space_divergence, valid_prediction_time
from .snn import SNN, if_neuron, lif_backward, lif_rate, lif_run, lif_step, rate_decode

__version__ = "0.1.0"


def __getattr__(name):
    # neurodyn.dask needs dask and neurodyn.torch needs torch, which ``import neurodyn`` does
    # not: load them on first use.
    if name in ("dask", "torch"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ANN",
    "ann2snn",
    "AssociativeMemory",
    "CfC",
    "chaos",
    "ClassicalHopfield",
    "contrastive_divergence_loss",
    "ConvertedSNN",
    "EBM",
    "encode",
    "energies",
    "fields",
    "FiringRateMemory",
    "from_nir",
    "get_num_threads",
    "Hopfield",
    "hopfield_energy",
    "hopfield_retrieve",
    "hopfield_separation",
    "hybrid",
    "HybridEBM",
    "IDPHopfield",
    "if_neuron",
    "IntegrationError",
    "kaplan_yorke_dimension",
    "langevin_sample",
    "lif_backward",
    "lif_rate",
    "lif_run",
    "lif_step",
    "Liquid",
    "load",
    "ltc_scan",
    "LTCCell",
    "lyapunov_spectrum",
    "lyapunov_spectrum_map",
    "memories",
    "NeuralODE",
    "nn",
    "odeint",
    "optim",
    "power_spectrum_distance",
    "rate_decode",
    "reconstruction",
    "sde",
    "sdeint",
    "SequentialHopfield",
    "set_num_threads",
    "show_config",
    "SNN",
    "solve_ltc",
    "state_space_divergence",
    "training",
    "valid_prediction_time",
]


def _default_threads() -> None:
    """One thread unless the environment asks for more.

    neurodyn's kernels run many small matrix products inside loops over time steps, where
    threads cost more than they give on small batches (and spin against other work on a busy
    machine: 8x slower Langevin sampling was measured with two BLAS threads under load). Set
    OMP_NUM_THREADS (or OPENBLAS_NUM_THREADS), or call set_num_threads, to use more. A value
    that is not a thread count is skipped with a RuntimeWarning (import never fails over it)."""
    import os
    import warnings

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()  # OpenMP allows a list per level
        if value:
            try:
                n = int(value)
            except ValueError:
                warnings.warn(f"{var}={os.environ[var]!r} is not a thread count; neurodyn ignores it",
                              RuntimeWarning, stacklevel=3)
                continue
            if n >= 1:
                _core.set_num_threads(n)
                return
    _core.set_num_threads(1)


_default_threads()

#: glibc's thresholds set at import (see :func:`_default_malloc`), or why they were not set.
_MALLOC_TUNING: dict = {}


def _trim_threshold() -> int:
    """Freed memory the process may keep: 1/64 of the machine's memory, within 64-256 MiB."""
    import os

    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        ram = 0
    return min(max(ram // 64, 64 << 20), 256 << 20)


def _default_malloc() -> None:
    """Let arrays up to 32 MiB reuse heap memory from one call to the next.

    glibc hands freed heap memory back to the system as soon as more than 128 KiB of it lies at
    the top of the heap, and serves larger blocks from fresh pages; a model called in a loop
    then page-faults through every one of its output arrays on every call (in a fresh process
    this doubled the time of a small SNN's forward pass, and took a third of a Liquid training
    step). neurodyn therefore sets glibc's mmap threshold to 32 MiB (the ceiling glibc's own
    adaptive threshold reaches) and its trim threshold to 1/64 of the machine's memory, between
    64 and 256 MiB (:func:`_trim_threshold`). It leaves glibc alone when
    NEURODYN_MALLOC_TUNING=0, or when the user has tuned malloc already (a MALLOC_*_ variable,
    or malloc tunables in GLIBC_TUNABLES)."""
    import os

    if os.environ.get("NEURODYN_MALLOC_TUNING", "").strip() == "0":
        _MALLOC_TUNING.update(applied=False, reason="NEURODYN_MALLOC_TUNING=0")
        return
    for var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"):
        if var in os.environ:
            _MALLOC_TUNING.update(applied=False, reason=f"{var} is set")
            return
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        _MALLOC_TUNING.update(applied=False, reason="GLIBC_TUNABLES sets malloc tunables")
        return
    mmap_threshold, trim_threshold = 32 << 20, _trim_threshold()
    if _core.tune_malloc(mmap_threshold, trim_threshold):
        _MALLOC_TUNING.update(applied=True, mmap_threshold=mmap_threshold, trim_threshold=trim_threshold)
    else:
        _MALLOC_TUNING.update(applied=False, reason="mallopt refused (not glibc's malloc)")


_default_malloc()


def set_num_threads(n: int) -> None:
    """Set the number of threads neurodyn's C kernels use (their own pool of POSIX threads).

    Elementwise and row-independent work (LIF neurons, Langevin proposals, ...) is split
    over the threads, and so are large matrix products: each thread makes a one-thread
    OpenBLAS call on its block of rows. OpenBLAS's own threads are never used, so two thread
    pools never nest and a call uses at most ``n`` threads. The count applies to calls from
    every Python thread (while one call uses the pool, a concurrent one runs on its own
    thread). Results do not depend on it: the same inputs and seed give the same bits with any
    count. Threads that cannot be created (memory exhausted, the address space limited) are
    done without: the work is shared among the threads there are, with the same bits. The default is 1, or OMP_NUM_THREADS (else OPENBLAS_NUM_THREADS) at
    import.

    Parameters
    ----------
    n : int
        Threads, at least 1.

    Examples
    --------
    >>> import neurodyn as nd
    >>> before = nd.get_num_threads()
    >>> nd.set_num_threads(2); nd.get_num_threads()
    2
    >>> nd.set_num_threads(before)
    """
    from ._checks import integer

    _core.set_num_threads(integer("n", n, minimum=1))


def get_num_threads() -> int:
    """The number of threads neurodyn's C kernels use.

    Returns
    -------
    int
        The count set by :func:`set_num_threads`, or at import from OMP_NUM_THREADS (else
        OPENBLAS_NUM_THREADS), 1 by default.
    """
    return int(_core.thread_info()["kernel_threads"])


def show_config() -> dict:
    """Build facts and the thread counts in force.

    Returns
    -------
    dict
        ``blas_config`` (the OpenBLAS configuration) and ``blas_threads`` (always 1, see
        :func:`set_num_threads`), ``thread_pool`` (the kernels' own pool of POSIX threads) and
        ``kernel_threads``, ``malloc_tuning`` (the malloc thresholds set at import, see the
        README's performance notes), and the versions ``neurodyn`` and ``numpy``.
    """
    import numpy

    info = dict(_core.thread_info())
    info["malloc_tuning"] = dict(_MALLOC_TUNING)
    info["neurodyn"] = __version__
    info["numpy"] = numpy.__version__
    return info
