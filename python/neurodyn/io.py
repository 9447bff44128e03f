"""Saving and loading models: one .npz holding every parameter and a JSON configuration, or a
.safetensors file (the format PyTorch users read with the safetensors package) holding the same.

The file format holds plain arrays and text only; loading never unpickles anything, so a
tampered file can fail to load but cannot run code. A file is read in an order that keeps a
hostile one cheap to refuse: the zip directory first, then the configuration (a bounded text
member), then each member's ``.npy`` header, which must agree with the shapes and dtype the
configuration implies; only then is any array data decompressed, and never more bytes than
its header declares. Every failure of the zip, JSON or NumPy layers is a ``ValueError`` that
says what was wrong.

A path ending in ``.safetensors`` is written in that format: an 8-byte little-endian header
length, a JSON header naming every tensor (dtype, shape, byte range), then the raw little-endian
data; the tensors are the parameters under their own names, and the header's ``__metadata__``
holds the class, the configuration and the parameter list as JSON text. Reading it follows the
same order as for an .npz: the header's size is bounded and checked against the file's, then
the configuration must imply exactly the tensors the header declares (names, shapes, dtype), and
the byte ranges must tile the data exactly, before any data is read.

A checkpoint written by ``fit(checkpoint=...)`` is a model file with a training section
beside it (the optimiser's moments, the loop's position and random state, the history);
``nd.load`` reads the model and leaves the training section alone.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ._typing import PathLike

if TYPE_CHECKING:
    from .nn import Model

_FORMAT = "neurodyn-model"
_VERSION = 1
_CONFIG_KEY = "__neurodyn_config__"
_TRAINING_KEY = "__neurodyn_training__"
_TRAINING_PREFIXES = ("opt:", "train:")
_MAX_CONFIG_CHARS = 1 << 16  # a configuration is a few hundred characters
_MAX_TRAINING_BYTES = 1 << 26  # the training section's JSON (its history grows by a number a step)
_MAX_HEADER = 10_000  # bytes of a .npy header (NumPy's own default limit)
_SAFETENSORS = ".safetensors"
_MAX_SAFETENSORS_HEADER = 1 << 24  # bytes: ~100 per tensor plus the configuration
_SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}


def _registry():
    from .ann2snn import ANN, ConvertedSNN
    from .ebm import EBM
    from .hopfield import AssociativeMemory, ClassicalHopfield, Hopfield
    from .hybrid import HybridEBM
    from .liquid import CfC, Liquid, LTCCell
    from .memories import FiringRateMemory, IDPHopfield, SequentialHopfield
    from .neural_ode import NeuralODE
    from .snn import SNN

    return {cls.__name__: cls for cls in (NeuralODE, Liquid, LTCCell, CfC, SNN, ANN, ConvertedSNN, Hopfield,
                                          AssociativeMemory, ClassicalHopfield, EBM, HybridEBM, FiringRateMemory,
                                          IDPHopfield, SequentialHopfield)}


def save(model: Model, path: PathLike, *,
         training: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None) -> None:
    """Write ``model`` to exactly ``path`` (no suffix is added).

    ``training``: (JSON-serialisable dict, {key: array}) of a checkpoint's training section;
    each key starts with ``opt:`` or ``train:``. A path ending in ``.safetensors`` is written
    in the safetensors format (checkpoints are .npz files).
    """
    if os.fspath(path).endswith(_SAFETENSORS):
        if training is not None:
            raise ValueError("a checkpoint is written as an .npz file, not .safetensors")
        _save_safetensors(model, path)
        return
    meta = {"format": _FORMAT, "version": _VERSION, "class": type(model).__name__, "config": model.config,
            "params": list(model.params)}
    arrays = {f"param:{name}": value for name, value in model.params.items()}
    arrays[_CONFIG_KEY] = np.array(json.dumps(meta))
    if training is not None:
        info, extra = training
        arrays[_TRAINING_KEY] = np.frombuffer(json.dumps(info).encode("utf-8"), dtype=np.uint8)
        for key, value in extra.items():
            if not key.startswith(_TRAINING_PREFIXES):
                raise ValueError(f"a training entry must start with 'opt:' or 'train:', got {key!r}")
            arrays[key] = value
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


class _Header:
    """What a member's .npy header declares, and where its data starts."""

    def __init__(self, shape, dtype, fortran, offset):
        self.shape, self.dtype, self.fortran, self.offset = shape, dtype, fortran, offset
        self.nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow


