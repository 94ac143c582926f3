// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Errors } from "src/libraries/Errors.sol";
import { Downtime, Quote, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract GpuEscrow_Fuzz_Test is Base_Test {
    uint256 internal constant MAX_RATE = 1e12; // one million mUSDC per second
    uint256 internal constant MAX_QUOTE_DURATION = 365 days;

    /// @dev Redeploys the escrow with a fuzzed fee and funds the renter for the largest deposit the fuzzing can ask.
    function deployWithFee(uint256 feeBps) internal returns (uint16 bps) {
        bps = uint16(bound(feeBps, 0, 1500));
        escrow = deployEscrow(bps, DISPUTE_WINDOW);
        vm.prank(owner);
        escrow.setAttester(attesters[0], true);
        fundAndApprove(renter, 2 * MAX_RATE * MAX_QUOTE_DURATION);
    }

    function quoteOf(uint256 rate, uint256 maxDuration) internal returns (Quote memory quote) {
        quote = defaultQuote();
        quote.ratePerSecond = uint128(rate);
        quote.maxDuration = uint40(maxDuration);
    }

    /// @dev Withdraws if anything is withdrawable and returns the gross settled and the fee taken by that call.
    function withdrawIfAny(uint256 rentalId) internal returns (uint256 gross, uint256 fee) {
        gross = escrow.withdrawable(rentalId);
        if (gross == 0) return (0, 0);
        uint256 feesBefore = escrow.feesAccrued();
        uint256 paid = withdrawAs(provider, rentalId);
        fee = escrow.feesAccrued() - feesBefore;
        assertEq(paid + fee, gross, "paid + fee == gross");
    }

    function sort(uint256[] memory values) internal pure {
        for (uint256 i = 1; i < values.length; ++i) {
            for (uint256 j = i; j > 0 && values[j - 1] > values[j]; --j) {
                (values[j - 1], values[j]) = (values[j], values[j - 1]);
            }
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                                        OPEN
    //////////////////////////////////////////////////////////////////////////*/

    function testFuzz_Open(uint256 rate, uint256 maxDuration, uint256 duration, uint256 nonce) external {
        rate = bound(rate, 1, MAX_RATE);
        maxDuration = bound(maxDuration, 1, MAX_QUOTE_DURATION);
        duration = bound(duration, 1, maxDuration);
        fundAndApprove(renter, rate * duration);
        uint256 renterBefore = balanceOf(renter);
        Quote memory quote = quoteOf(rate, maxDuration);
        quote.nonce = nonce;

        uint256 rentalId = openWith(quote, duration);

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.end, START_TIME + duration, "end");
        assertEq(rental.maxEnd, START_TIME + maxDuration, "maxEnd");
        assertEq(rental.ratePerSecond, rate, "rate");
        assertEq(renterBefore - balanceOf(renter), rate * duration, "deposit pulled");
        assertTrue(escrow.isNonceUsed(provider, nonce), "nonce used");

        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NonceAlreadyUsed.selector, provider, nonce));
        openWith(quote, duration);
    }

    /// @dev Every field of the packed rental at the edges of its width: the largest rate and the longest rental the
    /// escrow stores, withdrawn, extended, credited and stopped, read back exactly.
    function testFuzz_PackedFieldsRoundTrip(
        uint256 rate,
        uint256 maxDuration,
        uint256 duration,
        uint256 elapsed,
        uint256 feeBps
    ) external {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_STORED_RATE);
        maxDuration = bound(maxDuration, 2 * DISPUTE_WINDOW + 2, type(uint40).max);
        uint256 cappedMax = maxDuration < MAX_RENTAL_DURATION ? maxDuration : MAX_RENTAL_DURATION;
        duration = bound(duration, 2 * DISPUTE_WINDOW + 2, cappedMax);
        fundAndApprove(renter, rate * cappedMax);
        Quote memory quote = quoteOf(0, maxDuration);
        quote.ratePerSecond = uint128(rate);
        uint256 rentalId = openWith(quote, duration);

        // Withdraw what is payable halfway, credit a window after it, extend to the maximum, then stop.
        elapsed = bound(elapsed, 2 * DISPUTE_WINDOW + 1, duration - 1);
        vm.warp(START_TIME + elapsed);
        uint256 paid = elapsed - DISPUTE_WINDOW;
        withdrawAs(provider, rentalId);
        credit(downtimeOf(rentalId, START_TIME + paid, START_TIME + elapsed, 1));
        if (cappedMax > duration) {
            extendAs(renter, rentalId, cappedMax - duration);
        }
        stopAs(renter, rentalId);

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.renter, renter, "renter");
        assertEq(rental.provider, provider, "provider");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.end, START_TIME + elapsed, "end");
        assertEq(rental.maxEnd, START_TIME + cappedMax, "maxEnd");
        assertTrue(rental.stopped, "stopped");
        assertEq(rental.ratePerSecond, rate, "rate");
        assertEq(rental.feeBps, bps, "feeBps");
        assertEq(rental.withdrawn, rate * paid, "withdrawn");
        assertEq(rental.credited, 1, "credited");
        assertEq(rental.creditedUntil, START_TIME + elapsed, "creditedUntil");
        assertEq(
            balanceOf(address(escrow)), rate * (elapsed - paid - 1) + escrow.feesAccrued(), "escrow holds the rest"
        );
    }

    function testFuzz_RevertWhen_DurationAboveMax(uint256 maxDuration, uint256 duration) external {
        maxDuration = bound(maxDuration, 1, MAX_QUOTE_DURATION);
        duration = bound(duration, maxDuration + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DurationAboveMax.selector, duration, maxDuration));
        openWith(quoteOf(RATE, maxDuration), duration);
    }

    function testFuzz_RevertWhen_SignedByOtherKey(uint256 key) external {
        key = bound(key, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
        vm.assume(key != providerKey);
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(key, quote);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidSignature.selector, provider));
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  STOP AND EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    function testFuzz_Stop_Refund(uint256 rate, uint256 duration, uint256 elapsed) external {
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_QUOTE_DURATION);
        elapsed = bound(elapsed, 0, duration - 1);
        fundAndApprove(renter, rate * duration);
        uint256 rentalId = openWith(quoteOf(rate, duration), duration);
        uint256 renterBefore = balanceOf(renter);

        vm.warp(START_TIME + elapsed);
        uint256 refund = stopAs(renter, rentalId);

        assertEq(refund, rate * (duration - elapsed), "refund");
        assertEq(balanceOf(renter) - renterBefore, refund, "renter received");
        assertEq(balanceOf(address(escrow)), rate * elapsed, "escrow keeps exactly the earned part");
        assertEq(escrow.earned(rentalId), rate * elapsed, "earned");
    }

    function testFuzz_Extend(uint256 duration, uint256 maxDuration, uint256 elapsed, uint256 extra) external {
        maxDuration = bound(maxDuration, 2, MAX_QUOTE_DURATION);
        duration = bound(duration, 1, maxDuration - 1);
        elapsed = bound(elapsed, 0, duration - 1);
        extra = bound(extra, 1, maxDuration - duration);
        uint256 rentalId = openWith(quoteOf(RATE, maxDuration), duration);
        vm.warp(START_TIME + elapsed);

        uint256 cost = extendAs(renter, rentalId, extra);

        assertEq(cost, RATE * extra, "cost");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, START_TIME + duration + extra, "end");
        assertLe(rental.end - rental.start, maxDuration, "within the quote");
        assertEq(balanceOf(address(escrow)), RATE * (duration + extra), "escrow balance");
    }

    function testFuzz_RevertWhen_ExtendPastMax(uint256 duration, uint256 extra) external {
        duration = bound(duration, 1, MAX_DURATION);
        extra = bound(extra, MAX_DURATION - duration + 1, type(uint256).max);
        uint256 rentalId = openWith(defaultQuote(), duration);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_ExtensionAboveMax.selector, rentalId, extra, MAX_DURATION - duration
            )
        );
        extendAs(renter, rentalId, extra);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                AUTOMATIC EXTENSION
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Any budget and step are stored exactly, or refused with the error that names the first bound broken.
    function testFuzz_SetAutoExtend(uint256 budget, uint256 step) external {
        uint256 rentalId = openDefault();
        uint256 maxBudget = 2 ** 96 - 1;
        vm.prank(renter);
        if (budget > maxBudget) {
            vm.expectRevert(
                abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendBudgetTooLarge.selector, budget, maxBudget)
            );
            escrow.setAutoExtend(rentalId, budget, step);
        } else if (budget != 0 && (step < 1 minutes || step > MAX_RENTAL_DURATION)) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    Errors.GpuEscrow_AutoExtendStepOutOfRange.selector, step, 1 minutes, MAX_RENTAL_DURATION
                )
            );
            escrow.setAutoExtend(rentalId, budget, step);
        } else {
            escrow.setAutoExtend(rentalId, budget, step);
            (uint256 storedBudget, uint256 storedStep) = escrow.autoExtension(rentalId);
            assertEq(storedBudget, budget, "budget");
            assertEq(storedStep, budget == 0 ? 0 : step, "step");
        }
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 0, "credited");
        assertEq(rental.creditedUntil, 0, "creditedUntil");
    }

    /// @dev A rental with an automatic extension, and what the extension took and bought so far.
    struct AutoRun {
        uint256 rentalId;
        uint256 rate;
        uint256 duration;
        uint256 maxDuration;
        uint256 budget;
        uint256 step;
        uint256 taken;
        uint256 extended;
    }

    /// @dev Whatever the budget, step and rate and whenever it is triggered, the automatic extension never takes more
    /// than its budget, takes exactly `rate` per second it buys, and leaves `budget - taken` in the budget. Each of up
    /// to eight triggers, some of them before the lead, is predicted independently: too early, nothing left, or
    /// `min(step, left / rate, headroom)` seconds. Half the time the budget is within a few steps, so that it runs out.
    function testFuzz_AutoExtend_TakesAtMostTheBudget(
        uint256 rate,
        uint256 duration,
        uint256 headroom,
        uint256 budget,
        uint256 step,
        bool anyBudget,
        uint256[8] memory times
    ) external {
        AutoRun memory run;
        run.rate = bound(rate, 1, MAX_STORED_RATE);
        run.duration = bound(duration, 1, 30 days);
        run.maxDuration = run.duration + bound(headroom, 0, MAX_QUOTE_DURATION - 30 days);
        run.step = bound(step, 1 minutes, MAX_RENTAL_DURATION);
        run.budget = anyBudget ? bound(budget, 0, 2 ** 96 - 1) : bound(budget, 0, run.rate * (4 * run.step + 1));
        fundAndApprove(renter, run.rate * run.maxDuration);
        run.rentalId = openWith(quoteOf(run.rate, run.maxDuration), run.duration);
        setAutoExtendAs(renter, run.rentalId, run.budget, run.step);
        uint256 renterBefore = balanceOf(renter);

        for (uint256 i = 0; i < times.length; ++i) {
            triggerAutoExtend(run, times[i]);
            assertLe(run.taken, run.budget, "taken <= budget");
        }

        assertEq(run.taken, run.rate * run.extended, "taken == rate * extended seconds");
        assertEq(renterBefore - balanceOf(renter), run.taken, "renter paid exactly what was taken");
        (uint256 left, uint256 storedStep) = escrow.autoExtension(run.rentalId);
        assertEq(left, run.budget - run.taken, "budget left == budget - taken");
        assertEq(storedStep, run.budget == 0 ? 0 : run.step, "step kept");
        Rental memory rental = escrow.getRental(run.rentalId);
        assertEq(rental.end, START_TIME + run.duration + run.extended, "end");
        assertLe(rental.end, rental.maxEnd, "within the quote");
        assertEq(
            balanceOf(address(escrow)), run.rate * (run.duration + run.extended), "escrow holds deposit and extensions"
        );
    }

    /// @dev Moves time to somewhere between a lead and a half before the rental's end (too early) and its last second,
    /// never back, and triggers the automatic extension, predicting the outcome from `run` alone.
    function triggerAutoExtend(AutoRun memory run, uint256 time) internal {
        uint256 end = START_TIME + run.duration + run.extended;
        uint256 at = end - 1 - bound(time, 0, 15 minutes);
        if (at > block.timestamp) vm.warp(at);
        if (block.timestamp + 10 minutes < end) {
            vm.expectRevert(
                abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, run.rentalId, end - 10 minutes)
            );
            autoExtendAs(stranger, run.rentalId);
            return;
        }
        uint256 left = run.budget - run.taken;
        uint256 room = run.maxDuration - run.duration - run.extended;
        uint256 extra = run.budget == 0 ? 0 : run.step;
        if (left / run.rate < extra) extra = left / run.rate;
        if (room < extra) extra = room;
        if (extra == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, run.rentalId, left, room)
            );
            autoExtendAs(stranger, run.rentalId);
            return;
        }
        uint256 balanceBefore = balanceOf(renter);
        uint256 cost = autoExtendAs(stranger, run.rentalId);
        assertEq(cost, run.rate * extra, "cost == rate * seconds bought");
        assertEq(balanceBefore - balanceOf(renter), cost, "renter paid the cost");
        run.taken += cost;
        run.extended += extra;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  FEES AND PAYOUTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev However the provider splits its withdrawals, it is paid the same and the fee is the same, and equal to the
    /// fee on the total.
    function testFuzz_FeeInvariantUnderSplitWithdrawals(
        uint256 feeBps,
        uint256 rate,
        uint256 duration,
        uint256[5] memory times
    ) external {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_QUOTE_DURATION);
        uint256 rentalId = openWith(quoteOf(rate, duration), duration);

        uint256[] memory schedule = new uint256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            schedule[i] = bound(times[i], 0, duration + 2 * DISPUTE_WINDOW);
        }
        sort(schedule);

        uint256 totalGross;
        uint256 totalFee;
        for (uint256 i = 0; i < 5; ++i) {
            vm.warp(START_TIME + schedule[i]);
            (uint256 gross, uint256 fee) = withdrawIfAny(rentalId);
            totalGross += gross;
            totalFee += fee;
        }
        vm.warp(START_TIME + duration + DISPUTE_WINDOW);
        (uint256 lastGross, uint256 lastFee) = withdrawIfAny(rentalId);
        totalGross += lastGross;
        totalFee += lastFee;

        uint256 deposit = rate * duration;
        assertEq(totalGross, deposit, "gross == deposit");
        assertEq(totalFee, feeOf(deposit, bps), "fee == fee(total)");
        assertEq(balanceOf(provider), deposit - feeOf(deposit, bps), "provider paid");
        assertEq(balanceOf(address(escrow)), escrow.feesAccrued(), "only fees left");
    }

    /// @dev Whatever happens to a rental, deposits equal refunds plus payouts plus fees, and the escrow never pays
    /// out more than it took in.
    function testFuzz_Conservation(
        uint256 feeBps,
        uint256 rate,
        uint256 duration,
        uint256 withdrawAt,
        uint256 stopAt,
        uint256 downSeconds
    ) external {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 2, MAX_QUOTE_DURATION);
        stopAt = bound(stopAt, 1, duration - 1);
        withdrawAt = bound(withdrawAt, 0, stopAt);
        uint256 rentalId = openWith(quoteOf(rate, duration), duration);
        uint256 renterBefore = balanceOf(renter);

        vm.warp(START_TIME + withdrawAt);
        withdrawIfAny(rentalId);
        vm.warp(START_TIME + stopAt);
        uint256 refunded = stopAs(renter, rentalId);
        creditWholeRental(rentalId, stopAt, bound(downSeconds, 1, stopAt));
        vm.warp(START_TIME + stopAt + DISPUTE_WINDOW);
        withdrawIfAny(rentalId);
        uint256 fees;
        if (escrow.feesAccrued() > 1) {
            vm.prank(treasury);
            fees = escrow.claimFees();
        }
        // A claim leaves one unit accrued: it is the treasury's all the same.
        fees += escrow.feesAccrued();

        uint256 renterBack = balanceOf(renter) - renterBefore;
        assertGe(renterBack, refunded, "stop refund received");
        assertEq(renterBack + balanceOf(provider) + fees, rate * duration, "deposit == refunds + payouts + fees");
        assertEq(balanceOf(address(escrow)), escrow.feesAccrued(), "escrow drained but for the fees left accrued");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(fees, feeOf(rental.withdrawn, bps), "fee on the provider's gross only");
        assertEq(rental.withdrawn / rate + rental.credited, stopAt, "every second paid or credited");
    }

    /// @dev Credits downtime over the whole (stopped) rental; only its unpaid part can be credited.
    function creditWholeRental(uint256 rentalId, uint256 stoppedAfter, uint256 downSeconds) internal {
        Rental memory rental = escrow.getRental(rentalId);
        uint256 settled = rental.withdrawn / rental.ratePerSecond;
        if (settled == stoppedAfter) return;
        uint256 expected = downSeconds < stoppedAfter - settled ? downSeconds : stoppedAfter - settled;
        Downtime memory downtime = downtimeOf(rentalId, START_TIME, START_TIME + stoppedAfter, downSeconds);
        assertEq(credit(downtime), rental.ratePerSecond * expected, "credit capped at the unpaid part");
    }

    /// @dev A credit never takes back what the provider was paid: a window before the payout cursor credits nothing.
    function testFuzz_CreditNeverClawsBack(uint256 withdrawAt, uint256 from, uint256 to, uint256 downSeconds) external {
        uint256 rentalId = openDefault();
        withdrawAt = bound(withdrawAt, DISPUTE_WINDOW + 1, DURATION);
        vm.warp(START_TIME + withdrawAt);
        withdrawAs(provider, rentalId);
        uint256 paidUntil = withdrawAt - DISPUTE_WINDOW;
        uint256 providerBalance = balanceOf(provider);

        from = bound(from, 0, withdrawAt - 1);
        to = bound(to, from + 1, withdrawAt);
        downSeconds = bound(downSeconds, 1, to - from);
        Downtime memory downtime = downtimeOf(rentalId, START_TIME + from, START_TIME + to, downSeconds);
        bytes[] memory entries = attest(downtime, 1);
        uint256 unpaid = to > paidUntil ? to - (from > paidUntil ? from : paidUntil) : 0;
        uint256 expected = downSeconds < unpaid ? downSeconds : unpaid;

        vm.prank(stranger);
        if (expected == 0) {
            vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToCredit.selector, rentalId));
            escrow.creditDowntime(packDowntime(downtime), packEntries(entries));
        } else {
            assertEq(escrow.creditDowntime(packDowntime(downtime), packEntries(entries)), RATE * expected, "refund");
        }
        assertEq(balanceOf(provider), providerBalance, "provider untouched");
        assertEq(escrow.getRental(rentalId).withdrawn, RATE * paidUntil, "withdrawn untouched");

        // The provider still gets every second that was not credited, and the escrow ends empty but for fees.
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawIfAny(rentalId);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.withdrawn / RATE + rental.credited, DURATION, "every second paid or credited");
        assertEq(balanceOf(address(escrow)), escrow.feesAccrued(), "only fees left");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                       REFUSE
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Whatever the renter did before (extend, stop, credits), a refusal gives back every token the renter paid
    /// for the rental, and the provider can never be paid anything for it.
    function testFuzz_Refuse_RenterMadeWhole(
        uint256 rate,
        uint256 duration,
        uint256 extra,
        uint256 stopAt,
        uint256 downSeconds,
        uint256 refuseAt,
        uint256 laterWithdrawal
    ) external {
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 2, MAX_QUOTE_DURATION / 2);
        fundAndApprove(renter, 2 * rate * MAX_QUOTE_DURATION);
        uint256 renterBefore = balanceOf(renter);
        uint256 rentalId = openWith(quoteOf(rate, MAX_QUOTE_DURATION), duration);

        // Optionally extended, then optionally stopped, then optionally credited, then refused at some later time.
        extra = bound(extra, 0, MAX_QUOTE_DURATION - duration);
        if (extra > 0) extendAs(renter, rentalId, extra);
        uint256 end = duration + extra;
        stopAt = bound(stopAt, 1, end);
        if (stopAt < end) {
            vm.warp(START_TIME + stopAt);
            stopAs(renter, rentalId);
            end = stopAt;
        }
        vm.warp(START_TIME + end);
        downSeconds = bound(downSeconds, 0, end);
        uint256 credited = downSeconds > 0 ? credit(downtimeOf(rentalId, START_TIME, START_TIME + end, downSeconds)) : 0;
        vm.warp(START_TIME + end + bound(refuseAt, 0, 2 * DISPUTE_WINDOW));

        // Credits that covered every second left nothing to refuse.
        bool refusable = downSeconds < end;
        if (refusable) {
            assertEq(refuseAs(stranger, rentalId), rate * (end - downSeconds), "refund");
        } else {
            vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToRefund.selector, rentalId));
            refuseAs(stranger, rentalId);
        }
        assertEq(credited, rate * downSeconds, "credit");
        assertEq(balanceOf(renter), renterBefore, "renter got back everything it paid");
        assertEq(balanceOf(address(escrow)), 0, "escrow holds nothing for the rental");

        vm.warp(block.timestamp + bound(laterWithdrawal, 0, 10 * MAX_QUOTE_DURATION));
        assertEq(escrow.earned(rentalId), 0, "earned");
        assertEq(escrow.withdrawable(rentalId), 0, "withdrawable");
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
        Rental memory rental = escrow.getRental(rentalId);
        if (refusable) assertTrue(rental.stopped, "stopped");
        assertEq(rental.end - rental.start, rental.credited, "shortened to its credited seconds");
        assertEq(rental.withdrawn, 0, "never paid");
    }

    /// @dev A refusal signed by any key but the provider's is refused.
    function testFuzz_RevertWhen_RefusalSignedByOtherKey(uint256 key) external {
        key = bound(key, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
        vm.assume(key != providerKey);
        uint256 rentalId = openDefault();
        bytes memory signature = signRefusal(key, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_InvalidRefusal.selector, rentalId, provider));
        vm.prank(stranger);
        escrow.refuse(rentalId, signature);
    }
}
