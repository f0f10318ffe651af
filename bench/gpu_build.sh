#!/bin/bash
# Builds prov against the CUDA LibTorch of a pip-installed PyTorch (for the GPU benchmark and the
# GPU tests), e.g. on a machine whose distribution lacks some -dev packages:
#   bench/gpu_build.sh BUILD_DIR [DEVROOT] [TARGETS...]
# DEVROOT (optional) is a directory where Debian -dev packages were unpacked with `dpkg -x`
# (SQLite, nlohmann-json, CLI11, cpp-httplib, PCRE2, utf8proc, zstd, Brotli headers, ...); it is
# added to the search paths. Targets default to the GPU benchmark and the GPU test binaries.
set -euo pipefail
BUILD=$1; DEVROOT=${2:-}; shift $(( $# >= 2 ? 2 : 1 ))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(prov_gpu_signature_bench probes_torch_test model_torch_test)
TORCH_CMAKE=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
PREFIX="$TORCH_CMAKE"
EXTRA=()
if [ -n "$DEVROOT" ]; then
  export LD_LIBRARY_PATH=$DEVROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export PATH=$DEVROOT/usr/bin:$PATH
  export PKG_CONFIG_PATH=$DEVROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$DEVROOT/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$DEVROOT
  PREFIX="$PREFIX;$DEVROOT/usr"
  EXTRA+=(-DSQLite3_INCLUDE_DIR=$DEVROOT/usr/include
          -DSQLite3_LIBRARY=$(ls /usr/lib/x86_64-linux-gnu/libsqlite3.so* | head -1))
fi
if ls /usr/lib/x86_64-linux-gnu/libcurl.so.4 > /dev/null 2>&1; then
  EXTRA+=(-DCURL_LIBRARY=/usr/lib/x86_64-linux-gnu/libcurl.so.4)
fi
cmake -S "$(dirname "$0")/.." -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90} "${EXTRA[@]}"
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}"
