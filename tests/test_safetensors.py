"""Models saved as .safetensors: the round trip for every model, the file read by the
safetensors package itself, and hostile files refused before any data is read."""
import json
import struct

import numpy as np
import pytest

import neurodyn as nd

MODELS = [
    lambda: nd.SNN(4, 3, hidden_sizes=(5,), num_timesteps=4, seed=0),
    lambda: nd.SNN(4, 3, hidden_sizes=(5, 2), beta=0.75, reset_delay=True, seed=0, dtype=np.float64),
    lambda: nd.CfC(3, 4, backbone_units=5, mode="pure", output_size=2, seed=0),
    lambda: nd.LTCCell(2, 5, output_size=2, seed=0, dtype=np.float64),
    lambda: nd.NeuralODE(3, hidden_size=4, output_size=2, seed=0),
    lambda: nd.Liquid(3, hidden_size=4, num_layers=1, seed=0),
    lambda: nd.Hopfield(4, num_patterns=6, pattern_dim=3, seed=0),
    lambda: nd.EBM(3, hidden_sizes=(4,), seed=0),
    lambda: nd.ann2snn(nd.ANN(3, hidden_sizes=(4,), output_size=2, seed=0), np.ones((5, 3)), num_timesteps=7),
]


@pytest.mark.parametrize("make", MODELS)
def test_round_trip(make, tmp_path):
    model = make()
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = nd.load(path)
    assert type(back) is type(model) and back.config == model.config
    assert list(back.params) == list(model.params)
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)


def test_read_by_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model = nd.CfC(3, 4, backbone_units=5, output_size=2, seed=1, dtype=np.float64)
    path = tmp_path / "m.safetensors"
    model.save(path)
    arrays = st.load_file(str(path))
    assert set(arrays) == set(model.params)
    for k, v in model.params.items():
        np.testing.assert_array_equal(arrays[k], v)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["class"] == "CfC" and json.loads(meta["config"]) == model.config
    torch_st = pytest.importorskip("safetensors.torch")
    tensors = torch_st.load_file(str(path))
    np.testing.assert_array_equal(tensors["ff1.kernel"].numpy(), model.params["ff1.kernel"])


def test_checkpoints_stay_npz(tmp_path):
    from neurodyn import io

    with pytest.raises(ValueError, match="npz"):
        io.save(nd.SNN(2, 2, hidden_sizes=(2,)), tmp_path / "c.safetensors", training=({}, {}))


def _write(path, header, data=b"", n=None):
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if n is None else n))
        f.write(text)
        f.write(data)
    return path


def _good(tmp_path):
    model = nd.SNN(2, 2, hidden_sizes=(3,), seed=0)
    path = tmp_path / "good.safetensors"
    model.save(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


@pytest.mark.parametrize("damage,message", [
    (lambda h, d: (h, d[:-4]), "cover|outside"),
    (lambda h, d: (h, d + b"\0" * 8), "cover"),
    (lambda h, d: ({**h, "snn_layer_0_dense.kernel": {**h["snn_layer_0_dense.kernel"], "dtype": "I64"}}, d), "dtype"),
    (lambda h, d: ({**h, "snn_layer_0_dense.kernel": {**h["snn_layer_0_dense.kernel"], "shape": [3, 2]}}, d),
     "shape"),
    (lambda h, d: ({**h, "snn_layer_0_dense.kernel": {**h["snn_layer_0_dense.kernel"], "shape": [2, 4]}}, d),
     "bytes"),
    (lambda h, d: ({k: v for k, v in h.items() if k != "snn_output.bias"}, d[:-8]), "missing|names differ"),
    (lambda h, d: ({**h, "extra": {"dtype": "F32", "shape": [0], "data_offsets": [len(d), len(d)]}}, d), "extra"),
    (lambda h, d: ({k: v for k, v in h.items() if k != "__metadata__"}, d), "__metadata__"),
    (lambda h, d: ({**h, "__metadata__": {**h["__metadata__"], "class": "Nope"}}, d), "unknown model class"),
    (lambda h, d: ({**h, "__metadata__": {**h["__metadata__"], "config": "x" * 70000}}, d), "longer"),
    (lambda h, d: ({**h, "__metadata__": {**h["__metadata__"], "version": 1}}, d), "not text"),
    (lambda h, d: ({**h, "snn_output.bias": {**h["snn_output.bias"], "data_offsets": [0, 8]}}, d), "tile"),
])
def test_hostile_files_are_refused(tmp_path, damage, message):
    header, data = _good(tmp_path)
    h, d = damage(header, data)
    path = _write(tmp_path / "bad.safetensors", h, d)
    with pytest.raises(ValueError, match=message):
        nd.load(path)


def test_hostile_header_lengths(tmp_path):
    header, data = _good(tmp_path)
    with pytest.raises(ValueError, match="header declares"):
        nd.load(_write(tmp_path / "a.safetensors", header, data, n=1 << 40))
    p = tmp_path / "b.safetensors"
    text = b'{"a": 1, "a": 2}'
    p.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(ValueError, match="twice"):
        nd.load(p)
    p.write_bytes(struct.pack("<Q", 3) + b"{[")
    with pytest.raises(ValueError, match="cannot read a neurodyn model"):
        nd.load(p)
