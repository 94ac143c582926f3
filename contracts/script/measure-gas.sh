#!/usr/bin/env bash
# Measures the full transaction gas (receipt gasUsed, intrinsic and calldata cost included) of every GpuEscrow entry
# point on a local anvil, in steady state: the provider already has rentals and a used nonce word, balances and
# accrued fees are non-zero. Everything is measured twice, against two payment tokens, each with an escrow of its own:
# the devnet's MockUSDC (OpenZeppelin ERC-20 + permit) and FiatTokenLike behind FiatTokenLikeProxy
# (test/mocks/FiatTokenLike.sol), an equivalent of Circle's USDC (FiatTokenV2_2 behind its admin proxy) written for
# this measurement. Besides each operation it measures one rental's whole life (open, stop, withdraw; the same opened
# by permit, with and without an extension by permit) and the life per rental of ten rentals withdrawn together.
# Prints a markdown table, writes gas-report.json next to foundry.toml, and exits non-zero if an operation exceeds its
# limit with MockUSDC (the limits were set for it); the Circle-like column and the whole-life goal are reported.
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
# The whole-life goal: at most 0.45x Sablier Lockup v4's create + cancel + withdraw (200.3k + 97.9k + 100.3k =
# 398.5k), rounded to 180,000; reported, not enforced.
LIFE_GOAL=${GAS_GOAL_LIFE:-180000}

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
PROXY_ADMIN_KEY=$(key 7)
addr() { "$CAST" wallet address --private-key "$1"; }
OWNER=$(addr "$OWNER_KEY")
TREASURY=$(addr "$TREASURY_KEY")
PROVIDER=$(addr "$PROVIDER_KEY")
RENTER=$(addr "$RENTER_KEY")
PERMIT_RENTER=$(addr "$PERMIT_RENTER_KEY")
ATTESTER=$(addr "$ATTESTER_KEY")
PROXY_ADMIN=$(addr "$PROXY_ADMIN_KEY")

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

FEE_BPS=1000
DISPUTE_WINDOW=3600
DOMAIN_TYPE='[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]'
QUOTE_SIG='(address,address,uint128,uint40,uint40,bytes32,uint256)'
PERMIT_ARGS='uint256,uint8,bytes32,bytes32'

RATE=1000          # 0.001 mUSDC per second, 3.6 mUSDC per hour
DURATION=86400     # one day
MAX_DURATION=604800
OFFER_ID=$("$CAST" keccak "gpuflow-offer-rtx4090x2")

# Set by deploy_token and deploy_escrow for the token being measured.
TOKEN=
TOKEN_NAME=
TOKEN_VERSION=
ESCROW=
ESCROW_DOMAIN=
QUOTE_DEADLINE=

# Deploys the token named $1 (mock or circle) and sets TOKEN, TOKEN_NAME and TOKEN_VERSION (its EIP-712 domain).
deploy_token() {
    case $1 in
    mock)
        TOKEN=$(deploy "$OWNER_KEY" src/MockUSDC.sol:MockUSDC)
        TOKEN_NAME="Mock USDC"
        TOKEN_VERSION=1
        ;;
    circle)
        local implementation
        implementation=$(deploy "$OWNER_KEY" test/mocks/FiatTokenLike.sol:FiatTokenLike)
        TOKEN=$(deploy "$OWNER_KEY" test/mocks/FiatTokenLike.sol:FiatTokenLikeProxy \
            --constructor-args "$implementation" "$PROXY_ADMIN")
        send "$OWNER_KEY" "$TOKEN" "initialize(string,string,address)" "USD Coin" "USDC" "$OWNER" >/dev/null
        TOKEN_NAME="USD Coin"
        TOKEN_VERSION=2
        ;;
    esac
}

deploy_escrow() {
    ESCROW=$(deploy "$OWNER_KEY" src/GpuEscrow.sol:GpuEscrow \
        --constructor-args "$TOKEN" "$TREASURY" "$FEE_BPS" "$DISPUTE_WINDOW" "$OWNER")
    ESCROW_DOMAIN="{\"name\":\"GpuEscrow\",\"version\":\"1\",\"chainId\":$CHAIN_ID,\"verifyingContract\":\"$ESCROW\"}"
    QUOTE_DEADLINE=$(($(now) + 30 * 86400))
}

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
    data="{\"types\":{\"EIP712Domain\":$DOMAIN_TYPE,\"Permit\":[{\"name\":\"owner\",\"type\":\"address\"},{\"name\":\"spender\",\"type\":\"address\"},{\"name\":\"value\",\"type\":\"uint256\"},{\"name\":\"nonce\",\"type\":\"uint256\"},{\"name\":\"deadline\",\"type\":\"uint256\"}]},\"primaryType\":\"Permit\",\"domain\":{\"name\":\"$TOKEN_NAME\",\"version\":\"$TOKEN_VERSION\",\"chainId\":$CHAIN_ID,\"verifyingContract\":\"$TOKEN\"},\"message\":{\"owner\":\"$owner\",\"spender\":\"$ESCROW\",\"value\":\"$2\",\"nonce\":\"$nonce\",\"deadline\":\"$deadline\"}}"
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

