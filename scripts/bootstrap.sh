#!/usr/bin/env bash
# Create .venv (if missing) and install policytag with its test extras.
# torch: a CPU build is installed first when none is present, so that pip does not pull
# a multi-GB CUDA build. Override with TORCH_SPEC (e.g. TORCH_SPEC="torch" on a GPU box).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
if ! python -c "import torch" 2>/dev/null; then
  spec=${TORCH_SPEC:-torch==2.13.0}
  echo "[bootstrap] installing $spec (CPU build where available)"
  python -m pip install -q "$spec" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} 2>&1 | grep -v "is ignored" || true
  python -c "import torch" || { echo "[bootstrap] could not install torch; set TORCH_SPEC/TORCH_INDEX_URL" >&2; exit 1; }
fi
extras=${POLICYTAG_EXTRAS:-test}
echo "[bootstrap] installing policytag[$extras]"
python -m pip install -q -e ".[$extras]" 2>&1 | grep -vE "is ignored|^\s*$|!!|WheelFile|strategy" || true
python -c "import policytag" || { echo "[bootstrap] policytag failed to install" >&2; exit 1; }
