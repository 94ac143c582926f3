// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Test } from "forge-std/Test.sol";

import { GpuEscrow } from "src/GpuEscrow.sol";
import { MockUSDC } from "src/MockUSDC.sol";
import { Rental } from "src/types/DataTypes.sol";

/// @notice Drives the escrow through random, valid sequences of opens, stops, withdrawals, fee claims and time.
contract Handler is Test {
    GpuEscrow internal immutable escrow;
    MockUSDC internal immutable token;
    address internal immutable treasury;

    address[] internal actors;

    /// @dev Ghost accounting of every token movement in and out of the escrow.
    uint256 public ghostDeposited;
    uint256 public ghostRefunded;
    uint256 public ghostPaid;
    uint256 public ghostFeesTaken;
    uint256 public ghostFeesClaimed;

    constructor(GpuEscrow escrow_, MockUSDC token_, address treasury_) {
        escrow = escrow_;
        token = token_;
        treasury = treasury_;
        for (uint256 i = 0; i < 4; ++i) {
            address actor = makeAddr(string.concat("actor", vm.toString(i)));
            actors.push(actor);
            token.mint(actor, 1e24);
            vm.prank(actor);
            token.approve(address(escrow), type(uint256).max);
        }
    }

    function rentalCount() public view returns (uint256) {
        return escrow.nextRentalId() - 1;
    }

    function open(uint256 renterSeed, uint256 providerSeed, uint256 rate, uint256 duration) external {
        uint256 renterIndex = renterSeed % actors.length;
        // Any actor but the renter, since the escrow rejects self-rentals.
        uint256 providerIndex = (renterIndex + 1 + providerSeed % (actors.length - 1)) % actors.length;
        address renter = actors[renterIndex];
        address provider = actors[providerIndex];
        rate = bound(rate, 1, 1e9);
        duration = bound(duration, 1, 30 days);
        vm.prank(renter);
        escrow.open(provider, rate, duration);
        ghostDeposited += rate * duration;
    }

    function stop(uint256 idSeed) external {
        if (rentalCount() == 0) return;
        uint256 rentalId = idSeed % rentalCount() + 1;
        Rental memory rental = escrow.getRental(rentalId);
        if (rental.stopped || block.timestamp >= rental.end) return;
        vm.prank(rental.renter);
        ghostRefunded += escrow.stop(rentalId);
    }

    function withdraw(uint256 idSeed) external {
        if (rentalCount() == 0) return;
        uint256 rentalId = idSeed % rentalCount() + 1;
        if (escrow.withdrawable(rentalId) == 0) return;
        uint256 feesBefore = escrow.feesAccrued();
        vm.prank(escrow.getRental(rentalId).provider);
        ghostPaid += escrow.withdraw(rentalId);
        ghostFeesTaken += escrow.feesAccrued() - feesBefore;
    }

    function claimFees() external {
        if (escrow.feesAccrued() == 0) return;
        vm.prank(treasury);
        ghostFeesClaimed += escrow.claimFees();
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 7 days));
    }
}