class _Archive:
    """A model file opened for bounded reading. Members are named by their array key (the zip
    member name without ``.npy``)."""

    def __init__(self, path):
        self.path = path
        self._file = open(path, "rb")  # a missing or unreadable file raises its own OSError
        self._headers: dict[str, _Header] = {}
        try:
            with self.reading():
                self._zip = zipfile.ZipFile(self._file)
                members = {}
                for info in self._zip.infolist():
                    if not info.filename.endswith(".npy"):
                        raise ValueError(f"member {info.filename!r} is not a .npy array")
                    key = info.filename[:-4]
                    if key in members:
                        raise ValueError(f"member {info.filename!r} appears twice")
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        raise ValueError(f"member {info.filename!r} uses compression method {info.compress_type}, "
                                         f"not stored or deflated")
                    if info.flag_bits & 0x1:
                        raise ValueError(f"member {info.filename!r} is encrypted")
                    members[key] = info
                self.members = members
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self):
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        self._file.close()

    def fail(self, reason: str) -> NoReturn:
        raise ValueError(f"cannot read a neurodyn model from {self.path!r}: {reason}")

    @contextlib.contextmanager
    def reading(self):
        """Every failure of the zip, JSON and NumPy layers as a ValueError with its reason.

        Whatever a damaged or hostile stream makes those layers raise (BadZipFile,
        NotImplementedError for an unknown compression, zlib.error, EOFError, struct.error,
        UnicodeDecodeError, ...) is a property of the file, so every Exception but MemoryError
        is turned into a ValueError; KeyboardInterrupt and the like pass through."""
        try:
            yield
        except MemoryError:
            raise
        except RecursionError:
            self.fail("its JSON is nested too deeply")
        except ValueError as err:
            if str(err).startswith("cannot read a neurodyn model"):
                raise
            self.fail(str(err) or "ValueError")
        except Exception as err:
            self.fail(f"{type(err).__name__}: {err}")

    def header(self, key: str) -> _Header:
        """The .npy header of member ``key``, read without touching its data; its declared
        size must be exactly the header plus the data it describes."""
        if key in self._headers:
            return self._headers[key]
        info = self.members.get(key)
        if info is None:
            self.fail(f"member {key + '.npy'!r} is missing")
        with self.reading(), self._zip.open(info) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=_MAX_HEADER)
            else:
                raise ValueError(f"member {key!r} has .npy format version {version}; 1.0 or 2.0 expected")
            offset = fp.tell()
        if dtype.hasobject or dtype.kind not in "fiuU" or dtype.fields is not None or dtype.subdtype is not None:
            self.fail(f"member {key!r} has dtype {dtype}; only plain numbers and text are read")
        header = _Header(tuple(shape), dtype, fortran, offset)
        if offset + header.nbytes != info.file_size:
            self.fail(f"member {key!r} declares shape {header.shape} and dtype {dtype} ({header.nbytes} bytes) but "
                      f"the archive says it holds {info.file_size - offset} bytes")
        self._headers[key] = header
        return header

    def read(self, key: str) -> np.ndarray:
        """The data of member ``key`` as a new native-order array: exactly the bytes its header
        declares are decompressed, read straight into the array."""
        h = self.header(key)
        out = np.empty(h.shape[::-1] if h.fortran else h.shape, dtype=h.dtype)
        view = out.reshape(-1).view(np.uint8).data if out.size else memoryview(b"")
        with self.reading(), self._zip.open(self.members[key]) as fp:
            if len(fp.read(h.offset)) != h.offset:
                raise ValueError(f"member {key!r} ends inside its header")
            done = 0
            while done < h.nbytes:
                n = fp.readinto(view[done:])
                if not n:
                    raise ValueError(f"member {key!r} ends after {done} of its {h.nbytes} bytes")
                done += n
            if fp.read(1):
                raise ValueError(f"member {key!r} holds more data than its header declares")
        if h.fortran:
            out = np.array(out.T, order="C")
        return out if h.dtype.isnative else out.astype(h.dtype.newbyteorder("="))

    def text(self, key: str, limit: int) -> str:
        """A text member: a 0-d unicode array (the configuration) or UTF-8 bytes (the training
        section), at most ``limit`` characters, refused from its header when longer."""
        h = self.header(key)
        if h.dtype.kind == "U" and h.shape == ():
            if h.dtype.itemsize // 4 > limit:
                self.fail(f"member {key!r} is {h.dtype.itemsize // 4} characters long; at most {limit} expected")
            return str(self.read(key)[()])
        if h.dtype == np.uint8 and len(h.shape) == 1:
            if h.shape[0] > limit:
                self.fail(f"member {key!r} is {h.shape[0]} bytes long; at most {limit} expected")
            with self.reading():
                return self.read(key).tobytes().decode("utf-8")
        return self.fail(f"member {key!r} has dtype {h.dtype} and shape {h.shape}; text was expected")

    def json(self, key: str, limit: int):
        text = self.text(key, limit)
        with self.reading():
            return json.loads(text)


