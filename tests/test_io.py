"""Saving, loading and pickling models (docs/models.md §0: save/load with no loss of data, pickling).

The file is an .npz of plain arrays plus a JSON configuration; ``nd.load`` reads it with
``allow_pickle=False``, so a tampered file may fail to load but must never run code, and
every failure is a ValueError.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import tracemalloc
import zipfile
import zlib
from unittest import mock

import numpy as np
import pytest

import neurodyn as nd

CONFIG_KEY = "__neurodyn_config__"


def trained_like(dtype=np.float64, **kw):
    """A model whose parameters are all off their initial values (a saved model is usually
    trained: biases and beta nonzero, gamma not 1)."""
    args = dict(hidden_size=5, output_size=2, num_steps=3, step_size=0.2, solver="midpoint", seed=4, dtype=dtype)
    args.update(kw)
    m = nd.NeuralODE(3, **args)
    r = np.random.default_rng(8)
    for p in m.params.values():
        p += r.normal(size=p.shape).astype(p.dtype)
    return m


def assert_same_model(a, b):
    assert type(a) is type(b)
    assert a.config == b.config
    assert list(a.params) == list(b.params)  # order kept too (an ordered dict by docs/models.md §0)
    for k in a.params:
        assert a.params[k].dtype == b.params[k].dtype, k
        assert np.array_equal(a.params[k], b.params[k]), k
        assert a.params[k].tobytes() == b.params[k].tobytes(), k  # bit for bit (signed zeros too)
    x = np.random.default_rng(0).normal(size=(4, a.config["input_size"]))
    np.testing.assert_array_equal(a(x), b(x))


@pytest.mark.parametrize("kw", [
    {"dtype": np.float64},
    {"dtype": np.float32},
    {"dtype": np.float32, "solver": "dopri5", "rtol": 1e-5, "atol": 1e-7, "gradient": "adjoint"},
    {"dtype": np.float64, "output_size": None, "hidden_size": 3},  # neither projection
])
def test_save_load_round_trip(tmp_path, kw):
    m = trained_like(**kw)
    m.params["output_norm.beta"][0] = -0.0  # a signed zero must survive
    path = tmp_path / "model.npz"
    m.save(path)
    loaded = nd.load(path)
    assert_same_model(m, loaded)
    assert np.signbit(loaded.params["output_norm.beta"][0])
    assert repr(loaded) == repr(m)
    # The loaded copy is independent of the file and of the original.
    loaded.params["dynamics_dense1.bias"] += 1
    assert not np.array_equal(loaded.params["dynamics_dense1.bias"], m.params["dynamics_dense1.bias"])


def test_loaded_model_keeps_training_identically(tmp_path):
    m = trained_like()
    m.save(tmp_path / "m.npz")
    loaded = nd.load(str(tmp_path / "m.npz"))  # str paths as well as pathlib
    r = np.random.default_rng(1)
    x, y = r.normal(size=(8, 3)), r.normal(size=(8, 2))
    la, ga = m.loss_and_grad(x, y)
    lb, gb = loaded.loss_and_grad(x, y)
    assert la == lb
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k])


def test_saved_file_holds_no_pickles(tmp_path):
    """Every member is a plain numeric or text array, readable with allow_pickle=False."""
    path = tmp_path / "m.npz"
    trained_like().save(path)
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            assert data[name].dtype.kind in "fU", (name, data[name].dtype)
        meta = json.loads(str(data[CONFIG_KEY][()]))
    assert meta["class"] == "NeuralODE" and meta["config"]["hidden_size"] == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pickle_round_trip(dtype):
    m = trained_like(dtype=dtype)
    clone = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
    assert_same_model(m, clone)
    for k in m.params:
        assert not np.shares_memory(m.params[k], clone.params[k])


# ---- damaged and foreign files ------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    trained_like(dtype=np.float32).save(path)
    return path


@pytest.mark.parametrize("keep", [0, 0.1, 0.5, 0.9, -1])
def test_truncated_file(saved, tmp_path, keep):
    raw = saved.read_bytes()
    n = len(raw) - 1 if keep == -1 else int(len(raw) * keep)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(raw[:n])
    with pytest.raises(ValueError, match="cannot read a neurodyn model"):
        nd.load(bad)


def test_corrupted_bytes(saved, tmp_path):
    """Flipped bytes in the middle of a member: zip's CRC check or the parser must notice."""
    raw = bytearray(saved.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 16):
        raw[i] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        nd.load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        nd.load(tmp_path / "nothing.npz")


