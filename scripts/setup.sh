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
  # requirements.txt names PyTorch's CPU wheel index (for Streamlit Community Cloud). Where it does not
  # answer (machines that reach PyPI only) pip would retry it for every package, so install from a copy
  # without that line; CLEANING_TORCH_INDEX=keep|drop forces either.
  index_line='--extra-index-url https://download.pytorch.org/whl/cpu'
  mode="${CLEANING_TORCH_INDEX:-auto}"
  if [ "$mode" = "auto" ]; then
    if "$PY" -c "import urllib.request as u; u.urlopen('https://download.pytorch.org/whl/cpu/', timeout=5)" \
        >/dev/null 2>&1; then mode=keep; else mode=drop; fi
  fi
  if [ "$mode" = "drop" ]; then
    echo "setup: PyTorch's CPU index is not reachable: installing torch from the default index" >&2
    tmpreq="$(mktemp -d)"
    grep -vxF -- "$index_line" requirements.txt > "$tmpreq/requirements.txt"
    cp requirements-dev.txt "$tmpreq/requirements-dev.txt"
    "$VENV/bin/python" -m pip install -q -r "$tmpreq/requirements-dev.txt"
    rm -rf "$tmpreq"
  else
    "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  fi
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
