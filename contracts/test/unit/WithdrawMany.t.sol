// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";

contract WithdrawMany_Unit_Test is Base_Test {
    uint256[] internal ids;

    function setUp() public override {
        Base_Test.setUp();
        // Rental i opens 10 minutes after rental i - 1.
        for (uint256 i = 0; i < 5; ++i) {
            vm.warp(START_TIME + i * 10 minutes);
            ids.push(openDefault());
        }
    }

    function withdrawManyAs(address caller, uint256[] memory rentalIds) internal returns (uint256 paid) {
        vm.prank(caller);
        paid = escrow.withdrawMany(rentalIds);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_Empty() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_BatchNothingToWithdraw.selector, 0));
        withdrawManyAs(provider, new uint256[](0));
    }

    function test_RevertWhen_NothingWithdrawableAnywhere() external {
        // The newest rentals are all still inside the dispute window.
        vm.warp(START_TIME + DISPUTE_WINDOW);
        uint256[] memory batch = new uint256[](1);
        batch[0] = ids[0];
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_BatchNothingToWithdraw.selector, 1));
        withdrawManyAs(provider, batch);
    }

    function test_RevertWhen_OneRentalNotFound() external {
        vm.warp(START_TIME + 3 hours);
        uint256[] memory batch = new uint256[](2);
        batch[0] = ids[0];
        batch[1] = 99;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 99));
        withdrawManyAs(provider, batch);
    }

    function test_RevertWhen_OneRentalOfOtherProvider() external {
        (address other, uint256 otherKey) = makeAddrAndKey("other provider");
        Quote memory quote = defaultQuote();
        quote.provider = other;
        bytes memory signature = signQuote(otherKey, quote);
        vm.prank(renter);
        uint256 otherRental = escrow.open(quote, DURATION, signature);

        vm.warp(START_TIME + 3 hours);
        uint256[] memory batch = new uint256[](2);
        batch[0] = ids[0];
        batch[1] = otherRental;
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, otherRental, provider));
        withdrawManyAs(provider, batch);
    }

    function test_RevertWhen_CallerNotProvider() external {
        vm.warp(START_TIME + 3 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, ids[0], stranger));
        withdrawManyAs(stranger, ids);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_WithdrawMany() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        uint256 expectedPaid;
        uint256 expectedFee;
        uint256[] memory grosses = new uint256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            grosses[i] = escrow.withdrawable(ids[i]);
            expectedFee += feeOf(grosses[i], FEE_BPS);
            expectedPaid += grosses[i] - feeOf(grosses[i], FEE_BPS);
        }
        for (uint256 i = 0; i < 5; ++i) {
            vm.expectEmit({ emitter: address(escrow) });
            emit IGpuEscrow.EarningsWithdrawn({
                rentalId: ids[i],
                provider: provider,
                amount: grosses[i] - feeOf(grosses[i], FEE_BPS),
                fee: feeOf(grosses[i], FEE_BPS)
            });
        }
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (provider, expectedPaid)), 1);

        uint256 paid = withdrawManyAs(provider, ids);

        assertEq(paid, expectedPaid, "paid");
        assertEq(balanceOf(provider), expectedPaid, "provider balance");
        assertEq(escrow.feesAccrued(), expectedFee, "feesAccrued");
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(escrow.withdrawable(ids[i]), 0, "withdrawable after");
        }
    }

    function test_WithdrawMany_SameAsSingleWithdrawals() external {
        vm.warp(START_TIME + 4 hours);
        uint256 snapshot = vm.snapshotState();
        uint256 single;
        for (uint256 i = 0; i < 5; ++i) {
            if (escrow.withdrawable(ids[i]) > 0) {
                single += withdrawAs(provider, ids[i]);
            }
        }
        uint256 singleFees = escrow.feesAccrued();
        vm.revertToState(snapshot);

        assertEq(withdrawManyAs(provider, ids), single, "paid");
        assertEq(escrow.feesAccrued(), singleFees, "fees");
    }

    function test_WithdrawMany_SkipsEmptyRentals() external {
        // The two rentals opened 30 and 40 minutes after the first are still entirely inside the dispute window.
        vm.warp(START_TIME + DISPUTE_WINDOW + 30 minutes);
        assertEq(escrow.withdrawable(ids[3]), 0, "fourth rental empty");
        assertEq(escrow.withdrawable(ids[4]), 0, "last rental empty");
        assertGt(escrow.withdrawable(ids[0]), 0, "first rental payable");
        uint256 paid = withdrawManyAs(provider, ids);
        uint256 gross = RATE * 30 minutes + RATE * 20 minutes + RATE * 10 minutes;
        assertEq(
            paid,
            gross - feeOf(RATE * 30 minutes, FEE_BPS) - feeOf(RATE * 20 minutes, FEE_BPS)
                - feeOf(RATE * 10 minutes, FEE_BPS),
            "paid"
        );
    }

    function test_WithdrawMany_DuplicateIdsPaidOnce() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        uint256[] memory batch = new uint256[](3);
        batch[0] = ids[0];
        batch[1] = ids[0];
        batch[2] = ids[0];
        uint256 paid = withdrawManyAs(provider, batch);
        assertEq(paid, DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "paid once");
    }
}
