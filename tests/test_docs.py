"""Documentation is part of the API: every public name is documented, and every example in a
docstring runs and prints what it says (the examples are collected and run here, against the
installed package)."""
import doctest
import importlib
import inspect

import numpy as np
import pytest

import neurodyn as nd

MODULES = ["ode", "sde", "fields", "neural_ode", "liquid", "snn", "encode", "ann2snn", "hopfield",
           "ebm", "energies", "hybrid", "optim", "nn", "io", "training", "interop", "memories", "reconstruction",
           "chaos", "_flows"]


def _public_names():
    return sorted(nd.__all__)


@pytest.mark.parametrize("name", _public_names())
def test_public_name_is_documented(name):
    obj = getattr(nd, name)
    if inspect.ismodule(obj) or not callable(obj):
        assert obj.__doc__ if inspect.ismodule(obj) else True
        return
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 40, f"nd.{name} has no useful docstring"
    try:
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.name not in ("self", "args", "kwargs")]
    except (TypeError, ValueError):
        params = []
    if params:
        assert "Parameters" in doc or "Arguments" in doc, f"nd.{name}: no Parameters section"


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    out = []
    try:  # neurodyn.dask's examples need dask, an optional dependency
        import dask.array  # noqa: F401
        modules = MODULES + ["dask"]
    except ImportError:
        modules = MODULES
    for modname in modules:
        mod = importlib.import_module(f"neurodyn.{modname}")
        for test in finder.find(mod, f"neurodyn.{modname}", globs={"np": np, "nd": nd}):
            if test.examples:
                out.append(test)
    return out


DOCTESTS = _doctests()


def test_there_are_examples():
    assert len(DOCTESTS) >= 20


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example_runs(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    np_opts = np.get_printoptions()
    np.set_printoptions(legacy=False)
    try:
        result = runner.run(test, out=lambda s: pytest.fail(s, pytrace=False))
    finally:
        np.set_printoptions(**np_opts)
    assert result.failed == 0


def test_stub_lists_every_kernel():
    """The type stub of the C extension names every function it exports, and nothing else."""
    import os
    import re

    from neurodyn import _core

    stub = os.path.join(os.path.dirname(nd.__file__), "_core.pyi")
    assert os.path.exists(os.path.join(os.path.dirname(nd.__file__), "py.typed"))
    text = open(stub).read()
    stubbed = (set(re.findall(r"^def (\w+)\(", text, flags=re.M)) | set(re.findall(r"^class (\w+)\(", text, flags=re.M))
               | set(re.findall(r"^([A-Z_]+): ", text, flags=re.M)))
    exported = {n for n in dir(_core) if not n.startswith("_")}
    assert stubbed == exported
