#!/usr/bin/env bash
# Vendor TradingView's lightweight-charts (npm) into the dashboard's static files.
#
# The dashboard loads nothing from a CDN: the standalone production build is committed under
# chalicelib/dashboard/vendor/, so a Lambda package and CI need no npm. Re-run this (with
# node/npm installed) only to change the pinned version, then commit the result:
#     scripts/vendor_charts.sh            # the pinned version below
# The tarball's integrity is checked against the pin before anything is copied. The
# licence (Apache-2.0) asks for TradingView's attribution notice and a link to
# https://www.tradingview.com/ on the page: LICENSE and NOTICE are copied beside the build,
# and the chart shows TradingView's attribution logo (the library's default).
set -euo pipefail

VERSION=5.2.1
INTEGRITY="sha512-IVwoK1RLFiLPubaKIjNbtjWLnpPMqiABSrTay6whmNa8L1+19292VtHJ+BWyPUuLCwF0tcQlhEWd1CLB2a1nsQ=="

cd "$(dirname "$0")/.."
dest=chalicelib/dashboard/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "lightweight-charts@$VERSION" >/dev/null)
tarball="$work/lightweight-charts-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "lightweight-charts@$VERSION: integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"

mkdir -p "$dest"
cp "$work/package/dist/lightweight-charts.standalone.production.js" "$dest/"
cp "$work/package/LICENSE" "$dest/lightweight-charts.LICENSE"
{
  echo "TradingView Lightweight Charts™ v$VERSION (npm: lightweight-charts@$VERSION)"
  echo "Copyright (c) TradingView, Inc. https://www.tradingview.com/"
  echo "Licensed under the Apache License, Version 2.0 (lightweight-charts.LICENSE)."
  echo
  echo "Attribution, as the package's README (section License) asks:"
  sed -n '/^## License/,$p' "$work/package/README.md" | sed '1,2d' | grep -v '^\[' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
} >"$dest/lightweight-charts.NOTICE"
echo "vendored lightweight-charts@$VERSION into $dest"
