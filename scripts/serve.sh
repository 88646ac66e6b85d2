#!/usr/bin/env bash
# One command from a fresh Debian machine to a running app: install, make sure the default
# gallery index exists (built from the committed model, with progress), start gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m app index ensure
bind="${FASHION16_BIND:-0.0.0.0:${PORT:-8000}}"
echo "==> Fashion-16 is starting on http://localhost:${bind##*:}/  (Ctrl-C stops it)"
exec .venv/bin/python -m app serve
