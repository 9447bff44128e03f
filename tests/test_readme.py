"""The README's and the user guide's examples run as written, and print what they say.

Every ```python block of README.md and of docs/guide/*.md is executed, top to bottom, in a
fresh namespace and a temporary working directory (examples that save files write there).
Blocks of one page share nothing: each must be complete.

A printed claim is written on the last line of a statement as a comment, and covers all that
the statement prints (a loop: every line)::

    print(acc)   # prints 0.97 ± 0.01

The words and numbers of the comment (up to an em dash, after which the comment is free text)
are compared with those the statement printed, in order and in count; punctuation is
ignored. Words (True, float32) must be equal. A number followed by ``± tol`` may differ by
tol; a number without one must agree to the digits it is written with (0.6875 means the
printed value rounds to 0.6875). A block that cannot run here (one that
connects to a cluster) is preceded by ``<!-- not run: REASON -->``, and must give the reason.
"""
from __future__ import annotations

import ast
import contextlib
import io
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md"] + sorted((ROOT / "docs" / "guide").glob("*.md"))

# in the test extra, or in the interop extra, not in neurodyn's dependencies
OPTIONAL = {"sklearn", "dask", "distributed", "torch", "nir"}
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
_SKIP = re.compile(r"<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->")
_NUMBER = r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# Words (True, float32, step_underflow) must match exactly; numbers within their tolerance.
_TOKEN = re.compile(rf"(?P<word>[A-Za-z_]\w*)|(?P<value>{_NUMBER})(?:\s*±\s*(?P<tol>{_NUMBER}))?")


def _blocks():
    out = []
    for page in PAGES:
        text = page.read_text()
        for k, m in enumerate(_BLOCK.finditer(text)):
            line = text.count("\n", 0, m.start("code")) + 1
            skip = _SKIP.search(m.group("before"))
            out.append(pytest.param(page, line, m.group("code"), skip.group("reason") if skip else None,
                                    id=f"{page.relative_to(ROOT)}:{line}"))
    return out


BLOCKS = _blocks()


def _decimals(token: str) -> int:
    mantissa = re.split("[eE]", token)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _claims(source_lines, stmt):
    """The ``# prints ...`` claim written on the last line of ``stmt``, or None."""
    line = source_lines[stmt.end_lineno - 1]
    m = re.search(r"#\s*prints\s+(?P<claim>.*)$", line)
    if not m:
        return None
    return re.split(r"\s+—\s+", m.group("claim"))[0]


def _check(claim: str, printed: str, where: str) -> None:
    expected, got = list(_TOKEN.finditer(claim)), list(_TOKEN.finditer(printed))
    message = f"{where}: claims {claim!r} but printed {printed!r}"
    assert len(got) == len(expected), message
    for want, have in zip(expected, got):
        if want.group("word") or have.group("word"):
            assert want.group("word") == have.group("word"), message
            continue
        value = float(have.group("value").replace("_", ""))
        target = float(want.group("value").replace("_", ""))
        if want.group("tol"):
            tol = float(want.group("tol"))
        else:  # written to d decimals: the printed value must round to it
            tol = 0.5 * 10.0 ** -_decimals(want.group("value"))
        assert abs(value - target) <= tol * (1 + 1e-9) + 1e-15, message  # 1.1 - 1.0 is 0.1 + 1e-16


def test_there_are_examples():
    assert len(BLOCKS) >= 8
    text = (ROOT / "README.md").read_text()
    assert "pip install . && python -m neurodyn" in text
    assert 'pip install ".[test]" && python -m pytest' in text


@pytest.mark.parametrize("page, line, code, skip", BLOCKS)
def test_example_runs_and_prints_what_it_says(page, line, code, skip, tmp_path, monkeypatch):
    if skip:
        pytest.skip(skip)
    monkeypatch.chdir(tmp_path)
    source_lines = code.splitlines()
    tree = ast.parse(code, filename=str(page))
    namespace = {"__name__": "__readme__"}
    checked = 0
    try:
        for stmt in tree.body:
            buffer = io.StringIO()
            compiled = compile(ast.Module(body=[stmt], type_ignores=[]), f"{page.name}:{line}", "exec")
            with contextlib.redirect_stdout(buffer):
                try:
                    exec(compiled, namespace)
                except ModuleNotFoundError as err:
                    if err.name and err.name.split(".")[0] in OPTIONAL:
                        pytest.skip(f"needs {err.name} (pip install \".[test]\")")
                    raise
            claim = _claims(source_lines, stmt)
            if claim is not None:
                _check(claim, buffer.getvalue(), f"{page.name} line {line + stmt.end_lineno - 1}")
                checked += 1
    finally:
        client = namespace.get("client")
        if client is not None and hasattr(client, "close"):
            client.close()
    assert checked == code.count("# prints"), "a '# prints' comment is not on the last line of its statement"


def test_claim_checker_uses_the_stated_tolerances():
    _check("0.70 ± 0.02, 0.97", "0.712 0.9704\n", "here")
    _check("(11, 1_000_000, 3)", "(11, 1000000, 3)\n", "here")
    with pytest.raises(AssertionError):
        _check("0.70 ± 0.01", "0.712\n", "here")
    with pytest.raises(AssertionError):
        _check("0.6875", "0.6877\n", "here")
    with pytest.raises(AssertionError):
        _check("1.0", "1.0 2.0\n", "here")
    with pytest.raises(AssertionError):
        _check("True", "False\n", "here")
    _check("(2, 5, 1) float32", "(2, 5, 1) float32\n", "here")
    _check("[0.5403 -0.8415]", "[ 0.54030297 -0.84147048]\n", "here")
