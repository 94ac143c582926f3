// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { GpuEscrow } from "src/GpuEscrow.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { Handler } from "./Handler.sol";

contract GpuEscrow_Invariant_Test is Base_Test {
    Handler internal handler;

    function setUp() public override {
        Base_Test.setUp();
        handler = new Handler(escrow, token, treasury);
        targetContract(address(handler));
    }

    /// @dev The escrow holds exactly the unsettled part of every rental plus the unclaimed fees: never less, which
    /// would make someone unpayable, and never more, which would strand tokens.
    function invariant_BalanceEqualsLiabilities() external view {
        uint256 liabilities = escrow.feesAccrued();
        uint256 count = escrow.nextRentalId() - 1;
        for (uint256 id = 1; id <= count; ++id) {
            Rental memory rental = escrow.getRental(id);
            liabilities += uint256(rental.ratePerSecond) * (rental.end - rental.start) - rental.withdrawn;
        }
        assertEq(token.balanceOf(address(escrow)), liabilities, "balance == liabilities");
    }

    function invariant_GhostAccounting() external view {
        assertEq(
            handler.ghostDeposited(),
            handler.ghostRefunded() + handler.ghostPaid() + handler.ghostFeesTaken() + token.balanceOf(address(escrow))
                - escrow.feesAccrued(),
            "deposits == refunds + payouts + fees + outstanding"
        );
        assertEq(handler.ghostFeesTaken(), handler.ghostFeesClaimed() + escrow.feesAccrued(), "fees");
    }

    function invariant_WithdrawnNeverExceedsEarned() external view {
        uint256 count = escrow.nextRentalId() - 1;
        for (uint256 id = 1; id <= count; ++id) {
            assertLe(escrow.getRental(id).withdrawn, escrow.earned(id), "withdrawn <= earned");
        }
    }
}
