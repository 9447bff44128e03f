"""The type information a user's checker reads: every public callable of neurodyn is
annotated (parameters and return), and ``_core.pyi`` describes exactly the extension's entry
points. Whether the annotations agree with the code is mypy's part (``mypy``, configured in
pyproject.toml, run by .ci/run)."""
import ast
import importlib
import inspect
import pathlib
import pkgutil
import re
import types

import pytest


import neurodyn as nd

PACKAGE = pathlib.Path(nd.__file__).resolve().parent
# Methods that are part of a class's interface although their names start with "_".
PUBLIC_DUNDERS = ("__init__", "__call__")


def _public_modules():
    return ["neurodyn"] + [f"neurodyn.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)])
                           if not m.name.startswith("_")]


def _missing(fn, skip_first):
    """Names of ``fn``'s parameters (and "return") that carry no annotation."""
    fn = inspect.unwrap(fn)
    annotations = getattr(fn, "__annotations__", {})
    params = list(inspect.signature(fn).parameters.values())
    if skip_first:
        params = params[1:]
    missing = [p.name for p in params if p.name not in annotations]
    if "return" not in annotations:
        missing.append("return")
    return missing


def _from_neurodyn(obj):
    return getattr(obj, "__module__", None) is not None and obj.__module__.split(".")[0] == "neurodyn"


def _members(cls):
    """(name, function, skip_first) of the public methods and properties a class offers, its
    inherited ones included (those neurodyn defines)."""
    seen = set()
    for klass in cls.__mro__:
        for name, raw in vars(klass).items():
            if name in seen or (name.startswith("_") and name not in PUBLIC_DUNDERS):
                continue
            seen.add(name)
            if isinstance(raw, property):
                if raw.fget is not None and _from_neurodyn(raw.fget):
                    yield f"{name} (getter)", raw.fget, True
                if raw.fset is not None and _from_neurodyn(raw.fset):
                    yield f"{name} (setter)", raw.fset, True
            elif isinstance(raw, (classmethod, staticmethod)):
                if _from_neurodyn(raw.__func__):
                    yield name, raw.__func__, isinstance(raw, classmethod)
            elif isinstance(raw, types.FunctionType) and _from_neurodyn(raw):
                yield name, raw, True


def _defined_for(value, module):
    """Whether module is where value is public: defined there, or re-exported there from a
    private module of the package (the chaotic flows of neurodyn.fields live in neurodyn._flows)."""
    home = getattr(value, "__module__", None) or ""
    private = home.startswith("neurodyn._") and home != "neurodyn._core"
    return home == module.__name__ or (private and module.__name__ != "neurodyn")


def _runtime_callables(module):
    for name, value in vars(module).items():
        if name.startswith("_") or not _defined_for(value, module):
            continue
        if inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value, False
        elif inspect.isclass(value):
            for member, fn, skip in _members(value):
                yield f"{module.__name__}.{name}.{member}", fn, skip


def _static_unannotated(path):
    """The same rule read from the source, for a module whose optional dependency is missing
    here (neurodyn.torch without torch): its public functions and its public classes' methods."""
    def missing(fn, skip_first):
        a = fn.args
        params = a.posonlyargs + a.args
        if skip_first and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list):
            params = params[1:]
        params = params + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p is not None]
        out = [p.arg for p in params if p.annotation is None]
        return out + (["return"] if fn.returns is None else [])

    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node.name, missing(node, False)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef) and (not sub.name.startswith("_") or sub.name in PUBLIC_DUNDERS):
                    yield f"{node.name}.{sub.name}", missing(sub, True)


def _unannotated():
    out = {}
    for modname in _public_modules():
        try:
            module = importlib.import_module(modname)
        except ImportError:  # an optional peer (torch) is not installed: read the source
            path = PACKAGE / f"{modname.rpartition('.')[2]}.py"
            out.update({f"{modname}.{name}": m for name, m in _static_unannotated(path) if m})
            continue
        for name, fn, skip in _runtime_callables(module):
            m = _missing(fn, skip)
            if m:
                out[name] = m
    return out


def test_every_public_callable_is_annotated():
    missing = _unannotated()
    report = "\n".join(f"{name}: {', '.join(m)}" for name, m in sorted(missing.items()))
    assert len(missing) == 0, f"{len(missing)} public callables lack annotations:\n{report}"