def _save_safetensors(model, path) -> None:
    names = list(model.params)
    header: dict[str, Any] = {"__metadata__": {"format": _FORMAT, "version": str(_VERSION),
                                               "class": type(model).__name__, "config": json.dumps(model.config),
                                               "params": json.dumps(names)}}
    codes = {v: k for k, v in _SAFETENSORS_DTYPES.items()}
    arrays, offset = [], 0
    for name in names:
        a = np.ascontiguousarray(model.params[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)  # the format is little-endian
        if a.dtype not in codes:
            raise ValueError(f"parameter {name!r} has dtype {a.dtype}; safetensors files hold float32 or float64 here")
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(os.fspath(path), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(a.reshape(-1).data.cast("B") if a.size else b"")


def _unique_keys(pairs):
    """A JSON object that names a key twice is refused (json.loads would keep the last one)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the JSON header names {k!r} twice")
        out[k] = v
    return out


class _SafeTensors(_Archive):
    """A .safetensors model file opened for bounded reading, with the interface of _Archive:
    ``members`` holds the configuration entry and ``param:<name>`` for every tensor."""

    def __init__(self, path):
        self.path = path
        self._file = open(path, "rb")
        self._headers = {}
        try:
            with self.reading():
                self._parse()
        except BaseException:
            self._file.close()
            raise

    def _parse(self):
        size = os.fstat(self._file.fileno()).st_size
        head = self._file.read(8)
        if len(head) != 8:
            self.fail("it ends inside the header length")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_SAFETENSORS_HEADER or 8 + n > size:
            self.fail(f"its header declares {n} bytes; at most {min(_MAX_SAFETENSORS_HEADER, size - 8)} are possible")
        header = json.loads(self._file.read(n).decode("utf-8"), object_pairs_hook=_unique_keys)
        if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
            self.fail("its header has no __metadata__ (it was not written by neurodyn)")
        self._meta_text = header.pop("__metadata__")
        self._data_start, data_len = 8 + n, size - 8 - n
        spans, members = [], {_CONFIG_KEY: None}
        for name, entry in header.items():
            if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
                self.fail(f"tensor {name!r} has a malformed entry")
            dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
            shape, span = entry["shape"], entry["data_offsets"]
            if dtype is None:
                self.fail(f"tensor {name!r} has dtype {entry['dtype']!r}; F32 or F64 expected")
            if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or len(shape) > 32:
                self.fail(f"tensor {name!r} has a malformed shape {shape!r}")
            if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)
                    and 0 <= span[0] <= span[1] <= data_len):
                self.fail(f"tensor {name!r} has byte range {span!r} outside the {data_len} data bytes")
            h = _Header(tuple(shape), dtype, False, self._data_start + span[0])
            if span[1] - span[0] != h.nbytes:
                self.fail(f"tensor {name!r} declares shape {h.shape} and dtype {dtype} ({h.nbytes} bytes) but a byte "
                          f"range of {span[1] - span[0]}")
            key = f"param:{name}"
            members[key] = None
            self._headers[key] = h
            spans.append((span[0], span[1], name))
        end = 0
        for begin, stop, name in sorted(spans):
            if begin != end:
                self.fail(f"tensor {name!r} starts at byte {begin} of the data, not {end}: the byte ranges must tile it")
            end = stop
        if end != data_len:
            self.fail(f"the tensors cover {end} of the {data_len} data bytes")
        self.members = members

    def close(self):
        self._file.close()

    def header(self, key: str) -> _Header:
        if key not in self._headers:
            self.fail(f"tensor {key.partition(':')[2]!r} is missing")
        return self._headers[key]

    def read(self, key: str) -> np.ndarray:
        h = self.header(key)
        out = np.empty(h.shape, dtype=h.dtype)
        with self.reading():
            self._file.seek(h.offset)
            if h.nbytes and self._file.readinto(out.reshape(-1).view(np.uint8).data) != h.nbytes:
                raise ValueError(f"tensor {key.partition(':')[2]!r} ends early")
        return out if h.dtype.isnative else out.astype(h.dtype.newbyteorder("="))

    def json(self, key: str, limit: int):
        """The model's entry rebuilt from the header's __metadata__ (text values only)."""
        m = self._meta_text
        if not all(isinstance(v, str) for v in m.values()):
            self.fail("its __metadata__ holds values that are not text")
        if len(m.get("config", "")) > limit or len(m.get("params", "")) > _MAX_SAFETENSORS_HEADER:
            self.fail(f"its configuration is longer than {limit} characters")
        with self.reading():
            version = int(m["version"]) if m.get("version", "").isdigit() else m.get("version")
            return {"format": m.get("format"), "version": version, "class": m.get("class"),
                    "config": json.loads(m.get("config", "null")), "params": json.loads(m.get("params", "null"))}


def _open(path):
    """The model file at ``path``: an .npz (a zip archive) or a .safetensors file."""
    with open(path, "rb") as f:
        magic = f.read(9)
    if len(magic) == 9 and magic[:2] != b"PK" and magic[8:9] == b"{":
        return _SafeTensors(path)
    return _Archive(path)


def _meta(ar: _Archive) -> dict:
    """The checked top-level entry of a model file."""
    if _CONFIG_KEY not in ar.members:
        raise ValueError(f"{ar.path!r} is not a neurodyn model file (no configuration entry)")
    meta = ar.json(_CONFIG_KEY, _MAX_CONFIG_CHARS)
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{ar.path!r} is not a neurodyn model file")
    if meta.get("version") != _VERSION:
        raise ValueError(f"{ar.path!r} has format version {meta.get('version')!r}; this neurodyn reads {_VERSION}")
    cls = _registry().get(meta.get("class")) if isinstance(meta.get("class"), str) else None
    if cls is None:
        raise ValueError(f"{ar.path!r} holds an unknown model class {meta.get('class')!r}")
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{ar.path!r} has a malformed configuration")
    names = meta.get("params")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError(f"{ar.path!r} has a malformed configuration (parameter list)")
    meta["cls"] = cls
    return meta


def _layout(ar: _Archive, meta: dict) -> dict:
    """The configuration, checked against the members' headers (no array data is read): the
    parameters it implies must be exactly the stored ones, name for name, shape for shape."""
    headers = {name: ar.header(f"param:{name}") for name in meta["params"]}
    try:
        stored = sum(key.startswith("param:") for key in ar.members)
        config = meta["cls"]._check_saved(meta["config"], headers, budget=stored)
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{ar.path!r} has an invalid configuration or parameters: {err}") from err
    known = {_CONFIG_KEY} | {f"param:{name}" for name in meta["params"]}
    training = _TRAINING_KEY in ar.members
    for key in ar.members:
        if key not in known and not (training and (key == _TRAINING_KEY or key.startswith(_TRAINING_PREFIXES))):
            ar.fail(f"unexpected member {key + '.npy'!r}")
    return config


def load(path: PathLike) -> Model:
    """Read a model written by ``model.save(path)`` (or a checkpoint written by ``fit``).

    The configuration is validated and every stored array's header is checked against the
    shapes it implies before any array data is read; nothing in the file is executed.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` or ``.safetensors`` file written by ``save`` (told apart by their content).

    Returns
    -------
    model
        A model of the saved class, with the saved configuration and parameters, bit for bit.

    Raises
    ------
    FileNotFoundError
        There is no file at ``path`` (other ``OSError`` s of opening it pass through too).
    ValueError
        The file is not a neurodyn model, is truncated, damaged or hostile, or its contents do
        not match its configuration.
    """
    path = os.fspath(path)
    with _open(path) as ar:
        meta = _meta(ar)
        config = _layout(ar, meta)
        params = {name: ar.read(f"param:{name}") for name in meta["params"]}
    try:
        return meta["cls"]._from_saved(config, params, copy=False)
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{path!r} has an invalid configuration or parameters: {err}") from err


def read_checkpoint(path: PathLike, model: Model,
                    expected: Callable[[str], tuple[tuple[int, ...], np.dtype] | None]
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray]]:
    """The parameters, training section and training arrays of a checkpoint written for
    ``model`` (same class and configuration). ``expected(key) -> (shape, dtype) or None`` says
    what each training array must be; every header is checked before any data is read."""
    path = os.fspath(path)
    with _Archive(path) as ar:
        meta = _meta(ar)
        if meta["cls"] is not type(model):
            raise ValueError(f"{path!r} holds a {meta['class']}, not a {type(model).__name__}")
        config = _layout(ar, meta)
        if config != model.config:
            raise ValueError(f"{path!r} was written by a {type(model).__name__} with another configuration: "
                             f"{config} instead of {model.config}")
        if _TRAINING_KEY not in ar.members:
            raise ValueError(f"{path!r} is a model file without a training section, not a checkpoint")
        info = ar.json(_TRAINING_KEY, _MAX_TRAINING_BYTES)
        if not isinstance(info, dict):
            raise ValueError(f"{path!r} has a malformed training section")
        keys = [k for k in ar.members if k.startswith(_TRAINING_PREFIXES)]
        for key in keys:
            want = expected(key)
            h = ar.header(key)
            if want is None:
                ar.fail(f"unexpected training entry {key!r}")
            if h.shape != tuple(want[0]) or h.dtype != np.dtype(want[1]):
                ar.fail(f"training entry {key!r} has shape {h.shape} and dtype {h.dtype}; "
                        f"{tuple(want[0])} and {np.dtype(want[1])} expected")
        params = {name: ar.read(f"param:{name}") for name in meta["params"]}
        arrays = {key: ar.read(key) for key in keys}
    return params, info, arrays
