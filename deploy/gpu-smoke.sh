#!/usr/bin/env bash
# One real rental on this machine's GPUs, with release binaries only: no network, no Rust,
# no Docker. Starts anvil with the contracts, a node and a provider agent that reads the
# GPUs through NVML, rents one GPU, and prints what NVML read, the time from `gpuflow rent`
# to a running workload, what the workload computed on the rented GPU, and the settlement.
#
#   make gpu-bundle                      # on a build machine: stripped binaries + this script
#   tar -xJf gpuflow-gpu-smoke.tar.xz && gpuflow-gpu-smoke/gpu-smoke.sh   # on the GPU machine
#
# The workload is a bf16 matrix product in PyTorch (python3 with torch must be installed);
# GPUFLOW_SMOKE_WORKLOAD replaces it, and GPUFLOW_SMOKE_SIMULATE=FILE runs the same steps on
# a simulated inventory, to check the script itself on a machine without GPUs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${GPUFLOW_BIN_DIR:-$here/bin}"
export GPUFLOW_BIN_DIR="$bin"
export GPUFLOW_ANVIL="${GPUFLOW_ANVIL:-$bin/anvil}"
for tool in gpuflow gpuflow-node gpuflow-provider gpuflow-devnet; do
    [ -x "$bin/$tool" ] || { echo "gpu-smoke: $bin/$tool is missing; run make gpu-bundle and unpack it" >&2; exit 1; }
done
[ -x "$GPUFLOW_ANVIL" ] || { echo "gpu-smoke: anvil not found at $GPUFLOW_ANVIL; set GPUFLOW_ANVIL" >&2; exit 1; }
command -v python3 >/dev/null || { echo "gpu-smoke: python3 is needed (JSON and the workload)" >&2; exit 1; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/gpuflow-smoke.XXXXXX")"
simulate="${GPUFLOW_SMOKE_SIMULATE:-}"
# The workload: a bf16 matrix product on the GPU it was given, then it waits for its end.
default_workload="$(cat <<'WORKLOAD'
python3 -c '
import os, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn_like(a)
torch.cuda.synchronize(); start = time.time(); n = 50
for _ in range(n):
    c = a @ b
torch.cuda.synchronize(); took = time.time() - start
print("smoke: %s (%s), bf16 matmul %.0f TFLOPS, checksum %.4e" % (torch.cuda.get_device_name(0),
      os.environ["CUDA_VISIBLE_DEVICES"], 2 * 8192**3 * n / took / 1e12, float(c.float().sum())), flush=True)
'; exec sleep 2147483647
WORKLOAD
)"
workload="${GPUFLOW_SMOKE_WORKLOAD:-$default_workload}"
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
step() { printf '\n== %s\n' "$*"; }

step "what NVML reads"
if [ -n "$simulate" ]; then
    "$bin/gpuflow-provider" gpus --simulate-gpus "$simulate"
    gpus=()
else
    "$bin/gpuflow-provider" gpus
    gpus=(--real-gpus)
fi

step "starting anvil, the contracts, a node and an agent on the GPUs (logs in $dir)"
"$bin/gpuflow-devnet" --dir "$dir/run" --env-file "$dir/env" "${gpus[@]}" --workload "$workload" \
    > "$dir/devnet.out" 2> "$dir/devnet.log" &
devnet=$!
stop_devnet() { kill -TERM "$devnet" 2>/dev/null && wait "$devnet" 2>/dev/null || true; }
trap stop_devnet EXIT
for _ in $(seq 1 240); do
    grep -q '^gpuflow-devnet ready' "$dir/devnet.out" 2>/dev/null && break
    kill -0 "$devnet" 2>/dev/null || { cat "$dir/devnet.log" >&2; echo "gpu-smoke: the devnet did not start" >&2; exit 1; }
    sleep 0.5
done
grep -q '^gpuflow-devnet ready' "$dir/devnet.out" || { echo "gpu-smoke: the devnet was not ready in 120 s" >&2; exit 1; }
set -a; . "$dir/env"; set +a
"$bin/gpuflow" offer "$GPUFLOW_OFFER"

step "renting one GPU for 3 minutes"
start=$(date +%s.%N)
rented="$("$bin/gpuflow" --json rent "$GPUFLOW_OFFER" --hours 0.05 --gpus 1 --yes)"
running=$(date +%s.%N)
id="$(printf '%s' "$rented" | json '["rental_id"]')"
echo "rental $id: $(printf '%s' "$rented" | json '["workload"]["state"]') on $(printf '%s' "$rented" | json '["workload"]["gpus"]')"
python3 -c "print('time from gpuflow rent to a running workload: %.2f s' % ($running - $start))"

step "what the workload computed on the rented GPU"
found=""
for _ in $(seq 1 240); do
    found="$("$bin/gpuflow" logs "$id" 2>/dev/null | grep '^smoke:' || true)"
    [ -n "$found" ] && break
    sleep 0.5
done
[ -n "$found" ] || { "$bin/gpuflow" logs "$id" || true; echo "gpu-smoke: the workload printed no result in 120 s" >&2; exit 1; }
echo "$found"

step "stopping early: the unused remainder is refunded at once"
"$bin/gpuflow" stop "$id"
"$bin/gpuflow" status "$id"
step "done"
