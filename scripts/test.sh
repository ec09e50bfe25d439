#!/usr/bin/env bash
# Install what is needed and run ALL tests (unit, page smoke tests, real-browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
VENV="${CLEANING_VENV:-.venv}"
"$VENV/bin/python" -m ruff check cleaning pages tests bench scripts dashboard.py
exec "$VENV/bin/python" -m pytest -q "$@"
