#!/usr/bin/env bash
# Install what Fashion-16 needs on Debian/Ubuntu: system packages (only those missing)
# and the Python packages in .venv. Safe to run again. TRAIN=1 adds TensorFlow (training, conversion);
# DEV=1 adds everything the tests and benchmarks need (TensorFlow, pytest, Selenium, Chromium, Milvus, and
# axe-core from npm: the accessibility checker the browser tests inject, pinned in package-lock.json);
# MILVUS=1 adds the Milvus stores' client, Milvus Lite and the local server starter (requirements-milvus.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(dataset-fashion-mnist nginx)  # nginx: the reverse proxy of `python -m app serve`
[ "${DEV:-0}" = 1 ] && packages+=(chromium chromium-driver)
[ "${DEV:-0}" = 1 ] && ! command -v npm >/dev/null && packages+=(nodejs npm)
# A python3 from elsewhere (pyenv, python.org) is fine: apt's is needed only when none can make a venv.
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
requirements=(-r requirements.txt)
[ "${TRAIN:-0}" = 1 ] && requirements=(-r requirements-train.txt)
[ "${MILVUS:-0}" = 1 ] && requirements+=(-r requirements-milvus.txt)
[ "${DEV:-0}" = 1 ] && requirements=(-r requirements-dev.txt)  # includes requirements-milvus.txt
echo "==> pip install ${requirements[*]} (into .venv)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${requirements[@]}"
if [ "${DEV:-0}" = 1 ]; then
  echo "==> npm ci (axe-core, for the browser tests)"
  npm ci --no-audit --no-fund --loglevel=error
fi
