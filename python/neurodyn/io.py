"""Saving and loading models: one .npz holding every parameter and a JSON configuration.

The file format holds plain arrays and text only; loading never unpickles anything, so a
tampered file can fail to load but cannot run code. A file is read in an order that keeps a
hostile one cheap to refuse: the zip directory first, then the configuration (a bounded text
member), then each member's ``.npy`` header, which must agree with the shapes and dtype the
configuration implies; only then is any array data decompressed, and never more bytes than
its header declares. Every failure of the zip, JSON or NumPy layers is a ``ValueError`` that
says what was wrong.

A checkpoint written by ``fit(checkpoint=...)`` is a model file with a training section
beside it (the optimiser's moments, the loop's position and random state, the history);
``nd.load`` reads the model and leaves the training section alone.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile

import numpy as np

_FORMAT = "neurodyn-model"
_VERSION = 1
_CONFIG_KEY = "__neurodyn_config__"
_TRAINING_KEY = "__neurodyn_training__"
_TRAINING_PREFIXES = ("opt:", "train:")
_MAX_CONFIG_CHARS = 1 << 16  # a configuration is a few hundred characters
_MAX_TRAINING_BYTES = 1 << 26  # the training section's JSON (its history grows by a number a step)
_MAX_HEADER = 10_000  # bytes of a .npy header (NumPy's own default limit)


def _registry():
    from .ann2snn import ANN, ConvertedSNN
    from .ebm import EBM
    from .hopfield import AssociativeMemory, ClassicalHopfield, Hopfield
    from .hybrid import HybridEBM
    from .liquid import CfC, Liquid, LTCCell
    from .neural_ode import NeuralODE
    from .snn import SNN

    return {cls.__name__: cls for cls in (NeuralODE, Liquid, LTCCell, CfC, SNN, ANN, ConvertedSNN, Hopfield,
                                          AssociativeMemory, ClassicalHopfield, EBM, HybridEBM)}


def save(model, path, *, training=None) -> None:
    """Write ``model`` to exactly ``path`` (no suffix is added).

    ``training``: (JSON-serialisable dict, {key: array}) of a checkpoint's training section;
    each key starts with ``opt:`` or ``train:``.
    """
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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        self._file.close()

    def fail(self, reason: str):
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
        view = memoryview(out.reshape(-1).view(np.uint8)) if out.size else memoryview(b"")
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


def load(path):
    """Read a model written by ``model.save(path)`` (or a checkpoint written by ``fit``).

    The configuration is validated and every stored array's header is checked against the
    shapes it implies before any array data is read; nothing in the file is executed.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file written by ``save``.

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
    with _Archive(path) as ar:
        meta = _meta(ar)
        config = _layout(ar, meta)
        params = {name: ar.read(f"param:{name}") for name in meta["params"]}
    try:
        return meta["cls"]._from_saved(config, params, copy=False)
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{path!r} has an invalid configuration or parameters: {err}") from err


def read_checkpoint(path, model, expected) -> tuple[dict, dict, dict]:
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
