#!/usr/bin/env bash
# Debian packages the test suite drives (idempotent; `make test` runs it first):
# Chromium for the dashboard's browser tests (Playwright never downloads a browser of its own)
# and espeak-ng for the spoken-alert test. Needs root (CI and the dev machines run as root);
# without it, say what to install and go on (those tests then skip and say why).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: install ${missing[*]} (sudo apt-get install ${missing[*]}) for the browser and speech tests" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
