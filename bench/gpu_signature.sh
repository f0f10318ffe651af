#!/bin/bash
# GPU signature benchmark, everything in one call on a GPU machine (docs/BENCHMARKS.md):
#   bench/gpu_signature.sh BUILD_DIR WORK_DIR [model names...]
# writes the random bf16 checkpoints (bench/gpu_signature_ref.py make), then per model runs the
# transformers reference and prov_gpu_signature_bench on the same GPU, one JSON line each.
set -euo pipefail
BUILD=$1; WORK=$2; shift 2
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b)
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for m in "${MODELS[@]}"; do
  [ -f "$WORK/$m/config.json" ] || python3 "$HERE/gpu_signature_ref.py" make "$WORK" "$m"
  python3 "$HERE/gpu_signature_ref.py" run "$WORK" "$m"
  "$BUILD/bench/prov_gpu_signature_bench" "$WORK/$m"
done
