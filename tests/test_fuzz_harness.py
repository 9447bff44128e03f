"""The fuzz harness of CI (tests/fuzz/fuzz_core.py) on a few hundred seeded inputs: every
_core entry point with random arrays and options returns or raises a documented exception."""
import os
import random
import signal
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fuzz"))
import fuzz_core  # noqa: E402

pytestmark = [
    pytest.mark.skipif(threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGVTALRM"),
                       reason="the budget is a signal"),
    # absurd sizes are among the inputs: under AddressSanitizer each failed allocation is a report
    pytest.mark.skipif(bool(os.environ.get("ND_UNDER_ASAN")), reason="giant allocations are sanitizer reports"),
]


@pytest.mark.parametrize("seed", range(4))
def test_seeded_inputs_raise_only_documented_exceptions(seed):
    previous = signal.signal(signal.SIGVTALRM, fuzz_core._stop)
    try:
        rng = random.Random(seed)
        for _ in range(250):
            fuzz_core.one_input(None, fuzz_core.Fallback(rng))
    finally:
        signal.signal(signal.SIGVTALRM, previous)


def test_the_seed_corpus_replays_cleanly():
    """The seeds CI starts from (one per entry point when they were made; an entry point added
    since is reached all the same, its index being drawn from the input's bytes)."""
    folder = os.path.join(os.path.dirname(__file__), "fuzz", "corpus")
    seeds = sorted(f for f in os.listdir(folder) if not f.startswith("."))
    assert len(seeds) >= 30
    previous = signal.signal(signal.SIGVTALRM, fuzz_core._stop)
    try:
        for name in seeds:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            fuzz_core.one_input(data, fuzz_core.Fallback(random.Random(data)))
    finally:
        signal.signal(signal.SIGVTALRM, previous)
