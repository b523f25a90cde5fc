#!/usr/bin/env bash
# Set up (once) and run every test: the notebook/library sync check, nbdev-test, then pytest (browser and DDP tests included).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${LOSSVIZ_VENV:-.venv}
bash tools/setup.sh --dev || { echo "FAILED: setup"; exit 1; }

# Browser tests drive the system Chromium (Playwright never downloads a browser here).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${LOSSVIZ_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "lossviz tests: installing Chromium for the browser tests"
    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "lossviz tests: could not install chromium"
  else
    echo "lossviz tests: browser tests need Chromium: install the 'chromium' package or set LOSSVIZ_CHROMIUM=/path/to/chrome"
  fi
fi

# 1. The notebooks are the source: exporting and cleaning them must change nothing that is tracked.
state() { git status --porcelain --untracked-files=no; git status --porcelain -- lossviz README.md; git diff | sha256sum; }
before=$(state)
log=$(mktemp)
for step in "$VENV/bin/nbdev-export" "$VENV/bin/nbdev-clean" "$VENV/bin/python tools/readme.py"; do
  if ! $step >"$log" 2>&1 || grep -q "Traceback" "$log"; then   # any export error fails the run
    echo "FAILED: $step"; cat "$log"; rm -f "$log"; exit 1
  fi
done
rm -f "$log"
if [ "$before" != "$(state)" ]; then
  echo "FAILED: nbs/ and lossviz/ are out of sync, or a notebook is not clean. Run"
  echo "    $VENV/bin/nbdev-export && $VENV/bin/nbdev-clean"
  echo "and commit the result. Changed files:"
  git status --porcelain --untracked-files=no
  exit 1
fi

fail=0
# 2. Every notebook example is a test.
echo "== nbdev-test"
"$VENV/bin/nbdev-test" --n-workers 2 || { echo "FAILED: nbdev-test"; fail=1; }
# 3. pytest: property, cross-check, reliability, DDP and browser tests.
echo "== pytest"
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@" || { echo "FAILED: pytest"; fail=1; }
exit $fail
