#!/usr/bin/env bash
# The GPU check of issue 17 in one command: set up Python, then run benchmarks/gpu_check.py.
#
#   bash benchmarks/gpu_check.sh [OUT] [gpu_check.py options]     # OUT defaults to $OUT
#   bash benchmarks/gpu_check.sh /tmp/check --tiny --device cpu   # CPU smoke run
#
# Python: $PYTHON, else python3. ganvid runs from this checkout (PYTHONPATH), so nothing needs
# installing when the requirements are there. Requirements that are missing are installed:
#   - from wheels in .whl/ beside this repo's root when that folder exists (offline, as on the
#     GPU machine: see benchmarks/RESULTS.md, "GPU check: how to run"), into $GPU_CHECK_SITE;
#   - else, when torch itself is missing, into a fresh venv with `pip install -e .` (needs PyPI);
#   - else with pip from PyPI into $GPU_CHECK_SITE.
# TORCH_CUDA_ARCH_LIST defaults to 9.0 (H100/H200) for the CUDA ops build.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/ganvid_gpu_check_site}
export PYTHONUNBUFFERED=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "gpu_check.sh: no torch for $PY: making a venv with ganvid and its requirements"
    "$PY" -m venv /tmp/ganvid_gpu_check_venv &&
        /tmp/ganvid_gpu_check_venv/bin/python -m pip install -q -e ".[test]" ||
        { echo "gpu_check.sh: could not install ganvid" >&2; exit 2; }
    PY=/tmp/ganvid_gpu_check_venv/bin/python
fi

missing=$("$PY" benchmarks/gpu_check.py --missing-deps)
if [ -n "$missing" ]; then
    echo "gpu_check.sh: missing requirements:"; echo "$missing" | sed 's/^/    /'
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" .whl/*.whl
    else
        echo "$missing" | sed 's/ (found.*//' | xargs -d "\n" "$PY" -m pip install -q --retries 1 --timeout 10 --target "$SITE"
    fi
    export PYTHONPATH="$PYTHONPATH:$SITE"
    still=$("$PY" benchmarks/gpu_check.py --missing-deps)
    [ -n "$still" ] && echo "gpu_check.sh: still missing (the steps that need them will fail):" &&
        echo "$still" | sed 's/^/    /'
fi
"$PY" -c "import ganvid.cli, av, lpips" ||
    echo "gpu_check.sh: ganvid's CLI does not import (see above); the e2e and invert steps will fail"
exec "$PY" benchmarks/gpu_check.py "$@"
