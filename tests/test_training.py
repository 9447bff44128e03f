"""The conveniences of the shared fit loop: validation data, early stopping, callbacks,
learning-rate schedules, gradient clipping, and checkpoints from which a fit resumes exactly
(the same bits as a fit that was never stopped)."""
from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

import neurodyn as nd
from neurodyn import optim, training


def blobs(n=64, d=4, k=3, seed=0):
    """k Gaussian clusters (the same for every seed; the seed draws the samples)."""
    centres = np.random.default_rng(100).normal(size=(k, d)) * 2.0
    y = np.arange(n) % k
    return (centres[y] + 0.7 * np.random.default_rng(seed).normal(size=(n, d))).astype(np.float32), y


def ann(seed=0, **kw):
    return nd.ANN(4, hidden_sizes=(12,), output_size=3, seed=seed, **kw)


FIT = dict(epochs=4, batch_size=16, lr=1e-2, seed=1, verbose=False)


def same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k


def histories_equal(a, b):
    assert set(a) == set(b)
    for k in a:
        if k != "time":
            assert a[k] == b[k], k


class Snapshots(training.Callback):
    """The parameters after every epoch."""

    def __init__(self):
        self.params = []

    def on_epoch_end(self, state):
        self.params.append({k: v.copy() for k, v in state.model.params.items()})


# ---- validation ---------------------------------------------------------------------------------


def test_validation_split_holds_out_the_last_samples_and_records_their_loss():
    x, y = blobs()
    snaps = Snapshots()
    m = ann().fit(x, y, validation_split=0.25, callbacks=[snaps], **FIT)
    h = m.history_
    assert len(h["val_loss"]) == FIT["epochs"]
    assert len(h["batch_loss"]) == FIT["epochs"] * 3  # 48 training samples in batches of 16
    for epoch, params in enumerate(snaps.params):
        probe = ann()
        probe.params = params
        want = probe.loss_and_grad(x[48:], y[48:])[0]
        assert h["val_loss"][epoch] == pytest.approx(want, rel=1e-6)
    # the validation samples never trained the model: the same fit on the first 48 alone
    alone = ann().fit(x[:48], y[:48], **FIT)
    same_params(alone.params, m.params)


def test_validation_data_changes_nothing_but_the_history():
    x, y = blobs()
    xv, yv = blobs(30, seed=5)
    a = ann().fit(x, y, validation_data=(xv, yv), **FIT)
    b = ann().fit(x, y, **FIT)
    same_params(a.params, b.params)
    assert "val_loss" in a.history_ and "val_loss" not in b.history_


def test_validation_with_dropout_is_deterministic():
    """Liquid with dropout: the validation loss is measured without dropout, the same twice."""
    r = np.random.default_rng(0)
    x, y = r.normal(size=(40, 3, 2)).astype(np.float32), r.normal(size=(40, 2)).astype(np.float32)

    def run():
        m = nd.Liquid(2, hidden_size=6, num_layers=1, output_size=2, dropout=0.3, seed=0)
        return m.fit(x, y, validation_split=0.2, **FIT).history_["val_loss"]

    first = run()
    assert first == run()
    m = nd.Liquid(2, hidden_size=6, num_layers=1, output_size=2, dropout=0.3, seed=0)
    m.fit(x, y, validation_split=0.2, **{**FIT, "epochs": 1})
    assert first[0] == pytest.approx(m.loss_and_grad(x[32:], y[32:])[0], rel=1e-6)


def test_validation_data_of_a_recurrent_cell_takes_its_timespans():
    r = np.random.default_rng(0)
    x, y = r.normal(size=(32, 5, 2)).astype(np.float32), r.normal(size=(32, 5, 1)).astype(np.float32)
    ts = r.uniform(0.5, 1.5, size=(32, 5)).astype(np.float32)
    m = nd.CfC(2, 4, backbone_units=4, output_size=1, seed=0)
    m.fit(x[:24], y[:24], timespans=ts[:24], validation_data=(x[24:], y[24:], ts[24:]), **{**FIT, "epochs": 1})
    assert m.history_["val_loss"][0] == pytest.approx(m.loss_and_grad(x[24:], y[24:], timespans=ts[24:])[0],
                                                      rel=1e-6)
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(x, y, validation_data=(x,), **FIT)


def test_validation_arguments_are_checked():
    x, y = blobs()
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="validation_split"):
            ann().fit(x, y, validation_split=bad, **FIT)
    with pytest.raises(ValueError, match="not both"):
        ann().fit(x, y, validation_split=0.2, validation_data=(x, y), **FIT)
    with pytest.raises(ValueError, match="validation x"):
        ann().fit(x, y, validation_data=(x[:, :3], y), **FIT)
    with pytest.raises(TypeError, match="unexpected keyword argument 'validation'"):
        ann().fit(x, y, validation=(x, y), **FIT)
    with pytest.raises(ValueError, match="no validation loss"):
        nd.EBM(4, hidden_sizes=(4,), seed=0).fit(x, validation_split=0.2, epochs=1, verbose=False)


