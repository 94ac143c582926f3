#!/usr/bin/env bash
# Measures the full transaction gas (receipt gasUsed, intrinsic and calldata cost included) of every GpuEscrow entry
# point on a local anvil, in steady state: the provider already has rentals and a used nonce word, balances and
# accrued fees are non-zero. Prints a markdown table, writes gas-report.json next to foundry.toml, and exits non-zero
# if an operation exceeds its limit.
#
# Everything runs with the npm-installed foundry binaries; quotes, permits and attestations are signed offline with
# `cast wallet sign --data` (EIP-712). Run from anywhere: `bash contracts/script/measure-gas.sh`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FORGE=./node_modules/@foundry-rs/forge-linux-amd64/bin/forge
CAST=./node_modules/@foundry-rs/cast-linux-amd64/bin/cast
ANVIL=./node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
REPORT=gas-report.json

# Limits on full transaction gas, overridable from the environment; operations not listed are reported only.
declare -A LIMITS=(
    [open]=${GAS_LIMIT_OPEN:-100000}
    [openWithPermit]=${GAS_LIMIT_OPEN_WITH_PERMIT:-125000}
    [withdraw]=${GAS_LIMIT_WITHDRAW:-58000}
    [stop]=${GAS_LIMIT_STOP:-52000}
    [creditDowntime]=${GAS_LIMIT_CREDIT_DOWNTIME:-75000}
    [refuse]=${GAS_LIMIT_REFUSE:-60000}
)

for tool in "$FORGE" "$CAST" "$ANVIL"; do
    [[ -x $tool ]] || { echo "missing $tool: run 'npm ci' in contracts/" >&2; exit 1; }
done

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
RPC="http://127.0.0.1:$PORT"
MNEMONIC="test test test test test test test test test test test junk"
LOG=$(mktemp)

