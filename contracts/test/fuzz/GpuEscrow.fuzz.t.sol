// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { GpuEscrow } from "src/GpuEscrow.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract GpuEscrow_Fuzz_Test is Base_Test {
    uint256 internal constant MAX_RATE = 1e12; // one million mUSDC per second
    uint256 internal constant MAX_DURATION = 365 days;

    /// @dev Redeploys the escrow with a fuzzed fee and funds the renter for the largest possible deposit.
    function deployWithFee(uint256 feeBps) internal returns (uint16 bps) {
        bps = uint16(bound(feeBps, 0, 1500));
        escrow = new GpuEscrow(IERC20(address(token)), treasury, bps);
        fundAndApprove(renter, 2 * MAX_RATE * MAX_DURATION);
    }

    /// @dev Sorts in place; the arrays are tiny.
    function sort(uint256[] memory values) internal pure {
        for (uint256 i = 1; i < values.length; ++i) {
            for (uint256 j = i; j > 0 && values[j - 1] > values[j]; --j) {
                (values[j - 1], values[j]) = (values[j], values[j - 1]);
            }
        }
    }

    /// @dev Withdraws if anything is withdrawable and returns the net paid and the fee taken by that call.
    function withdrawIfAny(address caller, uint256 rentalId) internal returns (uint256 paid, uint256 fee) {
        uint256 gross = escrow.withdrawable(rentalId);
        if (gross == 0) return (0, 0);
        uint256 feesBefore = escrow.feesAccrued();
        paid = withdrawAs(caller, rentalId);
        fee = escrow.feesAccrued() - feesBefore;
        assertEq(paid + fee, gross, "paid + fee == gross");
    }

    function testFuzz_Open(uint256 rate, uint256 duration, uint256 warpBy) external {
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_DURATION);
        vm.warp(START_TIME + bound(warpBy, 0, 10 * 365 days));
        fundAndApprove(renter, rate * duration);
        uint256 renterBefore = balanceOf(renter);

        uint256 rentalId = openRental(renter, provider, rate, duration);

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.start, block.timestamp, "start");
        assertEq(rental.end, block.timestamp + duration, "end");
        assertEq(rental.ratePerSecond, rate, "rate");
        assertEq(renterBefore - balanceOf(renter), rate * duration, "deposit pulled");
        assertEq(balanceOf(address(escrow)), rate * duration, "escrow balance");
    }

    function testFuzz_Earned(uint256 rate, uint256 duration, uint256 elapsed) external {
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_DURATION);
        elapsed = bound(elapsed, 0, 2 * MAX_DURATION);
        fundAndApprove(renter, rate * duration);
        uint256 rentalId = openRental(renter, provider, rate, duration);

        vm.warp(START_TIME + elapsed);

        uint256 expected = rate * (elapsed < duration ? elapsed : duration);
        assertEq(escrow.earned(rentalId), expected, "earned");
        assertEq(escrow.withdrawable(rentalId), expected, "withdrawable");
    }

    function testFuzz_Stop_Refund(uint256 rate, uint256 duration, uint256 elapsed) external {
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_DURATION);
        elapsed = bound(elapsed, 0, duration - 1);
        fundAndApprove(renter, rate * duration);
        uint256 rentalId = openRental(renter, provider, rate, duration);
        uint256 renterBefore = balanceOf(renter);

        vm.warp(START_TIME + elapsed);
        uint256 refund = stopAs(renter, rentalId);

        assertEq(refund, rate * (duration - elapsed), "refund");
        assertEq(balanceOf(renter) - renterBefore, refund, "renter received refund");
        assertEq(escrow.earned(rentalId), rate * elapsed, "earned frozen at stop");
        assertEq(balanceOf(address(escrow)), rate * elapsed, "escrow keeps what streamed");
    }

    /// @dev Running totals for one provider, kept in memory to stay clear of stack limits.
    struct Tally {
        uint256 paid;
        uint256 fee;
    }

    function withdrawInto(Tally memory tally, address caller, uint256 rentalId) internal {
        (uint256 paid, uint256 fee) = withdrawIfAny(caller, rentalId);
        tally.paid += paid;
        tally.fee += fee;
    }

    /// @dev Two identical rentals: one provider withdraws at arbitrary times, the other once at the end. Both must
    /// be paid the same and both rentals must yield the same total fee, equal to the fee on total earnings.
    function testFuzz_Withdraw_FeeIndependentOfSplit(
        uint256 feeBps,
        uint256 rate,
        uint256 duration,
        uint256[6] memory checkpoints,
        uint256 finalOffset
    ) external {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_DURATION);
        address splitter = makeAddr("splitter");
        address lumper = makeAddr("lumper");
        uint256 splitId = openRental(renter, splitter, rate, duration);
        uint256 lumpId = openRental(renter, lumper, rate, duration);

        uint256[] memory times = new uint256[](checkpoints.length);
        for (uint256 i = 0; i < checkpoints.length; ++i) {
            times[i] = bound(checkpoints[i], 0, duration + 1 days);
        }
        sort(times);

        Tally memory split;
        for (uint256 i = 0; i < times.length; ++i) {
            vm.warp(START_TIME + times[i]);
            withdrawInto(split, splitter, splitId);
        }
        vm.warp(START_TIME + times[times.length - 1] + bound(finalOffset, 0, duration));
        withdrawInto(split, splitter, splitId);
        Tally memory lump;
        withdrawInto(lump, lumper, lumpId);

        assertEq(escrow.earned(lumpId), escrow.earned(splitId), "same earnings");
        assertEq(split.fee, lump.fee, "same fee");
        assertEq(split.paid, lump.paid, "same payout");
        assertEq(split.fee, feeOf(escrow.earned(splitId), bps), "fee equals fee on total earnings");
        assertEq(balanceOf(splitter), split.paid, "splitter balance");
        assertEq(balanceOf(lumper), lump.paid, "lumper balance");
        assertEq(escrow.feesAccrued(), split.fee + lump.fee, "feesAccrued");
    }

    /// @dev Stopping and then withdrawing everything splits the deposit exactly three ways, with nothing left behind.
    function testFuzz_StopThenWithdraw_ConservesDeposit(
        uint256 feeBps,
        uint256 rate,
        uint256 duration,
        uint256 withdrawAt,
        uint256 stopAt,
        uint256 finalAt
    ) external {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 1, MAX_DURATION);
        stopAt = bound(stopAt, 0, duration - 1);
        withdrawAt = bound(withdrawAt, 0, stopAt);
        finalAt = bound(finalAt, stopAt, 2 * MAX_DURATION);
        uint256 renterBefore = balanceOf(renter);

        uint256 rentalId = openRental(renter, provider, rate, duration);
        Tally memory tally;
        vm.warp(START_TIME + withdrawAt);
        withdrawInto(tally, provider, rentalId);
        vm.warp(START_TIME + stopAt);
        uint256 refund = stopAs(renter, rentalId);
        vm.warp(START_TIME + finalAt);
        withdrawInto(tally, provider, rentalId);

        assertEq(refund + tally.paid + tally.fee, rate * duration, "refund + net + fee == deposit");
        assertEq(tally.paid + tally.fee, rate * stopAt, "provider side == streamed");
        assertEq(tally.fee, feeOf(rate * stopAt, bps), "fee on streamed");
        assertEq(renterBefore - balanceOf(renter), rate * duration - refund, "renter net cost");
        assertEq(balanceOf(provider), tally.paid, "provider balance");

        if (tally.fee > 0) {
            vm.prank(treasury);
            assertEq(escrow.claimFees(), tally.fee, "claimed");
        }
        assertEq(balanceOf(address(escrow)), 0, "escrow emptied");
    }

    /// @dev A single withdrawal never takes more than the fee rate of what it settles, plus one unit of rounding.
    function testFuzz_Withdraw_FeeBounded(uint256 feeBps, uint256 rate, uint256 duration, uint256 t1, uint256 t2)
        external
    {
        uint16 bps = deployWithFee(feeBps);
        rate = bound(rate, 1, MAX_RATE);
        duration = bound(duration, 2, MAX_DURATION);
        t1 = bound(t1, 1, duration - 1);
        t2 = bound(t2, t1 + 1, duration);
        uint256 rentalId = openRental(renter, provider, rate, duration);

        vm.warp(START_TIME + t1);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + t2);
        uint256 gross = escrow.withdrawable(rentalId);
        (uint256 paid, uint256 fee) = withdrawIfAny(provider, rentalId);

        assertLe(fee, gross * bps / 10_000 + 1, "fee within rate plus rounding");
        assertGe(paid, gross - gross * bps / 10_000 - 1, "payout within rate plus rounding");
    }
}
