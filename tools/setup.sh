#!/usr/bin/env bash
# Make (or reuse) the project's virtual environment in .venv with lossviz and its dev tools installed.
# Torch: an existing torch in the venv is kept (e.g. a user's CUDA build); otherwise a GPU machine gets PyPI's default
# torch and a machine without one gets the CPU build. Whatever torch is there is then pinned, so nothing replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LOSSVIZ_VENV:-.venv}
PY=${PYTHON:-python3}
quiet() { grep -v -e "is ignored: it is neither" -e "^\s*$" || true; }

stamp=$(cat pyproject.toml tools/setup.sh | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/lossviz" ] && [ "$(cat "$VENV/.lossviz-stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0  # up to date: a second invocation starts at once
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "lossviz setup: creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "lossviz setup: NVIDIA GPU found, installing torch (CUDA build)"
    pip install -q torch 2>&1 | quiet
  else
    echo "lossviz setup: no NVIDIA GPU, installing the CPU build of torch"
    if ! pip install -q "torch==2.13.0+cpu" 2>&1 | quiet; then
      echo "lossviz setup: torch==2.13.0+cpu is not available here; installing PyPI's torch instead"
      pip install -q torch 2>&1 | quiet
    fi
  fi
fi
torch_version=$("$VENV/bin/python" -c "import torch; print(torch.__version__)" 2>/dev/null)
echo "torch==$torch_version" > "$VENV/torch-pin.txt"

echo "lossviz setup: installing lossviz[dev] (torch $torch_version kept)"
pip install -q -c "$VENV/torch-pin.txt" -e ".[dev]" 2>&1 | quiet
echo "$stamp" > "$VENV/.lossviz-stamp"
echo "lossviz setup: done"
