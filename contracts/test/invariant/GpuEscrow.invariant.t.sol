// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { console2 } from "forge-std/console2.sol";

import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { EscrowHandler } from "./handlers/EscrowHandler.sol";

/// @notice The invariants listed in `README.md` next to this file, checked after every call of random sequences driven
/// by {EscrowHandler}.
/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 128
contract GpuEscrow_Invariant_Test is Base_Test {
    EscrowHandler internal handler;

    function setUp() public override {
        Base_Test.setUp();
        handler = new EscrowHandler(escrow, token, owner, treasury, attesterKeys[0]);
        vm.label(address(handler), "EscrowHandler");
        targetContract(address(handler));
    }

    /// @dev 1. Token conservation: the escrow holds exactly what came in minus what went out.
    function invariant_TokenConservation() external view {
        assertEq(
            balanceOf(address(escrow)),
            handler.ghostDeposited() - handler.ghostStopRefunded() - handler.ghostCreditRefunded()
                - handler.ghostRefusalRefunded() - handler.ghostPaid() - handler.ghostFeesClaimed(),
            "balance == deposits - refunds - credits - refusals - payouts - fees claimed"
        );
    }

    /// @dev 2. Solvency, exactly: the balance equals what is still owed on every rental plus the unclaimed fees.
    function invariant_BalanceEqualsLiabilities() external view {
        uint256 liabilities = escrow.feesAccrued();
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            Rental memory rental = escrow.getRental(id);
            uint256 owedSeconds = uint256(rental.end - rental.start) - rental.credited;
            liabilities += rental.ratePerSecond * owedSeconds - rental.withdrawn;
        }
        assertEq(balanceOf(address(escrow)), liabilities, "balance == liabilities");
    }

    /// @dev 3. Fees: every fee taken is either still accrued or was claimed by the treasury.
    function invariant_FeesAccounting() external view {
        assertEq(handler.ghostFeesTaken(), handler.ghostFeesClaimed() + escrow.feesAccrued(), "fees");
    }

    /// @dev 4. Per-rental bounds.
    function invariant_RentalBounds() external view {
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            Rental memory rental = escrow.getRental(id);
            assertLe(rental.start, rental.end, "start <= end");
            assertLe(rental.end, rental.maxEnd, "end <= maxEnd");
            assertLe(rental.feeBps, escrow.MAX_FEE_BPS(), "feeBps <= max");
            assertGt(rental.ratePerSecond, 0, "rate > 0");
            assertEq(rental.withdrawn % rental.ratePerSecond, 0, "paid in whole seconds");
            uint256 settled = rental.withdrawn / rental.ratePerSecond + rental.credited;
            assertLe(settled, rental.end - rental.start, "paid + credited <= duration");
            // Nothing is settled beyond the present: paid seconds are older than the dispute window, credited ones
            // lie in ended windows.
            assertLe(rental.start + settled, block.timestamp, "settled up to now at most");
            assertLe(rental.withdrawn, escrow.earned(id), "withdrawn <= earned");
            if (rental.creditedUntil != 0) {
                assertGt(rental.creditedUntil, rental.start, "credited window after start");
                // A refusal moves the end back to `start + credited`, before the last credited window's end.
                uint256 end = handler.ghostRefused(id) ? handler.ghostEndBeforeRefusalOf(id) : rental.end;
                assertLe(rental.creditedUntil, end, "credited window before end");
                assertLe(rental.credited, rental.creditedUntil - rental.start, "credits fit before the last window end");
            } else {
                assertEq(rental.credited, 0, "no window, no credit");
            }
        }
    }

    /// @dev 5. Fee invariance: the fees taken on a rental equal the fee on its total payout, however it was split.
    function invariant_FeeIndependentOfWithdrawalSchedule() external view {
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            Rental memory rental = escrow.getRental(id);
            assertEq(handler.ghostFeeOf(id), feeOf(rental.withdrawn, rental.feeBps), "fee == fee(total gross)");
        }
    }

    /// @dev 6. Ids are sequential, one per successful open, and each rental pays the provider that signed its quote.
    function invariant_RentalsRecorded() external view {
        assertEq(escrow.nextRentalId(), handler.ghostOpens() + 1, "nextRentalId");
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            assertEq(escrow.getRental(id).provider, handler.ghostProviderOf(id), "provider");
        }
    }

    /// @dev 12. A refused rental pays the provider nothing, now or ever, holds nothing in escrow, and gave the renter
    /// back everything it paid into it.
    function invariant_RefusedRentalPaysProviderNothing() external view {
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            if (!handler.ghostRefused(id)) continue;
            Rental memory rental = escrow.getRental(id);
            assertTrue(rental.stopped, "refused rental stopped");
            assertEq(rental.withdrawn, 0, "refused rental never paid");
            assertEq(handler.ghostPaidSecondsOf(id), 0, "no payout log for a refused rental");
            assertEq(escrow.earned(id), 0, "refused rental earns nothing");
            assertEq(escrow.withdrawable(id), 0, "refused rental has nothing withdrawable");
            assertEq(rental.end - rental.start, rental.credited, "nothing held for a refused rental");
            assertEq(handler.ghostReturnedOf(id), handler.ghostPaidInOf(id), "renter got back everything it paid");
        }
    }

    /// @dev 13. Automatic extension within its cap: for every rental, what `autoExtend` took since the renter last set
    /// the budget is at most that budget, and the escrow reports exactly the difference as left, with the step set.
    function invariant_AutoExtendWithinCap() external view {
        uint256 count = handler.rentalCount();
        for (uint256 id = 1; id <= count; ++id) {
            uint256 cap = handler.ghostAutoCapOf(id);
            uint256 taken = handler.ghostAutoTakenOf(id);
            assertLe(taken, cap, "taken since set <= cap set");
            (uint256 budget, uint256 step) = escrow.autoExtension(id);
            assertEq(budget, cap - taken, "budget left == cap - taken");
            assertEq(step, handler.ghostAutoStepOf(id), "step");
        }
    }

    /// @dev 14. Renters never pay automatic extensions more than the budgets they set, all together.
    function invariant_AutoExtendPulledWithinCaps() external view {
        assertLe(handler.ghostAutoPulled(), handler.ghostAutoCapsSet(), "pulled by autoExtend <= caps ever set");
    }

    /// @dev 7-10. No illegal transition, access-control breach, failed stop, quote replay or attestation replay or
    /// overlap was ever observed by the handler.
    function invariant_NoViolation() external view {
        assertEq(handler.violation(), "", "violation");
    }

    /// @dev Shows, with `-vv`, how much of each run got past the handler's guards.
    function afterInvariant() external view {
        string[24] memory outcomes = [
            "open",
            "openWithPermit",
            "extend",
            "extendWithPermit",
            "extendWithPermit front-run",
            "setAutoExtend",
            "setAutoExtend off",
            "autoExtend",
            "autoExtend clipped",
            "stop",
            "stop while paused",
            "stop with provider blocklisted",
            "withdraw",
            "withdrawMany",
            "withdrawTo",
            "withdrawTo with provider blocklisted",
            "creditDowntime",
            "creditDowntime clipped",
            "refuse",
            "refuse after credit",
            "refuse after stop",
            "refuse while paused",
            "claimFees",
            "rentals"
        ];
        for (uint256 i = 0; i < outcomes.length - 1; ++i) {
            console2.log(outcomes[i], handler.effective(outcomes[i]));
        }
        console2.log("rentals", handler.rentalCount());
    }
}
