// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { GpuEscrow } from "src/GpuEscrow.sol";
import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";

import { Base_Test } from "../Base.t.sol";

contract Withdraw_Unit_Test is Base_Test {
    uint256 internal rentalId;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      REVERTS
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_RentalNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        withdrawAs(provider, 2);
    }

    function test_RevertWhen_CallerRenter() external {
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, renter));
        withdrawAs(renter, rentalId);
    }

    function test_RevertWhen_CallerStranger() external {
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, stranger));
        withdrawAs(stranger, rentalId);
    }

    function test_RevertWhen_CallerTreasury() external {
        vm.warp(START_TIME + 100);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, treasury));
        withdrawAs(treasury, rentalId);
    }

    function test_RevertWhen_NothingStreamedYet() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_AlreadyWithdrawnThisSecond() external {
        vm.warp(START_TIME + 100);
        withdrawAs(provider, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_FullyWithdrawnAfterEnd() external {
        vm.warp(START_TIME + DURATION);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + DURATION + 1 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_FullyWithdrawnAfterStop() external {
        vm.warp(START_TIME + 500);
        stopAs(renter, rentalId);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + 1000);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Withdraw_MidRental() external {
        uint256 elapsed = 1234;
        uint256 gross = RATE * elapsed; // 1_234_000
        uint256 fee = 30_850; // 2.5% of 1_234_000
        vm.warp(START_TIME + elapsed);

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.EarningsWithdrawn({ rentalId: rentalId, provider: provider, amount: gross - fee, fee: fee });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (provider, gross - fee)));

        uint256 paid = withdrawAs(provider, rentalId);

        assertEq(paid, gross - fee, "paid");
        assertEq(balanceOf(provider), gross - fee, "provider balance");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
        assertEq(balanceOf(address(escrow)), DEPOSIT - gross + fee, "escrow balance");
        assertEq(escrow.getRental(rentalId).withdrawn, gross, "withdrawn");
        assertEq(escrow.withdrawable(rentalId), 0, "withdrawable");
    }

    function test_Withdraw_AfterEnd_CappedAtDeposit() external {
        vm.warp(START_TIME + DURATION + 7 days);
        uint256 fee = feeOf(DEPOSIT, FEE_BPS);

        uint256 paid = withdrawAs(provider, rentalId);

        assertEq(paid, DEPOSIT - fee, "paid");
        assertEq(fee, 90_000, "fee");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
        assertEq(balanceOf(address(escrow)), fee, "escrow balance");
        assertEq(escrow.getRental(rentalId).withdrawn, DEPOSIT, "withdrawn");
    }

    function test_Withdraw_Repeatedly_SumsToSingleWithdrawal() external {
        uint256 total;
        for (uint256 t = 700; t <= DURATION; t += 700) {
            vm.warp(START_TIME + t);
            total += withdrawAs(provider, rentalId);
        }
        vm.warp(START_TIME + DURATION);
        total += withdrawAs(provider, rentalId);

        uint256 fee = feeOf(DEPOSIT, FEE_BPS);
        assertEq(total, DEPOSIT - fee, "total paid");
        assertEq(balanceOf(provider), DEPOSIT - fee, "provider balance");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
    }

    /// @dev With 1 unit per second and 2.5%, a fee on each withdrawn amount would round to zero every time; the
    /// cumulative formula still charges it once enough has streamed.
    function test_Withdraw_FeeRoundingDoesNotLeak() external {
        uint256 smallId = openRental(renter, provider, 1, 80);

        vm.warp(START_TIME + 39);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.EarningsWithdrawn({ rentalId: smallId, provider: provider, amount: 39, fee: 0 });
        assertEq(withdrawAs(provider, smallId), 39, "first paid");

        vm.warp(START_TIME + 80);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.EarningsWithdrawn({ rentalId: smallId, provider: provider, amount: 39, fee: 2 });
        assertEq(withdrawAs(provider, smallId), 39, "second paid");

        assertEq(escrow.feesAccrued(), feeOf(80, FEE_BPS), "feesAccrued");
        assertEq(escrow.feesAccrued(), 2, "feesAccrued literal");
    }

    function test_Withdraw_ZeroFee() external {
        GpuEscrow free = new GpuEscrow(IERC20(address(token)), treasury, 0);
        vm.prank(renter);
        token.approve(address(free), DEPOSIT);
        vm.prank(renter);
        uint256 id = free.open(provider, RATE, DURATION);

        vm.warp(START_TIME + 100);
        vm.prank(provider);
        uint256 paid = free.withdraw(id);

        assertEq(paid, RATE * 100, "paid");
        assertEq(free.feesAccrued(), 0, "feesAccrued");
    }

    function test_Withdraw_MaxFee() external {
        GpuEscrow greedy = new GpuEscrow(IERC20(address(token)), treasury, 1500);
        vm.prank(renter);
        token.approve(address(greedy), DEPOSIT);
        vm.prank(renter);
        uint256 id = greedy.open(provider, RATE, DURATION);

        vm.warp(START_TIME + DURATION);
        vm.prank(provider);
        uint256 paid = greedy.withdraw(id);

        assertEq(paid, DEPOSIT * 85 / 100, "paid");
        assertEq(greedy.feesAccrued(), DEPOSIT * 15 / 100, "feesAccrued");
    }

    function test_Withdraw_IsolatedPerRental() external {
        address otherProvider = makeAddr("otherProvider");
        uint256 otherId = openRental(renter, otherProvider, RATE * 3, DURATION);
        vm.warp(START_TIME + 100);

        withdrawAs(provider, rentalId);

        assertEq(escrow.withdrawable(otherId), RATE * 300, "other withdrawable");
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, otherId, provider));
        withdrawAs(provider, otherId);
        uint256 otherPaid = withdrawAs(otherProvider, otherId);
        assertEq(otherPaid, RATE * 300 - feeOf(RATE * 300, FEE_BPS), "other paid");
    }
}
