#!/usr/bin/env bash
# Weight lineage at 7B shape: two Llama-2-7B-shaped bf16 checkpoints (hidden 4096, 32 layers,
# MLP 11008, 32 heads, vocabulary 32000; 6.7 B parameters, 13.5 GB each, sharded at 5 GB) written
# by `prov example`, then `prov compare` (independent pair) and `prov fingerprint` timed RUNS times.
#
# usage: bench/weight_7b.sh DIR [RUNS]     (needs about 27 GB free in DIR)
# COLD=1 empties the page cache before each timed run (needs root): the two checkpoints then come
# from disk. Without it, runs find what the previous run left in the cache (27 GB of checkpoints
# do not fit in 24 GB of RAM, so at most part of them).
set -euo pipefail
PROV=${PROV:-build/cli/prov}
DIR=${1:?usage: bench/weight_7b.sh DIR [RUNS]}
RUNS=${2:-3}
SHAPE=(--dtype BF16 --hidden 4096 --layers 32 --vocab 32000 --intermediate 11008 --heads 32
       --kv-heads 32 --shard-bytes 5000000000)
for s in 1 2; do
  if [ ! -f "$DIR/m$s/model.safetensors.index.json" ]; then
    /usr/bin/time -f "generate m$s: %e s" "$PROV" example "$DIR/m$s" "${SHAPE[@]}" --seed "$s"
  fi
done
du -sh "$DIR/m1" "$DIR/m2"
echo "cores: $(nproc)"
drop() { if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }
for i in $(seq "$RUNS"); do
  drop
  /usr/bin/time -f "compare m2 m1 (run $i): %e s, max RSS %M KB" \
    "$PROV" compare "$DIR/m2" "$DIR/m1" --json > "$DIR/compare.json"
done
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('relation', j['relation'], 'p', j['p_value'])" "$DIR/compare.json"
for i in $(seq "$RUNS"); do
  drop
  /usr/bin/time -f "fingerprint m1 (run $i): %e s, max RSS %M KB" \
    "$PROV" fingerprint "$DIR/m1" -o "$DIR/m1.wfp" > /dev/null
done
