#!/usr/bin/env bash
# `prov digest` throughput against sha256sum on a generated sharded safetensors checkpoint.
#
# Writes a Llama-shaped BF16 checkpoint of about SIZE_GB (default 4.3) with `prov example`,
# then, for RUNS runs each (default 5, medians reported), times:
#   - sha256sum over the shard files, one process (one core): the per-core reference;
#   - prov digest --threads 1 and --threads N (N = cores);
#   - peak RSS of prov digest (GNU time), and prov inspect --no-digest wall time.
# Page cache is warm for every run (each tool reads the same files, first run discarded).
# Usage: bench/digest_bench.sh [BUILD_DIR] [SIZE_GB] [RUNS]
set -euo pipefail
BUILD=${1:-build}
SIZE_GB=${2:-4.3}
RUNS=${3:-5}
PROV="$BUILD/cli/prov"
DIR=${BENCH_DIR:-/tmp/prov-digest-bench}
CORES=$(nproc)

# hidden 2048, vocab 32000, BF16: pick the layer count that gives about SIZE_GB.
LAYERS=$(python3 -c "
h=2048; i=5120; v=32000
per_layer=(3*h*h + 3*h*i + 2*h)*2
fixed=(2*v*h + h)*2
print(max(1, round(($SIZE_GB*1e9 - fixed)/per_layer)))")
if [ ! -f "$DIR/model.safetensors.index.json" ]; then
  rm -rf "$DIR"
  "$PROV" example "$DIR" --arch llama --dtype BF16 --hidden 2048 --layers "$LAYERS" \
    --vocab 32000 --shard-bytes 500000000 >/dev/null
fi
BYTES=$(du -cb "$DIR"/*.safetensors | tail -1 | cut -f1)
echo "checkpoint: $DIR, $(ls "$DIR"/*.safetensors | wc -l) shards, $BYTES bytes, $CORES cores"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timeit() {  # prints wall seconds of "$@"
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' 
}

cat "$DIR"/* > /dev/null  # warm the page cache
declare -A RES
for tool in sha256sum prov1 provN; do
  times=()
  for r in $(seq 0 "$RUNS"); do
    case $tool in
      sha256sum) t=$(timeit sha256sum "$DIR"/*) ;;
      prov1) t=$(timeit "$PROV" digest "$DIR" --threads 1) ;;
      provN) t=$(timeit "$PROV" digest "$DIR" --threads "$CORES") ;;
    esac
    [ "$r" -gt 0 ] && times+=("$t")
  done
  RES[$tool]=$(printf '%s\n' "${times[@]}" | median)
done
RSS_KB=$( { /usr/bin/time -f '%M' "$PROV" digest "$DIR" --threads "$CORES" >/dev/null; } 2>&1 | tail -1)
itimes=()
for r in $(seq 1 "$RUNS"); do itimes+=("$(timeit "$PROV" inspect "$DIR" --no-digest)"); done
INSPECT=$(printf '%s\n' "${itimes[@]}" | median)

python3 - "$BYTES" "${RES[sha256sum]}" "${RES[prov1]}" "${RES[provN]}" "$RSS_KB" "$INSPECT" "$CORES" <<'PY'
import sys
b, ref, p1, pn, rss, insp, cores = sys.argv[1:]
b = int(b); ref, p1, pn, insp = map(float, (ref, p1, pn, insp))
mb = lambda t: b / t / 1e6
print(f"sha256sum (1 core):        {ref:7.2f} s  {mb(ref):8.0f} MB/s")
print(f"prov digest --threads 1:   {p1:7.2f} s  {mb(p1):8.0f} MB/s  ({mb(p1)/mb(ref)*100:.0f} % of sha256sum per core)")
print(f"prov digest --threads {cores}:   {pn:7.2f} s  {mb(pn):8.0f} MB/s  (x{p1/pn:.2f} over 1 thread)")
print(f"prov digest peak RSS:      {int(rss)/1024:7.1f} MB")
print(f"prov inspect --no-digest:  {insp:7.3f} s")
PY
