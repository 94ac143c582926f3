// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { Quote } from "src/types/DataTypes.sol";

import { Base_Test } from "../Base.t.sol";
import { FiatTokenLike, FiatTokenLikeProxy } from "../mocks/FiatTokenLike.sol";
import { IEscrow } from "../utils/IEscrow.sol";

/// @notice The Circle-like token that `script/measure-gas.sh` measures with behaves as USDC does where the escrow
/// depends on it: behind its proxy, permits, transfers, allowances spent even when unlimited, and the blocklist.
contract FiatTokenLike_Unit_Test is Base_Test {
    FiatTokenLike internal usdc;
    IEscrow internal usdcEscrow;
    address internal proxyAdmin;

    function setUp() public override {
        Base_Test.setUp();
        proxyAdmin = makeAddr("proxy admin");
        usdc = FiatTokenLike(address(new FiatTokenLikeProxy(address(new FiatTokenLike()), proxyAdmin)));
        usdc.initialize("USD Coin", "USDC", owner);
        usdcEscrow = deployEscrowWith(IERC20(address(usdc)), treasury, FEE_BPS, DISPUTE_WINDOW, owner);
        usdc.mint(renter, INITIAL_BALANCE);
        // Quotes are signed for, and the helpers call, this escrow.
        escrow = usdcEscrow;
    }

    /// @dev The EIP-2612 permit of `value` to the escrow by the renter, on the token's own domain (version "2").
    function signUsdcPermit(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, renter, address(usdcEscrow), value, usdc.nonces(renter), deadline));
        (v, r, s) = vm.sign(renterKey, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    function openByPermit() internal returns (uint256 rentalId) {
        Quote memory quote = defaultQuote();
        bytes memory signature = signQuote(providerKey, quote);
        (uint8 v, bytes32 r, bytes32 s) = signUsdcPermit(DEPOSIT, block.timestamp);
        vm.prank(renter);
        rentalId = usdcEscrow.openWithPermit(quote, DURATION, signature, block.timestamp, v, r, s);
    }

    function test_DomainSeparator_VersionTwoOfTheProxy() external view {
        bytes32 expected =
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("USD Coin"), keccak256("2"), block.chainid, address(usdc)));
        assertEq(usdc.DOMAIN_SEPARATOR(), expected, "domain");
    }

    function test_ProxyAdminCannotUseTheToken() external {
        vm.prank(proxyAdmin);
        vm.expectRevert();
        usdc.balanceOf(renter);
    }

    function test_OpenExtendStopWithdraw_ByPermit() external {
        uint256 rentalId = openByPermit();
        assertEq(usdc.balanceOf(address(usdcEscrow)), DEPOSIT, "deposit");
        assertEq(usdc.allowance(renter, address(usdcEscrow)), 0, "permit used up");

        vm.warp(START_TIME + 1 hours);
        (uint8 v, bytes32 r, bytes32 s) = signUsdcPermit(RATE * 1 hours, block.timestamp);
        vm.prank(renter);
        usdcEscrow.extendWithPermit(rentalId, 1 hours, block.timestamp, v, r, s);
        assertEq(usdc.balanceOf(address(usdcEscrow)), DEPOSIT + RATE * 1 hours, "extension");

        vm.warp(START_TIME + 2 hours);
        vm.prank(renter);
        uint256 refund = usdcEscrow.stop(rentalId);
        assertEq(refund, RATE * (DURATION + 1 hours - 2 hours), "refund");

        vm.warp(START_TIME + 2 hours + DISPUTE_WINDOW);
        vm.prank(provider);
        uint256 paid = usdcEscrow.withdraw(rentalId);
        uint256 gross = RATE * 2 hours;
        assertEq(paid, gross - feeOf(gross, FEE_BPS), "paid");
        assertEq(usdc.balanceOf(provider), paid, "provider balance");
        assertEq(usdc.balanceOf(renter), INITIAL_BALANCE - gross, "renter balance");
    }

    function test_TransferFrom_SpendsUnlimitedAllowance() external {
        // Unlike OpenZeppelin's ERC-20, an unlimited approval is decremented (and so written) on every pull.
        vm.prank(renter);
        usdc.approve(address(usdcEscrow), type(uint256).max);
        openDefault();
        assertEq(usdc.allowance(renter, address(usdcEscrow)), type(uint256).max - DEPOSIT, "allowance spent");
    }

    function test_BlocklistedProvider_StopStillRefunds() external {
        uint256 rentalId = openByPermit();
        usdc.setBlocklisted(provider, true);
        vm.warp(START_TIME + 1 hours);
        vm.prank(renter);
        usdcEscrow.stop(rentalId);
        vm.warp(START_TIME + 1 hours + DISPUTE_WINDOW);
        vm.prank(provider);
        vm.expectRevert("Blacklistable: account is blacklisted");
        usdcEscrow.withdraw(rentalId);
    }
}
