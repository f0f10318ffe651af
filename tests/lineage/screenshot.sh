#!/bin/sh
# Renders an HTML file to a PNG with headless Chromium, for looking at a rendered report.
#
# Usage: screenshot.sh IN.html OUT.png
# Exits 77 (the "skipped" code of test drivers) when /usr/bin/chromium (or $CHROMIUM) is absent,
# 2 on bad usage, and non-zero when Chromium fails or writes no picture.
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 IN.html OUT.png" >&2
  exit 2
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "skipped: $chromium not found" >&2
  exit 77
fi
if [ ! -f "$1" ]; then
  echo "$0: no such file: $1" >&2
  exit 2
fi

in=$(realpath "$1")
out=$(realpath -m "$2")
# file:// URL: percent-encode the characters that would otherwise end or change the path.
url="file://$(printf '%s' "$in" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/#/%23/g' -e 's/?/%3F/g')"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
"$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars \
  --user-data-dir="$profile" --no-first-run --screenshot="$out" --window-size=1280,2000 \
  "$url" >/dev/null 2>&1 || {
  echo "$0: chromium failed" >&2
  exit 1
}
if [ ! -s "$out" ]; then
  echo "$0: chromium wrote no screenshot to $out" >&2
  exit 1
fi
echo "$out"
