#!/usr/bin/env bash
# Install what is needed and open the app on the bundled demo data set (or on ROOT if given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${CLEANING_VENV:-.venv}"
exec "$VENV/bin/python" -m streamlit run dashboard.py --server.address "${ADDRESS:-127.0.0.1}" \
  --server.port "${PORT:-8501}" -- "$@"