"$ANVIL" --port "$PORT" --hardfork prague --mnemonic "$MNEMONIC" --silent >"$LOG" 2>&1 &
ANVIL_PID=$!
cleanup() {
    kill "$ANVIL_PID" 2>/dev/null || true
    wait "$ANVIL_PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    "$CAST" chain-id --rpc-url "$RPC" >/dev/null 2>&1 && break
    sleep 0.1
done
CHAIN_ID=$("$CAST" chain-id --rpc-url "$RPC")

key() { "$CAST" wallet private-key "$MNEMONIC" "$1"; }
OWNER_KEY=$(key 0)
TREASURY_KEY=$(key 1)
PROVIDER_KEY=$(key 2)
RENTER_KEY=$(key 3)
PERMIT_RENTER_KEY=$(key 4)
ATTESTER_KEY=$(key 5)
RELAYER_KEY=$(key 6)
addr() { "$CAST" wallet address --private-key "$1"; }
OWNER=$(addr "$OWNER_KEY")
TREASURY=$(addr "$TREASURY_KEY")
PROVIDER=$(addr "$PROVIDER_KEY")
RENTER=$(addr "$RENTER_KEY")
PERMIT_RENTER=$(addr "$PERMIT_RENTER_KEY")
ATTESTER=$(addr "$ATTESTER_KEY")

deploy() {
    local key=$1
    shift
    "$FORGE" create --rpc-url "$RPC" --private-key "$key" --broadcast "$@" | awk '/Deployed to:/ { print $3 }'
}

# Sends a transaction and prints its gasUsed. Reverts abort the script (set -e).
send() {
    local key=$1
    shift
    local tx
    tx=$("$CAST" send --rpc-url "$RPC" --private-key "$key" --async "$@")
    local status
    status=$("$CAST" receipt --rpc-url "$RPC" "$tx" status)
    if [[ $status != 1* && $status != true ]]; then
        echo "transaction failed: $*" >&2
        exit 1
    fi
    "$CAST" receipt --rpc-url "$RPC" "$tx" gasUsed
}

advance() {
    "$CAST" rpc --rpc-url "$RPC" evm_increaseTime "$1" >/dev/null
    "$CAST" rpc --rpc-url "$RPC" evm_mine >/dev/null
}

now() { "$CAST" block --rpc-url "$RPC" latest --field timestamp; }

TOKEN=$(deploy "$OWNER_KEY" src/MockUSDC.sol:MockUSDC)
FEE_BPS=1000
DISPUTE_WINDOW=3600
ESCROW=$(deploy "$OWNER_KEY" src/GpuEscrow.sol:GpuEscrow --constructor-args "$TOKEN" "$TREASURY" "$FEE_BPS" "$DISPUTE_WINDOW" "$OWNER")

DOMAIN_TYPE='[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]'
ESCROW_DOMAIN="{\"name\":\"GpuEscrow\",\"version\":\"1\",\"chainId\":$CHAIN_ID,\"verifyingContract\":\"$ESCROW\"}"
QUOTE_SIG='(address,address,uint128,uint40,uint40,bytes32,uint256)'

RATE=1000          # 0.001 mUSDC per second, 3.6 mUSDC per hour
DURATION=86400     # one day
MAX_DURATION=604800
OFFER_ID=$("$CAST" keccak "gpuflow-offer-rtx4090x2")
QUOTE_DEADLINE=$(($(now) + 86400))

# Prints the quote tuple for `cast send`.
quote() { echo "($PROVIDER,$1,$RATE,$MAX_DURATION,$QUOTE_DEADLINE,$OFFER_ID,$2)"; }

# Signs a quote for renter $1 with nonce $2 as the provider.
sign_quote() {
    local data
    data="{\"types\":{\"EIP712Domain\":$DOMAIN_TYPE,\"Quote\":[{\"name\":\"provider\",\"type\":\"address\"},{\"name\":\"renter\",\"type\":\"address\"},{\"name\":\"ratePerSecond\",\"type\":\"uint128\"},{\"name\":\"maxDuration\",\"type\":\"uint40\"},{\"name\":\"deadline\",\"type\":\"uint40\"},{\"name\":\"offerId\",\"type\":\"bytes32\"},{\"name\":\"nonce\",\"type\":\"uint256\"}]},\"primaryType\":\"Quote\",\"domain\":$ESCROW_DOMAIN,\"message\":{\"provider\":\"$PROVIDER\",\"renter\":\"$1\",\"ratePerSecond\":\"$RATE\",\"maxDuration\":\"$MAX_DURATION\",\"deadline\":\"$QUOTE_DEADLINE\",\"offerId\":\"$OFFER_ID\",\"nonce\":\"$2\"}}"
    "$CAST" wallet sign --private-key "$PROVIDER_KEY" --data "$data"
}

# Signs an EIP-2612 permit of $2 tokens to the escrow by the owner of key $1; prints "deadline v r s".
sign_permit() {
    local owner nonce deadline data sig
    owner=$(addr "$1")
    nonce=$("$CAST" call --rpc-url "$RPC" "$TOKEN" "nonces(address)(uint256)" "$owner")
    deadline=$(($(now) + 3600))
    data="{\"types\":{\"EIP712Domain\":$DOMAIN_TYPE,\"Permit\":[{\"name\":\"owner\",\"type\":\"address\"},{\"name\":\"spender\",\"type\":\"address\"},{\"name\":\"value\",\"type\":\"uint256\"},{\"name\":\"nonce\",\"type\":\"uint256\"},{\"name\":\"deadline\",\"type\":\"uint256\"}]},\"primaryType\":\"Permit\",\"domain\":{\"name\":\"Mock USDC\",\"version\":\"1\",\"chainId\":$CHAIN_ID,\"verifyingContract\":\"$TOKEN\"},\"message\":{\"owner\":\"$owner\",\"spender\":\"$ESCROW\",\"value\":\"$2\",\"nonce\":\"$nonce\",\"deadline\":\"$deadline\"}}"
    sig=$("$CAST" wallet sign --private-key "$1" --data "$data")
    echo "$deadline $((16#${sig:130:2})) 0x${sig:2:64} 0x${sig:66:64}"
}

# Signs a downtime attestation (rentalId from to downSeconds deadline) and prints the entry
# `attester || signature length || signature`.
sign_downtime() {
    local data sig
    data="{\"types\":{\"EIP712Domain\":$DOMAIN_TYPE,\"Downtime\":[{\"name\":\"rentalId\",\"type\":\"uint256\"},{\"name\":\"from\",\"type\":\"uint40\"},{\"name\":\"to\",\"type\":\"uint40\"},{\"name\":\"downSeconds\",\"type\":\"uint40\"},{\"name\":\"deadline\",\"type\":\"uint40\"}]},\"primaryType\":\"Downtime\",\"domain\":$ESCROW_DOMAIN,\"message\":{\"rentalId\":\"$1\",\"from\":\"$2\",\"to\":\"$3\",\"downSeconds\":\"$4\",\"deadline\":\"$5\"}}"
    sig=$("$CAST" wallet sign --private-key "$ATTESTER_KEY" --data "$data")
    printf '%s%04x%s\n' "${ATTESTER,,}" $(((${#sig} - 2) / 2)) "${sig:2}"
}

# Signs the refusal of rental $1 as the provider and prints the signature.
sign_refusal() {
    local data
    data="{\"types\":{\"EIP712Domain\":$DOMAIN_TYPE,\"Refusal\":[{\"name\":\"rentalId\",\"type\":\"uint256\"}]},\"primaryType\":\"Refusal\",\"domain\":$ESCROW_DOMAIN,\"message\":{\"rentalId\":\"$1\"}}"
    "$CAST" wallet sign --private-key "$PROVIDER_KEY" --data "$data"
}

# Both openers run in the current shell (not in a command substitution) so that NONCE advances; they leave the gas
# used in LAST_GAS.
NONCE=0
LAST_GAS=0
open_rental() {
    local sig
    sig=$(sign_quote "$RENTER" "$NONCE")
    LAST_GAS=$(send "$RENTER_KEY" "$ESCROW" "open($QUOTE_SIG,uint256,bytes)" "$(quote "$RENTER" "$NONCE")" "$DURATION" "$sig")
    NONCE=$((NONCE + 1))
}

open_rental_with_permit() {
    local sig permit
    sig=$(sign_quote "$PERMIT_RENTER" "$NONCE")
    read -r -a permit <<<"$(sign_permit "$PERMIT_RENTER_KEY" $((RATE * DURATION)))"
    LAST_GAS=$(send "$PERMIT_RENTER_KEY" "$ESCROW" "openWithPermit($QUOTE_SIG,uint256,bytes,uint256,uint8,bytes32,bytes32)" \
        "$(quote "$PERMIT_RENTER" "$NONCE")" "$DURATION" "$sig" "${permit[@]}")
    NONCE=$((NONCE + 1))
}

# Set-up: funded renters (one with a standing approval, one that uses permits), a registered attester.
send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$RENTER" 1000000000000 >/dev/null
send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$PERMIT_RENTER" 1000000000000 >/dev/null
send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$PROVIDER" 1000000 >/dev/null
send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$TREASURY" 1000000 >/dev/null
send "$RENTER_KEY" "$TOKEN" "approve(address,uint256)" "$ESCROW" "$("$CAST" max-uint)" >/dev/null
send "$OWNER_KEY" "$ESCROW" "setAttester(address,bool)" "$ATTESTER" true >/dev/null

# Warm-up: the first rental registers the provider and opens its nonce word; the first permit bumps the permit nonce.
open_rental             # rental 1
open_rental_with_permit # rental 2

declare -A GAS
open_rental             # rental 3
GAS[open]=$LAST_GAS
open_rental_with_permit # rental 4
GAS[openWithPermit]=$LAST_GAS
for _ in 1 2 3 4 5 6 7 8; do open_rental; done # rentals 5..12
END_12=$(($(now) + DURATION))                  # rental 12 runs untouched until the automatic extension below

# Two hours in: everything older than the dispute window is withdrawable, every rental is still running.
advance 7200
send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" 1 >/dev/null   # fees and provider balance become non-zero
GAS[withdraw]=$(send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" 2)
GAS[withdrawMany]=$(send "$PROVIDER_KEY" "$ESCROW" "withdrawMany(uint256[])" "[3,4,5,6,7]")
GAS[stop]=$(send "$RENTER_KEY" "$ESCROW" "stop(uint256)" 8)
GAS[extend]=$(send "$RENTER_KEY" "$ESCROW" "extend(uint256,uint256)" 9 3600)

# Ten minutes of downtime, attested for the last half hour of rental 10 and submitted by a third party.
T=$(now)
FROM=$((T - 1800))
ENTRY=$(sign_downtime 10 "$FROM" "$T" 600 $((T + 3600)))
PACKED=$(printf '0x%024x%010x%010x%010x%010x' 10 "$FROM" "$T" 600 $((T + 3600)))
GAS[creditDowntime]=$(send "$RELAYER_KEY" "$ESCROW" "creditDowntime(uint256,bytes)" "$PACKED" "$ENTRY")

# The provider refuses rental 11 (running, never withdrawn from); a third party submits the refusal.
GAS[refuse]=$(send "$RELAYER_KEY" "$ESCROW" "refuse(uint256,bytes)" 11 "$(sign_refusal 11)")

advance 60
GAS[claimFees]=$(send "$TREASURY_KEY" "$ESCROW" "claimFees()")
GAS[invalidateNonce]=$(send "$PROVIDER_KEY" "$ESCROW" "invalidateNonce(uint256)" "$NONCE")

# The renter of rental 12 (standing approval) sets an automatic extension of up to two hours, an hour at a time: the
# first write of the rental's credits slot. Five minutes before the end, inside the last ten minutes, a third party
# triggers it and the escrow pulls the hour from the renter.
GAS[setAutoExtend]=$(send "$RENTER_KEY" "$ESCROW" "setAutoExtend(uint256,uint256,uint256)" 12 $((RATE * 7200)) 3600)
advance $((END_12 - $(now) - 300))
GAS[autoExtend]=$(send "$RELAYER_KEY" "$ESCROW" "autoExtend(uint256)" 12)

ORDER=(open openWithPermit withdraw withdrawMany stop extend setAutoExtend autoExtend creditDowntime refuse claimFees
    invalidateNonce)
declare -A LABELS=(
    [open]="open (standing approval)"
    [openWithPermit]="openWithPermit (EIP-2612)"
    [withdrawMany]="withdrawMany (5 rentals)"
    [creditDowntime]="creditDowntime (1 attester)"
    [refuse]="refuse (submitted by a third party)"
    [setAutoExtend]="setAutoExtend (first on the rental)"
    [autoExtend]="autoExtend (submitted by a third party)"
)
FAILED=0
echo "| operation | gas (full transaction) | limit |"
echo "| --- | ---: | ---: |"
json="{"
for op in "${ORDER[@]}"; do
    limit=${LIMITS[$op]:-}
    verdict=${limit:--}
    if [[ -n $limit && ${GAS[$op]} -gt $limit ]]; then
        verdict="$limit **exceeded**"
        FAILED=1
    fi
    echo "| ${LABELS[$op]:-$op} | ${GAS[$op]} | $verdict |"
    json+="\"$op\":${GAS[$op]},"
done
echo "${json%,}}" >"$REPORT"
echo
echo "wrote $REPORT"
if [[ $FAILED -ne 0 ]]; then
    echo "gas limit exceeded" >&2
    exit 1
fi
