"""``python -m neurodyn``: the tour runs, explains its figures, and its classifiers learn."""
import re

import pytest

from neurodyn.__main__ import FAMILIES, main


@pytest.fixture(scope="module")
def tour_output():
    import contextlib
    import io

    pytest.importorskip("sklearn")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([]) == 0
    return buffer.getvalue()


def test_every_family_explains_its_figures(tour_output):
    parts = tour_output.split("\n\n")[1:-1]
    assert len(parts) == len(FAMILIES)
    for part in parts:
        assert "      = " in part, part.splitlines()[0]


def test_held_out_accuracies_are_well_above_chance(tour_output):
    accuracies = [float(a) for a in re.findall(r"held-out accuracy (\d\.\d+) \(chance 0\.33\)", tour_output)]
    assert len(accuracies) == 3  # Liquid, LTCCell, CfC on three waveforms
    assert min(accuracies) >= 0.6
    snn = float(re.search(r"held-out accuracy (\d\.\d+)\n", tour_output).group(1))
    assert snn >= 0.9  # ten digits: chance 0.1
