#!/bin/sh
# Renders the sample lineage report (lineage_test writes it) and takes a screenshot of it in
# headless Chromium; checks that a PNG of the page's size came out. Skips (77) without Chromium.
# Usage: screenshot_test.sh LINEAGE_TEST_EXE WORK_DIR
set -eu
exe=$1
work=$2
mkdir -p "$work"
PROV_REPORT_SAMPLE_OUT="$work/report.html" "$exe" --gtest_filter='*Sample*' >/dev/null
[ -s "$work/report.html" ] || { echo "no sample report written" >&2; exit 1; }
here=$(dirname "$0")
status=0
sh "$here/screenshot.sh" "$work/report.html" "$work/report.png" || status=$?
[ "$status" -eq 0 ] || exit "$status"
magic=$(head -c 8 "$work/report.png" | od -An -tx1 | tr -d ' \n')
[ "$magic" = "89504e470d0a1a0a" ] || { echo "not a PNG: $work/report.png" >&2; exit 1; }
size=$(wc -c < "$work/report.png")
[ "$size" -gt 20000 ] || { echo "screenshot suspiciously small ($size bytes)" >&2; exit 1; }
echo "screenshot: $work/report.png ($size bytes)"
