#!/usr/bin/env bash
# Hostile files against the prov CLI: each attack is a file a user might be handed, the command
# that reads it, its exit code, wall time and peak RSS. Bounded: every command runs under a
# 120 s timeout. Usage: bench/cli_attacks.sh [PROV] (default build/cli/prov)
set -uo pipefail
PROV=${1:-build/cli/prov}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. config.json of 1.2 MB: many small objects in one object (quadratic for a callback parser).
mkdir -p "$work/config"
"$PROV" example "$work/config" --seed 1 > /dev/null
python3 - "$work/config/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["junk"] = {f"k{i}": {"a": {}} for i in range(80000)}
open(p, "w").write(json.dumps(c))
EOF

# 2. A safetensors header with 300,000 entries (metadata keys).
mkdir -p "$work/header"
"$PROV" example "$work/header" --seed 3 > /dev/null
python3 - "$work/header/model.safetensors" <<'EOF'
import json, struct, sys
meta = {f"k{i}": {"x": {}} for i in range(300000)}
h = json.dumps({"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0\0\0\0")
EOF

# 3. model.safetensors linked to /dev/zero.
mkdir -p "$work/zero"
cp "$work/config/config.json" "$work/zero/config.json"
ln -s /dev/zero "$work/zero/model.safetensors"

# 4. A config declaring 2^31 layers on a 2-layer checkpoint.
mkdir -p "$work/layers"
"$PROV" example "$work/layers" --seed 2 > /dev/null
python3 - "$work/layers/config.json" <<'EOF'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["num_hidden_layers"] = 2**31
open(p, "w").write(json.dumps(c))
EOF

# 5. A ledger query with a negative limit.
"$PROV" ledger init "$work/l.db" > /dev/null

run() {  # name, command...
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/t" timeout 120 "$@" > "$work/out" 2>&1
  local rc=$?
  local secs kb
  read -r secs kb < <(tail -n 1 "$work/t")
  local first
  first=$(grep -m1 -E "prov |error|invalid|refused|not " "$work/out" | cut -c1-90)
  printf '| %s | %s | %s | %.0f | %s |\n' "$name" "$rc" "$secs" "$((kb / 1024))" "$first"
}

echo "| attack | exit | seconds | peak RSS MiB | first line |"
echo "|---|---:|---:|---:|---|"
run "config.json 1.2 MB of small objects (inspect)" "$PROV" inspect "$work/config" --no-digest
run "safetensors header, 300k entries (inspect)" "$PROV" inspect "$work/header" --no-digest
run "model.safetensors -> /dev/zero (digest)" "$PROV" digest "$work/zero"
run "num_hidden_layers = 2^31 (fingerprint)" "$PROV" fingerprint "$work/layers" -o "$work/fp"
run "ledger query --limit -1" "$PROV" ledger query "$work/l.db" --limit -1
