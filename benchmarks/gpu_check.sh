#!/usr/bin/env bash
# GPU readiness, in under 8 minutes on one GPU: the CUDA tests (pytest -m cuda), `lossviz train --device cuda`
# (plain, bf16 autocast, a pair loss, SAM), and the GPU benchmark ratios of whichever benchmarks exist
# (run overhead, pair losses, landscape, collapse, calibration, classification losses), then ONE summary table.
# Every step has its own time limit and the whole script a budget (GPU_CHECK_BUDGET, default 450 s): a step that would
# start past the budget is listed as "skipped". Logs: $GPU_CHECK_OUT (default: a fresh temporary folder).
#   bash benchmarks/gpu_check.sh            (after bash tools/setup.sh --dev on the GPU machine)
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${LOSSVIZ_VENV:-.venv}
PY="$VENV/bin/python"; [ -x "$PY" ] || PY=$(command -v python3)
OUT=${GPU_CHECK_OUT:-$(mktemp -d -t lossviz-gpu-XXXX)}; mkdir -p "$OUT"
BUDGET=${GPU_CHECK_BUDGET:-450}
T0=$(date +%s)
ROWS=()

step() { # step NAME SECONDS COMMAND...: run it with a limit, keep its log, add a row (status, time, the lines that matter)
  local name=$1 limit=$2; shift 2
  local now; now=$(date +%s)
  if [ $((now - T0 + 5)) -gt "$BUDGET" ]; then ROWS+=("$name|skipped (budget)|0s|"); return; fi
  local left=$((BUDGET - (now - T0))); [ "$limit" -gt "$left" ] && limit=$left
  local log="$OUT/$name.log" t=$now
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1; local rc=$?
  local dt=$(( $(date +%s) - t )) st=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then st="timeout (${limit}s)"; elif [ $rc -ne 0 ]; then st="FAIL (rc $rc)"; fi
  local what
  what=$(grep -iE "ratio|passed|failed|error|skipped|finished|diverged|accuracy|median" "$log" | grep -v "^\s*$" | tail -n 4 \
         | sed 's/|/ /g; s/  */ /g' | tr '\n' ';' | cut -c1-300)
  ROWS+=("$name|$st|${dt}s|$what")
}

echo "gpu_check: logs in $OUT"
if ! "$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__, 'CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(0) if ok else 'no GPU'); sys.exit(0 if ok else 1)"; then
  echo "gpu_check: torch sees no CUDA GPU; nothing to check"; exit 1
fi

LV=("$PY" -m lossviz.cli train --device cuda --no-progress --store "$OUT/runs.sqlite")
step cuda-tests        180 "$PY" -m pytest tests -m cuda -q -p no:cacheprovider -o addopts="" --timeout 150
step train-cuda         60 "${LV[@]}" --epochs 5
step train-cuda-bf16    60 "${LV[@]}" --epochs 5 --amp bf16
step train-cuda-pair    60 "${LV[@]}" --epochs 3 --loss multi_similarity --optimizer adam
step train-cuda-sam     60 "${LV[@]}" --epochs 3 --optimizer sam
step bench-run_overhead 60 "$PY" benchmarks/run_overhead.py --device cuda --epochs 5 --repeats 5
for b in pair_losses landscape collapse calibration losses; do
  [ -f "benchmarks/$b.py" ] && step "bench-$b" 60 "$PY" "benchmarks/$b.py" --device cuda
done

echo
echo "== gpu_check summary ($(( $(date +%s) - T0 )) s; budget ${BUDGET} s)"
{ echo "step|status|time|key lines"; printf '%s\n' "${ROWS[@]}"; } | column -t -s '|'
fails=$(printf '%s\n' "${ROWS[@]}" | grep -c -e "|FAIL" -e "|timeout" || true)
exit $(( fails > 0 ))
