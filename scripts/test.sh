#!/usr/bin/env bash
# Set up (Chromium included, for the browser test) and run the whole test-suite.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=1 bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