# The openers run in the current shell (not in a command substitution) so that NONCE and RENTAL advance; they leave
# the gas used in LAST_GAS and the new rental's id in RENTAL.
NONCE=0
RENTAL=0
LAST_GAS=0
open_rental() {
    local sig
    sig=$(sign_quote "$RENTER" "$NONCE")
    LAST_GAS=$(send "$RENTER_KEY" "$ESCROW" "open($QUOTE_SIG,uint256,bytes)" "$(quote "$RENTER" "$NONCE")" "$DURATION" "$sig")
    NONCE=$((NONCE + 1))
    RENTAL=$((RENTAL + 1))
}

open_rental_with_permit() {
    local sig permit
    sig=$(sign_quote "$PERMIT_RENTER" "$NONCE")
    read -r -a permit <<<"$(sign_permit "$PERMIT_RENTER_KEY" $((RATE * DURATION)))"
    LAST_GAS=$(send "$PERMIT_RENTER_KEY" "$ESCROW" "openWithPermit($QUOTE_SIG,uint256,bytes,$PERMIT_ARGS)" \
        "$(quote "$PERMIT_RENTER" "$NONCE")" "$DURATION" "$sig" "${permit[@]}")
    NONCE=$((NONCE + 1))
    RENTAL=$((RENTAL + 1))
}

# Extends rental $1 by $2 seconds as the permit renter, paying with a permit; prints the gas used.
extend_with_permit() {
    local permit
    read -r -a permit <<<"$(sign_permit "$PERMIT_RENTER_KEY" $((RATE * $2)))"
    send "$PERMIT_RENTER_KEY" "$ESCROW" "extendWithPermit(uint256,uint256,$PERMIT_ARGS)" "$1" "$2" "${permit[@]}"
}

declare -A GAS