# ---- early stopping and callbacks -----------------------------------------------------------------


def test_early_stopping_stops_and_keeps_the_best_epoch():
    x, y = blobs()
    xv, yv = blobs(30, seed=9)
    snaps = Snapshots()
    stop = training.EarlyStopping(patience=2)
    # a large learning rate: the validation loss soon stops improving
    m = ann().fit(x, y, validation_data=(xv, yv), callbacks=[snaps], early_stopping=stop,
                  **{**FIT, "epochs": 60, "lr": 0.3})
    val = m.history_["val_loss"]
    assert len(val) < 60
    best = int(np.argmin(val))
    assert len(val) == best + 1 + 2  # two epochs without improvement after the best
    same_params(m.params, snaps.params[best])


def test_early_stopping_with_an_int_watches_the_training_loss_without_validation():
    x, y = blobs()
    m = ann().fit(x, y, early_stopping=1, **{**FIT, "epochs": 200, "lr": 0.5})
    assert len(m.history_["loss"]) < 200
    with pytest.raises(ValueError, match="val_loss"):
        ann().fit(x, y, early_stopping=training.EarlyStopping(monitor="val_loss"), **FIT)


def test_a_callable_callback_sees_each_epoch_and_can_stop():
    x, y = blobs()
    seen = []

    def cb(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 1

    m = ann().fit(x, y, callbacks=cb, **FIT)
    assert seen == [(0, ["loss", "lr", "time"]), (1, ["loss", "lr", "time"])]
    assert len(m.history_["loss"]) == 2
    with pytest.raises(TypeError, match="must return None, True or False"):
        ann().fit(x, y, callbacks=[lambda e, logs: float("nan")], **FIT)
    with pytest.raises(TypeError, match="callback"):
        ann().fit(x, y, callbacks=[3], **FIT)


# ---- learning-rate schedules -----------------------------------------------------------------------


def test_a_schedule_multiplies_the_learning_rate_epoch_by_epoch():
    x, y = blobs()
    m = ann().fit(x, y, lr_schedule=training.StepDecay(every=2, gamma=0.5), **FIT)
    assert m.history_["lr"] == [0.01, 0.01, 0.005, 0.005]
    # one epoch at half the rate is exactly a fit with the halved rate (SGD: p -= lr g)
    a = ann().fit(x, y, optimizer=optim.SGD(lr=0.1), lr_schedule=lambda e: 0.5, **{**FIT, "epochs": 1})
    b = ann().fit(x, y, optimizer=optim.SGD(lr=0.05), **{**FIT, "epochs": 1})
    same_params(a.params, b.params)


def test_the_built_in_schedules():
    assert [training.ExponentialDecay(0.5)(e) for e in range(3)] == [1.0, 0.5, 0.25]
    cos = training.CosineDecay(4, floor=0.1)
    assert cos(0) == 1.0 and cos(2) == pytest.approx(0.55) and cos(4) == pytest.approx(0.1) == cos(9)
    with pytest.raises(ValueError):
        training.StepDecay(0)


def test_a_schedule_gone_wrong_is_refused_at_its_epoch_and_the_rate_is_restored():
    x, y = blobs()
    opt = optim.Adam(lr=0.01)
    snaps = Snapshots()
    m = ann()
    with pytest.raises(ValueError, match=r"lr_schedule\(2\) returned nan"):
        m.fit(x, y, optimizer=opt, callbacks=[snaps], lr_schedule=lambda e: 1.0 if e < 2 else math.nan, **FIT)
    same_params(m.params, snaps.params[-1])  # the parameters of the last completed epoch
    assert len(snaps.params) == 2 and opt.lr == 0.01
    with pytest.raises(TypeError, match="multiplier"):
        ann().fit(x, y, lr_schedule=lambda e: "fast", **FIT)
    with pytest.raises(TypeError, match="callable"):
        ann().fit(x, y, lr_schedule=0.5, **FIT)


# ---- gradient clipping ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["norm", "value"])
def test_clipping_acts_on_the_step_as_documented(how):
    """One full-batch SGD step of rate 1: the parameters move by exactly the clipped gradient."""
    x, y = blobs()
    m = ann()
    before = {k: v.astype(np.float64) for k, v in m.params.items()}
    _, grads = m.loss_and_grad(x, y)
    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    if how == "norm":
        limit = norm / 4
        want = {k: g.astype(np.float64) * (limit / norm) for k, g in grads.items()}
        kw = {"clip_norm": limit}
    else:
        limit = 0.01
        want = {k: np.clip(g.astype(np.float64), -limit, limit) for k, g in grads.items()}
        kw = {"clip_value": limit}
    m.fit(x, y, optimizer=optim.SGD(lr=1.0), epochs=1, batch_size=len(x), seed=0, verbose=False, **kw)
    for k in m.params:
        np.testing.assert_allclose(before[k] - m.params[k], want[k], rtol=1e-5, atol=1e-7)
    if how == "value":
        assert max(np.abs(before[k] - m.params[k]).max() for k in m.params) <= limit * (1 + 1e-6)


def test_clip_gradients_refuses_non_finite_gradients():
    with pytest.raises(optim.NonFiniteError):
        training.clip_gradients({"a": np.array([1.0, np.nan])}, clip_norm=1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        ann().fit(*blobs(), clip_norm=0.0, **FIT)


# ---- checkpoints and exact resumption -------------------------------------------------------------


class StopAt(training.Callback):
    """A KeyboardInterrupt in the middle of epoch ``epoch`` (0-based), as a Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, state):
        if state.epoch == self.epoch and state.step % 2 == 1:
            raise KeyboardInterrupt


def _liquid():
    return nd.Liquid(2, hidden_size=6, num_layers=1, output_size=3, dropout=0.2, seed=4)


def _sequences():
    r = np.random.default_rng(3)
    return r.normal(size=(50, 3, 2)).astype(np.float32), np.arange(50) % 3


RESUMABLE = {
    "ANN": (lambda: ann(seed=2), blobs, {}),
    "Liquid (dropout, schedule, clipping, validation)": (
        _liquid, _sequences,
        {"lr_schedule": training.CosineDecay(6), "clip_norm": 0.5, "validation_split": 0.2,
         "early_stopping": training.EarlyStopping(patience=100)}),
    "SNN (Poisson input, SGD momentum)": (
        lambda: nd.SNN(4, 3, hidden_sizes=(8,), num_timesteps=3, encoding="poisson", seed=1),
        lambda: (np.abs(blobs()[0]) / 4, blobs()[1]), {"optimizer": "sgd", "lr": 0.05}),
    "NeuralODE": (lambda: nd.NeuralODE(4, hidden_size=6, output_size=3, num_steps=2, seed=0), blobs, {}),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_a_resumed_fit_equals_an_uninterrupted_one_bit_for_bit(name, tmp_path):
    build, data, extra = RESUMABLE[name]
    x, y = data()
    kw = {**FIT, "epochs": 6, **extra}
    whole = build().fit(x, y, **kw)

    path = tmp_path / "ckpt.npz"
    stopped = build()
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(x, y, checkpoint=path, callbacks=[StopAt(3)], **kw)
    assert len(stopped.history_["loss"]) == 3  # three epochs done, the fourth interrupted

    resumed = build()  # another model of the same configuration: everything comes from the checkpoint
    for p in resumed.params.values():
        p += 1.0
    ran = Snapshots()
    resumed.fit(x, y, resume=path, callbacks=[ran], **kw)
    assert len(ran.params) == 3  # only the epochs that were missing
    same_params(resumed.params, whole.params)
    histories_equal(resumed.history_, whole.history_)

    again = build()  # resume=True reads checkpoint= when the file exists
    again.fit(x, y, checkpoint=path, resume=True, **kw)
    same_params(again.params, whole.params)


def test_the_interrupted_model_itself_resumes_and_the_checkpoint_is_a_model_file(tmp_path):
    x, y = blobs()
    kw = {**FIT, "epochs": 5}
    whole = ann().fit(x, y, **kw)
    path = tmp_path / "ckpt.npz"
    m = ann()
    snaps = Snapshots()
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, checkpoint=path, checkpoint_every=2, callbacks=[snaps, StopAt(3)], **kw)
    as_model = nd.load(path)  # the checkpoint of epoch 2 (written every 2 epochs)
    same_params(as_model.params, snaps.params[1])
    m.fit(x, y, checkpoint=path, resume=True, callbacks=[Snapshots(), training.Callback()], **kw)
    same_params(m.params, whole.params)


def test_an_early_stopped_fit_resumes_to_the_same_end(tmp_path):
    x, y = blobs()
    xv, yv = blobs(30, seed=9)
    kw = {**FIT, "epochs": 60, "lr": 0.3, "validation_data": (xv, yv)}
    whole = ann().fit(x, y, early_stopping=training.EarlyStopping(patience=3), **kw)
    n = len(whole.history_["loss"])
    assert n < 60
    path = tmp_path / "ckpt.npz"
    with pytest.raises(KeyboardInterrupt):
        ann().fit(x, y, early_stopping=training.EarlyStopping(patience=3), checkpoint=path,
                  callbacks=[StopAt(n - 2)], **kw)
    resumed = ann(seed=7).fit(x, y, early_stopping=training.EarlyStopping(patience=3), resume=path, **kw)
    same_params(resumed.params, whole.params)
    histories_equal(resumed.history_, whole.history_)
    # a finished fit resumed again does nothing more
    final = tmp_path / "final.npz"
    ann().fit(x, y, early_stopping=training.EarlyStopping(patience=3), checkpoint=final, **kw)
    done = ann(seed=7).fit(x, y, early_stopping=training.EarlyStopping(patience=3), resume=final, **kw)
    same_params(done.params, whole.params)


def test_an_ebm_fit_resumes_exactly_with_its_replay_buffer(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (48, 2)).astype(np.float32)
    kw = dict(epochs=4, batch_size=16, seed=3, verbose=False, replay_buffer=40,
              langevin=dict(steps=4, step_size=0.05, noise_scale=0.1))
    whole = nd.EBM(2, hidden_sizes=(8,), seed=0).fit(x, **kw)
    path = tmp_path / "ebm.npz"
    with pytest.raises(KeyboardInterrupt):
        nd.EBM(2, hidden_sizes=(8,), seed=0).fit(x, checkpoint=path, callbacks=[StopAt(2)], **kw)
    resumed = nd.EBM(2, hidden_sizes=(8,), seed=5)
    ran = Snapshots()
    resumed.fit(x, resume=path, callbacks=[ran], **kw)
    assert len(ran.params) == 2
    same_params(resumed.params, whole.params)
    histories_equal(resumed.history_, whole.history_)


def test_resume_refuses_a_checkpoint_of_another_fit(tmp_path):
    x, y = blobs()
    path = tmp_path / "ckpt.npz"
    ann().fit(x, y, checkpoint=path, **FIT)
    with pytest.raises(ValueError, match="another configuration"):
        nd.ANN(4, hidden_sizes=(13,), output_size=3, seed=0).fit(x, y, resume=path, **FIT)
    with pytest.raises(ValueError, match="holds a ANN, not a SNN"):
        nd.SNN(4, 3, hidden_sizes=(12,)).fit(x, y, resume=path, **FIT)
    with pytest.raises(ValueError, match="samples"):
        ann().fit(x[:40], y[:40], resume=path, **FIT)
    with pytest.raises(ValueError, match="optimiser"):
        ann().fit(x, y, resume=path, optimizer="sgd", **{k: v for k, v in FIT.items()})
    with pytest.raises(ValueError, match="history"):
        ann().fit(x, y, resume=path, validation_data=(x[:10], y[:10]), **FIT)
    with pytest.raises(ValueError, match="without the EarlyStopping callback"):
        ann().fit(x, y, resume=path, early_stopping=3, **FIT)
    with pytest.raises(FileNotFoundError):
        ann().fit(x, y, resume=tmp_path / "none.npz", **FIT)
    with pytest.raises(ValueError, match="checkpoint="):
        ann().fit(x, y, resume=True, **FIT)
    model_file = tmp_path / "model.npz"
    ann().save(model_file)
    with pytest.raises(ValueError, match="not a checkpoint"):
        ann().fit(x, y, resume=model_file, **FIT)
    # resume=True without a file yet: a fresh fit that writes one
    fresh = tmp_path / "fresh.npz"
    ann().fit(x, y, checkpoint=fresh, resume=True, **FIT)
    assert fresh.exists()


def test_a_tampered_checkpoint_is_refused_before_its_arrays_are_read(tmp_path):
    x, y = blobs()
    path = tmp_path / "ckpt.npz"
    ann().fit(x, y, checkpoint=path, **FIT)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    import io as _io

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    members["opt:m:dense_0.kernel.npy"] = buf.getvalue() + bytes(64)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="opt:m:dense_0.kernel"):
        ann().fit(x, y, resume=bad, **FIT)
    info = json.loads(bytes(np.load(path)["__neurodyn_training__"]).decode())
    assert info["epoch"] == FIT["epochs"] and info["optimizer"]["class"] == "Adam"


# ---- the progress bar's flavour -------------------------------------------------------------

def test_progress_bar_is_the_text_bar_in_a_terminal():
    pytest.importorskip("tqdm")
    import tqdm.std

    from neurodyn import training

    assert training._tqdm() is tqdm.std.tqdm


def test_progress_bar_in_jupyter_without_ipywidgets_is_the_text_bar(monkeypatch):
    pytest.importorskip("tqdm")
    import sys
    import types
    import warnings

    import tqdm.notebook
    import tqdm.std

    from neurodyn import training

    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(tqdm.notebook, "IProgress", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert training._tqdm() is tqdm.std.tqdm


def test_progress_bar_in_jupyter_with_ipywidgets_is_the_widget(monkeypatch):
    pytest.importorskip("tqdm")
    import sys
    import types

    import tqdm.notebook

    from neurodyn import training

    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(tqdm.notebook, "IProgress", object)
    assert training._tqdm() is tqdm.notebook.tqdm
