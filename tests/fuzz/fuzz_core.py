"""Coverage-guided fuzzing of the binding's entry points (neurodyn._core) with atheris.

Every input picks an entry point and builds its arguments from the fuzzer's bytes: arrays of
float32, float64, int64 and bool with 0 to 4 axes of 0 to 4 elements (NaN and inf among the
values), numbers at and past every boundary, option names from the kernels' tables and
misspelt ones, field and energy specs of the real objects and mangled ones, and Python
callables. A call may return or raise a documented exception: ValueError, TypeError,
MemoryError, OverflowError or neurodyn.IntegrationError. Anything else (another exception, a
crash, a sanitizer report) fails the run, and so does a hang: each call gets a CPU-time budget
after which a signal stops it through the kernels' polling (what Ctrl-C does), and libFuzzer's
-timeout ends the run when even that does not stop it.

    python tests/fuzz/fuzz_core.py tests/fuzz/corpus -max_total_time=120 -seed=1 -timeout=20

runs the fuzzer (new inputs go to the first directory: pass a copy of the corpus to keep the
repository's). Without atheris (it ships libFuzzer only in its wheels) the same harness runs on
bytes from a seeded generator for the time given: ``--fallback SECONDS``.
``--make-corpus DIR`` writes the seed corpus: one input per entry point.
"""
import math
import os
import random
import signal
import sys
import warnings

import numpy as np

import neurodyn as nd
from neurodyn import _core

DOCUMENTED = (ValueError, TypeError, MemoryError, OverflowError, nd.IntegrationError)
SKIP = {"set_num_threads", "tune_malloc", "thread_info", "IntegrationError"}  # process-wide settings
ENTRIES = sorted(n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n)) and n not in SKIP)
BUDGET = 1.0  # CPU seconds a call may take before it is stopped from inside its loops


class Budget(BaseException):
    """Raised by the budget's signal handler, from inside a kernel's poll."""


def _stop(signum, frame):
    raise Budget()


def _arg_names(fn):
    """The argument names of the signature line of a _core docstring."""
    doc = (fn.__doc__ or "").split("\n")[0]
    inner = doc.split("(", 1)[1].split(")")[0] if "(" in doc else ""
    names = []
    for part in inner.split(","):
        name = part.strip().split("=")[0].split("|")[0].strip(" *")
        if name.isidentifier():
            names.append(name)
    return names


NAMES = {e: _arg_names(getattr(_core, e)) for e in ENTRIES}
OPTIONS = sorted({v for names in _core.TABLES.values() for v in names})
INTS = [0, 1, 2, 3, 4, 7, -1, -2, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, -(2**63), 10**30]
FLOATS = [0.0, 1.0, 0.5, -0.5, 1e-3, 1e-300, 1e300, -1.0, math.nan, math.inf, -math.inf, 5e-324, 2.0**31]
DTYPES = [np.float32, np.float64, np.int64, np.bool_, np.float16, np.int8, np.complex64, object]
SPECS = [
    nd.fields.Lorenz()._spec(),
    nd.fields.Linear(np.array([[-1.0, 0.5], [0.0, -2.0]]))._spec(),
    nd.fields.MLP([np.ones((2, 3)), np.ones((3, 2))], [np.zeros(3), np.zeros(2)])._spec(),
    nd.energies.DoubleWell(dim=2)._spec(),
    nd.energies.Quadratic([0.5, -0.5], [[2.0, 0.3], [0.3, 1.0]])._spec(),
    nd.energies.GaussianMixture(np.zeros((2, 2)), np.stack([np.eye(2)] * 2))._spec(),
]


class Fallback:
    """The part of atheris.FuzzedDataProvider the harness uses, on a seeded generator."""

    def __init__(self, rng):
        self.rng = rng

    def ConsumeIntInRange(self, lo, hi):
        return self.rng.randint(lo, hi)

    def ConsumeBool(self):
        return self.rng.random() < 0.5

    def ConsumeFloat(self):
        return self.rng.choice(FLOATS + [self.rng.uniform(-10, 10)])

    def ConsumeBytes(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))


def _pick(fdp, seq):
    return seq[fdp.ConsumeIntInRange(0, len(seq) - 1)]


