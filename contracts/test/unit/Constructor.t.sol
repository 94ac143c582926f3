// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { GpuEscrow } from "src/GpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";

import { Base_Test } from "../Base.t.sol";

contract Constructor_Unit_Test is Base_Test {
    function test_RevertWhen_TokenZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_TokenZeroAddress.selector);
        new GpuEscrow(IERC20(address(0)), treasury, FEE_BPS);
    }

    function test_RevertWhen_TreasuryZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_TreasuryZeroAddress.selector);
        new GpuEscrow(IERC20(address(token)), address(0), FEE_BPS);
    }

    function test_RevertWhen_FeeTooHigh() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_FeeTooHigh.selector, 1501, 1500));
        new GpuEscrow(IERC20(address(token)), treasury, 1501);
    }

    function testFuzz_RevertWhen_FeeTooHigh(uint16 feeBps) external {
        feeBps = uint16(bound(feeBps, 1501, type(uint16).max));
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_FeeTooHigh.selector, feeBps, 1500));
        new GpuEscrow(IERC20(address(token)), treasury, feeBps);
    }

    function test_Constructor() external view {
        assertEq(address(escrow.token()), address(token), "token");
        assertEq(escrow.treasury(), treasury, "treasury");
        assertEq(escrow.feeBps(), FEE_BPS, "feeBps");
        assertEq(escrow.MAX_FEE_BPS(), 1500, "MAX_FEE_BPS");
        assertEq(escrow.feesAccrued(), 0, "feesAccrued");
        assertEq(escrow.nextRentalId(), 1, "nextRentalId");
    }

    function test_Constructor_FeeAtMax() external {
        GpuEscrow atMax = new GpuEscrow(IERC20(address(token)), treasury, 1500);
        assertEq(atMax.feeBps(), 1500, "feeBps");
    }

    function test_Constructor_FeeZero() external {
        GpuEscrow free = new GpuEscrow(IERC20(address(token)), treasury, 0);
        assertEq(free.feeBps(), 0, "feeBps");
    }
}
