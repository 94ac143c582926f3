// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Test } from "forge-std/Test.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { Downtime, Quote } from "src/types/DataTypes.sol";

import { IEscrow } from "./utils/IEscrow.sol";

import { BlocklistUSDC } from "./mocks/BlocklistUSDC.sol";

/// @notice Common fixture: labelled users with keys, a freshly deployed token and escrow, funded and approved renters,
/// and EIP-712 helpers that compute digests independently of the escrow.
abstract contract Base_Test is Test {
    /*//////////////////////////////////////////////////////////////////////////
                                     CONSTANTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev The highest rate per second the escrow stores (44 bits) and the longest total duration of a rental (32
    /// bits), as documented in `IGpuEscrow.open`.
    uint256 internal constant MAX_STORED_RATE = 2 ** 44 - 1;
    uint256 internal constant MAX_RENTAL_DURATION = 2 ** 32 - 1;

    /// @dev 2.5 %, chosen so that rounding of the fee is visible with small amounts.
    uint16 internal constant FEE_BPS = 250;

    /// @dev 0.001 mUSDC per second, i.e. 3.6 mUSDC per hour.
    uint256 internal constant RATE = 1000;

    uint256 internal constant DURATION = 10 hours;

    uint256 internal constant DEPOSIT = RATE * DURATION;

    /// @dev The longest a quote lets the default rental last, extensions included.
    uint40 internal constant MAX_DURATION = 1 days;

    uint40 internal constant DISPUTE_WINDOW = 1 hours;

    /// @dev 2026-01-01T00:00:00Z, so that tests run at a realistic block time rather than at 1.
    uint40 internal constant START_TIME = 1_767_225_600;

    /// @dev One million mUSDC.
    uint256 internal constant INITIAL_BALANCE = 1_000_000e6;

    bytes32 internal constant OFFER_ID = keccak256("rig-7/rtx4090x2");

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    bytes32 internal constant QUOTE_TYPEHASH = keccak256(
        "Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40 deadline,bytes32 offerId,uint256 nonce)"
    );

    bytes32 internal constant DOWNTIME_TYPEHASH =
        keccak256("Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)");

    bytes32 internal constant REFUSAL_TYPEHASH = keccak256("Refusal(uint256 rentalId)");

    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /*//////////////////////////////////////////////////////////////////////////
                                     TEST STATE
    //////////////////////////////////////////////////////////////////////////*/

    address internal renter;
    uint256 internal renterKey;
    address internal provider;
    uint256 internal providerKey;
    address internal treasury;
    address internal owner;
    address internal stranger;

    /// @dev Three attester keys, sorted by address; only the first is registered by default.
    address[3] internal attesters;
    uint256[3] internal attesterKeys;

    BlocklistUSDC internal token;
    IEscrow internal escrow;

    /// @dev The nonce the next {defaultQuote} uses.
    uint256 internal nextNonce;

    /*//////////////////////////////////////////////////////////////////////////
                                       SET-UP
    //////////////////////////////////////////////////////////////////////////*/

    function setUp() public virtual {
        vm.warp(START_TIME);

        (renter, renterKey) = makeAddrAndKey("renter");
        (provider, providerKey) = makeAddrAndKey("provider");
        treasury = makeAddr("treasury");
        owner = makeAddr("owner");
        stranger = makeAddr("stranger");
        for (uint256 i = 0; i < 3; ++i) {
            (attesters[i], attesterKeys[i]) = makeAddrAndKey(string.concat("attester", vm.toString(i)));
        }
        sortAttesters();

        token = new BlocklistUSDC();
        vm.label(address(token), "BlocklistUSDC");
        escrow = deployEscrow(FEE_BPS, DISPUTE_WINDOW);

        fundAndApprove(renter, INITIAL_BALANCE);
        fundAndApprove(stranger, INITIAL_BALANCE);
        vm.prank(owner);
        escrow.setAttester(attesters[0], true);
    }

    function deployEscrow(uint16 feeBps, uint40 disputeWindow) internal returns (IEscrow deployed) {
        deployed = deployEscrowWith(IERC20(address(token)), treasury, feeBps, disputeWindow, owner);
        vm.label(address(deployed), "GpuEscrow");
    }

    /// @dev Deploys the escrow artifact, built with the IR pipeline as in production. Reverts bubble up, so
    /// `vm.expectRevert` works on it as on `new`.
    function deployEscrowWith(IERC20 token_, address treasury_, uint16 feeBps, uint40 disputeWindow, address owner_)
        internal
        returns (IEscrow deployed)
    {
        bytes memory initCode = bytes.concat(
            vm.getCode("GpuEscrow.sol:GpuEscrow"), abi.encode(token_, treasury_, feeBps, disputeWindow, owner_)
        );
        address created;
        assembly ("memory-safe") {
            created := create(0, add(initCode, 0x20), mload(initCode))
            if iszero(created) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
        }
        deployed = IEscrow(created);
    }

    function sortAttesters() private {
        for (uint256 i = 1; i < 3; ++i) {
            for (uint256 j = i; j > 0 && attesters[j - 1] > attesters[j]; --j) {
                (attesters[j - 1], attesters[j]) = (attesters[j], attesters[j - 1]);
                (attesterKeys[j - 1], attesterKeys[j]) = (attesterKeys[j], attesterKeys[j - 1]);
            }
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  TOKEN HELPERS
    //////////////////////////////////////////////////////////////////////////*/

    function fundAndApprove(address account, uint256 amount) internal {
        token.mint(account, amount);
        vm.prank(account);
        token.approve(address(escrow), type(uint256).max);
    }

    function balanceOf(address account) internal view returns (uint256) {
        return token.balanceOf(account);
    }

    /// @dev The reference fee formula, written independently of the contract.
    function feeOf(uint256 gross, uint256 bps) internal pure returns (uint256) {
        return gross * bps / 10_000;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  EIP-712 HELPERS
    //////////////////////////////////////////////////////////////////////////*/

    function domainSeparator(address verifyingContract, uint256 chainId) internal pure returns (bytes32) {
        return
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("GpuEscrow"), keccak256("1"), chainId, verifyingContract));
    }

    function typedDigest(bytes32 separator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", separator, structHash));
    }

    function quoteDigest(Quote memory quote, address verifyingContract, uint256 chainId)
        internal
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                QUOTE_TYPEHASH,
                quote.provider,
                quote.renter,
                quote.ratePerSecond,
                quote.maxDuration,
                quote.deadline,
                quote.offerId,
                quote.nonce
            )
        );
        return typedDigest(domainSeparator(verifyingContract, chainId), structHash);
    }

    function downtimeDigest(Downtime memory downtime, address verifyingContract, uint256 chainId)
        internal
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                DOWNTIME_TYPEHASH,
                downtime.rentalId,
                downtime.from,
                downtime.to,
                downtime.downSeconds,
                downtime.deadline
            )
        );
        return typedDigest(domainSeparator(verifyingContract, chainId), structHash);
    }

    function refusalDigest(uint256 rentalId, address verifyingContract, uint256 chainId)
        internal
        pure
        returns (bytes32)
    {
        return typedDigest(
            domainSeparator(verifyingContract, chainId), keccak256(abi.encode(REFUSAL_TYPEHASH, rentalId))
        );
    }

    /// @dev A refusal of `rentalId` signed with `key`, for the escrow under test on the current chain.
    function signRefusal(uint256 key, uint256 rentalId) internal view returns (bytes memory) {
        return signDigest(key, refusalDigest(rentalId, address(escrow), block.chainid));
    }

    function signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The provider's signature of `quote` for the escrow under test on the current chain.
    function signQuote(uint256 key, Quote memory quote) internal view returns (bytes memory) {
        return signDigest(key, quoteDigest(quote, address(escrow), block.chainid));
    }

    /// @dev One entry of a downtime attestation: `attester || signature length (2 bytes) || signature`.
    function attestationEntry(address attester, bytes memory signature) internal pure returns (bytes memory) {
        return abi.encodePacked(attester, uint16(signature.length), signature);
    }

    /// @dev An attestation signed by the first `count` attesters, in ascending address order, one entry each.
    function attest(Downtime memory downtime, uint256 count) internal view returns (bytes[] memory entries) {
        bytes32 digest = downtimeDigest(downtime, address(escrow), block.chainid);
        entries = new bytes[](count);
        for (uint256 i = 0; i < count; ++i) {
            entries[i] = attestationEntry(attesters[i], signDigest(attesterKeys[i], digest));
        }
    }

    /// @dev The `signatures` argument of `creditDowntime`: the entries back to back.
    function packEntries(bytes[] memory entries) internal pure returns (bytes memory packed) {
        for (uint256 i = 0; i < entries.length; ++i) {
            packed = bytes.concat(packed, entries[i]);
        }
    }

    /// @dev The `downtime` argument of `creditDowntime`: `abi.encodePacked(uint96 rentalId, uint40 from, uint40 to,
    /// uint40 downSeconds, uint40 deadline)` as one word.
    function packDowntime(Downtime memory downtime) internal pure returns (uint256) {
        require(downtime.rentalId <= type(uint96).max, "rental id does not fit 96 bits");
        return uint256(
            bytes32(
                abi.encodePacked(
                    uint96(downtime.rentalId), downtime.from, downtime.to, downtime.downSeconds, downtime.deadline
                )
            )
        );
    }

    function signPermit(uint256 key, address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address holder = vm.addr(key);
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, token.nonces(holder), deadline));
        (v, r, s) = vm.sign(key, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  ESCROW HELPERS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev A quote from the default provider to the default renter, valid for an hour, with a fresh nonce.
    function defaultQuote() internal returns (Quote memory quote) {
        quote = Quote({
            provider: provider,
            renter: renter,
            ratePerSecond: uint128(RATE),
            maxDuration: MAX_DURATION,
            deadline: uint40(block.timestamp + 1 hours),
            offerId: OFFER_ID,
            nonce: nextNonce++
        });
    }

    /// @dev Opens a rental with `quote`, signed with the default provider key, as the quote's renter.
    function openWith(Quote memory quote, uint256 duration) internal returns (uint256 rentalId) {
        bytes memory signature = signQuote(providerKey, quote);
        vm.prank(quote.renter);
        rentalId = escrow.open(quote, duration, signature);
    }

    /// @dev Opens the default rental: the renter pays the provider RATE per second for DURATION, starting now.
    function openDefault() internal returns (uint256 rentalId) {
        rentalId = openWith(defaultQuote(), DURATION);
    }

    function stopAs(address caller, uint256 rentalId) internal returns (uint256 refund) {
        vm.prank(caller);
        refund = escrow.stop(rentalId);
    }

    function extendAs(address caller, uint256 rentalId, uint256 extraSeconds) internal returns (uint256 cost) {
        vm.prank(caller);
        cost = escrow.extend(rentalId, extraSeconds);
    }

    function setAutoExtendAs(address caller, uint256 rentalId, uint256 budget, uint256 step) internal {
        vm.prank(caller);
        escrow.setAutoExtend(rentalId, budget, step);
    }

    function autoExtendAs(address caller, uint256 rentalId) internal returns (uint256 cost) {
        vm.prank(caller);
        cost = escrow.autoExtend(rentalId);
    }

    /// @dev What is left of a rental's automatic extension budget.
    function autoBudgetOf(uint256 rentalId) internal view returns (uint256 budget) {
        (budget,) = escrow.autoExtension(rentalId);
    }

    /// @dev Submits the default provider's refusal of `rentalId` as `caller`.
    function refuseAs(address caller, uint256 rentalId) internal returns (uint256 refund) {
        bytes memory signature = signRefusal(providerKey, rentalId);
        vm.prank(caller);
        refund = escrow.refuse(rentalId, signature);
    }

    function withdrawAs(address caller, uint256 rentalId) internal returns (uint256 paid) {
        vm.prank(caller);
        paid = escrow.withdraw(rentalId);
    }

    /// @dev Credits downtime signed by the default (single) attester, submitted by a stranger.
    function credit(Downtime memory downtime) internal returns (uint256 refund) {
        bytes[] memory entries = attest(downtime, 1);
        vm.prank(stranger);
        refund = escrow.creditDowntime(packDowntime(downtime), packEntries(entries));
    }

    function downtimeOf(uint256 rentalId, uint256 from, uint256 to, uint256 downSeconds)
        internal
        view
        returns (Downtime memory)
    {
        return Downtime({
            rentalId: rentalId,
            from: uint40(from),
            to: uint40(to),
            downSeconds: uint40(downSeconds),
            deadline: uint40(block.timestamp + 1 hours)
        });
    }
}
