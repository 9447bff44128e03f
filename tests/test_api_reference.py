"""The API reference (docs/api/index.rst) lists every public name, so that the documentation
site documents what a user can reach: nd.NAME, the vector fields, energies and encoders, the
training callbacks and schedules, and neurodyn.dask's functions."""
import inspect
import pathlib
import re

import pytest

import neurodyn as nd

LISTED = set(re.findall(r"^   ([\w.]+)$",
                        (pathlib.Path(__file__).resolve().parents[1] / "docs" / "api" / "index.rst").read_text(),
                        flags=re.M))


def _public(module, prefix):
    return [f"{prefix}{name}" for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
            and getattr(value, "__module__", "") == module.__name__]


def _names():
    names = [n for n in nd.__all__ if not inspect.ismodule(getattr(nd, n))]
    names += _public(nd.fields, "fields.") + _public(nd.energies, "energies.")
    names += [n for n in _public(nd.hybrid, "hybrid.") if n not in ("hybrid.HybridEBM", "hybrid.TargetSystem")]
    names += [f"encode.{n}" for n in ("poisson", "latency", "constant")]
    names += [f"training.{n}" for n in ("Callback", "EarlyStopping", "FitState", "StepDecay", "ExponentialDecay",
                                        "CosineDecay", "clip_gradients")]
    try:
        import neurodyn.dask as nd_dask
    except ImportError:  # dask is optional
        pass
    else:
        names += [f"dask.{n}" for n in nd_dask.__all__]
    return sorted(names)


@pytest.mark.parametrize("name", _names())
def test_public_name_is_in_the_api_reference(name):
    assert name in LISTED, f"add {name} to docs/api/index.rst"