def test_the_count_covers_the_public_api():
    # the walk above reaches what a user reaches: nd.NAME, the models' methods (inherited from
    # private bases included), properties, the submodules' functions and classes
    names = {name for modname in _public_modules() if modname != "neurodyn.torch"
             for name, _, _ in _runtime_callables(importlib.import_module(modname))}
    for expected in ("neurodyn.ode.odeint", "neurodyn.snn.SNN.fit", "neurodyn.snn.SNN.predict (getter)",
                     "neurodyn.snn.SNN.get_params", "neurodyn.liquid.CfC.__call__", "neurodyn.optim.Adam.step",
                     "neurodyn.memories.IDPHopfield.__init__", "neurodyn.training.EarlyStopping.on_epoch_end",
                     "neurodyn.nn.Model.save", "neurodyn.get_num_threads", "neurodyn.hopfield.Hopfield.fit"):
        assert expected in names, expected
    assert len(names) > 250


def _stub_names(path):
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_core_stub_matches_the_extension():
    stub = _stub_names(PACKAGE / "_core.pyi")
    actual = {n for n in dir(nd._core) if not n.startswith("_")}
    assert sorted(actual - stub) == [], "entry points of _core missing from _core.pyi"
    assert sorted(stub - actual) == [], "names in _core.pyi that _core does not have"


def test_core_stub_is_annotated():
    tree = ast.parse((PACKAGE / "_core.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            bare = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.annotation is None]
            assert not bare and node.returns is not None, f"_core.pyi: {node.name} lacks annotations {bare}"


def _documented_parameters(fn):
    """The parameter names the entry point's docstring opens with (``name(a, b=1, *, c) -> ...``),
    and whether that list is complete (False when it abbreviates: ``gleak, ..., sensory_erev``,
    ``*, the parameters of lif_forward``)."""
    first = (fn.__doc__ or "").split("\n")[0]
    match = re.match(rf"{fn.__name__}\((.*?)\)(?: ->|:|$)", first)
    assert match, f"_core.{fn.__name__}'s docstring does not open with its signature: {first!r}"
    names, complete = [], True
    for piece in filter(None, (p.strip() for p in match.group(1).split(","))):
        name = piece.split("=")[0].split("|")[0].strip()
        if name == "*":
            continue
        if not name.isidentifier():
            complete = False
            continue
        names.append(name)
    return names, complete


@pytest.mark.parametrize("name", sorted(n for n in _stub_names(PACKAGE / "_core.pyi")
                                        if callable(getattr(nd._core, n, None))
                                        and not inspect.isclass(getattr(nd._core, n, None))))
def test_core_stub_parameters_match_the_entry_point(name):
    """The stub names the parameters the C entry point documents, in its order."""
    node = next(n for n in ast.parse((PACKAGE / "_core.pyi").read_text()).body
                if isinstance(n, ast.FunctionDef) and n.name == name)
    a = node.args
    stub = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    documented, complete = _documented_parameters(getattr(nd._core, name))
    if complete:
        assert stub == documented
    else:
        assert [n for n in stub if n in documented] == documented


USER_CODE = '''
import numpy as np
import neurodyn as nd

x = np.zeros((8, 4))
labels = np.arange(8) % 2
model: nd.SNN = nd.SNN(4, 2, seed=0).fit(x, labels, epochs=1, verbose=False)
history: dict[str, list[float]] = nd.ANN(4, (8,), 2).fit(x, labels, return_history=True)
predicted: np.ndarray = model.predict(x)
ys: np.ndarray = nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0])
ys2, info = nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0], return_info=True)
status: str = info["status"]
spikes, membrane = nd.lif_run(np.ones((3, 1, 1)), beta=0.5)
print(membrane.ravel(), nd.langevin_sample(nd.energies.DoubleWell(), 10).shape)
cell: nd.CfC = nd.CfC(2, 3).fit(np.zeros((2, 5, 2)), np.array([0, 1]), epochs=1, verbose=False)
'''


def test_a_users_code_type_checks(tmp_path):
    """What a user's checker sees: fit returns the model (the history with return_history),
    odeint the solution (a tuple with return_info), lif_run a membrane array; and a wrong
    annotation is caught, so the package's types were read (not taken as Any)."""
    api = pytest.importorskip("mypy.api")
    good = tmp_path / "good.py"
    good.write_text(USER_CODE)
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nimport neurodyn as nd\n"
                   "wrong: str = nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0])\n")
    options = ["--python-version", "3.11", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary"]
    out, err, status = api.run(options + [str(good)])
    assert status == 0, out + err
    out, err, status = api.run(options + [str(bad)])
    assert status == 1 and "Incompatible types in assignment" in out, out + err
