#!/usr/bin/env bash
# One rental's life on a local devnet, with the real binaries a renter and a provider run.
set -euo pipefail

cd "$(dirname "$0")/.."
bin="${GPUFLOW_BIN_DIR:?set GPUFLOW_BIN_DIR to the directory of the gpuflow binaries}"
gpuflow="$bin/gpuflow"
# Where the devnet keeps its files; the end-to-end tests run the demo in a directory of
# their own.
dir="${GPUFLOW_DEMO_DIR:-.devnet}"
env_file="$dir/env"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the devnet: anvil, MockUSDC + GpuEscrow, a node, a provider agent"
rm -rf "$dir"
mkdir -p "$dir"
"$bin/gpuflow-devnet" --dir "$dir/run" --env-file "$env_file" > "$dir/devnet.out" 2> "$dir/devnet.log" &
devnet=$!
stop_devnet() {
    if kill -0 "$devnet" 2>/dev/null; then
        kill -TERM "$devnet"
        wait "$devnet" || true
    fi
}
trap stop_devnet EXIT
for _ in $(seq 1 120); do
    grep -q '^gpuflow-devnet ready' "$dir/devnet.out" 2>/dev/null && break
    kill -0 "$devnet" 2>/dev/null || { cat "$dir/devnet.log"; echo "the devnet failed to start" >&2; exit 1; }
    sleep 0.5
done
grep -q '^gpuflow-devnet ready' "$dir/devnet.out" || { echo "the devnet did not start within 60 s; see $dir/devnet.log" >&2; exit 1; }
grep -v PASSWORD "$dir/devnet.log" | grep '^GPUFLOW_' || true
# shellcheck disable=SC1090
source "$env_file"

step "gpuflow search 'gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5' -o dph"
"$gpuflow" search 'gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5' -o dph

step "gpuflow rent $GPUFLOW_OFFER --hours 1 --yes"
rent_json=$("$gpuflow" --json rent "$GPUFLOW_OFFER" --hours 1 --yes)
rental=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["rental_id"])' <<<"$rent_json")
echo "$rent_json"

step "the workload is running on the provider"
cat "$GPUFLOW_WORKLOAD_DIR/$rental.log"
"$gpuflow" status "$rental"

step "the provider's machine hangs for 12 seconds (SIGSTOP), then recovers"
kill -STOP "$GPUFLOW_PROVIDER_PID"
sleep 12
kill -CONT "$GPUFLOW_PROVIDER_PID"
# Let the node hear the provider again for a few buckets before asking.
sleep 6

step "gpuflow claim-sla $rental: the node attests the downtime it measured, the escrow refunds it"
"$gpuflow" claim-sla "$rental"

step "gpuflow stop $rental"
"$gpuflow" stop "$rental"

step "the provider agent ends the workload and withdraws its earnings"
for _ in $(seq 1 60); do
    status=$("$gpuflow" --json status "$rental")
    paid=$(python3 -c 'import json,sys; s=json.load(sys.stdin); print(int(s["provider_paid"]) + int(s["fees"]))' <<<"$status")
    [ "$paid" != 0 ] && break
    sleep 0.5
done
"$gpuflow" status "$rental"

step "settlement in exact token units"
python3 - "$status" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
rate, start, end = int(s["rate_per_second"]), s["start"], s["end"]
charged, refund = int(s["charged"]), int(s["refund"])
paid, fee, credited = int(s["provider_paid"]), int(s["fees"]), int(s["sla_credited"])
down = credited // rate
print(f"rate                {rate} units/s")
print(f"rented for          {end - start} s, {down} s of them down")
print(f"renter charged      {charged} units = {rate} x ({end - start} - {down}) s")
print(f"renter refunded     {refund} units (unused time)")
print(f"downtime refunded   {credited} units = {rate} x {down} s")
print(f"provider earned     {paid} units")
print(f"platform fee        {fee} units")
assert credited > 0 and credited % rate == 0, "the downtime refund is not rate x seconds"
assert charged == rate * (end - start - down), "charge is not rate x seconds up"
assert paid + fee == charged, "provider + fee != charged"
assert s["workload"] is None or s["workload"]["state"] == "ended", s["workload"]
print("ok: deposit = charged + downtime refund + refund, charged = provider + fee")
PY

step "gpuflow-provider earnings: the provider's own wallet (GPUFLOW_PROVIDER_KEYSTORE), never the renter's"
"$bin/gpuflow-provider" earnings

step "shutting the devnet down"

cat <<'TXT'

This demo ran its rental as a local process. To run rentals in containers on a Docker
engine, with SSH into them:
  bash tests/docker/engine.sh up /tmp/engine.env && set -a && . /tmp/engine.env && set +a
  gpuflow-devnet --runtime docker --image "$GPUFLOW_TEST_IMAGE" &   # then source .devnet/env
  gpuflow rent OFFER --hours 1 --ssh-key ~/.ssh/id_ed25519.pub && gpuflow ssh RENTAL
`make test` runs that path end to end (tests/it/docker.rs).
TXT
