#!/usr/bin/env bash
# Install what the app and the tests need into .venv (idempotent; re-runs pip only when the
# requirements change). Set CLEANING_VENV to use another venv folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CLEANING_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.requirements-$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing requirements-dev.txt into $VENV (torch is large: a few minutes the first time)" >&2
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  # the library itself, editable (the `cleaning` console script; tests import it without path tricks)
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
# A real browser for the click tests (Debian's chromium; Playwright cannot download its own here).
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "setup: chromium is missing; install it with: sudo apt-get install -y chromium" >&2
  fi
fi
