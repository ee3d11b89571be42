#!/usr/bin/env bash
# Screenshots of the built site with headless Chromium (Debian's `chromium` package).
#
#   tests/browser/screenshot.sh SITE_DIR PAGE OUT.png [light|dark] [WIDTHxHEIGHT]
#
# SITE_DIR is a built site (build/site), PAGE a page under it (index.html, agents/x.html, coverage.html).
# "dark" asks for the dark colour scheme, which mdBook's default "Auto" theme follows (it shows `navy`);
# "light" (the default) shows mdBook's light theme.
set -euo pipefail
site=${1:?site dir}; page=${2:?page}; out=${3:?output png}; scheme=${4:-light}; size=${5:-1280x2000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "chromium is not installed: apt-get install -y chromium" >&2
  exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$profile"
       --window-size="${size/x/,}" --virtual-time-budget=3000 --screenshot="$out")
if [ "$scheme" = dark ]; then
  flags+=(--force-dark-mode --blink-settings=preferredColorScheme=0)
else
  flags+=(--blink-settings=preferredColorScheme=1)
fi
"$browser" "${flags[@]}" "file://$(realpath "$site")/$page" >/dev/null 2>&1
echo "$out"
