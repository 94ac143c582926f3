// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { MockERC1271Wallet } from "../mocks/MockERC1271Wallet.sol";

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
        vm.warp(START_TIME + 2 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, renter));
        withdrawAs(renter, rentalId);
    }

    function test_RevertWhen_CallerStranger() external {
        vm.warp(START_TIME + 2 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, stranger));
        withdrawAs(stranger, rentalId);
    }

    function test_RevertWhen_CallerTreasury() external {
        vm.warp(START_TIME + 2 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, treasury));
        withdrawAs(treasury, rentalId);
    }

    function test_RevertWhen_CallerOtherProvider() external {
        // The other provider has an id of its own, which must not match this rental's.
        (address other, uint256 otherKey) = makeAddrAndKey("other provider");
        Quote memory quote = defaultQuote();
        quote.provider = other;
        bytes memory signature = signQuote(otherKey, quote);
        vm.prank(renter);
        escrow.open(quote, DURATION, signature);

        vm.warp(START_TIME + 2 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, rentalId, other));
        withdrawAs(other, rentalId);
    }

    function test_RevertWhen_NothingEarnedYet() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_InsideDisputeWindow() external {
        vm.warp(START_TIME + DISPUTE_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_AlreadyWithdrawnThisSecond() external {
        vm.warp(START_TIME + 2 hours);
        withdrawAs(provider, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_FullyWithdrawnAfterEnd() external {
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + DURATION + 30 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    function test_RevertWhen_EverythingCredited() external {
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME, START_TIME + 2 hours, 2 hours));
        vm.warp(START_TIME + 3 hours);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_NothingToWithdraw.selector, rentalId));
        withdrawAs(provider, rentalId);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      SUCCESS
    //////////////////////////////////////////////////////////////////////////*/

    function test_Withdraw_OnlySecondsOlderThanDisputeWindow() external {
        uint256 elapsed = 2 hours + 1234;
        uint256 gross = RATE * (elapsed - DISPUTE_WINDOW); // 4_834_000
        uint256 fee = 120_850; // 2.5 % of 4_834_000
        vm.warp(START_TIME + elapsed);
        assertEq(escrow.withdrawable(rentalId), gross, "withdrawable");

        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.EarningsWithdrawn({ rentalId: rentalId, provider: provider, amount: gross - fee, fee: fee });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transfer, (provider, gross - fee)));

        uint256 paid = withdrawAs(provider, rentalId);

        assertEq(paid, gross - fee, "paid");
        assertEq(balanceOf(provider), gross - fee, "provider balance");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
        assertEq(balanceOf(address(escrow)), DEPOSIT - gross + fee, "escrow balance");
        assertEq(escrow.getRental(rentalId).withdrawn, gross, "withdrawn");
        assertEq(escrow.withdrawable(rentalId), 0, "withdrawable after");
    }

    function test_Withdraw_FirstSecondAfterWindow() external {
        vm.warp(START_TIME + DISPUTE_WINDOW + 1);
        uint256 paid = withdrawAs(provider, rentalId);
        assertEq(paid, RATE - feeOf(RATE, FEE_BPS), "paid");
    }

    function test_Withdraw_AfterEnd_CappedAtDeposit() external {
        vm.warp(START_TIME + DURATION + 7 days);
        uint256 fee = feeOf(DEPOSIT, FEE_BPS);

        uint256 paid = withdrawAs(provider, rentalId);

        assertEq(paid, DEPOSIT - fee, "paid");
        assertEq(escrow.feesAccrued(), fee, "feesAccrued");
        assertEq(balanceOf(address(escrow)), fee, "escrow balance");
        assertEq(escrow.getRental(rentalId).withdrawn, DEPOSIT, "withdrawn");
    }

    function test_Withdraw_AtEnd_StillHoldsLastHour() external {
        vm.warp(START_TIME + DURATION);
        uint256 paid = withdrawAs(provider, rentalId);
        uint256 gross = RATE * (DURATION - DISPUTE_WINDOW);
        assertEq(paid, gross - feeOf(gross, FEE_BPS), "paid");
    }

    function test_Withdraw_Repeatedly_SumsToSingleWithdrawal() external {
        uint256 total;
        for (uint256 t = DISPUTE_WINDOW + 701; t <= DURATION + DISPUTE_WINDOW; t += 701) {
            vm.warp(START_TIME + t);
            total += withdrawAs(provider, rentalId);
        }
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        if (escrow.withdrawable(rentalId) > 0) {
            total += withdrawAs(provider, rentalId);
        }
        assertEq(total, DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "total paid");
        assertEq(escrow.feesAccrued(), feeOf(DEPOSIT, FEE_BPS), "total fee");
    }

    function test_Withdraw_FeeRoundingDoesNotAccumulate() external {
        // 39 gross per withdrawal at 2.5 % would round each fee down to 0; the cumulative formula still charges 1 on
        // every 40.
        uint256 rentalId2 = openWith(_quoteWithRate(39), 100);
        uint256 totalFee;
        for (uint256 i = 1; i <= 100; ++i) {
            vm.warp(START_TIME + DISPUTE_WINDOW + i);
            uint256 before = escrow.feesAccrued();
            withdrawAs(provider, rentalId2);
            totalFee += escrow.feesAccrued() - before;
        }
        assertEq(totalFee, feeOf(39 * 100, FEE_BPS), "total fee");
        assertEq(totalFee, 97, "97 = floor(3900 * 2.5 %)");
    }

    function test_Withdraw_ZeroFee() external {
        vm.prank(owner);
        escrow.setFeeBps(0);
        uint256 rentalId2 = openDefault();
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        assertEq(withdrawAs(provider, rentalId2), DEPOSIT, "paid");
        assertEq(escrow.feesAccrued(), 0, "feesAccrued");
    }

    function test_Withdraw_MaxFee() external {
        vm.prank(owner);
        escrow.setFeeBps(1500);
        uint256 rentalId2 = openDefault();
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        assertEq(withdrawAs(provider, rentalId2), DEPOSIT * 85 / 100, "paid");
        assertEq(escrow.feesAccrued(), DEPOSIT * 15 / 100, "feesAccrued");
    }

    function test_Withdraw_UsesSnapshottedFee() external {
        vm.prank(owner);
        escrow.setFeeBps(1500);
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        assertEq(withdrawAs(provider, rentalId), DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "paid at the old fee");
    }

    function test_Withdraw_SkipsCreditedSeconds() external {
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        uint256 gross = RATE * (DURATION - 600);
        assertEq(withdrawAs(provider, rentalId), gross - feeOf(gross, FEE_BPS), "paid");
        assertEq(balanceOf(address(escrow)), feeOf(gross, FEE_BPS), "escrow keeps only the fee");
    }

    function test_Withdraw_CreditAheadOfCutoffDefersPayment() external {
        // Downtime inside the dispute window is subtracted at once, which only delays the provider: over the whole
        // rental it is paid for every second that was not credited.
        vm.warp(START_TIME + 2 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours + 1800, START_TIME + 2 hours, 1800));
        assertEq(escrow.withdrawable(rentalId), RATE * (1 hours - 1800), "withdrawable now");
        withdrawAs(provider, rentalId);
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);
        withdrawAs(provider, rentalId);
        assertEq(escrow.getRental(rentalId).withdrawn, RATE * (DURATION - 1800), "withdrawn");
    }

    function test_Withdraw_ERC1271Provider() external {
        // A contract-wallet provider withdraws by calling from the wallet, and is paid there.
        MockERC1271Wallet wallet = new MockERC1271Wallet(provider);
        Quote memory quote = defaultQuote();
        quote.provider = address(wallet);
        uint256 walletRental = openWith(quote, DURATION);
        vm.warp(START_TIME + DURATION + DISPUTE_WINDOW);

        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotProvider.selector, walletRental, provider));
        withdrawAs(provider, walletRental);

        uint256 paid = withdrawAs(address(wallet), walletRental);
        assertEq(paid, DEPOSIT - feeOf(DEPOSIT, FEE_BPS), "paid");
        assertEq(balanceOf(address(wallet)), paid, "wallet balance");
    }

    function _quoteWithRate(uint128 rate) private returns (Quote memory quote) {
        quote = defaultQuote();
        quote.ratePerSecond = rate;
    }
}
