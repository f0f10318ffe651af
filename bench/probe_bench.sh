#!/bin/bash
# CPU probe throughput (docs/BENCHMARKS.md, "Probes"): local `prov probe` on the given models, and
# endpoint probing of `prov serve` (the first model) at concurrency 1, 8 and 32.
#   bench/probe_bench.sh BUILD_DIR SUITE MODEL...      e.g. build natural-v1:400 ../shared/fixtures/zoo-dev/{B,C,I1}
set -euo pipefail
BUILD=$1; SUITE=$2; shift 2
PROV="$BUILD/cli/prov"
TMP=$(mktemp -d); trap 'kill $SERVE_PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
SERVE_PID=""
rate() { grep -o '([0-9.]* probes/s)' | tr -d '(' | cut -d' ' -f1; }
[ -n "${SKIP_LOCAL:-}" ] || for m in "$@"; do
  for b in 1 16; do
    for run in 1 2 3; do
      r=$("$PROV" probe "$m" --suite "$SUITE" -o "$TMP/l.sig" --batch $b --no-resume 2>&1 | rate)
      echo "local $(basename "$m") batch=$b run=$run probes/s=$r"
    done
  done
done
"$PROV" serve "$1" --port 0 --threads 8 > "$TMP/serve.out" &
SERVE_PID=$!
for i in $(seq 50); do grep -q http "$TMP/serve.out" 2>/dev/null && break; sleep 0.2; done
URL=$(grep -o 'http://[0-9.:]*' "$TMP/serve.out")
NAME=$(awk '{print $3; exit}' "$TMP/serve.out")
for c in 1 8 32; do
  for run in 1 2 3; do
    r=$("$PROV" probe --endpoint "$URL" --model-name "$NAME" --suite "$SUITE" -o "$TMP/e.sig" \
        --concurrency $c --no-resume 2>&1 | rate)
    echo "endpoint $(basename "$1") concurrency=$c run=$run probes/s=$r"
  done
done