# Measures every operation with a fresh escrow paying in token $1 (mock or circle), into GAS[$1:operation].
measure() {
    local t=$1
    deploy_token "$t"
    deploy_escrow
    NONCE=0
    RENTAL=0

    # Set-up: funded renters (one with a standing approval, one that uses permits), a registered attester.
    send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$RENTER" 1000000000000 >/dev/null
    send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$PERMIT_RENTER" 1000000000000 >/dev/null
    send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$PROVIDER" 1000000 >/dev/null
    send "$OWNER_KEY" "$TOKEN" "mint(address,uint256)" "$TREASURY" 1000000 >/dev/null
    send "$RENTER_KEY" "$TOKEN" "approve(address,uint256)" "$ESCROW" "$("$CAST" max-uint)" >/dev/null
    send "$OWNER_KEY" "$ESCROW" "setAttester(address,bool)" "$ATTESTER" true >/dev/null

    # Warm-up: the first rental registers the provider and opens its nonce word; the first permit bumps the permit
    # nonce.
    open_rental             # rental 1
    open_rental_with_permit # rental 2

    open_rental # rental 3
    GAS[$t:open]=$LAST_GAS
    open_rental_with_permit # rental 4
    GAS[$t:openWithPermit]=$LAST_GAS
    for _ in 1 2 3 4 5 6 7 8; do open_rental; done # rentals 5..12
    local end12
    end12=$(($(now) + DURATION)) # rental 12 runs untouched until the automatic extension below

    # Two hours in: everything older than the dispute window is withdrawable, every rental is still running.
    advance 7200
    send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" 1 >/dev/null # fees and provider balance become non-zero
    GAS[$t:withdraw]=$(send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" 2)
    GAS[$t:withdrawMany]=$(send "$PROVIDER_KEY" "$ESCROW" "withdrawMany(uint256[])" "[3,4,5,6,7]")
    GAS[$t:stop]=$(send "$RENTER_KEY" "$ESCROW" "stop(uint256)" 8)
    GAS[$t:extend]=$(send "$RENTER_KEY" "$ESCROW" "extend(uint256,uint256)" 9 3600)
    # The permit renter's rental 4, opened with a permit that its deposit used up: no allowance is left. Before
    # extendWithPermit, such a renter approved the cost and then extended: both are measured.
    GAS[$t:extendWithPermit]=$(extend_with_permit 4 3600)
    local approved
    approved=$(send "$PERMIT_RENTER_KEY" "$TOKEN" "approve(address,uint256)" "$ESCROW" $((RATE * 3600)))
    GAS[$t:approveThenExtend]=$((approved + $(send "$PERMIT_RENTER_KEY" "$ESCROW" "extend(uint256,uint256)" 4 3600)))

    # Ten minutes of downtime, attested for the last half hour of rental 10 and submitted by a third party.
    local t0 from entry packed
    t0=$(now)
    from=$((t0 - 1800))
    entry=$(sign_downtime 10 "$from" "$t0" 600 $((t0 + 3600)))
    packed=$(printf '0x%024x%010x%010x%010x%010x' 10 "$from" "$t0" 600 $((t0 + 3600)))
    GAS[$t:creditDowntime]=$(send "$RELAYER_KEY" "$ESCROW" "creditDowntime(uint256,bytes)" "$packed" "$entry")

    # The provider refuses rental 11 (running, never withdrawn from); a third party submits the refusal.
    GAS[$t:refuse]=$(send "$RELAYER_KEY" "$ESCROW" "refuse(uint256,bytes)" 11 "$(sign_refusal 11)")

    advance 60
    GAS[$t:claimFees]=$(send "$TREASURY_KEY" "$ESCROW" "claimFees()")
    GAS[$t:invalidateNonce]=$(send "$PROVIDER_KEY" "$ESCROW" "invalidateNonce(uint256)" "$NONCE")
    NONCE=$((NONCE + 1))

    # The renter of rental 12 (standing approval) sets an automatic extension of up to two hours, an hour at a time:
    # the first write of the rental's credits slot. Five minutes before the end, inside the last ten minutes, a third
    # party triggers it and the escrow pulls the hour from the renter.
    GAS[$t:setAutoExtend]=$(send "$RENTER_KEY" "$ESCROW" "setAutoExtend(uint256,uint256,uint256)" 12 $((RATE * 7200)) 3600)
    advance $((end12 - $(now) - 300))
    GAS[$t:autoExtend]=$(send "$RELAYER_KEY" "$ESCROW" "autoExtend(uint256)" 12)

    # Whole lives, after the claim (the fee slot holds its one unit): a rental opened with the standing approval, one
    # opened with a permit and extended by an hour with another, and ten opened with the standing approval; all run
    # two hours, are stopped, and are withdrawn once the dispute window has passed, the ten with one withdrawMany.
    local plain permitted batch=() open_sum=0 stop_sum=0 id
    open_rental
    plain=$RENTAL
    GAS[$t:lifeOpen]=$LAST_GAS
    open_rental_with_permit
    permitted=$RENTAL
    GAS[$t:lifePermitOpen]=$LAST_GAS
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        open_rental
        batch+=("$RENTAL")
        open_sum=$((open_sum + LAST_GAS))
    done
    advance 1800
    GAS[$t:lifePermitExtend]=$(extend_with_permit "$permitted" 3600)
    advance 5400
    GAS[$t:lifeStop]=$(send "$RENTER_KEY" "$ESCROW" "stop(uint256)" "$plain")
    GAS[$t:lifePermitStop]=$(send "$PERMIT_RENTER_KEY" "$ESCROW" "stop(uint256)" "$permitted")
    for id in "${batch[@]}"; do
        stop_sum=$((stop_sum + $(send "$RENTER_KEY" "$ESCROW" "stop(uint256)" "$id")))
    done
    advance $((DISPUTE_WINDOW + 60))
    GAS[$t:lifeWithdraw]=$(send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" "$plain")
    GAS[$t:lifePermitWithdraw]=$(send "$PROVIDER_KEY" "$ESCROW" "withdraw(uint256)" "$permitted")
    local ids
    ids=$(IFS=,; echo "[${batch[*]}]")
    GAS[$t:withdrawMany10]=$(send "$PROVIDER_KEY" "$ESCROW" "withdrawMany(uint256[])" "$ids")

    GAS[$t:wholeLife]=$((GAS[$t:lifeOpen] + GAS[$t:lifeStop] + GAS[$t:lifeWithdraw]))
    GAS[$t:wholeLifePermit]=$((GAS[$t:lifePermitOpen] + GAS[$t:lifePermitStop] + GAS[$t:lifePermitWithdraw]))
    GAS[$t:wholeLifePermitExtended]=$((GAS[$t:wholeLifePermit] + GAS[$t:lifePermitExtend]))
    GAS[$t:wholeLifeBatch10]=$(((open_sum + stop_sum + GAS[$t:withdrawMany10]) / 10))
    # What the CLI (permits) and the provider agent (withdrawMany of every rental due) do: the batch's share of a
    # rental does not depend on how the rental was opened.
    GAS[$t:wholeLifePermitBatch10]=$((GAS[$t:lifePermitOpen] + GAS[$t:lifePermitStop] + GAS[$t:withdrawMany10] / 10))
    GAS[$t:wholeLifePermitExtendedBatch10]=$((GAS[$t:wholeLifePermitBatch10] + GAS[$t:lifePermitExtend]))
}

measure mock
measure circle

OPERATIONS=(open openWithPermit withdraw withdrawMany stop extend extendWithPermit approveThenExtend setAutoExtend
    autoExtend creditDowntime refuse claimFees invalidateNonce)
LIVES=(wholeLife wholeLifePermit wholeLifePermitExtended wholeLifeBatch10 wholeLifePermitBatch10
    wholeLifePermitExtendedBatch10)
declare -A LABELS=(
    [open]="open (standing approval)"
    [openWithPermit]="openWithPermit (EIP-2612)"
    [withdrawMany]="withdrawMany (5 rentals)"
    [extendWithPermit]="extendWithPermit (no allowance left)"
    [approveThenExtend]="approve + extend (no allowance left, two transactions)"
    [creditDowntime]="creditDowntime (1 attester)"
    [refuse]="refuse (submitted by a third party)"
    [setAutoExtend]="setAutoExtend (first on the rental)"
    [autoExtend]="autoExtend (submitted by a third party)"
    [wholeLife]="whole life: open + stop + withdraw"
    [wholeLifePermit]="whole life by permit: openWithPermit + stop + withdraw"
    [wholeLifePermitExtended]="whole life by permit, extended once: openWithPermit + extendWithPermit + stop + withdraw"
    [wholeLifeBatch10]="whole life per rental, ten withdrawn together: open + stop + withdrawMany(10) / 10"
    [wholeLifePermitBatch10]="the CLI's and the agent's path: openWithPermit + stop + withdrawMany(10) / 10"
    [wholeLifePermitExtendedBatch10]="the same, extended once: openWithPermit + extendWithPermit + stop + withdrawMany(10) / 10"
)
FAILED=0
echo "| operation | gas, MockUSDC | gas, Circle-like USDC | limit (MockUSDC) |"
echo "| --- | ---: | ---: | ---: |"
for op in "${OPERATIONS[@]}"; do
    limit=${LIMITS[$op]:-}
    verdict=${limit:--}
    if [[ -n $limit && ${GAS[mock:$op]} -gt $limit ]]; then
        verdict="$limit **exceeded**"
        FAILED=1
    fi
    echo "| ${LABELS[$op]:-$op} | ${GAS[mock:$op]} | ${GAS[circle:$op]} | $verdict |"
done
echo
echo "| whole life of one rental | gas, MockUSDC | gas, Circle-like USDC | goal (both) |"
echo "| --- | ---: | ---: | ---: |"
for op in "${LIVES[@]}"; do
    missed=()
    [[ ${GAS[mock:$op]} -gt $LIFE_GOAL ]] && missed+=(MockUSDC)
    [[ ${GAS[circle:$op]} -gt $LIFE_GOAL ]] && missed+=(Circle-like)
    verdict="≤ $LIFE_GOAL"
    if [[ ${#missed[@]} -gt 0 ]]; then
        verdict+=", **missed** with $(IFS=/; echo "${missed[*]}")"
    fi
    echo "| ${LABELS[$op]} | ${GAS[mock:$op]} | ${GAS[circle:$op]} | $verdict |"
done

# {"mockUSDC": {op: gas}, "circleUSDC": {op: gas}, "limits": {op: limit}, "goals": {life: goal}}
column() {
    local json="{" op
    for op in "${OPERATIONS[@]}" "${LIVES[@]}"; do
        json+="\"$op\":${GAS[$1:$op]},"
    done
    echo "${json%,}}"
}
limits="{"
for op in "${OPERATIONS[@]}"; do
    [[ -n ${LIMITS[$op]:-} ]] && limits+="\"$op\":${LIMITS[$op]},"
done
goals="{"
for op in "${LIVES[@]}"; do goals+="\"$op\":$LIFE_GOAL,"; done
echo "{\"mockUSDC\":$(column mock),\"circleUSDC\":$(column circle),\"limits\":${limits%,}},\"goals\":${goals%,}}}" >"$REPORT"
echo
echo "wrote $REPORT"
if [[ $FAILED -ne 0 ]]; then
    echo "gas limit exceeded" >&2
    exit 1
fi
