#!/usr/bin/env bash
# The main job on the embedded default (localfs): install, then run the demo (scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python scripts/demo.py "$@"
