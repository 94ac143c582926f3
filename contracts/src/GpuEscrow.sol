// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Ownable } from "@openzeppelin/contracts/access/Ownable.sol";
import { Ownable2Step } from "@openzeppelin/contracts/access/Ownable2Step.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Permit } from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import { SafeERC20 } from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import { ECDSA } from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import { EIP712 } from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import { SignatureChecker } from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "./interfaces/IGpuEscrow.sol";
import { Errors } from "./libraries/Errors.sol";
import { Downtime, Quote, Rental } from "./types/DataTypes.sol";

/// @title GpuEscrow
/// @notice See the documentation in {IGpuEscrow}.
/// @dev Accounting is kept in seconds, not amounts: a rental stores how many seconds were paid to the provider
/// (`withdrawnSeconds`) and credited to the renter (`credited`), and every amount is `ratePerSecond * seconds`. With
/// `settled = withdrawnSeconds + credited`, the escrow holds for each rental exactly
/// `ratePerSecond * (end - start - settled)`, plus {feesAccrued} overall, and the following keeps that non-negative:
/// every second in `[start, start + settled)` is paid or credited, `start + settled <= max(last withdrawal cutoff,
/// creditedUntil) <= block.timestamp`, and a stop never moves `end` below `block.timestamp`.
///
/// Every state-changing function follows checks-effects-interactions and only calls the token at the very end (the
/// permit of {openWithPermit} aside, which only sets an allowance), so no reentrancy guard is needed. Signature checks
/// are static calls.
contract GpuEscrow is IGpuEscrow, EIP712, Ownable2Step, Pausable {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////////////////
                                       TYPES
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev A rental as stored. Opening writes exactly the first two slots; the third is only written by a downtime
    /// credit. Keeping `withdrawnSeconds` in a slot that is already non-zero makes even the first withdrawal a cheap
    /// non-zero to non-zero write, and storing a 32-bit provider id instead of the address is what makes the rest fit.
    struct StoredRental {
        // slot 0
        address renter;
        uint40 start;
        uint40 end;
        uint16 feeBps;
        // slot 1
        uint96 ratePerSecond;
        uint32 providerId;
        uint40 maxEnd;
        uint40 withdrawnSeconds;
        uint40 credited;
        bool stopped;
        // slot 2
        uint40 creditedUntil;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     CONSTANTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_FEE_BPS = 1500;

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_DISPUTE_WINDOW = 30 days;

    /// @dev How many nonces share a word of {_nonceWords}; the remaining 32 bits hold the provider id.
    uint256 private constant NONCES_PER_WORD = 224;

    /// @dev The denominator of basis-point fees.
    uint256 private constant BPS_DENOMINATOR = 10_000;

    /// @dev `keccak256("Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40
    /// deadline,bytes32 offerId,uint256 nonce)")`.
    bytes32 private constant QUOTE_TYPEHASH = keccak256(
        "Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40 deadline,bytes32 offerId,uint256 nonce)"
    );

    /// @dev `keccak256("Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)")`.
    bytes32 private constant DOWNTIME_TYPEHASH =
        keccak256("Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)");

    /*//////////////////////////////////////////////////////////////////////////
                                     IMMUTABLES
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    IERC20 public immutable override token;

    /// @inheritdoc IGpuEscrow
    uint40 public immutable override DISPUTE_WINDOW;

    /*//////////////////////////////////////////////////////////////////////////
                                      STORAGE
    //////////////////////////////////////////////////////////////////////////*/

    // The first two variables share a slot with Ownable2Step's pending owner and Pausable's flag, so opening a rental
    // reads the pause flag and the fee and bumps the id counter with a single cold storage access.

    /// @inheritdoc IGpuEscrow
    uint16 public override feeBps;

    /// @dev The id of the next rental. Starts at 1.
    uint64 private _nextRentalId;

    /// @inheritdoc IGpuEscrow
    address public override treasury;

    /// @inheritdoc IGpuEscrow
    uint8 public override attesterThreshold;

    /// @dev How many providers have an id. Ids start at 1, so 0 means "not registered".
    uint32 private _providerCount;

    /// @inheritdoc IGpuEscrow
    uint256 public override feesAccrued;

    /// @inheritdoc IGpuEscrow
    mapping(address account => bool) public override isAttester;

    /// @dev Rentals by id.
    mapping(uint256 rentalId => StoredRental) private _rentals;

    /// @dev Compact ids of providers, assigned on their first rental, and the reverse lookup.
    mapping(address provider => uint32 providerId) private _providerIds;
    mapping(uint32 providerId => address provider) private _providers;

    /// @dev Used nonces per provider, as a bitmap of 224 nonces per word: nonce `n` is bit `n % 224` of word
    /// `n / 224`. The top 32 bits of a word cache the provider's id once a rental was opened through it, so that
    /// opening a rental reads the nonce bit and the provider id with one storage access.
    mapping(address provider => mapping(uint256 wordPos => uint256 word)) private _nonceWords;

    /*//////////////////////////////////////////////////////////////////////////
                                    CONSTRUCTOR
    //////////////////////////////////////////////////////////////////////////*/

    /// @param token_ The ERC-20 in which rentals are paid. Must not charge fees on transfer or rebase.
    /// @param treasury_ The account that may claim platform fees.
    /// @param feeBps_ The initial platform fee, in basis points; at most {MAX_FEE_BPS}.
    /// @param disputeWindow How long earned seconds stay unpayable, in seconds; at most {MAX_DISPUTE_WINDOW}.
    /// @param owner_ The admin account (two-step ownership transfer).
    constructor(IERC20 token_, address treasury_, uint16 feeBps_, uint40 disputeWindow, address owner_)
        EIP712("GpuEscrow", "1")
        Ownable(owner_)
    {
        if (address(token_) == address(0)) {
            revert Errors.GpuEscrow_TokenZeroAddress();
        }
        if (treasury_ == address(0)) {
            revert Errors.GpuEscrow_TreasuryZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) {
            revert Errors.GpuEscrow_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        }
        if (disputeWindow > MAX_DISPUTE_WINDOW) {
            revert Errors.GpuEscrow_DisputeWindowTooLong(disputeWindow, MAX_DISPUTE_WINDOW);
        }

        token = token_;
        DISPUTE_WINDOW = disputeWindow;
        treasury = treasury_;
        feeBps = feeBps_;
        attesterThreshold = 1;
        _nextRentalId = 1;
        emit TreasuryChanged(address(0), treasury_);
        emit FeeBpsChanged(0, feeBps_);
        emit AttesterThresholdChanged(0, 1);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function nextRentalId() external view override returns (uint256) {
        return _nextRentalId;
    }

    /// @inheritdoc IGpuEscrow
    function isNonceUsed(address provider, uint256 nonce) external view override returns (bool) {
        // forge-lint: disable-next-line(incorrect-shift)
        return _nonceWords[provider][nonce / NONCES_PER_WORD] & (1 << (nonce % NONCES_PER_WORD)) != 0;
    }

    /// @inheritdoc IGpuEscrow
    function hashQuote(Quote calldata quote) external view override returns (bytes32 digest) {
        digest = _hashQuote(quote);
    }

    /// @inheritdoc IGpuEscrow
    function hashDowntime(Downtime calldata downtime) external view override returns (bytes32 digest) {
        digest = _hashDowntime(downtime);
    }

    /// @inheritdoc IGpuEscrow
    function getRental(uint256 rentalId) external view override returns (Rental memory rental) {
        StoredRental storage stored = _getExistingRental(rentalId);
        rental = Rental({
            renter: stored.renter,
            provider: _providers[stored.providerId],
            start: stored.start,
            end: stored.end,
            maxEnd: stored.maxEnd,
            stopped: stored.stopped,
            ratePerSecond: stored.ratePerSecond,
            feeBps: stored.feeBps,
            withdrawn: uint256(stored.ratePerSecond) * stored.withdrawnSeconds,
            credited: stored.credited,
            creditedUntil: stored.creditedUntil
        });
    }

    /// @inheritdoc IGpuEscrow
    function earned(uint256 rentalId) external view override returns (uint256) {
        StoredRental storage stored = _getExistingRental(rentalId);
        uint256 end = stored.end;
        uint256 until = block.timestamp < end ? block.timestamp : end;
        uint256 earnedUntil = uint256(stored.start) + stored.credited;
        return until > earnedUntil ? uint256(stored.ratePerSecond) * (until - earnedUntil) : 0;
    }

    /// @inheritdoc IGpuEscrow
    function withdrawable(uint256 rentalId) external view override returns (uint256 gross) {
        StoredRental storage stored = _getExistingRental(rentalId);
        gross = uint256(stored.ratePerSecond) * _payableSeconds(stored);
    }

    /*//////////////////////////////////////////////////////////////////////////
                               NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function open(Quote calldata quote, uint256 duration, bytes calldata signature)
        external
        override
        returns (uint256 rentalId)
    {
        uint256 deposit;
        (rentalId, deposit) = _open(quote, duration, signature);

        // Interactions: pull the deposit last, so a token callback only ever sees a consistent rental.
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IGpuEscrow
    function openWithPermit(
        Quote calldata quote,
        uint256 duration,
        bytes calldata signature,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external override returns (uint256 rentalId) {
        uint256 deposit;
        (rentalId, deposit) = _open(quote, duration, signature);

        // Interactions: anyone can submit a permit seen in the mempool first, which consumes it and makes this call
        // fail. The allowance is then already in place, so the permit's failure only matters if the allowance falls
        // short of the deposit.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) { }
        catch {
            uint256 allowance = token.allowance(msg.sender, address(this));
            if (allowance < deposit) {
                revert Errors.GpuEscrow_PermitFailed(allowance, deposit);
            }
        }
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IGpuEscrow
    function extend(uint256 rentalId, uint256 extraSeconds) external override whenNotPaused returns (uint256 cost) {
        // Checks: only the renter, only an active rental, only within the quote's maximum duration.
        StoredRental storage stored = _getExistingRental(rentalId);
        if (msg.sender != stored.renter) {
            revert Errors.GpuEscrow_CallerNotRenter(rentalId, msg.sender);
        }
        _requireActive(stored, rentalId);
        if (extraSeconds == 0) {
            revert Errors.GpuEscrow_ExtensionZero();
        }
        uint256 end = stored.end;
        uint256 maxExtraSeconds = stored.maxEnd - end;
        if (extraSeconds > maxExtraSeconds) {
            revert Errors.GpuEscrow_ExtensionAboveMax(rentalId, extraSeconds, maxExtraSeconds);
        }

        // Effects: move the end.
        uint256 newEnd = end + extraSeconds;
        // Safe: `newEnd <= maxEnd`, which is a uint40.
        // forge-lint: disable-next-line(unsafe-typecast)
        stored.end = uint40(newEnd);
        cost = uint256(stored.ratePerSecond) * extraSeconds;
        emit RentalExtended(rentalId, newEnd, cost);

        // Interactions: pull the cost.
        token.safeTransferFrom(msg.sender, address(this), cost);
    }

    /// @inheritdoc IGpuEscrow
    function stop(uint256 rentalId) external override returns (uint256 refund) {
        // Checks: only the renter, only an active rental.
        StoredRental storage stored = _getExistingRental(rentalId);
        if (msg.sender != stored.renter) {
            revert Errors.GpuEscrow_CallerNotRenter(rentalId, msg.sender);
        }
        _requireActive(stored, rentalId);

        // Effects: moving the end to now freezes the provider's earnings at what has accrued, so the rest of the
        // deposit is exactly the refund. Every paid or credited second lies before now, so none of them is refunded.
        refund = uint256(stored.ratePerSecond) * (stored.end - block.timestamp);
        // Safe: `block.timestamp < end`, which is a uint40.
        // forge-lint: disable-next-line(unsafe-typecast)
        stored.end = uint40(block.timestamp);
        stored.stopped = true;
        emit RentalStopped(rentalId, msg.sender, block.timestamp, refund);

        // Interactions: refund the renter. Nothing goes to the provider, so its standing with the token is irrelevant.
        token.safeTransfer(msg.sender, refund);
    }

    /// @inheritdoc IGpuEscrow
    function withdraw(uint256 rentalId) external override returns (uint256 paid) {
        // Checks and effects: settle the rental up to the end of the dispute window.
        (uint256 gross, uint256 fee) = _settle(rentalId, _providerIds[msg.sender]);
        if (gross == 0) {
            revert Errors.GpuEscrow_NothingToWithdraw(rentalId);
        }
        feesAccrued += fee;
        unchecked {
            // `fee <= gross` since the fee rate is below 100 %.
            paid = gross - fee;
        }

        // Interactions: pay the provider.
        token.safeTransfer(msg.sender, paid);
    }

    /// @inheritdoc IGpuEscrow
    function withdrawMany(uint256[] calldata rentalIds) external override returns (uint256 paid) {
        // Checks and effects: settle every rental, adding up what is due.
        uint32 providerId = _providerIds[msg.sender];
        uint256 totalGross;
        uint256 totalFee;
        uint256 count = rentalIds.length;
        for (uint256 i = 0; i < count; ++i) {
            (uint256 gross, uint256 fee) = _settle(rentalIds[i], providerId);
            totalGross += gross;
            totalFee += fee;
        }
        if (totalGross == 0) {
            revert Errors.GpuEscrow_BatchNothingToWithdraw(count);
        }
        feesAccrued += totalFee;
        unchecked {
            paid = totalGross - totalFee;
        }

        // Interactions: pay the provider once.
        token.safeTransfer(msg.sender, paid);
    }

    /// @inheritdoc IGpuEscrow
    function claimFees() external override returns (uint256 amount) {
        // Checks: only the treasury may claim, and only when there is something to claim.
        if (msg.sender != treasury) {
            revert Errors.GpuEscrow_CallerNotTreasury(msg.sender);
        }
        amount = feesAccrued;
        if (amount == 0) {
            revert Errors.GpuEscrow_NoFeesToClaim();
        }

        // Effects: reset the accrued fees.
        feesAccrued = 0;
        emit FeesClaimed(msg.sender, amount);

        // Interactions: send the fees.
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IGpuEscrow
    function creditDowntime(Downtime calldata downtime, bytes[] calldata signatures)
        external
        override
        returns (uint256 refund)
    {
        // Checks: a fresh, well-formed window of the rental, signed by enough attesters, with something unpaid in it.
        if (block.timestamp > downtime.deadline) {
            revert Errors.GpuEscrow_DowntimeExpired(downtime.deadline, block.timestamp);
        }
        uint256 rentalId = downtime.rentalId;
        StoredRental storage stored = _getExistingRental(rentalId);
        _checkDowntimeWindow(stored, downtime);
        _verifyAttestation(_hashDowntime(downtime), signatures);
        uint256 credited = stored.credited;
        uint256 creditSeconds = _creditableSeconds(stored, credited, downtime);
        if (creditSeconds == 0) {
            revert Errors.GpuEscrow_NothingToCredit(rentalId);
        }

        // Effects: record the credit and the window.
        // Safe: the credited seconds lie in disjoint windows inside `[start, end)`, so they fit in 40 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        stored.credited = uint40(credited + creditSeconds);
        stored.creditedUntil = downtime.to;
        refund = uint256(stored.ratePerSecond) * creditSeconds;
        emit DowntimeCredited(rentalId, downtime.from, downtime.to, creditSeconds, refund);

        // Interactions: refund the renter, whoever submitted the attestation.
        token.safeTransfer(stored.renter, refund);
    }

    /// @inheritdoc IGpuEscrow
    function invalidateNonce(uint256 nonce) external override {
        _useNonce(msg.sender, nonce);
        emit NonceInvalidated(msg.sender, nonce);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  ADMIN FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function setFeeBps(uint16 newFeeBps) external override onlyOwner {
        if (newFeeBps > MAX_FEE_BPS) {
            revert Errors.GpuEscrow_FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        }
        uint16 oldFeeBps = feeBps;
        feeBps = newFeeBps;
        emit FeeBpsChanged(oldFeeBps, newFeeBps);
    }

    /// @inheritdoc IGpuEscrow
    function setTreasury(address newTreasury) external override onlyOwner {
        if (newTreasury == address(0)) {
            revert Errors.GpuEscrow_TreasuryZeroAddress();
        }
        address oldTreasury = treasury;
        treasury = newTreasury;
        emit TreasuryChanged(oldTreasury, newTreasury);
    }

    /// @inheritdoc IGpuEscrow
    function setAttester(address attester, bool allowed) external override onlyOwner {
        if (attester == address(0)) {
            revert Errors.GpuEscrow_AttesterZeroAddress();
        }
        isAttester[attester] = allowed;
        emit AttesterSet(attester, allowed);
    }

    /// @inheritdoc IGpuEscrow
    function setAttesterThreshold(uint8 newThreshold) external override onlyOwner {
        if (newThreshold == 0) {
            revert Errors.GpuEscrow_AttesterThresholdZero();
        }
        uint8 oldThreshold = attesterThreshold;
        attesterThreshold = newThreshold;
        emit AttesterThresholdChanged(oldThreshold, newThreshold);
    }

    /// @inheritdoc IGpuEscrow
    function pause() external override onlyOwner {
        _pause();
    }

    /// @inheritdoc IGpuEscrow
    function unpause() external override onlyOwner {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////////////////
                             PRIVATE CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Loads a rental, reverting if it was never opened. Opened rentals always have a non-zero renter, since
    /// the renter is the caller of {open}.
    function _getExistingRental(uint256 rentalId) private view returns (StoredRental storage stored) {
        stored = _rentals[rentalId];
        if (stored.renter == address(0)) {
            revert Errors.GpuEscrow_RentalNotFound(rentalId);
        }
    }

    /// @dev Reverts unless the rental can still be stopped or extended.
    function _requireActive(StoredRental storage stored, uint256 rentalId) private view {
        if (stored.stopped) {
            revert Errors.GpuEscrow_RentalAlreadyStopped(rentalId);
        }
        uint256 end = stored.end;
        if (block.timestamp >= end) {
            revert Errors.GpuEscrow_RentalAlreadyEnded(rentalId, end);
        }
    }

    /// @dev The seconds the provider could be paid for now: those before the dispute window's cutoff that are
    /// neither paid nor credited yet.
    function _payableSeconds(StoredRental storage stored) private view returns (uint256) {
        uint256 end = stored.end;
        uint256 window = DISPUTE_WINDOW;
        uint256 cutoff = block.timestamp > window ? block.timestamp - window : 0;
        if (cutoff > end) {
            cutoff = end;
        }
        uint256 settledUntil = uint256(stored.start) + stored.withdrawnSeconds + stored.credited;
        return cutoff > settledUntil ? cutoff - settledUntil : 0;
    }

    /// @dev Reverts unless `[from, to)` is a non-empty window inside the rental that has already ended and starts at
    /// or after the last credited window, and `downSeconds` fits in it.
    function _checkDowntimeWindow(StoredRental storage stored, Downtime calldata downtime) private view {
        uint256 from = downtime.from;
        uint256 to = downtime.to;
        if (from >= to) {
            revert Errors.GpuEscrow_DowntimeWindowInvalid(from, to);
        }
        uint256 downSeconds = downtime.downSeconds;
        if (downSeconds == 0 || downSeconds > to - from) {
            revert Errors.GpuEscrow_DowntimeSecondsInvalid(downSeconds, to - from);
        }
        if (to > block.timestamp) {
            revert Errors.GpuEscrow_DowntimeInFuture(to, block.timestamp);
        }
        if (from < stored.start || to > stored.end) {
            revert Errors.GpuEscrow_DowntimeOutsideRental(downtime.rentalId, from, to);
        }
        uint256 creditedUntil = stored.creditedUntil;
        if (from < creditedUntil) {
            revert Errors.GpuEscrow_DowntimeOverlaps(downtime.rentalId, from, creditedUntil);
        }
    }

    /// @dev How many of the attested down seconds can be credited. Every second before `settledUntil` is paid or
    /// credited already and the provider is paid in time order, so only the part of the window after it counts.
    function _creditableSeconds(StoredRental storage stored, uint256 credited, Downtime calldata downtime)
        private
        view
        returns (uint256 creditSeconds)
    {
        uint256 settledUntil = uint256(stored.start) + stored.withdrawnSeconds + credited;
        uint256 unpaidFrom = downtime.from > settledUntil ? downtime.from : settledUntil;
        uint256 to = downtime.to;
        if (to <= unpaidFrom) {
            return 0;
        }
        creditSeconds = to - unpaidFrom;
        if (downtime.downSeconds < creditSeconds) {
            creditSeconds = downtime.downSeconds;
        }
    }

    /// @dev The EIP-712 digest of a quote. Every member is a static 32-byte word, so the struct hash is the hash of
    /// the type hash followed by the quote exactly as it lies in calldata.
    function _hashQuote(Quote calldata quote) private view returns (bytes32) {
        bytes32 typeHash = QUOTE_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), quote, 0xe0)
            structHash := keccak256(ptr, 0x100)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @dev The EIP-712 digest of a downtime attestation.
    function _hashDowntime(Downtime calldata downtime) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DOWNTIME_TYPEHASH, downtime)));
    }

    /// @dev Whether `signature` is `signer`'s signature of `digest`. The ECDSA check comes first: it is what EOAs
    /// use and it needs no access to the signer's account, which is cold at this point. Only when it fails is the
    /// signer asked through ERC-1271, which covers contract wallets and delegated (EIP-7702) accounts.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) {
            return true;
        }
        return SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature);
    }

    /// @dev Reverts unless at least {attesterThreshold} distinct registered attesters signed `digest`. Each entry is
    /// `attester || signature`; strictly ascending attesters prove they are distinct without a set.
    function _verifyAttestation(bytes32 digest, bytes[] calldata signatures) private view {
        uint256 count = signatures.length;
        uint256 threshold = attesterThreshold;
        if (count < threshold) {
            revert Errors.GpuEscrow_AttestationsBelowThreshold(count, threshold);
        }
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            bytes calldata entry = signatures[i];
            if (entry.length < 20) {
                revert Errors.GpuEscrow_AttestationMalformed(i);
            }
            address attester = address(bytes20(entry[:20]));
            if (attester <= previous) {
                revert Errors.GpuEscrow_AttestersNotAscending(previous, attester);
            }
            if (!isAttester[attester]) {
                revert Errors.GpuEscrow_NotAttester(attester);
            }
            if (!SignatureChecker.isValidSignatureNowCalldata(attester, digest, entry[20:])) {
                revert Errors.GpuEscrow_InvalidSignature(attester);
            }
            previous = attester;
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                           PRIVATE NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev The checks and effects of {open} and {openWithPermit}; the caller pulls the returned deposit.
    function _open(Quote calldata quote, uint256 duration, bytes calldata signature)
        private
        whenNotPaused
        returns (uint256 rentalId, uint256 deposit)
    {
        // Checks: the quote is live, meant for the caller and well-formed, the duration fits, the nonce is fresh and
        // the provider signed it.
        if (block.timestamp > quote.deadline) {
            revert Errors.GpuEscrow_QuoteExpired(quote.deadline, block.timestamp);
        }
        if (msg.sender != quote.renter) {
            revert Errors.GpuEscrow_CallerNotQuoteRenter(quote.renter, msg.sender);
        }
        address provider = quote.provider;
        if (provider == address(0)) {
            revert Errors.GpuEscrow_ProviderZeroAddress();
        }
        if (provider == msg.sender) {
            revert Errors.GpuEscrow_ProviderIsRenter(msg.sender);
        }
        uint256 rate = quote.ratePerSecond;
        if (rate == 0) {
            revert Errors.GpuEscrow_RateZero();
        }
        if (rate > type(uint96).max) {
            revert Errors.GpuEscrow_RateTooHigh(rate, type(uint96).max);
        }
        if (duration == 0) {
            revert Errors.GpuEscrow_DurationZero();
        }
        uint256 maxEnd = block.timestamp + quote.maxDuration;
        if (maxEnd > type(uint40).max) {
            maxEnd = type(uint40).max;
        }
        if (duration > maxEnd - block.timestamp) {
            revert Errors.GpuEscrow_DurationAboveMax(duration, maxEnd - block.timestamp);
        }
        if (!_isValidSignature(provider, _hashQuote(quote), signature)) {
            revert Errors.GpuEscrow_InvalidSignature(provider);
        }

        // Effects: consume the nonce and record the rental.
        uint32 providerId = _useNonce(provider, quote.nonce);
        if (providerId == 0) {
            providerId = _cacheProviderId(provider, quote.nonce);
        }
        rentalId = _nextRentalId;
        unchecked {
            // Cannot realistically overflow 64 bits: each increment costs a transaction.
            // forge-lint: disable-next-line(unsafe-typecast)
            _nextRentalId = uint64(rentalId + 1);
        }
        uint256 end = block.timestamp + duration;
        StoredRental storage stored = _rentals[rentalId];
        // All casts are safe: the timestamps are at most `maxEnd`, a uint40, and the rate was checked to fit.
        // forge-lint: disable-start(unsafe-typecast)
        stored.renter = msg.sender;
        stored.start = uint40(block.timestamp);
        stored.end = uint40(end);
        stored.feeBps = feeBps;
        stored.ratePerSecond = uint96(rate);
        stored.providerId = providerId;
        stored.maxEnd = uint40(maxEnd);
        // forge-lint: disable-end(unsafe-typecast)
        deposit = rate * duration;
        emit RentalOpened(rentalId, msg.sender, provider, quote.nonce, rate, block.timestamp, end, deposit);
    }

    /// @dev Marks a provider nonce as used, reverting if it already was, and returns the provider id cached in the
    /// nonce's word (0 if none is cached yet).
    function _useNonce(address provider, uint256 nonce) private returns (uint32 cachedProviderId) {
        mapping(uint256 wordPos => uint256 word) storage words = _nonceWords[provider];
        uint256 wordPos = nonce / NONCES_PER_WORD;
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bit = 1 << (nonce % NONCES_PER_WORD);
        uint256 word = words[wordPos];
        if (word & bit != 0) {
            revert Errors.GpuEscrow_NonceAlreadyUsed(provider, nonce);
        }
        words[wordPos] = word | bit;
        // Safe: a word holds 224 nonce bits below a 32-bit id.
        // forge-lint: disable-next-line(unsafe-typecast)
        cachedProviderId = uint32(word >> NONCES_PER_WORD);
    }

    /// @dev Returns the provider's id, assigning the next one on its first rental, and caches it in the word of
    /// `nonce`. Only runs the first time a provider opens a rental through a given nonce word.
    function _cacheProviderId(address provider, uint256 nonce) private returns (uint32 providerId) {
        providerId = _providerIds[provider];
        if (providerId == 0) {
            providerId = _providerCount + 1;
            _providerCount = providerId;
            _providerIds[provider] = providerId;
            _providers[providerId] = provider;
        }
        _nonceWords[provider][nonce / NONCES_PER_WORD] |= uint256(providerId) << NONCES_PER_WORD;
    }

    /// @dev Settles what the provider can be paid on a rental and returns the gross amount and the fee. Reverts if
    /// the rental does not exist or `providerId` is not its provider's; returns zeros if nothing is payable.
    function _settle(uint256 rentalId, uint32 providerId) private returns (uint256 gross, uint256 fee) {
        StoredRental storage stored = _getExistingRental(rentalId);
        if (stored.providerId != providerId) {
            revert Errors.GpuEscrow_CallerNotProvider(rentalId, msg.sender);
        }
        uint256 payableSeconds = _payableSeconds(stored);
        if (payableSeconds == 0) {
            return (0, 0);
        }

        uint256 rate = stored.ratePerSecond;
        uint256 withdrawnSeconds = stored.withdrawnSeconds;
        uint256 newWithdrawnSeconds = withdrawnSeconds + payableSeconds;
        gross = rate * payableSeconds;
        // Taking the fee as the difference of cumulative fees, instead of a fee on `gross`, keeps rounding from
        // accumulating: the total fee is `fee(total gross)` no matter how the withdrawals were split.
        uint256 bps = stored.feeBps;
        fee = _fee(rate * newWithdrawnSeconds, bps) - _fee(rate * withdrawnSeconds, bps);

        // Safe: the paid seconds lie inside `[start, end)`, so they fit in 40 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        stored.withdrawnSeconds = uint40(newWithdrawnSeconds);
        emit EarningsWithdrawn(rentalId, msg.sender, gross - fee, fee);
    }

    /// @dev The cumulative platform fee owed on `gross` earnings, rounded down in favour of the provider.
    function _fee(uint256 gross, uint256 bps) private pure returns (uint256) {
        return gross * bps / BPS_DENOMINATOR;
    }
}
