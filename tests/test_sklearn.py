"""The models as scikit-learn estimators (without depending on scikit-learn): get_params /
set_params of the constructor's arguments, fit returning the model with history_, predict,
predict_proba and score, and the tools built on them (clone, cross_val_score, GridSearchCV,
Pipeline)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import neurodyn as nd

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

T, F = 4, 3  # steps and features of the sequence tasks
FIT = {"epochs": 4, "batch_size": 16, "lr": 2e-2, "verbose": False}


def blobs(n=90, d=4, k=3, seed=0, scale=3.0):
    """k Gaussian clusters in d dimensions, offset and stretched so that scaling matters."""
    r = np.random.default_rng(seed)
    centres = r.normal(size=(k, d)) * 2.0
    y = np.arange(n) % k
    x = centres[y] + 0.5 * r.normal(size=(n, d))
    return (x * scale + 5.0).astype(np.float32), y


def sequences(n=90, seed=0):
    """Which of three slopes a noisy ramp of T steps follows (features: value, noise, time)."""
    r = np.random.default_rng(seed)
    y = np.arange(n) % 3
    t = np.arange(T, dtype=np.float32)
    value = (y[:, None] - 1.0) * t + 0.3 * r.normal(size=(n, T))
    x = np.stack([value, r.normal(size=(n, T)), np.broadcast_to(t, (n, T))], axis=-1)
    return x.astype(np.float32), y


def regression(n=90, seed=0):
    r = np.random.default_rng(seed)
    x = r.uniform(-1, 1, size=(n, 2))
    return x.astype(np.float32), np.sin(2 * x[:, 0]) + x[:, 1] ** 2


def to_rows(x):
    return x.reshape(len(x), -1)


def to_sequences(x):
    return x.reshape(len(x), T, F)


CLASSIFIERS = {
    "SNN": (lambda **kw: nd.SNN(4, 3, hidden_sizes=(16,), num_timesteps=4, **kw), blobs, {"hidden_sizes": [(8,), (16,)]}),
    "ANN": (lambda **kw: nd.ANN(4, hidden_sizes=(16,), output_size=3, **kw), blobs, {"hidden_sizes": [(8,), (16,)]}),
    "Liquid": (lambda **kw: nd.Liquid(F, hidden_size=8, num_layers=1, output_size=3, dropout=0.0, **kw), sequences,
               {"hidden_size": [4, 8]}),
    "CfC": (lambda **kw: nd.CfC(F, 8, backbone_units=8, output_size=3, **kw), sequences,
            {"backbone_units": [4, 8]}),
    "LTCCell": (lambda **kw: nd.LTCCell(F, 6, output_size=3, ode_unfolds=2, **kw), sequences,
                {"ode_unfolds": [1, 2]}),
    "AssociativeMemory": (lambda **kw: nd.AssociativeMemory(4, num_patterns=8, pattern_dim=8, hidden_size=8,
                                                            num_layers=1, dropout=0.0, output_size=3, **kw),
                          blobs, {"num_patterns": [4, 8]}),
}
SKLEARN_CASES = ["SNN", "ANN", "Liquid", "CfC", "AssociativeMemory"]


def _make(name, seed=0):
    build, data, _ = CLASSIFIERS[name]
    return build(seed=seed), data


# ---- the protocol ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_protocol(name):
    model, data = _make(name)
    x, y = data()
    assert is_classifier(model) and not is_regressor(model)
    assert model.fit(x, y, seed=1, **FIT) is model
    h = model.history_
    assert len(h["loss"]) == FIT["epochs"] and len(h["batch_loss"]) == FIT["epochs"] * 6
    assert model.loss_ == "cross_entropy"
    labels = model.predict(x)
    assert labels.shape == (len(x),) and set(labels) <= {0, 1, 2}
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), labels)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.score(x, y) == pytest.approx(np.mean(labels == y))
    w = np.linspace(0.0, 1.0, len(y))
    assert model.score(x, y, sample_weight=w) == pytest.approx(np.average(labels == y, weights=w))


def test_neural_ode_regressor_protocol():
    x, y = regression()
    model = nd.NeuralODE(2, hidden_size=8, output_size=1, num_steps=4, solver="rk4", seed=0)
    assert is_regressor(model) and not is_classifier(model)
    assert not hasattr(model, "predict_proba")  # a regressor has no probabilities
    model.fit(x, y, seed=0, **{**FIT, "epochs": 30})
    assert model.loss_ == "mse"
    pred = model.predict(x)
    assert pred.shape == y.shape  # fitted on 1-D targets: 1-D predictions
    from sklearn.metrics import r2_score

    assert model.score(x, y) == pytest.approx(r2_score(y, pred), rel=1e-9)
    assert model.score(x, y) > 0.5
    # two outputs: R^2 averaged over them, as scikit-learn does
    m2 = nd.NeuralODE(2, hidden_size=8, output_size=2, num_steps=4, seed=0).fit(x, np.c_[y, -y], **FIT)
    assert m2.predict(x).shape == (len(x), 2)
    assert m2.score(x, np.c_[y, -y]) == pytest.approx(r2_score(np.c_[y, -y], m2.predict(x)), rel=1e-9)


def test_the_loss_decides_the_role_of_a_dual_model():
    """A Liquid with an output head classifies integer labels and regresses real targets."""
    x, y = sequences()
    m = nd.Liquid(F, hidden_size=8, num_layers=1, output_size=1, seed=0)
    assert is_classifier(m)  # before any fit: its kind's default
    m.fit(x, y.astype(np.float32), **FIT)  # real targets: mse, a regressor now
    assert m.loss_ == "mse" and is_regressor(m) and not hasattr(m, "predict_proba")
    assert m.predict(x).shape == (len(x),)
    ebm = nd.EBM(2, hidden_sizes=(8,), seed=0)
    assert not is_classifier(ebm) and not is_regressor(ebm)
    assert not hasattr(ebm, "predict") and not hasattr(ebm, "score")


def test_get_params_are_the_constructor_arguments_as_given():
    sizes = (8, 4)
    m = nd.ANN(4, hidden_sizes=sizes, output_size=3, seed=7)
    p = m.get_params()
    assert p == {"input_size": 4, "hidden_sizes": (8, 4), "output_size": 3, "norm": None, "seed": 7,
                 "dtype": np.float32}
    assert p["hidden_sizes"] is sizes
    assert nd.CfC(2, 4, mode="no_gate").get_params()["mode"] == "no_gate"  # keyword-only arguments too


def test_set_params_rebuilds_the_model_and_forgets_the_fit():
    x, y = blobs()
    m = nd.ANN(4, hidden_sizes=(8,), output_size=3, seed=0).fit(x, y, **FIT)
    assert m.set_params(hidden_sizes=(5,), seed=1) is m
    assert m.params["dense_0.kernel"].shape == (4, 5) and not hasattr(m, "history_")
    fresh = nd.ANN(4, hidden_sizes=(5,), output_size=3, seed=1)
    for k in fresh.params:
        np.testing.assert_array_equal(m.params[k], fresh.params[k])
    with pytest.raises(ValueError, match="invalid parameter 'hiden_sizes'"):
        m.set_params(hiden_sizes=(3,))
    with pytest.raises(ValueError, match="hidden_sizes"):
        m.set_params(hidden_sizes=(0,))


def test_a_loaded_model_reports_its_configuration_as_params(tmp_path):
    m = nd.SNN(4, 3, hidden_sizes=(6,), num_timesteps=3, seed=0)
    m.save(tmp_path / "m.npz")
    loaded = nd.load(tmp_path / "m.npz")
    p = loaded.get_params()
    assert p["hidden_sizes"] == [6] and p["num_timesteps"] == 3 and p["seed"] is None
    assert clone(loaded).params.keys() == m.params.keys()


def test_pickling_keeps_the_fit():
    x, y = blobs()
    m = nd.ANN(4, hidden_sizes=(8,), output_size=3, seed=3).fit(x, y, **FIT)
    again = pickle.loads(pickle.dumps(m))
    assert again.history_ == m.history_ and again.loss_ == "cross_entropy"
    assert again.get_params() == m.get_params()
    np.testing.assert_array_equal(again.predict(x), m.predict(x))


def test_one_seed_covers_initialisation_and_shuffling():
    """Without fit(seed=...), the model's own seed makes fit reproducible."""
    x, y = blobs()
    a = nd.SNN(4, 3, hidden_sizes=(8,), num_timesteps=3, encoding="poisson", seed=5).fit(x, y, **FIT)
    b = nd.SNN(4, 3, hidden_sizes=(8,), num_timesteps=3, encoding="poisson", seed=5).fit(x, y, **FIT)
    assert a.history_["batch_loss"] == b.history_["batch_loss"]
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    c = nd.SNN(4, 3, hidden_sizes=(8,), num_timesteps=3, encoding="poisson", seed=6).fit(x, y, **FIT)
    assert c.history_["batch_loss"] != a.history_["batch_loss"]


