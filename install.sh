#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks: espeak-ng (speech), Chromium, Node.js and npm (the live
# page's browser test) through apt; then this package with its test extras, and the browser test's driver.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"
npm install --prefix tests/browser --no-audit --no-fund --loglevel=error
