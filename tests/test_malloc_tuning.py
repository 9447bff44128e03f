"""The malloc thresholds neurodyn sets at import (see ``neurodyn._default_malloc``).

Each case runs in a fresh interpreter: the thresholds are process-wide and set once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# glibc's malloc only: under AddressSanitizer (the sanitised CI run) ASan's allocator takes its
# place, mallopt refuses and mallinfo2 reports nothing.
glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None
                           or os.environ.get("ND_UNDER_ASAN", "0") not in ("", "0"), reason="glibc's malloc only")

# Allocates an 8 MiB array and reports whether glibc served it from mmap (mallinfo2's hblkhd
# grows) or from the heap, with neurodyn's record of what it did at import.
PROBE = r"""
import ctypes, json
import numpy as np
import neurodyn as nd

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblkhd
a = np.ones(1 << 21, dtype=np.float32)
mmapped = libc.mallinfo2().hblkhd - before
print(json.dumps({"tuning": nd.show_config()["malloc_tuning"], "mmapped": mmapped}))
"""


def run_probe(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    full.pop("NEURODYN_MALLOC_TUNING", None)
    full.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_arrays_below_32_mib_come_from_the_heap():
    r = run_probe()
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    trim = min(max(ram // 64, 64 << 20), 256 << 20)
    assert r["tuning"] == {"applied": True, "mmap_threshold": 32 << 20, "trim_threshold": trim}
    assert r["mmapped"] == 0


@glibc
def test_opt_out_keeps_glibc_defaults():
    r = run_probe(NEURODYN_MALLOC_TUNING="0")
    assert r["tuning"] == {"applied": False, "reason": "NEURODYN_MALLOC_TUNING=0"}
    assert r["mmapped"] >= 8 << 20  # glibc's default threshold (128 KiB) mmaps it


@glibc
@pytest.mark.parametrize("env, reason", [
    ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, "GLIBC_TUNABLES sets malloc tunables"),
])
def test_user_tuning_is_left_alone(env, reason):
    r = run_probe(**env)
    assert r["tuning"] == {"applied": False, "reason": reason}
    assert r["mmapped"] >= 8 << 20  # both settings keep an 8 MiB block above the threshold


def test_tune_malloc_rejects_bad_thresholds():
    from neurodyn import _core

    with pytest.raises(ValueError, match="between 0 and"):
        _core.tune_malloc(-1, 1 << 20)
    with pytest.raises(ValueError, match="between 0 and"):
        _core.tune_malloc(1 << 20, 1 << 40)
