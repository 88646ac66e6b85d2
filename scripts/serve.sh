#!/usr/bin/env bash
# One command from a fresh Debian machine to a running app: install, make sure both built-in
# catalogs' stores exist (built from the committed models, with progress), then serve
# (nginx in front of gunicorn; settings: FASHION16_* variables, see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m app index ensure
exec .venv/bin/python -m app serve
