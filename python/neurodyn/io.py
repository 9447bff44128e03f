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
    from .neural_ode import NeuralODE

    return {"NeuralODE": NeuralODE}


def save(model, path) -> None:
    """Write ``model`` to ``path`` (``.npz`` is appended by NumPy when missing)."""
    meta = {"format": _FORMAT, "version": _VERSION, "class": type(model).__name__, "config": model.config,
            "params": list(model.params)}
    arrays = {f"param:{name}": value for name, value in model.params.items()}
    arrays[_CONFIG_KEY] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def load(path):
    """Read a model written by ``model.save(path)``.

    Raises
    ------
    ValueError
        The file is not a neurodyn model, is truncated, or its contents do not match its
        configuration.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if _CONFIG_KEY not in data.files:
                raise ValueError(f"{path!r} is not a neurodyn model file (no configuration entry)")
            meta = json.loads(str(data[_CONFIG_KEY][()]))
            params = {name: data[f"param:{name}"] for name in meta.get("params", [])}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read a neurodyn model from {path!r}: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
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
        model = cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path!r} has an invalid configuration: {err}") from err
    model._set_params(params)
    return model
