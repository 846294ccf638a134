#!/usr/bin/env bash
# Install everything (scripts/install.sh) and run the whole test suite, lint and type checks.
# Under CI=true a skipped test counts as a failure (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check hectl tests bench scripts lab
.venv/bin/mypy hectl
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
