"""Saving and loading models: one .npz holding every parameter and a JSON configuration.

The file format holds plain arrays and text only; loading never unpickles anything, so a
tampered file can fail to load but cannot run code.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

_FORMAT = "neurodyn-model"
_VERSION = 1
_CONFIG_KEY = "__neurodyn_config__"


def _registry():
    from .ann2snn import ANN
    from .ebm import EBM
    from .hopfield import AssociativeMemory, Hopfield
    from .liquid import CfC, Liquid, LTCCell
    from .neural_ode import NeuralODE
    from .snn import SNN

    return {"NeuralODE": NeuralODE, "Liquid": Liquid, "LTCCell": LTCCell, "CfC": CfC, "SNN": SNN, "ANN": ANN,
            "Hopfield": Hopfield, "AssociativeMemory": AssociativeMemory, "EBM": EBM}


def save(model, path) -> None:
    """Write ``model`` to exactly ``path`` (no suffix is added)."""
    meta = {"format": _FORMAT, "version": _VERSION, "class": type(model).__name__, "config": model.config,
            "params": list(model.params)}
    arrays = {f"param:{name}": value for name, value in model.params.items()}
    arrays[_CONFIG_KEY] = np.array(json.dumps(meta))
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


def _read(path):
    """(meta, params) from the file, or ValueError: only arrays and JSON text are read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError(f"{path!r} is not a neurodyn model file (not an .npz archive)")
            if _CONFIG_KEY not in data.files:
                raise ValueError(f"{path!r} is not a neurodyn model file (no configuration entry)")
            meta = json.loads(str(data[_CONFIG_KEY][()]))
            names = meta.get("params") if isinstance(meta, dict) else None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"{path!r} has a malformed configuration (parameter list)")
            params = {name: data[f"param:{name}"] for name in names}
    except AttributeError as err:
        # np.load of a plain .npy returns an array, which is not a context manager.
        raise ValueError(f"{path!r} is not a neurodyn model file: {err}") from err
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, json.JSONDecodeError, UnicodeDecodeError,
            TypeError) as err:
        raise ValueError(f"cannot read a neurodyn model from {path!r}: {err}") from err
    return meta, params


def load(path):
    """Read a model written by ``model.save(path)``.

    The configuration is validated and every stored array is checked against the shapes it
    implies before the model is assembled; nothing in the file is executed.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file written by ``save``.

    Raises
    ------
    ValueError
        The file is not a neurodyn model, is truncated or damaged, or its contents do not
        match its configuration.
    """
    path = os.fspath(path)
    meta, params = _read(path)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not a neurodyn model file")
    if meta.get("version") != _VERSION:
        raise ValueError(f"{path!r} has format version {meta.get('version')!r}; this neurodyn reads {_VERSION}")
    cls = _registry().get(meta.get("class"))
    if cls is None:
        raise ValueError(f"{path!r} holds an unknown model class {meta.get('class')!r}")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path!r} has a malformed configuration")
    try:
        return cls._from_saved(config, params)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{path!r} has an invalid configuration or parameters: {err}") from err
