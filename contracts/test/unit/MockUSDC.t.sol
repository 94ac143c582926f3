// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Test } from "forge-std/Test.sol";

import { MockUSDC } from "src/MockUSDC.sol";

contract MockUSDC_Unit_Test is Test {
    MockUSDC internal token;

    function setUp() external {
        token = new MockUSDC();
    }

    function test_Metadata() external view {
        assertEq(token.name(), "Mock USDC", "name");
        assertEq(token.symbol(), "mUSDC", "symbol");
        assertEq(token.decimals(), 6, "decimals");
        assertEq(token.totalSupply(), 0, "totalSupply");
    }

    function test_Mint_ByAnyone() external {
        address alice = makeAddr("alice");
        vm.prank(makeAddr("anyone"));
        token.mint(alice, 5e6);
        assertEq(token.balanceOf(alice), 5e6, "balance");
        assertEq(token.totalSupply(), 5e6, "totalSupply");
    }

    function test_Permit() external {
        (address owner, uint256 ownerKey) = makeAddrAndKey("owner");
        address spender = makeAddr("spender");
        uint256 value = 42e6;
        uint256 deadline = block.timestamp + 1 hours;

        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                spender,
                value,
                token.nonces(owner),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, digest);

        token.permit(owner, spender, value, deadline, v, r, s);

        assertEq(token.allowance(owner, spender), value, "allowance");
        assertEq(token.nonces(owner), 1, "nonce");
    }

    function test_DomainSeparator_UsesTokenName() external view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Mock USDC"),
                keccak256("1"),
                block.chainid,
                address(token)
            )
        );
        assertEq(token.DOMAIN_SEPARATOR(), expected, "DOMAIN_SEPARATOR");
    }
}
