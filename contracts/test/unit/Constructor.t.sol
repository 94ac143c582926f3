// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Ownable } from "@openzeppelin/contracts/access/Ownable.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { IGpuEscrow } from "src/interfaces/IGpuEscrow.sol";
import { Errors } from "src/libraries/Errors.sol";

import { Base_Test } from "../Base.t.sol";
import { IEscrow } from "../utils/IEscrow.sol";

contract Constructor_Unit_Test is Base_Test {
    function test_Constructor() external {
        vm.expectEmit();
        emit Ownable.OwnershipTransferred(address(0), owner);
        vm.expectEmit();
        emit IGpuEscrow.TreasuryChanged(address(0), treasury);
        vm.expectEmit();
        emit IGpuEscrow.FeeBpsChanged(0, 1500);
        vm.expectEmit();
        emit IGpuEscrow.AttesterThresholdChanged(0, 1);
        IEscrow deployed = deployEscrowWith(IERC20(address(token)), treasury, 1500, 30 days, owner);

        assertEq(address(deployed.token()), address(token), "token");
        assertEq(deployed.treasury(), treasury, "treasury");
        assertEq(deployed.feeBps(), 1500, "feeBps");
        assertEq(deployed.DISPUTE_WINDOW(), 30 days, "DISPUTE_WINDOW");
        assertEq(deployed.owner(), owner, "owner");
        assertEq(deployed.MAX_FEE_BPS(), 1500, "MAX_FEE_BPS");
        assertEq(deployed.MAX_DISPUTE_WINDOW(), 30 days, "MAX_DISPUTE_WINDOW");
        assertEq(deployed.attesterThreshold(), 1, "attesterThreshold");
        assertEq(deployed.nextRentalId(), 1, "nextRentalId");
        assertEq(deployed.feesAccrued(), 0, "feesAccrued");
        assertFalse(deployed.paused(), "paused");
        assertFalse(deployed.isAttester(attesters[0]), "no attesters");
    }

    function test_Constructor_ZeroFeeAndWindow() external {
        IEscrow deployed = deployEscrowWith(IERC20(address(token)), treasury, 0, 0, owner);
        assertEq(deployed.feeBps(), 0, "feeBps");
        assertEq(deployed.DISPUTE_WINDOW(), 0, "DISPUTE_WINDOW");
    }

    function test_RevertWhen_TokenZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_TokenZeroAddress.selector);
        deployEscrowWith(IERC20(address(0)), treasury, FEE_BPS, DISPUTE_WINDOW, owner);
    }

    function test_RevertWhen_TreasuryZeroAddress() external {
        vm.expectRevert(Errors.GpuEscrow_TreasuryZeroAddress.selector);
        deployEscrowWith(IERC20(address(token)), address(0), FEE_BPS, DISPUTE_WINDOW, owner);
    }

    function test_RevertWhen_FeeTooHigh() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_FeeTooHigh.selector, 1501, 1500));
        deployEscrowWith(IERC20(address(token)), treasury, 1501, DISPUTE_WINDOW, owner);
    }

    function test_RevertWhen_DisputeWindowTooLong() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.GpuEscrow_DisputeWindowTooLong.selector, 30 days + 1, 30 days));
        deployEscrowWith(IERC20(address(token)), treasury, FEE_BPS, 30 days + 1, owner);
    }

    function test_RevertWhen_OwnerZeroAddress() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        deployEscrowWith(IERC20(address(token)), treasury, FEE_BPS, DISPUTE_WINDOW, address(0));
    }
}
