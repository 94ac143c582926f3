// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";

import { Base_Test } from "../Base.t.sol";
import { BlocklistUSDC } from "../mocks/BlocklistUSDC.sol";

contract WithdrawTo_Unit_Test is Base_Test {
    uint256[] internal ids;
    address internal recipient;

    function setUp() public override {
        Base_Test.setUp();
        recipient = makeAddr("recipient");
        // Rental i opens 10 minutes after rental i - 1.
        for (uint256 i = 0; i < 3; ++i) {
            vm.warp(START_TIME + i * 10 minutes);
            ids.push(openDefault());
        }
    }

    function withdrawToAs(address caller, uint256[] memory rentalIds, address to) internal returns (uint256 paid) {
        vm.prank(caller);
        paid = escrow.withdrawTo(rentalIds, to);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_RecipientZeroAddress() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        vm.expectRevert(Errors.GpuEscrow_RecipientZeroAddress.selector);
        withdrawToAs(provider, ids, address(0));
    }

    function test_RevertWhen_CallerNotProvider() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, ids[0], stranger));
        withdrawToAs(stranger, ids, stranger);
    }

    function test_RevertWhen_NothingWithdrawable() external {
        vm.warp(START_TIME + DISPUTE_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_BatchNothingToWithdraw.selector, 3));
        withdrawToAs(provider, ids, recipient);
    }

    function test_RevertWhen_RecipientBlocklisted() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        token.setBlocklisted(recipient, true);
        vm.expectRevert(abi.encodeWithSelector(BlocklistUSDC.Blocklisted.selector, recipient));
        withdrawToAs(provider, ids, recipient);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_WithdrawTo() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        uint256 expectedPaid;
        uint256 expectedFee;
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 gross = escrow.withdrawable(ids[i]);
            vm.expectEmit({ emitter: address(escrow) });
            emit IGpuEscrow.EarningsWithdrawn({
                rentalId: ids[i], provider: provider, amount: gross - feeOf(gross, FEE_BPS), fee: feeOf(gross, FEE_BPS)
            });
            expectedFee += feeOf(gross, FEE_BPS);
            expectedPaid += gross - feeOf(gross, FEE_BPS);
        }
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.EarningsSentTo({ provider: provider, recipient: recipient, amount: expectedPaid });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (recipient, expectedPaid)), 1);

        uint256 paid = withdrawToAs(provider, ids, recipient);

        assertEq(paid, expectedPaid, "paid");
        assertEq(balanceOf(recipient), expectedPaid, "recipient balance");
        assertEq(balanceOf(provider), 0, "provider balance");
        assertEq(escrow.feesAccrued(), expectedFee, "feesAccrued");
        for (uint256 i = 0; i < ids.length; ++i) {
            assertEq(escrow.withdrawable(ids[i]), 0, "withdrawable after");
        }
    }

    function test_WithdrawTo_ProviderBlocklisted() external {
        // The token refuses every transfer to the provider, so only withdrawTo can get its earnings out.
        vm.warp(START_TIME + DURATION + 2 hours);
        token.setBlocklisted(provider, true);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(BlocklistUSDC.Blocklisted.selector, provider));
        escrow.withdrawMany(ids);

        uint256 paid = withdrawToAs(provider, ids, recipient);
        assertEq(paid, 3 * (DEPOSIT - feeOf(DEPOSIT, FEE_BPS)), "paid");
        assertEq(balanceOf(recipient), paid, "recipient balance");
    }

    function test_WithdrawTo_SameAsWithdrawMany() external {
        vm.warp(START_TIME + 4 hours);
        uint256 snapshot = vm.snapshotState();
        vm.prank(provider);
        uint256 many = escrow.withdrawMany(ids);
        uint256 manyFees = escrow.feesAccrued();
        vm.revertToState(snapshot);

        assertEq(withdrawToAs(provider, ids, recipient), many, "paid");
        assertEq(escrow.feesAccrued(), manyFees, "fees");
        for (uint256 i = 0; i < ids.length; ++i) {
            assertEq(escrow.withdrawable(ids[i]), 0, "withdrawable after");
        }
    }

    function test_WithdrawTo_Self() external {
        vm.warp(START_TIME + DURATION + 2 hours);
        uint256 paid = withdrawToAs(provider, ids, provider);
        assertEq(balanceOf(provider), paid, "provider balance");
    }
}
