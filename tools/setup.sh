#!/usr/bin/env bash
# Make (or reuse) the project's virtual environment ($LOSSVIZ_VENV, default .venv) with lossviz installed.
#   bash tools/setup.sh          runtime dependencies only (what `lossviz serve` / `lossviz train` need)
#   bash tools/setup.sh --dev    + the dev extras (nbdev, pytest, JupyterLab, Playwright, peers) and tools/peers-nodeps.txt
# Torch: a torch already in the venv is kept (e.g. a user's CUDA build). Otherwise a machine with an NVIDIA GPU gets
# the index's default (CUDA) build; a machine without one gets a CPU build: first from the PyTorch CPU index, else a
# CPU build that the configured indexes serve (checked with a dry run: any nvidia-* dependency means a CUDA build,
# which is never installed there). Whatever torch is there is then pinned, so nothing replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LOSSVIZ_VENV:-.venv}
PY=${PYTHON:-python3}
CPU_INDEX=${LOSSVIZ_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
# what to try from the configured indexes when the CPU index cannot be reached (each must resolve to a CPU build)
CPU_CANDIDATES=${LOSSVIZ_TORCH_CPU_CANDIDATES:-"torch torch==2.13.0"}
MODE=runtime
for arg in "$@"; do
  case "$arg" in
    --dev) MODE=dev ;;
    --runtime) MODE=runtime ;;
    *) echo "lossviz setup: unknown argument $arg (use --dev or --runtime)" >&2; exit 2 ;;
  esac
done
quiet() { grep -v -e "is ignored: it is neither" -e "^\s*$" || true; }
say() { echo "lossviz setup: $*"; }

stamp=$(cat pyproject.toml tools/setup.sh tools/peers-nodeps.txt 2>/dev/null | sha256sum | cut -c1-16)
done_as() { [ -x "$VENV/bin/lossviz" ] && [ "$(cat "$VENV/.lossviz-stamp-$1" 2>/dev/null)" = "$stamp" ]; }
if done_as "$MODE" || { [ "$MODE" = runtime ] && done_as dev; }; then
  exit 0  # up to date: a second invocation starts at once
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

# A dry run of `pip install $*`: prints the names of what it would install, or fails.
would_install() {
  local report; report=$(mktemp)
  if pip install -q --dry-run --ignore-installed --report "$report" "$@" >/dev/null 2>&1; then
    "$VENV/bin/python" -c "import json,sys; print(' '.join(i['metadata']['name'].lower() for i in json.load(open(sys.argv[1]))['install']))" "$report"
    rm -f "$report"
  else rm -f "$report"; return 1; fi
}

install_cpu_torch() {
  say "no NVIDIA GPU: installing a CPU build of torch"
  say "trying the PyTorch CPU index ($CPU_INDEX)"
  # only that index: no find-links, extra indexes or config files of this machine (they would answer instead)
  if env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT -u PIP_NO_INDEX PIP_CONFIG_FILE=/dev/null \
       "$VENV/bin/python" -m pip --disable-pip-version-check install -q --timeout 30 --retries 1 --index-url "$CPU_INDEX" torch 2>&1 | quiet \
     && "$VENV/bin/python" -W ignore -c "import torch" 2>/dev/null; then
    say "chose torch $("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null) from the PyTorch CPU index"; return 0
  fi
  say "the PyTorch CPU index is not reachable; looking for a CPU build on the configured indexes"
  for req in $CPU_CANDIDATES; do
    if names=$(would_install "$req"); then
      if echo " $names " | grep -q " nvidia-"; then
        say "  $req would be a CUDA build (it pulls $(echo "$names" | tr ' ' '\n' | grep -c '^nvidia-') nvidia-* packages): skipped"
        continue
      fi
      pip install -q "$req" 2>&1 | quiet
      say "chose $req -> torch $("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null) (CPU build) from the configured indexes"
      return 0
    else say "  $req: not available from the configured indexes"; fi
  done
  say "ERROR: no CPU build of torch is available (PyTorch CPU index unreachable; the configured indexes serve only CUDA builds)."
  say "       Install a CPU torch into $VENV yourself (e.g. $VENV/bin/pip install torch --index-url $CPU_INDEX), then rerun."
  return 1
}

if "$VENV/bin/python" -W ignore -c "import torch" 2>/dev/null; then
  say "keeping the torch already installed in $VENV"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "NVIDIA GPU found: installing torch from the configured index (CUDA build)"
  pip install -q torch 2>&1 | quiet
else
  install_cpu_torch
fi
torch_version=$("$VENV/bin/python" -W ignore -c "import torch; print(torch.__version__)" 2>/dev/null)
cuda=$("$VENV/bin/python" -W ignore -c "import torch; print(torch.version.cuda or 'none')" 2>/dev/null)
say "torch $torch_version (CUDA: $cuda)"
echo "torch==$torch_version" > "$VENV/torch-pin.txt"

if [ "$MODE" = dev ]; then
  say "installing lossviz[dev] (torch $torch_version kept)"
  pip install -q -c "$VENV/torch-pin.txt" -e ".[dev]" 2>&1 | quiet
  if grep -qv -e '^\s*#' -e '^\s*$' tools/peers-nodeps.txt 2>/dev/null; then
    say "installing the test-only peers of tools/peers-nodeps.txt with --no-deps"
    pip install -q --no-deps -c "$VENV/torch-pin.txt" -r tools/peers-nodeps.txt 2>&1 | quiet
  fi
else
  say "installing lossviz with its runtime dependencies (torch $torch_version kept)"
  pip install -q -c "$VENV/torch-pin.txt" -e . 2>&1 | quiet
fi
echo "$stamp" > "$VENV/.lossviz-stamp-$MODE"
say "done ($MODE)"