# ---- scikit-learn's tools -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SKLEARN_CASES)
def test_clone(name):
    model, data = _make(name, seed=3)
    x, y = data()
    initial = {k: v.copy() for k, v in model.params.items()}
    model.fit(x, y, **FIT)
    copy = clone(model)
    assert type(copy) is type(model) and copy.get_params() == model.get_params()
    assert not hasattr(copy, "history_")
    for k in initial:  # a fresh model from the same seed: the initial parameters
        np.testing.assert_array_equal(copy.params[k], initial[k])


@pytest.mark.parametrize("name", SKLEARN_CASES)
def test_cross_val_score(name):
    model, data = _make(name)
    x, y = data()
    scores = cross_val_score(model, x, y, cv=3, params={**FIT, "epochs": 15})
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    assert scores.mean() > 0.5  # chance is 1/3
    again = cross_val_score(model, x, y, cv=3, params={**FIT, "epochs": 15})
    np.testing.assert_array_equal(scores, again)  # the seed makes the whole search reproducible


@pytest.mark.parametrize("name", SKLEARN_CASES)
def test_grid_search(name):
    build, data, grid = CLASSIFIERS[name]
    x, y = data()
    search = GridSearchCV(build(seed=0), grid, cv=2).fit(x, y, **FIT)
    assert set(search.best_params_) == set(grid)
    assert search.best_params_[next(iter(grid))] in next(iter(grid.values()))
    assert search.best_estimator_.get_params()[next(iter(grid))] == search.best_params_[next(iter(grid))]
    assert search.predict(x).shape == (len(x),)
    assert 0 <= search.score(x, y) <= 1


