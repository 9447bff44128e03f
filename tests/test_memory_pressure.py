"""Memory pressure: with the address space limited (RLIMIT_AS) a few MiB above what the process
uses, a call either works (on fewer kernel threads when threads cannot be created, with the
same bits) or raises MemoryError; the process never exits from inside a library (libgomp's
"Thread creation failed", OpenBLAS's "Memory allocation still failed").

Each case runs in a child process that sets the limit after its imports, at a range of
headrooms from too little for anything to enough for everything.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurodyn as nd

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status"),
    # AddressSanitizer reserves terabytes of shadow memory: no address-space limit fits it
    pytest.mark.skipif(bool(os.environ.get("ND_UNDER_ASAN")), reason="AddressSanitizer needs unlimited address space"),
]

HEADROOMS_MIB = (1, 8, 16, 32, 48, 64, 96, 192)

CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import neurodyn as nd

    def used():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    threads, headroom, case = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    x = np.random.default_rng(0).uniform(0, 2, (20, 64, 1024)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((256, 256)).astype(np.float32)
    d = np.random.default_rng(2).standard_normal((4096, 256)).astype(np.float32)
    nd.set_num_threads(threads)
    resource.setrlimit(resource.RLIMIT_AS, (used() + headroom * 2**20, resource.RLIM_INFINITY))
    try:
        if case == "lif_rate":
            out = nd.lif_rate(x, beta=0.9)
        else:  # a first product, split over the kernel threads
            out = nd._core.dense_forward(d, w, None)
        print(json.dumps({"sum": float(np.float64(out.astype(np.float64).sum())), "bytes": out.tobytes().hex()[:64]}))
    except MemoryError:
        print(json.dumps({"memory_error": True}))
""")


def _expected(case):
    x = np.random.default_rng(0).uniform(0, 2, (20, 64, 1024)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((256, 256)).astype(np.float32)
    d = np.random.default_rng(2).standard_normal((4096, 256)).astype(np.float32)
    out = nd.lif_rate(x, beta=0.9) if case == "lif_rate" else nd._core.dense_forward(d, w, None)
    return float(out.astype(np.float64).sum()), out.tobytes().hex()[:64]


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("case", ["lif_rate", "dense"])
def test_limited_address_space_gives_the_answer_or_memory_error(case, threads):
    want_sum, want_bytes = _expected(case)
    outcomes = []
    for headroom in HEADROOMS_MIB:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(headroom), case], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, (f"{case}, {threads} threads, {headroom} MiB: exit {proc.returncode}\n"
                                      f"{proc.stdout[-500:]}{proc.stderr[-2000:]}")
        assert "Thread creation failed" not in proc.stderr and "OpenBLAS error" not in proc.stderr, proc.stderr
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if row.get("memory_error"):
            outcomes.append("MemoryError")
            continue
        assert row["sum"] == want_sum and row["bytes"] == want_bytes, f"{case} at {headroom} MiB: other bits"
        outcomes.append("ok")
    assert outcomes[-1] == "ok", outcomes  # the range ends with room for the whole call


def test_an_import_without_room_for_openblas_buffer_raises():
    """OpenBLAS's first 32 MiB buffer is mapped at import, where its failure is an exception."""
    code = textwrap.dedent("""
        import resource, numpy
        def used():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (used() + 12 * 2**20, resource.RLIM_INFINITY))
        try:
            import neurodyn
            print("imported")
        except (MemoryError, ImportError) as err:
            print("raised", type(err).__name__)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "OpenBLAS error" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.split()[0] in ("imported", "raised"), proc.stdout