def _array(fdp):
    ndim = fdp.ConsumeIntInRange(0, 4)
    shape = tuple(fdp.ConsumeIntInRange(0, 4) for _ in range(ndim))
    dtype = _pick(fdp, DTYPES)
    size = int(np.prod(shape))
    raw = np.frombuffer(fdp.ConsumeBytes(8 * size).ljust(8 * size, b"\0"), dtype=np.uint8)[:size]
    vals = (raw.astype(np.float64) - 128.0) / 32.0
    if size and fdp.ConsumeIntInRange(0, 7) == 0:
        vals[fdp.ConsumeIntInRange(0, size - 1)] = _pick(fdp, [math.nan, math.inf, -math.inf])
    if dtype is object:
        return vals.reshape(shape).astype(object)
    with np.errstate(all="ignore"):
        a = vals.reshape(shape).astype(dtype)
    kind = fdp.ConsumeIntInRange(0, 5)
    if kind == 0 and ndim:
        return np.asfortranarray(a)
    if kind == 1 and ndim and size:
        return np.broadcast_to(a.flat[0], (2**40,) + shape[1:]) if fdp.ConsumeBool() else a[..., ::-1]
    return a


def _callable(fdp):
    shape = tuple(fdp.ConsumeIntInRange(0, 3) for _ in range(fdp.ConsumeIntInRange(0, 2)))
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return lambda *a: np.zeros(shape)
    if kind == 1:
        return lambda *a: (np.zeros(shape[:1]), np.zeros(shape))
    if kind == 2:
        return lambda *a: np.asarray(a[-1]) * -1.0 if a else 0.0

    def bad(*a):
        raise ValueError("raised by the callable")
    return bad


def _value(fdp, depth=0):
    kind = fdp.ConsumeIntInRange(0, 11)
    if kind <= 3:
        return _array(fdp)
    if kind == 4:
        return _pick(fdp, INTS)
    if kind == 5:
        return _pick(fdp, FLOATS) if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 6:
        return _pick(fdp, OPTIONS) if fdp.ConsumeBool() else _pick(fdp, ["", "RK4", "no-such", "x" * 300])
    if kind == 7:
        return _pick(fdp, [None, True, False])
    if kind == 8:
        spec = _pick(fdp, SPECS)
        if fdp.ConsumeBool() and depth < 2:  # one part of a real spec replaced
            spec = list(spec)
            spec[fdp.ConsumeIntInRange(0, len(spec) - 1)] = _value(fdp, depth + 1)
            spec = tuple(spec)
        return spec
    if kind == 9 and depth < 2:
        return tuple(_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4)))
    if kind == 10:
        return _callable(fdp)
    return {"a": 1} if fdp.ConsumeBool() else object()


def one_input(data, fdp=None):
    if fdp is None:
        import atheris
        fdp = atheris.FuzzedDataProvider(data)
    name = ENTRIES[fdp.ConsumeIntInRange(0, len(ENTRIES) - 1)]
    names = NAMES[name]
    npos = fdp.ConsumeIntInRange(0, len(names) + 1)
    args = [_value(fdp) for _ in range(npos)]
    kwargs = {}
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        key = _pick(fdp, names + ["no_such_keyword"]) if names else "no_such_keyword"
        kwargs[key] = _value(fdp)
    fn = getattr(_core, name)
    try:
        signal.setitimer(signal.ITIMER_VIRTUAL, BUDGET)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # warnings are not failures here
                fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    except Budget:
        pass  # stopped from inside the kernel, as Ctrl-C would be
    except DOCUMENTED:
        pass
    except Exception as err:
        raise AssertionError(f"_core.{name} raised {type(err).__name__}: {err}\n"
                             f"args={args!r:.2000}\nkwargs={kwargs!r:.2000}") from err


def make_corpus(folder):
    """One seed per entry point: its index in the first bytes, then bytes from a fixed generator."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1)
    for i, name in enumerate(ENTRIES):
        body = bytes(rng.getrandbits(8) for _ in range(256))
        # atheris's ConsumeIntInRange reads little-endian bytes from the front: i selects the entry
        with open(os.path.join(folder, f"{i:02d}-{name}"), "wb") as f:
            f.write(bytes([i]) + body)


def fallback(seconds, seed=1):
    import time
    rng = random.Random(seed)
    end, calls = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        one_input(None, Fallback(rng))
        calls += 1
    print(f"fallback fuzzing: {calls} calls in {seconds} s, no undocumented exception")


def main(argv):
    signal.signal(signal.SIGVTALRM, _stop)
    if len(argv) > 2 and argv[1] == "--make-corpus":
        return make_corpus(argv[2])
    if len(argv) > 2 and argv[1] == "--fallback":
        return fallback(float(argv[2]))
    import atheris
    for f in (one_input, _value, _array, _callable):  # the harness's branches guide the search
        globals()[f.__name__] = atheris.instrument_func(f)
    atheris.Setup(argv, globals()["one_input"])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
