// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Errors } from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";
import { Rental } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { BlocklistUSDC } from "../mocks/BlocklistUSDC.sol";

contract AutoExtend_Unit_Test is Base_Test {
    uint256 internal rentalId;

    /// @dev The escrow's constants, written out independently of it.
    uint256 internal constant LEAD = 10 minutes;
    uint256 internal constant MIN_STEP = 1 minutes;
    uint256 internal constant MAX_STEP = 2 ** 32 - 1;
    uint256 internal constant MAX_BUDGET = 2 ** 96 - 1;

    /// @dev The default rental's end, and the first second its automatic extension can be triggered.
    uint256 internal constant END = START_TIME + DURATION;
    uint256 internal constant OPENS_AT = END - LEAD;

    /// @dev What the default quote still allows on top of the default duration.
    uint256 internal constant HEADROOM = MAX_DURATION - DURATION;

    /// @dev The default automatic extension: up to three hours, an hour at a time.
    uint256 internal constant STEP = 1 hours;
    uint256 internal constant BUDGET = RATE * 3 hours;

    function setUp() public override {
        Base_Test.setUp();
        rentalId = openDefault();
        vm.warp(START_TIME + 1 hours);
    }

    /// @dev Expects a stranger's `autoExtend` of the default rental to revert with `revertData`.
    function expectAutoExtendRevert(bytes memory revertData) internal {
        vm.expectRevert(revertData);
        autoExtendAs(stranger, rentalId);
    }

    /// @dev Leaves the escrow `allowance` of the renter's tokens, less than a step costs, and expects a stranger's
    /// `autoExtend` of the default rental, once its window opens, to revert for lack of allowance.
    function expectAutoExtendShortOfAllowance(uint256 allowance) internal {
        vm.prank(renter);
        token.approve(address(escrow), allowance);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), allowance, RATE * STEP
            )
        );
    }

    function assertAutoExtension(uint256 id, uint256 budget, uint256 step) internal view {
        (uint256 actualBudget, uint256 actualStep) = escrow.autoExtension(id);
        assertEq(actualBudget, budget, "budget left");
        assertEq(actualStep, step, "step");
    }

    /*//////////////////////////////////////////////////////////////////////////
                               REVERTS: SET AUTO EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_SetAutoExtend_RentalNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        setAutoExtendAs(renter, 2, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_CallerProvider() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, provider));
        setAutoExtendAs(provider, rentalId, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_CallerStranger() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, stranger));
        setAutoExtendAs(stranger, rentalId, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_CallerStrangerTurningOff() external {
        // Nobody but the renter may turn it off either.
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_CallerNotRenter.selector, rentalId, stranger));
        setAutoExtendAs(stranger, rentalId, 0, 0);
    }

    function test_RevertWhen_SetAutoExtend_Stopped() external {
        stopAs(renter, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_Refused() external {
        refuseAs(provider, rentalId);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_Ended() external {
        vm.warp(END);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, END));
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
    }

    function test_RevertWhen_SetAutoExtend_BudgetTooLarge() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendBudgetTooLarge.selector, MAX_BUDGET + 1, MAX_BUDGET)
        );
        setAutoExtendAs(renter, rentalId, MAX_BUDGET + 1, STEP);
    }

    function test_RevertWhen_SetAutoExtend_BudgetMaxUint256() external {
        // Checked before the step, and without truncating the budget to its 96-bit field.
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendBudgetTooLarge.selector, type(uint256).max, MAX_BUDGET)
        );
        setAutoExtendAs(renter, rentalId, type(uint256).max, 0);
    }

    function test_RevertWhen_SetAutoExtend_StepZero() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendStepOutOfRange.selector, 0, MIN_STEP, MAX_STEP)
        );
        setAutoExtendAs(renter, rentalId, BUDGET, 0);
    }

    function test_RevertWhen_SetAutoExtend_StepTooShort() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendStepOutOfRange.selector, MIN_STEP - 1, MIN_STEP, MAX_STEP)
        );
        setAutoExtendAs(renter, rentalId, BUDGET, MIN_STEP - 1);
    }

    function test_RevertWhen_SetAutoExtend_StepTooLong() external {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendStepOutOfRange.selector, MAX_STEP + 1, MIN_STEP, MAX_STEP)
        );
        setAutoExtendAs(renter, rentalId, BUDGET, MAX_STEP + 1);
    }

    function test_RevertWhen_SetAutoExtend_StepMaxUint256() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_AutoExtendStepOutOfRange.selector, type(uint256).max, MIN_STEP, MAX_STEP
            )
        );
        setAutoExtendAs(renter, rentalId, 1, type(uint256).max);
    }

    function test_RevertWhen_AutoExtensionNotFound() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        escrow.autoExtension(2);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 REVERTS: AUTO EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    function test_RevertWhen_AutoExtend_RentalNotFound() external {
        vm.warp(OPENS_AT);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalNotFound.selector, 2));
        autoExtendAs(stranger, 2);
    }

    function test_RevertWhen_AutoExtend_Paused() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        vm.prank(owner);
        escrow.pause();
        expectAutoExtendRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
    }

    function test_RevertWhen_AutoExtend_Stopped() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        stopAs(renter, rentalId);
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
    }

    function test_RevertWhen_AutoExtend_Refused() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        refuseAs(provider, rentalId);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
    }

    function test_RevertWhen_AutoExtend_Ended() external {
        // Once the end has passed, the rental cannot be revived, budget or not.
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(END);
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyEnded.selector, rentalId, END));
    }

    function test_RevertWhen_AutoExtend_TooEarly() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT - 1);
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, rentalId, OPENS_AT));
    }

    function test_RevertWhen_AutoExtend_TooEarly_AtStart() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(START_TIME);
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, rentalId, OPENS_AT));
        autoExtendAs(renter, rentalId);
    }

    function test_RevertWhen_AutoExtend_TooEarly_AfterExtension() external {
        // The window moves with the end: right after an extension, the next one opens a step later.
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, rentalId, END + STEP - LEAD)
        );
    }

    function test_RevertWhen_AutoExtend_TooEarly_AfterManualExtension() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        extendAs(renter, rentalId, 2 hours);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, rentalId, END + 2 hours - LEAD)
        );
    }

    function test_RevertWhen_AutoExtend_NeverSet() external {
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, 0, HEADROOM)
        );
    }

    function test_RevertWhen_AutoExtend_BudgetBelowRate() external {
        setAutoExtendAs(renter, rentalId, RATE - 1, STEP);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, RATE - 1, HEADROOM)
        );
    }

    function test_RevertWhen_AutoExtend_AtMaxDuration() external {
        extendAs(renter, rentalId, HEADROOM);
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(START_TIME + MAX_DURATION - LEAD);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, BUDGET, 0)
        );
    }

    function test_RevertWhen_AutoExtend_TurnedOff() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        setAutoExtendAs(renter, rentalId, 0, STEP);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, 0, HEADROOM)
        );
    }

    function test_RevertWhen_AutoExtend_AllowanceInsufficient() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        expectAutoExtendShortOfAllowance(RATE * STEP - 1);
    }

    function test_RevertWhen_AutoExtend_AllowanceRevoked() external {
        // The caller's own allowance does not matter: the stranger approved the escrow, the renter no longer does.
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        expectAutoExtendShortOfAllowance(0);
    }

    function test_RevertWhen_AutoExtend_BalanceInsufficient() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        uint256 keep = RATE * STEP - 1;
        uint256 spare = balanceOf(renter) - keep;
        vm.prank(renter);
        token.transfer(treasury, spare);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, renter, keep, RATE * STEP)
        );
    }

    function test_RevertWhen_AutoExtend_RenterBlocklisted() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        token.setBlocklisted(renter, true);
        vm.warp(OPENS_AT);
        expectAutoExtendRevert(abi.encodeWithSelector(BlocklistUSDC.Blocklisted.selector, renter));
    }

    function test_RevertWhen_AutoExtend_FailedPullKeepsBudget() external {
        // A failed pull changes nothing: once the renter approves again, the whole step is bought from the whole budget.
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        expectAutoExtendShortOfAllowance(0);
        assertAutoExtension(rentalId, BUDGET, STEP);
        assertEq(escrow.getRental(rentalId).end, END, "end unchanged");

        vm.prank(renter);
        token.approve(address(escrow), RATE * STEP);
        assertEq(autoExtendAs(stranger, rentalId), RATE * STEP, "cost");
        assertAutoExtension(rentalId, BUDGET - RATE * STEP, STEP);
        assertEq(token.allowance(renter, address(escrow)), 0, "allowance used up");
    }

    /*//////////////////////////////////////////////////////////////////////////
                               SUCCESS: SET AUTO EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    function test_SetAutoExtend() external {
        Rental memory previous = escrow.getRental(rentalId);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AutoExtendSet({ rentalId: rentalId, budget: BUDGET, step: STEP });

        setAutoExtendAs(renter, rentalId, BUDGET, STEP);

        assertAutoExtension(rentalId, BUDGET, STEP);
        // Nothing is pulled and nothing else about the rental changes.
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT, "renter balance");
        assertEq(balanceOf(address(escrow)), DEPOSIT, "escrow balance");
        assertEq(token.allowance(renter, address(escrow)), type(uint256).max, "allowance untouched");
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, previous.end, "end");
        assertEq(rental.maxEnd, previous.maxEnd, "maxEnd");
        assertEq(rental.credited, 0, "credited");
        assertEq(rental.creditedUntil, 0, "creditedUntil");
    }

    function test_AutoExtension_ZeroWhenNeverSet() external view {
        assertAutoExtension(rentalId, 0, 0);
    }

    function test_SetAutoExtend_Limits() external {
        setAutoExtendAs(renter, rentalId, MAX_BUDGET, MAX_STEP);
        assertAutoExtension(rentalId, MAX_BUDGET, MAX_STEP);
        setAutoExtendAs(renter, rentalId, 1, MIN_STEP);
        assertAutoExtension(rentalId, 1, MIN_STEP);
    }

    function test_SetAutoExtend_InLastSecond() external {
        vm.warp(END - 1);
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        assertEq(autoExtendAs(stranger, rentalId), RATE * STEP, "cost");
        assertEq(escrow.getRental(rentalId).end, END + STEP, "end");
    }

    function test_SetAutoExtend_ZeroBudgetTurnsOff() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);

        // Whatever the step: it is neither checked nor kept.
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AutoExtendSet({ rentalId: rentalId, budget: 0, step: 0 });
        setAutoExtendAs(renter, rentalId, 0, type(uint256).max);

        assertAutoExtension(rentalId, 0, 0);
        setAutoExtendAs(renter, rentalId, 0, 1);
        assertAutoExtension(rentalId, 0, 0);
    }

    function test_SetAutoExtend_WhilePaused() external {
        // Setting pulls nothing, so a pause does not stop the renter from changing or turning it off.
        vm.prank(owner);
        escrow.pause();
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        assertAutoExtension(rentalId, BUDGET, STEP);
        setAutoExtendAs(renter, rentalId, 0, 0);
        assertAutoExtension(rentalId, 0, 0);
    }

    function test_SetAutoExtend_ReplacesWhatWasLeft() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        assertAutoExtension(rentalId, BUDGET - RATE * STEP, STEP);

        // The new budget replaces the two hours left; it is not added to them.
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.AutoExtendSet({ rentalId: rentalId, budget: RATE * 150, step: 2 minutes });
        setAutoExtendAs(renter, rentalId, RATE * 150, 2 minutes);
        assertAutoExtension(rentalId, RATE * 150, 2 minutes);

        vm.warp(END + STEP - LEAD);
        assertEq(autoExtendAs(stranger, rentalId), RATE * 2 minutes, "new step");
        vm.warp(END + STEP + 2 minutes - LEAD);
        assertEq(autoExtendAs(stranger, rentalId), RATE * 30, "rest of the new budget");
        assertAutoExtension(rentalId, 0, 2 minutes);
        assertEq(escrow.getRental(rentalId).end, END + STEP + 150, "end");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - RATE * (STEP + 150), "renter paid both");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 SUCCESS: AUTO EXTEND
    //////////////////////////////////////////////////////////////////////////*/

    function test_AutoExtend() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        uint256 cost = RATE * STEP;
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: END + STEP, cost: cost });
        vm.expectCall(address(token), abi.encodeCall(IERC20.transferFrom, (renter, address(escrow), cost)));

        uint256 returned = autoExtendAs(stranger, rentalId);

        assertEq(returned, cost, "cost");
        assertAutoExtension(rentalId, BUDGET - cost, STEP);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, END + STEP, "end");
        assertEq(rental.start, START_TIME, "start");
        assertEq(rental.maxEnd, START_TIME + MAX_DURATION, "maxEnd");
        assertFalse(rental.stopped, "stopped");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - cost, "renter balance falls by the cost");
        assertEq(balanceOf(address(escrow)), DEPOSIT + cost, "escrow balance rises by the cost");
        assertEq(balanceOf(stranger), INITIAL_BALANCE, "the caller pays nothing");
    }

    function test_AutoExtend_TriggeredByProvider() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        assertEq(autoExtendAs(provider, rentalId), RATE * STEP, "cost");
        assertEq(escrow.getRental(rentalId).end, END + STEP, "end");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - RATE * STEP, "renter pays");
        assertEq(balanceOf(provider), 0, "provider pays nothing and is paid nothing yet");
    }

    function test_AutoExtend_TriggeredByRenter() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        assertEq(autoExtendAs(renter, rentalId), RATE * STEP, "cost");
        assertEq(escrow.getRental(rentalId).end, END + STEP, "end");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - RATE * STEP, "renter balance");
        assertAutoExtension(rentalId, BUDGET - RATE * STEP, STEP);
    }

    function test_AutoExtend_InLastSecond() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(END - 1);
        assertEq(autoExtendAs(stranger, rentalId), RATE * STEP, "cost");
        assertEq(escrow.getRental(rentalId).end, END + STEP, "end");
    }

    function test_AutoExtend_RentalShorterThanLead() external {
        // A rental shorter than the lead can be extended from its first second.
        uint256 shortRental = openWith(defaultQuote(), 5 minutes);
        setAutoExtendAs(renter, shortRental, BUDGET, STEP);
        assertEq(autoExtendAs(stranger, shortRental), RATE * STEP, "cost");
        assertEq(escrow.getRental(shortRental).end, START_TIME + 1 hours + 5 minutes + STEP, "end");
    }

    function test_AutoExtend_PartialStep_LimitedByBudget() external {
        // The budget buys 1,000 whole seconds; the 999 units left over buy nothing and stay in the budget.
        uint256 budget = RATE * 1000 + 999;
        setAutoExtendAs(renter, rentalId, budget, STEP);
        vm.warp(OPENS_AT);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: END + 1000, cost: RATE * 1000 });

        assertEq(autoExtendAs(stranger, rentalId), RATE * 1000, "cost");

        assertAutoExtension(rentalId, 999, STEP);
        assertEq(escrow.getRental(rentalId).end, END + 1000, "end");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - RATE * 1000, "renter balance");

        vm.warp(END + 1000 - LEAD);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, 999, HEADROOM - 1000)
        );
    }

    function test_AutoExtend_PartialStep_LimitedByMaxDuration() external {
        extendAs(renter, rentalId, HEADROOM - 100);
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        uint256 maxEnd = START_TIME + MAX_DURATION;
        vm.warp(maxEnd - 100 - LEAD);
        vm.expectEmit({ emitter: address(escrow) });
        emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: maxEnd, cost: RATE * 100 });

        assertEq(autoExtendAs(stranger, rentalId), RATE * 100, "cost");

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.end, maxEnd, "end at maxEnd");
        assertEq(rental.end, rental.maxEnd, "end == maxEnd");
        assertAutoExtension(rentalId, BUDGET - RATE * 100, STEP);

        vm.warp(maxEnd - LEAD);
        expectAutoExtendRevert(
            abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, BUDGET - RATE * 100, 0)
        );
    }

    function test_AutoExtend_RepeatedUntilBudgetSpent() external {
        // Two full steps and a half one, each triggered as the previous end comes within the lead.
        uint256 budget = RATE * (2 * STEP + 30 minutes);
        setAutoExtendAs(renter, rentalId, budget, STEP);
        uint256[3] memory extra = [STEP, STEP, uint256(30 minutes)];
        uint256 end = END;
        for (uint256 i = 0; i < 3; ++i) {
            vm.warp(end - LEAD);
            vm.expectEmit({ emitter: address(escrow) });
            emit IGpuEscrow.RentalExtended({ rentalId: rentalId, newEnd: end + extra[i], cost: RATE * extra[i] });
            assertEq(autoExtendAs(stranger, rentalId), RATE * extra[i], "cost");
            end += extra[i];
        }

        assertEq(end, END + 2 * STEP + 30 minutes, "two and a half hours more");
        assertEq(escrow.getRental(rentalId).end, end, "end");
        assertAutoExtension(rentalId, 0, STEP);
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - budget, "renter paid exactly the budget");
        assertEq(balanceOf(address(escrow)), DEPOSIT + budget, "escrow balance");

        vm.warp(end - LEAD);
        expectAutoExtendRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_AutoExtendNothingLeft.selector, rentalId, 0, HEADROOM - 2 * STEP - 30 minutes
            )
        );
    }

    function test_AutoExtend_ShortStepsStayWithinLeadOfNow() external {
        // With a step shorter than the lead, several extensions fit in one block, but never more than keep the end
        // within the lead of now: here ten one-minute steps, the last ending exactly ten minutes from now.
        setAutoExtendAs(renter, rentalId, BUDGET, MIN_STEP);
        vm.warp(END - 1);
        for (uint256 i = 0; i < 10; ++i) {
            assertEq(autoExtendAs(stranger, rentalId), RATE * MIN_STEP, "cost");
        }
        assertEq(escrow.getRental(rentalId).end, END + 10 * MIN_STEP, "end");
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_AutoExtendTooEarly.selector, rentalId, END));
        assertAutoExtension(rentalId, BUDGET - RATE * 10 * MIN_STEP, MIN_STEP);
    }

    function test_AutoExtend_AfterUnpause() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        vm.prank(owner);
        escrow.pause();
        vm.prank(owner);
        escrow.unpause();
        assertEq(autoExtendAs(stranger, rentalId), RATE * STEP, "cost");
    }

    function test_AutoExtend_KeepsSnapshottedFee() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.prank(owner);
        escrow.setFeeBps(1500);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        assertEq(escrow.getRental(rentalId).feeBps, FEE_BPS, "feeBps");
    }

    /*//////////////////////////////////////////////////////////////////////////
                                    INTERACTIONS
    //////////////////////////////////////////////////////////////////////////*/

    function test_CreditDowntime_KeepsAutoExtend() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(START_TIME + 3 hours);

        uint256 refund = credit(downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, 600));

        assertEq(refund, RATE * 600, "credit refund");
        assertAutoExtension(rentalId, BUDGET, STEP);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 600, "credited");
        assertEq(rental.creditedUntil, START_TIME + 3 hours, "creditedUntil");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT + RATE * 600, "renter got the credit");

        // The automatic extension still buys its whole step from its whole budget.
        vm.warp(OPENS_AT);
        assertEq(autoExtendAs(stranger, rentalId), RATE * STEP, "cost");
        assertAutoExtension(rentalId, BUDGET - RATE * STEP, STEP);
        rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 600, "credited after the extension");
        assertEq(rental.creditedUntil, START_TIME + 3 hours, "creditedUntil after the extension");
    }

    function test_CreditDowntime_InAutoExtendedTime() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);

        // Downtime in the bought hour is credited like any other, and the rest of the budget stays.
        vm.warp(END + 30 minutes);
        uint256 refund = credit(downtimeOf(rentalId, END, END + 30 minutes, 20 minutes));

        assertEq(refund, RATE * 20 minutes, "credit refund");
        assertAutoExtension(rentalId, BUDGET - RATE * STEP, STEP);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 20 minutes, "credited");
        assertEq(rental.creditedUntil, END + 30 minutes, "creditedUntil");
    }

    function test_SetAutoExtend_KeepsCredits() external {
        vm.warp(START_TIME + 3 hours);
        credit(downtimeOf(rentalId, START_TIME + 2 hours, START_TIME + 3 hours, 600));
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        setAutoExtendAs(renter, rentalId, 0, 0);
        setAutoExtendAs(renter, rentalId, MAX_BUDGET, MAX_STEP);

        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 600, "credited");
        assertEq(rental.creditedUntil, START_TIME + 3 hours, "creditedUntil");
        // The credited window still blocks an overlapping one.
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.GpuEscrow_DowntimeOverlaps.selector, rentalId, START_TIME + 3 hours - 1, START_TIME + 3 hours
            )
        );
        credit(downtimeOf(rentalId, START_TIME + 3 hours - 1, START_TIME + 3 hours, 1));
    }

    function test_Views_UnaffectedByAutoExtendBits() external {
        // Every bit of the budget and step fields set: none of it leaks into the credited seconds, the credited
        // window, the earnings or a refusal's refund.
        setAutoExtendAs(renter, rentalId, MAX_BUDGET, MAX_STEP);
        Rental memory rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 0, "credited before");
        assertEq(rental.creditedUntil, 0, "creditedUntil before");

        vm.warp(START_TIME + 3 hours);
        credit(downtimeOf(rentalId, START_TIME + 1 hours, START_TIME + 2 hours, 600));

        rental = escrow.getRental(rentalId);
        assertEq(rental.credited, 600, "credited");
        assertEq(rental.creditedUntil, START_TIME + 2 hours, "creditedUntil");
        assertEq(escrow.earned(rentalId), RATE * (3 hours - 600), "earned");
        assertEq(escrow.withdrawable(rentalId), RATE * (2 hours - 600), "withdrawable");
        assertAutoExtension(rentalId, MAX_BUDGET, MAX_STEP);
        assertEq(refuseAs(stranger, rentalId), RATE * (DURATION - 600), "refusal refund");
    }

    function test_Stop_AfterAutoExtensions_RefundsUnusedSeconds() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        vm.warp(END + STEP - LEAD);
        autoExtendAs(stranger, rentalId);
        uint256 stopAt = END + STEP + 1234;
        vm.warp(stopAt);

        uint256 refund = stopAs(renter, rentalId);

        // The unused seconds run to the end the extensions moved, so part of the second bought hour comes back.
        assertEq(refund, RATE * (END + 2 * STEP - stopAt), "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE - DEPOSIT - 2 * RATE * STEP + refund, "renter balance");
        assertEq(balanceOf(address(escrow)), RATE * (stopAt - START_TIME), "escrow keeps the used seconds");
        assertEq(escrow.earned(rentalId), RATE * (stopAt - START_TIME), "earned");
        assertEq(escrow.getRental(rentalId).end, stopAt, "end");
        // What is left of the budget can no longer be spent.
        assertAutoExtension(rentalId, BUDGET - 2 * RATE * STEP, STEP);
        expectAutoExtendRevert(abi.encodeWithSelector(Errors.GpuEscrow_RentalAlreadyStopped.selector, rentalId));
    }

    function test_Withdraw_AfterAutoExtendedRental() external {
        // A full step and then 1,000 seconds, the rest of the budget.
        setAutoExtendAs(renter, rentalId, RATE * (STEP + 1000), STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        vm.warp(END + STEP - LEAD);
        autoExtendAs(stranger, rentalId);
        uint256 end = END + STEP + 1000;
        assertEq(escrow.getRental(rentalId).end, end, "end");

        vm.warp(end + DISPUTE_WINDOW);
        uint256 gross = RATE * (DURATION + STEP + 1000);
        uint256 fee = feeOf(gross, FEE_BPS);
        uint256 paid = withdrawAs(provider, rentalId);

        assertEq(paid, gross - fee, "paid");
        assertEq(balanceOf(provider), gross - fee, "provider balance");
        assertEq(escrow.feesAccrued(), fee, "fee");
        assertEq(balanceOf(address(escrow)), fee, "only the fee is left");
        assertEq(escrow.getRental(rentalId).withdrawn, gross, "withdrawn");
    }

    function test_Refuse_AfterAutoExtension_RefundsIt() external {
        setAutoExtendAs(renter, rentalId, BUDGET, STEP);
        vm.warp(OPENS_AT);
        autoExtendAs(stranger, rentalId);
        assertEq(refuseAs(stranger, rentalId), DEPOSIT + RATE * STEP, "refund");
        assertEq(balanceOf(renter), INITIAL_BALANCE, "renter made whole");
        assertEq(balanceOf(address(escrow)), 0, "escrow holds nothing for it");
    }
}