def test_random_npz_is_not_a_model(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.random.default_rng(0).normal(size=(3, 3)), labels=np.arange(4))
    with pytest.raises(ValueError, match="not a neurodyn model"):
        nd.load(path)


def test_random_bytes_are_not_a_model(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ValueError):
        nd.load(path)


def rewrite(saved, tmp_path, edit_meta=None, edit_arrays=None):
    """A copy of ``saved`` with its JSON entry and/or arrays edited."""
    with np.load(saved) as data:
        arrays = {k: data[k] for k in data.files}
    if edit_meta is not None:
        meta = json.loads(str(arrays[CONFIG_KEY][()]))
        meta = edit_meta(meta)
        arrays[CONFIG_KEY] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    if edit_arrays is not None:
        edit_arrays(arrays)
    out = tmp_path / "edited.npz"
    np.savez(out, **arrays)
    return out


def _set(path, value):
    def edit(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return meta
    return edit


JSON_EDITS = {
    "format": (_set(["format"], "something-else"), "not a neurodyn model"),
    "version": (_set(["version"], 2), "version"),
    "class": (_set(["class"], "os.system"), "unknown model class"),
    "hidden_size": (_set(["config", "hidden_size"], 8), "shape"),
    "hidden_size_str": (_set(["config", "hidden_size"], "5"), "hidden_size"),
    "solver": (_set(["config", "solver"], "rk45"), "solver"),
    "dtype": (_set(["config", "dtype"], "object"), "dtype"),
    "dtype_float64": (_set(["config", "dtype"], "float64"), "dtype"),  # arrays are float32
    "step_size": (_set(["config", "step_size"], -1), "step_size"),
    "config_list": (_set(["config"], [1, 2]), "malformed configuration"),
    "config_extra_key": (_set(["config", "evil"], 1), "invalid configuration"),
    "params_fewer": (_set(["params"], ["input_proj.kernel"]), "parameter names differ"),
    "params_unknown": (lambda m: {**m, "params": m["params"] + ["zzz"]}, "zzz"),
    "params_dict": (_set(["params"], {"a": 1}), "malformed configuration"),
    "not_json": (lambda m: "{not json", "cannot read"),
}


@pytest.mark.parametrize("case", sorted(JSON_EDITS))
def test_modified_json_entry(saved, tmp_path, case):
    edit, match = JSON_EDITS[case]
    with pytest.raises(ValueError, match=match):
        nd.load(rewrite(saved, tmp_path, edit_meta=edit))


# JSON entries of the wrong type (not a list of names, not an object) are refused as
# ValueError too, never as a TypeError or AttributeError from deeper down.
JSON_EDITS_WRONG_TYPES = {
    "params_int": _set(["params"], 5),
    "params_null": _set(["params"], None),
    "top_level_list": lambda m: [1, 2],
    "top_level_number": lambda m: 3.5,
}


@pytest.mark.parametrize("case", sorted(JSON_EDITS_WRONG_TYPES))
def test_modified_json_entry_wrong_types(saved, tmp_path, case):
    with pytest.raises(ValueError):
        nd.load(rewrite(saved, tmp_path, edit_meta=JSON_EDITS_WRONG_TYPES[case]))


@pytest.mark.parametrize("edit, match", [
    (lambda a: a.__setitem__("param:output_norm.gamma", a["param:output_norm.gamma"].astype(np.float64)), "dtype"),
    (lambda a: a.__setitem__("param:output_norm.gamma", np.ones(7, np.float32)), "shape"),
    (lambda a: a.pop("param:dynamics_dense2.kernel"), "cannot read"),
    (lambda a: a.pop(CONFIG_KEY), "no configuration"),
    (lambda a: a.__setitem__(CONFIG_KEY, np.array([b"\xff\xfe"])), "cannot read"),
])
def test_modified_arrays(saved, tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        nd.load(rewrite(saved, tmp_path, edit_arrays=edit))


class _Payload:
    """Unpickling this creates a directory: the observable side effect of running code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("where", ["param:output_norm.gamma", CONFIG_KEY])
def test_pickled_payload_is_never_executed(saved, tmp_path, where):
    marker = str(tmp_path / "EXECUTED")
    payload = np.array([_Payload(marker)], dtype=object)
    bad = rewrite(saved, tmp_path, edit_arrays=lambda a: a.__setitem__(where, payload))
    with zipfile.ZipFile(bad) as z:  # the file really carries a pickle
        assert any(b"mkdir" in z.read(n) for n in z.namelist())
    with pytest.raises(ValueError):
        nd.load(bad)
    assert not os.path.exists(marker)


def test_round_trip_without_npz_suffix(tmp_path):
    m = trained_like()
    m.save(tmp_path / "model")
    assert_same_model(m, nd.load(tmp_path / "model"))


def test_npy_file_is_not_a_model(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(5))
    with pytest.raises(ValueError):
        nd.load(path)


def test_huge_config_is_refused_without_allocating(saved, tmp_path):
    bad = rewrite(saved, tmp_path, edit_meta=_set(["config", "hidden_size"], 10**7))
    with pytest.raises(ValueError):
        nd.load(bad)


# ---- hostile files: refused as ValueError, cheaply (Reliability: bounded reading) --------------


def _write_members(path, members):
    """A zip of raw .npy members {key: bytes} (stored), as np.savez would lay it out."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for key, data in members.items():
            z.writestr(key + ".npy", data)
    return path


def _npy_bytes(arr=None, *, shape=None, dtype=None, payload=b""):
    """The bytes of a .npy file: of ``arr``, or a header declaring ``shape``/``dtype`` followed
    by ``payload`` (whatever its length)."""
    import io as _io
    buf = _io.BytesIO()
    if arr is not None:
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _members_of(saved):
    with zipfile.ZipFile(saved) as z:
        return {name[:-4]: z.read(name) for name in z.namelist()}


@contextlib.contextmanager
def _allocates_at_most(mib):
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < mib * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_every_flipped_header_byte_is_a_value_error_or_loads(saved, tmp_path):
    """Flip each byte of every local header and of the central directory in turn: the loader
    either still reads the model (a field it does not use) or raises ValueError, never another
    exception (a flipped compression method used to raise NotImplementedError)."""
    raw = saved.read_bytes()
    with zipfile.ZipFile(saved) as z:
        infos = z.infolist()
    spans = [(i.header_offset, i.header_offset + 30 + len(i.filename)) for i in infos]
    cd_start = min(raw.find(b"PK\x01\x02"), len(raw))
    spans.append((cd_start, len(raw)))
    bad = tmp_path / "flipped.npz"
    outcomes = {"loaded": 0, "refused": 0}
    positions = np.concatenate([np.arange(lo, hi) for lo, hi in spans])
    for pos in np.random.default_rng(0).choice(positions, size=min(400, positions.size), replace=False):
        flipped = bytearray(raw)
        flipped[pos] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            nd.load(bad)
            outcomes["loaded"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50


def test_unknown_compression_method_is_a_value_error(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 10:cd + 12] = (99).to_bytes(2, "little")  # central directory: compression method
    bad = tmp_path / "method.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="compression method 99"):
        nd.load(bad)


@pytest.mark.parametrize("depth", [100_000, 15_000])
def test_deeply_nested_configuration_is_a_value_error(saved, tmp_path, depth):
    """100,000 nested brackets are longer than any configuration (refused from the member's
    header); 15,000 fit the length bound and reach the JSON parser (RecursionError inside)."""
    members = _members_of(saved)
    members[CONFIG_KEY] = _npy_bytes(np.array("[" * depth + "]" * depth))
    bad = _write_members(tmp_path / "nested.npz", members)
    with pytest.raises(ValueError, match="characters long|nested too deeply"):
        nd.load(bad)


def test_a_small_member_declaring_a_huge_shape_is_refused_without_allocating(saved, tmp_path):
    members = _members_of(saved)
    members["param:output_norm.gamma"] = _npy_bytes(shape=(2**40,), dtype=np.float32, payload=bytes(128))
    bad = _write_members(tmp_path / "huge_shape.npz", members)
    with _allocates_at_most(4), pytest.raises(ValueError, match=r"2\*\*40|1099511627776"):
        nd.load(bad)


class _ZeroBlocks:
    """A deflate compressor for zipfile that emits one precomputed, self-contained block for
    every 1 MiB of zeros: a 512 MiB member in a fraction of a second instead of seconds of
    zlib (each block is full-flushed, so blocks never refer to one another)."""

    CHUNK = bytes(1 << 20)
    _co = zlib.compressobj(9, zlib.DEFLATED, -15)
    BLOCK = _co.compress(CHUNK) + _co.flush(zlib.Z_FULL_FLUSH)

    def __init__(self):
        self.co = zlib.compressobj(9, zlib.DEFLATED, -15)

    def compress(self, data):
        if data == self.CHUNK:
            return self.BLOCK
        return self.co.compress(data) + self.co.flush(zlib.Z_FULL_FLUSH)

    def flush(self):
        return b"\x03\x00"  # an empty final block


def _write_inflating(path, members, key, header_shape, inflated):
    """``members`` with ``key`` replaced by a deflated member: a .npy header declaring
    ``header_shape`` (float32) followed by ``inflated`` bytes of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, data in members.items():
            if k != key:
                z.writestr(k + ".npy", data)
        with mock.patch.object(zipfile, "_get_compressor", lambda *a, **k: _ZeroBlocks()), \
                z.open(key + ".npy", "w", force_zip64=True) as f:
            f.write(_npy_bytes(shape=header_shape, dtype=np.float32))
            for _ in range(inflated >> 20):
                f.write(_ZeroBlocks.CHUNK)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 0.5 MiB file where a 5x5 kernel belongs, its member inflating to 512 MiB."""
    tmp = tmp_path_factory.mktemp("bomb")
    good = tmp / "good.npz"
    trained_like(dtype=np.float32).save(good)
    members = _members_of(good)
    huge = (512 << 20) // 4
    path = _write_inflating(tmp / "bomb.npz", members, "param:dynamics_dense1.kernel", (huge,), 512 << 20)
    assert path.stat().st_size < 1 << 20
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("param:dynamics_dense1.kernel.npy").file_size > 512 << 20
    return path, members, tmp


def test_a_member_inflating_to_512_mib_is_refused_before_inflating(bomb):
    path, _, _ = bomb
    with _allocates_at_most(8), pytest.raises(ValueError, match="shape"):
        nd.load(path)


def test_a_member_whose_data_outgrows_its_header_is_refused_before_inflating(bomb):
    """The header says 5x5 (the right shape) and the zip directory says 512 MiB."""
    _, members, tmp = bomb
    path = _write_inflating(tmp / "liar.npz", members, "param:dynamics_dense1.kernel", (5, 5), 64 << 20)
    with _allocates_at_most(8), pytest.raises(ValueError, match="declares shape"):
        nd.load(path)


def test_a_zip_directory_that_understates_a_member_reads_only_the_declared_bytes(saved, tmp_path):
    """The directory (and the header) say 5x5 floats but the deflated stream goes on for 64 MiB:
    only the declared bytes are ever inflated, and the CRC then refuses the member."""
    members = _members_of(saved)
    key = "param:dynamics_dense1.kernel"
    path = _write_inflating(tmp_path / "understated.npz", members, key, (5, 5), 64 << 20)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(key + ".npy")
    declared = len(_npy_bytes(shape=(5, 5), dtype=np.float32)) + 100
    name = (key + ".npy").encode()
    entry = raw.find(b"PK\x01\x02")  # this member's central directory entry
    while raw[entry + 46:entry + 46 + len(name)] != name:
        entry = raw.find(b"PK\x01\x02", entry + 4)
    raw[entry + 24:entry + 28] = declared.to_bytes(4, "little")  # its uncompressed size
    path.write_bytes(bytes(raw))
    with _allocates_at_most(8), pytest.raises(ValueError):
        nd.load(path)
    assert info.file_size == 64 * 2**20 + declared - 100


@pytest.mark.parametrize("cls, key, edit", [
    ("Liquid", "num_layers", 2**62),
    ("AssociativeMemory", "num_layers", 2**62),
    ("AssociativeMemory", "num_heads", 2**40),
    ("SNN", "hidden_sizes", [4] * 20_000),
])
def test_a_configuration_implying_more_parameters_than_stored_is_refused_at_once(tmp_path, cls, key, edit):
    models = {
        "Liquid": lambda: nd.Liquid(3, hidden_size=4, num_layers=1, seed=0),
        "AssociativeMemory": lambda: nd.AssociativeMemory(3, num_patterns=4, pattern_dim=4, hidden_size=4,
                                                          num_layers=1, seed=0),
        "SNN": lambda: nd.SNN(3, 2, hidden_sizes=(4,), seed=0),
    }
    path = tmp_path / "model.npz"
    models[cls]().save(path)
    bad = rewrite(path, tmp_path, edit_meta=_set(["config", key], edit))
    with _allocates_at_most(16), pytest.raises(ValueError):
        nd.load(bad)


def test_unexpected_members_are_refused(saved, tmp_path):
    members = _members_of(saved)
    members["padding"] = _npy_bytes(np.zeros(3))
    with pytest.raises(ValueError, match="unexpected member"):
        nd.load(_write_members(tmp_path / "padded.npz", members))


def test_a_compressed_model_file_loads(tmp_path):
    """np.savez_compressed's deflated members are read the same way."""
    m = trained_like()
    path = tmp_path / "m.npz"
    m.save(path)
    members = _members_of(path)
    with zipfile.ZipFile(tmp_path / "c.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for k, data in members.items():
            z.writestr(k + ".npy", data)
    assert_same_model(m, nd.load(tmp_path / "c.npz"))


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(OSError):
        nd.load(tmp_path)


# ---- every model saves and loads ------------------------------------------------------------------


def _converted():
    ann = nd.ANN(4, hidden_sizes=(6, 5), output_size=3, seed=0)
    return nd.ann2snn(ann, np.random.default_rng(0).normal(size=(20, 4)), num_timesteps=7)


def _classical():
    net = nd.ClassicalHopfield(6)
    net.store(np.where(np.random.default_rng(0).random((2, 6)) < 0.5, -1, 1), rule="pseudoinverse")
    return net


EVERY_MODEL = {
    "NeuralODE": lambda: trained_like(),
    "Liquid": lambda: nd.Liquid(3, hidden_size=4, num_layers=2, ffn=True, output_size=2, seed=0),
    "LTCCell": lambda: nd.LTCCell(3, 5, output_size=2, seed=0),
    "CfC": lambda: nd.CfC(3, 4, backbone_units=5, output_size=2, seed=0),
    "SNN": lambda: nd.SNN(4, 3, hidden_sizes=(6, 5), seed=0),
    "ANN": lambda: nd.ANN(4, hidden_sizes=(6,), output_size=3, norm="layer", seed=0),
    "ConvertedSNN": _converted,
    "Hopfield": lambda: nd.Hopfield(4, num_patterns=5, pattern_dim=3, seed=0),
    "AssociativeMemory": lambda: nd.AssociativeMemory(4, num_patterns=5, pattern_dim=4, num_heads=2, hidden_size=4,
                                                      num_layers=2, output_size=2, seed=0),
    "ClassicalHopfield": _classical,
    "EBM": lambda: nd.EBM(4, hidden_sizes=(6,), seed=0),
    "FiringRateMemory": lambda: nd.FiringRateMemory(nd.memories.bernoulli_patterns(3, 12, 0.3, seed=0), a=-0.3, b=0.95,
                                                    gain=4.8, threshold=0.2, overlap=0.35),
    "IDPHopfield": lambda: nd.IDPHopfield(nd.memories.random_patterns(3, 12, seed=0), zero_diagonal=True),
    "SequentialHopfield": lambda: nd.SequentialHopfield(nd.memories.hadamard_patterns(3, 8, seed=0),
                                                        sequence=[2, 0, 1], kappa=5.0),
    "HybridEBM": lambda: nd.HybridEBM(4, hidden_sizes=(6, 5), form="port_hamiltonian", inputs=2, seed=0),
}
# Models whose parameters are data with rules of their own (stored patterns), kept as they are
KEEP_PARAMS = {"ClassicalHopfield", "FiringRateMemory", "IDPHopfield", "SequentialHopfield"}


def test_every_model_class_is_covered():
    assert set(EVERY_MODEL) == set(nd.io._registry())


@pytest.mark.parametrize("name", sorted(EVERY_MODEL))
def test_every_model_saves_and_loads_bit_for_bit(tmp_path, name):
    m = EVERY_MODEL[name]()
    r = np.random.default_rng(1)
    for p in m.params.values():  # off the initial values, as a trained model is
        p += r.normal(size=p.shape).astype(p.dtype) * (0 if name in KEEP_PARAMS else 0.1)
    path = tmp_path / f"{name}.npz"
    m.save(path)
    loaded = nd.load(path)
    assert type(loaded) is type(m) and loaded.config == m.config and repr(loaded) == repr(m)
    assert list(loaded.params) == list(m.params)
    for k in m.params:
        assert loaded.params[k].dtype == m.params[k].dtype and loaded.params[k].tobytes() == m.params[k].tobytes()
    if name == "ClassicalHopfield":
        q = np.where(r.random((3, 6)) < 0.5, -1.0, 1.0)
        np.testing.assert_array_equal(loaded.recall(q, seed=0), m.recall(q, seed=0))
        assert loaded.num_patterns == 2 and loaded.n == 6
    elif name in ("Liquid", "LTCCell", "CfC"):
        x = r.normal(size=(2, 3, 3)).astype(np.float32)
        np.testing.assert_array_equal(loaded(x), m(x))
    elif name in ("FiringRateMemory", "IDPHopfield", "SequentialHopfield"):
        f, g = loaded.field(), m.field()  # (IDP, sequential: each state's saliencies after its units)
        x = r.random(size=(3, f.dim)).astype(np.float32)
        np.testing.assert_array_equal(f(0.0, x), g(0.0, x))
    else:
        x = r.normal(size=(3, 3 if name == "NeuralODE" else 4)).astype(np.float32)
        np.testing.assert_array_equal(loaded(x), m(x))


def test_a_converted_snn_file_is_checked_like_the_others(tmp_path):
    path = tmp_path / "c.npz"
    _converted().save(path)
    for key, value, match in [("scales", [1.0], "scales has 1 entries"), ("scales", [1.0, -2.0], "scales"),
                              ("threshold", 0.0, "threshold"), ("output_size", 4, "shape")]:
        with pytest.raises(ValueError, match=match):
            nd.load(rewrite(path, tmp_path, edit_meta=_set(["config", key], value)))


def test_a_classical_hopfield_file_must_hold_float64_weights_of_its_size(tmp_path):
    path = tmp_path / "h.npz"
    _classical().save(path)
    with pytest.raises(ValueError, match="float64"):
        nd.load(rewrite(path, tmp_path, edit_meta=_set(["config", "dtype"], "float32")))
    with pytest.raises(ValueError, match="shape"):
        nd.load(rewrite(path, tmp_path, edit_meta=_set(["config", "n"], 7)))
