#!/usr/bin/env bash
# The main job: set up (once; runtime dependencies only) and serve the lossviz dashboard on 127.0.0.1 with a default
# live run. Extra arguments go to `lossviz serve` (e.g. --port 5007 --address 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LOSSVIZ_VENV:-.venv}
bash tools/setup.sh
exec "$VENV/bin/lossviz" serve "$@"