@pytest.mark.parametrize("name", SKLEARN_CASES)
def test_pipeline_with_a_scaler(name):
    model, data = _make(name)
    x, y = data()
    if x.ndim == 3:  # sequences: scale each feature of each step, then back to (n, T, F)
        steps = [("rows", FunctionTransformer(to_rows)), ("scale", StandardScaler()),
                 ("seq", FunctionTransformer(to_sequences)), ("model", model)]
    else:
        steps = [("scale", StandardScaler()), ("model", model)]
    pipe = Pipeline(steps).fit(x, y, **{f"model__{k}": v for k, v in {**FIT, "epochs": 15}.items()})
    assert pipe.predict(x).shape == (len(x),)
    assert pipe.predict_proba(x).shape == (len(x), 3)
    assert pipe.score(x, y) > 0.5
    assert is_classifier(pipe)
    scores = cross_val_score(clone(pipe), x, y, cv=3, params={f"model__{k}": v for k, v in FIT.items()})
    assert scores.shape == (3,)


def test_neural_ode_regressor_in_sklearn_tools():
    x, y = regression()
    model = nd.NeuralODE(2, hidden_size=8, output_size=1, num_steps=4, solver="rk4", seed=0)
    fit = {**FIT, "epochs": 20}
    scores = cross_val_score(model, x, y, cv=3, params=fit)
    assert scores.shape == (3,) and scores.mean() > 0.3  # R^2
    search = GridSearchCV(model, {"hidden_size": [4, 8]}, cv=2).fit(x, y, **fit)
    assert search.best_params_["hidden_size"] in (4, 8)
    pipe = Pipeline([("scale", StandardScaler()), ("model", clone(model))])
    pipe.fit(x * 10 + 3, y, **{f"model__{k}": v for k, v in fit.items()})
    assert pipe.score(x * 10 + 3, y) > 0.3
    assert is_regressor(pipe)
