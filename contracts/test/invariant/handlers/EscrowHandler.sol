// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Test } from "forge-std/Test.sol";
import { Vm } from "forge-std/Vm.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Downtime, Quote, Rental } from "src/types/DataTypes.sol";

import { BlocklistUSDC } from "../../mocks/BlocklistUSDC.sol";
import { MockERC1271Wallet } from "../../mocks/MockERC1271Wallet.sol";
import { IEscrow } from "../../utils/IEscrow.sol";

/// @notice Drives the escrow through random sequences of every action a renter, a provider, an attester, the treasury,
/// the owner, the token issuer (blocklist) and a stranger can take, while keeping ghost totals of every token movement.
/// Calls expected to succeed are made directly, so that an unexpected revert fails the run (`fail_on_revert`); calls
/// expected to fail are tried, and a success is recorded as a violation.
contract EscrowHandler is Test {
    /*//////////////////////////////////////////////////////////////////////////
                                   SYSTEM UNDER TEST
    //////////////////////////////////////////////////////////////////////////*/

    IEscrow internal immutable escrow;
    BlocklistUSDC internal immutable token;
    address internal immutable owner;
    address internal immutable treasury;
    address internal immutable attester;
    uint256 internal immutable attesterKey;
    address internal immutable stranger;
    /// @dev Where a provider has {IGpuEscrow.withdrawTo} send its earnings.
    address internal immutable payee;

    address[] internal renters;
    uint256[] internal renterKeys;
    /// @dev Two EOA providers and one ERC-1271 wallet provider; `providerKeys` holds the key that signs for each.
    address[] internal providers;
    uint256[] internal providerKeys;
    mapping(address provider => uint256) internal nextNonce;

    /*//////////////////////////////////////////////////////////////////////////
                                       GHOSTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Token movements into and out of the escrow.
    uint256 public ghostDeposited;
    uint256 public ghostStopRefunded;
    uint256 public ghostCreditRefunded;
    uint256 public ghostRefusalRefunded;
    uint256 public ghostPaid;
    uint256 public ghostFeesTaken;
    uint256 public ghostFeesClaimed;

    /// @dev Fees taken per rental, summed from the `EarningsWithdrawn` logs of every (possibly batched) withdrawal.
    mapping(uint256 rentalId => uint256) public ghostFeeOf;
    mapping(uint256 rentalId => address) public ghostProviderOf;
    uint256 public ghostOpens;

    /// @dev Each rental as the handler saw it opened, extended, stopped, paid and credited, without reading the
    /// escrow's accounting: the payouts and credits the escrow owes are predicted from these.
    mapping(uint256 rentalId => uint256) public ghostRateOf;
    mapping(uint256 rentalId => uint256) public ghostStartOf;
    mapping(uint256 rentalId => uint256) public ghostEndOf;
    /// @dev Seconds paid to the provider (gross payout over the rate) and seconds credited to the renter.
    mapping(uint256 rentalId => uint256) public ghostPaidSecondsOf;
    mapping(uint256 rentalId => uint256) public ghostCreditedSecondsOf;
    /// @dev What the renter paid into the rental (deposit and extensions) and what came back to it (stop, credit and
    /// refusal refunds).
    mapping(uint256 rentalId => uint256) public ghostPaidInOf;
    mapping(uint256 rentalId => uint256) public ghostReturnedOf;
    /// @dev Rentals the handler saw refused, and the end each had just before its refusal.
    mapping(uint256 rentalId => bool) public ghostRefused;
    mapping(uint256 rentalId => uint256) public ghostEndBeforeRefusalOf;

    /// @dev Each rental's automatic extension as the renter last set it (budget cap and step; the step is 0 when
    /// off), and what `autoExtend` took since; the total of every cap ever set and everything `autoExtend` pulled.
    mapping(uint256 rentalId => uint256) public ghostAutoCapOf;
    mapping(uint256 rentalId => uint256) public ghostAutoStepOf;
    mapping(uint256 rentalId => uint256) public ghostAutoTakenOf;
    uint256 public ghostAutoCapsSet;
    uint256 public ghostAutoPulled;

    /// @dev The first broken rule seen, if any: an illegal call that succeeded or an illegal state transition.
    string public violation;

    /// @dev The state of each rental after the previous action, to check transitions against.
    mapping(uint256 rentalId => Rental) internal snapshots;
    /// @dev Whether each rental was refused as of its snapshot.
    mapping(uint256 rentalId => bool) internal snapshotRefused;

    /// @dev How often each action ran, and how often it got past its guards and did what it exists for.
    mapping(string action => uint256) public calls;
    mapping(string action => uint256) public effective;

    constructor(IEscrow escrow_, BlocklistUSDC token_, address owner_, address treasury_, uint256 attesterKey_) {
        escrow = escrow_;
        token = token_;
        owner = owner_;
        treasury = treasury_;
        attesterKey = attesterKey_;
        attester = vm.addr(attesterKey_);
        stranger = makeAddr("handler stranger");
        payee = makeAddr("handler payee");

        for (uint256 i = 0; i < 3; ++i) {
            (address renter, uint256 key) = makeAddrAndKey(string.concat("renter", vm.toString(i)));
            renters.push(renter);
            renterKeys.push(key);
            token.mint(renter, 1e30);
            vm.prank(renter);
            token.approve(address(escrow), type(uint256).max);
        }
        for (uint256 i = 0; i < 2; ++i) {
            (address provider, uint256 key) = makeAddrAndKey(string.concat("provider", vm.toString(i)));
            providers.push(provider);
            providerKeys.push(key);
        }
        (address walletOwner, uint256 walletKey) = makeAddrAndKey("wallet owner");
        providers.push(address(new MockERC1271Wallet(walletOwner)));
        providerKeys.push(walletKey);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      MODIFIERS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Counts the call and, after it, checks every rental's transition since the previous action.
    modifier track(string memory action) {
        ++calls[action];
        _;
        checkTransitions();
    }

    /*//////////////////////////////////////////////////////////////////////////
                                   RENTER ACTIONS
    //////////////////////////////////////////////////////////////////////////*/

    function open(
        uint256 renterSeed,
        uint256 providerSeed,
        uint256 rate,
        uint256 duration,
        uint256 headroom,
        bool withPermit
    ) external track("open") {
        uint256 renterIndex = renterSeed % renters.length;
        uint256 providerIndex = providerSeed % providers.length;
        duration = bound(duration, 1, 30 days);
        Quote memory quote =
            makeQuote(renterIndex, providerIndex, bound(rate, 1, 1e9), duration + bound(headroom, 0, 30 days));
        bytes memory signature = sign(providerKeys[providerIndex], escrow.hashQuote(quote));

        if (escrow.paused()) {
            vm.prank(quote.renter);
            try escrow.open(quote, duration, signature) {
                recordViolation("opened while paused");
            } catch { }
            return;
        }

        uint256 rentalId;
        if (withPermit) {
            rentalId = openWithPermit(renterIndex, quote, duration, signature);
        } else {
            vm.prank(quote.renter);
            rentalId = escrow.open(quote, duration, signature);
        }
        ghostDeposited += quote.ratePerSecond * duration;
        ghostPaidInOf[rentalId] = quote.ratePerSecond * duration;
        ghostProviderOf[rentalId] = quote.provider;
        ghostRateOf[rentalId] = quote.ratePerSecond;
        ghostStartOf[rentalId] = block.timestamp;
        ghostEndOf[rentalId] = block.timestamp + duration;
        ++ghostOpens;
        ++effective[withPermit ? "openWithPermit" : "open"];

        // The same signed quote can never open a second rental.
        vm.prank(quote.renter);
        try escrow.open(quote, duration, signature) {
            recordViolation("quote replayed");
        } catch { }
    }

    function makeQuote(uint256 renterIndex, uint256 providerIndex, uint256 rate, uint256 maxDuration)
        internal
        returns (Quote memory quote)
    {
        address provider = providers[providerIndex];
        quote = Quote({
            provider: provider,
            renter: renters[renterIndex],
            ratePerSecond: uint128(rate),
            maxDuration: uint40(maxDuration),
            deadline: uint40(block.timestamp + 1 hours),
            offerId: keccak256(abi.encode(providerIndex)),
            nonce: nextNonce[provider]++
        });
    }

    function openWithPermit(uint256 renterIndex, Quote memory quote, uint256 duration, bytes memory signature)
        internal
        returns (uint256 rentalId)
    {
        address renter = renters[renterIndex];
        (uint8 v, bytes32 r, bytes32 s) = signPermit(renter, uint256(quote.ratePerSecond) * duration);
        vm.prank(renter);
        rentalId = escrow.openWithPermit(quote, duration, signature, block.timestamp, v, r, s);
        // The permit replaced the standing approval and the deposit used it up.
        vm.prank(renter);
        token.approve(address(escrow), type(uint256).max);
    }

    /// @dev The renter's EIP-2612 permit of `value` to the escrow, valid until now.
    function signPermit(address renter, uint256 value) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                renter,
                address(escrow),
                value,
                token.nonces(renter),
                block.timestamp
            )
        );
        (v, r, s) = vm.sign(
            renterKeyOf(renter), keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash))
        );
    }

    /// @dev The renter extends a rental, one time in three paying with `extend` and its standing approval, otherwise
    /// with `extendWithPermit`, whose permit a stranger front-runs half of the time (the extension must go through
    /// all the same). An extension of an inactive, paused or maxed-out rental must be refused either way.
    function extend(uint256 idSeed, uint256 extraSeconds, uint256 mode) external track("extend") {
        (bool found, uint256 rentalId, Rental memory rental) = pickRental(idSeed);
        if (!found) return;
        mode %= 3;
        bool active = !rental.stopped && block.timestamp < rental.end;
        uint256 headroom = rental.maxEnd - rental.end;
        if (!active || escrow.paused() || headroom == 0) {
            vm.prank(rental.renter);
            try escrow.extend(rentalId, 1) {
                recordViolation("extended an inactive, paused or maxed-out rental");
            } catch { }
            (uint8 v, bytes32 r, bytes32 s) = signPermit(rental.renter, rental.ratePerSecond);
            vm.prank(rental.renter);
            try escrow.extendWithPermit(rentalId, 1, block.timestamp, v, r, s) {
                recordViolation("extended an inactive, paused or maxed-out rental with a permit");
            } catch { }
            return;
        }
        extraSeconds = bound(extraSeconds, 1, headroom < 7 days ? headroom : 7 days);
        uint256 cost;
        if (mode == 0) {
            vm.prank(rental.renter);
            cost = escrow.extend(rentalId, extraSeconds);
        } else {
            cost =
                extendWithPermit(rentalId, rental.renter, rental.ratePerSecond * extraSeconds, extraSeconds, mode == 2);
        }
        if (cost != rental.ratePerSecond * extraSeconds) recordViolation("extension cost");
        ghostDeposited += cost;
        ghostPaidInOf[rentalId] += cost;
        ghostEndOf[rentalId] += extraSeconds;
        ++effective["extend"];
    }

    /// @dev The renter extends with a permit of exactly the cost, front-run by a stranger if `frontRun`; the permit
    /// must leave no allowance and the renter must pay exactly the cost. The standing approval is given back after.
    function extendWithPermit(uint256 rentalId, address renter, uint256 value, uint256 extraSeconds, bool frontRun)
        internal
        returns (uint256 cost)
    {
        uint256 balanceBefore = token.balanceOf(renter);
        (uint8 v, bytes32 r, bytes32 s) = signPermit(renter, value);
        if (frontRun) {
            vm.prank(stranger);
            token.permit(renter, address(escrow), value, block.timestamp, v, r, s);
        }
        vm.prank(renter);
        cost = escrow.extendWithPermit(rentalId, extraSeconds, block.timestamp, v, r, s);
        if (token.allowance(renter, address(escrow)) != 0) recordViolation("permit left an allowance");
        if (balanceBefore - token.balanceOf(renter) != cost) recordViolation("permit extension pulled");
        // The permit replaced the standing approval and the extension used it up.
        vm.prank(renter);
        token.approve(address(escrow), type(uint256).max);
        ++effective[frontRun ? "extendWithPermit front-run" : "extendWithPermit"];
    }

    /// @dev The renter sets, replaces or (one time in eight) turns off the automatic extension of an active rental:
    /// a budget of up to three days at the rental's rate, a step of one minute to two days. A step below one minute
    /// or a budget above 96 bits must be refused, and so must any setting on an inactive rental. Three times in four
    /// the first active rental from the seed's on is taken, else the seed's own, active or not.
    function setAutoExtend(uint256 idSeed, uint256 budget, uint256 step) external track("setAutoExtend") {
        (bool found, uint256 rentalId, Rental memory rental) = step % 4 == 0 ? pickRental(idSeed) : pickActive(idSeed);
        if (!found) return;
        vm.startPrank(rental.renter);
        if (rental.stopped || block.timestamp >= rental.end) {
            try escrow.setAutoExtend(rentalId, 1, 1 minutes) {
                recordViolation("automatic extension set on an inactive rental");
            } catch { }
            vm.stopPrank();
            return;
        }
        try escrow.setAutoExtend(rentalId, 1, 1 minutes - 1) {
            recordViolation("automatic extension step below a minute");
        } catch { }
        try escrow.setAutoExtend(rentalId, 2 ** 96, 1 minutes) {
            recordViolation("automatic extension budget above 96 bits");
        } catch { }
        // Whole seconds of budget plus, from the seed's high bits, a remainder that buys nothing.
        budget = budget % 8 == 0
            ? 0
            : rental.ratePerSecond * bound(budget, 1, 3 days) + (budget >> 128) % rental.ratePerSecond;
        step = bound(step, 1 minutes, 2 days);
        escrow.setAutoExtend(rentalId, budget, step);
        vm.stopPrank();
        ghostAutoCapOf[rentalId] = budget;
        ghostAutoStepOf[rentalId] = budget == 0 ? 0 : step;
        ghostAutoTakenOf[rentalId] = 0;
        ghostAutoCapsSet += budget;
        ++effective[budget == 0 ? "setAutoExtend off" : "setAutoExtend"];
    }

    /// @dev Anyone triggers a rental's automatic extension: a stranger, the provider or the renter (`callerSeed`).
    /// Three times in four it is the rental ending soonest of those the handler's model says can be extended (few
    /// are, at any time), else the seed's own. A trigger before the last ten minutes must fail; the handler then
    /// moves time into them, when they start at most a week ahead, and predicts the extension from its own model:
    /// `min(step, left / rate, maxEnd - end)` seconds, `left` being the cap last set less what was taken since. It
    /// must fail when that is zero, on an inactive rental or while paused; otherwise it must cost `rate` per second,
    /// paid by the renter, whoever calls.
    function autoExtend(uint256 idSeed, uint256 callerSeed, uint256 leadSeed) external track("autoExtend") {
        (bool found, uint256 rentalId, Rental memory rental) =
            callerSeed % 4 == 0 ? pickRental(idSeed) : pickAutoExtendable(idSeed);
        if (!found) return;
        uint256 lead = escrow.AUTO_EXTEND_LEAD();
        uint256 end = ghostEndOf[rentalId];
        if (!rental.stopped && block.timestamp + lead < end) {
            vm.prank(stranger);
            try escrow.autoExtend(rentalId) {
                recordViolation("automatic extension before the lead");
            } catch { }
            if (end - lead - block.timestamp > 7 days) return;
            vm.warp(end - 1 - leadSeed % lead);
        }
        uint256 cap = ghostAutoCapOf[rentalId];
        uint256 taken = ghostAutoTakenOf[rentalId];
        if (taken > cap) {
            recordViolation("automatic extension took more than its cap");
            return;
        }
        uint256 rate = ghostRateOf[rentalId];
        uint256 extra = ghostAutoStepOf[rentalId];
        if ((cap - taken) / rate < extra) extra = (cap - taken) / rate;
        if (rental.maxEnd - end < extra) extra = rental.maxEnd - end;
        if (rental.stopped || block.timestamp >= end || escrow.paused() || extra == 0) {
            vm.prank(stranger);
            try escrow.autoExtend(rentalId) {
                recordViolation("automatic extension of an inactive, paused, spent or maxed-out rental");
            } catch { }
            return;
        }

        uint256 mode = callerSeed / 4 % 3;
        address caller = mode == 0 ? stranger : mode == 1 ? rental.provider : rental.renter;
        uint256 renterBefore = token.balanceOf(rental.renter);
        vm.prank(caller);
        uint256 cost = escrow.autoExtend(rentalId);
        if (cost != rate * extra) recordViolation("automatic extension cost");
        if (renterBefore - token.balanceOf(rental.renter) != cost) {
            recordViolation("automatic extension not paid by the renter");
        }
        ghostDeposited += cost;
        ghostPaidInOf[rentalId] += cost;
        ghostEndOf[rentalId] += extra;
        ghostAutoTakenOf[rentalId] += cost;
        ghostAutoPulled += cost;
        ++effective["autoExtend"];
        if (extra < ghostAutoStepOf[rentalId]) ++effective["autoExtend clipped"];

        // The window moved with the end: unless the new end is still within the lead, the next trigger is too early.
        if (block.timestamp + lead < ghostEndOf[rentalId]) {
            vm.prank(stranger);
            try escrow.autoExtend(rentalId) {
                recordViolation("automatic extension before the moved lead");
            } catch { }
        }
    }

    /// @dev Stopping an active rental must always work for its renter: paused or not, provider blocklisted or not.
    /// `mode` blocklists the provider (bit 0) and pauses the escrow (bit 1) for the stop if they are not already, so
    /// that both cases are exercised in every run rather than only when the toggles happen to line up.
    function stop(uint256 idSeed, uint256 mode) external track("stop") {
        (bool found, uint256 rentalId, Rental memory rental) = pickRental(idSeed);
        if (!found) return;
        if (rental.stopped || block.timestamp >= rental.end) {
            vm.prank(rental.renter);
            try escrow.stop(rentalId) {
                recordViolation("stopped an inactive rental");
            } catch { }
            return;
        }
        bool blocklist = mode & 1 != 0 && !token.isBlocklisted(rental.provider);
        bool pause = mode & 2 != 0 && !escrow.paused();
        if (blocklist) token.setBlocklisted(rental.provider, true);
        if (pause) {
            vm.prank(owner);
            escrow.pause();
        }

        vm.prank(rental.renter);
        uint256 refund = escrow.stop(rentalId);
        if (refund != rental.ratePerSecond * (ghostEndOf[rentalId] - block.timestamp)) recordViolation("stop refund");
        ghostStopRefunded += refund;
        ghostReturnedOf[rentalId] += refund;
        ghostEndOf[rentalId] = block.timestamp;
        ++effective["stop"];
        if (escrow.paused()) ++effective["stop while paused"];
        if (token.isBlocklisted(rental.provider)) ++effective["stop with provider blocklisted"];

        if (blocklist) token.setBlocklisted(rental.provider, false);
        if (pause) {
            vm.prank(owner);
            escrow.unpause();
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  PROVIDER ACTIONS
    //////////////////////////////////////////////////////////////////////////*/

    function withdraw(uint256 idSeed) external track("withdraw") {
        (bool found, uint256 rentalId, Rental memory rental) = pickRental(idSeed);
        if (!found) return;
        uint256 gross = escrow.withdrawable(rentalId);
        bool blocked = token.isBlocklisted(rental.provider);
        uint256 feesBefore = escrow.feesAccrued();
        if (gross != expectedGross(rentalId)) recordViolation("withdrawable != predicted gross");
        if (gross == 0 || blocked) {
            vm.prank(rental.provider);
            try escrow.withdraw(rentalId) {
                recordViolation("withdrew nothing or to a blocklisted provider");
            } catch { }
            return;
        }
        vm.recordLogs();
        vm.prank(rental.provider);
        uint256 paid = escrow.withdraw(rentalId);
        (uint256 loggedAmount, uint256 loggedFee) = collectWithdrawals();
        uint256 fee = escrow.feesAccrued() - feesBefore;
        if (paid + fee != gross) recordViolation("paid + fee != withdrawable");
        if (loggedAmount != paid || loggedFee != fee) recordViolation("EarningsWithdrawn != payout");
        ghostPaid += paid;
        ghostFeesTaken += fee;
        ++effective["withdraw"];
    }

    /// @dev A batch withdrawal by one provider, through {IGpuEscrow.withdrawTo} when `redirect` is set or the
    /// token blocklists the provider (whose own batch withdrawal must then fail).
    function withdrawMany(uint256 providerSeed, uint256 maxCount, bool redirect) external track("withdrawMany") {
        address provider = providers[providerSeed % providers.length];
        uint256 count = escrow.nextRentalId() - 1;
        uint256[] memory ids = new uint256[](count);
        uint256 n;
        maxCount = bound(maxCount, 1, 8);
        for (uint256 id = 1; id <= count && n < maxCount; ++id) {
            if (ghostProviderOf[id] == provider) ids[n++] = id;
        }
        assembly ("memory-safe") {
            mstore(ids, n)
        }
        uint256 total;
        uint256 expected;
        for (uint256 i = 0; i < n; ++i) {
            total += escrow.withdrawable(ids[i]);
            expected += expectedGross(ids[i]);
        }
        if (total != expected) recordViolation("batch withdrawable != predicted gross");
        bool blocked = token.isBlocklisted(provider);
        uint256 feesBefore = escrow.feesAccrued();
        if (total == 0 || blocked) {
            vm.prank(provider);
            try escrow.withdrawMany(ids) {
                recordViolation("batch withdrew nothing or to a blocklisted provider");
            } catch { }
        }
        if (total == 0) {
            vm.prank(provider);
            try escrow.withdrawTo(ids, payee) {
                recordViolation("batch withdrew nothing to a payee");
            } catch { }
            return;
        }
        redirect = redirect || blocked;
        uint256 payeeBefore = token.balanceOf(payee);
        vm.recordLogs();
        vm.prank(provider);
        uint256 paid = redirect ? escrow.withdrawTo(ids, payee) : escrow.withdrawMany(ids);
        (uint256 loggedAmount, uint256 loggedFee) = collectWithdrawals();
        uint256 fee = escrow.feesAccrued() - feesBefore;
        if (paid + fee != total) recordViolation("batch paid + fee != withdrawable");
        if (loggedAmount != paid || loggedFee != fee) recordViolation("batch EarningsWithdrawn != payout");
        if (redirect && token.balanceOf(payee) - payeeBefore != paid) recordViolation("withdrawTo missed the payee");
        ghostPaid += paid;
        ghostFeesTaken += fee;
        ++effective[redirect ? "withdrawTo" : "withdrawMany"];
        if (blocked) ++effective["withdrawTo with provider blocklisted"];
    }

    /// @dev The provider refuses a rental one time in four (so that most rentals live on to be paid), with its
    /// signed refusal submitted by a stranger. Like a stop, it must work paused or not, provider blocklisted or not:
    /// `mode` blocklists the provider (bit 2) and pauses the escrow (bit 3) for the refusal. Every time, the renter's
    /// own signature must fail to refuse the rental; a refusal after any payout, or with nothing left to refund, must
    /// fail; a successful one must refund `rate * (end - start - credited)` from the handler's model, to the renter,
    /// and then can neither be replayed nor leave a window to credit.
    function refuse(uint256 idSeed, uint256 mode) external track("refuse") {
        (bool found, uint256 rentalId, Rental memory rental) = pickRental(idSeed);
        if (!found) return;
        bytes32 digest = escrow.hashRefusal(rentalId);
        vm.prank(stranger);
        try escrow.refuse(rentalId, sign(renterKeyOf(rental.renter), digest)) {
            recordViolation("refused with the renter's signature");
        } catch { }
        if (mode % 4 != 0) return;

        bytes memory signature = sign(providerKeyOf(rental.provider), digest);
        uint256 unrefundedSeconds = ghostEndOf[rentalId] - ghostStartOf[rentalId] - ghostCreditedSecondsOf[rentalId];
        if (ghostPaidSecondsOf[rentalId] != 0 || unrefundedSeconds == 0) {
            vm.prank(stranger);
            try escrow.refuse(rentalId, signature) {
                recordViolation("refused a paid, refused or fully credited rental");
            } catch { }
            return;
        }
        bool blocklist = mode & 4 != 0 && !token.isBlocklisted(rental.provider);
        bool pause = mode & 8 != 0 && !escrow.paused();
        if (blocklist) token.setBlocklisted(rental.provider, true);
        if (pause) {
            vm.prank(owner);
            escrow.pause();
        }

        uint256 renterBefore = token.balanceOf(rental.renter);
        vm.prank(stranger);
        uint256 refund = escrow.refuse(rentalId, signature);
        if (refund != ghostRateOf[rentalId] * unrefundedSeconds) recordViolation("refusal refund");
        if (token.balanceOf(rental.renter) - renterBefore != refund) recordViolation("refusal missed the renter");
        ghostRefusalRefunded += refund;
        ghostReturnedOf[rentalId] += refund;
        ghostRefused[rentalId] = true;
        ghostEndBeforeRefusalOf[rentalId] = ghostEndOf[rentalId];
        ghostEndOf[rentalId] = ghostStartOf[rentalId] + ghostCreditedSecondsOf[rentalId];
        ++effective["refuse"];
        if (ghostCreditedSecondsOf[rentalId] != 0) ++effective["refuse after credit"];
        if (rental.stopped) ++effective["refuse after stop"];
        if (escrow.paused()) ++effective["refuse while paused"];

        if (blocklist) token.setBlocklisted(rental.provider, false);
        if (pause) {
            vm.prank(owner);
            escrow.unpause();
        }

        // The refusal cannot be replayed, and no window of the rental as it was can be credited any more.
        vm.prank(stranger);
        try escrow.refuse(rentalId, signature) {
            recordViolation("refusal replayed");
        } catch { }
        uint256 low = rental.creditedUntil > rental.start ? rental.creditedUntil : rental.start;
        uint256 high =
            block.timestamp < ghostEndBeforeRefusalOf[rentalId] ? block.timestamp : ghostEndBeforeRefusalOf[rentalId];
        if (high > low) {
            Downtime memory downtime = Downtime({
                rentalId: rentalId,
                from: uint40(low),
                to: uint40(high),
                downSeconds: uint40(high - low),
                deadline: uint40(block.timestamp)
            });
            (uint256 packed, bytes memory signatures) = attestation(downtime);
            try escrow.creditDowntime(packed, signatures) {
                recordViolation("credited a refused rental");
            } catch { }
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  ATTESTER ACTIONS
    //////////////////////////////////////////////////////////////////////////*/

    function creditDowntime(uint256 idSeed, uint256 fromSeed, uint256 toSeed, uint256 downSeed)
        external
        track("creditDowntime")
    {
        (bool found, uint256 rentalId, Rental memory rental) = pickRental(idSeed);
        if (!found) return;
        uint256 low = rental.creditedUntil > rental.start ? rental.creditedUntil : rental.start;
        uint256 high = block.timestamp < rental.end ? block.timestamp : rental.end;
        if (high <= low) return;
        if (high < rental.end) tryFutureWindow(rentalId, low);
        uint256 from = bound(fromSeed, low, high - 1);
        uint256 to = bound(toSeed, from + 1, high);
        uint256 downSeconds = bound(downSeed, 1, to - from);
        Downtime memory downtime = Downtime({
            rentalId: rentalId,
            from: uint40(from),
            to: uint40(to),
            downSeconds: uint40(downSeconds),
            deadline: uint40(block.timestamp)
        });
        (uint256 packed, bytes memory signatures) = attestation(downtime);

        uint256 expected = expectedCredit(rentalId, from, to, downSeconds);

        vm.prank(stranger);
        if (expected == 0) {
            try escrow.creditDowntime(packed, signatures) {
                recordViolation("credited already paid seconds");
            } catch { }
            return;
        }
        uint256 refund = escrow.creditDowntime(packed, signatures);
        if (refund != ghostRateOf[rentalId] * expected) recordViolation("credit refund");
        ghostCreditRefunded += refund;
        ghostReturnedOf[rentalId] += refund;
        ghostCreditedSecondsOf[rentalId] += expected;
        ++effective["creditDowntime"];
        if (expected < downSeconds) ++effective["creditDowntime clipped"];

        // Neither the same attestation nor any window reaching back into this one can be credited again.
        try escrow.creditDowntime(packed, signatures) {
            recordViolation("attestation replayed");
        } catch { }
        downtime.from = uint40(to - 1);
        downtime.downSeconds = 1;
        (packed, signatures) = attestation(downtime);
        try escrow.creditDowntime(packed, signatures) {
            recordViolation("overlapping window credited");
        } catch { }
    }

    /// @dev Downtime cannot be attested ahead of time: a window still running at submission is refused.
    function tryFutureWindow(uint256 rentalId, uint256 from) internal {
        Downtime memory downtime = Downtime({
            rentalId: rentalId,
            from: uint40(from),
            to: uint40(block.timestamp + 1),
            downSeconds: 1,
            deadline: uint40(block.timestamp)
        });
        (uint256 packed, bytes memory signatures) = attestation(downtime);
        try escrow.creditDowntime(packed, signatures) {
            recordViolation("future downtime credited");
        } catch { }
    }

    /// @dev The arguments of `creditDowntime` for `downtime` signed by the attester: the packed members and the
    /// single `attester || signature length || signature` entry.
    function attestation(Downtime memory downtime) internal view returns (uint256 packed, bytes memory signatures) {
        bytes memory signature = sign(attesterKey, escrow.hashDowntime(downtime));
        packed = uint256(
            bytes32(
                abi.encodePacked(
                    uint96(downtime.rentalId), downtime.from, downtime.to, downtime.downSeconds, downtime.deadline
                )
            )
        );
        signatures = abi.encodePacked(attester, uint16(signature.length), signature);
    }

    /*//////////////////////////////////////////////////////////////////////////
                             TREASURY, OWNER AND ISSUER
    //////////////////////////////////////////////////////////////////////////*/

    function claimFees() external track("claimFees") {
        vm.prank(stranger);
        try escrow.claimFees() {
            recordViolation("stranger claimed fees");
        } catch { }
        // A claim leaves one unit accrued; with no more than that there is nothing to claim.
        if (escrow.feesAccrued() <= 1) return;
        vm.prank(treasury);
        ghostFeesClaimed += escrow.claimFees();
        ++effective["claimFees"];
    }

    /// @dev Pauses one time in four, so that most of a run is spent unpaused, and always unpauses.
    function togglePause(uint256 seed) external track("togglePause") {
        bool paused = escrow.paused();
        if (!paused && seed % 4 != 0) return;
        vm.prank(owner);
        if (paused) escrow.unpause();
        else escrow.pause();
    }

    function setFeeBps(uint256 feeBps) external track("setFeeBps") {
        vm.prank(owner);
        escrow.setFeeBps(uint16(bound(feeBps, 0, 1500)));
    }

    /// @dev Blocklists a provider one time in four, and always lifts a blocklist.
    function toggleBlocklist(uint256 providerSeed) external track("toggleBlocklist") {
        address provider = providers[providerSeed % providers.length];
        bool blocked = token.isBlocklisted(provider);
        if (!blocked && providerSeed % 16 >= 4) return;
        token.setBlocklisted(provider, !blocked);
    }

    function warp(uint256 secondsForward) external track("warp") {
        vm.warp(block.timestamp + bound(secondsForward, 1, 2 days));
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      INTRUDER
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev A stranger tries every privileged path; none may succeed.
    function intrude(uint256 idSeed) external track("intrude") {
        vm.startPrank(stranger);
        (bool found, uint256 rentalId,) = pickRental(idSeed);
        if (found) {
            try escrow.stop(rentalId) {
                recordViolation("stranger stopped a rental");
            } catch { }
            try escrow.extend(rentalId, 1) {
                recordViolation("stranger extended a rental");
            } catch { }
            try escrow.extendWithPermit(rentalId, 1, block.timestamp, 27, bytes32(0), bytes32(0)) {
                recordViolation("stranger extended a rental with a permit");
            } catch { }
            try escrow.setAutoExtend(rentalId, 1, 1 minutes) {
                recordViolation("stranger set an automatic extension");
            } catch { }
            try escrow.setAutoExtend(rentalId, 0, 0) {
                recordViolation("stranger turned an automatic extension off");
            } catch { }
            try escrow.withdraw(rentalId) {
                recordViolation("stranger withdrew");
            } catch { }
            uint256[] memory ids = new uint256[](1);
            ids[0] = rentalId;
            try escrow.withdrawMany(ids) {
                recordViolation("stranger batch-withdrew");
            } catch { }
            try escrow.withdrawTo(ids, stranger) {
                recordViolation("stranger withdrew to itself");
            } catch { }
        }
        try escrow.setFeeBps(0) {
            recordViolation("stranger set the fee");
        } catch { }
        try escrow.setTreasury(stranger) {
            recordViolation("stranger set the treasury");
        } catch { }
        try escrow.setAttester(stranger, true) {
            recordViolation("stranger registered an attester");
        } catch { }
        try escrow.setAttesterThreshold(1) {
            recordViolation("stranger set the threshold");
        } catch { }
        try escrow.pause() {
            recordViolation("stranger paused");
        } catch { }
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      HELPERS
    //////////////////////////////////////////////////////////////////////////*/

    function rentalCount() public view returns (uint256) {
        return escrow.nextRentalId() - 1;
    }

    function pickRental(uint256 seed) internal view returns (bool found, uint256 rentalId, Rental memory rental) {
        uint256 count = rentalCount();
        if (count == 0) return (false, 0, rental);
        rentalId = seed % count + 1;
        rental = escrow.getRental(rentalId);
        found = true;
    }

    /// @dev The first rental from the seed's on (wrapping around) that is neither stopped nor ended; the seed's own
    /// if there is none.
    function pickActive(uint256 seed) internal view returns (bool found, uint256 rentalId, Rental memory rental) {
        uint256 count = rentalCount();
        for (uint256 i = 0; i < count; ++i) {
            rentalId = (seed % count + i) % count + 1;
            rental = escrow.getRental(rentalId);
            if (!rental.stopped && block.timestamp < rental.end) return (true, rentalId, rental);
        }
        return pickRental(seed);
    }

    /// @dev Of the rentals whose automatic extension the handler's model says could extend them (not stopped, not
    /// ended, a step set, a budget left for at least a second, room below the maximum end), the one ending soonest;
    /// the seed's own if there is none.
    function pickAutoExtendable(uint256 seed)
        internal
        view
        returns (bool found, uint256 rentalId, Rental memory rental)
    {
        uint256 count = rentalCount();
        uint256 soonest = type(uint256).max;
        for (uint256 id = 1; id <= count; ++id) {
            uint256 end = ghostEndOf[id];
            if (end >= soonest || block.timestamp >= end || ghostAutoStepOf[id] == 0) continue;
            if (ghostAutoTakenOf[id] + ghostRateOf[id] > ghostAutoCapOf[id]) continue;
            Rental memory candidate = escrow.getRental(id);
            if (candidate.stopped || candidate.maxEnd <= end) continue;
            (found, rentalId, rental, soonest) = (true, id, candidate, end);
        }
        if (!found) return pickRental(seed);
    }

    function providerKeyOf(address provider) internal view returns (uint256) {
        for (uint256 i = 0; i < providers.length; ++i) {
            if (providers[i] == provider) return providerKeys[i];
        }
        revert("unknown provider");
    }

    function renterKeyOf(address renter) internal view returns (uint256) {
        for (uint256 i = 0; i < renters.length; ++i) {
            if (renters[i] == renter) return renterKeys[i];
        }
        revert("unknown renter");
    }

    function sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The gross payout a withdrawal of `rentalId` must settle now, from the ghosts alone: every second before
    /// the dispute window's cutoff (and the end) that is neither paid nor credited.
    function expectedGross(uint256 rentalId) internal view returns (uint256) {
        uint256 window = escrow.DISPUTE_WINDOW();
        uint256 cutoff = block.timestamp > window ? block.timestamp - window : 0;
        if (cutoff > ghostEndOf[rentalId]) cutoff = ghostEndOf[rentalId];
        uint256 settledUntil = ghostSettledUntil(rentalId);
        return cutoff > settledUntil ? ghostRateOf[rentalId] * (cutoff - settledUntil) : 0;
    }

    /// @dev The seconds a credit of `downSeconds` in `[from, to)` must refund, from the ghosts alone: every second
    /// before `settledUntil` is paid or credited already, so only the rest of the window can be credited.
    function expectedCredit(uint256 rentalId, uint256 from, uint256 to, uint256 downSeconds)
        internal
        view
        returns (uint256 expected)
    {
        uint256 settledUntil = ghostSettledUntil(rentalId);
        uint256 unpaidFrom = from > settledUntil ? from : settledUntil;
        expected = to > unpaidFrom ? to - unpaidFrom : 0;
        if (downSeconds < expected) expected = downSeconds;
    }

    /// @dev Where the handler's ghosts say the rental is settled up to: its start plus every second paid or credited.
    function ghostSettledUntil(uint256 rentalId) internal view returns (uint256) {
        return ghostStartOf[rentalId] + ghostPaidSecondsOf[rentalId] + ghostCreditedSecondsOf[rentalId];
    }

    /// @dev Reads the escrow's `EarningsWithdrawn` logs recorded since `vm.recordLogs()`: attributes each fee to its
    /// rental, counts the paid seconds, and returns the totals paid and taken.
    function collectWithdrawals() internal returns (uint256 amount, uint256 fee) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow) || logs[i].topics[0] != IGpuEscrow.EarningsWithdrawn.selector) {
                continue;
            }
            uint256 rentalId = uint256(logs[i].topics[1]);
            (uint256 rentalAmount, uint256 rentalFee) = abi.decode(logs[i].data, (uint256, uint256));
            uint256 gross = rentalAmount + rentalFee;
            if (gross % ghostRateOf[rentalId] != 0) recordViolation("payout not in whole seconds");
            ghostPaidSecondsOf[rentalId] += gross / ghostRateOf[rentalId];
            ghostFeeOf[rentalId] += rentalFee;
            amount += rentalAmount;
            fee += rentalFee;
        }
    }

    function feeOf(uint256 gross, uint256 bps) public pure returns (uint256) {
        return gross * bps / 10_000;
    }

    function recordViolation(string memory reason) internal {
        if (bytes(violation).length == 0) violation = reason;
    }

    /// @dev Every rental may only move forward: its terms never change, paid and credited amounts and the credited
    /// window only grow, a stop is final and freezes the end, and otherwise the end only moves forward (extensions).
    /// The one exception is a refusal, which may come after a stop: it moves the end back to `start + credited` once,
    /// on a rental that was never paid.
    function checkTransitions() internal {
        uint256 count = rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            Rental memory current = escrow.getRental(id);
            Rental memory previous = snapshots[id];
            if (previous.renter != address(0)) {
                if (
                    current.renter != previous.renter || current.provider != previous.provider
                        || current.start != previous.start || current.maxEnd != previous.maxEnd
                        || current.ratePerSecond != previous.ratePerSecond || current.feeBps != previous.feeBps
                ) recordViolation("rental terms changed");
                if (current.withdrawn < previous.withdrawn) recordViolation("withdrawn decreased");
                if (current.credited < previous.credited) recordViolation("credited decreased");
                if (current.creditedUntil < previous.creditedUntil) recordViolation("credited window moved back");
                bool refusedNow = ghostRefused[id] && !snapshotRefused[id];
                if (previous.stopped && !refusedNow && (!current.stopped || current.end != previous.end)) {
                    recordViolation("stopped rental changed");
                }
                if (
                    refusedNow
                        && (!current.stopped
                            || current.end != current.start + current.credited
                            || current.withdrawn != 0)
                ) recordViolation("refusal left the rental payable");
                if (!current.stopped && current.end < previous.end) recordViolation("end moved back without a stop");
            }
            snapshots[id] = current;
            snapshotRefused[id] = ghostRefused[id];
        }
    }
}
