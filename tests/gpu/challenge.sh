#!/usr/bin/env bash
# The GPU path of the matrix challenge, on this machine's NVIDIA GPUs (not part of
# `make test`, whose machines have none). With the release agent it:
#   1. checks that each GPU's generator kernel computes the protocol's matrices entry for
#      entry (small, then the full size),
#   2. answers a challenge on every GPU at once with cuBLAS, as the agent answers a node's,
#      and checks the answer as a node does (Merkle paths, Freivalds' test),
#   3. prints the throughput a node would record, where the time went, and the check's cost.
# It fails, naming what is missing, where CUDA cannot run (no driver, cuBLAS or NVRTC, no
# device): it never falls back to the CPU.
#
#   make gpu-check                                   # builds the release agent first
#   GPUFLOW_BIN_DIR=DIR tests/gpu/challenge.sh       # a built gpuflow-provider in DIR
#   gpuflow-gpu-smoke/challenge.sh                   # from `make gpu-bundle`, no Rust needed
#
# GPUFLOW_GPU_CHECK_N and GPUFLOW_GPU_CHECK_ROUNDS set the full-size run (default 8192 and
# 16, a node's defaults). cuBLAS and NVRTC come with the CUDA toolkit, or from pip
# (nvidia-cublas-cu12, nvidia-cuda-nvrtc-cu12): put their lib folders on LD_LIBRARY_PATH.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [ -n "${GPUFLOW_BIN_DIR:-}" ]; then bin="$GPUFLOW_BIN_DIR"
elif [ -x "$here/bin/gpuflow-provider" ]; then bin="$here/bin"
else bin="${CARGO_TARGET_DIR:-$HOME/.cache/gpuflow/target}/release"; fi
agent="$bin/gpuflow-provider"
[ -x "$agent" ] || { echo "gpu-check: $agent is missing; run make gpu-check or set GPUFLOW_BIN_DIR" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader

n="${GPUFLOW_GPU_CHECK_N:-8192}"
rounds="${GPUFLOW_GPU_CHECK_ROUNDS:-16}"
echo "== small: n = 256, 2 rounds (generator and check)"
"$agent" challenge --n 256 --rounds 2
echo "== full size: n = $n, $rounds rounds per GPU"
"$agent" challenge --n "$n" --rounds "$rounds" --rows 16
echo "gpu-check: passed"
