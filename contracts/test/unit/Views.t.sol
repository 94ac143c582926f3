// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Errors } from "src/libraries/Errors.sol";
import { Downtime, Quote, Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract Views_Unit_Test is Base_Test {
    /*//////////////////////////////////////////////////////////////////////////
                                      EIP-712
    //////////////////////////////////////////////////////////////////////////*/

    function test_HashQuote_MatchesEIP712() external {
        Quote memory quote = defaultQuote();
        assertEq(escrow.hashQuote(quote), quoteDigest(quote, address(escrow), block.chainid), "digest");
    }

    function test_HashQuote_TypeString() external pure {
        assertEq(
            QUOTE_TYPEHASH,
            keccak256(
                bytes(
                    "Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40 deadline,"
                    "bytes32 offerId,uint256 nonce)"
                )
            ),
            "type hash"
        );
    }

    function test_HashQuote_FollowsChainId() external {
        Quote memory quote = defaultQuote();
        bytes32 before = escrow.hashQuote(quote);
        vm.chainId(block.chainid + 7);
        assertEq(escrow.hashQuote(quote), quoteDigest(quote, address(escrow), block.chainid), "digest");
        assertNotEq(escrow.hashQuote(quote), before, "changed");
    }

    function test_HashDowntime_MatchesEIP712() external view {
        Downtime memory downtime = downtimeOf(7, START_TIME, START_TIME + 60, 30);
        assertEq(escrow.hashDowntime(downtime), downtimeDigest(downtime, address(escrow), block.chainid), "digest");
    }

    function test_Eip712Domain() external view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = escrow.eip712Domain();
        assertEq(fields, hex"0f", "fields");
        assertEq(name, "GpuEscrow", "name");
        assertEq(version, "1", "version");
        assertEq(chainId, block.chainid, "chainId");
        assertEq(verifyingContract, address(escrow), "verifyingContract");
        assertEq(salt, bytes32(0), "salt");
        assertEq(extensions.length, 0, "extensions");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      RENTALS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_GetRentalNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 0));
        escrow.getRental(0);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.getRental(1);
    }

    function test_RevertWhen_EarnedNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.earned(1);
    }

    function test_RevertWhen_WithdrawableNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 1));
        escrow.withdrawable(1);
    }

    function test_Earned_OverTime() external {
        uint256 rentalId = openDefault();
        assertEq(escrow.earned(rentalId), 0, "at start");
        vm.warp(START_TIME + 100);
        assertEq(escrow.earned(rentalId), RATE * 100, "after 100 s");
        vm.warp(START_TIME + DURATION);
        assertEq(escrow.earned(rentalId), DEPOSIT, "at end");
        vm.warp(START_TIME + DURATION + 365 days);
        assertEq(escrow.earned(rentalId), DEPOSIT, "capped at end");
    }

    function test_Withdrawable_LagsByDisputeWindow() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + DISPUTE_WINDOW);
        assertEq(escrow.withdrawable(rentalId), 0, "inside window");
        vm.warp(START_TIME + DISPUTE_WINDOW + 100);
        assertEq(escrow.withdrawable(rentalId), RATE * 100, "100 s past the window");
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        assertEq(escrow.withdrawable(rentalId), DEPOSIT, "everything");
    }

    function test_Withdrawable_ZeroDisputeWindow() external {
        escrow = deployEscrow(FEE_BPS, 0);
        fundAndApprove(renter, DEPOSIT);
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 100);
        assertEq(escrow.withdrawable(rentalId), RATE * 100, "withdrawable");
    }

    function test_Withdrawable_EarlyChainTime() external {
        // On a fresh devnet, block time can be smaller than the dispute window.
        vm.warp(100);
        uint256 rentalId = openDefault();
        vm.warp(200);
        assertEq(escrow.withdrawable(rentalId), 0, "withdrawable");
    }

    function test_CreditedSecondsExcluded() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME, START_TIME + 1 hours, 1 hours));
        assertEq(escrow.earned(rentalId), RATE * 1 hours, "earned");
        assertEq(escrow.withdrawable(rentalId), 0, "withdrawable");
        vm.warp(START_TIME + 3 hours);
        assertEq(escrow.withdrawable(rentalId), RATE * 1 hours, "withdrawable later");
    }

    function test_GetRental_WithdrawnIsGross() external {
        uint256 rentalId = openDefault();
        vm.warp(START_TIME + 3 hours);
        withdrawAs(provider, rentalId);
        assertEq(escrow.getRental(rentalId).withdrawn, RATE * 2 hours, "withdrawn");
    }
}
