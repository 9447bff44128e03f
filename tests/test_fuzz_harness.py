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

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread() or
                                not hasattr(signal, "SIGVTALRM"), reason="the budget is a signal")


@pytest.mark.parametrize("seed", range(4))
def test_seeded_inputs_raise_only_documented_exceptions(seed):
    previous = signal.signal(signal.SIGVTALRM, fuzz_core._stop)
    try:
        rng = random.Random(seed)
        for _ in range(250):
            fuzz_core.one_input(None, fuzz_core.Fallback(rng))
    finally:
        signal.signal(signal.SIGVTALRM, previous)


def test_the_seed_corpus_has_one_input_per_entry_point():
    folder = os.path.join(os.path.dirname(__file__), "fuzz", "corpus")
    names = sorted(f.split("-", 1)[1] for f in os.listdir(folder))
    assert names == sorted(fuzz_core.ENTRIES)
